"""Every policy behind the one interface: SB3 evaluate_policy, run_episode, registry, artefacts."""

from __future__ import annotations

import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import dus_env
from dus_agents import OnlinePolicy, Policy, run_episode
from dus_agents.artifact import (
    ArtifactError,
    IncompatibleEnvError,
    check_compatible,
    RUN_POLICY_FILE,
    read_artifact,
    spec_differences,
)
from dus_agents.ppo import PPOConfig, PPOPolicy, build_ppo, make_vec_env
from dus_agents.registry import (
    ARTIFACT_KINDS,
    POLICY_NAMES,
    env_layout,
    load_policy,
    make_policy,
)
from dus_agents.heuristic import HeuristicPolicy
from dus_agents.reinforce import ReinforceAgent
from dus_env.config import EnvConfig, MonitorConfig, SyntheticConfig, get_preset
from dus_env.env import DUSEnv

torch.set_num_threads(1)


def tiny_env(**kwargs) -> gym.Env:
    return gym.make(dus_env.ENV_ID, preset="tiny", **kwargs)


def env_for(spec: str) -> gym.Env:
    """The tiny env the policy acts in: DUS-v1's tiny suite for the pretrained (v1) policy."""
    if not spec.endswith(":") and env_layout(spec) == "v1":  # the artefacts here are v0
        return gym.make(dus_env.ENV_V1_ID, suite="tiny")
    return tiny_env()


def three_modality_config() -> EnvConfig:
    return get_preset("tiny").replace(data=SyntheticConfig(
        modalities=("a", "b", "c"), n_classes=4, dim=8, clusters_per_class=(1, 2, 2),
        separation=(3.0, 1.5, 1.5), confused_pairs=(1, 0, 0), n_train=512, n_val=128,
        n_test=128,
    ))


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    """A saved PPO policy and a saved REINFORCE policy, both trained briefly on the tiny preset."""
    folder = tmp_path_factory.mktemp("artefacts")
    env = tiny_env()
    spec = env.unwrapped.spec_dict()
    vec_env = make_vec_env("tiny", 1, reward_scale=0.01)
    model = build_ppo(vec_env, PPOConfig(), seed=0, episode_length=6)
    model.learn(24)
    ppo_path = PPOPolicy(model, spec).save(folder / "ppo.zip")
    agent = make_policy("reinforce", env, seed=0)
    for s in range(2):
        run_episode(env, agent, seed=s)
    rf_path = agent.save(folder / "reinforce.zip")
    return {"ppo": ppo_path, "reinforce": rf_path}


ALL_SPECS = [*POLICY_NAMES, "ppo:", "reinforce:"]


def build(spec: str, env, artefacts, seed: int = 0):
    if spec.endswith(":"):
        spec = spec + str(artefacts[spec[:-1]])
    return make_policy(spec, env, seed)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_policy_satisfies_interface_and_runs_through_evaluate_policy(spec, artefacts):
    env = Monitor(env_for(spec))
    policy = build(spec, env, artefacts)
    assert isinstance(policy, Policy)
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action, dtype=np.int64))
    assert state is None
    if spec == "reinforce":  # a learning agent takes one observation at a time
        with pytest.raises(ValueError, match="one observation at a time"):
            policy.predict(np.stack([obs, obs]))
    else:
        batch, _ = policy.predict(np.stack([obs, obs]), deterministic=True)
        assert np.asarray(batch).shape == (2, *env.action_space.shape)
    mean, std = evaluate_policy(policy, env, n_eval_episodes=2, deterministic=True)
    assert np.isfinite(mean) and np.isfinite(std)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_policy_runs_through_run_episode(spec, artefacts):
    env = env_for(spec)
    policy = build(spec, env, artefacts)
    result = run_episode(env, policy, seed=3)
    assert result.length == env.unwrapped.config.steps_per_episode
    assert np.isfinite(result.episode_return)


def test_only_fresh_reinforce_is_online(artefacts):
    env = tiny_env()
    assert isinstance(make_policy("reinforce", env), OnlinePolicy)
    replay = make_policy(f"reinforce:{artefacts['reinforce']}", env)
    assert replay.frozen


