"""Encoders (the registry), the classifier's heads, and the probability helpers."""

from __future__ import annotations

import math

import pytest
import torch

from dus_env.config import ModelConfig
from dus_env.models import ENCODERS, MultimodalClassifier, register_encoder, true_class_probability


def test_true_class_probability_hand_computed():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    labels = torch.tensor([0, 1])
    assert true_class_probability(logits, labels) == pytest.approx((0.5 + 0.25) / 2)
    with pytest.raises(ValueError, match="do not match"):
        true_class_probability(logits, torch.tensor([0]))
    with pytest.raises(ValueError, match="0 rows"):
        true_class_probability(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))


def test_classifier_heads_and_shapes():
    cfg = ModelConfig(hidden_dims=(16,), feature_dim=8)
    model = MultimodalClassifier(("a", "b"), {"a": (5,), "b": (3,)}, 4, cfg)
    fa, fb = model.encode("a", torch.zeros(7, 5)), model.encode("b", torch.zeros(7, 3))
    assert fa.shape == fb.shape == (7, 8)
    assert model.unimodal_logits("a", fa).shape == (7, 4)
    assert model.fusion_logits({"a": fa, "b": fb}).shape == (7, 4)
    shared = MultimodalClassifier(("a", "b"), {"a": (5,), "b": (3,)}, 4, cfg, shared_head=True)
    assert shared.shared_head is not None


def test_encoder_registry_names_builders_and_registration():
    assert {"mlp", "resnet18", "text_bag"} <= set(ENCODERS)
    assert isinstance(ENCODERS["resnet18"], str)  # an import path: nothing loaded to check names
    build = ENCODERS.load("mlp")
    assert build((4,), ModelConfig(hidden_dims=(6,), feature_dim=3))(torch.zeros(2, 4)).shape == (2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("mlp", build)
    with pytest.raises(ValueError, match="model.encoder='mpl' is not valid.*Did you mean 'mlp'"):
        ModelConfig(encoder="mpl")


@pytest.mark.parametrize("shape", [(500, 2), (500, 10), (64, 40), (3, 200, 6), (1, 7)])
def test_class_probabilities_equal_softmax_over_classes(shape):
    from dus_env.models import class_probabilities

    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 4
    probs = class_probabilities(logits)
    assert probs.shape == logits.shape
    torch.testing.assert_close(probs, torch.softmax(logits, dim=-1), rtol=0, atol=1e-6)
    assert torch.equal(probs.argmax(-1), torch.softmax(logits, dim=-1).argmax(-1))
