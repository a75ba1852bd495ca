"""One decision step of DUS: what happens between two sampling decisions, in one place.

:class:`DecisionState` owns everything a sampling policy's decision depends on: the monitor of
cumulative scores and discrepancy, the batch scores of the current step, the previous action,
the iteration count, the conversion of an action into batch sizes and the observation. Two
drivers use it, so they cannot drift apart:

* :class:`dus_env.env.DUSEnv`, where the env trains the model itself;
* :class:`dus_env.replay.SamplingController`, where a user's own loop trains and reports.

A step is: :meth:`~DecisionState.check_action` and :meth:`~DecisionState.batch_sizes` for the
policy's action, :meth:`~DecisionState.add_iteration` once per training iteration, then
:meth:`~DecisionState.end_step`; :meth:`~DecisionState.observation` is what the policy sees next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dus_env.config import MonitorConfig, SamplerConfig
from dus_env.errors import check_integer, check_names
from dus_env.monitor import DiscrepancyMonitor, MonitorState, mean_rows
from dus_env.sampler import multipliers_to_batch_sizes, resolve_batch_sizes, uniform_index
from dus_env.slots import SlotLayout
from dus_env.spaces import ObservationLayout


class DecisionState:
    """The state between sampling decisions of one training run.

    Args:
        modalities: modality names (the order of every per-modality vector).
        sampler: the action grid and batch-size bounds.
        monitor: score averaging, discrepancy kind and history length.
        n_classes: number of classes (the monitor starts at chance level 1 / n_classes).
        total_iterations: T, the run's iteration budget (progress = iterations / T).
    """

    def __init__(self, modalities: Sequence[str], sampler: SamplerConfig,
                 monitor: MonitorConfig, n_classes: int, total_iterations: int) -> None:
        check_names("modalities", modalities)
        self.modalities = tuple(modalities)
        if len(self.modalities) < 2 or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(
                f"modalities={list(self.modalities)!r} needs at least 2 distinct names"
            )
        check_integer("n_classes", n_classes, 2)
        check_integer("total_iterations", total_iterations, 1)
        self.sampler = sampler
        self.total_iterations = int(total_iterations)
        self.layout = ObservationLayout.for_parts(len(self.modalities), monitor, sampler)
        self.action_mode = sampler.action
        if self.action_mode == "multipliers":
            self.uniform_action: tuple = (1.0,) * len(self.modalities)
        else:
            self.uniform_action = (uniform_index(sampler.multipliers),) * len(self.modalities)
        """Every modality at the base batch size."""
        self._monitor = DiscrepancyMonitor(monitor, len(self.modalities), 1.0 / n_classes)
        self.reset()

    def reset(self) -> None:
        """A new run: the monitor at chance level, uniform previous action, no iterations."""
        self.state: MonitorState = self._monitor.reset()
        """The monitor as of the last completed step."""
        self.step_scores: list[float] = list(self.state.batch_values)
        """Batch scores averaged over the last completed step."""
        self.previous_action: tuple[int, ...] = self.uniform_action
        """The action in force during the last completed step."""
        self.iteration = 0
        """Training iterations fed so far."""
        self.steps = 0
        """Completed decision steps."""
        self._valid: list[list[float]] = []
        self._invalid: list[list[float]] = []

    # ------------------------------------------------------------------ actions
    def check_action(self, action: Any) -> tuple[int, ...]:
        """``action`` as a tuple of grid indices, or an error naming what is wrong: a
        ``ValueError`` for a wrong shape or an index off the grid, a ``TypeError`` for
        non-integers."""
        arr = np.asarray(action)
        if self.action_mode == "multipliers":
            self._check_shape(arr, len(self.modalities), "requested multiplier per modality "
                              f"{list(self.modalities)}")
            return self._check_multipliers(arr)
        self._check_shape(arr, len(self.modalities), f"index per modality "
                          f"{list(self.modalities)}")
        return self._check_indices(arr)

    @staticmethod
    def _check_shape(arr: np.ndarray, width: int, what: str) -> None:
        if arr.shape != (width,):
            raise ValueError(f"action has shape {arr.shape}; expected ({width},): one {what}")

    def _check_indices(self, arr: np.ndarray) -> tuple[int, ...]:
        grid, k = list(self.sampler.multipliers), len(self.sampler.multipliers)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(
                f"action has dtype {arr.dtype}; expected integers (indices into "
                f"sampler.multipliers={grid})"
            )
        values = tuple(arr.tolist())
        if min(values) < 0 or max(values) >= k:
            raise ValueError(
                f"action={list(values)} is out of range; valid range: integers in [0, {k - 1}] "
                f"(indices into sampler.multipliers={grid})"
            )
        return values

    def _check_multipliers(self, arr: np.ndarray) -> tuple[float, ...]:
        lo, hi = self.sampler.multipliers[0], self.sampler.multipliers[-1]
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"action has dtype {arr.dtype}; expected numbers (requested "
                            f"multipliers in [{lo}, {hi}])")
        values = tuple(float(v) for v in arr.tolist())
        if not all(lo - 1e-6 <= v <= hi + 1e-6 for v in values):  # float32 rounding allowed
            raise ValueError(f"action={list(values)} is out of range; valid range: requested "
                             f"multipliers in [{lo}, {hi}] (sampler.action='multipliers')")
        return tuple(min(max(v, lo), hi) for v in values)

    def batch_sizes(self, action: Sequence[int]) -> tuple[int, ...]:
        """Per-modality batch sizes for a checked action (the sampler's budget rule)."""
        if self.action_mode == "multipliers":
            base = self.sampler.base_batch_size
            return resolve_batch_sizes([a * base for a in self.modality_action(action)],
                                       self.sampler)
        return multipliers_to_batch_sizes(self.modality_action(action), self.sampler)

    # ------------------------------------------------------------------ feeding
    def add_iteration(self, scores: Sequence[float], valid: bool = True) -> None:
        """One training iteration's batch scores, in modality order. An invalid iteration (a
        diverged one) counts as an iteration but stays out of the monitor."""
        self.iteration += 1
        (self._valid if valid else self._invalid).append(scores)

    def end_step(self, action: Sequence[int]) -> tuple[MonitorState, MonitorState]:
        """Close the step that ran with ``action``: fold its valid scores into the monitor and
        record the history. Returns the monitor states (before, after)."""
        previous = self.state
        self._monitor.update_many(self._valid)
        self.state = self._monitor.record()
        rows = self._valid or self._invalid
        if rows:
            self.step_scores = mean_rows(rows)
        self._valid, self._invalid = [], []
        self.previous_action = self.modality_action(action)
        self.steps += 1
        return previous, self.state

    def modality_action(self, action: Sequence[int]) -> tuple[int, ...]:
        """A checked action as one grid index per modality, in modality order."""
        return tuple(action)

    # ------------------------------------------------------------------ reading
    @property
    def progress(self) -> float:
        """Iterations done / total_iterations, at most 1."""
        return min(self.iteration / self.total_iterations, 1.0)

    def observation(self) -> np.ndarray:
        """The observation a policy sees now (see :mod:`dus_env.spaces`)."""
        return self.layout.encode(self.state, self.step_scores, self.progress,
                                  self.previous_action)


class SlotDecisionState(DecisionState):
    """The DUS-v1 decision state: observations and actions by slot (:mod:`dus_env.slots`).

    The monitor still works in modality order; :attr:`slots` says which slot each modality
    takes (set with :meth:`set_slots`, identity by default). Actions carry one index per slot
    (``max_modalities`` of them); the indices of absent slots are checked for range and then
    ignored.

    Args:
        modalities, sampler, monitor, n_classes, total_iterations: as for
            :class:`DecisionState`.
        max_modalities: slots of the observation and the action.
    """

    def __init__(self, modalities: Sequence[str], sampler: SamplerConfig,
                 monitor: MonitorConfig, n_classes: int, total_iterations: int,
                 max_modalities: int) -> None:
        if sampler.action != "grid":
            raise ValueError(f"sampler.action={sampler.action!r}: DUS-v1 acts on the grid; "
                             "use sampler.action='grid'")
        if len(tuple(modalities)) > max_modalities:
            raise ValueError(
                f"the task has {len(tuple(modalities))} modalities {list(modalities)}, more "
                f"than max_modalities={max_modalities}; raise max_modalities"
            )
        self.slot_layout = SlotLayout(max_modalities, monitor.history_length,
                                      monitor.discrepancy, len(sampler.multipliers))
        self.slots: tuple[int, ...] = tuple(range(len(tuple(modalities))))
        """Slot of each modality (modality order)."""
        super().__init__(modalities, sampler, monitor, n_classes, total_iterations)
        self.layout = self.slot_layout  # what a policy sees
        self.uniform_slot_action: tuple[int, ...] = (
            (uniform_index(sampler.multipliers),) * max_modalities)
        """Every slot at the base batch size."""

    def set_slots(self, slots: Sequence[int]) -> None:
        """Which slot each modality takes (modality order; distinct, in range)."""
        slots = tuple(int(s) for s in slots)
        m, n = len(self.modalities), self.slot_layout.max_modalities
        if len(slots) != m or len(set(slots)) != m or min(slots) < 0 or max(slots) >= n:
            raise ValueError(f"slots={list(slots)} must give each of the {m} modalities its own "
                             f"slot in [0, {n - 1}]")
        self.slots = slots

    def check_action(self, action: Any) -> tuple[int, ...]:
        arr = np.asarray(action)
        n = self.slot_layout.max_modalities
        self._check_shape(arr, n, f"index per slot (max_modalities={n}; the indices of absent "
                          "slots are ignored)")
        return self._check_indices(arr)

    def modality_action(self, action: Sequence[int]) -> tuple[int, ...]:
        return tuple(action[slot] for slot in self.slots)

    def observation(self) -> np.ndarray:
        return self.slot_layout.encode(self.state, self.step_scores, self.progress,
                                       self.previous_action, self.slots)
