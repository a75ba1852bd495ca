"""The multimodal classifier: one encoder per modality plus the heads the hosts need."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from dus_env.config import ModelConfig
from dus_env.models.encoders import ENCODERS


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
            m: ENCODERS[config.encoder_for(m)](tuple(input_shapes[m]), config) for m in modalities
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
