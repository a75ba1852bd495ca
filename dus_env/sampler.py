"""Per-modality batch sizes and the paired sampler.

The sampler walks one shuffled permutation of the paired training set per epoch (a new
permutation when one is used up; windows continue across the boundary, so at uniform sizes every
index is drawn exactly once per epoch). Each iteration it takes a window of
``max(max_j n_j, fusion_size)`` indices: modality ``j`` trains its own loss on the first ``n_j``
of them, and the fusion loss on the first ``fusion_size`` (``base_batch_size`` by default, or
``min_j n_j`` with ``fusion_batch='prefix'``). All randomness comes from the generator given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dus_env.config import SamplerConfig
from dus_env.data.base import DatasetSplit


@dataclass(frozen=True, eq=False)
class Batch:
    """One iteration's data. Row ``i`` of every tensor is the same paired example."""

    inputs: dict[str, torch.Tensor]
    """Per modality, the first ``max(batch_sizes[m], fusion_size)`` rows of the window."""
    labels: torch.Tensor
    """Labels of the whole window."""
    batch_sizes: dict[str, int]
    """n_j: rows modality ``m`` trains its own loss on."""
    fusion_size: int
    """Rows the paired (fusion) loss trains on."""
    epoch: float
    """Epochs of the permutation stream consumed before this batch."""


def resolve_batch_sizes(requested: Sequence[float], config: SamplerConfig) -> tuple[int, ...]:
    """Turn requested per-modality sizes into valid integer batch sizes.

    With ``budget='renormalize'`` the request is rescaled to sum to ``M * base_batch_size``
    (so only the proportions matter) and fitted into ``[min_batch_size, max_batch_size]``
    without leaving that total: sizes pushed past a bound are held at it and the rest of the
    total is shared among the others in proportion to their request (water-filling), then the
    sizes are rounded so that they still sum to exactly ``M * base_batch_size`` (largest
    remainders round up). So every policy consumes exactly the same samples per iteration.
    (Before this fix the rescaled sizes were clipped afterwards, so a request at the edge of the
    grid overspent the budget: 0.5x / 2x of 64 gave 32 / 102, 5% more than uniform's 64 / 64.)
    With ``budget='free'`` the sizes are rounded and clipped as requested.
    """
    sizes = np.asarray(requested, dtype=float)
    lo, hi = config.min_batch_size, config.max_batch_size
    if config.budget != "renormalize":
        return tuple(int(s) for s in np.clip(np.rint(sizes), lo, hi))
    total = len(sizes) * config.base_batch_size
    sizes = sizes * (total / sizes.sum())
    for _ in range(len(sizes) + 1):  # each pass pins at least one more size to a bound
        sizes = np.clip(sizes, lo, hi)
        excess = total - sizes.sum()
        if abs(excess) < 1e-9:
            break
        movable = sizes < hi if excess > 0 else sizes > lo
        if not movable.any():
            break
        sizes[movable] *= (sizes[movable].sum() + excess) / sizes[movable].sum()
    floors = np.floor(sizes + 1e-9)
    short = int(round(total - floors.sum()))
    if 0 < short <= len(sizes):
        order = np.argsort(-(sizes - floors), kind="stable")
        floors[order[:short]] += 1
    return tuple(int(s) for s in np.clip(floors, lo, hi))


def uniform_index(multipliers: Sequence[float]) -> int:
    """The grid index of uniform sampling: the multiplier 1.0, else the middle of the grid."""
    close = np.flatnonzero(np.isclose(np.asarray(multipliers, dtype=float), 1.0))
    return int(close[0]) if len(close) else len(multipliers) // 2


HEURISTIC_DEFAULTS: dict[str, float] = {"gamma": 1.0, "warmup": 0.1, "min_multiplier": 0.5,
                                         "max_multiplier": 2.0}
"""DUS-H's defaults: inverse-score exponent, uniform warm-up share of the run, and the
bounds of the requested multiplier."""


def inverse_score_multipliers(scores: np.ndarray, present: np.ndarray | None = None, *,
                              gamma: float = 1.0, min_multiplier: float = 0.5,
                              max_multiplier: float = 2.0) -> np.ndarray:
    """DUS-H's request: ``M * w^j`` with ``w^j = (1/S^j)^gamma / sum_k (1/S^k)^gamma`` over the
    present modalities, clipped to ``[min_multiplier, max_multiplier]`` (1.0 where a slot is
    absent). ``scores``: cumulative scores S, shape ``(..., M)``; float64 throughout."""
    scores = np.clip(np.asarray(scores, dtype=float), 1e-6, None)
    present = np.ones(scores.shape, bool) if present is None else np.asarray(present, bool)
    inv = np.where(present, scores ** (-gamma), 0.0)
    weights = inv / inv.sum(axis=-1, keepdims=True)
    m = present.sum(axis=-1, keepdims=True)
    requested = np.clip(m * weights, min_multiplier, max_multiplier)
    return np.where(present, requested, 1.0)


