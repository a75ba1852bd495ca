"""Learning-status monitor: batch scores -> cumulative scores -> modality discrepancy.

No torch; plain Python floats inside, numpy arrays on demand. ``update`` takes the batch
scores s_t^j of one iteration (mean softmax probability of the true class on modality j's own
batch); ``record`` and ``state`` return a frozen :class:`MonitorState` with:

* cumulative scores S_t^j: the running mean of s^j over all iterations so far (the paper:
  S_1 = s_1, S_t = ((t-1)/t) S_{t-1} + s_t / t) or, with ``average='ema'``,
  S_t = beta S_{t-1} + (1 - beta) s_t (S_1 = s_1);
* gap_t^j = S_t^j - mean_{k != j} S_t^k and ratio_t^j = S_t^j / mean_{k != j} S_t^k;
* a fixed-length history of S and of the configured discrepancy: :meth:`record` appends the
  current values (the env records once per env step, a plain loop once per decision), the last
  H are kept, oldest first, padded at the front with the oldest kept value until H exist. The
  state after :meth:`reset` is recorded once, at the prior (chance level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dus_env.config import MonitorConfig

RATIO_MAX = 10.0
"""Ratios are clipped to [0, RATIO_MAX] so the observation stays bounded."""

Values = tuple[float, ...]


def _read_only(values: Sequence) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class MonitorState:
    """The monitor at a record. Values follow the modality order.

    Held as plain Python floats: the env builds one state every step, and at M = 2 or 3 the
    per-call cost of numpy dominates the arithmetic (``benchmarks/overhead.py``). The array
    properties (:attr:`batch_scores`, :attr:`cumulative_scores`, ...) build a new read-only
    array on each access.
    """

    iteration: int
    batch_values: Values
    """s^j of the latest iteration."""
    cumulative_values: Values
    """S^j."""
    gap_values: Values
    ratio_values: Values
    history_score_rows: tuple[Values, ...]
    """The last H cumulative scores, oldest first (H rows of M)."""
    history_discrepancy_rows: tuple[Values, ...]
    """The last H values of the configured discrepancy, oldest first (H rows of M)."""

    @property
    def batch_scores(self) -> np.ndarray:
        """Shape (M,): s^j of the latest iteration."""
        return _read_only(self.batch_values)

    @property
    def cumulative_scores(self) -> np.ndarray:
        """Shape (M,): S^j."""
        return _read_only(self.cumulative_values)

    @property
    def gap(self) -> np.ndarray:
        """Shape (M,): S^j minus the mean of the others."""
        return _read_only(self.gap_values)

    @property
    def ratio(self) -> np.ndarray:
        """Shape (M,): S^j over the mean of the others, clipped."""
        return _read_only(self.ratio_values)

    @property
    def history_scores(self) -> np.ndarray:
        """Shape (H, M): the last H cumulative scores, oldest first."""
        return _read_only(self.history_score_rows)

    @property
    def history_discrepancy(self) -> np.ndarray:
        """Shape (H, M): the last H values of the configured discrepancy, oldest first."""
        return _read_only(self.history_discrepancy_rows)

    @property
    def discrepancy(self) -> np.ndarray:
        return self.history_discrepancy[-1]


def discrepancy_values(scores: Sequence[float]) -> tuple[Values, Values]:
    """(gap, ratio) of each modality against the mean of the others, as plain floats."""
    m = len(scores)
    total = sum(scores)
    others = [(total - s) / (m - 1) for s in scores]
    gap = tuple(s - o for s, o in zip(scores, others))
    ratio = tuple(min(max(s / max(o, 1e-12), 0.0), RATIO_MAX) for s, o in zip(scores, others))
    return gap, ratio


def discrepancy(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gap, ratio) of each modality against the mean of the others; any M >= 2."""
    gap, ratio = discrepancy_values(np.asarray(scores, dtype=np.float64).tolist())
    return np.array(gap), np.array(ratio)


def mean_rows(rows: Sequence[Sequence[float]]) -> list[float]:
    """Column means of a non-empty list of equal-length rows (one step's batch scores)."""
    return [sum(column) / len(rows) for column in zip(*rows)]


