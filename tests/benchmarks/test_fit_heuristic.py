"""benchmarks.fit_heuristic: DUS-H's settings fit on training tasks, written as a policy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.fit_heuristic import SPACE, fitted_policy
from dus_agents.heuristic import HeuristicPolicy
from dus_agents.registry import make_policy
from dus_env.env_v1 import DUSEnvV1
from dus_env.sampler import HEURISTIC_DEFAULTS
from tests.conftest import run_module

SETTINGS = {"gamma": 2.5, "warmup": 0.0, "min_multiplier": 0.6, "max_multiplier": 1.7}


@pytest.fixture(scope="module")
def env():
    env = DUSEnvV1(suite="tiny")
    yield env
    env.close()


def _observations(env, policy, n_episodes=3):
    out = []
    for seed in range(n_episodes):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            out.append(obs)
            obs, _, done, _, _ = env.step(policy.predict(obs, deterministic=True)[0])
    return np.stack(out)


def test_the_fitted_policy_replays_its_rule_exactly(env):
    rule = HeuristicPolicy.for_env(env, **SETTINGS)
    obs = _observations(env, rule)
    present = env.layout.present(obs)
    state = torch.random.get_rng_state()
    policy = fitted_policy(env, SETTINGS, strength=0.5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    want = rule.predict(obs, deterministic=True)[0]
    with torch.no_grad():
        got = policy.predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(got[present], want[present])
    # the settings matter: DUS-H's defaults choose otherwise on some of these steps
    default = HeuristicPolicy.for_env(env).predict(obs, deterministic=True)[0]
    assert np.any(default[present] != want[present])
    assert {k: policy.anchor[k] for k in SETTINGS} == SETTINGS


def test_fit_smoke_writes_a_search_whose_first_trial_is_dus_h_and_a_loadable_policy(
        env, tmp_path):
    out, artefact = tmp_path / "fit.json", tmp_path / "fitted.zip"
    proc = run_module("benchmarks.fit_heuristic", "--smoke", "--out", str(out),
                      "--policy-out", str(artefact))
    assert "smoke ok" in proc.stdout
    fit = json.loads(out.read_text())
    trials = fit["trials"]
    assert len(trials) == 3 and fit["pairs"] == len(trials[0]["returns"]) > 0
    # DUS-H's defaults come first and earn exactly 0 against DUS-H on every pair
    assert trials[0]["settings"] == HEURISTIC_DEFAULTS
    assert trials[0]["returns"] == [0.0] * fit["pairs"] and trials[0]["value"] == 0.0
    for t in trials:
        assert t["value"] == pytest.approx(np.mean(t["returns"]))
        for name, (lo, hi, _) in SPACE.items():
            assert lo <= t["settings"][name] <= hi
        assert t["settings"]["min_multiplier"] <= t["settings"]["max_multiplier"]
    assert fit["best"]["value"] == max(t["value"] for t in trials)
    # the artefact loads through the safe loader and plays the best settings' rule
    best = fit["best"]["settings"]
    loaded = make_policy(f"ppo:{artefact}", env)
    rule = HeuristicPolicy.for_env(env, **best)
    obs = _observations(env, rule, 2)
    present = env.layout.present(obs)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0][present],
                                  rule.predict(obs, deterministic=True)[0][present])


@pytest.mark.parametrize("flags, message", [
    (["--trials", "0"], "--trials"),
    (["--suite", "nope"], "--suite='nope' is not valid"),
    (["--strength", "0"], "--strength=0.0: must be > 0"),
])
def test_fit_bad_flags_exit_2_naming_the_flag_and_write_nothing(tmp_path, flags, message):
    out, artefact = tmp_path / "fit.json", tmp_path / "fitted.zip"
    proc = run_module("benchmarks.fit_heuristic", "--out", str(out), "--policy-out",
                      str(artefact), *flags, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not out.exists() and not artefact.exists()
