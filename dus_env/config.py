"""Frozen, validated configuration for every component, and the presets.

Each component receives only its own slice: the sampler a :class:`SamplerConfig`, the trainer
a :class:`TrainerConfig`, and so on. :class:`EnvConfig` nests them all and is the only thing
the environment takes. Presets are plain Python values in :data:`PRESETS`.

Configs can be written to and read from plain dicts (JSON) with :func:`config_to_dict` and
:func:`config_from_dict`; unknown keys fail with the valid keys and a "did you mean".
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from dus_env.errors import check_choice, check_range, did_you_mean

HOSTS: tuple[str, ...] = ("joint", "mla", "ogm_ge", "unimodal")
REWARDS: tuple[str, ...] = ("val_delta", "discrepancy", "terminal", "hybrid")
MFEAT_VIEWS: tuple[str, ...] = ("fou", "fac", "kar", "pix", "zer", "mor")


# --------------------------------------------------------------------------- data
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
        m = len(self.modalities)
        if m < 2:
            raise ValueError(f"data.modalities={list(self.modalities)!r} needs at least 2 modalities")
        if len(set(self.modalities)) != m:
            raise ValueError(f"data.modalities={list(self.modalities)!r} has duplicate names")
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


@dataclass(frozen=True)
class MfeatConfig:
    """The UCI Multiple Features handwritten digits (2,000 samples, 10 classes, 6 views)."""

    name: Literal["mfeat"] = "mfeat"
    """Dataset kind; selects this config in dicts."""
    views: tuple[str, ...] = ("fac", "zer")
    """Feature views used as modalities (any >= 2 of fou, fac, kar, pix, zer, mor)."""
    val_fraction: float = 0.15
    """Fraction of samples in the validation split (stratified)."""
    test_fraction: float = 0.25
    """Fraction of samples in the test split (stratified)."""
    split_seed: int = 0
    """Seed of the fixed stratified split."""

    def __post_init__(self) -> None:
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

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.views


# ----------------------------------------------------------- data: real benchmarks (issue 5)
# Readers live in dus_env/data/{audiovisual,image_text,nvgesture,features}.py; the on-disk
# layouts are documented in docs/datasets.md. ``root=None`` means "resolve at load time from the
# environment": the per-dataset variable (e.g. DUS_CREMAD_ROOT), else DUS_DATA_ROOT/<name>.
ON_ERROR: tuple[str, ...] = ("raise", "skip")


def _check_real(prefix: str, cfg: Any) -> None:
    """The checks every real-dataset config shares, on the fields it has."""
    check_choice(f"{prefix}.on_error", cfg.on_error, ON_ERROR)
    if cfg.root is not None and not str(cfg.root).strip():
        raise ValueError(f"{prefix}.root={cfg.root!r} is empty; use None to read the environment")
    for name, low in (("n_frames", 1), ("image_size", 8), ("max_length", 2)):
        value = getattr(cfg, name, None)
        if value is not None:
            check_range(f"{prefix}.{name}", value, low)
    if hasattr(cfg, "val_fraction"):
        check_range(f"{prefix}.val_fraction", cfg.val_fraction, 0.0, 1.0, low_inclusive=False,
                    high_inclusive=False)


@dataclass(frozen=True)
class CremadConfig:
    """CREMA-D (audio + visual, 6 emotions), in the layout ``prepare cremad`` writes."""

    name: Literal["cremad"] = "cremad"
    """Dataset kind; selects this config in dicts."""
    root: str | None = None
    """Prepared data folder; None: $DUS_CREMAD_ROOT, else $DUS_DATA_ROOT/cremad."""
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
    on_error: str = "raise"
    """A bad row or missing/corrupt media file: ``raise``, or ``skip`` it (counted, reported)."""
    verify: bool = False
    """Decode every media file at load time (finds corrupt files up front; slow)."""

    def __post_init__(self) -> None:
        _check_real("data", self)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "visual")


@dataclass(frozen=True)
class KineticsSoundsConfig:
    """Kinetics-Sounds (audio + visual, the 31 classes shipped in data/files)."""

    name: Literal["kinetics_sounds"] = "kinetics_sounds"
    """Dataset kind; selects this config in dicts."""
    root: str | None = None
    """Prepared data folder; None: $DUS_KS_ROOT, else $DUS_DATA_ROOT/kinetics_sounds."""
    n_frames: int = 3
    """Frames per clip, sampled uniformly from the clip's frames."""
    image_size: int = 224
    """Frames are resized to image_size x image_size."""
    val_fraction: float = 0.1
    """Fraction of train carved (stratified, seeded) into val when there is no val.csv."""
    split_seed: int = 0
    """Seed of that validation split."""
    on_error: str = "raise"
    """A bad row or missing/corrupt media file: ``raise``, or ``skip`` it (counted, reported)."""
    verify: bool = False
    """Decode every media file at load time (finds corrupt files up front; slow)."""

    def __post_init__(self) -> None:
        _check_real("data", self)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "visual")