def mean_abs(values: Sequence[float]) -> float:
    """Mean absolute value (the reward's mean |gap|)."""
    return sum(abs(v) for v in values) / len(values)


class DiscrepancyMonitor:
    """Tracks cumulative scores and discrepancy over one training run.

    Args:
        config: averaging rule, discrepancy kind and history length.
        n_modalities: M.
        prior: score assumed before the first iteration (chance level, 1 / n_classes), used to
            fill the history at the start.
    """

    def __init__(self, config: MonitorConfig, n_modalities: int, prior: float) -> None:
        if n_modalities < 2:
            raise ValueError(f"n_modalities={n_modalities} must be at least 2")
        self.config = config
        self.n_modalities = n_modalities
        self.prior = float(prior)
        self.reset()

    def reset(self) -> MonitorState:
        """Forget everything; returns the prior state."""
        self._t = 0
        # Plain floats throughout: update() runs every iteration and record() every env step,
        # and numpy's per-call overhead dominates at M = 2 or 3 (benchmarks/overhead.py).
        self._cumulative = [self.prior] * self.n_modalities
        # The history as tuples of rows, oldest first; the first record fills every row (the
        # front padding with the oldest kept value), later ones shift in at the end. States
        # share these immutable tuples, so recording copies nothing.
        self._hist_s: tuple[Values, ...] = ()
        self._hist_d: tuple[Values, ...] = ()
        self._batch = [self.prior] * self.n_modalities
        return self.record()

    def update(self, batch_scores: Sequence[float]) -> np.ndarray:
        """Fold in one iteration's batch scores; returns the cumulative scores (a copy).

        Cheap on purpose (it runs every iteration); :attr:`state` builds the full state.
        """
        self.update_many((batch_scores,))
        return np.array(self._cumulative)

    def update_many(self, batch_scores: Sequence[Sequence[float]]) -> None:
        """Fold in several iterations' batch scores, oldest first: the same arithmetic as
        :meth:`update` on each, in one call (the env folds a whole step at once)."""
        m, mean, beta = self.n_modalities, self.config.average == "mean", self.config.ema_beta
        t, cumulative, s = self._t, self._cumulative, self._batch
        for row in batch_scores:
            s = [float(v) for v in row]
            if len(s) != m:
                raise ValueError(
                    f"batch_scores has shape ({len(s)},); expected ({m},): one score per "
                    "modality"
                )
            t += 1
            if t == 1:
                cumulative = s
            elif mean:
                cumulative = [((t - 1) * c + x) / t for c, x in zip(cumulative, s)]
            else:
                cumulative = [beta * c + (1.0 - beta) * x for c, x in zip(cumulative, s)]
        self._t, self._cumulative, self._batch = t, cumulative, s

    @property
    def state(self) -> MonitorState:
        """The current state (history as last recorded)."""
        return self._make_state(tuple(self._cumulative))

    def record(self) -> MonitorState:
        """Append the current cumulative scores and discrepancy to the history."""
        cumulative = tuple(self._cumulative)
        gap, ratio = discrepancy_values(cumulative)
        disc = gap if self.config.discrepancy == "gap" else ratio
        if not self._hist_s:
            h = self.config.history_length
            self._hist_s, self._hist_d = (cumulative,) * h, (disc,) * h
        else:
            self._hist_s = self._hist_s[1:] + (cumulative,)
            self._hist_d = self._hist_d[1:] + (disc,)
        return self._make_state(cumulative, gap, ratio)

    def _make_state(self, cumulative: Values, gap: Values | None = None,
                    ratio: Values | None = None) -> MonitorState:
        if gap is None or ratio is None:
            gap, ratio = discrepancy_values(cumulative)
        return MonitorState(
            iteration=self._t,
            batch_values=tuple(self._batch),
            cumulative_values=cumulative,
            gap_values=gap,
            ratio_values=ratio,
            history_score_rows=self._hist_s,
            history_discrepancy_rows=self._hist_d,
        )
