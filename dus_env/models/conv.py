"""A small convolutional encoder for small images, trained from scratch (cheap on CPU).

:func:`build_small_cnn` follows the encoder-builder contract of :mod:`dus_env.models.encoders`:
it takes the shape of one sample, ``(C, H, W)``, and a config with ``feature_dim`` and
``hidden_dims``, and returns a module mapping ``(N, C, H, W)`` batches to ``(N, feature_dim)``
features. Architecture, one block per channel width::

    [Conv2d(c_in -> width, 3x3, padding 1) -> ReLU -> MaxPool2d(2)] per width
    -> Flatten -> Linear(-> feature_dim) -> ReLU

The widths are ``config.hidden_dims`` when it has two or more entries, else
:data:`DEFAULT_WIDTHS` ``(16, 32)``: a single entry is the MLP's hidden width (``ModelConfig``'s
default is ``(128,)``) and would make a one-block network, so it is not read as conv widths.
For 28 x 28 inputs the defaults give 16 x 14 x 14 then 32 x 7 x 7 maps and a 1,568-wide linear
layer. Every block halves H and W (floor), so at most ``floor(log2(min(H, W)))`` blocks fit.

Parameters are initialised from torch's global generator, like every ``nn`` layer: build it
inside :func:`dus_env.seeding.torch_rng` for a seeded, side-effect-free initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from torch import nn

DEFAULT_WIDTHS: tuple[int, ...] = (16, 32)
"""Channel widths of the two conv blocks when ``config.hidden_dims`` has fewer than 2 entries."""


class _EncoderConfig(Protocol):
    """What :func:`build_small_cnn` reads from its config (``ModelConfig`` has both)."""

    @property
    def feature_dim(self) -> int: ...

    @property
    def hidden_dims(self) -> Sequence[int]: ...


def conv_widths(config: _EncoderConfig) -> tuple[int, ...]:
    """The channel widths :func:`build_small_cnn` uses for ``config`` (see the module doc)."""
    dims = tuple(int(d) for d in config.hidden_dims)
    return dims if len(dims) >= 2 else DEFAULT_WIDTHS


def build_small_cnn(input_shape: tuple[int, ...], config: _EncoderConfig) -> nn.Module:
    """A from-scratch CNN for ``(C, H, W)`` inputs, ending in ``Linear -> ReLU`` to
    ``config.feature_dim`` (see the module doc for the layers and how widths are chosen).

    Raises ``ValueError`` naming the input shape when it is not ``(C, H, W)`` with positive
    sizes, or naming ``model.hidden_dims`` when there are more blocks than the size allows.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"the small_cnn encoder needs (C, H, W) inputs with positive sizes, got input "
            f"shape {tuple(input_shape)}"
        )
    widths = conv_widths(config)
    if min(widths) < 1:
        raise ValueError(f"model.hidden_dims={tuple(config.hidden_dims)!r}: widths must be >= 1")
    channels, height, width = shape
    max_blocks = math.floor(math.log2(min(height, width)))
    if len(widths) > max_blocks:
        raise ValueError(
            f"model.hidden_dims={tuple(config.hidden_dims)!r} asks for {len(widths)} conv "
            f"blocks, but each halves H and W and input shape {shape} allows at most "
            f"{max_blocks} (fewer than 2 widths means the default {DEFAULT_WIDTHS})"
        )
    layers: list[nn.Module] = []
    for out_channels in widths:
        layers += [
            nn.Conv2d(channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        channels, height, width = out_channels, height // 2, width // 2
    layers += [
        nn.Flatten(),
        nn.Linear(channels * height * width, int(config.feature_dim)),
        nn.ReLU(),
    ]
    return nn.Sequential(*layers)


__all__ = ["DEFAULT_WIDTHS", "build_small_cnn", "conv_widths"]
