import pickle
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import dus_env
from dus_env.config import EnvConfig, SyntheticConfig, TrainerConfig, get_preset
from dus_env.env import DUSEnv
from tests.support.rng import isolated_global_rng

# Warnings the checkers may raise that are expected for this env, with the reason:
ALLOWED_WARNINGS: tuple[str, ...] = ()  # none needed so far; add (substring, reason) here


def _unexpected(records):
    return [
        str(w.message) for w in records
        if not any(allowed in str(w.message) for allowed in ALLOWED_WARNINGS)
    ]


def test_registered_and_made_by_id(caplog):
    env = gym.make("dus_env/DUS-v0", preset="tiny")
    assert isinstance(env.unwrapped, DUSEnv)
    env.close()
    # registering again (a second import path, a reload) is a silent no-op: gymnasium warns
    # "Overriding environment ..." and swaps in a new spec if an id is registered twice
    ids = (dus_env.ENV_ID, dus_env.ENV_V1_ID)
    specs = [gym.spec(env_id) for env_id in ids]
    with warnings.catch_warnings(record=True) as records, caplog.at_level("DEBUG"):
        warnings.simplefilter("always")
        dus_env._register_envs()
    assert [str(w.message) for w in records] == []
    assert caplog.records == []
    assert all(gym.spec(env_id) is spec for env_id, spec in zip(ids, specs))


CPU_PRESETS = ("default", "tiny", "mfeat", "mfeat3")
"""Every preset whose data ships with the package (the others read prepared folders)."""


@pytest.mark.parametrize("preset", CPU_PRESETS)
def test_gymnasium_env_checker_on_every_cpu_preset_as_gym_make_builds_it(preset):
    env = gym.make("dus_env/DUS-v0", preset=preset)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
    assert _unexpected(records) == []


@pytest.mark.parametrize("preset", CPU_PRESETS)
def test_sb3_env_checker_on_every_cpu_preset_as_gym_make_builds_it(preset):
    env = gym.make("dus_env/DUS-v0", preset=preset)
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        sb3_check_env(env.unwrapped, warn=True)
    assert _unexpected(records) == []


def test_wall_time_is_kept_outside_info_unless_asked_for():
    env = DUSEnv(preset="tiny")
    env.reset(seed=0)
    info = env.step(env.uniform_action)[4]
    assert "wall_time" not in info and env.step_seconds > 0
    timed = DUSEnv(preset="tiny", config={"info_wall_time": True})
    timed.reset(seed=0)
    assert timed.step(timed.uniform_action)[4]["wall_time"] > 0


def _rollout(env, actions, seed):
    obs, info = env.reset(seed=seed)
    trace = [(obs, None, info)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(np.asarray(action))
        trace.append((obs, reward, info))
        if terminated:
            break
    return trace


def test_same_seed_same_actions_identical_trajectories():
    actions = [[0, 4], [1, 3], [2, 2], [4, 0], [3, 1], [2, 2]]
    a = _rollout(DUSEnv(preset="tiny"), actions, seed=7)
    b = _rollout(DUSEnv(preset="tiny"), actions, seed=7)
    assert len(a) == len(b) == 7
    for (oa, ra, ia), (ob, rb, ib) in zip(a, b):
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
        assert ia == ib  # infos hold no clock reading by default: equal bit for bit


def test_reset_and_step_leave_global_rng_untouched():
    env = DUSEnv(preset="tiny")
    with isolated_global_rng():
        torch.manual_seed(1234)
        np.random.seed(1234)
        torch_state = torch.get_rng_state()
        np_state = np.random.get_state()
        env.reset(seed=3)
        for _ in range(3):
            env.step(env.action_space.sample())
        torch_after, after = torch.get_rng_state(), np.random.get_state()
    assert torch.equal(torch_state, torch_after)
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1])


def test_different_action_really_changes_training():
    a = _rollout(DUSEnv(preset="tiny"), [[2, 2]] * 3, seed=0)
    b = _rollout(DUSEnv(preset="tiny"), [[0, 4]] * 3, seed=0)
    assert a[1][2]["batch_sizes"] != b[1][2]["batch_sizes"]
    assert a[-1][2]["cumulative_scores"] != b[-1][2]["cumulative_scores"]
    assert not np.array_equal(a[-1][0], b[-1][0])


def test_episode_terminates_at_budget_with_progress_and_info():
    env = DUSEnv(preset="tiny")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    steps = 0
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(env.uniform_action)
        steps += 1
        assert isinstance(reward, float) and truncated is False
        assert env.observation_space.contains(obs)
    assert steps == env.config.steps_per_episode
    assert env.layout.decode(obs)["progress"][0] == pytest.approx(1.0)
    assert info["iteration"] == env.config.total_iterations
    assert info["samples_consumed"] == {m: 16 * 60 for m in env.modalities}
    for key in ("batch_sizes", "batch_scores", "cumulative_scores", "gap", "ratio", "losses",
                "validation", "reward_terms", "diverged", "epoch", "paired_consumed"):
        assert key in info
    with pytest.raises(ResetNeeded, match="episode has ended"):
        env.step(env.uniform_action)


