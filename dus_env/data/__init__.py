"""Datasets: one protocol (:mod:`dus_env.data.base`) and small per-format readers.

:func:`make_dataset` builds the dataset a config describes; :data:`DATASETS` maps each
dataset kind to its builder (imported lazily, so ``import dus_env`` stays cheap).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from dus_env.data.base import SPLITS, DatasetSplit, MultimodalDataset, TensorDataset, TensorSplit
from dus_env.errors import check_choice

DATASETS: dict[str, str] = {
    "synthetic": "dus_env.data.synthetic:make_synthetic",
    "mfeat": "dus_env.data.mfeat:load_mfeat",
    "cremad": "dus_env.data.audiovisual:load_cremad",
    "kinetics_sounds": "dus_env.data.audiovisual:load_kinetics_sounds",
    "twitter2015": "dus_env.data.image_text:load_twitter2015",
    "sarcasm": "dus_env.data.image_text:load_sarcasm",
    "nvgesture": "dus_env.data.nvgesture:load_nvgesture",
    "features": "dus_env.data.features:load_features",
}
"""Dataset kind -> ``module:function`` building a :class:`MultimodalDataset` from its config."""


def _builder(kind: str) -> Callable[[Any], MultimodalDataset]:
    check_choice("data.name", kind, DATASETS)
    module, func = DATASETS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def make_dataset(config: Any) -> MultimodalDataset:
    """Build the dataset for a data config (``SyntheticConfig``, ``MfeatConfig``, ...)."""
    return _builder(config.name)(config)


__all__ = [
    "DATASETS",
    "SPLITS",
    "DatasetSplit",
    "MultimodalDataset",
    "TensorDataset",
    "TensorSplit",
    "make_dataset",
]
