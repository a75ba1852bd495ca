"""Encoders (an open registry) and the multimodal classifier."""

from dus_env.models.classifier import (
    MultimodalClassifier,
    class_probabilities,
    true_class_probability,
)
from dus_env.models.encoders import ENCODERS, build_mlp, register_encoder

__all__ = [
    "ENCODERS", "MultimodalClassifier", "build_mlp", "class_probabilities", "register_encoder",
    "true_class_probability",
]
