"""PPO on DUS-v0: configuration, determinism, dus/* logging, rollout-aligned checkpoints."""

from __future__ import annotations

import csv
import json
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import CSVOutputFormat, Logger

import dus_env
from dus_agents.artifact import ArtifactError
from dus_agents.callbacks import (
    DUSInfoCallback,
    RolloutCheckpointCallback,
    checkpoint_timesteps,
    episode_scalars,
    list_checkpoints,
    step_scalars,
)
from dus_agents.ppo import (
    PPOConfig,
    PPOPolicy,
    ScaleReward,
    build_ppo,
    make_vec_env,
    read_checkpoint,
)

torch.set_num_threads(1)
EPISODE = 6  # env steps per tiny-preset episode


def train(seed: int, timesteps: int = 48, callback=None):
    vec_env = make_vec_env("tiny", 1, reward_scale=0.01)
    model = build_ppo(vec_env, PPOConfig(), seed=seed, episode_length=EPISODE)
    model.learn(timesteps, callback=callback)
    return model


def probe_observations(n: int = 12) -> np.ndarray:
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    obs, _ = env.reset(seed=123)
    out = [obs]
    rng = np.random.default_rng(0)
    for _ in range(n - 1):
        obs, _, term, _, _ = env.step(rng.integers(0, 5, size=2))
        if term:
            obs, _ = env.reset()
        out.append(obs)
    return np.stack(out)


def test_config_defaults_suit_an_expensive_env():
    kwargs = PPOConfig().sb3_kwargs(episode_length=20, n_envs=1)
    assert kwargs["n_steps"] == 80  # four whole episodes, not 2048 steps
    assert kwargs["batch_size"] == 20
    assert kwargs["n_epochs"] == 4
    assert kwargs["device"] == "cpu"
    assert PPOConfig(n_steps=12).sb3_kwargs(20, 2)["batch_size"] == 6
    assert PPOConfig(n_steps=6).sb3_kwargs(20, 1)["batch_size"] == 2  # SB3 refuses 1
    with pytest.raises(ValueError, match="a rollout of 1 step; PPO needs at least 2"):
        PPOConfig(n_steps=1).sb3_kwargs(20, 1)


@pytest.mark.parametrize("field, value", [("n_epochs", 0), ("gamma", 1.5), ("reward_scale", 0.0),
                                          ("learning_rate", -1.0), ("net_arch", (0,)),
                                          ("batch_size", 1)])
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"ppo.{field}="):
        PPOConfig(**{field: value})


def test_overrides_replace_settings_and_name_bad_ones():
    config = PPOConfig().with_overrides(
        ["learning_rate=1e-3", "n_epochs=8", "n_steps=40", "net_arch=[32,16]", "gamma=1"])
    assert (config.learning_rate, config.n_epochs, config.n_steps) == (1e-3, 8, 40)
    assert config.net_arch == (32, 16) and config.gamma == 1.0 and isinstance(config.gamma, float)
    assert PPOConfig.for_suite().with_overrides([]).reward_scale == 0.1
    assert PPOConfig(n_steps=12).with_overrides(["n_steps=null"]).n_steps is None
    for pair, message in [("n_epochs=2.5", "n_epochs=2.5 has type float; expected an integer"),
                          ("n_epochs=true", "has type bool; expected an integer"),
                          ("net_arch=[]", "expected a non-empty JSON list of integers"),
                          ("device=3", "device=3 has type int; expected a string"),
                          ("gamma=1.5", "--ppo: ppo.gamma=1.5 is out of range"),
                          ("clip=0.1", "'clip' is not a PPO setting")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            PPOConfig().with_overrides([pair])


def test_scale_reward_wrapper():
    env = ScaleReward(gym.make(dus_env.ENV_ID, preset="tiny"), scale=0.01)
    env.reset(seed=0)
    _, reward, *_, info = env.step(np.array([2, 2]))
    assert reward == pytest.approx(0.01 * sum(info["reward_terms"].values()))


def test_same_seed_gives_identical_policies_and_actions():
    obs = probe_observations()
    a = train(seed=7)
    b = train(seed=7)
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters()):
        assert torch.equal(pa, pb)
    np.testing.assert_array_equal(a.predict(obs, deterministic=True)[0],
                                  b.predict(obs, deterministic=True)[0])
    c = train(seed=8)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.policy.parameters(),
                                                         c.policy.parameters()))


