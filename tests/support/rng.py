"""Seeding the global random generators inside a test without leaking the seed to later tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def isolated_global_rng() -> Iterator[None]:
    """Within the block, torch's generators (CPU, and CUDA where there is one: what
    ``torch.manual_seed`` seeds) and numpy's legacy global generator may be seeded freely;
    all are put back as they were when the block is left (also on failure)."""
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        np.random.set_state(np_state)
