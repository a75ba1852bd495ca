"""The DUS-v1 observation and action: one row per modality slot, any modality count.

A DUS-v1 observation is one flat float32 vector: ``G`` global features, then ``max_modalities``
rows of ``F`` features, one row per *slot*. Modality ``m`` of a task sits in slot
``slots[m]``; slots without a modality are zero rows with ``present = 0``. Nothing in a row
names its modality, and (with ``permute_modalities``) the slot order changes every episode, so
a policy must tell the modalities apart by what the rows say, not by where they are.

=========================  ======  =====================================================
part                       length  meaning
=========================  ======  =====================================================
``progress``               1       iterations done / total_iterations; [0, 1]
``modality_fraction``      1       present modalities / max_modalities; (0, 1]
row ``j`` (for each slot, ``max_modalities`` of them, ``F = 2 H + 3`` values each):
``history_scores``         H       cumulative scores S of the slot's modality, last H
                                   steps, oldest first; [0, 1]
``history_discrepancy``    H       its gap S - mean of the other present modalities (or
                                   the ratio), last H steps, oldest first
``batch_score``            1       its batch score s averaged over the last step; [0, 1]
``previous_action``        1       its last action index / (K - 1); [0, 1]
``present``                1       1 if a modality sits in the slot, else 0
=========================  ======  =====================================================

The action is ``MultiDiscrete([K] * max_modalities)``: one index into the multiplier grid per
slot; the indices of absent slots are ignored. The default grid (:data:`V1_MULTIPLIERS`) has 17
geometric steps from 0.5x to 2x, each 9% from the next, so a 10% change of one modality's share
is representable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from gymnasium import spaces

from dus_env.monitor import RATIO_MAX, MonitorState
from dus_env.spaces import bounded_observation

V1_MULTIPLIERS: tuple[float, ...] = tuple(round(2.0 ** (k / 8.0), 6) for k in range(-8, 9))
"""The DUS-v1 grid: 2^(k/8) for k in -8..8 (0.5x to 2x, 17 values, 1.0 in the middle)."""
GLOBAL_PARTS: tuple[str, ...] = ("progress", "modality_fraction")
ROW_PARTS: tuple[str, ...] = (
    "history_scores", "history_discrepancy", "batch_score", "previous_action", "present",
)


@dataclass(frozen=True)
class SlotLayout:
    """Where each named part sits in the flat DUS-v1 observation."""

    max_modalities: int
    history_length: int
    discrepancy: str
    n_actions: int
    """K: choices per slot in the action grid."""

    def __post_init__(self) -> None:
        if self.max_modalities < 2:
            raise ValueError(f"max_modalities={self.max_modalities} must be at least 2")

    @property
    def n_global(self) -> int:
        return len(GLOBAL_PARTS)

    @property
    def row_size(self) -> int:
        """F: features per slot row."""
        return 2 * self.history_length + 3

    @property
    def size(self) -> int:
        return self.n_global + self.max_modalities * self.row_size

    def row_slices(self) -> dict[str, slice]:
        """Where each part sits inside one row."""
        h = self.history_length
        return {"history_scores": slice(0, h), "history_discrepancy": slice(h, 2 * h),
                "batch_score": slice(2 * h, 2 * h + 1),
                "previous_action": slice(2 * h + 1, 2 * h + 2),
                "present": slice(2 * h + 2, 2 * h + 3)}

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the observation, as new arrays."""
        low = np.zeros(self.size, dtype=np.float32)
        high = np.ones(self.size, dtype=np.float32)
        disc = self.row_slices()["history_discrepancy"]
        for j in range(self.max_modalities):
            start = self.n_global + j * self.row_size
            window = slice(start + disc.start, start + disc.stop)
            if self.discrepancy == "gap":
                low[window] = -1.0
            else:
                high[window] = RATIO_MAX
        return low, high

    def observation_space(self) -> spaces.Box:
        low, high = self.bounds()
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete(np.full(self.max_modalities, self.n_actions), dtype=np.int64)

    @cached_property
    def _bound_values(self) -> tuple[list[float], list[float]]:
        low, high = self.bounds()
        return low.tolist(), high.tolist()

    def encode(self, state: MonitorState, batch_scores: Sequence[float], progress: float,
               previous_action: Sequence[int], slots: Sequence[int]) -> np.ndarray:
        """The flat observation; modality ``i`` (the monitor's order) fills row ``slots[i]``.
        Values are clipped into the bounds and non-finite ones replaced by 0."""
        m = len(slots)
        if not 2 <= m <= self.max_modalities or sorted(set(slots)) != sorted(slots) or \
                min(slots) < 0 or max(slots) >= self.max_modalities:
            raise ValueError(f"slots={list(slots)} must be distinct slots in "
                             f"[0, {self.max_modalities - 1}], one per modality (2..."
                             f"{self.max_modalities} of them)")
        k = max(self.n_actions - 1, 1)
        f = self.row_size
        values = [0.0] * self.size
        values[0], values[1] = progress, m / self.max_modalities
        hist_s, hist_d = state.history_score_rows, state.history_discrepancy_rows
        for i, slot in enumerate(slots):
            start = self.n_global + slot * f
            row = [r[i] for r in hist_s] + [r[i] for r in hist_d]
            row += [batch_scores[i], previous_action[i] / k, 1.0]
            values[start:start + f] = row
        return bounded_observation(values, *self._bound_values)

    def decode(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Named parts of an observation (or a batch, leading axes kept): the global parts with
        shape ``(...,)``, the row parts with shape ``(..., max_modalities, n)`` (``n = H`` for
        the histories, 1 for the others), and ``rows`` of shape ``(..., max_modalities, F)``."""
        obs = np.asarray(obs)
        if obs.shape[-1] != self.size:
            raise ValueError(
                f"observation has {obs.shape[-1]} values; this DUS-v1 layout (max_modalities="
                f"{self.max_modalities}, H={self.history_length}) needs {self.size}"
            )
        lead = obs.shape[:-1]
        out: dict[str, np.ndarray] = {name: obs[..., i] for i, name in enumerate(GLOBAL_PARTS)}
        rows = obs[..., self.n_global:].reshape(*lead, self.max_modalities, self.row_size)
        out["rows"] = rows
        for name, window in self.row_slices().items():
            out[name] = rows[..., window]
        return out

    def cumulative_scores(self, obs: np.ndarray) -> np.ndarray:
        """The latest cumulative score of each slot, shape ``(..., max_modalities)`` (0 for
        absent slots)."""
        return self.decode(obs)["history_scores"][..., -1]

    def present(self, obs: np.ndarray) -> np.ndarray:
        """Which slots hold a modality, shape ``(..., max_modalities)``, bool."""
        return self.decode(obs)["present"][..., 0] > 0.5
