"""evaluate.py end to end on the tiny preset: outputs, resume after interruption, bad input."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dus_agents.cli import evaluate
from dus_agents.evaluation import parse_seeds
from dus_agents.registry import POLICY_NAMES
from tests.conftest import ROOT, run_script

PNGS = ("batch_sizes.png", "scores.png", "val_accuracy.png", "final_metrics.png")


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_script("evaluate.py", *args, check=check)


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _keys(rows) -> list[tuple]:
    return [(r["policy"], r["host"], r["preset"], int(r["seed"])) for r in rows]


def test_end_to_end_outputs(tmp_path):
    out = tmp_path / "eval"
    proc = _run("--preset", "tiny", "--policies", "uniform,heuristic,random",
                "--hosts", "joint,mla", "--seeds", "0-1", "--out-dir", str(out))
    assert "Paired difference to `uniform`" in proc.stdout

    rows = _rows(out)
    assert len(rows) == 3 * 2 * 2 == len(set(_keys(rows)))
    for row in rows:
        for col in ("accuracy", "macro_f1", "map", "sum_heads_accuracy", "acc_strong", "acc_weak",
                    "probe_strong", "probe_weak", "final_val_accuracy", "best_val_accuracy"):
            assert 0.0 <= float(row[col]) <= 1.0, (col, row[col])
        # renormalised budget: about the same total unimodal samples for every policy (exact
        # unless clipping to [min_batch_size, max_batch_size] binds after the rescaling)
        total = int(row["samples_strong"]) + int(row["samples_weak"])
        assert abs(total - 2 * 60 * 16) <= 0.1 * 2 * 60 * 16, total
        assert 0 <= int(row["best_val_step"]) <= 6
        assert row["budget"] == "renormalize"
    uniform = [r for r in rows if r["policy"] == "uniform"]
    assert all(int(r["samples_strong"]) == int(r["samples_weak"]) == 960 for r in uniform)

    summary = json.loads((out / "summary.json").read_text())
    assert {"confidence", "baseline", "metrics", "n_runs", "groups"} <= set(summary)
    assert summary["n_runs"] == 12 and summary["confidence"] == 0.95
    assert {"accuracy", "macro_f1", "map", "sum_heads_accuracy", "probe_weak",
            "samples_weak"} <= set(summary["metrics"])
    groups = {(g["host"], g["policy"]): g for g in summary["groups"]}
    assert set(groups) == {(h, p) for h in ("joint", "mla")
                           for p in ("uniform", "heuristic", "random")}
    for (host, policy), g in groups.items():
        assert g["n"] == 2 and g["seeds"] == [0, 1]
        acc = g["metrics"]["accuracy"]
        assert {"mean", "half_width", "low", "high", "n"} <= set(acc)
        assert ("vs_baseline" in g) == (policy != "uniform")
        if policy != "uniform":
            assert g["vs_baseline"]["accuracy"]["n"] == 2

    md = (out / "summary.md").read_text()
    assert "## preset `tiny`, host `joint`" in md and "| heuristic | 2 |" in md
    for png in PNGS:
        assert (out / png).stat().st_size > 1000
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 12
    steps = traces[0]["steps"]
    assert len(steps) == 7 and steps[0]["batch_sizes"] is None
    assert set(steps[1]["batch_sizes"]) == {"strong", "weak"}
    assert {"cumulative_scores", "gap", "val_accuracy"} <= set(steps[1])
    config = json.loads((out / "config.json").read_text())
    assert config["seeds"] == [0, 1] and set(config["env_configs"]) == {"joint", "mla"}


def test_resume_skips_finished_runs_and_repairs_a_cut_row(tmp_path):
    out = tmp_path / "eval"
    base = ["--preset", "tiny", "--policies", "uniform,heuristic", "--out-dir", str(out),
            "--quiet"]
    assert evaluate.main([*base, "--seeds", "0-1"]) == 0
    first = {_keys([r])[0]: r for r in _rows(out)}
    assert len(first) == 4

    assert evaluate.main([*base, "--seeds", "0-2"]) == 0
    rows = _rows(out)
    assert sorted(_keys(rows)) == sorted(
        (p, "joint", "tiny", s) for p in ("uniform", "heuristic") for s in range(3))
    for row in rows:  # finished runs were skipped, not redone
        key = _keys([row])[0]
        if key in first:
            assert row["wall_time"] == first[key]["wall_time"]

    # a run killed while writing its row: the last line is cut short, a trace line too
    text = (out / "results.csv").read_text()
    (out / "results.csv").write_text(text[: len(text) - 25])
    with (out / "traces.jsonl").open("a") as f:
        f.write('{"policy": "uniform", "host": "joint", "pre')
    assert evaluate.main([*base, "--seeds", "0-2"]) == 0
    rows = _rows(out)
    assert len(rows) == 6 == len(set(_keys(rows)))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 6


def test_killed_sweep_resumes_without_duplicates(tmp_path):
    out = tmp_path / "eval"
    args = ["--preset", "tiny", "--policies", "uniform,heuristic", "--seeds", "0-14",
            "--out-dir", str(out), "--quiet"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "evaluate.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv_path, deadline = out / "results.csv", time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if csv_path.is_file() and csv_path.read_text().count("\n") >= 4:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it was killed"
    partial = len(_rows(out))
    assert 3 <= partial < 30
    _run(*args)
    rows = _rows(out)
    assert len(rows) == 30 == len(set(_keys(rows))), partial


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("flags,message", [
    (["--policies", "uniform,heurstic"], "--policies='heurstic' is not valid; valid choices: "
     f"{list(POLICY_NAMES)}. Did you mean 'heuristic'?"),
    (["--policies", "dqn:model.zip"], "--policies kind='dqn' is not valid"),
    (["--policies", "ppo:/nonexistent.zip"],
     "cannot read policy 'ppo:/nonexistent.zip': policy file '/nonexistent.zip' does not exist"),
    (["--hosts", "joint,jiont"], "--hosts='jiont' is not valid; valid choices: "
     "['joint', 'mla', 'ogm_ge', 'unimodal']. Did you mean 'joint'?"),
    (["--preset", "tiyn"], "--preset='tiyn' is not valid; valid choices: "),
    (["--seeds", "0,a"], "--seeds='0,a': 'a' is not an integer"),
    (["--seeds", "1.5"], "'1.5' is not an integer"),
    (["--seeds", "3-1"], "range '3-1' is empty"),
    (["--seeds", "-1"], "seeds must be non-negative"),
    (["--seeds", ","], "--seeds=',' is empty"),
    (["--set", "trainer.los_reduction=base_sum"], "Did you mean 'loss_reduction'"),
    (["--set", "trainer"], "--set='trainer': expected KEY=VALUE"),
    (["--seeds", "0-100000000000"], "--seeds='0-100000000000' lists more than 100000 seeds"),
    (["--threads", "1000000000"], "--threads=1000000000 is out of range; valid range: [1, 1024]"),
    # a whole config section set to a scalar: the message dus-train gives (issue 4)
    (["--set", "trainer=5"], "--set: trainer=5 has type int; expected a dict of its keys ["),
    (["--set", 'trainer="ghost"'], "--set: trainer='ghost' has type str; expected a dict"),
    (["--set", "sampler=5", "--budget-matched"], "--set: sampler=5 has type int; expected a dict"),
    (["--policies", "sampled:uniform"], "sampled: replays a PPO policy by sampling its actions; "
     "write sampled:pretrained or sampled:ppo:PATH"),
])
def test_bad_input_fails_clearly_without_output(tmp_path, capsys, flags, message):
    out = tmp_path / "eval"
    argv = ["--preset", "tiny", "--seeds", "0", "--out-dir", str(out), "--quiet", *flags]
    with pytest.raises(SystemExit) as exc:
        evaluate.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_corrupt_policy_file(tmp_path, capsys):
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"not a zip at all")
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--preset", "tiny", "--policies", f"uniform,ppo:{bad}", "--seeds", "0",
                       "--out-dir", str(out), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot read policy 'ppo:{bad}'" in err and "is corrupt" in err
    assert not out.exists()


def test_output_directory_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--preset", "tiny", "--seeds", "0", "--out-dir", str(target), "--quiet"])
    assert exc.value.code == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"
    with pytest.raises(SystemExit):
        evaluate.main(["--preset", "tiny", "--seeds", "0", "--out-dir", str(target / "sub"),
                       "--quiet"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_subprocess_bad_input_exit_status(tmp_path):
    out = tmp_path / "eval"
    proc = _run("--preset", "tiny", "--policies", "unifrom", "--out-dir", str(out), check=False)
    assert proc.returncode == 2
    assert "Did you mean 'uniform'?" in proc.stderr
    assert not out.exists()


def test_parse_seeds():
    assert parse_seeds("0-2,7, 1") == [0, 1, 2, 7]
    assert parse_seeds("5") == [5]


def test_set_overrides_reach_every_run_and_a_rerun_must_match(tmp_path, capsys):
    out = tmp_path / "eval"
    base = ["--preset", "tiny", "--policies", "uniform", "--seeds", "0", "--out-dir", str(out),
            "--quiet", "--set", "trainer.loss_reduction=base_sum"]
    evaluate.main(base)
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["set"] == ["trainer.loss_reduction=base_sum"]
    assert config["env_configs"]["joint"]["trainer"]["loss_reduction"] == "base_sum"
    assert config["env_configs"]["joint"]["trainer"]["host"] == "joint"
    assert len(_rows(out)) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:  # other overrides into the same results: refused
        evaluate.main(base[:-2])
    assert exc.value.code == 2
    assert "holds runs made with --set ['trainer.loss_reduction=base_sum']" in (
        capsys.readouterr().err)
    assert len(_rows(out)) == 1


# ----------------------------------------------------------------------------- faults (issue 12)
def test_a_full_disk_mid_sweep_loses_no_finished_run_and_a_rerun_repairs(tmp_path, capsys,
                                                                        monkeypatch):
    import errno

    from dus_agents.evaluation import results as results_module

    out = tmp_path / "eval"
    args = ["--preset", "tiny", "--policies", "uniform,heuristic", "--seeds", "0-1",
            "--out-dir", str(out), "--quiet"]
    real = results_module.append_line
    calls = {"n": 0}

    def filling_disk(path, line):  # the 3rd run's trace line is half written, then ENOSPC
        calls["n"] += 1
        if calls["n"] == 5:
            with open(path, "a") as handle:
                handle.write(line[: len(line) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, line)

    monkeypatch.setattr(results_module, "append_line", filling_disk)
    assert evaluate.main(args) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "2 finished run(s) are kept" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert len(_rows(out)) == 2
    monkeypatch.setattr(results_module, "append_line", real)
    assert evaluate.main(args) == 0
    rows = _rows(out)
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert sorted(_keys(rows)) == sorted((t["policy"], t["host"], t["preset"], t["seed"])
                                         for t in traces)
    assert len(rows) == 4


def test_an_unwritable_results_file_fails_before_any_run(tmp_path, capsys, monkeypatch):
    import importlib

    sweep_module = importlib.import_module("dus_agents.evaluation.sweep")
    out = tmp_path / "eval"
    out.mkdir()
    (out / "results.csv").write_text("")
    ran = []

    def never(*args, **kwargs):
        ran.append(args)
        raise AssertionError("a run started before the output was checked")

    monkeypatch.setattr(sweep_module, "run_one", never)
    real_open = open

    def read_only(path, mode="r", *a, **k):  # results.csv as a read-only file (root ignores 0444)
        if str(path).endswith("results.csv") and mode[0] in "aw":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", read_only)
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--preset", "tiny", "--policies", "uniform", "--seeds", "0",
                       "--out-dir", str(out), "--quiet"])
    assert exc.value.code == 2 and ran == []
    err = capsys.readouterr().err
    assert "cannot be written" in err and "Permission denied" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- edges (issue 12)
def test_set_trainer_host_conflicts_with_hosts(tmp_path, capsys):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--preset", "tiny", "--hosts", "joint", "--set", "trainer.host=mla",
                       "--seeds", "0", "--out-dir", str(out), "--quiet"])
    assert exc.value.code == 2
    assert "--set trainer.host='mla' conflicts with --hosts='joint'" in capsys.readouterr().err
    assert not out.exists()


def test_a_run_directory_with_or_without_slash_is_one_policy(tmp_path):
    from dus_agents.evaluation import validate
    from dus_agents.evaluation.sweep import EvaluateArgs
    from dus_agents.reinforce import ReinforceAgent
    from dus_env.env import DUSEnv

    run_dir = tmp_path / "run"
    ReinforceAgent.for_env(DUSEnv(preset="tiny")).save(run_dir / "policy.zip")
    plan = validate(EvaluateArgs(preset="tiny", seeds="0", out_dir=str(tmp_path / "e"),
                                 policies=f"reinforce:{run_dir},reinforce:{run_dir}/"))
    assert plan.policies == [f"reinforce:{run_dir}"]


def test_a_rerun_with_another_probe_size_is_refused(tmp_path, capsys):
    out = tmp_path / "eval"
    base = ["--preset", "tiny", "--policies", "uniform", "--seeds", "0", "--out-dir", str(out),
            "--quiet"]
    assert evaluate.main(base) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        evaluate.main([*base, "--probe-max-train", "100"])
    assert exc.value.code == 2
    assert ("holds runs made with --probe-max-train=5000, but this run uses "
            "--probe-max-train=100") in capsys.readouterr().err
    assert len(_rows(out)) == 1


# ----------------------------------------------------------------------------- audit fixes
def test_sampled_policies_are_accepted_as_the_readme_documents(tmp_path):
    """``sampled:SPEC`` replays a PPO policy (pretrained or ppo:PATH) by sampling its actions."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from dus_agents.evaluation import validate
    from dus_agents.evaluation.sweep import EvaluateArgs
    from dus_agents.ppo import PPOConfig, PPOPolicy, build_ppo, make_env_fn

    plan = validate(EvaluateArgs(preset="default", policies="uniform,sampled:pretrained",
                                 seeds="0", out_dir=str(tmp_path / "d")))
    assert plan.policies == ["uniform", "sampled:pretrained"]
    assert plan.layouts["sampled:pretrained"] == "v1"
    assert not (tmp_path / "d").exists()  # validation writes nothing

    vec = DummyVecEnv([make_env_fn("tiny")])
    model = build_ppo(vec, PPOConfig(), seed=0, episode_length=6)
    PPOPolicy(model, vec.env_method("spec_dict", indices=[0])[0]).save(tmp_path / "p.zip")
    vec.close()
    out, sampled = tmp_path / "eval", f"sampled:ppo:{tmp_path / 'p.zip'}"
    assert evaluate.main(["--preset", "tiny", "--policies", f"uniform,{sampled}", "--seeds", "0",
                          "--out-dir", str(out), "--quiet"]) == 0
    assert {r["policy"] for r in _rows(out)} == {"uniform", sampled}


