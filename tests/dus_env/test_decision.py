"""The decision step shared by the env and the plain-loop controller."""

from __future__ import annotations

import numpy as np
import pytest

from dus_env.config import MonitorConfig, SamplerConfig, get_preset
from dus_env.decision import DecisionState
from dus_env.sampler import multipliers_to_batch_sizes


def _state(total: int = 40, **sampler) -> DecisionState:
    return DecisionState(("a", "b"), SamplerConfig(**sampler), MonitorConfig(history_length=2),
                         n_classes=4, total_iterations=total)


def test_reset_state_is_prior_uniform_and_empty():
    d = _state()
    assert d.uniform_action == (2, 2) and d.previous_action == (2, 2)
    assert d.state.cumulative_values == (0.25, 0.25) and d.step_scores == [0.25, 0.25]
    assert d.iteration == 0 and d.steps == 0 and d.progress == 0.0
    obs = d.observation()
    assert obs.shape == (d.layout.size,) and d.layout.decode(obs)["previous_action"].tolist() == [0.5, 0.5]


def test_a_step_folds_valid_scores_records_and_remembers_the_action():
    d = _state()
    d.add_iteration([0.2, 0.6])
    d.add_iteration([0.4, 0.8])
    d.add_iteration([float("nan"), 1.0], valid=False)  # counted, not folded
    before, after = d.end_step((0, 4))
    assert before.cumulative_values == (0.25, 0.25)
    assert after.cumulative_values == pytest.approx((0.3, 0.7))
    assert d.step_scores == pytest.approx([0.3, 0.7])
    assert d.iteration == 3 and d.steps == 1 and d.previous_action == (0, 4)
    assert d.progress == pytest.approx(3 / 40)
    parts = d.layout.decode(d.observation())
    np.testing.assert_allclose(parts["history_scores"], [[0.25, 0.25], [0.3, 0.7]], rtol=1e-6)
    assert parts["previous_action"].tolist() == [0.0, 1.0]


def test_a_step_of_only_invalid_iterations_keeps_the_monitor():
    d = _state()
    d.add_iteration([float("inf"), 0.5], valid=False)
    _, after = d.end_step((2, 2))
    assert after.cumulative_values == (0.25, 0.25)
    assert d.step_scores[1] == 0.5  # the step's scores are still shown


def test_actions_checked_and_turned_into_sizes():
    d = _state()
    assert d.check_action(np.array([0, 4])) == (0, 4)
    assert d.check_action([1, 3]) == (1, 3)
    assert d.batch_sizes((0, 4)) == multipliers_to_batch_sizes((0, 4), SamplerConfig())
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(2,\)"):
        d.check_action([1, 1, 1])
    with pytest.raises(TypeError, match="dtype float64; expected integers"):
        d.check_action(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"action=\[0, 5\] is out of range"):
        d.check_action([0, 5])


def test_env_and_controller_share_one_decision_state():
    from dus_agents.heuristic import UniformPolicy
    from dus_env.env import DUSEnv
    from dus_env.replay import SamplingController

    env = DUSEnv(preset="tiny")
    controller = SamplingController.from_config(
        get_preset("tiny"), UniformPolicy(env.layout, env.config.sampler.multipliers))
    assert type(env._decision) is type(controller._decision) is DecisionState
    assert env.layout == controller.layout


def test_bad_arguments():
    with pytest.raises(ValueError, match="at least 2 distinct"):
        DecisionState(("a", "a"), SamplerConfig(), MonitorConfig(), 4, 10)
    with pytest.raises(ValueError, match="n_classes=1 is out of range"):
        DecisionState(("a", "b"), SamplerConfig(), MonitorConfig(), 1, 10)