@dataclass(frozen=True)
class Twitter2015Config:
    """Twitter2015 (image + text, 3 sentiment classes; TomBERT-style train/dev/test.tsv)."""

    name: Literal["twitter2015"] = "twitter2015"
    """Dataset kind; selects this config in dicts."""
    root: str | None = None
    """Folder with the .tsv files and images/; None: $DUS_TWITTER2015_ROOT, else
    $DUS_DATA_ROOT/twitter2015."""
    image_size: int = 224
    """Images are resized to image_size x image_size."""
    max_length: int = 128
    """Tokens per text (padded / truncated)."""
    tokenizer: str | None = None
    """Local Hugging Face tokenizer folder (e.g. bert-base-uncased); None: the built-in hashing
    tokenizer (pairs with the ``text_bag`` encoder)."""
    expect_canonical: bool = True
    """Fail unless the splits have the TomBERT counts (3,179 / 1,122 / 1,037 rows)."""
    on_error: str = "raise"
    """A bad row or missing/corrupt image: ``raise``, or ``skip`` it (counted, reported)."""
    verify: bool = False
    """Decode every image at load time."""

    def __post_init__(self) -> None:
        _check_real("data", self)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("image", "text")


@dataclass(frozen=True)
class SarcasmConfig:
    """Multimodal sarcasm detection (image + text, 2 classes; JSON records)."""

    name: Literal["sarcasm"] = "sarcasm"
    """Dataset kind; selects this config in dicts."""
    root: str | None = None
    """Folder with train/valid/test.json and images/; None: $DUS_SARCASM_ROOT, else
    $DUS_DATA_ROOT/sarcasm."""
    image_size: int = 224
    """Images are resized to image_size x image_size."""
    max_length: int = 128
    """Tokens per text (padded / truncated)."""
    tokenizer: str | None = None
    """Local Hugging Face tokenizer folder; None: the built-in hashing tokenizer."""
    expect_canonical: bool = True
    """Fail unless the splits have the published counts (19,816 / 2,410 / 2,409)."""
    on_error: str = "raise"
    """A bad record or missing/corrupt image: ``raise``, or ``skip`` it (counted, reported)."""
    verify: bool = False
    """Decode every image at load time."""

    def __post_init__(self) -> None:
        _check_real("data", self)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("image", "text")


@dataclass(frozen=True)
class NVGestureConfig:
    """NVGesture (RGB + depth + optical flow, 25 gestures; official .lst splits)."""

    name: Literal["nvgesture"] = "nvgesture"
    """Dataset kind; selects this config in dicts."""
    root: str | None = None
    """Prepared data folder; None: $DUS_NVGESTURE_ROOT, else $DUS_DATA_ROOT/nvgesture."""
    n_frames: int | None = None
    """Frames per clip, sampled uniformly from the prepared clip (None: all of them)."""
    val_fraction: float = 0.1
    """Fraction of train carved (stratified, seeded) into val."""
    split_seed: int = 0
    """Seed of that validation split."""
    expect_canonical: bool = True
    """Fail unless the .lst files have the official counts (1,050 / 482)."""
    on_error: str = "raise"
    """A bad line or missing/corrupt clip: ``raise``, or ``skip`` it (counted, reported)."""
    verify: bool = False
    """Load every clip at load time."""

    def __post_init__(self) -> None:
        _check_real("data", self)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("rgb", "depth", "flow")


