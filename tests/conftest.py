import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tiny_config():
    from dus_env.config import get_preset

    return get_preset("tiny")
