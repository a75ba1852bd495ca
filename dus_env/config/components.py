"""Component configs and :class:`EnvConfig`, which nests them all.

Each component receives only its own slice: the sampler a :class:`SamplerConfig`, the trainer a
:class:`TrainerConfig`, and so on. Every field is checked for type (:mod:`dus_env.config.fields`)
and range when the config is built; names (hosts, encoders, rewards) are checked against their
registries in :mod:`dus_env.registry`, which import nothing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from dus_env.config.data import DATA_CONFIGS, DataConfig, SyntheticConfig
from dus_env.config.fields import check_fields
from dus_env.errors import check_choice, check_range
from dus_env.registry import ENCODERS, HOSTS, REWARDS

MAX_BATCH_SIZE = 1_000_000
"""No batch-size setting may exceed this (the train split bounds it further at build time)."""
DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps", "xpu", "meta")
"""Torch device types a config may name (with an optional ``:index``)."""


# --------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ModelConfig:
    """Per-modality encoders and the heads on top of them."""

    encoder: str = "mlp"
    """Encoder kind from :data:`dus_env.registry.ENCODERS` (``mlp`` for vector data)."""
    hidden_dims: tuple[int, ...] = (128,)
    """Hidden layer widths of the MLP encoder (channel widths of ``small_cnn``)."""
    feature_dim: int = 64
    """Width of every encoder's output (MLA's shared head needs one width for all)."""
    encoders: tuple[tuple[str, str], ...] = ()
    """Per-modality overrides of ``encoder``: ``(("text", "bert"), ("image", "resnet50"))``."""
    weights: tuple[tuple[str, str], ...] = ()
    """Local pretrained weights per encoder kind: ``(("bert", "/models/bert-base-uncased"),)``.
    Never downloaded; kinds without an entry start from random initialisation."""

    def __post_init__(self) -> None:
        check_fields(self, "model")
        ENCODERS.check(self.encoder, "model.encoder")
        for _, kind in self.encoders:
            ENCODERS.check(kind, "model.encoders")
        for kind, _ in self.weights:
            ENCODERS.check(kind, "model.weights")
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
        check_fields(self, "trainer.mla")
        check_range("trainer.mla.alpha", self.alpha, 0.0, low_inclusive=False)


@dataclass(frozen=True)
class OGMGEConfig:
    """Options of the OGM-GE host (on-the-fly gradient modulation + generalisation noise)."""

    alpha: float = 0.8
    """Modulation strength (see ``coefficient``)."""
    coefficient: Literal["shifted", "original"] = "shifted"
    """The dominant modality's gradient scale at ratio rho > 1: ``shifted`` is
    1 - tanh(alpha * (rho - 1)) (this package's default, from its method spec: it is 1 at
    rho = 1, so a modality that barely leads is barely damped); ``original`` is OGM-GE's own
    1 - tanh(alpha * rho) (CVPR 2022, Eq. 10), which drops to 1 - tanh(alpha) as soon as rho
    exceeds 1."""
    noise: bool = True
    """Add Gaussian noise with the modulated gradient's own std (generalisation enhancement)."""
    start_epoch: float = 0.0
    """First epoch (inclusive) in which modulation applies."""
    end_epoch: float = 1e9
    """Epoch (exclusive) after which modulation stops."""

    def __post_init__(self) -> None:
        check_fields(self, "trainer.ogm_ge")
        check_range("trainer.ogm_ge.alpha", self.alpha, 0.0)
        check_range("trainer.ogm_ge.start_epoch", self.start_epoch, 0.0)
        if self.end_epoch <= self.start_epoch:
            raise ValueError(
                f"trainer.ogm_ge.end_epoch={self.end_epoch} must exceed start_epoch="
                f"{self.start_epoch}"
            )


@dataclass(frozen=True)
class TrainerConfig:
    """The training engine: host method, optimiser and loss reduction."""

    host: str = "joint"
    """Host MML method, one of :data:`dus_env.registry.HOSTS`: joint, mla, ogm_ge, unimodal."""
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
        check_fields(self, "trainer")
        HOSTS.check(self.host, "trainer.host")
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
    """Upper bound n_max of any modality's batch size (it must fit in the train split, checked
    when the env builds its dataset)."""
    budget: Literal["renormalize", "free"] = "renormalize"
    """``renormalize`` rescales the requested sizes so they sum to M * base_batch_size (the
    action sets proportions; every policy consumes the same samples); ``free`` takes them as is."""
    fusion_batch: Literal["fixed", "prefix"] = "fixed"
    """The fusion (paired) loss trains on a fixed paired batch of base_batch_size (default) or on
    the shrinking paired prefix of min_j n_j samples."""
    action: Literal["grid", "multipliers"] = "grid"
    """What an action is: one index into ``multipliers`` per modality (``grid``: what learned
    policies use), or the requested multiplier itself, any value in ``[multipliers[0],
    multipliers[-1]]`` (``multipliers``: a Box action; full resolution for rules such as
    DUS-H). DUS-v1 is always on the grid."""

    def __post_init__(self) -> None:
        check_fields(self, "sampler")
        check_range("sampler.base_batch_size", self.base_batch_size, 1, MAX_BATCH_SIZE)
        check_range("sampler.max_batch_size", self.max_batch_size, 1, MAX_BATCH_SIZE)
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

    def check_fits(self, n_train: int) -> None:
        """Raise ``ValueError`` unless the largest batch fits in a train split of ``n_train``."""
        if self.max_batch_size > n_train:
            raise ValueError(
                f"sampler.max_batch_size={self.max_batch_size} exceeds the train split's "
                f"{n_train} samples; valid range: [{self.base_batch_size}, {n_train}]"
            )


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
        check_fields(self, "monitor")
        check_range("monitor.ema_beta", self.ema_beta, 0.0, 1.0, low_inclusive=False,
                    high_inclusive=False)
        check_range("monitor.history_length", self.history_length, 1)


