"""Two-view Fashion-MNIST: a rotated view and a noisy view of each clothing image.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, https://arxiv.org/abs/1708.07747; MIT licence,
https://github.com/zalandoresearch/fashion-mnist) has 60,000 train and 10,000 test 28 x 28
grey images of 10 clothing classes, stored as four idx files
``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (gzipped ``.gz`` or plain). Debian and Ubuntu
ship them in the package ``dataset-fashion-mnist`` (folder :data:`DEBIAN_ROOT`).

The two modalities follow Noisy-MNIST (Wang, Arora, Livescu and Bilmes, "On deep multi-view
representation learning", ICML 2015), with Gaussian instead of uniform noise:

* ``rotated``: the image rotated by an angle drawn uniformly from
  ``[-rotation, rotation]`` degrees (bilinear, zero padding);
* ``noisy``: with ``pairing="same_class"`` *another* image of the same class from the same
  split (a seeded derangement within each class), else the same image, unrotated, plus
  Gaussian noise of standard deviation ``noise`` on ``[0, 1]`` pixels, clipped to ``[0, 1]``.

The two views share only the class, so each is informative alone and they are complementary
under the noise. :func:`load_fashion_mnist` carves a seeded stratified validation split out of
the official train split, optionally takes seeded stratified subsets, builds the views, and
standardises every view with one mean and one standard deviation over all pixels of its train
split. Datasets are cached in memory per config (see :data:`CACHE_SIZE`).
"""

from __future__ import annotations

import gzip
import math
import os
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dus_env.config import FashionMNISTConfig
from dus_env.config.data import (
    FASHION_MNIST_DEBIAN_ROOT,
    FASHION_MNIST_ENV_VAR,
    FASHION_MNIST_PAIRINGS,
    FASHION_MNIST_VIEWS,
)
from dus_env.data.base import SPLITS, TensorDataset, TensorSplit, require_config
from dus_env.errors import DatasetError

