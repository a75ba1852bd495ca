"""train_agent.py end to end (subprocesses, tiny preset), resume, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest

import dus_env
from dus_agents import run_episode
from dus_agents.cli import train as train_agent
from dus_agents.cli.common import field_docs
from dus_agents.registry import make_policy
from dus_agents.training import TrainArgs
from tests.conftest import ROOT, rollout_observations

# one env: the step arithmetic below (rollouts, checkpoints) assumes it
TINY = ["--preset", "tiny", "--n-envs", "1", "--no-progress-bar", "--eval-episodes", "1"]


def env_vars() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train_agent.py"), *args], cwd=ROOT,
                          env=env_vars(), capture_output=True, text=True, timeout=timeout)


def only_run_dir(out_dir: Path) -> Path:
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    return run_dir


def episodes(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


def test_suite_run_anchored_on_dus_h_end_to_end(tmp_path):
    """--suite tiny --anchor heuristic: the paired reward's reference becomes DUS-H, the saved
    policy carries the anchor, and its selection started from a policy that plays DUS-H."""
    proc = run("--suite", "tiny", "--anchor", "heuristic", "--total-timesteps", "48",
               "--eval-freq", "24", "--eval-tasks", "1", "--no-progress-bar",
               "--eval-episodes", "0", "--out-dir", str(tmp_path), "--run-name", "a",
               timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "a"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["anchor"] == "heuristic"
    assert config["env_config"]["reward"]["reference_policy"] == "heuristic"
    assert list((run_dir / "reference_cache").glob("*.json"))
    import numpy as np
    import torch

    from dus_agents.heuristic import HeuristicPolicy

    env = gym.make(dus_env.ENV_V1_ID, suite="tiny")
    policy = make_policy(f"ppo:{run_dir / 'policy.zip'}", env)
    assert policy.policy.anchor["rule"] == "heuristic"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["selection"]["curve"][0] == [0, 0.0]  # the start is DUS-H: exactly 0
    # the rule the saved policy is anchored on picks what DUS-H picks on this env's steps
    heuristic = HeuristicPolicy.for_env(env)
    obs = rollout_observations(env, heuristic, n_episodes=2)
    want = heuristic.predict(obs, deterministic=True)[0]
    present = env.unwrapped.layout.present(obs)
    with torch.no_grad():
        got = policy.policy.heuristic_indices(torch.as_tensor(obs)).numpy()
    np.testing.assert_array_equal(got[present], want[present])
    assert len(set(want[present].tolist())) > 2  # DUS-H did move off uniform on these


@pytest.mark.parametrize("agent", ["ppo", "reinforce"])
def test_end_to_end_tiny(agent, tmp_path):
    proc = run("--agent", agent, *TINY, "--total-timesteps", "48", "--checkpoint-freq", "24",
               "--seed", "3", "--out-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(tmp_path)
    assert run_dir.name.startswith(f"DUS-v0-tiny__{agent}__3__")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["agent"] == agent and config["env_spec"]["n_modalities"] == 2
    # the kernel path the run used, which bit-for-bit repetition needs, in the run and the file
    import torch

    capability = torch.backends.cpu.get_cpu_capability()  # same environment as the run
    assert config["torch_cpu_capability"] == capability
    with zipfile.ZipFile(run_dir / "policy.zip") as archive:
        header = json.loads(archive.read("dus_artifact.json"))
    assert header["versions"]["torch_cpu_capability"] == capability
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["timesteps"] == 48 and summary["episodes"] == 8
    assert isinstance(summary["final_mean_episode_return"], float)
    assert 0.0 <= summary["final_mean_val_acc"] <= 1.0
    assert summary["wall_time_s"] > 0
    assert set(summary["replay_vs_uniform"]) >= {"policy", "uniform", "mean_return_difference"}
    assert len(episodes(run_dir)) == 8
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert (run_dir / "logs" / "progress_0.csv").read_text().count("dus/") > 0
    assert list((run_dir / "checkpoints").glob("*_48_steps.zip"))
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    policy = make_policy(f"{agent}:{run_dir / 'policy.zip'}", env)
    first = run_episode(env, policy, seed=0)
    assert first.actions == run_episode(env, policy, seed=0).actions  # frozen, deterministic


@pytest.mark.parametrize("agent", ["ppo", "reinforce"])
def test_resume_extends_to_the_requested_total(agent, tmp_path):
    common = ["--agent", agent, *TINY, "--checkpoint-freq", "24", "--out-dir", str(tmp_path)]
    first = run(*common, "--total-timesteps", "24", "--run-name", "r", "--eval-episodes", "0")
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "r"
    second = run("--resume", str(run_dir), "--total-timesteps", "48", "--no-progress-bar")
    assert second.returncode == 0, second.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["timesteps"] == 48 and summary["segments"] == 2
    assert summary["resumed_from"].endswith("_24_steps.zip")
    assert [e["timesteps"] for e in episodes(run_dir)] == [6, 12, 18, 24, 30, 36, 42, 48]
    assert summary["total_wall_time_s"] > summary["wall_time_s"]
    # a finished run resumed with the same total trains no further
    third = run("--resume", str(run_dir), "--no-progress-bar", "--eval-episodes", "0")
    assert third.returncode == 0, third.stderr
    assert json.loads((run_dir / "summary.json").read_text())["timesteps"] == 48


def _running_at_first_checkpoint(proc: subprocess.Popen, checkpoints: Path,
                                 seconds: float) -> bool:
    """Wait (at most ``seconds``) until ``proc`` wrote its first checkpoint; whether it is
    still running then."""
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if list(checkpoints.glob("rl_model_*_steps.zip")):
            break
        time.sleep(0.05)
    return proc.poll() is None


@pytest.mark.slow
def test_resume_after_kill(tmp_path):
    """Kill a run after its first checkpoint; --resume finishes it at exactly the total."""
    args = [sys.executable, str(ROOT / "train_agent.py"), *TINY, "--total-timesteps", "480",
            "--checkpoint-freq", "24", "--out-dir", str(tmp_path), "--run-name", "k",
            "--keep-checkpoints", "100", "--eval-episodes", "0"]
    proc = subprocess.Popen(args, cwd=ROOT, env=env_vars(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "k" / "checkpoints"
    try:
        killed = _running_at_first_checkpoint(proc, checkpoints, seconds=90)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert killed, "the run finished before the test could kill it"
    assert not (tmp_path / "k" / "summary.json").exists()
    resumed = run("--resume", str(tmp_path / "k"), "--no-progress-bar")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "k" / "summary.json").read_text())
    assert summary["timesteps"] == 480
    steps = [e["timesteps"] for e in episodes(tmp_path / "k")]
    assert steps == list(range(6, 481, 6))  # no episode lost or counted twice


@pytest.mark.slow
def test_ppo_with_two_subprocess_envs(tmp_path):
    proc = run(*TINY, "--n-envs", "2", "--total-timesteps", "48", "--out-dir", str(tmp_path),
               "--eval-episodes", "0")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((only_run_dir(tmp_path) / "summary.json").read_text())
    assert summary["timesteps"] == 48 and summary["rollout_timesteps"] == 48


def test_help_documents_every_flag():
    proc = run("--help")
    assert proc.returncode == 0
    for flag in ("--agent", "--preset", "--host", "--total-timesteps", "--n-envs", "--seed",
                 "--out-dir", "--resume", "--checkpoint-freq", "--eval-episodes"):
        assert flag in proc.stdout
    docs = field_docs(TrainArgs)
    assert set(docs) == set(TrainArgs.__dataclass_fields__)


def test_unknown_agent_in_a_subprocess(tmp_path):
    proc = run("--agent", "ppx", "--out-dir", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "--agent='ppx' is not valid" in proc.stderr and "Did you mean 'ppo'" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, message", [
    (["--agent", "reinforc"], "Did you mean 'reinforce'"),
    (["--preset", "tinny"], "--preset='tinny' is not valid; valid choices: ['default', 'tiny'"),
    (["--host", "jiont"], "Did you mean 'joint'"),
    (["--agent", "reinforce", "--n-envs", "2"], "learns online from one env"),
    (["--total-timesteps", "0"], "--total-timesteps=0 must be >= 1"),
    (["--resume", "no/such/run"], "no run directory with a config.json"),
    (["--set", "reward.nam=discrepancy"], "unknown config key 'reward.nam'"),
    (["--set", "reward.name=discrpancy"], "Did you mean 'discrepancy'"),
    (["--set", "reward"], "expected KEY=VALUE"),
    (["--set", "data.n_train=abc"], "data.n_train='abc' has type str; expected int"),
    (["--set", "data.n_train=1000.5"], "data.n_train=1000.5 has type float; expected int"),
    (["--set", "model.hidden_dims=[32.5]"], "model.hidden_dims[0]=32.5 has type float"),
    (["--set", "device=quantum"], "device='quantum' is not a torch device"),
    (["--set", "data.modalities=ab"], "data.modalities='ab' has type str"),
    (["--set", "trainer.lr=Infinity"], "trainer.lr=inf must be a finite number"),
    (["--preset", "tiny", "--set", "sampler.max_batch_size=600"],
     "sampler.max_batch_size=600 exceeds the train split's 512 samples"),
    (["--anchor", "heuristic"], "applies to the DeepSets policy of --suite runs only"),
    (["--suite", "tiny", "--anchor", "dush"], "--anchor='dush' is not valid; valid choices: "
                                              "['none', 'heuristic']"),
    (["--suite", "tiny", "--anchor", "heuristic", "--imitate-episodes", "2"],
     "both start PPO from DUS-H"),
    (["--suite", "tiny", "--anchor", "heuristic", "--anchor-strength", "0"],
     "--anchor-strength=0.0 must be a finite number > 0"),
    (["--ppo", "lerning_rate=1e-3"], "'lerning_rate' is not a PPO setting; valid keys: "
                                     "['batch_size', 'clip_range'"),
    (["--ppo", "learning_rate=fast"], "--ppo learning_rate='fast' has type str; expected a number"),
    (["--ppo", "n_epochs=0"], "ppo.n_epochs=0 is out of range"),
    (["--ppo", "n_epochs"], "expected KEY=VALUE"),
    (["--agent", "reinforce", "--ppo", "n_epochs=2"], "--ppo applies to --agent ppo only"),
    (["--ppo", "n_steps=1", "--n-envs", "1"], "a rollout of 1 step; PPO needs at least 2"),
    # checked before SB3 or torch see them (issues 5-7, 10)
    (["--seed", "-1"], "--seed=-1 is out of range; valid range: [0, 4294967295]"),
    (["--seed", "4294967296"], "--seed=4294967296 is out of range; valid range: [0, 4294967295]"),
    (["--ppo", "device=foo"], "--ppo device='foo' is not a torch device; valid: one of ['cpu'"),
    (["--ppo", "device=meta"], "--ppo device='meta' holds no data"),
    (["--torch-threads", "100000000"],
     "--torch-threads=100000000 is out of range; valid range: [1, 1024]"),
    (["--imitate-episodes", "-3"], "--imitate-episodes=-3 must be >= 0"),
    (["--suite", "tiny", "--imitate-episodes", "-1"], "--imitate-episodes=-1 must be >= 0"),
    (["--imitate-episodes", "2"], "warm-starts the DeepSets policy of --suite runs only"),
    (["--set", "trainer=5"], "--set: trainer=5 has type int; expected a dict of its keys ["),
])
def test_bad_input_exits_2_without_a_run_dir(flags, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        train_agent.main([*flags, "--out-dir", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err, err  # one line
    assert not out.exists()


def test_out_dir_that_is_a_file(tmp_path, capsys):
    file = tmp_path / "f.txt"
    file.write_text("x")
    for out in (file, file / "sub"):
        with pytest.raises(SystemExit) as exc:
            train_agent.main(["--out-dir", str(out)])
        assert exc.value.code == 2
        assert "is a file, not a directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_resume_refuses_changed_settings(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    args = TrainArgs(preset="tiny", out_dir=str(tmp_path), run_name="r")
    (run_dir / "config.json").write_text(json.dumps({"args": vars(args)}))
    with pytest.raises(SystemExit):
        train_agent.main(["--resume", str(run_dir), "--preset", "default"])
    assert "conflicts with the resumed run's preset='tiny'" in capsys.readouterr().err
    parsed, resume_dir = train_agent.parse_args(
        ["--resume", str(run_dir), "--total-timesteps", "7"])
    assert resume_dir == run_dir and parsed.preset == "tiny" and parsed.total_timesteps == 7


def test_existing_run_name_is_refused(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit):
        train_agent.main(["--out-dir", str(tmp_path), "--run-name", "taken"])
    assert "use --resume" in capsys.readouterr().err


@pytest.mark.parametrize("agent, expected", [("ppo", 2), ("reinforce", 1)])
def test_default_env_count_depends_on_the_agent(agent, expected):
    args, _ = train_agent.parse_args(["--agent", agent])
    assert args.n_envs == expected


def test_set_and_ppo_overrides_reach_the_env_sb3_and_the_run_files(tmp_path):
    proc = run("--agent", "ppo", *TINY, "--total-timesteps", "24", "--eval-episodes", "0",
               "--set", "reward.name=discrepancy", "--set", "monitor.history_length=3",
               "--ppo", "episodes_per_rollout=1", "--ppo", "learning_rate=1e-3",
               "--out-dir", str(tmp_path), "--run-name", "r")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["args"]["set"] == ["reward.name=discrepancy", "monitor.history_length=3"]
    assert config["env_config"]["reward"]["name"] == "discrepancy"
    assert config["env_spec"]["history_length"] == 3
    assert config["args"]["ppo"] == ["episodes_per_rollout=1", "learning_rate=1e-3"]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["ppo_config"]["learning_rate"] == 1e-3
    episode = gym.make(dus_env.ENV_ID, preset="tiny").unwrapped.config.steps_per_episode
    assert summary["sb3_kwargs"]["n_steps"] == episode  # one whole episode per env
    assert summary["sb3_kwargs"]["batch_size"] == max(2, episode // 4)  # SB3 refuses 1
    with pytest.raises(SystemExit):  # a resumed run keeps its PPO settings
        train_agent.main(["--resume", str(tmp_path / "r"), "--ppo", "learning_rate=1e-2"])


# ----------------------------------------------------------------------------- resume (issue 12)
def test_resume_after_a_half_written_episode_line_keeps_sb3_monitor_files_readable(tmp_path):
    from stable_baselines3.common.monitor import load_results

    common = [*TINY, "--checkpoint-freq", "24", "--out-dir", str(tmp_path), "--run-name", "r",
              "--eval-episodes", "0"]
    first = run(*common, "--total-timesteps", "24")
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "r"
    assert len(load_results(str(run_dir / "monitor"))) == 4  # SB3's header is there
    # a kill mid-write after the checkpoint: a cut episode line, extra monitor rows
    with (run_dir / "episodes.jsonl").open("a") as fh:
        fh.write('{"dus/episode/return": 7')
    monitor = next((run_dir / "monitor").glob("*.monitor.csv"))
    with monitor.open("a") as fh:
        fh.write("55.0,6,9.9\n55.0,6,10.2\n")
    second = run("--resume", str(run_dir), "--total-timesteps", "48", "--no-progress-bar")
    assert second.returncode == 0, second.stderr
    assert [e["timesteps"] for e in episodes(run_dir)] == [6, 12, 18, 24, 30, 36, 42, 48]
    frame = load_results(str(run_dir / "monitor"))
    assert len(frame) == 8 and 55.0 not in frame["r"].tolist()  # killed segment's rows gone


def test_reinforce_resume_after_diverged_episodes_repeats_none(tmp_path):
    """Diverged episodes end early, so steps / episode length undercounts the episodes done."""
    common = ["--agent", "reinforce", *TINY, "--checkpoint-freq", "1", "--out-dir",
              str(tmp_path), "--run-name", "r", "--eval-episodes", "0",
              "--set", "trainer.lr=1000000.0", "--set", "trainer.momentum=0.0"]
    first = run(*common, "--total-timesteps", "18")
    assert first.returncode == 0, first.stderr
    run_dir = tmp_path / "r"
    before = episodes(run_dir)
    assert len(before) == 3 and sum(e["dus/episode/length"] for e in before) < 18
    second = run("--resume", str(run_dir), "--total-timesteps", "36", "--no-progress-bar")
    assert second.returncode == 0, second.stderr
    after = episodes(run_dir)
    assert len(after) == 6 and after[:3] == before  # episodes 3, 4, 5 added; none redone


@pytest.mark.parametrize("content", ['{"args": [1, 2]}', '{"args": {"agent": "ppo"}}', "{oops",
                                     '{"args": {"agent": "ppo", "preset": "tiny", "seed": "x"}}',
                                     '{"args": {"agent": "ppo", "preset": "tiny", "seed": -1}}'])
def test_resume_refuses_a_damaged_config_naming_it(tmp_path, capsys, content):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(content)
    with pytest.raises(SystemExit) as exc:
        train_agent.main(["--resume", str(run_dir)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(run_dir / "config.json") in err and "refusing to resume" in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json"]


@pytest.mark.parametrize("name, message", [
    ("x" * 300, "at most 200 bytes"),
    ("bad\nname", "no control characters"),
    ("a/b", "no '/'"),
])
def test_run_names_must_be_plain_folder_names(tmp_path, capsys, name, message):
    with pytest.raises(SystemExit) as exc:
        train_agent.main(["--out-dir", str(tmp_path / "out"), "--run-name", name])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_host_flag_and_set_trainer_host_conflict(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_agent.main(["--host", "joint", "--set", "trainer.host=mla", "--out-dir",
                          str(tmp_path / "o")])
    assert "--host='joint' and --set trainer.host='mla' conflict" in capsys.readouterr().err


def test_a_missing_optional_dependency_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['rich'] = None\n"
            "from dus_agents.cli import train\n"
            f"train.main(['--preset', 'tiny', '--out-dir', {str(tmp_path / 'o')!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert "rich, which is not installed; install the extra: pip install 'dus-env[agents]'" in (
        proc.stderr)
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- audit fixes
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_ppo_device_cuda_without_cuda_is_refused_not_recorded(tmp_path, capsys):
    """SB3 would quietly train on the CPU and config.json would say cuda."""
    with pytest.raises(SystemExit) as exc:
        train_agent.main(["--ppo", "device=cuda", "--out-dir", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--ppo device='cuda' is not available here" in err and "valid: 'cpu'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_out_dir_that_cannot_be_made_is_refused_as_dus_evaluate_does(capsys):
    with pytest.raises(SystemExit) as exc:
        train_agent.main(["--preset", "tiny", "--out-dir", "/proc/dus-no-such/x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("dus-train: error: --out-dir='/proc/dus-no-such/x' cannot be written (")
    assert err.rstrip().endswith("choose another --out-dir") and err.count("\n") == 1


TERMINAL_SIGINT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]); "
                   "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
"""``python -c`` prefix: exec the command with SIGINT as a terminal's shell leaves it. A test
process started in the background by a non-interactive shell has SIGINT ignored, and an ignored
(or blocked) SIGINT is inherited: the run would never see the Ctrl-C this test sends."""


def test_ctrl_c_to_the_process_group_exits_130_and_keeps_the_checkpoints(tmp_path):
    """SIGINT reaches the SubprocVecEnv workers too (as a terminal's Ctrl-C does): closing
    the env after them must not replace the interrupt with a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-c", TERMINAL_SIGINT, str(ROOT / "train_agent.py"), "--preset", "tiny",
         "--total-timesteps", "3000", "--checkpoint-freq", "48", "--out-dir", str(tmp_path),
         "--run-name", "k", "--no-progress-bar", "--eval-episodes", "0"],  # 2 envs: subprocesses
        cwd=ROOT, env=env_vars(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    checkpoints = tmp_path / "k" / "checkpoints"
    try:
        running = _running_at_first_checkpoint(proc, checkpoints, seconds=120)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert running, "the run finished before the test could interrupt it"
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "dus-train: interrupted" in stderr, stderr[-3000:]
    assert list(checkpoints.glob("rl_model_*_steps.zip"))
    assert not (tmp_path / "k" / "summary.json").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_dying_env_worker_is_one_line_and_the_run_resumes(tmp_path):
    """A SubprocVecEnv worker killed mid-run (out of memory, an operator): the driver says so
    in one line, keeps its checkpoints, and --resume finishes the run."""
    args = ["--preset", "tiny", "--total-timesteps", "3000", "--checkpoint-freq", "48",
            "--no-progress-bar", "--eval-episodes", "0"]  # 2 envs in subprocesses by default
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train_agent.py"), *args, "--out-dir", str(tmp_path),
         "--run-name", "k"],
        cwd=ROOT, env=env_vars(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    run_dir = tmp_path / "k"
    try:
        running = _running_at_first_checkpoint(proc, run_dir / "checkpoints", seconds=120)
        workers = _env_workers(proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert running and len(workers) == 2, "the run finished before the test could kill a worker"
    assert proc.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert f"an env worker process of the run in {run_dir} died" in stderr
    assert f"rerun with --resume {run_dir}" in stderr
    resumed = run("--resume", str(run_dir), "--total-timesteps", "480", "--no-progress-bar",
                  "--eval-episodes", "0", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "summary.json").read_text())["timesteps"] >= 480


def _env_workers(root: int) -> list[int]:
    """The SubprocVecEnv workers below process ``root``: its descendants without children of
    their own, less multiprocessing's resource tracker (with the forkserver start method the
    workers are the forkserver's children)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (name) state ppid ...": the name may hold spaces, so split after its ')'
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    below, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier

    def command(pid: int) -> bytes:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return b""
    return sorted(pid for pid in below if pid not in parents.values()
                  and b"resource_tracker" not in command(pid))


def test_a_full_disk_mid_run_is_one_line_and_keeps_the_finished_checkpoints(tmp_path, capsys,
                                                                            monkeypatch):
    import errno

    from dus_agents import ppo

    real, calls = ppo.save_checkpoint, []

    def filling_disk(*args, **kwargs):  # the second checkpoint finds the disk full
        calls.append(args)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(ppo, "save_checkpoint", filling_disk)
    argv = [*TINY, "--total-timesteps", "48", "--checkpoint-freq", "24", "--eval-episodes", "0",
            "--out-dir", str(tmp_path), "--run-name", "r"]
    with pytest.raises(SystemExit) as exc:
        train_agent.main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    run_dir = tmp_path / "r"
    assert err == (f"dus-train: error: could not write the results in {run_dir} ([Errno 28] No "
                   "space left on device); its 1 finished checkpoint(s) are kept; free space "
                   f"and rerun with --resume {run_dir}\n")
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["rl_model_24_steps.zip"]
    monkeypatch.setattr(ppo, "save_checkpoint", real)  # space freed: the advice works
    assert train_agent.main(["--resume", str(run_dir), "--no-progress-bar"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["timesteps"] == 48 and summary["resumed_from"].endswith("_24_steps.zip")


def test_a_resumed_suite_run_ships_the_best_of_what_it_kept_and_logs_each_evaluation_once(
        tmp_path, capsys, monkeypatch):
    """Killed right after its evaluation at 72 (checkpoints at 48 and 96), where that policy
    scored best: the resumed run redid 72 on another path, yet shipped the lost policy as
    best_policy.zip / policy.zip, and selection.jsonl logged 72 twice."""
    import torch

    import dus_agents.callbacks as callbacks
    from dus_agents.artifact import read_header
    from dus_agents.ppo import PPOPolicy

    real_returns, real_evaluate = callbacks.slice_returns, callbacks.SelectionCallback.evaluate
    state = {"first": True, "at": None}

    def returns(env, policy, pairs):  # the lost evaluation happens to score best
        values = real_returns(env, policy, pairs)
        return [v + 1.0 for v in values] if state["first"] and state["at"] == 72 else values

    def evaluate(self):
        state["at"] = self.model.num_timesteps
        record = real_evaluate(self)
        if state["first"] and record["timesteps"] == 72:
            raise KeyboardInterrupt  # Ctrl-C after the evaluation at 72
        return record

    monkeypatch.setattr(callbacks, "slice_returns", returns)
    monkeypatch.setattr(callbacks.SelectionCallback, "evaluate", evaluate)
    run_dir = tmp_path / "k"
    with pytest.raises(SystemExit) as interrupted:
        train_agent.main([
            "--suite", "tiny", "--n-envs", "1", "--eval-freq", "24", "--eval-tasks", "1",
            "--checkpoint-freq", "48", "--keep-checkpoints", "10", "--no-progress-bar",
            "--eval-episodes", "0", "--total-timesteps", "96", "--out-dir", str(tmp_path),
            "--run-name", "k"])
    assert interrupted.value.code == 130
    assert read_header(run_dir / "best_policy.zip")["metadata"]["selected_at_timesteps"] == 72
    state["first"] = False
    assert train_agent.main(["--resume", str(run_dir), "--no-progress-bar"]) == 0
    capsys.readouterr()
    log = [json.loads(line) for line in (run_dir / "selection.jsonl").read_text().splitlines()]
    assert [r["timesteps"] for r in log] == [0, 24, 48, 72, 96]
    best = json.loads((run_dir / "summary.json").read_text())["selection"]["best"]
    assert best == max(log, key=lambda r: r["mean_return"]) and best["mean_return"] < 1.0
    improvements, top = [], None  # one snapshot per new best, none from the lost path
    for record in log:
        if top is None or record["mean_return"] > top:
            improvements.append(record["timesteps"])
            top = record["mean_return"]
    assert sorted(int(p.stem) for p in (run_dir / "best_policies").glob("*.zip")) == improvements
    for name in ("best_policy.zip", "policy.zip"):
        assert read_header(run_dir / name)["metadata"]["selected_at_timesteps"] == \
            best["timesteps"], name
    kept = PPOPolicy.load(run_dir / "best_policies" / f"{best['timesteps']}.zip")
    shipped = PPOPolicy.load(run_dir / "policy.zip")
    for (key, a), b in zip(kept.policy.state_dict().items(),
                           shipped.policy.state_dict().values()):
        assert torch.equal(a, b), key


def test_imitation_uses_the_runs_overrides_and_the_replay_uses_fresh_suite_episodes(
        tmp_path, capsys):
    # --imitate-episodes built its env without --set: another observation layout crashed it
    # (RuntimeError: shape '[12, 4, 11]' is invalid); the summary's replay against uniform,
    # "fresh episodes", used reset seeds DUS-v1 maps into training pools
    from dus_env.suites import get_suite

    assert train_agent.main([
        "--suite", "tiny", "--n-envs", "1", "--imitate-episodes", "1",
        "--set", "monitor.history_length=4", "--total-timesteps", "24", "--eval-freq", "24",
        "--eval-tasks", "1", "--eval-episodes", "3", "--no-progress-bar",
        "--out-dir", str(tmp_path), "--run-name", "i"]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "i" / "summary.json").read_text())
    assert summary["imitation"]["episodes"] == 1
    replay = summary["replay_vs_uniform"]
    suite = get_suite("tiny")
    used = set(suite.validation_seeds) | {s for t in (*suite.train, *suite.heldout)
                                          for s in (t.seeds or ())}
    assert len(replay["seeds"]) == 3 and not used & set(replay["seeds"])
    assert replay["tasks"] == [suite.train[i % len(suite.train)].name for i in range(3)]


@pytest.mark.parametrize("flags", [
    ["--preset", "tiny", "--n-envs", "2"],  # subprocess envs
    ["--suite", "tiny", "--n-envs", "1", "--eval-freq", "24", "--eval-tasks", "1"],
])
def test_a_resumed_ppo_run_goes_on_exactly_as_an_uninterrupted_one(flags, tmp_path):
    # --resume reseeded (seed + timesteps): the episodes after the checkpoint and the final
    # weights differed from a run that was never stopped
    import torch

    from dus_agents.ppo import PPOPolicy

    common = [*flags, "--no-progress-bar", "--eval-episodes", "0", "--checkpoint-freq", "24",
              "--out-dir", str(tmp_path)]
    whole = run(*common, "--total-timesteps", "48", "--run-name", "whole", timeout=300)
    assert whole.returncode == 0, whole.stderr
    first = run(*common, "--total-timesteps", "24", "--run-name", "split", timeout=300)
    assert first.returncode == 0, first.stderr
    resumed = run("--resume", str(tmp_path / "split"), "--total-timesteps", "48",
                  "--no-progress-bar", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "split" / "summary.json").read_text())
    assert summary["resumed_exactly"] is True

    def trained(name):
        rows = [{k: v for k, v in e.items() if "time" not in k}
                for e in episodes(tmp_path / name)]
        return rows, PPOPolicy.load(tmp_path / name / "policy.zip").policy.state_dict()

    (rows_a, weights_a), (rows_b, weights_b) = trained("whole"), trained("split")
    assert rows_a == rows_b and len(rows_a) == 8  # 48 steps of 6-step episodes
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
