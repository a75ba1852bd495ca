"""SB3 model zips are read as data only: genuine zips replay exactly, crafted ones run nothing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from tests.support import security_payloads as sp
import torch
from dus_agents import sb3_files
from dus_agents.sb3_files import (
    MAX_MEMBER_BYTES,
    SB3FileError,
    build_actor_critic,
    load_actor_critic,
    load_policy_state,
    policy_settings,
    read_member_bounded,
    read_sb3_zip,
)

torch.set_num_threads(1)
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
EVIL_ENTRIES = ["observation_space", "action_space", "policy_kwargs", "lr_schedule", "policy_class"]


def _observations(n: int = 20) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, sp.OBS_DIM)).astype(np.float32)


def _rebuild(path: Path):
    sb3 = read_sb3_zip(path)
    policy = build_actor_critic(sp.TinyEnv.observation_space, sp.TinyEnv.action_space, policy_settings(sb3))
    load_policy_state(policy, sb3.policy_state, path)
    return policy


def _logits(policy, obs: np.ndarray) -> list[torch.Tensor]:
    with torch.no_grad():
        dist = policy.get_distribution(torch.as_tensor(obs))
    return [d.logits for d in dist.distribution]


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], env=SUBPROCESS_ENV,
                          capture_output=True, text=True, timeout=300, check=False)


# (a) genuine zips replay exactly -------------------------------------------------------------

@pytest.mark.parametrize("policy_kwargs", [
    {},
    {"net_arch": {"pi": [16], "vf": [8, 8]}, "activation_fn": torch.nn.ReLU, "ortho_init": False},
    {"net_arch": [12, 12], "activation_fn": torch.nn.SiLU, "share_features_extractor": False},
])
def test_genuine_zip_round_trips(tmp_path, policy_kwargs):
    model = sp.save_tiny_ppo(tmp_path / "model.zip", **policy_kwargs)
    policy = _rebuild(tmp_path / "model.zip")
    obs = _observations()
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    for mine, theirs in zip(_logits(policy, obs), _logits(model.policy, obs)):
        torch.testing.assert_close(mine, theirs)


def test_discrete_action_zip_round_trips(tmp_path):
    class DiscreteEnv(sp.TinyEnv):
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2, 3), np.float32)
        action_space = gymnasium.spaces.Discrete(4)

        def reset(self, *, seed=None, options=None):
            return np.zeros((2, 3), np.float32), {}

    model = sp.save_tiny_ppo(tmp_path / "d.zip", env=DiscreteEnv(), net_arch=[8])
    sb3 = read_sb3_zip(tmp_path / "d.zip")
    settings = policy_settings(sb3)
    assert (settings["observation_shape"], settings["action_nvec"]) == ([2, 3], [4])
    policy = build_actor_critic(DiscreteEnv.observation_space, DiscreteEnv.action_space, settings)
    load_policy_state(policy, sb3.policy_state, tmp_path / "d.zip")
    obs = np.random.default_rng(1).uniform(-1, 1, (20, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    with pytest.raises(ValueError, match="does not fit action_nvec"):
        build_actor_critic(DiscreteEnv.observation_space, gymnasium.spaces.Discrete(5), settings)


def test_settings_come_from_readable_fields(tmp_path):
    sp.save_tiny_ppo(tmp_path / "relu.zip", net_arch={"pi": [16], "vf": [8, 8]}, activation_fn=torch.nn.ReLU)
    settings = policy_settings(read_sb3_zip(tmp_path / "relu.zip"))
    json.dumps(settings)  # JSON-ready
    assert settings["net_arch"] == {"pi": [16], "vf": [8, 8]}
    assert (settings["activation_fn"], settings["activation_source"]) == ("relu", "policy_kwargs")
    assert (settings["observation_shape"], settings["observation_source"]) == ([5], "observation_space")
    assert (settings["action_nvec"], settings["action_source"]) == ([5, 5], "action_space")
    sp.save_tiny_ppo(tmp_path / "default.zip")
    settings = policy_settings(read_sb3_zip(tmp_path / "default.zip"))
    assert settings["activation_fn"] == "tanh" and settings["activation_source"].startswith("sb3_default")
    assert settings["net_arch"] == {"pi": [64, 64], "vf": [64, 64]} and settings["ortho_init"] is True


def test_fallbacks_to_state_dict_shapes_without_space_fields(tmp_path):
    path = tmp_path / "m.zip"
    sp.save_tiny_ppo(path)
    sb3 = read_sb3_zip(path)
    data = {k: v for k, v in sb3.data.items() if k not in ("observation_space", "action_space")}
    settings = policy_settings(sb3_files.SB3Zip(str(path), data, sb3.policy_state))
    assert settings["observation_shape"] == [5] and settings["observation_source"].startswith("state_dict")
    assert settings["action_nvec"] == [10] and settings["action_source"].startswith("state_dict")
    build_actor_critic(sp.TinyEnv.observation_space, sp.TinyEnv.action_space, settings)


def test_only_named_members_are_read(tmp_path, monkeypatch):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    opened: list[str] = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, name, *a, **k: (
        opened.append(getattr(name, "filename", name)), real_open(self, name, *a, **k))[1])
    sb3 = read_sb3_zip(tmp_path / "m.zip", members=("data", "policy.pth", "policy.optimizer.pth"))
    assert opened == ["data", "policy.pth", "policy.optimizer.pth"]
    assert set(sb3.optimizer_state) == {"state", "param_groups"}
    assert read_sb3_zip(tmp_path / "m.zip").optimizer_state is None
    with pytest.raises(ValueError, match="valid choices"):
        read_sb3_zip(tmp_path / "m.zip", members=("data", "system_info.txt"))


def test_reader_never_unpickles(tmp_path, monkeypatch):
    import pickle

    import cloudpickle

    sp.save_tiny_ppo(tmp_path / "m.zip")
    for module, name in ((pickle, "loads"), (pickle, "load"), (cloudpickle, "loads"), (cloudpickle, "load")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("sb3_files unpickled something"))
    real_load = torch.load

    def checked_load(*args, **kwargs):
        assert kwargs.get("weights_only") is True
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", checked_load)
    _rebuild(tmp_path / "m.zip")


def test_module_source_has_no_unsafe_loading():
    tree = ast.parse(Path(sb3_files.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names} | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"pickle", "cloudpickle", "dill", "stable_baselines3.common.save_util", "PPO"}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]
    for call in calls:
        if call.func.attr in ("load_from_zip_file", "json_to_data", "set_parameters"):
            pytest.fail(f"sb3_files calls {call.func.attr}")
        if call.func.attr == "load" and isinstance(call.func.value, ast.Name):
            assert call.func.value.id == "torch", f"sb3_files calls {call.func.value.id}.load"
            assert any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in call.keywords)
        if call.func.attr == "loads":
            assert isinstance(call.func.value, ast.Name) and call.func.value.id == "json"


# (b) crafted zips run nothing; (c) their payloads are live --------------------------------------

@pytest.mark.parametrize("entry", EVIL_ENTRIES)
def test_evil_data_entry_is_ignored(tmp_path, entry):
    marker = tmp_path / "pwned"
    path = sp.evil_sb3_zip(tmp_path / "evil.zip", marker, entry=entry)
    sb3 = read_sb3_zip(path)  # outcome: the read succeeds and ignores the payload
    assert ":serialized:" not in json.dumps(sb3.data)
    policy = _rebuild(path)
    assert policy.predict(_observations(3), deterministic=True)[0].shape == (3, 2)
    assert sp.marker_absent(marker)


@pytest.mark.parametrize("entry", ["observation_space", "lr_schedule"])
def test_evil_data_payload_is_live(tmp_path, entry):
    marker = tmp_path / "pwned"
    path = sp.evil_sb3_zip(tmp_path / "evil.zip", marker, entry=entry)
    result = _run("import base64, json, pickle, sys, zipfile\n"
                  "data = json.loads(zipfile.ZipFile(sys.argv[1]).read('data'))\n"
                  "pickle.loads(base64.b64decode(data[sys.argv[2]][':serialized:']))", str(path), entry)
    assert result.returncode == 0, result.stderr
    assert not sp.marker_absent(marker)


def test_ppo_load_runs_the_evil_zip(tmp_path):
    marker = tmp_path / "pwned"
    path = sp.evil_sb3_zip(tmp_path / "evil.zip", marker, entry="lr_schedule")
    _run("import sys\nfrom stable_baselines3 import PPO\nPPO.load(sys.argv[1], device='cpu')", str(path))
    assert not sp.marker_absent(marker)  # the attack this module exists to stop


@pytest.mark.parametrize("member", ["policy.pth", "policy.optimizer.pth"])
def test_evil_torch_member_is_refused(tmp_path, member):
    marker = tmp_path / "pwned"
    path = sp.evil_sb3_policy_pth_zip(tmp_path / "evil.zip", marker, member=member)
    with pytest.raises(SB3FileError, match="other than tensors") as err:
        read_sb3_zip(path, members=("data", "policy.pth", "policy.optimizer.pth"))
    assert str(path) in str(err.value) and member in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SB3FileError):
        load_actor_critic(path, sp.TinyEnv.observation_space, sp.TinyEnv.action_space) if member == "policy.pth" \
            else read_sb3_zip(path, members=("policy.optimizer.pth",))
    assert sp.marker_absent(marker)


def test_evil_torch_file_is_live(tmp_path):
    marker = tmp_path / "pwned"
    path = sp.evil_torch_file(tmp_path / "evil.pth", marker)
    result = _run("import sys, torch\ntorch.load(sys.argv[1], weights_only=False)", str(path))
    assert result.returncode == 0, result.stderr
    assert not sp.marker_absent(marker)


# (d) zip bombs, (e) lying headers ---------------------------------------------------------------

def test_zip_bomb_is_refused_without_inflating(tmp_path, monkeypatch):
    path = sp.zip_bomb(tmp_path / "bomb.zip", "data", 2 * 2**20)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("the bomb was opened"))
    with pytest.raises(SB3FileError, match=r"'data' is 2097152 bytes .* limit of 1048576") as err:
        read_sb3_zip(path, members=("data",), max_member_bytes=2**20)
    assert str(path) in str(err.value)


def test_zip_bomb_above_the_default_limit(tmp_path, monkeypatch):
    path = sp.zip_bomb(tmp_path / "bomb.zip", "policy.pth", MAX_MEMBER_BYTES + 1, chunk=16 * 2**20)
    assert path.stat().st_size < MAX_MEMBER_BYTES // 100
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("data", "{}")
    real_open = zipfile.ZipFile.open
    opened: list[str] = []

    def recording_open(self, name, *args, **kwargs):
        opened.append(name if isinstance(name, str) else name.filename)
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", recording_open)
    with pytest.raises(SB3FileError, match=rf"'policy.pth' is {MAX_MEMBER_BYTES + 1} bytes"):
        read_sb3_zip(path)
    assert "policy.pth" not in opened  # refused from its header, never inflated


def test_total_size_limit(tmp_path):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    with pytest.raises(SB3FileError, match="in all, over the limit of 1000 bytes"):
        read_sb3_zip(tmp_path / "m.zip", max_total_bytes=1000)


def test_lying_header_is_caught(tmp_path):
    path = sp.lying_size_zip(tmp_path / "liar.zip", "data", b"{" + b" " * 100_000 + b"}", claimed_size=10)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("data").file_size == 10
    with pytest.raises(SB3FileError, match="member 'data' is corrupt") as err:
        read_sb3_zip(path, members=("data",), max_member_bytes=1000)
    assert str(path) in str(err.value)


def test_bounded_read_refuses_content_past_the_limit(tmp_path):
    import io

    class LyingArchive:
        def open(self, info):
            return io.BytesIO(b"x" * 5000)  # inflates to more than its header claims

    info = zipfile.ZipInfo("policy.pth")
    info.file_size = 10
    with pytest.raises(SB3FileError, match="'policy.pth' inflates past the limit of 1000 bytes although its header says 10"):
        read_member_bounded(LyingArchive(), info, limit=1000, path=tmp_path / "m.zip")
    assert read_member_bounded(LyingArchive(), info, limit=5000, path="m.zip") == b"x" * 5000


# (f) broken files and unsafe layouts ------------------------------------------------------------

def test_not_a_zip(tmp_path):
    path = tmp_path / "model.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(SB3FileError, match="is not a readable zip file") as err:
        read_sb3_zip(path)
    assert str(path) in str(err.value)
    with pytest.raises(SB3FileError, match="not a readable zip file"):
        read_sb3_zip(tmp_path / "missing.zip")


def test_missing_policy_pth(tmp_path):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip") as src, zipfile.ZipFile(tmp_path / "cut.zip", "w") as dst:
        for info in src.infolist():
            if info.filename != "policy.pth":
                dst.writestr(info.filename, src.read(info))
    with pytest.raises(SB3FileError, match=r"cut.zip: has no 'policy.pth' member"):
        read_sb3_zip(tmp_path / "cut.zip")


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_corrupt_json(tmp_path, content):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    sp._replace_member(tmp_path / "m.zip", "data", content)
    with pytest.raises(SB3FileError, match=r"m.zip: member 'data' (is not valid JSON|holds a JSON list)"):
        read_sb3_zip(tmp_path / "m.zip")


def test_policy_pth_not_a_state_dict(tmp_path):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    for content in (b"garbage", None):
        if content is None:
            torch.save([torch.zeros(2)], tmp_path / "list.pth")
            content = (tmp_path / "list.pth").read_bytes()
        sp._replace_member(tmp_path / "m.zip", "policy.pth", content)
        with pytest.raises(SB3FileError, match=r"m.zip: member 'policy.pth'"):
            read_sb3_zip(tmp_path / "m.zip")


def _edited(tmp_path, edit) -> sb3_files.SB3Zip:
    sp.save_tiny_ppo(tmp_path / "m.zip")
    sb3 = read_sb3_zip(tmp_path / "m.zip")
    data, state = json.loads(json.dumps(sb3.data)), dict(sb3.policy_state)
    edit(data, state)
    return sb3_files.SB3Zip(sb3.path, data, state)


@pytest.mark.parametrize("edit, message", [
    (lambda d, s: d["policy_class"].update(__module__="evil.policies"), "is not SB3's ActorCriticPolicy"),
    (lambda d, s: d["policy_class"].update(__init__="<function MyPolicy.__init__ at 0x1>"), "is not SB3's ActorCriticPolicy"),
    (lambda d, s: d.pop("policy_class"), "is not SB3's ActorCriticPolicy"),
    (lambda d, s: d.update(policy_kwargs=["net_arch"]), "policy_kwargs is a list"),
    (lambda d, s: d.update(use_sde=True), "use_sde=True"),
    (lambda d, s: s.update({"features_extractor.cnn.0.weight": torch.zeros(3, 3)}), "outside the MLP actor-critic layout"),
    (lambda d, s: d.update(policy_kwargs={"activation_fn": "<class 'evil.Swish'>"}), "is not one of"),
    (lambda d, s: d.update(policy_kwargs={"features_extractor_class": "<class 'x.Cnn'>"}), "only FlattenExtractor"),
    (lambda d, s: d.update(policy_kwargs={"net_arch": [32]}), "differs from the weights"),
    (lambda d, s: d.update(policy_kwargs={"use_custom": 1}), "cannot be rebuilt safely; known keys"),
    (lambda d, s: d["action_space"].update({":type:": "<class 'gymnasium.spaces.box.Box'>"}), "Discrete/MultiDiscrete"),
    (lambda d, s: d["observation_space"].update(_shape=[7]), "flattens to 7"),
    (lambda d, s: s.update({"mlp_extractor.policy_net.2.weight": torch.zeros(64, 3)}), "do not chain"),
])
def test_unsafe_layouts_are_refused(tmp_path, edit, message):
    with pytest.raises(SB3FileError, match=message) as err:
        policy_settings(_edited(tmp_path, edit))
    assert str(tmp_path / "m.zip") in str(err.value)


def test_unknown_activation_name_lists_choices(tmp_path):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    settings = policy_settings(read_sb3_zip(tmp_path / "m.zip"))
    with pytest.raises(ValueError, match=r"activation_fn='swish' is unknown; valid choices: \['tanh', 'relu'"):
        build_actor_critic(sp.TinyEnv.observation_space, sp.TinyEnv.action_space, {**settings, "activation_fn": "swish"})


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    sp.save_tiny_ppo(tmp_path / "m.zip")
    sb3 = read_sb3_zip(tmp_path / "m.zip")
    settings = policy_settings(sb3)
    policy = build_actor_critic(sp.TinyEnv.observation_space, sp.TinyEnv.action_space,
                                {**settings, "net_arch": {"pi": [32, 64], "vf": [64, 64]}})
    with pytest.raises(SB3FileError, match=r"m.zip: policy.pth key 'mlp_extractor.policy_net.0.weight' "
                                           r"has shape \(64, 5\), the rebuilt policy expects \(32, 5\)"):
        load_policy_state(policy, sb3.policy_state, tmp_path / "m.zip")
    with pytest.raises(SB3FileError, match="missing keys"):
        load_policy_state(policy, {}, tmp_path / "m.zip")
