"""Datasets: one protocol (:mod:`dus_env.data.base`) and small per-format readers.

:func:`make_dataset` builds the dataset a config describes: each data config class names its
reader (``module:function``, imported on first use, so ``import dus_env`` stays cheap); the
kinds are :data:`dus_env.config.DATA_CONFIGS`.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections import OrderedDict
from typing import Any

from dus_env.data.base import SPLITS, DatasetSplit, MultimodalDataset, TensorDataset, TensorSplit
from dus_env.errors import check_choice

DATASET_CACHE_SIZE = 64
"""Datasets kept in memory, most recently used first (configs are frozen, so a config is its
own key); a reset of a task suite never rebuilds data it built before."""
_CACHE: OrderedDict[Any, MultimodalDataset] = OrderedDict()
_LOCK = threading.Lock()


def make_dataset(config: Any, *, cache: bool = True) -> MultimodalDataset:
    """The dataset for a data config (``SyntheticConfig``, ``MfeatConfig``, ...), built by the
    ``reader`` its class names (``module:function``, imported on first use) and kept in a
    bounded in-memory cache (:data:`DATASET_CACHE_SIZE`); ``cache=False`` builds a fresh one.
    Datasets are read-only, so envs share them. Only kinds whose config fully determines the
    data are cached (``cacheable`` on the config class: synthetic, mfeat); readers of files on
    disk decide for themselves."""
    from dus_env.config import DATA_CONFIGS

    kind = getattr(config, "name", None)
    check_choice("data.name", kind, DATA_CONFIGS)
    cache = cache and getattr(type(config), "cacheable", False)
    if cache:
        with _LOCK:
            if config in _CACHE:
                _CACHE.move_to_end(config)
                return _CACHE[config]
    module, func = type(config).reader.split(":")
    dataset = getattr(importlib.import_module(module), func)(config)
    if cache:
        with _LOCK:
            _CACHE[config] = dataset
            while len(_CACHE) > DATASET_CACHE_SIZE:
                _CACHE.popitem(last=False)
    return dataset


def data_fingerprint(dataset: MultimodalDataset, splits: tuple[str, ...] = ("train", "val")
                     ) -> str:
    """A SHA-256 of what training on ``dataset`` reads from ``splits``: every tensor and label of
    an in-memory split; of a file-backed one, every item's key, label and media paths with
    their sizes and modification times (and preloaded tensors such as token ids).

    Two datasets built from one config can differ when the config does not fix the data (a
    features file found through an environment variable, a file rebuilt at the same path): the
    paired reward's reference cache keys its curves on this. Computed once per dataset object.
    """
    import hashlib
    import json
    import os

    with _LOCK:
        known = _FINGERPRINTS.get(dataset, {}).get(splits)
    if known is not None:
        return known
    digest = hashlib.sha256()

    def tensor(name: str, t: Any) -> None:
        t = t.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes())

    for name in splits:
        split = dataset.split(name)
        if hasattr(split, "features"):
            tensor(f"{name}/labels", split.labels)
            for modality in sorted(split.features):
                tensor(f"{name}/{modality}", split.features[modality])
            continue
        for modality in sorted(getattr(split, "preloaded", {})):
            tensor(f"{name}/{modality}", split.preloaded[modality])
        for item in split.items:
            media = {}
            for modality, path in sorted(item.media.items()):
                try:
                    st = os.stat(path)
                    media[modality] = [str(path), st.st_size, st.st_mtime_ns]
                except OSError:
                    media[modality] = [str(path), None, None]
            digest.update(json.dumps([name, item.key, item.label, media]).encode())
    value = digest.hexdigest()
    with _LOCK:
        _FINGERPRINTS.setdefault(dataset, {})[splits] = value
    return value


_FINGERPRINTS: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], str]] = (
    weakref.WeakKeyDictionary())
"""Fingerprints of live datasets (datasets are read-only; one goes with its dataset)."""


def clear_dataset_cache() -> None:
    """Forget every cached dataset."""
    with _LOCK:
        _CACHE.clear()


__all__ = [
    "SPLITS",
    "DatasetSplit",
    "MultimodalDataset",
    "TensorDataset",
    "TensorSplit",
    "clear_dataset_cache",
    "data_fingerprint",
    "make_dataset",
]