@pytest.mark.parametrize("kind", ARTIFACT_KINDS)
def test_save_load_round_trip_gives_identical_actions(kind, artefacts, tmp_path):
    env = tiny_env()
    first = load_policy(kind, str(artefacts[kind]), env)
    copy = first.save(tmp_path / "copy.zip")
    second = make_policy(f"{kind}:{copy}", env)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        for _ in range(3):
            a1, _ = first.predict(obs, deterministic=True)
            a2, _ = second.predict(obs, deterministic=True)
            np.testing.assert_array_equal(a1, a2)
            obs, *_ = env.step(a1)


@pytest.mark.parametrize("kind", ARTIFACT_KINDS)
def test_loading_against_other_modality_count_names_the_difference(kind, artefacts):
    env = dus_env.DUSEnv(config=three_modality_config())
    with pytest.raises(IncompatibleEnvError) as err:
        make_policy(f"{kind}:{artefacts[kind]}", env)
    message = str(err.value)
    assert "policy was trained for n_modalities=2, this env has 3" in message
    assert str(artefacts[kind]) in message


@pytest.mark.parametrize("kind", ARTIFACT_KINDS)
def test_loading_against_other_history_length_names_the_difference(kind, artefacts):
    config = get_preset("tiny").replace(monitor=MonitorConfig(history_length=2))
    env = dus_env.DUSEnv(config=config)
    with pytest.raises(IncompatibleEnvError, match="history_length=4, this env has 2"):
        make_policy(f"{kind}:{artefacts[kind]}", env)


def test_spec_differences_lists_every_part():
    a = {"n_modalities": 2, "observation_size": 21, "multipliers": [0.5, 1.0]}
    b = {"n_modalities": 3, "observation_size": 21, "multipliers": (0.5, 2.0)}
    diffs = spec_differences(a, b)
    assert len(diffs) == 2
    assert any("n_modalities=2, this env has 3" in d for d in diffs)
    assert any("multipliers" in d for d in diffs)
    check_compatible(a, dict(a))  # identical: no error


@pytest.mark.parametrize("kind", ARTIFACT_KINDS)
def test_missing_policy_file_names_the_path(kind, tmp_path):
    missing = tmp_path / "nope.zip"
    with pytest.raises(FileNotFoundError, match="nope.zip"):
        make_policy(f"{kind}:{missing}", tiny_env())


@pytest.mark.parametrize("kind", ARTIFACT_KINDS)
def test_corrupt_policy_file_names_the_path(kind, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(ArtifactError, match="bad.zip") as err:
        make_policy(f"{kind}:{bad}", tiny_env())
    assert "corrupt" in str(err.value)


def test_truncated_policy_file_is_an_artifact_error(artefacts, tmp_path):
    data = artefacts["ppo"].read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="cut.zip"):
        make_policy(f"ppo:{cut}", tiny_env())


def test_run_directory_resolves_to_its_policy_file(artefacts, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_POLICY_FILE).write_bytes(artefacts["ppo"].read_bytes())
    loaded, original = read_artifact(run), read_artifact(artefacts["ppo"])
    assert loaded.path == run / RUN_POLICY_FILE
    assert (loaded.kind, loaded.env_spec, loaded.entries) == (
        original.kind, original.env_spec, original.entries)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(ArtifactError, match=f"empty_run.*without a {RUN_POLICY_FILE}"):
        read_artifact(empty)


def test_zip_without_header_is_an_artifact_error(tmp_path):
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("data", "{}")
    with pytest.raises(ArtifactError, match="not a dus-env policy artefact"):
        read_artifact(plain)


def test_wrong_kind_says_which_kind_it_holds(artefacts):
    with pytest.raises(ArtifactError, match="holds a 'reinforce' policy, not 'ppo'"):
        make_policy(f"ppo:{artefacts['reinforce']}", tiny_env())


def test_unknown_policy_names_fail_with_choices():
    with pytest.raises(ValueError, match="Did you mean 'heuristic'"):
        make_policy("heuristc", tiny_env())
    with pytest.raises(ValueError, match="valid choices"):
        make_policy("sac:x.zip", tiny_env())
    with pytest.raises(ValueError, match="no path"):
        make_policy("ppo:", tiny_env())


