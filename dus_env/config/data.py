"""Data configs: one frozen dataclass per dataset kind, selected by its ``name`` field.

Readers live in :mod:`dus_env.data` (registered in :data:`dus_env.registry.DATASETS`). The
file-backed benchmarks (CREMA-D, Kinetics-Sounds, Twitter2015, Sarcasm, NVGesture) share
:class:`FileDatasetConfig`; their on-disk layouts are documented in docs/datasets.md.
``root=None`` means "resolve at load time from the environment": the per-dataset variable (e.g.
``DUS_CREMAD_ROOT``), else ``DUS_DATA_ROOT/<name>``. Two-view Fashion-MNIST
(:class:`FashionMNISTConfig`) reads the four official idx files from its own folder instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, Literal, Union

from dus_env.config.fields import check_fields
from dus_env.errors import check_choice, check_range

MFEAT_VIEWS: tuple[str, ...] = ("fou", "fac", "kar", "pix", "zer", "mor")
ON_ERROR: tuple[str, ...] = ("raise", "skip")
FASHION_MNIST_VIEWS: tuple[str, ...] = ("rotated", "noisy")
"""The two Fashion-MNIST modalities, in order (:mod:`dus_env.data.fashion_mnist`)."""
FASHION_MNIST_PAIRINGS: tuple[str, ...] = ("same_class", "same_image")
"""Valid values of :attr:`FashionMNISTConfig.pairing`."""
FASHION_MNIST_ENV_VAR: str = "DUS_FASHION_MNIST_ROOT"
"""Environment variable naming the folder with the four Fashion-MNIST idx files."""
FASHION_MNIST_DEBIAN_ROOT: str = "/usr/share/datasets/fashion-mnist"
"""Where ``apt-get install dataset-fashion-mnist`` puts the files (Debian, Ubuntu)."""
_FASHION_MNIST_MIN_SPLIT = 20  # 2 images per class (10 classes): same_class pairing needs 2


def _check_modalities(field: str, names: tuple[str, ...]) -> None:
    if len(names) < 2:
        raise ValueError(f"{field}={list(names)!r} needs at least 2 modalities")
    if len(set(names)) != len(names):
        raise ValueError(f"{field}={list(names)!r} has duplicate names")
    for name in names:
        if not name.strip():
            raise ValueError(f"{field}={list(names)!r} has an empty name")


@dataclass(frozen=True)
class SyntheticConfig:
    """A seeded generator of paired Gaussian-mixture modalities with controlled imbalance.

    Every class of modality ``j`` is a mixture of ``clusters_per_class[j]`` Gaussian blobs in
    ``dim`` dimensions; more clusters make the modality harder to learn (a nonlinear boundary),
    ``separation[j]`` sets how far apart the blobs are (signal strength), and the first
    ``confused_pairs[j]`` class pairs share their blobs in modality ``j`` (that modality cannot
    separate them, so the other modality carries complementary information).
    """

    name: Literal["synthetic"] = "synthetic"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.synthetic:make_synthetic"
    """``module:function`` building the dataset from this config."""
    cacheable: ClassVar[bool] = True
    """The config alone determines the data, so built datasets are cached."""
    modalities: tuple[str, ...] = ("strong", "weak")
    """Modality names (M >= 2)."""
    n_classes: int = 10
    """Number of classes."""
    dim: int = 32
    """Input dimension of every modality."""
    clusters_per_class: tuple[int, ...] = (1, 8)
    """Gaussian blobs per class, per modality (learning difficulty)."""
    separation: tuple[float, ...] = (3.0, 0.7)
    """Blob-centre scale relative to unit noise, per modality (signal strength)."""
    confused_pairs: tuple[int, ...] = (3, 0)
    """Number of class pairs ((0,1), (2,3), ...) each modality cannot tell apart."""
    n_train: int = 20000
    """Training samples."""
    n_val: int = 2000
    """Validation samples (model selection and the env's reward)."""
    n_test: int = 4000
    """Test samples (reported, never tuned on)."""
    seed: int = 0
    """Seed of the generated data (the dataset is the same across env episodes)."""

    def __post_init__(self) -> None:
        check_fields(self, "data")
        _check_modalities("data.modalities", self.modalities)
        m = len(self.modalities)
        for fname in ("clusters_per_class", "separation", "confused_pairs"):
            if len(getattr(self, fname)) != m:
                raise ValueError(
                    f"data.{fname}={getattr(self, fname)!r} needs one value per modality ({m})"
                )
        check_range("data.n_classes", self.n_classes, 2)
        check_range("data.dim", self.dim, 1)
        for fname in ("n_train", "n_val", "n_test"):
            check_range(f"data.{fname}", getattr(self, fname), self.n_classes)
        for c in self.clusters_per_class:
            check_range("data.clusters_per_class", c, 1)
        for s in self.separation:
            check_range("data.separation", s, 0.0, low_inclusive=False)
        for p in self.confused_pairs:
            check_range("data.confused_pairs", p, 0, self.n_classes // 2)
        check_range("data.seed", self.seed, 0)


@dataclass(frozen=True)
class MfeatConfig:
    """The UCI Multiple Features handwritten digits (2,000 samples, 10 classes, 6 views)."""

    name: Literal["mfeat"] = "mfeat"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.mfeat:load_mfeat"
    """``module:function`` building the dataset from this config."""
    cacheable: ClassVar[bool] = True
    """The config alone determines the data, so built datasets are cached."""
    views: tuple[str, ...] = ("fac", "zer")
    """Feature views used as modalities (any >= 2 of fou, fac, kar, pix, zer, mor)."""
    val_fraction: float = 0.15
    """Fraction of samples in the validation split (stratified)."""
    test_fraction: float = 0.25
    """Fraction of samples in the test split (stratified)."""
    split_seed: int = 0
    """Seed of the fixed stratified split."""

    def __post_init__(self) -> None:
        check_fields(self, "data")
        if len(self.views) < 2:
            raise ValueError(
                f"data.views={list(self.views)!r} needs at least 2 views; valid views: "
                f"{list(MFEAT_VIEWS)}"
            )
        for view in self.views:
            check_choice("data.views", view, MFEAT_VIEWS)
        if len(set(self.views)) != len(self.views):
            raise ValueError(f"data.views={list(self.views)!r} has duplicate views")
        check_range("data.val_fraction", self.val_fraction, 0.0, 1.0, low_inclusive=False)
        check_range("data.test_fraction", self.test_fraction, 0.0, 1.0, low_inclusive=False)
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"data.val_fraction + data.test_fraction = "
                f"{self.val_fraction + self.test_fraction} must be < 1"
            )
        check_range("data.split_seed", self.split_seed, 0)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.views


# --------------------------------------------------------------------------- file-backed
@dataclass(frozen=True, kw_only=True)
class FileDatasetConfig:
    """What every dataset read from a prepared folder shares (subclasses add their own)."""

    root: str | None = None
    """Prepared data folder; None: the dataset's environment variable, else
    $DUS_DATA_ROOT/<name> (docs/datasets.md)."""
    on_error: str = "raise"
    """A bad row or missing/corrupt media file: ``raise``, or ``skip`` it (counted, reported)."""
    verify: bool = False
    """Decode every media file at load time (finds corrupt files up front; slow)."""

    def __post_init__(self) -> None:
        check_fields(self, "data")
        check_choice("data.on_error", self.on_error, ON_ERROR)
        if self.root is not None and not self.root.strip():
            raise ValueError(f"data.root={self.root!r} is empty; use None to read the environment")
        for name, low in (("n_frames", 1), ("image_size", 8), ("max_length", 2)):
            value = getattr(self, name, None)
            if value is not None:
                check_range(f"data.{name}", value, low)
        if hasattr(self, "val_fraction"):
            check_range("data.val_fraction", self.val_fraction, 0.0, 1.0, low_inclusive=False,
                        high_inclusive=False)
        if hasattr(self, "split_seed"):
            check_range("data.split_seed", self.split_seed, 0)

    @property
    def modalities(self) -> tuple[str, ...]:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class CremadConfig(FileDatasetConfig):
    """CREMA-D (audio + visual, 6 emotions), in the layout ``prepare cremad`` writes.
    ``root`` None: $DUS_CREMAD_ROOT, else $DUS_DATA_ROOT/cremad."""

    name: Literal["cremad"] = "cremad"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.audiovisual:load_cremad"
    """``module:function`` building the dataset from this config."""
    n_frames: int = 1
    """Frames per clip, sampled uniformly from the clip's 1-fps frames."""
    image_size: int = 224
    """Frames are resized to image_size x image_size."""
    val_fraction: float = 0.1
    """Fraction of train carved (stratified, seeded) into val when there is no val.csv."""
    split_seed: int = 0
    """Seed of that validation split."""
    expect_canonical: bool = True
    """Fail unless train.csv / test.csv have the OGM-GE counts (6,698 / 744 rows)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "visual")


@dataclass(frozen=True, kw_only=True)
class KineticsSoundsConfig(FileDatasetConfig):
    """Kinetics-Sounds (audio + visual, the 31 classes shipped in data/files).
    ``root`` None: $DUS_KS_ROOT, else $DUS_DATA_ROOT/kinetics_sounds."""

    name: Literal["kinetics_sounds"] = "kinetics_sounds"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.audiovisual:load_kinetics_sounds"
    """``module:function`` building the dataset from this config."""
    n_frames: int = 3
    """Frames per clip, sampled uniformly from the clip's frames."""
    image_size: int = 224
    """Frames are resized to image_size x image_size."""
    val_fraction: float = 0.1
    """Fraction of train carved (stratified, seeded) into val when there is no val.csv."""
    split_seed: int = 0
    """Seed of that validation split."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "visual")


@dataclass(frozen=True, kw_only=True)
class Twitter2015Config(FileDatasetConfig):
    """Twitter2015 (image + text, 3 sentiment classes; TomBERT-style train/dev/test.tsv).
    ``root`` None: $DUS_TWITTER2015_ROOT, else $DUS_DATA_ROOT/twitter2015."""

    name: Literal["twitter2015"] = "twitter2015"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.image_text:load_twitter2015"
    """``module:function`` building the dataset from this config."""
    image_size: int = 224
    """Images are resized to image_size x image_size."""
    max_length: int = 128
    """Tokens per text (padded / truncated)."""
    tokenizer: str | None = None
    """Local Hugging Face tokenizer folder (e.g. bert-base-uncased); None: the built-in hashing
    tokenizer (pairs with the ``text_bag`` encoder)."""
    expect_canonical: bool = True
    """Fail unless the splits have the TomBERT counts (3,179 / 1,122 / 1,037 rows)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("image", "text")


@dataclass(frozen=True, kw_only=True)
class SarcasmConfig(FileDatasetConfig):
    """Multimodal sarcasm detection (image + text, 2 classes; JSON records).
    ``root`` None: $DUS_SARCASM_ROOT, else $DUS_DATA_ROOT/sarcasm."""

    name: Literal["sarcasm"] = "sarcasm"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.image_text:load_sarcasm"
    """``module:function`` building the dataset from this config."""
    image_size: int = 224
    """Images are resized to image_size x image_size."""
    max_length: int = 128
    """Tokens per text (padded / truncated)."""
    tokenizer: str | None = None
    """Local Hugging Face tokenizer folder; None: the built-in hashing tokenizer."""
    expect_canonical: bool = True
    """Fail unless the splits have the published counts (19,816 / 2,410 / 2,409)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("image", "text")


@dataclass(frozen=True, kw_only=True)
class NVGestureConfig(FileDatasetConfig):
    """NVGesture (RGB + depth + optical flow, 25 gestures; official .lst splits).
    ``root`` None: $DUS_NVGESTURE_ROOT, else $DUS_DATA_ROOT/nvgesture."""

    name: Literal["nvgesture"] = "nvgesture"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.nvgesture:load_nvgesture"
    """``module:function`` building the dataset from this config."""
    n_frames: int | None = None
    """Frames per clip, sampled uniformly from the prepared clip (None: all of them)."""
    val_fraction: float = 0.1
    """Fraction of train carved (stratified, seeded) into val."""
    split_seed: int = 0
    """Seed of that validation split."""
    expect_canonical: bool = True
    """Fail unless the .lst files have the official counts (1,050 / 482)."""

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("rgb", "depth", "flow")


@dataclass(frozen=True)
class FeaturesConfig:
    """Precomputed frozen-encoder features (``prepare features``): cheap RL on real data."""

    name: Literal["features"] = "features"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.features:load_features"
    """``module:function`` building the dataset from this config."""
    modalities: tuple[str, ...] = ("audio", "visual")
    """Modalities to use, in order (checked against the file)."""
    path: str | None = None
    """The .npz file ``prepare features`` wrote; None: $DUS_FEATURES_PATH."""
    standardize: bool = True
    """Standardise each modality with train-split statistics."""

    def __post_init__(self) -> None:
        check_fields(self, "data")
        _check_modalities("data.modalities", self.modalities)
        if self.path is not None and not self.path.strip():
            raise ValueError(f"data.path={self.path!r} is empty; use None to read the environment")


@dataclass(frozen=True)
class FashionMNISTConfig:
    """Two-view Fashion-MNIST (``rotated`` + ``noisy``, 10 classes, 28 x 28 grey images), read
    from the four official idx files by :func:`dus_env.data.fashion_mnist.load_fashion_mnist`."""

    name: Literal["fashion_mnist"] = "fashion_mnist"
    """Dataset kind; selects this config in dicts."""
    reader: ClassVar[str] = "dus_env.data.fashion_mnist:load_fashion_mnist"
    """``module:function`` building the dataset from this config."""
    cacheable: ClassVar[bool] = False
    """The reader caches by config and file identity (size, mtime) itself."""
    root: str | None = None
    """Folder with the four idx files; None: ``$DUS_FASHION_MNIST_ROOT``, else
    :data:`FASHION_MNIST_DEBIAN_ROOT` (see :func:`dus_env.data.fashion_mnist.find_root`)."""
    n_train: int | None = None
    """Train samples: None for all of the official train split minus validation, else a
    seeded stratified subset of that size."""
    val_size: int = 5000
    """Validation samples, carved (seeded, stratified) from the official train split."""
    n_test: int | None = None
    """Test samples: None for the whole official test split, else a seeded stratified subset."""
    rotation: float = 45.0
    """Largest rotation of view 1 in degrees (angles uniform in [-rotation, rotation]; 0: none)."""
    noise: float = 0.6
    """Standard deviation of the Gaussian noise added to view 2 on [0, 1] pixels (0: none)."""
    pairing: Literal["same_class", "same_image"] = "same_class"
    """View 2 shows another random image of the same class (Noisy-MNIST) or the same image."""
    seed: int = 0
    """Seeds the split, the subsets, the rotations, the pairing and the noise."""
    expect_canonical: bool = True
    """Fail unless the files hold the official 60,000 / 10,000 images."""

    def __post_init__(self) -> None:
        if isinstance(self.root, os.PathLike):  # a Path is a folder too; kept as str (JSON)
            object.__setattr__(self, "root", os.fspath(self.root))
        check_fields(self, "data")
        if self.root is not None and not self.root.strip():
            raise ValueError(
                f"data.root={self.root!r} is empty; use None to read ${FASHION_MNIST_ENV_VAR}, "
                f"else {FASHION_MNIST_DEBIAN_ROOT}"
            )
        low = _FASHION_MNIST_MIN_SPLIT
        for fname in ("n_train", "val_size", "n_test"):
            value = getattr(self, fname)
            if value is not None:
                check_range(f"data.{fname}", value, low)
        check_range("data.seed", self.seed, 0)
        check_range("data.rotation", self.rotation, 0.0, 180.0)
        check_range("data.noise", self.noise, 0.0)
        check_choice("data.pairing", self.pairing, FASHION_MNIST_PAIRINGS)

    @property
    def modalities(self) -> tuple[str, ...]:
        return FASHION_MNIST_VIEWS


DataConfig = Union[
    SyntheticConfig, MfeatConfig, CremadConfig, KineticsSoundsConfig, Twitter2015Config,
    SarcasmConfig, NVGestureConfig, FeaturesConfig, FashionMNISTConfig,
]
DATA_CONFIGS: dict[str, type] = {
    cls.name: cls for cls in (
        SyntheticConfig, MfeatConfig, CremadConfig, KineticsSoundsConfig, Twitter2015Config,
        SarcasmConfig, NVGestureConfig, FeaturesConfig, FashionMNISTConfig,
    )
}
"""Dataset kinds, the one list of them: name -> config class, whose ``reader`` names the
function that builds the dataset. Add a kind with :func:`register_dataset`."""


def register_dataset(config_class: type, *, overwrite: bool = False) -> None:
    """Add a dataset kind: a frozen dataclass with a ``name`` field defaulting to the kind's
    name and a ``reader`` class attribute (``"module:function"`` taking the config)."""
    name = getattr(config_class, "name", None)
    if not isinstance(name, str) or not isinstance(getattr(config_class, "reader", None), str):
        raise ValueError(f"{config_class.__name__} needs a 'name' field default and a 'reader' "
                         "class attribute ('module:function')")
    if name in DATA_CONFIGS and not overwrite:
        raise ValueError(f"dataset {name!r} is already registered; pass overwrite=True")
    DATA_CONFIGS[name] = config_class