def test_two_presets_in_one_out_dir_get_their_own_reports(tmp_path, capsys):
    """tiny (strong/weak) then mfeat (fac/zer) into one folder: no crash in the plots; each
    sweep's summary is its own runs, and the closing line says what else the file holds."""
    out = tmp_path / "eval"
    base = ["--policies", "uniform", "--seeds", "0", "--out-dir", str(out)]
    assert evaluate.main(["--preset", "tiny", *base, "--quiet"]) == 0
    capsys.readouterr()
    assert evaluate.main(["--preset", "mfeat", *base]) == 0
    stdout = capsys.readouterr().out
    assert "(1 runs of this sweep; the file also holds 1 run(s) of earlier sweeps" in stdout
    assert sorted(r["preset"] for r in _rows(out)) == ["mfeat", "tiny"]
    summary = json.loads((out / "summary.json").read_text())
    assert [g["preset"] for g in summary["groups"]] == ["mfeat"] and summary["n_runs"] == 1
    assert not any("strong" in m for m in summary["metrics"])  # tiny's columns, empty here
    for png in PNGS:
        assert (out / png).stat().st_size > 1000


def test_a_rerun_with_fewer_seeds_reports_exactly_its_own_runs(tmp_path, capsys):
    """config.json, summary.json and the closing line all describe the sweep just run; the
    earlier seeds' rows stay in results.csv."""
    out = tmp_path / "eval"
    base = ["--preset", "tiny", "--policies", "uniform", "--out-dir", str(out)]
    assert evaluate.main([*base, "--seeds", "0-1", "--quiet"]) == 0
    capsys.readouterr()
    assert evaluate.main([*base, "--seeds", "1"]) == 0
    stdout = capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["seeds"] == [1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_runs"] == 1 and summary["groups"][0]["seeds"] == [1]
    assert "(1 runs of this sweep; the file also holds 1 run(s) of earlier sweeps" in stdout
    assert len(_rows(out)) == 2
    assert evaluate.main([*base, "--seeds", "0-1"]) == 0  # all of them again: no note
    assert "(2 runs of this sweep)" in capsys.readouterr().out


def test_a_run_that_raises_on_the_local_backend_is_recorded_and_the_sweep_goes_on(
        tmp_path, capsys, monkeypatch):
    # it crashed the driver: later runs never ran, no failed_runs.json, no reports
    import importlib

    from dus_env.errors import MediaError

    sweep_module = importlib.import_module("dus_agents.evaluation.sweep")  # not the function

    real = sweep_module.run_one

    def corrupt_file_on_heuristic_seed_0(env, policy, preset, seed, probe_max_train):
        if (policy, seed) == ("heuristic", 0):
            raise MediaError("cannot decode image /data/x.png: broken data stream")
        return real(env, policy, preset, seed, probe_max_train)

    monkeypatch.setattr(sweep_module, "run_one", corrupt_file_on_heuristic_seed_0)
    out = tmp_path / "eval"
    args = ["--preset", "tiny", "--policies", "uniform,heuristic", "--seeds", "0-1",
            "--out-dir", str(out), "--quiet"]
    assert evaluate.main(args) == 1
    err = capsys.readouterr().err
    assert ("run policy=heuristic host=joint seed=0 failed after 1 attempt(s): MediaError: "
            "cannot decode image /data/x.png") in err and "Traceback" not in err
    assert sorted(_keys(_rows(out))) == [("heuristic", "joint", "tiny", 1),
                                         ("uniform", "joint", "tiny", 0),
                                         ("uniform", "joint", "tiny", 1)]
    assert json.loads((out / "failed_runs.json").read_text()) == [
        {"policy": "heuristic", "host": "joint", "seed": 0, "attempts": 1,
         "error": "MediaError: cannot decode image /data/x.png: broken data stream"}]
    assert json.loads((out / "summary.json").read_text())["n_runs"] == 3
    monkeypatch.setattr(sweep_module, "run_one", real)  # fixed: a rerun runs only the missing one
    assert evaluate.main(args) == 0
    assert len(_rows(out)) == 4 and not (out / "failed_runs.json").exists()
