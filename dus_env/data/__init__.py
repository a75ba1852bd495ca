"""Datasets: one protocol (:mod:`dus_env.data.base`) and small per-format readers.

:func:`make_dataset` builds the dataset a config describes: each data config class names its
reader (``module:function``, imported on first use, so ``import dus_env`` stays cheap); the
kinds are :data:`dus_env.config.DATA_CONFIGS`.
"""

from __future__ import annotations

import importlib
from typing import Any

from dus_env.data.base import SPLITS, DatasetSplit, MultimodalDataset, TensorDataset, TensorSplit
from dus_env.errors import check_choice

def make_dataset(config: Any) -> MultimodalDataset:
    """Build the dataset for a data config (``SyntheticConfig``, ``MfeatConfig``, ...): the
    ``reader`` its class names (``module:function``), imported on first use."""
    from dus_env.config import DATA_CONFIGS

    kind = getattr(config, "name", None)
    check_choice("data.name", kind, DATA_CONFIGS)
    module, func = type(config).reader.split(":")
    return getattr(importlib.import_module(module), func)(config)


__all__ = [
    "SPLITS",
    "DatasetSplit",
    "MultimodalDataset",
    "TensorDataset",
    "TensorSplit",
    "make_dataset",
]
