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


def _lazy(target: str) -> EncoderBuilder:
    """A builder importing ``module:function`` on first use (keeps ``import dus_env`` cheap)."""

    def build(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
        import importlib

        module, func = target.split(":")
        return getattr(importlib.import_module(module), func)(input_shape, config)

    build.__doc__ = f"Lazy builder for ``{target}``."
    return build


ENCODERS: dict[str, EncoderBuilder] = {
    "mlp": build_mlp,
    "resnet18": _lazy("dus_env.models.vision:build_resnet18"),
    "resnet50": _lazy("dus_env.models.vision:build_resnet50"),
    "r3d18": _lazy("dus_env.models.vision:build_r3d18"),
    "text_bag": _lazy("dus_env.models.text:build_text_bag"),
    "bert": _lazy("dus_env.models.text:build_bert"),
}
"""Encoder kind -> builder. ``ModelConfig.encoder`` must name one of these. ``resnet18`` /
``resnet50`` take ``(C, H, W)`` images or ``(T, C, H, W)`` frame stacks, ``r3d18`` video clips,
``text_bag`` / ``bert`` token ids (see :mod:`dus_env.models.vision` and :mod:`dus_env.models.text`)."""


def register_encoder(name: str, builder: EncoderBuilder, *, overwrite: bool = False) -> None:
    """Add an encoder kind to :data:`ENCODERS`."""
    if name in ENCODERS and not overwrite:
        raise ValueError(f"encoder {name!r} is already registered; pass overwrite=True to replace it")
    ENCODERS[name] = builder
