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
from tests.conftest import rollout_observations, run_module

SETTINGS = {"gamma": 2.5, "warmup": 0.0, "min_multiplier": 0.6, "max_multiplier": 1.7}


@pytest.fixture(scope="module")
def env():
    env = DUSEnvV1(suite="tiny")
    yield env
    env.close()


def test_the_fitted_policy_replays_its_rule_exactly(env):
    rule = HeuristicPolicy.for_env(env, **SETTINGS)
    obs = rollout_observations(env, rule)
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


@pytest.fixture(scope="module")
def smoke_fit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    out, artefact = folder / "fit_heuristic.json", folder / "fitted.zip"
    proc = run_module("benchmarks.fit_heuristic", "--smoke", "--out", str(out),
                      "--policy-out", str(artefact))
    assert "smoke ok" in proc.stdout
    return out, artefact


def test_fit_smoke_writes_a_search_whose_first_trial_is_dus_h_and_a_loadable_policy(
        env, smoke_fit):
    out, artefact = smoke_fit
    fit = json.loads(out.read_text())
    trials = fit["trials"]
    assert len(trials) == 3 and fit["pairs"] == len(trials[0]["returns"]) > 0
    assert fit["complete"] is True and fit["trials_planned"] == 3
    assert fit["policy"] == str(artefact)
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
    obs = rollout_observations(env, rule, 2)
    present = env.layout.present(obs)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0][present],
                                  rule.predict(obs, deterministic=True)[0][present])


@pytest.mark.parametrize("flags, message", [
    (["--trials", "0"], "--trials"),
    (["--suite", "nope"], "--suite='nope' is not valid"),
    (["--strength", "0"], "--strength=0.0: must be > 0"),
    (["--reward", "val_delta"], "--reward='val_delta' is not valid"),
])
def test_fit_bad_flags_exit_2_naming_the_flag_and_write_nothing(tmp_path, flags, message):
    out, artefact = tmp_path / "fit.json", tmp_path / "fitted.zip"
    proc = run_module("benchmarks.fit_heuristic", "--out", str(out), "--policy-out",
                      str(artefact), *flags, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not out.exists() and not artefact.exists()


def _fake_heldout() -> dict:
    """A benchmarks.generalization record of two tasks (uniform, DUS-H, a generalist)."""
    from benchmarks.generalization import across_tasks

    iv = lambda m: {"mean": m, "low": m - 0.5, "high": m + 0.5, "half_width": 0.5}  # noqa: E731
    tasks = {name: {"kind": "synthetic", "seeds": [0, 1], "modalities": ["a", "b"], "policies": {
        "uniform": {"accuracy": iv(0.9)},
        "heuristic": {"accuracy": iv(0.9), "vs_uniform": iv(0.3)},
        "generalist": {"accuracy": iv(0.9), "vs_uniform": iv(0.5), "vs_heuristic": iv(0.2)}}}
        for name in ("s1", "s2")}
    return {"command": ["/a/benchmarks/generalization.py", "--generalist", "f.zip"],
            "policies": ["uniform", "heuristic", "generalist"], "generalist": "f.zip",
            "tasks": tasks, "across_tasks": across_tasks(tasks)}


def test_a_ppo_generalist_on_paired_best_gets_its_section_naming_the_reward(tmp_path):
    from benchmarks.results_sections import PPO_BEST_HEADING, update

    run = tmp_path / "generalist-best"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({
        "timesteps": 30080, "episodes": 1932, "wall_time_s": 1562.0,
        "selection": {"best": {"mean_return": 0.48, "timesteps": 24320},
                      "curve": [[0, 0.0], [24320, 0.48], [30080, 0.08]]}}))
    (run / "config.json").write_text(json.dumps({
        "command": ["train_agent.py", "--suite", "synthetic-mix", "--set",
                    "reward.name=paired_best"],
        "env_config": {"reward": {"name": "paired_best"}}}))
    (tmp_path / "ppobest_generalization.json").write_text(json.dumps(_fake_heldout()))
    page, done = update("# page\n", tmp_path)
    assert "ppo_best" in done
    section = page.split(PPO_BEST_HEADING)[1]
    assert "`python train_agent.py --suite synthetic-mix --set reward.name=paired_best`" in section
    assert "(reward `paired_best`) on the validation slice" in section
    assert "+0.48 points at 24320 timesteps (every evaluation: 0: +0.00, 24320: +0.48" in section
    assert "| s1 | 2 | 90.00 |" in section


