"""ResNet encoders for images, frame stacks and video clips.

One residual network, written for 2D (images, spectrograms) or 3D (video) convolutions, with
torchvision's layer names, so a torchvision ImageNet checkpoint (``resnet18-f37072fd.pth``,
``resnet50-0676ba61.pth``) loads into it from a local file. torchvision itself is never used,
so a seed gives the same starting weights with or without it installed.

Encoders by input shape (one sample, no batch axis):

* ``(C, H, W)``: a 2D ResNet with ``C`` input channels (audio spectrogram ``C = 1``, image ``3``);
* ``(T, C, H, W)`` with ``resnet18`` / ``resnet50``: the 2D ResNet on every frame, features
  averaged over time (OGM-GE's visual encoder);
* ``(T, C, H, W)`` with ``r3d18``: a 3D ResNet-18 over the clip (the video encoder for NVGesture).

Every encoder ends with a linear projection to ``ModelConfig.feature_dim`` (none when the width
already matches).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from dus_env.config import ModelConfig


def _conv(dims: int, cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Module:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    return conv(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


def _norm(dims: int, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm3d(channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, dims: int, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(dims, cin, width, 3, stride)
        self.bn1 = _norm(dims, width)
        self.conv2 = _conv(dims, width, width, 3)
        self.bn2 = _norm(dims, width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(dims, cin, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4, residual (ResNet-50)."""

    expansion = 4

    def __init__(self, dims: int, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv(dims, cin, width, 1)
        self.bn1 = _norm(dims, width)
        self.conv2 = _conv(dims, width, width, 3, stride)
        self.bn2 = _norm(dims, width)
        self.conv3 = _conv(dims, width, width * 4, 1)
        self.bn3 = _norm(dims, width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(dims, cin, width * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _shortcut(dims: int, cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(_conv(dims, cin, cout, 1, stride), _norm(dims, cout))


class ResNet(nn.Module):
    """A ResNet trunk without its classifier: input ``(B, C, ...)``, output ``(B, out_dim)``.

    ``dims=3`` gives the R3D layout: a (3, 7, 7) stem with temporal stride 1 and no max-pool.
    """

    def __init__(self, block: type[BasicBlock | Bottleneck], layers: tuple[int, ...],
                 in_channels: int = 3, dims: int = 2) -> None:
        super().__init__()
        if dims == 2:
            self.conv1: nn.Module = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv3d(in_channels, 64, (3, 7, 7), stride=(1, 2, 2),
                                   padding=(1, 3, 3), bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = _norm(dims, 64)
        self.relu = nn.ReLU(inplace=True)
        cin = 64
        for i, (n_blocks, width) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
            blocks = []
            for b in range(n_blocks):
                stride = 2 if (b == 0 and i > 1) else 1
                blocks.append(block(dims, cin, width, stride))
                cin = width * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.out_dim = cin
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


ARCHS: dict[str, tuple[type[BasicBlock | Bottleneck], tuple[int, ...]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def resnet_trunk(arch: str, in_channels: int) -> nn.Module:
    """A 2D ResNet trunk (``out_dim`` attribute set): always this module's :class:`ResNet`.

    torchvision's ResNet is never used, even where it imports: it builds a classifier layer
    and initialises in another order, so one seed gave other starting weights on machines
    with and without torchvision (and a paired-reward cache shared between them mixed the
    two). torchvision checkpoints load into this one (:func:`load_local_weights`)."""
    block, layers = ARCHS[arch]
    return ResNet(block, layers, in_channels, dims=2)


def load_local_weights(trunk: nn.Module, path: str) -> None:
    """Load a torchvision-style checkpoint from a local file into ``trunk``.

    The classifier (``fc.*``) is dropped; when the first convolution has a different number of
    input channels (1-channel spectrograms), its pretrained kernel is averaged over channels
    and repeated.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"model.weights file {file} does not exist (nothing is downloaded)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    w = state.get("conv1.weight")
    target = trunk.conv1.weight
    if w is not None and w.shape[1] != target.shape[1]:
        state["conv1.weight"] = w.mean(dim=1, keepdim=True).repeat(1, target.shape[1], 1, 1)
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{file} does not fit this ResNet: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


class ResNetEncoder(nn.Module):
    """A ResNet trunk on images ``(B, C, H, W)``, or on every frame of ``(B, T, C, H, W)``
    followed by a mean over time; then the projection to ``feature_dim``."""

    def __init__(self, trunk: nn.Module, feature_dim: int, frames: bool) -> None:
        super().__init__()
        self.trunk = trunk
        self.frames = frames
        out = trunk.out_dim
        self.proj = nn.Identity() if out == feature_dim else nn.Linear(out, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frames:
            b, t = x.shape[:2]
            x = self.trunk(x.flatten(0, 1)).view(b, t, -1).mean(dim=1)
        else:
            x = self.trunk(x)
        return self.proj(x)


class VideoEncoder(nn.Module):
    """A 3D ResNet-18 over ``(B, T, C, H, W)`` clips, then the projection to ``feature_dim``."""

    def __init__(self, in_channels: int, feature_dim: int) -> None:
        super().__init__()
        self.trunk = ResNet(BasicBlock, (2, 2, 2, 2), in_channels, dims=3)
        out = self.trunk.out_dim
        self.proj = nn.Identity() if out == feature_dim else nn.Linear(out, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.trunk(x.transpose(1, 2)))


def _build_2d(arch: str, input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    if len(input_shape) not in (3, 4):
        raise ValueError(
            f"encoder {arch!r} needs samples shaped (C, H, W) or (T, C, H, W), got {input_shape}"
        )
    frames = len(input_shape) == 4
    trunk = resnet_trunk(arch, input_shape[1] if frames else input_shape[0])
    path = config.weights_for(arch)
    if path is not None:
        load_local_weights(trunk, path)
    return ResNetEncoder(trunk, config.feature_dim, frames)


def build_resnet18(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    """ResNet-18 (from scratch unless ``model.weights`` names a local checkpoint)."""
    return _build_2d("resnet18", input_shape, config)


def build_resnet50(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    """ResNet-50 (ImageNet weights from a local ``resnet50-0676ba61.pth`` via ``model.weights``)."""
    return _build_2d("resnet50", input_shape, config)


def build_r3d18(input_shape: tuple[int, ...], config: ModelConfig) -> nn.Module:
    """3D ResNet-18 video encoder over ``(T, C, H, W)`` clips (local weights optional)."""
    if len(input_shape) != 4:
        raise ValueError(f"encoder 'r3d18' needs samples shaped (T, C, H, W), got {input_shape}")
    enc = VideoEncoder(input_shape[1], config.feature_dim)
    path = config.weights_for("r3d18")
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"model.weights file {file} does not exist")
        enc.trunk.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    return enc