def test_artefact_records_the_env_spec(artefacts):
    art = read_artifact(artefacts["ppo"])
    assert art.kind == "ppo"
    assert art.env_spec == tiny_env().unwrapped.spec_dict()
    assert art.metadata == {}
    assert set(read_artifact(artefacts["reinforce"]).entries) >= {"agent.json", "policy.pt"}


# ----------------------------------------------------------------------------- clients (issue 16)
def test_policies_are_built_for_vector_envs_of_every_kind():
    from stable_baselines3.common.env_util import make_vec_env

    sb3 = make_vec_env("dus_env/DUS-v0", n_envs=2, env_kwargs={"preset": "tiny"})
    gym_vec = gym.make_vec("dus_env/DUS-v0", num_envs=2, preset="tiny")
    try:
        for vec in (sb3, gym_vec):
            policy = HeuristicPolicy.for_env(vec)
            assert policy.layout == DUSEnv(preset="tiny").layout
            obs = vec.reset() if vec is sb3 else vec.reset(seed=0)[0]
            action, _ = policy.predict(obs)
            assert action.shape == (2, 2)
        assert ReinforceAgent.for_env(sb3).env_spec == DUSEnv(preset="tiny").spec_dict()
    finally:
        sb3.close()
        gym_vec.close()


def test_a_missing_optional_dependency_is_one_line_naming_the_extra(tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['tqdm'] = None\n"
            "from dus_agents.cli import evaluate\n"
            f"evaluate.main(['--preset', 'tiny', '--policies', 'uniform', '--seeds', '0', "
            f"'--out-dir', {str(tmp_path / 'e')!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "install the extra: pip install 'dus-env[agents]'" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    code = code.replace("'--seeds', '0'", "'--seeds', '0', '--quiet'").replace(
        "sys.modules['tqdm'] = None", "sys.modules['matplotlib'] = None")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "pip install 'dus-env[plots]'" in proc.stderr, proc.stderr
    assert not (tmp_path / "e").exists()  # refused before anything was run or written


@pytest.mark.parametrize("args,kwargs,error,match", [
    (("audio", 6, 200), {}, TypeError, r"modalities='audio' must be a sequence of names"),
    ((["a", "b"], 4.5, 200), {}, TypeError, r"n_classes=4.5 has type float; expected an integer"),
    ((["a", "b"], 4, "200"), {}, TypeError, r"total_iterations='200' has type str"),
    ((["a", "b"], 4, 200), {"base_batch_size": "64"}, TypeError, r"base_batch_size='64'"),
    ((["a", "b"], 4, 200), {"iters_per_step": 2.5}, TypeError, r"iters_per_step=2.5"),
    ((["a", "b"], 4, 200), {"max_batch_size": 0}, ValueError, r"max_batch_size=0 is out of range"),
    ((["a", "b"], None, 200), {}, TypeError, r"n_classes=None has type NoneType"),
])
def test_make_controller_names_each_bad_argument(args, kwargs, error, match):
    from dus_agents import make_controller

    with pytest.raises(error, match=match):
        make_controller(*args, **kwargs)


def test_an_ema_monitor_is_part_of_the_spec_and_the_plain_loop_follows_it():
    """EMA-averaged scores change every observation: a policy trained on them does not fit a
    running-mean env, and make_controller builds the monitor it was trained with."""
    from dus_agents import make_controller
    from dus_agents.artifact import spec_differences
    from dus_agents.heuristic import UniformPolicy

    mean_env = DUSEnv(preset="tiny")
    ema_env = DUSEnv(preset="tiny", config={"monitor": {"average": "ema", "ema_beta": 0.9}})
    assert "monitor_ema_beta" not in mean_env.spec_dict()  # older artefacts still fit
    assert ema_env.spec_dict()["monitor_ema_beta"] == 0.9
    assert spec_differences(ema_env.spec_dict(), mean_env.spec_dict()) == [
        "policy was trained for monitor_ema_beta=0.9, this env has None"]
    policy = UniformPolicy(ema_env.layout, ema_env.config.sampler.multipliers)
    policy.env_spec = ema_env.spec_dict()
    controller = make_controller(list(ema_env.modalities), 4, 60, policy)
    assert controller.monitor_config.average == "ema"
    assert controller.monitor_config.ema_beta == 0.9
