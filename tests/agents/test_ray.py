"""Ray scale-out: evaluation sweeps as Ray tasks, PPO on a VecEnv of Ray actors, worker loss,
bad input, and Ray as an optional extra.

Every test that needs Ray shares one local Ray instance of 2 CPUs (module fixture). Without Ray
installed those tests are skipped with the extra to install, unless ``DUS_REQUIRE_RAY=1`` (set
by CI), which turns that into a failure; the "Ray is missing" tests run either way.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dus_agents.cli import evaluate
from dus_agents.cli import train as train_agent
from dus_agents.evaluation import make_env
from dus_agents.evaluation.ray_sweep import RunFault
from tests.conftest import ROOT
from tests.support.faults import interrupt_on_call

HAVE_RAY = importlib.util.find_spec("ray") is not None
POLICIES = "uniform,heuristic,random"
SEEDS = "0-1"


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _by_key(rows) -> dict[tuple, dict[str, str]]:
    """Rows keyed by run, without the wall-clock column (the only one that may differ)."""
    return {(r["policy"], r["host"], r["preset"], int(r["seed"])):
            {k: v for k, v in r.items() if k != "wall_time"} for r in rows}


def _traces(out: Path) -> dict[tuple, dict]:
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    return {(t["policy"], t["host"], t["preset"], t["seed"]): t for t in traces}


def _sweep_args(out: Path, policies: str = POLICIES, seeds: str = SEEDS) -> list[str]:
    return ["--preset", "tiny", "--policies", policies, "--seeds", seeds, "--out-dir", str(out),
            "--quiet"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance of 2 CPUs for every Ray test of this module."""
    if not HAVE_RAY:
        message = "Ray is not installed: pip install 'dus-env[ray]'"
        if os.environ.get("DUS_REQUIRE_RAY"):
            pytest.fail(message + " (DUS_REQUIRE_RAY is set)")
        pytest.skip(message)
    from dus_agents.ray_backend import connect

    session = connect(num_cpus=2, log_to_driver=False)
    assert session.started and session.resources["CPU"] == 2
    yield session
    session.close()


@pytest.fixture(scope="module")
def ppo_file(tmp_path_factory) -> Path:
    """A (barely trained) PPO policy artefact for the tiny preset, to replay in sweeps."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from dus_agents.ppo import PPOConfig, PPOPolicy, build_ppo, make_env_fn

    vec = DummyVecEnv([make_env_fn("tiny")])
    model = build_ppo(vec, PPOConfig(), seed=0, episode_length=6)
    spec = vec.env_method("spec_dict", indices=[0])[0]
    path = tmp_path_factory.mktemp("ppo") / "policy.zip"
    PPOPolicy(model, spec).save(path)
    vec.close()
    return path


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, ppo_file) -> Path:
    """The reference: a local-backend sweep (uniform, heuristic, random, ppo; 2 seeds)."""
    out = tmp_path_factory.mktemp("local") / "eval"
    assert evaluate.main(_sweep_args(out, f"{POLICIES},ppo:{ppo_file}")) == 0
    return out


# ----------------------------------------------------------------------------- evaluate.py
def test_ray_sweep_matches_local_backend(ray_cluster, local_sweep, ppo_file, tmp_path):
    """The CLI as a separate driver joining the running cluster by --address: every run,
    the replayed PPO file included, gives the local backend's row and trace."""
    out = tmp_path / "eval"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *_sweep_args(out, f"{POLICIES},ppo:{ppo_file}"),
         "--backend", "ray", "--address", ray_cluster.address],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    local, remote = _by_key(_rows(local_sweep)), _by_key(_rows(out))
    assert len(remote) == len(_rows(out)) == 8
    assert remote == local  # same metrics, samples, steps for the same seeds
    local_traces, remote_traces = _traces(local_sweep), _traces(out)
    assert remote_traces.keys() == local_traces.keys()
    for key, trace in remote_traces.items():
        assert trace["actions"] == local_traces[key]["actions"]
        assert trace["steps"] == local_traces[key]["steps"]
    assert json.loads((out / "summary.json").read_text())["n_runs"] == 8
    assert not (out / "failed_runs.json").exists()


