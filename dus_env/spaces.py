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
``previous_action``         M          last action index / (K - 1) per modality; [0, 1]
==========================  =========  =====================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from gymnasium import spaces

from dus_env.config import EnvConfig
from dus_env.monitor import RATIO_MAX, MonitorState

PARTS: tuple[str, ...] = (
    "history_scores", "history_discrepancy", "batch_scores", "progress", "previous_action",
)


@dataclass(frozen=True)
class ObservationLayout:
    """Where each named part sits in the flat observation."""

    n_modalities: int
    history_length: int
    discrepancy: str
    n_actions: int
    """K: choices per modality in the action grid."""

    @classmethod
    def from_config(cls, config: EnvConfig) -> ObservationLayout:
        return cls(
            n_modalities=len(config.modalities),
            history_length=config.monitor.history_length,
            discrepancy=config.monitor.discrepancy,
            n_actions=len(config.sampler.multipliers),
        )

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
        low, high = self._bounds
        return low.copy(), high.copy()

    @cached_property
    def _slices(self) -> dict[str, slice]:  # read by encode() every step
        return self.slices()

    @cached_property
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:  # read by encode() every step
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

    def action_space(self) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete(np.full(self.n_modalities, self.n_actions), dtype=np.int64)

    def encode(
        self,
        state: MonitorState,
        batch_scores: Sequence[float],
        progress: float,
        previous_action: Sequence[int],
    ) -> np.ndarray:
        """The flat observation (clipped into the bounds; non-finite values replaced)."""
        obs = np.empty(self.size, dtype=np.float64)
        where = self._slices
        obs[where["history_scores"]] = state.history_scores.ravel()
        obs[where["history_discrepancy"]] = state.history_discrepancy.ravel()
        obs[where["batch_scores"]] = batch_scores
        obs[where["progress"]] = progress
        obs[where["previous_action"]] = previous_action
        obs[where["previous_action"]] /= max(self.n_actions - 1, 1)
        np.nan_to_num(obs, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = self._bounds
        return np.clip(obs, low, high, out=obs).astype(np.float32)

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