def test_val_delta_return_telescopes_to_validation_gain():
    env = DUSEnv(preset="tiny")
    _, info0 = env.reset(seed=1)
    total, done = 0.0, False
    while not done:
        _, r, done, _, info = env.step(env.uniform_action)
        total += r
    gain = 100.0 * (info["validation"]["accuracy"] - info0["validation"]["accuracy"])
    assert total == pytest.approx(gain)


@pytest.mark.parametrize("reward", ["discrepancy", "terminal", "hybrid"])
def test_other_rewards(reward):
    env = DUSEnv(config={"reward": {"name": reward}}, preset="tiny")
    env.reset(seed=0)
    done, rewards, info = False, [], {}
    while not done:
        _, r, done, _, info = env.step(env.uniform_action)
        rewards.append(r)
    assert all(np.isfinite(rewards))
    if reward == "terminal":
        assert rewards[:-1] == [0.0] * (len(rewards) - 1) and rewards[-1] > 0
    else:
        assert "discrepancy" in info["reward_terms"]


def test_divergence_ends_episode_with_penalty_not_exception():
    env = DUSEnv(config={"trainer": {"lr": 1e6, "momentum": 0.0}}, preset="tiny")
    env.reset(seed=0)
    done, info, reward = False, {}, 0.0
    for _ in range(env.config.steps_per_episode):
        obs, reward, done, _, info = env.step(env.uniform_action)
        assert np.isfinite(obs).all()
        if done:
            break
    assert info["diverged"] is True
    assert reward == -env.config.reward.divergence_penalty


@pytest.mark.parametrize("reward", ["discrepancy", "terminal"])
def test_divergence_is_caught_without_a_validation_reward(reward):
    """Rewards that read no validation data still end a diverged episode with the penalty."""
    env = DUSEnv(config={"trainer": {"lr": 1e6, "momentum": 0.0}, "reward": {"name": reward}},
                 preset="tiny")
    env.reset(seed=0)
    for _ in range(env.config.steps_per_episode):
        obs, reward_value, done, _, info = env.step(env.uniform_action)
        assert np.isfinite(obs).all() and np.isfinite(reward_value)
        if done:
            break
    assert info["diverged"] is True
    assert reward_value == -env.config.reward.divergence_penalty


def test_env_is_picklable_and_runs_async_vectorised():
    env = DUSEnv(preset="tiny")
    env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(clone.step(clone.uniform_action)[0],
                                  env.step(env.uniform_action)[0])
    vec = gym.make_vec("dus_env/DUS-v0", num_envs=2, vectorization_mode="async", preset="tiny")
    try:
        obs, _ = vec.reset(seed=0)
        assert obs.shape == (2, env.layout.size)
        obs, rewards, term, trunc, _ = vec.step(np.array([[2, 2], [0, 4]]))
        assert rewards.shape == (2,)
    finally:
        vec.close()


