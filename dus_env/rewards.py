"""Reward functions, selected by name (:data:`dus_env.registry.REWARDS`), returning named terms
(their sum is the reward).

* ``val_delta`` (default): ``scale * (val_acc_now - val_acc_before)`` on a fixed validation
  subset; the episode return telescopes to ``scale * (final - initial)`` validation accuracy.
* ``discrepancy``: ``scale * (mean|gap| before - mean|gap| now)``: reward for closing the gap
  between modalities' cumulative scores. Reads no validation data.
* ``terminal``: ``scale * val_acc`` at the last step, 0 before.
* ``hybrid``: ``val_delta + hybrid_discrepancy_weight * discrepancy``.
* ``paired``: ``val_delta`` minus the same of a reference run (uniform sampling, same task and
  episode seeds: :mod:`dus_env.reference`): terms ``val_delta`` and ``reference_delta``; the
  return telescopes to ``scale * (final - reference final)`` validation accuracy.
* ``paired_best``: ``paired`` on the best validation accuracy so far (reset included) instead
  of the latest, for the run and for its reference: terms ``best_delta`` and
  ``reference_best_delta``; the return telescopes to ``scale * (best - reference best)``, the
  validation accuracy of the weights that model selection on validation keeps. A run whose
  encoder dies after its peak (a drop of tens of points on some seeds of the synthetic tasks)
  loses nothing it had, as the selected model does not; ``paired`` pays the whole drop.

On divergence every term is 0 and a ``divergence`` term of ``-divergence_penalty`` is added.
A reward is an object with :meth:`Reward.reads_validation` and :meth:`Reward.terms`; register
new ones in :data:`dus_env.registry.REWARDS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dus_env.config import RewardConfig
from dus_env.monitor import MonitorState, mean_abs
from dus_env.registry import REWARDS


@dataclass(frozen=True)
class RewardStep:
    """What a reward reads at the end of one env step."""

    previous: MonitorState
    """The monitor at the end of the step before."""
    current: MonitorState
    """The monitor at the end of this step."""
    previous_val: float | None
    """Validation accuracy read at the last validation before this step (None if never)."""
    val: float | None
    """Validation accuracy read at this step (None where the reward reads none)."""
    last_step: bool
    diverged: bool
    step: int = 0
    """Decision steps completed, this one included."""
    reference: tuple[float, ...] | None = None
    """The reference run's validation accuracy at reset and after each step (``paired``)."""
    previous_best: float | None = None
    """The best validation accuracy read before this step, reset included (None if never)."""


class Reward:
    """Base reward: subclasses set :attr:`every_step` / :attr:`at_end` and :meth:`_terms`."""

    every_step = False
    """Reads validation accuracy at every step (and at reset)."""
    at_end = False
    """Reads validation accuracy at the last step."""
    needs_reference = False
    """Needs the uniform reference run's validation curve."""

    def reads_validation(self, last_step: bool) -> bool:
        """Whether this reward reads a validation accuracy at a step (``last_step``: the
        episode's last)."""
        return self.every_step or (self.at_end and last_step)

    def terms(self, config: RewardConfig, step: RewardStep) -> dict[str, float]:
        """The named terms of one env step."""
        if step.diverged:
            return {"divergence": -float(config.divergence_penalty)}
        return self._terms(config, step)

    def _terms(self, config: RewardConfig, step: RewardStep) -> dict[str, float]:
        raise NotImplementedError


def _val_delta(config: RewardConfig, step: RewardStep) -> float:
    assert step.val is not None and step.previous_val is not None
    return config.scale * (step.val - step.previous_val)


def _gap_closed(config: RewardConfig, step: RewardStep, weight: float = 1.0) -> float:
    closed = mean_abs(step.previous.gap_values) - mean_abs(step.current.gap_values)
    return weight * config.scale * closed


class ValDelta(Reward):
    every_step = True

    def _terms(self, config, step):
        return {"val_delta": _val_delta(config, step)}


class Discrepancy(Reward):
    def _terms(self, config, step):
        return {"discrepancy": _gap_closed(config, step)}


class Terminal(Reward):
    at_end = True

    def _terms(self, config, step):
        value = config.scale * step.val if step.last_step and step.val is not None else 0.0
        return {"terminal": value}


class Hybrid(Reward):
    every_step = True

    def _terms(self, config, step):
        return {"val_delta": _val_delta(config, step),
                "discrepancy": _gap_closed(config, step, config.hybrid_discrepancy_weight)}


class Paired(Reward):
    """``paired``: this step's rise of the run's validation curve minus the reference's."""

    every_step = True
    needs_reference = True
    names = ("val_delta", "reference_delta")

    def _terms(self, config, step):
        ref = step.reference
        assert ref is not None and 1 <= step.step < len(ref) and step.val is not None
        own, theirs = self._rises(step, ref)
        return {self.names[0]: config.scale * own, self.names[1]: -config.scale * theirs}

    def _rises(self, step: RewardStep, ref: tuple[float, ...]) -> tuple[float, float]:
        assert step.previous_val is not None
        return step.val - step.previous_val, ref[step.step] - ref[step.step - 1]


class PairedBest(Paired):
    """``paired_best``: the same on the best validation accuracy so far (reset included)."""

    names = ("best_delta", "reference_best_delta")

    def _rises(self, step: RewardStep, ref: tuple[float, ...]) -> tuple[float, float]:
        assert step.previous_best is not None
        own = max(step.previous_best, step.val) - step.previous_best
        return own, max(ref[: step.step + 1]) - max(ref[: step.step])


val_delta, discrepancy, terminal, hybrid = ValDelta(), Discrepancy(), Terminal(), Hybrid()
paired, paired_best = Paired(), PairedBest()


def get_reward(config: RewardConfig) -> Reward:
    """The reward ``config.name`` names."""
    return REWARDS.load(config.name)