ENV_VAR: str = FASHION_MNIST_ENV_VAR
"""Environment variable naming the folder with the four idx files."""
DEBIAN_ROOT: Path = Path(FASHION_MNIST_DEBIAN_ROOT)
"""Where ``apt-get install dataset-fashion-mnist`` puts the files (Debian, Ubuntu)."""
FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The four idx files (each may also end in ``.gz``; the gzipped one is preferred)."""
N_CLASSES: int = 10
"""Clothing classes 0..9."""
CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
"""Class names, by label."""
IMAGE_SHAPE: tuple[int, int] = (28, 28)
"""Height and width of every image."""
CANONICAL_COUNTS: tuple[int, int] = (60000, 10000)
"""Images in the official train and test splits."""
MODALITIES: tuple[str, ...] = FASHION_MNIST_VIEWS
"""The two views, in order."""
PAIRINGS: tuple[str, ...] = FASHION_MNIST_PAIRINGS
"""Valid values of :attr:`FashionMNISTConfig.pairing`."""
CACHE_SIZE: int = 4
"""Datasets kept in memory by :func:`load_fashion_mnist` (least recently used is dropped).
A full-size dataset holds about 450 MB of float32 tensors, so the cache holds at most ~1.8 GB."""

_IMAGE_MAGIC = 0x00000803
_LABEL_MAGIC = 0x00000801
_UBYTE = 0x08
_ROTATE_BATCH = 1024  # fastest on CPU: the batch's grid stays in cache
_HOW_TO_GET = (
    "Get the data with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, installs into "
    f"{DEBIAN_ROOT}) or download the four files from the dataset's own release "
    "(https://github.com/zalandoresearch/fashion-mnist#get-the-data) into a folder and set "
    f"data.root or ${ENV_VAR} to it."
)


class IdxFormatError(DatasetError):
    """An idx file (or a set of them) is not what Fashion-MNIST needs; the message names it
    (a :class:`~dus_env.errors.DatasetError`, so a ``ValueError``)."""


# ----------------------------------------------------------------------------- files
def read_idx(path: str | os.PathLike[str], ndim: int | None = None) -> np.ndarray:
    """The array stored in an idx file of unsigned bytes, gzipped or plain.

    The header is checked: two zero bytes, the dtype byte ``0x08`` (unsigned byte, the only
    type Fashion-MNIST uses), the dimension count (``ndim`` when given: 3 for image files,
    magic ``0x00000803``; 1 for label files, ``0x00000801``) and the declared sizes against the
    bytes that follow. Gzip is recognised by content, not by the file name. Returns a
    read-only ``uint8`` array of the declared shape. Raises :class:`IdxFormatError` naming the
    file and what is wrong, ``FileNotFoundError`` when it does not exist.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxFormatError(f"idx file {path} is a damaged gzip file ({exc})") from None
    if len(raw) < 4:
        raise IdxFormatError(
            f"idx file {path} has {len(raw)} bytes, fewer than the 4-byte idx header"
        )
    magic = int.from_bytes(raw[:4], "big")
    expected = {3: _IMAGE_MAGIC, 1: _LABEL_MAGIC}.get(ndim) if ndim is not None else None
    if raw[0] != 0 or raw[1] != 0:
        raise IdxFormatError(
            f"idx file {path} has magic number 0x{magic:08x}, not an idx header (images "
            f"0x{_IMAGE_MAGIC:08x}, labels 0x{_LABEL_MAGIC:08x})"
        )
    if raw[2] != _UBYTE:
        raise IdxFormatError(
            f"idx file {path} has magic number 0x{magic:08x}: dtype byte 0x{raw[2]:02x} is not "
            f"supported; valid choices: 0x{_UBYTE:02x} (unsigned byte)"
        )
    n_dims = raw[3]
    if ndim is not None and n_dims != ndim:
        want = f"0x{expected:08x}" if expected is not None else f"{ndim} dimensions"
        raise IdxFormatError(
            f"idx file {path} has magic number 0x{magic:08x} ({n_dims} dimensions); "
            f"expected {want} ({ndim} dimensions)"
        )
    if n_dims == 0:
        raise IdxFormatError(f"idx file {path} declares 0 dimensions")
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise IdxFormatError(
            f"idx file {path} is truncated: {n_dims} dimensions need a {header}-byte header, "
            f"the file has {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4))
    declared = math.prod(shape)
    actual = len(raw) - header
    if actual < declared:
        raise IdxFormatError(
            f"idx file {path} is truncated: its header declares shape {shape} = {declared} "
            f"bytes of data, the file has {actual}"
        )
    if actual > declared:
        raise IdxFormatError(
            f"idx file {path} has {actual - declared} bytes after the {declared} its header "
            f"declares (shape {shape}); the file is corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=declared, offset=header).reshape(shape)


def _scan(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The idx files found in ``folder`` (``.gz`` preferred) and the names of those missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for key, stem in FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(f"{stem}[.gz]")
    return found, missing


def _status(folder: Path) -> str:
    """Why ``folder`` is not a Fashion-MNIST folder, or "" when it is one."""
    if not folder.is_dir():
        return "does not exist" if not folder.exists() else "is not a folder"
    _, missing = _scan(folder)
    return f"lacks {', '.join(missing)}" if missing else ""


def find_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the four Fashion-MNIST idx files.

    Places, in order: ``root`` when given, else ``$DUS_FASHION_MNIST_ROOT`` when set (and not
    empty), else :data:`DEBIAN_ROOT`. The first place that is *set* is the one used: a given
    root or set variable that lacks the files is an error, never a silent fall-back to another
    copy. The ``FileNotFoundError`` lists all three places with what was found there, and how
    to get the data.
    """
    env = os.environ.get(ENV_VAR) or None
    places: list[tuple[str, Path | None]] = [
        ("data.root", Path(root).expanduser() if root is not None else None),
        (f"${ENV_VAR}", Path(env).expanduser() if env is not None else None),
        ("the Debian package folder", DEBIAN_ROOT),
    ]
    chosen = next(i for i, (_, folder) in enumerate(places) if folder is not None)
    folder = places[chosen][1]
    assert folder is not None
    problem = _status(folder)
    if not problem:
        return folder
    lines = []
    for i, (label, place) in enumerate(places):
        if place is None:
            state = "not given" if i == 0 else "not set"
        elif i == chosen:
            state = problem
        else:
            state = f"not consulted ({places[chosen][0]} is set and wins)"
        shown = label if place is None else f"{label} = {place}"
        lines.append(f"  {i + 1}. {shown}: {state}")
    raise FileNotFoundError(
        f"no Fashion-MNIST files in {folder} (from {places[chosen][0]}): it {problem}. "
        f"Places, in order:\n" + "\n".join(lines) + f"\n{_HOW_TO_GET}"
    )


def load_raw(
    root: str | os.PathLike[str] | None = None, *, expect_canonical: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_images, train_labels, test_images, test_labels)`` read from ``root``.

    ``root`` is resolved with :func:`find_root`. Images are read-only ``uint8`` arrays of shape
    ``(N, 28, 28)``, labels ``int64`` arrays of shape ``(N,)`` with values in ``0..9``. Checked:
    the idx headers (:func:`read_idx`), image size, equal image and label counts per split,
    the label range, and with ``expect_canonical`` the official 60,000 / 10,000 counts (any
    counts are accepted otherwise, so small copies work). Errors name the file.
    """
    folder = find_root(root)
    files, _ = _scan(folder)
    out: list[np.ndarray] = []
    for split, canonical in zip(("train", "test"), CANONICAL_COUNTS):
        image_path, label_path = files[f"{split}_images"], files[f"{split}_labels"]
        images = read_idx(image_path, ndim=3)
        labels = read_idx(label_path, ndim=1)
        if images.shape[1:] != IMAGE_SHAPE:
            raise IdxFormatError(
                f"idx file {image_path} holds {images.shape[1]} x {images.shape[2]} images; "
                f"Fashion-MNIST images are {IMAGE_SHAPE[0]} x {IMAGE_SHAPE[1]}"
            )
        if images.shape[0] != labels.shape[0]:
            raise IdxFormatError(
                f"{split} split: idx file {image_path} has {images.shape[0]} images but "
                f"{label_path} has {labels.shape[0]} labels; the counts must match"
            )
        if not images.shape[0]:
            raise IdxFormatError(f"idx file {image_path} holds no images; the {split} split "
                                 "needs at least one")
        if labels.size and int(labels.max()) >= N_CLASSES:
            bad = int(np.flatnonzero(labels >= N_CLASSES)[0])
            raise IdxFormatError(
                f"idx file {label_path} has label {int(labels[bad])} at index {bad}; "
                f"valid labels: 0..{N_CLASSES - 1}"
            )
        if expect_canonical and images.shape[0] != canonical:
            raise IdxFormatError(
                f"idx file {image_path} has {images.shape[0]} images; the official {split} "
                f"split has {canonical}. Set data.expect_canonical=False to use another copy"
            )
        out += [images, labels.astype(np.int64)]
    return out[0], out[1], out[2], out[3]


# ----------------------------------------------------------------------------- views
def rotate_images(
    images: torch.Tensor, degrees: torch.Tensor | np.ndarray, *, batch_size: int = _ROTATE_BATCH
) -> torch.Tensor:
    """``images`` (``(N, C, H, W)`` float) each rotated by its angle in ``degrees`` (``(N,)``).

    Rotation about the image centre with ``affine_grid`` + ``grid_sample`` (bilinear, zeros
    outside the image, ``align_corners=False``), in batches of ``batch_size`` to bound memory.
    Positive angles turn the image counter-clockwise as displayed (row 0 at the top). Returns
    a new tensor.
    """
    if images.dim() != 4:
        raise ValueError(f"rotate_images needs (N, C, H, W) images, got shape {tuple(images.shape)}")
    rad = torch.as_tensor(np.deg2rad(np.asarray(degrees, dtype=np.float64)))
    if rad.shape != (images.shape[0],):
        raise ValueError(
            f"rotate_images needs one angle per image: {images.shape[0]} images, "
            f"angles of shape {tuple(rad.shape)}"
        )
    cos, sin = torch.cos(rad), torch.sin(rad)
    zero = torch.zeros_like(rad)
    # output pixel (x, y) samples input (cos x - sin y, sin x + cos y), x right and y down
    theta = torch.stack(
        [torch.stack([cos, -sin, zero], dim=1), torch.stack([sin, cos, zero], dim=1)], dim=1
    ).to(images.dtype)
    out = torch.empty_like(images)
    for start in range(0, images.shape[0], batch_size):
        stop = min(start + batch_size, images.shape[0])
        chunk = images[start:stop]
        grid = F.affine_grid(theta[start:stop], list(chunk.shape), align_corners=False)
        out[start:stop] = F.grid_sample(
            chunk, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    return out


def pair_within_class(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each sample, the index of another sample of the same class (a seeded derangement).

    Within each class the samples are shuffled with ``rng`` and each points to the next one
    round the cycle, so every image is used exactly once as a partner and never for itself.
    Raises ``ValueError`` if a class has exactly one sample (no other image to pair with).
    """
    partner = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < 2:
            raise ValueError(
                f"class {int(cls)} has only 1 sample, so pairing='same_class' has no other "
                f"image to pair it with"
            )
        cycle = idx[rng.permutation(len(idx))]
        partner[cycle] = np.roll(cycle, -1)
    return partner


def stratified_take(
    labels: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``(taken, rest)``: sorted indices of exactly ``k`` samples, stratified by label, and
    of the others.

    Each class gets its share of ``k`` (largest remainder on ``k * class_count / n``, ties to
    the lower class), drawn from a ``rng`` permutation of the class. Requires ``k <= n``.
    """
    n = len(labels)
    if not 0 <= k <= n:
        raise ValueError(f"cannot take {k} of {n} samples")
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (k / n) if n else counts * 0.0
    alloc = np.floor(quota).astype(np.int64)
    short = k - int(alloc.sum())
    if short:
        order = np.argsort(-(quota - alloc), kind="stable")
        alloc[order[:short]] += 1
    taken: list[np.ndarray] = []
    for cls, m in zip(classes, alloc):
        idx = np.flatnonzero(labels == cls)
        taken.append(idx[rng.permutation(len(idx))[:m]])
    chosen = np.sort(np.concatenate(taken)) if taken else np.empty(0, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    mask[chosen] = False
    return chosen.astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent generator per purpose, all derived from ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=stream))


_SPLIT_STREAM, _TRAIN_STREAM, _TEST_STREAM = 0, 1, 2
_ROTATE_STREAM, _PAIR_STREAM, _NOISE_STREAM = 0, 1, 2


def _views(
    images: np.ndarray, labels: np.ndarray, config: FashionMNISTConfig, split_id: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """``(rotated, noisy, partner)`` for ``uint8`` images ``(N, 28, 28)`` of one split:
    float32 views ``(N, 1, 28, 28)`` on ``[0, 1]`` and the row view 2 shows, per row."""
    n = images.shape[0]
    pixels = torch.from_numpy(images).to(torch.float32).div_(255.0).unsqueeze(1)
    if config.rotation > 0:
        angles = _rng(config.seed, 10 + split_id, _ROTATE_STREAM).uniform(
            -config.rotation, config.rotation, size=n
        )
        rotated = rotate_images(pixels, angles)
    else:
        rotated = pixels.clone()
    if config.pairing == "same_class":
        partner = pair_within_class(labels, _rng(config.seed, 10 + split_id, _PAIR_STREAM))
        noisy = pixels[torch.from_numpy(partner)]
    else:
        partner = np.arange(n, dtype=np.int64)
        noisy = pixels
    if config.noise > 0:
        # torch's generator: ~2x faster than numpy's for normals; seeded from the same tree
        seed = int(_rng(config.seed, 10 + split_id, _NOISE_STREAM).integers(2**63 - 1))
        gen = torch.Generator().manual_seed(seed)
        eps = torch.randn(noisy.shape, generator=gen, dtype=torch.float32)
        noisy = eps.mul_(config.noise).add_(noisy).clamp_(0.0, 1.0)
    return rotated, noisy, partner


def _moments(x: torch.Tensor) -> tuple[float, float]:
    """Mean and (population) standard deviation over all elements of ``x``."""
    var, mean = torch.var_mean(x, correction=0)  # cascaded sums: float64-grade accuracy here
    return float(mean), math.sqrt(float(var))


@dataclass(frozen=True, eq=False)
class FashionMNISTDataset(TensorDataset):
    """A :class:`TensorDataset` that also records where every row came from.

    The tensors are shared by every caller of :func:`load_fashion_mnist` with the same config
    (it caches): index them (``split.get`` copies), never write to them in place.
    """

    source_index: dict[str, np.ndarray]
    """Per split, the row's index in the official file (train and val rows index the train
    file, test rows the test file); read-only, sorted."""
    pair_index: dict[str, np.ndarray]
    """Per split, the row (in the same split) whose image view 2 shows; read-only."""
    normalization: dict[str, tuple[float, float]]
    """Per modality, the ``(mean, std)`` of its train split on [0, 1] pixels, used for
    standardisation: ``pixels = x * std + mean``."""


def _build(config: FashionMNISTConfig, root: Path) -> FashionMNISTDataset:
    train_x, train_y, test_x, test_y = load_raw(root, expect_canonical=config.expect_canonical)
    most_val = len(train_y) - 2 * N_CLASSES  # leave 2 train images per class
    if config.val_size > most_val:
        raise ValueError(
            f"data.val_size={config.val_size} leaves fewer than {2 * N_CLASSES} of the "
            f"{len(train_y)} official train images for training; valid range: "
            f"[{2 * N_CLASSES}, {most_val}]"
        )
    if config.n_test is not None and config.n_test > len(test_y):
        raise ValueError(
            f"data.n_test={config.n_test} is more than the {len(test_y)} official test images; "
            f"valid range: [{2 * N_CLASSES}, {len(test_y)}] or None"
        )
    val_idx, pool = stratified_take(
        train_y, config.val_size, _rng(config.seed, _SPLIT_STREAM)
    )
    if config.n_train is None:
        train_idx = pool
    else:
        if config.n_train > len(pool):
            raise ValueError(
                f"data.n_train={config.n_train} is more than the {len(pool)} train images left "
                f"after data.val_size={config.val_size}; valid range: [20, {len(pool)}] or None"
            )
        chosen, _ = stratified_take(train_y[pool], config.n_train, _rng(config.seed, _TRAIN_STREAM))
        train_idx = pool[chosen]
    if config.n_test is None:
        test_idx = np.arange(len(test_y), dtype=np.int64)
    else:
        test_idx, _ = stratified_take(test_y, config.n_test, _rng(config.seed, _TEST_STREAM))

    sources = {"train": (train_x, train_y, train_idx), "val": (train_x, train_y, val_idx),
               "test": (test_x, test_y, test_idx)}
    views: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    partners: dict[str, np.ndarray] = {}
    for split_id, split in enumerate(SPLITS):
        images, labels, idx = sources[split]
        try:
            rotated, noisy, partner = _views(images[idx], labels[idx], config, split_id)
        except ValueError as exc:
            raise ValueError(
                f"{split} split: {exc}; raise data.n_train / data.val_size / data.n_test"
            ) from None
        views[split] = (rotated, noisy)
        partners[split] = partner

    normalization: dict[str, tuple[float, float]] = {}
    for m, modality in enumerate(MODALITIES):
        mean, std = _moments(views["train"][m])
        std = max(std, 1e-6)
        normalization[modality] = (mean, std)
        for split in SPLITS:
            views[split][m].sub_(mean).div_(std)

    splits: dict[str, TensorSplit] = {}
    for split in SPLITS:
        _, labels, idx = sources[split]
        splits[split] = TensorSplit(
            features=dict(zip(MODALITIES, views[split])),
            labels=torch.from_numpy(labels[idx].copy()),
        )
        for arr in (idx, partners[split]):
            arr.flags.writeable = False
    return FashionMNISTDataset(
        name="fashion_mnist", modalities=MODALITIES, n_classes=N_CLASSES, splits=splits,
        source_index={s: sources[s][2] for s in SPLITS}, pair_index=partners,
        normalization=normalization,
    )


_CACHE: OrderedDict[tuple[object, ...], FashionMNISTDataset] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Drop every dataset :func:`load_fashion_mnist` keeps in memory."""
    with _CACHE_LOCK:
        _CACHE.clear()


def load_fashion_mnist(config: FashionMNISTConfig) -> FashionMNISTDataset:
    """Two-view Fashion-MNIST as a :class:`TensorDataset` (splits train / val / test).

    Modalities ``("rotated", "noisy")``, 10 classes, float32 inputs of shape
    ``(N, 1, 28, 28)``, int64 labels. ``val`` is a seeded stratified carve of
    ``config.val_size`` images out of the official train split, ``train`` the rest (or a seeded
    stratified subset of ``config.n_train``), ``test`` the official test split (or a subset of
    ``config.n_test``). Views are built per split (a ``same_class`` partner comes from the same
    split), then standardised with the train split's mean and std per view. Everything is
    seeded by ``config.seed`` with private generators; the global RNGs are never touched.

    The result is cached in memory, keyed by the config, the resolved folder and its four
    files' size and modification time; up to :data:`CACHE_SIZE` datasets are kept, least
    recently used dropped first. The same config returns the same object: do not modify it.
    """
    require_config("load_fashion_mnist", config, FashionMNISTConfig)
    root = find_root(config.root).resolve()
    files, _ = _scan(root)
    stamp = []
    for key_name in FILES:
        st = files[key_name].stat()
        stamp.append((str(files[key_name]), st.st_size, st.st_mtime_ns))
    key = (config, str(root), tuple(stamp))
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    dataset = _build(config, root)
    with _CACHE_LOCK:
        dataset = _CACHE.setdefault(key, dataset)  # a concurrent build of the same key wins
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return dataset


__all__ = [
    "CACHE_SIZE", "CLASSES", "DEBIAN_ROOT", "ENV_VAR", "FILES", "MODALITIES", "N_CLASSES",
    "FashionMNISTConfig", "FashionMNISTDataset", "IdxFormatError", "clear_cache", "find_root",
    "load_fashion_mnist", "load_raw", "pair_within_class", "read_idx", "rotate_images",
    "stratified_take",
]
