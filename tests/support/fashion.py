"""A tiny generated Fashion-MNIST copy (idx files) for the Fashion tests.

The copy holds 200 train / 50 test images with class-dependent patterns (class ``c`` lights a
bar at rows ``2c + 4 .. 2c + 7``), so views can be checked pixel by pixel and a CNN learns them
in a few steps. Nothing downloads. The fixtures built on it live in
``tests/dus_env/data/conftest.py``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

N_TRAIN, N_TEST, VAL = 200, 50, 40


def write_idx(path: Path, array: np.ndarray, *, magic: bytes | None = None, cut: int = 0,
              gz: bool = True) -> Path:
    """Write ``array`` (uint8) as an idx file; ``magic`` replaces the 4 header bytes, ``cut``
    drops that many bytes from the end."""
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    data = header + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data += np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if cut:
        data = data[:-cut]
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` balanced labels and 28 x 28 uint8 images: noise plus a bar at rows 2c..2c+3."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 * c + 4: 2 * c + 8, 6:22] = 200 + rng.integers(0, 55)
    return images, labels


def write_copy(folder: Path, *, gz: bool = True, n_train: int = N_TRAIN,
               n_test: int = N_TEST) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n, seed in (("train", n_train, 1), ("t10k", n_test, 2)):
        images, labels = make_images(n, seed)
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images, gz=gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", labels, gz=gz)
    return folder
