"""The online REINFORCE agent: it learns, it is seeded privately, it saves and replays."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import dus_env
from dus_agents import run_episode
from dus_agents.reinforce import ReinforceAgent, ReinforceConfig
from dus_env.spaces import ObservationLayout

torch.set_num_threads(1)
LAYOUT = ObservationLayout(n_modalities=2, history_length=2, discrepancy="gap", n_actions=5)
GRID = (0.5, 0.75, 1.0, 1.5, 2.0)


def bandit_agent(**config) -> ReinforceAgent:
    return ReinforceAgent(LAYOUT, GRID, ReinforceConfig(**config), seed=0)


def observation(progress: float = 0.5) -> np.ndarray:
    obs = np.zeros(LAYOUT.size, dtype=np.float32)
    obs[LAYOUT.slices()["progress"]] = progress
    return obs


def test_learns_a_bandit():
    """Reward 1 per modality that picks its target index: the target's probability rises
    from 1/5 to most of the mass."""
    target = np.array([4, 0])
    agent = bandit_agent(learning_rate=0.02)
    before = agent.action_probabilities(observation())[np.arange(2), target]
    params_before = [p.detach().clone() for p in agent.network.parameters()]
    for _ in range(400):
        action, _ = agent.predict(observation())
        agent.observe(float((action == target).sum()), terminated=False)
    after = agent.action_probabilities(observation())[np.arange(2), target]
    assert np.allclose(before, 0.2, atol=0.02)
    assert (after > 0.7).all(), after
    assert agent.n_updates == 400 // agent.config.update_every
    assert any(not torch.equal(a, b) for a, b in zip(params_before, agent.network.parameters()))
    agent.freeze()
    np.testing.assert_array_equal(agent.predict(observation(), deterministic=True)[0], target)


def test_learns_a_contextual_bandit():
    """The best action depends on the observation (training progress)."""
    agent = bandit_agent(learning_rate=0.01)
    rng = np.random.default_rng(0)
    for _ in range(800):
        progress = float(rng.random())
        best = 0 if progress < 0.5 else 4
        action, _ = agent.predict(observation(progress))
        agent.observe(float((action == best).sum()), terminated=False)
    early = agent.action_probabilities(observation(0.1))
    late = agent.action_probabilities(observation(0.9))
    assert (early[:, 0] > early[:, 4]).all() and (late[:, 4] > late[:, 0]).all()


def test_updates_every_k_steps_and_at_episode_end():
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    agent = ReinforceAgent.for_env(env, ReinforceConfig(update_every=4), seed=0)
    run_episode(env, agent, seed=0)  # 6 steps: one update after 4, one at the end
    assert agent.n_updates == 2 and agent.steps_seen == 6 and agent.n_episodes == 1


def test_samples_while_learning_even_when_asked_deterministic():
    agent = bandit_agent()
    actions = {tuple(agent.predict(observation(), deterministic=True)[0]) for _ in range(20)}
    assert len(actions) > 1


def test_global_rng_untouched():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    agent = bandit_agent()
    for _ in range(10):
        action, _ = agent.predict(observation())
        agent.observe(1.0, terminated=False)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])


def test_same_seed_same_behaviour_different_seed_different():
    def actions(seed):
        agent = ReinforceAgent(LAYOUT, GRID, seed=seed)
        out = []
        for _ in range(12):
            a, _ = agent.predict(observation())
            agent.observe(float(a[0]), terminated=False)
            out.append(a)
        return np.array(out)

    np.testing.assert_array_equal(actions(3), actions(3))
    assert not np.array_equal(actions(3), actions(4))


def test_save_then_resume_learning_matches_uninterrupted(tmp_path):
    def step(agent, n):
        out = []
        for i in range(n):
            a, _ = agent.predict(observation())
            agent.observe(float(a[1] == 2), terminated=(i == n - 1))
            out.append(a)
        return np.array(out)

    whole = bandit_agent()
    full = step(whole, 16)
    first = bandit_agent()
    part = step(first, 8)
    path = first.save(tmp_path / "r.zip", env_spec={"observation_size": LAYOUT.size})
    resumed = ReinforceAgent.load(path, frozen=False)
    np.testing.assert_array_equal(np.concatenate([part, step(resumed, 8)]), full)


def test_frozen_replay_is_deterministic_and_does_not_learn(tmp_path):
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    agent = ReinforceAgent.for_env(env, seed=0)
    run_episode(env, agent, seed=0)
    path = agent.save(tmp_path / "r.zip")
    replay = ReinforceAgent.load(path, env)
    params = [p.detach().clone() for p in replay.network.parameters()]
    a = run_episode(env, replay, seed=5)
    b = run_episode(env, replay, seed=5)
    assert a.actions == b.actions and a.episode_return == b.episode_return
    assert replay.n_updates == agent.n_updates
    assert all(torch.equal(p, q) for p, q in zip(params, replay.network.parameters()))


def test_config_validation():
    with pytest.raises(ValueError, match="reinforce.baseline="):
        ReinforceConfig(baseline="value")
    with pytest.raises(ValueError, match="reinforce.update_every="):
        ReinforceConfig(update_every=0)
    with pytest.raises(ValueError, match="multipliers has 3 values"):
        ReinforceAgent(LAYOUT, (0.5, 1.0, 2.0))


def test_save_needs_an_env_spec(tmp_path):
    with pytest.raises(ValueError, match="env_spec"):
        bandit_agent().save(tmp_path / "x.zip")
