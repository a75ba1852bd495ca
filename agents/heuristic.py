"""Hand-written policies: uniform, random and the DUS heuristic (DUS-H)."""

from __future__ import annotations

import numpy as np

from dus_agents.base import GridPolicy
from dus_env.errors import check_range
from dus_env.sampler import HEURISTIC_DEFAULTS, inverse_score_multipliers
from dus_env.spaces import ObservationLayout


class UniformPolicy(GridPolicy):
    """Every modality gets the base batch size (multiplier 1.0)."""

    def _act(self, obs, deterministic):
        if self.full_resolution:
            return np.ones((obs.shape[0], self.action_width), np.float32)
        return np.full((obs.shape[0], self.action_width), self.uniform_index, np.int64)


class RandomPolicy(GridPolicy):
    """A uniformly random grid index per modality, from its own seeded generator."""

    def __init__(self, layout: ObservationLayout, multipliers: tuple[float, ...], seed: int = 0):
        super().__init__(layout, multipliers)
        self.rng = np.random.default_rng(seed)

    def _act(self, obs, deterministic):
        index = self.rng.integers(0, len(self.multipliers), size=(obs.shape[0], self.action_width))
        if self.full_resolution:
            return self.multipliers[index].astype(np.float32)
        return index.astype(np.int64)


class HeuristicPolicy(GridPolicy):
    """DUS-H: budget-preserving inverse-score allocation.

    From the latest cumulative scores S^j in the observation:
    ``w^j = (1/S^j)^gamma / sum_k (1/S^k)^gamma`` and the requested multiplier is
    ``M * w^j`` (so the total stays about ``M * base_batch_size``), clipped to
    ``[min_multiplier, max_multiplier]``. In an env with ``sampler.action="multipliers"`` that
    multiplier is the action (full resolution: the rule applied exactly); on a grid it is
    snapped to the nearest grid value. The weaker modality (lower S) gets more samples.
    Uniform while training progress < ``warmup``.

    Args:
        layout, multipliers: the env's observation layout and action grid.
        gamma: exponent of the inverse score (0 = uniform; larger = more skew).
        warmup: fraction of the run (progress in [0, 1]) during which the policy is uniform.
        min_multiplier, max_multiplier: bounds n_min / n_b and n_max / n_b.
    """

    def __init__(
        self,
        layout: ObservationLayout,
        multipliers: tuple[float, ...],
        gamma: float = HEURISTIC_DEFAULTS["gamma"],
        warmup: float = HEURISTIC_DEFAULTS["warmup"],
        min_multiplier: float = HEURISTIC_DEFAULTS["min_multiplier"],
        max_multiplier: float = HEURISTIC_DEFAULTS["max_multiplier"],
    ) -> None:
        super().__init__(layout, multipliers)
        check_range("gamma", gamma, 0.0)
        check_range("warmup", warmup, 0.0, 1.0)
        check_range("min_multiplier", min_multiplier, 0.0, low_inclusive=False)
        if max_multiplier < min_multiplier:
            raise ValueError(
                f"max_multiplier={max_multiplier} must be >= min_multiplier={min_multiplier}"
            )
        self.gamma, self.warmup = gamma, warmup
        self.min_multiplier, self.max_multiplier = min_multiplier, max_multiplier

    def requested_multipliers(self, obs: np.ndarray) -> np.ndarray:
        """The unsnapped multipliers M * w^j for a batch of observations (1.0 for absent
        DUS-v1 slots)."""
        return inverse_score_multipliers(
            self.layout.cumulative_scores(obs), self.present(obs), gamma=self.gamma,
            min_multiplier=self.min_multiplier, max_multiplier=self.max_multiplier)

    def _act(self, obs, deterministic):
        requested = self.requested_multipliers(obs)
        warm = self.progress(obs) < self.warmup
        if self.full_resolution:  # the rule itself: the env takes the multipliers as they are
            requested[warm] = 1.0
            return requested.astype(np.float32)
        actions = self.nearest_indices(requested)
        actions[warm] = self.uniform_index
        return actions


class SchedulePolicy(GridPolicy):
    """An open-loop schedule: piecewise-constant grid indices per modality over phases of the
    run, read only from the observation's progress (the oracle of ``benchmarks/oracle.py``).

    Args:
        layout, multipliers: the env's observation layout and action grid.
        schedule: one row per phase (equal shares of the run, in order), each with one grid
            index per action entry (modality, or DUS-v1 slot; absent slots are ignored).
    """

    def __init__(self, layout, multipliers, schedule) -> None:
        super().__init__(layout, multipliers)
        table = np.asarray(schedule, dtype=np.int64)
        if table.ndim != 2 or table.shape[1] != self.action_width or len(table) < 1:
            raise ValueError(f"schedule has shape {table.shape}; expected (phases, "
                             f"{self.action_width}): one index per action entry per phase")
        if table.min() < 0 or table.max() >= len(self.multipliers):
            raise ValueError(f"schedule indices must lie in [0, {len(self.multipliers) - 1}]")
        self.schedule = table

    def _act(self, obs, deterministic):
        phases = len(self.schedule)
        phase = np.minimum((self.progress(obs) * phases).astype(np.int64), phases - 1)
        return self.schedule[phase].copy()