def test_info_callback_logs_dus_scalars(tmp_path):
    vec_env = make_vec_env("tiny", 1, reward_scale=0.01)
    model = build_ppo(vec_env, PPOConfig(), seed=0, episode_length=EPISODE)
    model.set_logger(Logger(str(tmp_path), [CSVOutputFormat(str(tmp_path / "progress.csv"))]))
    callback = DUSInfoCallback(tmp_path / "episodes.jsonl")
    model.learn(24, callback=callback)
    with open(tmp_path / "progress.csv") as fh:
        row = next(csv.DictReader(fh))
    for key in ("dus/batch_size/strong", "dus/batch_size/weak", "dus/score/weak",
                "dus/cumulative_score/strong", "dus/gap/weak", "dus/reward/val_delta",
                "dus/val_acc", "dus/episode/return", "dus/episode/final_val_acc",
                "dus/episode/samples/weak"):
        assert row.get(key) not in (None, ""), key
    assert len(callback.episodes) == 24 // EPISODE
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 4
    assert callback.episodes[-1]["timesteps"] == 24
    # the monitor sees raw rewards (points), PPO the scaled ones
    assert callback.episodes[0]["dus/episode/return"] > 5


def test_scalar_helpers_on_a_real_info():
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0, 4]))
    scalars = step_scalars(info)
    assert scalars["dus/batch_size/strong"] < scalars["dus/batch_size/weak"]
    assert set(episode_scalars(info, 1.0, 1)) >= {"dus/episode/return", "dus/episode/length",
                                                  "dus/episode/diverged"}


def test_checkpoints_fall_between_rollouts(tmp_path):
    folder = tmp_path / "ck"
    callback = RolloutCheckpointCallback(24, folder, keep_last=2)
    model = train(seed=0, timesteps=72, callback=callback)
    names = [checkpoint_timesteps(p) for p in list_checkpoints(folder)]
    assert names == [48, 72]  # every rollout of 24, oldest deleted, final one kept
    loaded = read_checkpoint(list_checkpoints(folder)[-1])  # read as data, never unpickled
    for pa, pb in zip(model.policy.parameters(), loaded.policy.policy.parameters()):
        assert torch.equal(pa, pb)  # the last checkpoint holds the updated (final) weights
    assert loaded.counters["num_timesteps"] == 72
    assert not list(folder.glob("*.tmp"))
    assert len(loaded.counters["rng"]["envs"]) == 1  # what an exact resume puts back


def test_a_checkpoint_with_a_damaged_random_state_is_refused_naming_it(tmp_path):
    from dus_agents.artifact import read_artifact, write_artifact
    from dus_agents.ppo import ARTIFACT_KIND, TRAINING_ENTRY

    folder = tmp_path / "ck"
    train(seed=0, timesteps=24, callback=RolloutCheckpointCallback(24, folder, keep_last=1))
    (path,) = list_checkpoints(folder)
    artifact = read_artifact(path, ARTIFACT_KIND)
    counters = json.loads(artifact.entries[TRAINING_ENTRY])
    env_state = counters["rng"]["envs"][0]
    damages = (("torch", {"torch": [999]}), ("torch", {"torch": [1, 2, 3]}),
               ("numpy", {"numpy": ["MT19937", [1, 2], 0, 0, 0.0]}),
               ("numpy", {"numpy": [*counters["rng"]["numpy"][:2], 9999, 0, 0.0]}),
               ("python", {"python": [3, [1, 2, 3], None]}),
               ("envs", {"envs": "noise"}),
               ("envs[0]", {"envs": [{**env_state, "bit_generator": "os.system"}]}),
               ("envs[0]", {"envs": [{**env_state, "state": {"state": "x", "inc": 1}}]}),
               ("rng", "noise"))
    for part, damage in damages:
        bad = {**counters, "rng": damage if isinstance(damage, str)
               else {**counters["rng"], **damage}}
        entries = {**artifact.entries, TRAINING_ENTRY: json.dumps(bad).encode()}
        write_artifact(path, ARTIFACT_KIND, artifact.env_spec, entries, artifact.metadata)
        with pytest.raises(ArtifactError, match=f"checkpoint {re.escape(repr(str(path)))} has a "
                                                rf"damaged random state \('rng'\), part "
                                                rf"{re.escape(repr(part))}: .*; refused"):
            read_checkpoint(path)


def test_adopt_a_plain_sb3_zip(tmp_path):
    model = train(seed=0, timesteps=24)
    model.save(tmp_path / "plain.zip")
    env = gym.make(dus_env.ENV_ID, preset="tiny")
    policy = PPOPolicy.from_sb3(tmp_path / "plain.zip", env)
    path = policy.save(tmp_path / "artefact.zip")
    assert PPOPolicy.load(path, env).env_spec == env.unwrapped.spec_dict()
    other = gym.make(dus_env.ENV_ID, preset="default")
    with pytest.raises(ArtifactError, match="shape"):
        PPOPolicy.from_sb3(tmp_path / "plain.zip", other)


def test_subproc_vec_env_trains():
    vec_env = make_vec_env("tiny", 2, reward_scale=0.01)
    try:
        model = build_ppo(vec_env, PPOConfig(episodes_per_rollout=1), seed=0,
                          episode_length=EPISODE)
        model.learn(12)
        assert model.num_timesteps == 12
    finally:
        vec_env.close()