def nearest_grid_indices(requested: np.ndarray, multipliers: Sequence[float]) -> np.ndarray:
    """The grid index closest (in log scale) to each requested multiplier."""
    grid = np.log(np.asarray(multipliers, dtype=float))
    dist = np.abs(np.log(np.asarray(requested, dtype=float))[..., None] - grid)
    return np.argmin(dist, axis=-1).astype(np.int64)


def multipliers_to_batch_sizes(indices: Sequence[int], config: SamplerConfig) -> tuple[int, ...]:
    """Batch sizes for one action: an index into ``config.multipliers`` per modality."""
    grid = np.asarray(config.multipliers)
    return resolve_batch_sizes(grid[np.asarray(indices)] * config.base_batch_size, config)


class ModalitySampler:
    """Draws paired windows and counts the samples each modality consumes.

    Args:
        config: batch-size bounds and the fusion-batch rule.
        modalities: modality names, the order of every per-modality vector.
        split: the training split to draw from.
        rng: the only source of randomness (epoch permutations).
        fusion: whether the host trains a paired (fusion) loss on the window's first rows
            (joint, OGM-GE); without one (MLA, unimodal) a window is no longer than the largest
            batch and no paired samples are counted.
    """

    def __init__(
        self,
        config: SamplerConfig,
        modalities: Sequence[str],
        split: DatasetSplit,
        rng: np.random.Generator,
        fusion: bool = True,
    ) -> None:
        self.config = config
        self.fusion = bool(fusion)
        self.modalities = tuple(modalities)
        self.split = split
        self.rng = rng
        self.n = len(split)
        self._perm = rng.permutation(self.n)
        self._pos = 0
        self._drawn = 0
        self.samples_consumed = dict.fromkeys(self.modalities, 0)
        """Samples each modality's own loss has trained on so far."""
        self.paired_consumed = 0
        """Samples the paired (fusion) loss has trained on so far."""

    @property
    def epoch(self) -> float:
        """Epochs of the stream drawn so far."""
        return self._drawn / self.n

    def _take(self, count: int) -> np.ndarray:
        chunks = []
        while count > 0:
            if self._pos == self.n:
                self._perm = self.rng.permutation(self.n)
                self._pos = 0
            step = min(count, self.n - self._pos)
            chunks.append(self._perm[self._pos : self._pos + step])
            self._pos += step
            count -= step
        return np.concatenate(chunks)

    def _check(self, batch_sizes: Sequence[int]) -> dict[str, int]:
        if len(batch_sizes) != len(self.modalities):
            raise ValueError(
                f"batch_sizes={list(batch_sizes)} has {len(batch_sizes)} entries; expected one per "
                f"modality {list(self.modalities)}"
            )
        lo, hi = self.config.min_batch_size, self.config.max_batch_size
        for m, size in zip(self.modalities, batch_sizes):
            if not lo <= int(size) <= hi or int(size) != size:
                raise ValueError(
                    f"batch_sizes[{m!r}]={size!r} is out of range; valid range: integers in "
                    f"[{lo}, {hi}] (sampler.min_batch_size, sampler.max_batch_size)"
                )
        return {m: int(s) for m, s in zip(self.modalities, batch_sizes)}

    def next_batch(self, batch_sizes: Sequence[int]) -> Batch:
        """The next window, for per-modality ``batch_sizes`` (in modality order)."""
        sizes = self._check(batch_sizes)
        if not self.fusion:
            fusion_size = 0
        elif self.config.fusion_batch == "fixed":
            fusion_size = self.config.base_batch_size
        else:
            fusion_size = min(sizes.values())
        epoch = self.epoch
        window = self._take(max(max(sizes.values()), fusion_size))
        self._drawn += len(window)
        for m, size in sizes.items():
            self.samples_consumed[m] += size
        self.paired_consumed += fusion_size
        inputs = {
            m: self.split.get(m, window[: max(sizes[m], fusion_size)]) for m in self.modalities
        }
        labels = self.split.labels[torch.as_tensor(window, dtype=torch.long)]
        return Batch(inputs=inputs, labels=labels, batch_sizes=sizes, fusion_size=fusion_size,
                     epoch=epoch)