@dataclass(frozen=True)
class FeaturesConfig:
    """Precomputed frozen-encoder features (``prepare features``): cheap RL on real data."""

    name: Literal["features"] = "features"
    """Dataset kind; selects this config in dicts."""
    modalities: tuple[str, ...] = ("audio", "visual")
    """Modalities to use, in order (checked against the file)."""
    path: str | None = None
    """The .npz file ``prepare features`` wrote; None: $DUS_FEATURES_PATH."""
    standardize: bool = True
    """Standardise each modality with train-split statistics."""

    def __post_init__(self) -> None:
        if len(self.modalities) < 2 or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(
                f"data.modalities={list(self.modalities)!r} needs >= 2 distinct modalities"
            )
        if self.path is not None and not str(self.path).strip():
            raise ValueError(f"data.path={self.path!r} is empty; use None to read the environment")


DataConfig = Union[
    SyntheticConfig, MfeatConfig, CremadConfig, KineticsSoundsConfig, Twitter2015Config,
    SarcasmConfig, NVGestureConfig, FeaturesConfig,
]
DATA_CONFIGS: dict[str, type] = {
    "synthetic": SyntheticConfig,
    "mfeat": MfeatConfig,
    "cremad": CremadConfig,
    "kinetics_sounds": KineticsSoundsConfig,
    "twitter2015": Twitter2015Config,
    "sarcasm": SarcasmConfig,
    "nvgesture": NVGestureConfig,
    "features": FeaturesConfig,
}
# ------------------------------------------------------- end data: real benchmarks (issue 5)


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ModelConfig:
    """Per-modality encoders and the heads on top of them."""

    encoder: str = "mlp"
    """Encoder kind from ``dus_env.models.ENCODERS`` (``mlp`` for vector data)."""
    hidden_dims: tuple[int, ...] = (128,)
    """Hidden layer widths of the MLP encoder."""
    feature_dim: int = 64
    """Width of every encoder's output (MLA's shared head needs one width for all)."""
    encoders: tuple[tuple[str, str], ...] = ()
    """Per-modality overrides of ``encoder``: ``(("text", "bert"), ("image", "resnet50"))``."""
    weights: tuple[tuple[str, str], ...] = ()
    """Local pretrained weights per encoder kind: ``(("bert", "/models/bert-base-uncased"),)``.
    Never downloaded; kinds without an entry start from random initialisation."""

    def __post_init__(self) -> None:
        from dus_env.models.encoders import ENCODERS

        check_choice("model.encoder", self.encoder, ENCODERS)
        for fname in ("encoders", "weights"):  # JSON gives lists; keep the config hashable
            object.__setattr__(self, fname, tuple(tuple(p) for p in getattr(self, fname)))
        for pair in (*self.encoders, *self.weights):
            if len(pair) != 2:
                raise ValueError(f"model.encoders / model.weights entries are pairs, got {pair!r}")
        for _, kind in self.encoders:
            check_choice("model.encoders", kind, ENCODERS)
        for kind, _ in self.weights:
            check_choice("model.weights", kind, ENCODERS)
        for h in self.hidden_dims:
            check_range("model.hidden_dims", h, 1)
        check_range("model.feature_dim", self.feature_dim, 1)

    def encoder_for(self, modality: str) -> str:
        """The encoder kind of ``modality`` (its override, else ``encoder``)."""
        return dict(self.encoders).get(modality, self.encoder)

    def weights_for(self, kind: str) -> str | None:
        """The local weights path of encoder ``kind``, or None."""
        return dict(self.weights).get(kind)


# --------------------------------------------------------------------------- trainer
@dataclass(frozen=True)
class MLAConfig:
    """Options of the MLA host (alternating unimodal updates through one shared head)."""

    projection: bool = True
    """Apply the orthogonal head-gradient projection (the public MLA code never does)."""
    alpha: float = 0.1
    """Regulariser alpha in P <- P - k k^T / (alpha + r k)."""
    fusion: Literal["sample", "batch"] = "sample"
    """Entropy weights at test time per sample (paper text) or per batch (public code)."""

    def __post_init__(self) -> None:
        check_range("trainer.mla.alpha", self.alpha, 0.0, low_inclusive=False)
        check_choice("trainer.mla.fusion", self.fusion, ("sample", "batch"))


