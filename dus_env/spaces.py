"""Observation and action spaces of DUS-v0, and the pure functions that fill them.

The observation is one flat float32 vector. :class:`ObservationLayout` names its parts, so a
policy (the DUS heuristic, a plain-loop controller) reads them by name, never by offset.

==========================  =========  =====================================================
part                        length     meaning
==========================  =========  =====================================================
``history_scores``          H * M      cumulative scores S^j of the last H env steps, oldest
                                       first, row-major (H rows of M modalities); [0, 1]
``history_discrepancy``     H * M      discrepancy of the last H env steps (gap in [-1, 1] or
                                       ratio in [0, 10], per ``monitor.discrepancy``)
``batch_scores``            M          batch scores s^j averaged over the last step; [0, 1]
``progress``                1          iterations done / total_iterations; [0, 1]
``previous_action``         M          last action index / (K - 1) per modality; [0, 1] (with
                                       ``sampler.action="multipliers"``: where the requested
                                       multiplier lies on the grid's log scale)
==========================  =========  =====================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from gymnasium import spaces

from dus_env.config import EnvConfig, MonitorConfig, SamplerConfig
from dus_env.monitor import RATIO_MAX, MonitorState

PARTS: tuple[str, ...] = (
    "history_scores", "history_discrepancy", "batch_scores", "progress", "previous_action",
)


def bounded_observation(values: list[float], low: Sequence[float],
                        high: Sequence[float]) -> np.ndarray:
    """``values`` as a float32 observation: non-finite values replaced by 0, then clipped into
    ``[low, high]`` (plain floats in one pass: this runs every env step, where numpy's per-call
    cost exceeds the arithmetic)."""
    for i, (x, lo, hi) in enumerate(zip(values, low, high)):
        if not lo <= x <= hi:  # out of bounds, NaN or infinite
            if x != x or x in (math.inf, -math.inf):
                x = 0.0
            values[i] = min(max(x, lo), hi)
    return np.array(values, dtype=np.float32)


@dataclass(frozen=True)
class ObservationLayout:
    """Where each named part sits in the flat observation."""

    n_modalities: int
    history_length: int
    discrepancy: str
    n_actions: int
    """K: choices per modality in the action grid."""
    action_mode: str = "grid"
    """``grid`` (MultiDiscrete indices) or ``multipliers`` (a Box of requested multipliers)."""
    multiplier_range: tuple[float, float] = (0.5, 2.0)
    """The smallest and largest multiplier (the Box bounds in ``multipliers`` mode)."""

    @classmethod
    def for_parts(cls, n_modalities: int, monitor: MonitorConfig,
                  sampler: SamplerConfig) -> ObservationLayout:
        """The layout for ``n_modalities`` modalities with these monitor and sampler settings."""
        return cls(
            n_modalities=n_modalities,
            history_length=monitor.history_length,
            discrepancy=monitor.discrepancy,
            n_actions=len(sampler.multipliers),
            action_mode=sampler.action,
            multiplier_range=(float(sampler.multipliers[0]), float(sampler.multipliers[-1])),
        )

    @classmethod
    def from_config(cls, config: EnvConfig) -> ObservationLayout:
        """The layout of an env built from ``config``."""
        return cls.for_parts(len(config.modalities), config.monitor, config.sampler)

    def sizes(self) -> dict[str, int]:
        hm = self.history_length * self.n_modalities
        m = self.n_modalities
        return dict(zip(PARTS, (hm, hm, m, 1, m)))

    @property
    def size(self) -> int:
        return sum(self.sizes().values())

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, n in self.sizes().items():
            out[name] = slice(start, start + n)
            start += n
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the observation, as new arrays."""
        low = np.zeros(self.size, dtype=np.float32)
        high = np.ones(self.size, dtype=np.float32)
        disc = self.slices()["history_discrepancy"]
        if self.discrepancy == "gap":
            low[disc] = -1.0
        else:
            high[disc] = RATIO_MAX
        return low, high

    def observation_space(self) -> spaces.Box:
        low, high = self.bounds()
        return spaces.Box(low=low, high=high, dtype=np.float32)

    def action_space(self) -> spaces.MultiDiscrete | spaces.Box:
        if self.action_mode == "multipliers":
            lo, hi = self.multiplier_range
            return spaces.Box(low=np.float32(lo), high=np.float32(hi),
                              shape=(self.n_modalities,), dtype=np.float32)
        return spaces.MultiDiscrete(np.full(self.n_modalities, self.n_actions), dtype=np.int64)

    def action_position(self, action: Sequence[float]) -> list[float]:
        """Each action entry's place in [0, 1]: index / (K - 1) on the grid, the log-scale
        position of a requested multiplier in ``multipliers`` mode."""
        if self.action_mode == "multipliers":
            lo, hi = (math.log(x) for x in self.multiplier_range)
            return [(math.log(a) - lo) / (hi - lo) for a in action]
        k = max(self.n_actions - 1, 1)
        return [a / k for a in action]

    def encode(
        self,
        state: MonitorState,
        batch_scores: Sequence[float],
        progress: float,
        previous_action: Sequence[int],
    ) -> np.ndarray:
        """The flat observation (clipped into the bounds; non-finite values replaced by 0)."""
        # Assembled from plain floats with one numpy call at the end: this runs every env
        # step, where numpy's per-call cost exceeds the arithmetic (benchmarks/overhead.py).
        values = [v for row in state.history_score_rows for v in row]
        values.extend([v for row in state.history_discrepancy_rows for v in row])
        values.extend(batch_scores)  # extend, not +=: += with an array would broadcast
        values.append(progress)
        values.extend(self.action_position(previous_action))
        if len(values) != self.size:
            raise ValueError(
                f"observation parts give {len(values)} values; this layout "
                f"(M={self.n_modalities}, H={self.history_length}) needs {self.size}"
            )
        return bounded_observation(values, *self._bound_values)

    @cached_property
    def _bound_values(self) -> tuple[list[float], list[float]]:  # read by encode() every step
        low, high = self.bounds()
        return low.tolist(), high.tolist()

    def decode(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Split an observation (or a batch of them, leading axes kept) into named parts;
        the history parts get shape ``(..., H, M)``."""
        obs = np.asarray(obs)
        if obs.shape[-1] != self.size:
            raise ValueError(
                f"observation has {obs.shape[-1]} values; this layout (M={self.n_modalities}, "
                f"H={self.history_length}) needs {self.size}"
            )
        lead = obs.shape[:-1]
        out = {name: obs[..., s] for name, s in self.slices().items()}
        for name in ("history_scores", "history_discrepancy"):
            out[name] = out[name].reshape(*lead, self.history_length, self.n_modalities)
        return out

    def cumulative_scores(self, obs: np.ndarray) -> np.ndarray:
        """The latest cumulative scores S^j, shape ``(..., M)``."""
        return self.decode(obs)["history_scores"][..., -1, :]
