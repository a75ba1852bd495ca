"""The permutation-equivariant DeepSets policy: equivariance, masking, artefacts, replay."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

import dus_env
from dus_agents.deepsets import DeepSetsPolicy, deepsets_kwargs, heuristic_anchor
from dus_agents.heuristic import HeuristicPolicy
from dus_agents.ppo import PPOPolicy
from dus_agents.registry import make_policy
from dus_env.env_v1 import DUSEnvV1
from tests.conftest import rollout_observations

torch.set_num_threads(1)


def _trained(env, steps: int = 24) -> PPO:
    model = PPO(DeepSetsPolicy, env, n_steps=12, batch_size=6, n_epochs=2, device="cpu",
                seed=0, policy_kwargs=deepsets_kwargs(env, hidden=(16, 16), head=(16,)))
    model.learn(steps)
    return model


@pytest.fixture(scope="module")
def env():
    return gym.make(dus_env.ENV_V1_ID, suite="tiny", config={"reward": {"name": "paired"}})


@pytest.fixture(scope="module")
def policy(env):
    return _trained(env).policy


def _observations(env, n=6):
    out = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        obs, *_ = env.step(env.action_space.sample())
        out.append(obs)
    return torch.as_tensor(np.stack(out))


def _permute(obs: torch.Tensor, perm: list[int], layout) -> torch.Tensor:
    g = layout.n_global
    rows = obs[:, g:].reshape(obs.shape[0], layout.max_modalities, layout.row_size)
    return torch.cat([obs[:, :g], rows[:, perm].reshape(obs.shape[0], -1)], dim=1)


def test_permuting_the_slots_permutes_the_actions_exactly(env, policy):
    obs = _observations(env)
    layout = env.unwrapped.layout
    with torch.no_grad():
        logits = policy.action_logits(obs)
        for perm in ([1, 0, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
            moved = _permute(obs, perm, layout)
            assert torch.equal(policy.action_logits(moved), logits[:, perm])
            assert torch.equal(policy.predict_values(moved), policy.predict_values(obs))
            a, _ = policy.predict(moved.numpy(), deterministic=True)
            b, _ = policy.predict(obs.numpy(), deterministic=True)
            np.testing.assert_array_equal(a, b[:, perm])


def test_absent_slots_change_nothing(env, policy):
    obs = _observations(env)
    layout = env.unwrapped.layout
    present = torch.as_tensor(layout.present(obs.numpy()))
    garbage = obs.clone()
    g, f = layout.n_global, layout.row_size
    for b in range(obs.shape[0]):
        for j in range(layout.max_modalities):
            if not present[b, j]:  # fill the absent row with noise, keep its flag at 0
                garbage[b, g + j * f: g + (j + 1) * f - 1] = torch.rand(f - 1)
    with torch.no_grad():
        la, lb = policy.action_logits(obs), policy.action_logits(garbage)
        assert torch.equal(la[present], lb[present])
        assert torch.equal(policy.predict_values(obs), policy.predict_values(garbage))
        dist = policy.get_distribution(obs)
        actions = dist.get_actions(deterministic=False)
        # an absent slot contributes nothing to log-probability or entropy
        per_slot = torch.stack([d.entropy() for d in dist.distribution], dim=1)
        assert torch.all(per_slot[~present].abs() < 1e-6)
        uniform = policy.uniform_index
        assert torch.all(actions[~present] == uniform)
        lp = torch.stack([d.log_prob(a) for d, a in zip(dist.distribution,
                                                        torch.unbind(actions, dim=1))], dim=1)
        assert torch.all(lp[~present].abs() < 1e-6)


def test_weights_do_not_depend_on_the_modality_count(env, policy):
    wider = DUSEnvV1(suite="tiny", max_modalities=6)  # 6 slots instead of 4: same weights
    other = DeepSetsPolicy(wider.observation_space, wider.action_space, lambda _: 0.0,
                           **deepsets_kwargs(wider, hidden=(16, 16), head=(16,)))
    assert {k: v.shape for k, v in other.state_dict().items()} == {
        k: v.shape for k, v in policy.state_dict().items()}


def test_one_artefact_replays_for_two_three_and_four_modalities(env, policy, tmp_path):
    path = PPOPolicy(policy, env.unwrapped.spec_dict()).save(tmp_path / "g.zip")
    from dus_env.config import MonitorConfig, SyntheticConfig, get_preset

    four = get_preset("tiny").replace(monitor=MonitorConfig(), data=SyntheticConfig(
        modalities=("a", "b", "c", "d"), n_classes=4, dim=8, clusters_per_class=(1, 2, 2, 1),
        separation=(3.0, 1.5, 1.2, 2.0), confused_pairs=(1, 0, 0, 1), n_train=512, n_val=128,
        n_test=128))
    for kwargs, task in (({"suite": "tiny"}, "tiny-2"), ({"suite": "tiny"}, "tiny-3"),
                         ({"config": four}, None)):
        target = DUSEnvV1(**kwargs)
        loaded = make_policy(f"ppo:{path}", target)  # the safe loader, checked against the env
        obs, _ = target.reset(seed=0, options={"task": task} if task else None)
        done = False
        while not done:
            action, _ = loaded.predict(obs, deterministic=True)
            obs, _, done, _, info = target.step(action)
        assert set(info["batch_sizes"]) == set(target.modalities)
    original = policy.state_dict()
    for key, value in PPOPolicy.load(path).policy.state_dict().items():
        assert torch.equal(value, original[key])


def test_the_artefact_is_refused_by_a_dus_v0_env(env, policy, tmp_path):
    from dus_env.errors import IncompatibleEnvError

    path = PPOPolicy(policy, env.unwrapped.spec_dict()).save(tmp_path / "g.zip")
    with pytest.raises(IncompatibleEnvError, match="env_id='dus_env/DUS-v1', this env has "
                                                   "'dus_env/DUS-v0'"):
        make_policy(f"ppo:{path}", gym.make(dus_env.ENV_ID, preset="tiny"))


# ---------------------------------------------------------------------- the DUS-H anchor
def _anchored(env, **extra):
    return DeepSetsPolicy(env.observation_space, env.action_space, lambda _: 3e-4,
                          **deepsets_kwargs(env, hidden=(16, 16), head=(16,), anchor="heuristic",
                                            **extra))


def _rollout_observations(env, n_episodes=3):
    """Observations of whole DUS-H episodes (warm-up included) on the tiny suite."""
    return rollout_observations(env, HeuristicPolicy.for_env(env), n_episodes)


def test_a_fresh_anchored_policy_acts_as_dus_h(env):
    obs = _rollout_observations(env)
    policy = _anchored(env)
    heuristic = HeuristicPolicy.for_env(env)
    want, _ = heuristic.predict(obs, deterministic=True)
    present = env.unwrapped.layout.present(obs)
    with torch.no_grad():
        np.testing.assert_array_equal(
            policy.heuristic_indices(torch.as_tensor(obs)).numpy()[present], want[present])
        got, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(got[present], want[present])
    assert len(set(want[present].tolist())) > 2  # DUS-H did move off uniform on these
    # and it explores the grid steps next to DUS-H's choice, not the whole grid
    with torch.no_grad():
        probs = torch.softmax(policy.action_logits(torch.as_tensor(obs)), dim=-1)[
            torch.as_tensor(present)]
    idx = torch.as_tensor(want[present])
    at = probs.gather(1, idx[:, None]).squeeze(1)
    assert torch.all((at > 0.40) & (at < 0.50))  # strength 1 on 17 values: about 46%


def test_the_anchor_keeps_exact_equivariance_and_masking(env):
    obs = torch.as_tensor(_rollout_observations(env, 2))
    policy = _anchored(env, anchor_strength=2.0)
    layout = env.unwrapped.layout
    with torch.no_grad():
        logits = policy.action_logits(obs)
        for perm in ([1, 0, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
            assert torch.equal(policy.action_logits(_permute(obs, perm, layout)),
                               logits[:, perm])
        present = torch.as_tensor(layout.present(obs.numpy()))
        dist = policy.get_distribution(obs)
        per_slot = torch.stack([d.entropy() for d in dist.distribution], dim=1)
        assert torch.all(per_slot[~present].abs() < 1e-6)


def test_an_anchored_artefact_round_trips_and_bad_anchors_are_refused(env, tmp_path):
    policy = _anchored(env)
    path = PPOPolicy(policy, env.unwrapped.spec_dict()).save(tmp_path / "a.zip")
    loaded = make_policy(f"ppo:{path}", env)
    assert loaded.policy.anchor == policy.anchor
    obs = _rollout_observations(env, 1)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0],
                                  policy.predict(obs, deterministic=True)[0])
    grid = env.unwrapped.config.sampler.multipliers
    for bad, message in (
            ({**heuristic_anchor(grid), "rule": "oracle"}, r"anchor.rule='oracle' is not valid"),
            ({**heuristic_anchor(grid), "multipliers": [1.0, 2.0]},
             r"anchor.multipliers has 2 values .*needs 17"),
            ({**heuristic_anchor(grid), "strength": float("nan")}, r"anchor.strength=nan"),
            ({"rule": "heuristic"}, r"must be a mapping with exactly the fields")):
        with pytest.raises(ValueError, match=message):
            DeepSetsPolicy(env.observation_space, env.action_space, lambda _: 0.0,
                           history_length=env.unwrapped.layout.history_length,
                           uniform_index=8, anchor=bad)
    with pytest.raises(ValueError, match=r"anchor='dush' is not valid; valid choices: "
                                         r"\['none', 'heuristic'\]"):
        deepsets_kwargs(env, anchor="dush")


def test_an_anchored_policy_learns_offsets_from_dus_h_not_grid_indices(env):
    """One learned number - the bias of offset +1 - moves every slot one grid step above
    DUS-H's choice, whatever index DUS-H picked (clipped at the grid's top)."""
    obs = _rollout_observations(env)
    policy = _anchored(env)
    k = len(env.unwrapped.config.sampler.multipliers)
    assert policy.rho[-1].out_features == 2 * k - 1
    with torch.no_grad():
        policy.rho[-1].weight.zero_()
        policy.rho[-1].bias.zero_()
        policy.rho[-1].bias[k] = 2.0  # offset +1 (output k - 1 is offset 0)
    want, _ = HeuristicPolicy.for_env(env).predict(obs, deterministic=True)
    got, _ = policy.predict(obs, deterministic=True)
    present = env.unwrapped.layout.present(obs)
    np.testing.assert_array_equal(got[present], np.minimum(want[present] + 1, k - 1))


def test_sampled_replay_is_seeded_private_and_draws_from_the_policy(env, tmp_path):
    """sampled:SPEC samples the policy's actions with its own generator: the same seed gives
    the same actions, another seed others, the global torch RNG is untouched, absent slots
    stay at the uniform index, and a fresh anchored policy's samples centre on DUS-H."""
    policy = _anchored(env)
    path = PPOPolicy(policy, env.unwrapped.spec_dict()).save(tmp_path / "a.zip")
    obs = _rollout_observations(env, 2)
    first, again, other = (make_policy(f"sampled:ppo:{path}", env, seed=s) for s in (1, 1, 2))
    state = torch.get_rng_state()
    a = first.predict(obs, deterministic=True)[0]
    b = again.predict(obs, deterministic=True)[0]
    c = other.predict(obs)[0]
    assert torch.equal(torch.get_rng_state(), state)  # sampling reads no global RNG
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    present = env.unwrapped.layout.present(obs)
    assert np.all(a[~present] == policy.uniform_index)
    want = HeuristicPolicy.for_env(env).predict(obs, deterministic=True)[0]
    off = np.abs(a[present] - want[present])
    assert 0.25 < np.mean(off == 0) < 0.75 and np.mean(off <= 3) > 0.8  # strength 1: ~46% at 0
    single = make_policy(f"sampled:ppo:{path}", env, seed=1).predict(obs[0])[0]
    assert single.shape == (env.unwrapped.layout.max_modalities,)
    with pytest.raises(ValueError, match="sampled: needs a PPO policy"):
        make_policy("sampled:uniform", env)