def test_the_fitted_rule_gets_its_own_results_section(smoke_fit):
    from benchmarks.results_sections import FITTED_HEADING, update

    out, _ = smoke_fit
    folder = out.parent
    (folder / "fitted_generalization.json").write_text(json.dumps(_fake_heldout()))
    page, done = update("# page\n", folder)
    assert done == ["fitted"]
    fit = json.loads(out.read_text())
    section = page.split(FITTED_HEADING)[1]
    assert "python -m benchmarks.fit_heuristic --smoke" in section
    assert f"3 trials on {fit['pairs']} pairs" in section
    assert "| 0 (DUS-H) |" in section or "| 0 | 1 | 0.1 | 0.5 | 2 |" in section
    assert f"Written: trial {fit['best']['number']}" in section
    assert "| s1 | 2 | 90.00 |" in section
    assert "![fitted_generalization](results/fitted_generalization.png)" in section


def test_make_results_card_fitted_describes_the_fit_it_ships(smoke_fit, tmp_path):
    """--card fitted: docs/PRETRAINED.md from the fit's JSON, its validation choice and its
    held-out run; the DUS-v1 sections beside it as usual."""
    out, _ = smoke_fit
    results = tmp_path / "results"
    results.mkdir()
    fit = json.loads(out.read_text())
    (results / "fit_heuristic.json").write_text(json.dumps(fit))
    iv = {"mean": 0.4, "half_width": 0.2, "low": 0.2, "high": 0.6, "std": 0.3, "n": 4,
          "confidence": 0.95}
    (results / "fitted_select.json").write_text(json.dumps({
        "command": ["/x/benchmarks/select_generalist.py", "--suite", "tiny"], "suite": "tiny",
        "seeds": [100, 101], "slice": [["tiny-2", 100], ["tiny-2", 101]],
        "chosen": "ppo:fitted.zip",
        "candidates": {"pretrained": {"mean_paired_return": {**iv, "mean": 0.1}},
                       "ppo:fitted.zip": {"mean_paired_return": iv, "vs_pretrained": iv}}}))
    page = tmp_path / "docs" / "RESULTS.md"
    page.parent.mkdir()
    run_module("benchmarks.make_results", "--update", "--card", "fitted", "--out", str(page),
               "--results", str(results))
    card = (tmp_path / "docs" / "PRETRAINED.md").read_text()
    assert "\npython -m benchmarks.fit_heuristic --smoke" in card  # the code block
    assert f"{len(fit['trials'])} trials" in card and f"same {fit['pairs']} pairs" in card
    assert f"kept: trial {fit['best']['number']}" in card
    assert "Chosen: `ppo:fitted.zip`" in card
    assert "## On tasks it never saw" not in card  # no held-out run given: none claimed
    bad = run_module("benchmarks.make_results", "--update", "--card", "nope", "--out",
                     str(page), "--results", str(results), check=False)
    assert bad.returncode == 2 and "fitted" in bad.stderr


def _trial(number, settings, returns):
    from dus_agents.evaluation.stats import t_interval

    return {"number": number, "settings": settings, "value": float(np.mean(returns)),
            "interval": t_interval(returns).as_dict(), "returns": returns}