def test_the_library_leaves_pythons_global_random_alone_from_import_to_step():
    """Importing scikit-learn (the metrics) loads rich, which draws from ``random`` on import:
    checked in a fresh interpreter, where nothing has loaded it yet."""
    code = ("import random\nrandom.seed(7)\nbefore = random.getstate()\n"
            "import gymnasium as gym, dus_env\n"
            "env = gym.make('dus_env/DUS-v1', suite='tiny')\nenv.reset(seed=0)\n"
            "env.step(env.action_space.sample())\nassert random.getstate() == before\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def test_making_dus_v0_carries_no_out_of_date_note():
    """Gymnasium takes DUS-v1 for a newer DUS-v0 and would call DUS-v0 out of date at every
    make; it is another env, so that one note is muted (warnings shown, as ``-W default``)."""
    code = ("import gymnasium as gym, dus_env\n"
            "gym.make('dus_env/DUS-v0', preset='tiny')\n")
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "out of date" not in done.stderr


def test_render_ansi_and_bad_render_mode():
    env = DUSEnv(preset="tiny", render_mode="ansi")
    env.reset(seed=0)
    assert "iteration 0" in env.render()
    with pytest.raises(ValueError, match="render_mode='video'.*valid choices"):
        DUSEnv(preset="tiny", render_mode="video")


def test_render_rgb_array_draws_the_state_and_human_needs_no_display(capsys):
    env = DUSEnv(preset="tiny", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (240, 320, 3) and first.dtype == np.uint8
    env.step(np.array([0, 4]))
    skewed = env.render()
    assert not np.array_equal(first, skewed)  # batch sizes and scores moved the bars
    human = DUSEnv(preset="tiny", render_mode="human")
    human.reset(seed=0)
    human.step(np.array([1, 1]))  # gymnasium's convention: human mode renders on its own
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "step 0/6 iteration 0: S strong=0.250, weak=0.250"
    assert len(lines) == 2 and lines[1].startswith("step 1/6 iteration 10: S strong=")
    assert human.render() is None and "step 1/6" in capsys.readouterr().out


def test_standard_clients_sb3_make_vec_env_and_record_video(tmp_path):
    from gymnasium.wrappers import RecordVideo
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env("dus_env/DUS-v0", n_envs=2, env_kwargs={"preset": "tiny"})
    try:
        assert vec.reset().shape == (2, vec.observation_space.shape[0])
        assert vec.render().ndim == 3  # SB3 tiles the envs' rgb_array frames
    finally:
        vec.close()
    env = RecordVideo(gym.make("dus_env/DUS-v0", preset="tiny", render_mode="rgb_array"),
                      video_folder=str(tmp_path / "video"), episode_trigger=lambda e: True,
                      disable_logger=True)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, _ = env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "video").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_three_modalities():
    config = get_preset("tiny").replace(
        data=SyntheticConfig(modalities=("a", "b", "c"), n_classes=4, dim=8,
                             clusters_per_class=(1, 2, 2), separation=(3.0, 1.5, 1.5),
                             confused_pairs=(1, 0, 0), n_train=256, n_val=64, n_test=64))
    env = DUSEnv(config=config)
    obs, _ = env.reset(seed=0)
    assert env.action_space.shape == (3,)
    assert obs.shape == (2 * 4 * 3 + 2 * 3 + 1,)
    _, _, _, _, info = env.step(np.array([0, 2, 4]))
    assert set(info["batch_sizes"]) == {"a", "b", "c"}


def test_hosts_run_in_env():
    for host in ("mla", "ogm_ge", "unimodal"):
        env = DUSEnv(config=EnvConfig.replace(get_preset("tiny"), trainer=TrainerConfig(host=host)))
        env.reset(seed=0)
        _, r, _, _, info = env.step(env.uniform_action)
        assert np.isfinite(r) and not info["diverged"]


@pytest.mark.parametrize("reward", ["val_delta", "discrepancy"])
def test_non_finite_weights_unseen_by_the_losses_still_end_the_episode(reward, monkeypatch):
    """Weights are checked where they are read: through the validation outputs each step
    (val_delta), or directly at the end of the episode (rewards that read no validation)."""
    env = DUSEnv(config={"reward": {"name": reward}}, preset="tiny")
    env.reset(seed=0)
    stats = env.trainer.evaluate(env.dataset.split("val"), full=True)
    assert stats.finite and stats.as_dict()["finite"] is True
    with torch.no_grad():
        env.trainer.model.fusion_head.bias[0] = float("nan")
    broken = env.trainer.evaluate(env.dataset.split("val"), full=True)
    assert not broken.finite and 0.0 <= broken.accuracy <= 1.0
    # training that never saw the broken weight: only the checks can notice it
    monkeypatch.setattr(env, "_train", lambda sizes: (False, {}))
    steps = 0
    while True:
        obs, r, done, _, info = env.step(env.uniform_action)
        steps += 1
        if done:
            break
    assert info["diverged"] is True and r == -env.config.reward.divergence_penalty
    assert np.isfinite(obs).all()
    assert steps == (1 if reward == "val_delta" else env.config.steps_per_episode)


def test_bad_actions():
    env = DUSEnv(preset="tiny")
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(env.uniform_action)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(2,\)"):
        env.step(np.array([1, 1, 1]))
    with pytest.raises(TypeError, match="dtype float64; expected integers"):
        env.step(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"action=\[0, 5\] is out of range; valid range: integers in \[0, 4\]"):
        env.step(np.array([0, 5]))
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.array([-1, 0]))
    # a rejected action leaves the episode usable
    env.step(env.uniform_action)
    # an action taken before is checked again in another form
    env.step(np.array([1, 2]))
    with pytest.raises(TypeError, match="dtype float64; expected integers"):
        env.step(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(1, 2\); expected \(2,\)"):
        env.step(np.array([[1, 2]]))
    _, _, _, _, info = env.step([1, 2])  # a list of ints is an action too
    assert info["batch_sizes"] == env.step(np.array([1, 2], dtype=np.int32))[4]["batch_sizes"]


def test_a_device_without_data_is_refused_like_a_missing_one():
    """``--set device=meta`` passes the device-string check but no training can run there: the
    env refuses it with the check ``dus-train --ppo device=...`` shares."""
    with pytest.raises(ValueError, match=r"device='meta' holds no data; training needs a device"):
        DUSEnv(preset="tiny", config={"device": "meta"})


def test_reset_options_are_checked():
    """DUS-v0 takes no reset options: a task name meant for DUS-v1 is refused, not ignored."""
    env = gym.make("dus_env/DUS-v0", preset="tiny")
    with pytest.raises(ValueError, match=r"reset options \['task'\] are not valid; this env "
                                         r"takes none"):
        env.reset(seed=0, options={"task": "tiny-3"})
    with pytest.raises(TypeError, match=r"reset options='junk' has type str; expected a dict "
                                        r"or None"):
        env.reset(seed=0, options="junk")
    first, _ = env.reset(seed=0, options={})  # what vector envs pass by default
    again, _ = env.reset(seed=0, options=None)
    assert np.array_equal(first, again)
    env.close()