def test_killed_worker_is_retried_and_written_once(ray_cluster, local_sweep, tmp_path, capsys):
    out, markers = tmp_path / "eval", tmp_path / "markers"
    fault = RunFault("heuristic", "joint", 1, marker_dir=str(markers), step=3)
    assert evaluate.main([*_sweep_args(out), "--backend", "ray"], fault=fault) == 0
    killed = [int(p.read_text()) for p in markers.iterdir()]
    assert len(killed) == 1  # one attempt was killed ...
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # ... for real: its worker process is gone
    assert ("run policy=heuristic host=joint seed=1 was retried and finished on attempt 2 of 3"
            in capsys.readouterr().err)
    rows = _rows(out)
    assert len(rows) == 6 == len(_by_key(rows))  # exactly one row per run
    local = _by_key(_rows(local_sweep))
    for key, row in _by_key(rows).items():
        assert row == local[key]
    assert len(_traces(out)) == 6


def test_run_failing_every_attempt_is_reported_then_rerun(ray_cluster, local_sweep, tmp_path,
                                                          capsys):
    out = tmp_path / "eval"
    args = [*_sweep_args(out, "uniform"), "--backend", "ray", "--max-retries", "1"]
    fault = RunFault("uniform", "joint", 1, marker_dir=str(tmp_path / "m"), attempts=9)
    assert evaluate.main(args, fault=fault) == 1
    err = capsys.readouterr().err
    assert "run policy=uniform host=joint seed=1 failed after 2 attempt(s)" in err
    assert "rerun the same command to retry them" in err
    assert [int(r["seed"]) for r in _rows(out)] == [0]  # no row for the failed run
    (failed,) = json.loads((out / "failed_runs.json").read_text())
    assert (failed["policy"], failed["seed"], failed["attempts"]) == ("uniform", 1, 2)
    assert failed["error"]

    assert evaluate.main(args) == 0  # the rerun does only the missing run
    rows = _rows(out)
    assert sorted(int(r["seed"]) for r in rows) == [0, 1]
    local = _by_key(_rows(local_sweep))
    assert all(row == local[key] for key, row in _by_key(rows).items())
    assert not (out / "failed_runs.json").exists()


def test_a_worker_dying_at_once_still_counts_its_attempts(ray_cluster):
    # the attempt was reported to the ledger without waiting: a worker killed right after lost
    # the report, and the job came back "failed after 0 attempt(s)"
    from dus_agents.ray_backend import TaskResources, run_tasks

    def die_at_once(i):
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)

    (outcome,) = run_tasks(die_at_once, [("k", (0,))], TaskResources(max_retries=2))
    assert not outcome.ok and outcome.attempts == 3, outcome
    assert outcome.error.startswith("WorkerCrashedError")


