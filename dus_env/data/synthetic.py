"""A seeded synthetic multimodal dataset with a controllable modality imbalance.

Modality ``j`` draws each sample of class ``c`` from one of ``clusters_per_class[j]``
Gaussian blobs (unit noise) whose centres are scaled by ``separation[j]``. A modality with one
blob per class and a large separation is *strong*: linearly separable, learned in a few
iterations. A modality with many blobs per class and a small separation is *weak*: its class
boundaries are nonlinear, so it keeps improving with more samples long after the strong one has
saturated (learning-limited, the regime in which DUS can matter). In modality ``j`` the first
``confused_pairs[j]`` class pairs (0, 1), (2, 3), ... share their blobs, so that modality cannot
tell them apart and the fused prediction needs the other modality for those classes
(complementary information).

Every sample index is one paired example: its label is shared by all modalities and each
modality's blob is drawn independently given the label.
"""

from __future__ import annotations

import numpy as np
import torch

from dus_env.config import SyntheticConfig
from dus_env.data.base import TensorDataset, TensorSplit


def _centres(config: SyntheticConfig, j: int, rng: np.random.Generator) -> np.ndarray:
    """Blob centres of modality ``j``, shape ``(n_classes, clusters, dim)``."""
    k = config.clusters_per_class[j]
    centres = rng.normal(size=(config.n_classes, k, config.dim)) * config.separation[j]
    for pair in range(config.confused_pairs[j]):
        centres[2 * pair + 1] = centres[2 * pair]
    return centres


def _draw(
    centres: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    n_classes, k, dim = centres.shape
    cluster = rng.integers(0, k, size=len(labels))
    noise = rng.normal(size=(len(labels), dim))
    return (centres[labels, cluster] + noise).astype(np.float32)


def make_synthetic(config: SyntheticConfig) -> TensorDataset:
    """Generate the dataset described by ``config`` (deterministic in ``config.seed``)."""
    rng = np.random.default_rng(config.seed)
    centres = [_centres(config, j, rng) for j in range(len(config.modalities))]
    splits = {}
    for split, n in (("train", config.n_train), ("val", config.n_val), ("test", config.n_test)):
        labels = np.arange(n) % config.n_classes
        labels = labels[rng.permutation(n)]
        features = {
            modality: torch.from_numpy(_draw(centres[j], labels, rng))
            for j, modality in enumerate(config.modalities)
        }
        splits[split] = TensorSplit(features=features, labels=torch.from_numpy(labels.astype(np.int64)))
    return TensorDataset(
        name="synthetic",
        modalities=tuple(config.modalities),
        n_classes=config.n_classes,
        splits=splits,
    )