@dataclass(frozen=True)
class OGMGEConfig:
    """Options of the OGM-GE host (on-the-fly gradient modulation + generalisation noise)."""

    alpha: float = 0.8
    """Modulation strength in 1 - tanh(alpha * (rho - 1))."""
    noise: bool = True
    """Add Gaussian noise with the modulated gradient's own std (generalisation enhancement)."""
    start_epoch: float = 0.0
    """First epoch (inclusive) in which modulation applies."""
    end_epoch: float = 1e9
    """Epoch (exclusive) after which modulation stops."""

    def __post_init__(self) -> None:
        check_range("trainer.ogm_ge.alpha", self.alpha, 0.0)
        if self.end_epoch <= self.start_epoch:
            raise ValueError(
                f"trainer.ogm_ge.end_epoch={self.end_epoch} must exceed start_epoch="
                f"{self.start_epoch}"
            )


@dataclass(frozen=True)
class TrainerConfig:
    """The training engine: host method, optimiser and loss reduction."""

    host: str = "joint"
    """Host MML method: joint, mla, ogm_ge or unimodal."""
    optimizer: Literal["sgd", "adam"] = "sgd"
    """Optimiser."""
    lr: float = 0.05
    """Learning rate (fixed; DUS changes batch sizes, not the step size)."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 1e-4
    """L2 weight decay."""
    loss_reduction: Literal["mean", "base_sum"] = "mean"
    """Per-modality loss: mean over that modality's batch (a bigger batch means less gradient
    noise, not a bigger step), or sum divided by the base batch size (a bigger batch means a
    proportionally bigger step)."""
    unimodal_weight: float = 1.0
    """Weight of each unimodal loss (joint, ogm_ge)."""
    fusion_weight: float = 1.0
    """Weight of the fusion loss on the paired batch (joint, ogm_ge)."""
    mla: MLAConfig = field(default_factory=MLAConfig)
    """MLA options."""
    ogm_ge: OGMGEConfig = field(default_factory=OGMGEConfig)
    """OGM-GE options."""

    def __post_init__(self) -> None:
        check_choice("trainer.host", self.host, HOSTS)
        check_choice("trainer.optimizer", self.optimizer, ("sgd", "adam"))
        check_choice("trainer.loss_reduction", self.loss_reduction, ("mean", "base_sum"))
        check_range("trainer.lr", self.lr, 0.0, low_inclusive=False)
        check_range("trainer.momentum", self.momentum, 0.0, 1.0, high_inclusive=False)
        check_range("trainer.weight_decay", self.weight_decay, 0.0)
        check_range("trainer.unimodal_weight", self.unimodal_weight, 0.0)
        check_range("trainer.fusion_weight", self.fusion_weight, 0.0)


# --------------------------------------------------------------------------- sampler
@dataclass(frozen=True)
class SamplerConfig:
    """How an action becomes per-modality batch sizes, and how batches are drawn."""

    base_batch_size: int = 64
    """n_b: every modality's batch size under uniform sampling."""
    multipliers: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0)
    """Action index k for modality j asks for round(multipliers[k] * base_batch_size)."""
    min_batch_size: int = 32
    """Lower bound n_min of any modality's batch size."""
    max_batch_size: int = 128
    """Upper bound n_max of any modality's batch size."""
    budget: Literal["renormalize", "free"] = "renormalize"
    """``renormalize`` rescales the requested sizes so they sum to M * base_batch_size (the
    action sets proportions; every policy consumes the same samples); ``free`` takes them as is."""
    fusion_batch: Literal["fixed", "prefix"] = "fixed"
    """The fusion (paired) loss trains on a fixed paired batch of base_batch_size (default) or on
    the shrinking paired prefix of min_j n_j samples."""

    def __post_init__(self) -> None:
        check_range("sampler.base_batch_size", self.base_batch_size, 1)
        if not 1 <= self.min_batch_size <= self.base_batch_size <= self.max_batch_size:
            raise ValueError(
                "sampler batch-size bounds must satisfy 1 <= min_batch_size <= base_batch_size "
                f"<= max_batch_size; got min_batch_size={self.min_batch_size}, base_batch_size="
                f"{self.base_batch_size}, max_batch_size={self.max_batch_size}"
            )
        if len(self.multipliers) < 2:
            raise ValueError(
                f"sampler.multipliers={self.multipliers!r} needs at least 2 values to choose from"
            )
        for x in self.multipliers:
            check_range("sampler.multipliers", x, 0.0, low_inclusive=False)
        if list(self.multipliers) != sorted(set(self.multipliers)):
            raise ValueError(
                f"sampler.multipliers={self.multipliers!r} must be strictly increasing"
            )
        check_choice("sampler.budget", self.budget, ("renormalize", "free"))
        check_choice("sampler.fusion_batch", self.fusion_batch, ("fixed", "prefix"))