def test_ctrl_c_leaves_the_tasks_to_the_session_and_leaving_early_cancels_them(
        ray_cluster, monkeypatch):
    # cancelling retriable tasks mid-run on Ctrl-C made Ray abort the driver about one time in
    # four (a task-manager check failure: exit 1, Ray's processes left behind, not 130)
    import ray

    from dus_agents.ray_backend import TaskResources, run_tasks

    def nap(i):
        import time

        time.sleep(0.3)
        return i

    cancelled = []
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: cancelled.append(ref))
    jobs = [(i, (i,)) for i in range(4)]
    early = run_tasks(nap, jobs, TaskResources(num_cpus=1))
    next(early)
    early.close()  # a consumer that stops early: what is left is cancelled
    assert 1 <= len(cancelled) <= 3
    cancelled.clear()
    wait_then_ctrl_c, calls = interrupt_on_call(ray.wait, 2)
    monkeypatch.setattr(ray, "wait", wait_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        list(run_tasks(nap, jobs, TaskResources(num_cpus=1)))
    assert cancelled == [] and len(calls) == 2

# ----------------------------------------------------------------------------- RayVecEnv
def test_ray_vec_env_conventions_and_actor_death(ray_cluster):
    from dus_agents.ppo import make_env_fn
    from dus_agents.ray_vec_env import RayVecEnv, RayWorkerLostError

    vec = RayVecEnv([make_env_fn("tiny") for _ in range(2)], crash_at_step={1: 2})
    try:
        assert vec.num_envs == 2 and vec.env_method("spec_dict")[0]["n_modalities"] == 2
        vec.seed(7)
        first = vec.reset()
        assert first.shape == (2, *vec.observation_space.shape)
        pid = vec.worker_info([1])[0]["pid"]
        action = np.zeros((2, len(vec.action_space.nvec)), dtype=np.int64)
        obs1, _, dones, _ = vec.step(action)
        assert not dones.any()
        obs2, rewards, dones, infos = vec.step(action)  # env 1's worker dies in this step
        assert dones.tolist() == [False, True] and rewards[1] == 0.0
        assert infos[1]["worker_restarted"] is True and infos[1]["TimeLimit.truncated"] is False
        assert "Actor" in infos[1]["worker_error"]
        np.testing.assert_array_equal(infos[1]["terminal_observation"], obs1[1])
        assert "worker_restarted" not in infos[0]
        after = vec.worker_info([1])[0]
        assert after["restarted"] and after["pid"] != pid and vec.restarts == [0, 1]
        ends = []
        for _ in range(6):  # both envs run whole 6-step episodes, the restarted one included
            _, _, dones, infos = vec.step(action)
            ends.append(dones.tolist())
            for done, info in zip(dones, infos):
                assert ("terminal_observation" in info) == done
                assert "worker_restarted" not in info
        assert ends == [[False, False]] * 3 + [[True, False]] + [[False, False], [False, True]]
    finally:
        vec.close()

    fragile = RayVecEnv([make_env_fn("tiny")], max_restarts=0, crash_at_step={0: 1})
    try:
        fragile.reset()
        with pytest.raises(RayWorkerLostError, match="env 0: its Ray actor died and has no "
                                                      "restarts left"):
            fragile.step(np.zeros((1, 2), dtype=np.int64))
    finally:
        fragile.close()


def test_ppo_trains_on_two_ray_actors_through_an_actor_death(ray_cluster, tmp_path):
    argv = ["--preset", "tiny", "--no-progress-bar", "--eval-episodes", "0",
            "--vec-env", "ray", "--n-envs", "2", "--total-timesteps", "240",
            "--out-dir", str(tmp_path), "--run-name", "r"]
    assert train_agent.main(argv, crash_at_step={0: 9}) == 0
    run_dir = tmp_path / "r"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["timesteps"] == 240 and summary["rollout_timesteps"] == 48
    assert summary["worker_restarts"] == 1
    assert summary["episodes_lost_to_worker_restarts"] == 1
    assert summary["episodes"] == 39  # 40 episodes' worth of steps, one cut short
    assert np.isfinite(summary["final_mean_episode_return"])
    with (run_dir / "logs" / "progress_0.csv").open(newline="") as f:
        progress = list(csv.DictReader(f))
    losses = [float(r["train/loss"]) for r in progress if r.get("train/loss")]
    assert len(losses) >= 3 and all(np.isfinite(losses))
    from dus_agents.callbacks import list_checkpoints
    from dus_agents.ppo import read_checkpoint
    from dus_agents.registry import make_policy

    make_policy(f"ppo:{run_dir / 'policy.zip'}", make_env("tiny", "joint", False))
    final = read_checkpoint(list_checkpoints(run_dir / "checkpoints")[-1])
    # 5 rollouts x 4 epochs: PPO kept updating after the death (its rollout was the first)
    assert final.counters["num_timesteps"] == 240 and final.counters["n_updates"] == 5 * 4


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("flags, message", [
    (["--backend", "rya"], "--backend='rya' is not valid; valid choices: ['local', 'ray']. "
     "Did you mean 'ray'?"),
    (["--address", "10.0.0.5:6379"], "--address='10.0.0.5:6379' applies to the Ray backend "
     "only"),
    (["--backend", "ray", "--max-retries", "-1"], "--max-retries=-1 is out of range"),
    (["--backend", "ray", "--gpus-per-run", "-0.5"], "--gpus-per-run=-0.5 is out of range"),
])
def test_evaluate_bad_ray_flags(flags, message, tmp_path, capsys):
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as exc:
        evaluate.main([*_sweep_args(out, "uniform", "0"), *flags])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unreachable_address_fails_fast_naming_it(ray_cluster, tmp_path, capsys):
    for main, argv in (
        (evaluate.main, [*_sweep_args(tmp_path / "eval", "uniform", "0"), "--backend", "ray"]),
        (train_agent.main, ["--preset", "tiny", "--vec-env", "ray", "--out-dir",
                            str(tmp_path / "runs")]),
    ):
        with pytest.raises(SystemExit) as exc:  # refused by the reachability check, not a
            main([*argv, "--address", "127.0.0.1:1"])  # timed-out ray.init
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--address='127.0.0.1:1': no Ray cluster answers at 127.0.0.1:1" in err, err
        assert "ray start --head" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, message", [
    (["--vec-env", "rey"], "--vec-env='rey' is not valid; valid choices: ['auto', 'dummy', "
     "'subproc', 'ray']. Did you mean 'ray'?"),
    (["--address", "10.0.0.5"], "--address applies to --vec-env ray only"),
    (["--vec-env", "ray", "--max-restarts", "-2"], "--max-restarts=-2 must be >= -1"),
    (["--agent", "reinforce", "--vec-env", "ray"], "the reinforce agent steps one env"),
])
def test_train_agent_bad_ray_flags(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_agent.main([*flags, "--out-dir", str(tmp_path / "runs")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_requests_larger_than_the_cluster():
    from dus_agents.ray_backend import RaySession, check_fits

    here = RaySession(started=True, address="10.0.0.5:6379", resources={"CPU": 2.0})
    assert check_fits(here, "--cpus-per-run", 2, "--gpus-per-run", 0) is None
    with pytest.raises(ValueError, match=r"--gpus-per-run=0.5 asks for more GPUs than the Ray "
                                         r"cluster at 10.0.0.5:6379 has \(0\); lower it"):
        check_fits(here, "--cpus-per-run", 1, "--gpus-per-run", 0.5)
    with pytest.raises(ValueError, match=r"--cpus-per-env=3 .* \(or raise --ray-cpus\)"):
        check_fits(here, "--cpus-per-env", 3, "--gpus-per-env", 0)
    joined = RaySession(started=False, address="10.0.0.5:6379", resources={"CPU": 2.0})
    warning = check_fits(joined, "--cpus-per-run", 4, "--gpus-per-run", 0)
    assert warning.startswith("warning: --cpus-per-run=4") and "cluster grows" in warning


@pytest.mark.parametrize("address, target", [
    ("10.0.0.5", ("10.0.0.5", 6379)), ("head:6380", ("head", 6380)),
    ("ray://head", ("head", 10001)), ("[::1]:7000", ("::1", 7000)), ("auto", None),
])
def test_split_address(address, target):
    from dus_agents.ray_backend import split_address

    assert split_address(address) == target


@pytest.mark.parametrize("address, message", [
    ("http://head:8265", "unsupported scheme 'http://'"), ("head:x", "port 'x' is not an "
                                                                     "integer"),
    ("head:70000", "port 70000 is out of range"), (":6379", "names no host"),
])
def test_split_address_rejects(address, message):
    from dus_agents.ray_backend import RayConnectionError, split_address

    with pytest.raises(RayConnectionError, match=message):
        split_address(address)


def test_missing_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    with pytest.raises(SystemExit) as exc:
        train_agent.main(["--preset", "tiny", "--vec-env", "ray",
                          "--out-dir", str(tmp_path / "runs")])
    assert exc.value.code == 2
    assert "Ray, which is not installed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_core_runs_without_ray_and_backend_ray_names_the_extra(tmp_path):
    """In a fresh interpreter where `import ray` fails: the library, the agents (Ray modules
    included) and both scripts import, a local sweep runs, and --backend ray exits 2 naming
    the extra."""
    script = f"""
import sys
sys.modules["ray"] = None
import dus_env, dus_agents, dus_agents.ray_backend, dus_agents.ray_vec_env
from dus_agents.cli import evaluate, train
assert evaluate.main(["--preset", "tiny", "--policies", "uniform", "--seeds", "0",
                      "--out-dir", {str(tmp_path / "local")!r}, "--quiet"]) == 0
try:
    evaluate.main(["--preset", "tiny", "--seeds", "0", "--backend", "ray",
                   "--out-dir", {str(tmp_path / "ray")!r}])
except SystemExit as exc:
    print("exit", exc.code)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("exit 2")
    assert "install the optional extra: pip install 'dus-env[ray]'" in proc.stderr
    assert len(_rows(tmp_path / "local")) == 1
    assert not (tmp_path / "ray").exists()


# ----------------------------------------------------------------------------- benchmark
def test_benchmark_smoke(ray_cluster, tmp_path, capsys, benchmark_process_state):
    from benchmarks import ray_scaling

    out = tmp_path / "ray.json"
    result = ray_scaling.main(["--smoke", "--out", str(out)])
    text = capsys.readouterr().out
    assert "smoke ok" in text and "speed-up local/ray" in text and "scaling 2 actors" in text
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["runs_per_sweep"] == 2 and result["ray_cluster_cpus"] == 2
    for ratio in (result["sweep"]["speedup_local_over_ray"], result["actor_scaling_2_over_1"],
                  result["ray_1_actor_over_in_process"]):
        assert ratio["n"] == 1 and ratio["median"] > 0
    assert set(result["env_steps_per_second"]) == {"dummyx1", "rayx1", "rayx2"}
