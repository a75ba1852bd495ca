"""Learning-status monitor: batch scores -> cumulative scores -> modality discrepancy.

Numpy only. ``update`` takes the batch scores s_t^j of one iteration (mean softmax probability
of the true class on modality j's own batch) and returns a frozen :class:`MonitorState`:

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


@dataclass(frozen=True, eq=False)
class MonitorState:
    """The monitor after an iteration. Arrays follow the modality order."""

    iteration: int
    batch_scores: np.ndarray
    cumulative_scores: np.ndarray
    gap: np.ndarray
    ratio: np.ndarray
    history_scores: np.ndarray
    """Shape (H, M): the last H cumulative scores, oldest first."""
    history_discrepancy: np.ndarray
    """Shape (H, M): the last H values of the configured discrepancy, oldest first."""

    @property
    def discrepancy(self) -> np.ndarray:
        return self.history_discrepancy[-1]


def discrepancy(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gap, ratio) of each modality against the mean of the others; any M >= 2."""
    scores = np.asarray(scores, dtype=np.float64)
    m = len(scores)
    others = (scores.sum() - scores) / (m - 1)
    gap = scores - others
    ratio = np.clip(scores / np.maximum(others, 1e-12), 0.0, RATIO_MAX)
    return gap, ratio


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
        # Plain floats between records: update() runs every iteration and numpy's per-call
        # overhead dominates at M = 2 or 3 (benchmarks/overhead.py).
        self._cumulative = [self.prior] * self.n_modalities
        # (H, M) shift registers, oldest row first; the first record fills every row (the
        # front padding with the oldest kept value), later ones shift in at the end.
        self._hist_s: np.ndarray | None = None
        self._hist_d: np.ndarray | None = None
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
        return self._make_state()

    def record(self) -> MonitorState:
        """Append the current cumulative scores and discrepancy to the history."""
        cumulative = np.array(self._cumulative)
        gap, ratio = discrepancy(cumulative)
        disc = gap if self.config.discrepancy == "gap" else ratio
        if self._hist_s is None or self._hist_d is None:
            h = self.config.history_length
            self._hist_s, self._hist_d = np.tile(cumulative, (h, 1)), np.tile(disc, (h, 1))
        else:
            self._hist_s[:-1] = self._hist_s[1:]
            self._hist_s[-1] = cumulative
            self._hist_d[:-1] = self._hist_d[1:]
            self._hist_d[-1] = disc
        return self._make_state(cumulative, gap, ratio)

    def _make_state(self, cumulative: np.ndarray | None = None, gap: np.ndarray | None = None,
                    ratio: np.ndarray | None = None) -> MonitorState:
        if cumulative is None or gap is None or ratio is None:
            cumulative = np.array(self._cumulative)
            gap, ratio = discrepancy(cumulative)
        assert self._hist_s is not None and self._hist_d is not None  # reset() records once
        return MonitorState(
            iteration=self._t,
            batch_scores=np.array(self._batch),
            cumulative_scores=cumulative.copy(),
            gap=gap,
            ratio=ratio,
            history_scores=self._hist_s.copy(),
            history_discrepancy=self._hist_d.copy(),
        )