# --------------------------------------------------------------------------- monitor
@dataclass(frozen=True)
class MonitorConfig:
    """Learning-status scores and the modality discrepancy."""

    average: Literal["mean", "ema"] = "mean"
    """Cumulative score: running mean over all iterations (paper) or an EMA."""
    ema_beta: float = 0.99
    """EMA decay when ``average='ema'``."""
    discrepancy: Literal["gap", "ratio"] = "gap"
    """Discrepancy in the observation: S^j - mean_{k!=j} S^k, or S^j / mean_{k!=j} S^k."""
    history_length: int = 8
    """H: how many past values of cumulative scores and discrepancy the observation keeps."""

    def __post_init__(self) -> None:
        check_choice("monitor.average", self.average, ("mean", "ema"))
        check_range("monitor.ema_beta", self.ema_beta, 0.0, 1.0, low_inclusive=False,
                    high_inclusive=False)
        check_choice("monitor.discrepancy", self.discrepancy, ("gap", "ratio"))
        check_range("monitor.history_length", self.history_length, 1)


# --------------------------------------------------------------------------- reward
@dataclass(frozen=True)
class RewardConfig:
    """The reward, selected by name."""

    name: str = "val_delta"
    """val_delta (change of validation accuracy since the last step), discrepancy (reduction of
    the mean absolute gap), terminal (validation accuracy at the last step only) or hybrid."""
    val_subset_size: int = 500
    """Size of the fixed validation subset the reward reads (0: the whole split)."""
    scale: float = 100.0
    """Multiplier on accuracy terms (100: rewards in accuracy points)."""
    hybrid_discrepancy_weight: float = 0.5
    """Weight of the discrepancy term in ``hybrid`` (the val_delta term has weight 1)."""
    divergence_penalty: float = 100.0
    """Subtracted once when training diverges (non-finite loss or weights)."""

    def __post_init__(self) -> None:
        check_choice("reward.name", self.name, REWARDS)
        check_range("reward.val_subset_size", self.val_subset_size, 0)
        check_range("reward.scale", self.scale, 0.0, low_inclusive=False)
        check_range("reward.hybrid_discrepancy_weight", self.hybrid_discrepancy_weight, 0.0)
        check_range("reward.divergence_penalty", self.divergence_penalty, 0.0)