# --------------------------------------------------------------------------- reward
REFERENCE_POLICIES: tuple[str, ...] = ("uniform", "heuristic")
"""Samplers a ``paired`` reward's reference run may use."""


@dataclass(frozen=True)
class RewardConfig:
    """The reward, selected by name from :data:`dus_env.registry.REWARDS`."""

    name: str = "val_delta"
    """val_delta (change of validation accuracy since the last step), discrepancy (reduction of
    the mean absolute gap), terminal (validation accuracy at the last step only), hybrid,
    paired (val_delta minus that of a uniform-sampling reference run with the same seeds), or
    paired_best (paired on the best validation accuracy so far: what model selection keeps)."""
    val_subset_size: int = 500
    """Size of the fixed validation subset the reward reads (0: the whole split)."""
    scale: float = 100.0
    """Multiplier on accuracy terms (100: rewards in accuracy points)."""
    hybrid_discrepancy_weight: float = 0.5
    """Weight of the discrepancy term in ``hybrid`` (the val_delta term has weight 1)."""
    divergence_penalty: float = 100.0
    """Subtracted once when training diverges (non-finite loss or weights)."""
    reference_cache: str | None = None
    """``paired`` / ``paired_best`` only: a folder keeping the reference runs' curves on disk (None: in memory
    only); see :mod:`dus_env.reference`."""
    reference_policy: str = "uniform"
    """``paired`` / ``paired_best`` only: the sampler of the reference run: uniform, or heuristic (DUS-H with its
    defaults on this env's grid), so the return is the final validation accuracy minus that of
    DUS-H from the same seeds: what a policy that starts from DUS-H adds to it."""

    def __post_init__(self) -> None:
        check_fields(self, "reward")
        if self.reference_cache is not None and not self.reference_cache.strip():
            raise ValueError("reward.reference_cache='' is empty; use None for memory only")
        REWARDS.check(self.name, "reward.name")
        check_choice("reward.reference_policy", self.reference_policy, REFERENCE_POLICIES)
        check_range("reward.val_subset_size", self.val_subset_size, 0)
        check_range("reward.scale", self.scale, 0.0, low_inclusive=False)
        check_range("reward.hybrid_discrepancy_weight", self.hybrid_discrepancy_weight, 0.0)
        check_range("reward.divergence_penalty", self.divergence_penalty, 0.0)


# --------------------------------------------------------------------------- env
def check_device(field_name: str, value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a torch device string like ``cpu`` or
    ``cuda:1`` (whether that device exists is checked where the env builds its model)."""
    match = re.fullmatch(r"([a-z]+)(?::(\d+))?", value)
    if not match or match.group(1) not in DEVICE_TYPES:
        raise ValueError(
            f"{field_name}={value!r} is not a torch device; valid: one of {list(DEVICE_TYPES)}, "
            "optionally with ':index' (e.g. 'cuda:0')"
        )


@dataclass(frozen=True)
class EnvConfig:
    """Everything one DUS environment needs."""

    data: DataConfig = field(default_factory=SyntheticConfig)
    """Dataset: one of the data configs in :data:`dus_env.config.DATA_CONFIGS` (synthetic,
    mfeat, cremad, kinetics_sounds, twitter2015, sarcasm, nvgesture, features, ...)."""
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
    """Torch device of the model (``cpu``, ``cuda``, ``cuda:1``, ...)."""
    info_wall_time: bool = False
    """Also put the step's wall-clock seconds in ``info["wall_time"]`` (off by default: a clock
    reading is the one thing two runs with the same seed and actions never share, and
    Gymnasium's checker compares infos exactly). ``env.unwrapped.step_seconds`` always has it."""

    def __post_init__(self) -> None:
        if not isinstance(self.data, tuple(DATA_CONFIGS.values())):
            raise TypeError(
                f"data must be one of {[c.__name__ for c in DATA_CONFIGS.values()]}, "
                f"got {type(self.data).__name__}"
            )
        check_fields(self)
        check_range("total_iterations", self.total_iterations, 1)
        check_range("iters_per_step", self.iters_per_step, 1, self.total_iterations)
        if self.total_iterations % self.iters_per_step:
            raise ValueError(
                f"total_iterations={self.total_iterations} must be a multiple of "
                f"iters_per_step={self.iters_per_step}"
            )
        check_device("device", self.device)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.data.modalities)

    @property
    def steps_per_episode(self) -> int:
        """Env steps in one episode: ``total_iterations / iters_per_step``."""
        return self.total_iterations // self.iters_per_step

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with top-level fields replaced (nested configs are replaced whole)."""
        return dataclasses.replace(self, **changes)


__all__ = [
    "EnvConfig", "MLAConfig", "ModelConfig", "MonitorConfig", "OGMGEConfig", "RewardConfig",
    "SamplerConfig", "TrainerConfig", "check_choice", "check_device",
]