def test_a_paired_best_fit_is_shown_beside_the_paired_one_trial_by_trial(tmp_path):
    """The fitted_best section: the fit on paired_best, and the trials both fits tried with
    the same settings on the same pairs, with each reward's spread and collapse count."""
    from benchmarks.results_sections import FITTED_BEST_HEADING, update

    other = {**SETTINGS, "gamma": 3.0}
    base = {"command": ["/a/benchmarks/fit_heuristic.py", "--suite", "tiny"], "suite": "tiny",
            "tasks": ["t1"], "seeds_per_task": 4, "pairs": 4, "space": {k: list(v) for k, v
                                                                        in SPACE.items()},
            "defaults": dict(HEURISTIC_DEFAULTS), "seconds": 60.0}
    old = {**base, "trials": [_trial(0, dict(HEURISTIC_DEFAULTS), [0.0] * 4),
                              _trial(1, SETTINGS, [30.0, -1.0, 1.0, 0.5])]}
    new = {**base, "reward": "paired_best",
           "command": base["command"] + ["--reward", "paired_best"],
           "trials": [_trial(0, dict(HEURISTIC_DEFAULTS), [0.0] * 4),
                      _trial(1, SETTINGS, [2.0, -1.0, 1.0, 0.5]),
                      _trial(2, other, [1.0, 1.0, 0.0, 0.5])]}
    new["best"] = {k: new["trials"][2][k] for k in ("number", "settings", "value", "interval")}
    old["best"] = {k: old["trials"][1][k] for k in ("number", "settings", "value", "interval")}
    (tmp_path / "fit_heuristic.json").write_text(json.dumps(old))
    (tmp_path / "fit_heuristic_best.json").write_text(json.dumps(new))
    page, done = update("# page\n", tmp_path)
    assert "fitted_best" in done
    section = page.split(FITTED_BEST_HEADING)[1].split("section:fitted_best:end")[0]
    assert "(reward `paired_best`)" in section and "--reward paired_best" in section
    # trial 1 is in both (same settings): its row shows both rewards; trial 2 only in one
    rows = [line for line in section.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 2  # the side-by-side row and the fit's top-five row
    side = next(r for r in rows if r.count("|") == 8)
    cells = [c.strip() for c in side.strip("|").split("|")]
    assert cells[3] == "1" and cells[6] == "0"  # one pair beyond 10 points under paired only
    ratio = np.std([30.0, -1.0, 1.0, 0.5], ddof=1) / np.std([2.0, -1.0, 1.0, 0.5], ddof=1)
    assert f"median {ratio:.2f}" in section
    # DUS-H (trial 0) scores 0 on every pair under both rewards: no spread to compare
    assert "The trials both fits tried with the same settings (1)" in section


# ----------------------------------------------------------------- what a run keeps
FIT = ["--suite", "tiny", "--seeds-per-task", "1", "--jobs", "1"]


@pytest.mark.parametrize("case, message", [
    ("a directory", "is a directory; give a file path"),
    ("--out's path", "is --out's path; give the policy artefact a file of its own"),
])
def test_a_policy_out_that_cannot_take_the_policy_is_refused_before_the_search(
        case, message, monkeypatch, capsys, tmp_path):
    """It used to fail with IsADirectoryError after the whole search, and lose --out too."""
    from benchmarks import common, fit_heuristic

    def started(*_, **__):
        raise AssertionError("the search started before --policy-out was checked")

    monkeypatch.setattr(fit_heuristic, "Evaluator", started)
    out = tmp_path / "fit.json"
    policy = tmp_path if case == "a directory" else out
    with pytest.raises(SystemExit) as exc:
        common.run(fit_heuristic.main, [*FIT, "--trials", "2", "--out", str(out),
                                        "--policy-out", str(policy)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert f"error: --policy-out={str(policy)!r} {message}" in err
    assert list(tmp_path.iterdir()) == []


def test_the_search_is_written_before_the_policy(monkeypatch, tmp_path):
    """A policy that fails to write (a full disk) keeps the finished search in --out."""
    import errno

    from benchmarks import common, fit_heuristic

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fit_heuristic, "write_policy", full)
    out, policy = tmp_path / "fit.json", tmp_path / "fitted.zip"
    with pytest.raises(OSError, match="No space left"):
        common.run(fit_heuristic.main, [*FIT, "--trials", "2", "--out", str(out),
                                        "--policy-out", str(policy)])
    fit = json.loads(out.read_text())
    assert fit["complete"] is True and [t["number"] for t in fit["trials"]] == [0, 1]
    assert "policy" not in fit and not policy.exists()


def test_sigterm_mid_search_keeps_the_finished_trials_marked_incomplete(monkeypatch, capsys,
                                                                        tmp_path):
    """SIGTERM during trial 3 (common.run's handler: exit status 143): --out holds trials 0-2,
    ``"complete": false``, and make_results --update refuses to render it."""
    import os
    import signal
    import time

    from benchmarks import common, fit_heuristic, make_results

    real, calls, slept_through = fit_heuristic._returns, [], []

    def returns(settings, pairs):
        calls.append(settings)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler's SystemExit ends this at once
            slept_through.append(True)  # reached only if the signal did not interrupt it
        return real(settings, pairs)

    monkeypatch.setattr(fit_heuristic, "_returns", returns)
    results = tmp_path / "results"
    out = results / "fit_heuristic.json"
    with pytest.raises(SystemExit) as exc:
        common.run(fit_heuristic.main, [*FIT, "--trials", "6", "--out", str(out)])
    assert exc.value.code == 143 and slept_through == []
    fit = json.loads(out.read_text())
    assert fit["complete"] is False and fit["trials_planned"] == 6
    assert [t["number"] for t in fit["trials"]] == [0, 1, 2]
    assert [t["settings"] for t in fit["trials"]] == calls[:3]
    assert fit["trials"][0]["returns"] == [0.0] * fit["pairs"]  # DUS-H against itself
    assert fit["best"]["value"] == max(t["value"] for t in fit["trials"])
    assert list(results.iterdir()) == [out]  # no temp file left beside it
    capsys.readouterr()
    page = tmp_path / "RESULTS.md"
    with pytest.raises(SystemExit) as exc:
        common.run(make_results.main, ["--update", "--results", str(results), "--out",
                                       str(page)])
    assert exc.value.code == 2 and not page.exists()
    assert "fit_heuristic.json is the partial record" in capsys.readouterr().err