# --------------------------------------------------------------------------- env
@dataclass(frozen=True)
class EnvConfig:
    """Everything one DUS-v0 environment needs."""

    data: DataConfig = field(default_factory=SyntheticConfig)
    """Dataset (SyntheticConfig or MfeatConfig)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """Encoders and heads."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    """Host method and optimiser."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Action grid and batch drawing."""
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    """Scores, discrepancy and history."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward function."""
    total_iterations: int = 400
    """T: training iterations in one episode (the budget)."""
    iters_per_step: int = 20
    """Training iterations one env step applies its action for."""
    device: str = "cpu"
    """Torch device of the model."""
    info_wall_time: bool = True
    """Put the step's wall-clock seconds in ``info["wall_time"]``. The only non-reproducible
    info entry: turn it off for bit-for-bit identical infos (Gymnasium's determinism check)."""

    def __post_init__(self) -> None:
        if not isinstance(self.data, tuple(DATA_CONFIGS.values())):
            raise TypeError(
                f"data must be one of {[c.__name__ for c in DATA_CONFIGS.values()]}, "
                f"got {type(self.data).__name__}"
            )
        check_range("total_iterations", self.total_iterations, 1)
        check_range("iters_per_step", self.iters_per_step, 1, self.total_iterations)
        if self.total_iterations % self.iters_per_step:
            raise ValueError(
                f"total_iterations={self.total_iterations} must be a multiple of "
                f"iters_per_step={self.iters_per_step}"
            )

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.data.modalities)

    @property
    def n_steps(self) -> int:
        """Env steps in one episode."""
        return self.total_iterations // self.iters_per_step

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with top-level fields replaced (nested configs are replaced whole)."""
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------- presets
def _tiny() -> EnvConfig:
    return EnvConfig(
        data=SyntheticConfig(n_classes=4, dim=8, clusters_per_class=(1, 2), separation=(3.0, 1.5),
                             confused_pairs=(1, 0), n_train=512, n_val=128, n_test=128),
        model=ModelConfig(hidden_dims=(32,), feature_dim=16),
        sampler=SamplerConfig(base_batch_size=16, min_batch_size=8, max_batch_size=32),
        monitor=MonitorConfig(history_length=4),
        reward=RewardConfig(val_subset_size=0),
        total_iterations=60,
        iters_per_step=10,
    )


PRESETS: dict[str, EnvConfig] = {
    # Designed and measured in docs/synthetic_preset.md (benchmarks/imbalance.py): the strong
    # modality confuses all 5 class pairs, so the fusion head needs from the weak encoder only the
    # within-pair bit; with 8-wide features, and the fusion loss weighted as much as the two
    # unimodal losses together, that fusion gradient crowds out the weak encoder's 10-way
    # structure (weak linear probe several points below the weak modality trained alone).
    "default": EnvConfig(
        data=SyntheticConfig(confused_pairs=(5, 0)),
        model=ModelConfig(feature_dim=8),
        trainer=TrainerConfig(fusion_weight=2.0),
    ),
    "tiny": _tiny(),
    "mfeat": EnvConfig(
        data=MfeatConfig(views=("fac", "zer")),
        sampler=SamplerConfig(base_batch_size=32, min_batch_size=16, max_batch_size=64),
        reward=RewardConfig(val_subset_size=0),
        total_iterations=300,
        iters_per_step=15,
    ),
    "mfeat3": EnvConfig(
        data=MfeatConfig(views=("fou", "kar", "mor")),
        sampler=SamplerConfig(base_batch_size=32, min_batch_size=16, max_batch_size=64),
        reward=RewardConfig(val_subset_size=0),
        total_iterations=300,
        iters_per_step=15,
    ),
}


# ------------------------------------------------- presets: real benchmarks (issue 5)
# The paper setups (METHOD.md, last section; reference/paper.md "Optimisation"): ResNet-18 from
# scratch per modality, SGD lr 1e-2 momentum 0.9 wd 1e-4, batch 64 for audio-video; ResNet-50 +
# BERT-base, Adam 2e-5, batch 32 for image-text; batch 2 for NVGesture (3D ResNet-18 stands in
# for I3D). 100 epochs (the sources give 100-120); one env step is one epoch, so
# iters_per_step = ceil(n_train / batch) with n_train the train split after the 10% validation
# carve (CREMA-D 6,028; Kinetics-Sounds 13,319 of OGM-GE's 14,799; NVGesture 945) or the
# published train split (Twitter2015 3,179; Sarcasm 19,816). "<name>_features" trains MLPs on
# features from `python -m dus_env.data.prepare features --preset <name>` (set data.path).
PAPER_EPOCHS: int = 100


def _benchmark(data: Any, model: ModelConfig, trainer: TrainerConfig, batch: int,
               n_train: int) -> EnvConfig:
    per_epoch = -(-n_train // batch)
    return EnvConfig(
        data=data, model=model, trainer=trainer,
        sampler=SamplerConfig(base_batch_size=batch, min_batch_size=max(1, batch // 2),
                              max_batch_size=2 * batch),
        total_iterations=PAPER_EPOCHS * per_epoch, iters_per_step=per_epoch,
    )


def _benchmarks() -> dict[str, EnvConfig]:
    sgd = TrainerConfig(optimizer="sgd", lr=1e-2, momentum=0.9, weight_decay=1e-4)
    adam = TrainerConfig(optimizer="adam", lr=2e-5, weight_decay=0.0)
    av = ModelConfig(encoder="resnet18", feature_dim=512)
    it = ModelConfig(encoder="resnet50", encoders=(("text", "bert"),), feature_dim=768)
    video = ModelConfig(encoder="r3d18", feature_dim=512)
    real = {
        "cremad": (CremadConfig(), av, sgd, 64, 6028),
        "kinetics_sounds": (KineticsSoundsConfig(), av, sgd, 64, 13319),
        "twitter2015": (Twitter2015Config(), it, adam, 32, 3179),
        "sarcasm": (SarcasmConfig(), it, adam, 32, 19816),
        "nvgesture": (NVGestureConfig(), video, sgd, 2, 945),
    }
    out = {}
    mlp = ModelConfig(encoder="mlp", hidden_dims=(256,), feature_dim=128)
    for name, (data, model, trainer, batch, n_train) in real.items():
        out[name] = _benchmark(data, model, trainer, batch, n_train)
        features = FeaturesConfig(modalities=data.modalities)
        feat_trainer = dataclasses.replace(trainer, lr=1e-3) if trainer.optimizer == "adam" else trainer
        out[f"{name}_features"] = _benchmark(features, mlp, feat_trainer, batch, n_train)
    return out


PRESETS.update(_benchmarks())
# --------------------------------------------- end presets: real benchmarks (issue 5)

def get_preset(name: str) -> EnvConfig:
    """The preset called ``name``; unknown names fail with the choices."""
    check_choice("preset", name, PRESETS)
    return PRESETS[name]


# --------------------------------------------------------------------------- dicts
def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config."""
    return dataclasses.asdict(config)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        if isinstance(value, Mapping):
            kind = value.get("name", "synthetic")
            check_choice(f"{path}.name", kind, DATA_CONFIGS)
            return _from_dict(DATA_CONFIGS[kind], value, path)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return _from_dict(tp, value, path)
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(value)
    return value


