import numpy as np
import pytest
import torch

from dus_env.config import HOSTS, MLAConfig, TrainerConfig, get_preset
from dus_env.data import make_dataset
from dus_env.hosts import MLAHost, OGMGEHost
from dus_env.models import MultimodalClassifier
from dus_env.sampler import ModalitySampler
from dus_env.seeding import torch_generator
from dus_env.trainer import MMLTrainer


@pytest.mark.parametrize("host", HOSTS)
def test_each_host_trains_tiny_preset_well_above_chance(host):
    cfg = get_preset("tiny")
    data = make_dataset(cfg.data)
    trainer = MMLTrainer.build(TrainerConfig(host=host), cfg.model, data,
                               cfg.sampler.base_batch_size, seed=0)
    sampler = ModalitySampler(cfg.sampler, data.modalities, data.split("train"),
                              np.random.default_rng(0))
    for _ in range(150):
        stats = trainer.train_step(sampler.next_batch((16, 16)))
        assert not stats.diverged
    result = trainer.evaluate(data.split("val"))
    chance = 1.0 / data.n_classes
    assert result.accuracy > chance + 0.4, result
    assert min(result.modality_accuracy.values()) > chance + 0.15, result


def test_mla_projection_changes_head_gradient_and_protects_previous_features():
    host = MLAHost(TrainerConfig(host="mla", mla=MLAConfig(alpha=0.01)), 16, torch_generator(0))
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(8, generator=gen)
    grad = torch.randn(4, 8, generator=gen)
    projected = host.project(grad, r)
    assert not torch.allclose(projected, grad)
    # The head update -lr * projected barely changes the output on the feature seen:
    assert (projected @ r).norm() < 0.05 * (grad @ r).norm()
    # ... while directions orthogonal to it keep their gradient.
    orth = torch.randn(8, generator=gen)
    orth = orth - (orth @ r) / (r @ r) * r
    assert torch.allclose(projected @ orth, grad @ orth, atol=1e-4)


def test_mla_projection_is_applied_in_training_and_switchable():
    cfg = get_preset("tiny")
    data = make_dataset(cfg.data)
    grads = {}
    for projection in (True, False):
        tc = TrainerConfig(host="mla", mla=MLAConfig(projection=projection))
        trainer = MMLTrainer.build(tc, cfg.model, data, 16, seed=0)
        sampler = ModalitySampler(cfg.sampler, data.modalities, data.split("train"),
                                  np.random.default_rng(0))
        for _ in range(3):
            trainer.train_step(sampler.next_batch((16, 16)))
        grads[projection] = trainer.model.shared_head.weight.detach().clone()
        assert (trainer.host.projection is not None) == projection
    assert not torch.allclose(grads[True], grads[False])


def test_ogm_ge_coefficient_lowers_dominant_modality_gradient():
    cfg = get_preset("tiny")
    d = cfg.model.feature_dim
    model = MultimodalClassifier(("strong", "weak"), {"strong": (8,), "weak": (8,)}, 4, cfg.model)
    host = OGMGEHost(TrainerConfig(host="ogm_ge"), 16, torch_generator(0))
    labels = torch.arange(16) % 4
    with torch.no_grad():  # the strong half of the fusion head reads the label off feature c
        model.fusion_head.weight.zero_()
        model.fusion_head.bias.zero_()
        for c in range(4):
            model.fusion_head.weight[c, c] = 5.0
    strong = torch.nn.functional.one_hot(labels, d).float()
    weak = torch.rand(16, d, generator=torch.Generator().manual_seed(0))
    coeffs = host.coefficients(model, {"strong": strong, "weak": weak}, labels)
    # rho = confidence(strong) / confidence(weak) > 1 -> 1 - tanh(alpha (rho - 1)) < 1
    assert coeffs["strong"] < 0.5
    assert coeffs["weak"] == 1.0


def test_ogm_ge_scales_encoder_gradients_in_training():
    cfg = get_preset("tiny")
    data = make_dataset(cfg.data)
    tc = TrainerConfig(host="ogm_ge")
    trainer = MMLTrainer.build(tc, cfg.model, data, 16, seed=0)
    sampler = ModalitySampler(cfg.sampler, data.modalities, data.split("train"),
                              np.random.default_rng(0))
    seen = []
    for _ in range(40):
        stats = trainer.train_step(sampler.next_batch((16, 16)))
        seen.append(stats.extras["ogm_coeff/strong"])
    assert min(seen) < 1.0  # the strong modality dominates and is slowed down
