"""Per-modality encoders, behind a registry open to new kinds.

An encoder builder takes the shape of one input sample and the :class:`ModelConfig` and returns
an ``nn.Module`` mapping a batch to features of width ``config.feature_dim``. Register new
kinds (conv, transformer, pretrained backbones) with :func:`register_encoder`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from torch import nn

if TYPE_CHECKING:
    from dus_env.config import ModelConfig

EncoderBuilder = Callable[[tuple[int, ...], "ModelConfig"], nn.Module]


def build_mlp(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    """Flatten, then ``Linear -> ReLU`` per hidden width, then ``Linear`` to the feature width."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for hidden in config.hidden_dims:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers += [nn.Linear(width, config.feature_dim), nn.ReLU()]
    return nn.Sequential(*layers)


ENCODERS: dict[str, EncoderBuilder] = {"mlp": build_mlp}
"""Encoder kind -> builder. ``ModelConfig.encoder`` must name one of these."""


def register_encoder(name: str, builder: EncoderBuilder, *, overwrite: bool = False) -> None:
    """Add an encoder kind to :data:`ENCODERS`."""
    if name in ENCODERS and not overwrite:
        raise ValueError(f"encoder {name!r} is already registered; pass overwrite=True to replace it")
    ENCODERS[name] = builder