def _from_dict(cls: type, data: Mapping[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            full = f"{path}.{key}" if path else str(key)
            raise ValueError(
                f"unknown config key {full!r}; valid keys: {names}." + did_you_mean(key, names)
            )
        kwargs[key] = _convert(hints[key], value, f"{path}.{key}" if path else key)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any], base: EnvConfig | None = None) -> EnvConfig:
    """Build an :class:`EnvConfig` from a nested dict, over ``base`` (default: ``EnvConfig()``).

    Keys missing from ``data`` keep ``base``'s values; nested dicts are merged the same way.
    Unknown keys raise ``ValueError`` naming the key and the valid ones.
    """
    merged = _merge(config_to_dict(base if base is not None else EnvConfig()), data)
    return _from_dict(EnvConfig, merged, "")


def overrides_from_pairs(pairs: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """Nested overrides from command-line ``KEY=VALUE`` pairs (``reward.name=discrepancy``,
    ``sampler.multipliers=[0.5,1,2]``). Values are read as JSON when they parse, else kept as
    strings. Feed the result to :func:`config_from_dict`, which checks the keys."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(f"{flag}={pair!r}: expected KEY=VALUE with a dotted key, e.g. "
                             f"{flag} reward.name=discrepancy")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{flag}={pair!r}: {part!r} was already set to a value")
            node = child
        node[leaf] = parsed
    return nested


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if key == "data" and isinstance(value, Mapping) and value.get("name", out[key].get("name")) != out[key].get("name"):
            out[key] = dict(value)  # a different dataset kind replaces the whole slice
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
