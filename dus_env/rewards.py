"""Reward functions, selected by name, returning named terms (their sum is the reward).

* ``val_delta`` (default): ``scale * (val_acc_now - val_acc_before)`` on a fixed validation
  subset; the episode return telescopes to ``scale * (final - initial)`` validation accuracy.
* ``discrepancy``: ``scale * (mean|gap| before - mean|gap| now)``: reward for closing the gap
  between modalities' cumulative scores. Reads no validation data.
* ``terminal``: ``scale * val_acc`` at the last step, 0 before.
* ``hybrid``: ``val_delta + hybrid_discrepancy_weight * discrepancy``.

On divergence every term is 0 and a ``divergence`` term of ``-divergence_penalty`` is added.
"""

from __future__ import annotations

from dus_env.config import RewardConfig
from dus_env.monitor import MonitorState, mean_abs


def needs_validation(config: RewardConfig, last_step: bool) -> bool:
    """Whether the reward reads a validation accuracy at this step."""
    if config.name in ("val_delta", "hybrid"):
        return True
    return config.name == "terminal" and last_step


def reward_terms(
    config: RewardConfig,
    *,
    previous: MonitorState,
    current: MonitorState,
    previous_val: float | None,
    val: float | None,
    last_step: bool,
    diverged: bool,
) -> dict[str, float]:
    """The named reward terms of one env step."""
    if diverged:
        return {"divergence": -float(config.divergence_penalty)}
    terms: dict[str, float] = {}
    if config.name in ("val_delta", "hybrid"):
        assert val is not None and previous_val is not None
        terms["val_delta"] = config.scale * (val - previous_val)
    if config.name in ("discrepancy", "hybrid"):
        closed = mean_abs(previous.gap_values) - mean_abs(current.gap_values)
        weight = 1.0 if config.name == "discrepancy" else config.hybrid_discrepancy_weight
        terms["discrepancy"] = weight * config.scale * closed
    if config.name == "terminal":
        terms["terminal"] = config.scale * val if last_step and val is not None else 0.0
    return terms
