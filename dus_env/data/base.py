"""The one dataset protocol every reader implements.

A multimodal dataset is a set of *paired* samples: index ``i`` of every modality belongs to
the same example and shares one label. Datasets expose three splits (``train``, ``val``,
``test``); each split returns tensors for any list of indices, per modality. Readers for new
formats implement :class:`MultimodalDataset` and register a builder in
a config class (:func:`dus_env.config.register_dataset`); nothing else needs to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

SPLITS: tuple[str, ...] = ("train", "val", "test")


def require_config(loader: str, config: object, expected: type) -> None:
    """Raise the TypeError a reader gives when handed a config of another kind."""
    if not isinstance(config, expected):
        raise TypeError(
            f"{loader} needs a config of type {expected.__name__}, got {type(config).__name__}"
        )


@runtime_checkable
class DatasetSplit(Protocol):
    """One split of a paired multimodal dataset."""

    @property
    def labels(self) -> torch.Tensor:
        """Class index per sample, int64, shape ``(len(self),)``."""
        ...

    def __len__(self) -> int: ...

    def get(self, modality: str, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Inputs of ``modality`` for ``indices`` (rows in the order given)."""
        ...


@runtime_checkable
class MultimodalDataset(Protocol):
    """A paired dataset with named modalities and train/val/test splits."""

    @property
    def name(self) -> str: ...

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names, in the order every per-modality vector of the package uses."""
        ...

    @property
    def n_classes(self) -> int: ...

    @property
    def input_shapes(self) -> Mapping[str, tuple[int, ...]]:
        """Shape of one sample of each modality (without the batch axis)."""
        ...

    def split(self, name: str) -> DatasetSplit: ...


@dataclass(frozen=True, eq=False)
class TensorSplit:
    """An in-memory split: one float tensor per modality and one label tensor."""

    features: Mapping[str, torch.Tensor]
    labels: torch.Tensor

    def __post_init__(self) -> None:
        n = int(self.labels.shape[0])
        for modality, x in self.features.items():
            if int(x.shape[0]) != n:
                raise ValueError(
                    f"modality {modality!r} has {int(x.shape[0])} rows but there are {n} labels"
                )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def get(self, modality: str, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        try:
            x = self.features[modality]
        except KeyError:
            raise KeyError(
                f"unknown modality {modality!r}; valid choices: {sorted(self.features)}"
            ) from None
        return x[torch.as_tensor(indices, dtype=torch.long)]


@dataclass(frozen=True, eq=False)
class TensorDataset:
    """A multimodal dataset held in memory as tensors (synthetic data, mfeat, features mode)."""

    name: str
    modalities: tuple[str, ...]
    n_classes: int
    splits: Mapping[str, TensorSplit]

    def __post_init__(self) -> None:
        if len(self.modalities) < 2:
            raise ValueError(
                f"a multimodal dataset needs at least 2 modalities, got {list(self.modalities)}"
            )
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"dataset {self.name!r} lacks splits {missing}; needs {list(SPLITS)}")
        for split_name, split in self.splits.items():
            absent = [m for m in self.modalities if m not in split.features]
            if absent:
                raise ValueError(f"split {split_name!r} of {self.name!r} lacks modalities {absent}")

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        train = self.splits["train"]
        return {m: tuple(train.features[m].shape[1:]) for m in self.modalities}

    def split(self, name: str) -> TensorSplit:
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}; valid choices: {list(SPLITS)}")
        return self.splits[name]


def stratified_split(
    labels: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
) -> list[np.ndarray]:
    """Split indices into parts with the given fractions, stratified by label.

    Each class is shuffled with ``rng`` and cut by ``fractions`` (which must sum to 1); the
    parts are returned sorted. Deterministic for a given generator state.
    """
    fractions = np.asarray(fractions, dtype=float)
    if fractions.min() <= 0 or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions.tolist()}")
    parts: list[list[int]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        cuts = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.extend(chunk.tolist())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def standardize(
    train: torch.Tensor, *others: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, ...]:
    """Standardise features with mean and std fitted on ``train`` only."""
    mean = train.mean(dim=0, keepdim=True)
    std = train.std(dim=0, keepdim=True).clamp_min(eps)
    return tuple((x - mean) / std for x in (train, *others))
