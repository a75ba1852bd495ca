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

from tests.conftest import ROOT
CONF = ROOT / "hyperparams" / "ppo.yml"


def zoo_command(log_folder: Path) -> list[str]:
    """The documented command, shortened: tiny preset, 24 timesteps, no evaluation."""
    return [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", dus_env.ENV_ID,
        "--gym-packages", "dus_env", "--conf-file", str(CONF), "-f", str(log_folder),
        "--device", "cpu", "--num-threads", "1", "--seed", "0",
        "--env-kwargs", "preset:'tiny'", "-n", "24",
        "--hyperparams", "n_steps:12", "batch_size:6", "--eval-freq", "-1",
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
