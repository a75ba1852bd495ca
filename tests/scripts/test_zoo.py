"""rl-zoo3 trains PPO on DUS-v0 from hyperparams/ppo.yml (a short run on the tiny preset).

rl_zoo3 is a test dependency (``pip install rl_zoo3==2.9.2``; it keeps torch as installed):
this test fails, not skips, when it is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import yaml

import dus_env
from dus_agents import run_episode
from dus_agents.ppo import PPOConfig, PPOPolicy
from dus_agents.registry import make_policy

from dus_agents.hyperparams import path as hyperparams_path
from tests.conftest import ROOT

CONF = hyperparams_path("ppo")


def zoo_command(log_folder: Path, algo: str = "ppo") -> list[str]:
    """The documented command, shortened: tiny preset, 24 timesteps, no evaluation."""
    short = {"ppo": ["n_steps:12", "batch_size:6"], "ppo_lstm": ["n_steps:12", "batch_size:6"],
             "a2c": ["n_steps:6"]}[algo]
    return [
        sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", dus_env.ENV_ID,
        "--gym-packages", "dus_env", "--conf-file", str(hyperparams_path(algo)),
        "-f", str(log_folder), "--device", "cpu", "--num-threads", "1", "--seed", "0",
        "--env-kwargs", "preset:'tiny'", "-n", "24", "--hyperparams", *short,
        "--eval-freq", "-1", "--log-interval", "1",
    ]


def test_rl_zoo3_is_installed():
    try:
        import rl_zoo3  # noqa: F401
    except ImportError:  # pragma: no cover - CI installs it
        pytest.fail("rl_zoo3 is not installed: pip install rl_zoo3==2.9.2")


def test_yaml_matches_ppo_config():
    hyper = yaml.safe_load(CONF.read_text())[dus_env.ENV_ID]
    expected = PPOConfig().sb3_kwargs(episode_length=20, n_envs=hyper["n_envs"])
    for key in ("n_steps", "batch_size", "n_epochs", "learning_rate", "gamma", "gae_lambda",
                "clip_range", "ent_coef", "vf_coef", "max_grad_norm"):
        assert float(hyper[key]) == pytest.approx(float(expected[key])), key
    assert hyper["env_kwargs"]["preset"] == "default"
    assert gym.make(dus_env.ENV_ID, preset="default").unwrapped.config.steps_per_episode == 20
    assert hyper["env_wrapper"][0]["dus_agents.ppo.ScaleReward"]["scale"] == PPOConfig().reward_scale


def test_zoo_train_runs_and_its_model_replays(tmp_path):
    env_vars = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(zoo_command(tmp_path / "logs"), cwd=ROOT, env=env_vars,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dus/" in proc.stdout  # the DUS callback logged
    (model_zip,) = (tmp_path / "logs" / "ppo").glob("*/dus_env-DUS-v0.zip")
    run_dir = model_zip.parent
    assert (run_dir / "0.monitor.csv").exists()
    assert "preset: tiny" in (run_dir / "dus_env-DUS-v0" / "config.yml").read_text()
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    artefact = PPOPolicy.from_sb3(model_zip, env).save(tmp_path / "policy.zip")
    result = run_episode(env, make_policy(f"ppo:{artefact}", env), seed=0)
    assert result.length == 6
    # the zoo's own replay renders ('human' by default): no display is needed
    enjoy = subprocess.run(
        [sys.executable, "-m", "rl_zoo3.enjoy", "--algo", "ppo", "--env", dus_env.ENV_ID,
         "--gym-packages", "dus_env", "-f", str(tmp_path / "logs"), "-n", "12", "--device",
         "cpu", "--env-kwargs", "preset:'tiny'"],
        cwd=ROOT, env=env_vars, capture_output=True, text=True, timeout=300)
    assert enjoy.returncode == 0, enjoy.stdout[-3000:] + enjoy.stderr[-3000:]
    assert "step 1/6 iteration 10" in enjoy.stdout  # the env's human rendering


@pytest.mark.parametrize("algo", ["a2c", "ppo_lstm"])
def test_zoo_trains_a2c_and_recurrent_ppo_from_the_shipped_files(tmp_path, algo):
    proc = subprocess.run(zoo_command(tmp_path / "logs", algo), cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "dus/" in proc.stdout  # the DUS callback logged: the file's settings were used
    models = list((tmp_path / "logs" / algo).glob("*/dus_env-DUS-v0.zip"))
    assert len(models) == 1


def test_hyperparameter_files_ship_inside_the_package():
    for algo in ("ppo", "a2c", "ppo_lstm"):
        hyper = yaml.safe_load(hyperparams_path(algo).read_text())[dus_env.ENV_ID]
        assert hyper["env_wrapper"][0]["dus_agents.ppo.ScaleReward"]["scale"] == 0.01
    proc = subprocess.run([sys.executable, "-m", "dus_agents.hyperparams", "a2c"], cwd="/",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("a2c.yml")
