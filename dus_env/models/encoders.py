"""Per-modality encoders, behind a registry open to new kinds.

An encoder builder takes the shape of one input sample and the :class:`ModelConfig` and returns
an ``nn.Module`` mapping a batch to features of width ``config.feature_dim``. Register new
kinds (conv, transformer, pretrained backbones) with :func:`register_encoder`; the built-in
kinds are listed, by import path, in :data:`dus_env.registry.ENCODERS`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from torch import nn

from dus_env.registry import ENCODERS

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


def register_encoder(name: str, builder: EncoderBuilder | str, *, overwrite: bool = False) -> None:
    """Add an encoder kind: a builder ``(input_shape, model_config) -> nn.Module``, or its
    import path ``"module:function"``."""
    ENCODERS.register(name, builder, overwrite=overwrite)
