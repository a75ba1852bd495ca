import math

import numpy as np
import pytest
import torch

from dus_env.config import HOSTS, MLAConfig, OGMGEConfig, TrainerConfig, get_preset
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


class _FixedContributions:
    """A stand-in model whose fusion contributions are given logits (one per modality)."""

    def __init__(self, logits):
        self.logits = logits

    def fusion_contributions(self, paired):
        return self.logits


def _confident(p_true: float, labels: torch.Tensor, n_classes: int = 4) -> torch.Tensor:
    """Logits whose softmax puts ``p_true`` on each row's label."""
    probs = torch.full((len(labels), n_classes), (1 - p_true) / (n_classes - 1))
    probs[torch.arange(len(labels)), labels] = p_true
    return probs.log()


@pytest.mark.parametrize("coefficient", ["shifted", "original"])
def test_ogm_ge_coefficient_formulas(coefficient):
    labels = torch.arange(16) % 4
    model = _FixedContributions({"a": _confident(0.8, labels), "b": _confident(0.4, labels)})
    cfg = TrainerConfig(host="ogm_ge", ogm_ge=OGMGEConfig(alpha=0.8, coefficient=coefficient))
    coeffs = OGMGEHost(cfg, 16, torch_generator(0)).coefficients(model, {}, labels)
    rho = (16 * 0.8) / (16 * 0.4)  # summed true-class confidence over the other's
    expected = 1 - math.tanh(0.8 * (rho - 1 if coefficient == "shifted" else rho))
    assert coeffs["a"] == pytest.approx(expected, abs=1e-6)  # tanh is taken in float32
    assert coeffs["b"] == 1.0


def test_ogm_ge_damps_only_the_dominant_of_three_modalities():
    labels = torch.arange(16) % 4
    host = OGMGEHost(TrainerConfig(host="ogm_ge"), 16, torch_generator(0))
    # rho: a 0.9 / 0.45 = 2.0, b 0.8 / 0.5 = 1.6 (also above 1), c 0.1 / 0.85
    model = _FixedContributions({m: _confident(p, labels)
                                 for m, p in (("a", 0.9), ("b", 0.8), ("c", 0.1))})
    coeffs = host.coefficients(model, {}, labels)
    assert coeffs["a"] == pytest.approx(1 - math.tanh(0.8 * (2.0 - 1)), abs=1e-6)
    assert coeffs["b"] == 1.0 and coeffs["c"] == 1.0
    # modalities tied for the largest ratio are damped alike, whatever their order
    tied = _FixedContributions({m: _confident(p, labels)
                                for m, p in (("c", 0.1), ("a", 0.9), ("b", 0.9))})
    coeffs = host.coefficients(tied, {}, labels)
    assert coeffs["a"] == coeffs["b"] < 1.0 and coeffs["c"] == 1.0


def test_ogm_ge_coefficient_choice_is_checked():
    with pytest.raises(ValueError, match=r"trainer.ogm_ge.coefficient='orignal'.*'shifted', 'original'"):
        OGMGEConfig(coefficient="orignal")


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
