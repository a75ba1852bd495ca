"""The multimodal classifier: one encoder per modality plus the heads the hosts need."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dus_env.config import ModelConfig
from dus_env.models.encoders import ENCODERS

FAST_SOFTMAX_MAX_CLASSES = 16
"""Below this many classes, :func:`class_probabilities` takes the transposed route on CPU."""


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last (class) dimension, for evaluation.

    On CPU, torch's last-dimension softmax kernel does not vectorise across rows when there are
    fewer classes than one SIMD register holds, so a few-class, many-row batch (a validation
    pass) runs it several times slower than the same softmax over a transposed view (torch
    2.13, one thread, 500 rows x 10 classes: about 60 us against 9 us). The result equals
    ``torch.softmax(logits, dim=-1)`` to float rounding (a few 1e-8), as a strided view.
    """
    if logits.device.type == "cpu" and logits.dim() >= 2 and (
        logits.shape[-1] < FAST_SOFTMAX_MAX_CLASSES
    ):
        return torch.softmax(logits.transpose(-1, -2), dim=-2).transpose(-1, -2)
    return torch.softmax(logits, dim=-1)


def true_class_probability(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The batch score s^j: mean softmax probability of each row's true class (detached).

    ``logits`` has shape ``(N, C)``, ``labels`` ``(N,)`` with N >= 1; the trainer and the
    plain-loop controller (:mod:`dus_env.replay`) both score batches with this function.
    """
    if logits.ndim != 2 or labels.ndim != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} and labels of shape {tuple(labels.shape)} "
            "do not match; expected logits (N, C) and labels (N,)"
        )
    if logits.shape[0] == 0:
        raise ValueError("logits has 0 rows; a batch score needs at least one sample")
    logits = logits.detach()
    labels = labels.detach().to(device=logits.device, dtype=torch.long)
    return float(torch.softmax(logits, dim=1).gather(1, labels[:, None]).mean())


class MultimodalClassifier(nn.Module):
    """Encoders, unimodal heads and a concat fusion head, or one shared head (MLA).

    Args:
        modalities: modality names; every per-modality vector follows this order.
        input_shapes: shape of one sample per modality.
        n_classes: number of classes.
        config: encoder kind and widths.
        shared_head: build MLA's single head shared by all modalities instead of one head per
            modality plus a fusion head.
    """

    def __init__(
        self,
        modalities: tuple[str, ...],
        input_shapes: Mapping[str, tuple[int, ...]],
        n_classes: int,
        config: ModelConfig,
        *,
        shared_head: bool = False,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.n_classes = n_classes
        self.encoders = nn.ModuleDict({
            m: ENCODERS.load(config.encoder_for(m))(tuple(input_shapes[m]), config)
            for m in modalities
        })
        d = config.feature_dim
        if shared_head:
            self.shared_head: nn.Linear | None = nn.Linear(d, n_classes)
            self.heads = nn.ModuleDict()
            self.fusion_head: nn.Linear | None = None
        else:
            self.shared_head = None
            self.heads = nn.ModuleDict({m: nn.Linear(d, n_classes) for m in modalities})
            self.fusion_head = nn.Linear(d * len(modalities), n_classes)

    def encode(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Features of ``modality`` for a batch."""
        return self.encoders[modality](x)

    def unimodal_logits(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        """Logits of one modality's own prediction (its head, or the shared head)."""
        head = self.shared_head if self.shared_head is not None else self.heads[modality]
        return head(features)

    def fusion_logits(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concat-fusion logits from paired features of every modality."""
        if self.fusion_head is None:
            raise RuntimeError("this classifier has a shared head and no fusion head")
        return self.fusion_head(torch.cat([features[m] for m in self.modalities], dim=1))

    def fusion_contributions(self, features: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality's additive share of the fusion logits (bias split evenly), for OGM-GE."""
        assert self.fusion_head is not None
        d = next(iter(features.values())).shape[1]
        weight, bias = self.fusion_head.weight, self.fusion_head.bias
        share = bias / len(self.modalities)
        return {
            m: features[m] @ weight[:, j * d : (j + 1) * d].T + share
            for j, m in enumerate(self.modalities)
        }
