"""Loading a policy file is side-effect free, bounded, and refuses a malformed one by name.

* loading touches no global random state (the network is built on torch's ``meta`` device or
  inside ``fork_rng``, then given the file's tensors; the first import of stable_baselines3,
  whose rich draws from Python's ``random``, puts that generator back);
* a damaged zip, a ``policy.pt`` that is not a state dict, settings out of range, a DUS-v1
  header without ``max_modalities`` and a header that does not describe its own network
  (layout, history length, grid, slots) raise :class:`ArtifactError` naming the file, through
  ``load_policy`` and through ``make_controller`` alike;
* the sizes ``policy.json`` declares are checked against the file's tensors before anything is
  allocated;
* NaN / inf weights are refused at load, not at the first decision.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import dus_env
from dus_agents import make_controller
from dus_agents.artifact import read_header
from dus_agents.heuristic import UniformPolicy
from dus_agents.ppo import PPOPolicy
from dus_agents.registry import load_policy, pretrained_path
from dus_agents.reinforce import ReinforceAgent
from dus_env.errors import ArtifactError, IncompatibleEnvError
from tests.conftest import ROOT
from tests.support import security_payloads as sp
from tests.support.rng import isolated_global_rng


@pytest.fixture(scope="module")
def env():
    return gym.make(dus_env.ENV_ID, preset="tiny")


@pytest.fixture(scope="module")
def mlp_file(env, tmp_path_factory) -> Path:
    """A saved DUS-v0 PPO artefact (SB3's MlpPolicy)."""
    from stable_baselines3 import PPO

    policy = PPO("MlpPolicy", env, n_steps=8, batch_size=8, seed=0, device="cpu").policy
    return PPOPolicy(policy, env.unwrapped.spec_dict()).save(
        tmp_path_factory.mktemp("mlp") / "mlp.zip")


@pytest.fixture(scope="module")
def reinforce_file(env, tmp_path_factory) -> Path:
    """A saved REINFORCE agent after one update (so its optimiser has state)."""
    agent = ReinforceAgent.for_env(env, seed=1)
    agent.predict(env.reset(seed=0)[0])
    agent.observe(1.0, terminated=True)
    return agent.save(tmp_path_factory.mktemp("r") / "r.zip")


def _edited(src: Path, dst: Path, members: dict[str, bytes]) -> Path:
    """A copy of the artefact ``src`` at ``dst`` with ``members`` (name: content) replaced."""
    shutil.copy(src, dst)
    for name, content in members.items():
        sp._replace_member(dst, name, content)
    return dst


def _member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def _tensors(path: Path, name: str = "policy.pt") -> dict:
    return torch.load(io.BytesIO(_member(path, name)), weights_only=True)


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _with_layout(src: Path, dst: Path, edit) -> Path:
    layout = json.loads(_member(src, "policy.json"))
    edit(layout["settings"])
    return _edited(src, dst, {"policy.json": json.dumps(layout).encode()})


def _zip_damaged(src: Path, dst: Path, member: str, how: str) -> Path:
    """``src`` with ``member``'s deflate stream garbled (``how="deflate"``) or its compression
    method set to an unknown id (``how="method"``), headers otherwise intact."""
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as archive:
        info = archive.getinfo(member)
    local = info.header_offset
    if how == "deflate":
        name_len, extra_len = struct.unpack_from("<HH", raw, local + 26)
        start = local + 30 + name_len + extra_len
        for i in range(start + 4, min(start + 44, start + info.compress_size)):
            raw[i] ^= 0xA5
    else:
        struct.pack_into("<H", raw, local + 8, 99)
        central = raw.index(b"PK\x01\x02")
        while central != -1:
            name_len = struct.unpack_from("<H", raw, central + 28)[0]
            if raw[central + 46:central + 46 + name_len] == member.encode():
                struct.pack_into("<H", raw, central + 10, 99)
            central = raw.find(b"PK\x01\x02", central + 4)
    dst.write_bytes(bytes(raw))
    return dst


def _refused(path: Path, match: str, kind: str = "ppo") -> ArtifactError:
    with pytest.raises(ArtifactError, match=match) as err:
        load_policy(kind, str(path))
    assert str(path) in str(err.value)
    return err.value


# --------------------------------------------------------------------------- 1. global RNG
def _loads(which: str, mlp_file: Path, reinforce_file: Path, env, tmp_path: Path):
    if which == "pretrained":
        return lambda: load_policy("ppo", str(pretrained_path()))
    if which == "ppo file":
        return lambda: load_policy("ppo", str(mlp_file))
    if which == "reinforce file":
        return lambda: load_policy("reinforce", str(reinforce_file))
    sb3 = tmp_path / "sb3.zip"
    sp.save_tiny_ppo(sb3, env)
    return lambda: PPOPolicy.from_sb3(sb3, env)


@pytest.mark.parametrize("which", ["pretrained", "ppo file", "from_sb3", "reinforce file"])
def test_loading_leaves_the_global_torch_rng_unchanged(which, mlp_file, reinforce_file, env,
                                                       tmp_path):
    load = _loads(which, mlp_file, reinforce_file, env, tmp_path)
    with isolated_global_rng():
        torch.manual_seed(1234)
        before = torch.random.get_rng_state()
        load()
        after = torch.random.get_rng_state()
    assert torch.equal(after, before)


FRESH_LOAD = """
import random, sys
import numpy as np, torch
from dus_agents import make_controller
from dus_agents.ppo import PPOPolicy
from dus_agents.registry import load_policy, pretrained_path
{setup}
assert "stable_baselines3" not in sys.modules
random.seed(7); np.random.seed(7); torch.manual_seed(7)
def states():
    return (random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist())
before = states()
{call}
assert "stable_baselines3" in sys.modules and "rich" in sys.modules
after = states()
print([name for name, a, b in zip(("random", "numpy", "torch"), before, after) if a != b])
"""


@pytest.mark.parametrize("which", ["load_policy pretrained", "make_controller pretrained",
                                   "make_controller sampled:pretrained", "load_policy mlp file",
                                   "from_sb3", "import dus_agents.deepsets"])
def test_the_first_load_in_a_fresh_process_leaves_every_global_rng_unchanged(which, mlp_file,
                                                                             tmp_path):
    """The first load imports stable_baselines3, whose rich draws from Python's ``random``
    on import: in a fresh interpreter (nothing imported yet), Python's, numpy's and torch's
    global generators are as they were."""
    setup = "assert 'rich' not in sys.modules  # its import draws from random"
    call = {"load_policy pretrained": "load_policy('ppo', str(pretrained_path()))",
            "make_controller pretrained": "make_controller(('a', 'b'), 6, 40, 'pretrained')",
            "make_controller sampled:pretrained":
                "make_controller(('a', 'b'), 6, 40, 'sampled:pretrained', seed=3)",
            "load_policy mlp file": f"load_policy('ppo', {str(mlp_file)!r})",
            "from_sb3": f"PPOPolicy.from_sb3({str(tmp_path / 'sb3.zip')!r}, env)",
            "import dus_agents.deepsets": "import dus_agents.deepsets"}[which]
    if which == "from_sb3":
        sp.save_tiny_ppo(tmp_path / "sb3.zip", gym.make(dus_env.ENV_ID, preset="tiny"))
        setup = "import gymnasium as gym, dus_env\nenv = gym.make(dus_env.ENV_ID, preset='tiny')"
        # (the env imports scikit-learn, and so rich, leaving random as it was: dus_env.metrics)
    proc = subprocess.run([sys.executable, "-c", FRESH_LOAD.format(setup=setup, call=call)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("which", ["pretrained", "ppo file"])
def test_loaded_weights_are_the_files_own_plain_cpu_parameters(which, mlp_file):
    path = pretrained_path() if which == "pretrained" else mlp_file
    policy = PPOPolicy.load(path).policy
    state = _tensors(path)
    own = policy.state_dict()
    assert own.keys() == state.keys()
    assert all(torch.equal(own[k], state[k]) for k in state)  # bit for bit
    params = list(policy.parameters())
    assert all(type(p) is torch.nn.Parameter and p.device.type == "cpu" and p.requires_grad
               and p.dtype == torch.float32 for p in params)
    # the optimiser holds the loaded parameters (not the meta ones the network was built with)
    assert [id(p) for p in policy.optimizer.param_groups[0]["params"]] == [id(p) for p in params]


def test_a_float64_file_loads_as_float32_with_the_same_actions(mlp_file, tmp_path):
    wide = _edited(mlp_file, tmp_path / "f64.zip", {"policy.pt": _saved(
        {k: v.double() for k, v in _tensors(mlp_file).items()})})
    pretrained = pretrained_path()
    f64 = _edited(pretrained, tmp_path / "g64.zip", {"policy.pt": _saved(
        {k: v.double() for k, v in _tensors(pretrained).items()})})
    rng = np.random.default_rng(0)
    for original, converted in ((mlp_file, wide), (pretrained, f64)):
        a, b = PPOPolicy.load(original), PPOPolicy.load(converted)
        assert {p.dtype for p in b.policy.parameters()} == {torch.float32}
        obs = np.abs(rng.normal(size=(64, *a.policy.observation_space.shape))).astype(np.float32)
        assert np.array_equal(a.predict(obs, deterministic=True)[0],
                              b.predict(obs, deterministic=True)[0])


# --------------------------------------------------------------------------- 2. malformed
@pytest.mark.parametrize("how, match", [
    ("deflate", "is corrupt or not a dus-env policy artefact"),
    ("method", "is corrupt or not a dus-env policy artefact .*compression method"),
])
def test_a_damaged_zip_member_is_refused_naming_the_file(how, match, tmp_path):
    _refused(_zip_damaged(pretrained_path(), tmp_path / f"{how}.zip", "policy.pt", how), match)


@pytest.mark.parametrize("content, match", [
    ([torch.zeros(1)], r"member 'policy.pt' holds a list, expected a state dict"),
    (torch.zeros(3), r"member 'policy.pt' holds a Tensor, expected a state dict"),
    ("ints", r"member 'policy.pt' has entry '[\w.]+' holding a int, expected a tensor"),
    ("long", r"member 'policy.pt' has tensor '[\w.]+' of dtype torch.int64, expected a "
             "floating-point one"),
])
@pytest.mark.parametrize("network", ["deepsets", "mlp"])
def test_a_policy_pt_that_is_not_a_state_dict_is_refused(content, match, network, mlp_file,
                                                         tmp_path):
    src = pretrained_path() if network == "deepsets" else mlp_file
    if content == "ints":
        content = {k: 1 for k in _tensors(src)}
    elif content == "long":
        content = {k: v.long() for k, v in _tensors(src).items()}
    _refused(_edited(src, tmp_path / "pt.zip", {"policy.pt": _saved(content)}), match)


@pytest.mark.parametrize("field, value, match", [
    ("hidden", [], r"settings.hidden=\[\] is not valid; expected a non-empty list of positive"),
    ("hidden", [-5, 64], r"settings.hidden=\[-5, 64\] is not valid"),
    ("hidden", "64", r"settings.hidden='64' is not valid"),
    ("head", [0], r"settings.head=\[0\] is not valid"),
    ("uniform_index", 99, r"settings.uniform_index=99 is not valid; expected an integer "
                          r"\[0, 16\]"),
    ("uniform_index", -1, r"settings.uniform_index=-1 is not valid"),
    ("history_length", 0, r"settings.history_length=0 is not valid; expected an integer >= 1"),
    ("history_length", "8", r"settings.history_length='8' is not valid"),
    ("activation", ["tanh"], r"activation=\['tanh'\] is not valid; valid choices"),
])
def test_deepsets_settings_out_of_range_are_refused_at_load(field, value, match, tmp_path):
    def edit(settings):
        settings[field] = value

    _refused(_with_layout(pretrained_path(), tmp_path / "s.zip", edit), match)


@pytest.mark.parametrize("arch, match", [
    ({"pi": [-1], "vf": [64, 64]}, r"net_arch.pi=\[-1\] is not valid"),
    ({"pi": [64, 64]}, r"net_arch=.* is not valid"),
    ({"pi": [64.5, 64], "vf": [64, 64]}, r"net_arch.pi=\[64.5, 64\] is not valid"),
])
def test_mlp_settings_out_of_range_are_refused_at_load(arch, match, mlp_file, tmp_path):
    def edit(settings):
        settings["net_arch"] = arch

    _refused(_with_layout(mlp_file, tmp_path / "s.zip", edit), match)


def test_a_policy_json_that_is_not_an_object_is_refused(tmp_path):
    _refused(_edited(pretrained_path(), tmp_path / "j.zip", {"policy.json": b"[1, 2]"}),
             "'policy.json' holds a JSON list, expected an object")


def test_a_dus_v1_header_without_max_modalities_is_refused_when_read(tmp_path):
    header = json.loads(_member(pretrained_path(), "dus_artifact.json"))
    header["env_spec"].pop("max_modalities")
    path = _edited(pretrained_path(), tmp_path / "h.zip",
                   {"dus_artifact.json": json.dumps(header).encode()})
    _refused(path, r"env_spec.max_modalities=None is not valid; expected a positive integer "
                   r"\(the number of modality slots\) \(a layout='v1', DUS-v1, policy needs it\)")
    with pytest.raises(ArtifactError, match="max_modalities") as err:
        read_header(path)  # what make_controller reads first
    assert str(path) in str(err.value)
    header["env_spec"]["max_modalities"] = 3  # the network has 4 slots
    other = _edited(pretrained_path(), tmp_path / "h3.zip",
                    {"dus_artifact.json": json.dumps(header).encode()})
    _refused(other, "its network has 4 modality slots but its recorded env spec says "
                    "max_modalities=3")


@pytest.mark.parametrize("field,value,match", [
    ("history_length", "8", r"env_spec.history_length='8' is not valid; expected a positive "
                            r"integer"),
    ("multipliers", [0.5, -1.0], r"env_spec.multipliers=\[0.5, -1.0\] is not valid; expected "
                                 r"a strictly increasing list of at least 2 positive numbers"),
    ("multipliers", [2.0, 1.0, 0.5], r"env_spec.multipliers=\[2.0, 1.0, 0.5\] is not valid; "
                                     r"expected a strictly increasing list"),
    ("multipliers", [1.0, 1.0], r"env_spec.multipliers=\[1.0, 1.0\] is not valid; expected a "
                                r"strictly increasing list"),
    ("multipliers", [1.0], r"env_spec.multipliers=\[1.0\] is not valid; expected a strictly "
                           r"increasing list of at least 2"),
    ("layout", "v2", r"env_spec.layout='v2' is not valid; expected one of \['v0', 'v1'\]"),
    ("discrepancy", "gapp", r"env_spec.discrepancy='gapp' is not valid; expected one of"),
    ("observation_size", True, r"env_spec.observation_size=True is not valid"),
])
def test_damaged_env_spec_entries_are_refused_when_the_header_is_read(field, value, match,
                                                                      tmp_path):
    """make_controller builds its monitor and grid from the header: a damaged entry is refused
    there, naming the file, not later by whatever reads it."""
    header = json.loads(_member(pretrained_path(), "dus_artifact.json"))
    header["env_spec"][field] = value
    path = _edited(pretrained_path(), tmp_path / "s.zip",
                   {"dus_artifact.json": json.dumps(header).encode()})
    with pytest.raises(ArtifactError, match=match) as err:
        read_header(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("kind", [3, None, ["ppo"], "sac"])
def test_a_header_kind_that_is_not_a_known_kind_is_refused_naming_the_field(kind, tmp_path):
    header = json.loads(_member(pretrained_path(), "dus_artifact.json"))
    header["kind"] = kind
    path = _edited(pretrained_path(), tmp_path / "k.zip",
                   {"dus_artifact.json": json.dumps(header).encode()})
    match = re.escape(f"'dus_artifact.json' kind={kind!r} is not valid; valid kinds: "
                      "['ppo', 'reinforce']")
    for kind_asked in ("ppo", "reinforce"):
        _refused(path, match, kind=kind_asked)
    with pytest.raises(ArtifactError, match=match):
        read_header(path)


def _header_edited(src: Path, dst: Path, **changes) -> Path:
    """``src`` with its header's env spec changed (a value of None removes the entry)."""
    header = json.loads(_member(src, "dus_artifact.json"))
    for key, value in changes.items():
        if value is None:
            header["env_spec"].pop(key)
        else:
            header["env_spec"][key] = value
    return _edited(src, dst, {"dus_artifact.json": json.dumps(header).encode()})


@pytest.mark.parametrize("network, changes, match", [
    ("deepsets", {"history_length": 4},
     r"env_spec.history_length=4 does not fit its network: it takes 78 observation values, but "
     r"the header describes a DUS-v1 \(layout='v1'\) observation of 4 slots with "
     r"history_length=4, 46 values"),
    ("deepsets", {"layout": None},
     r"env_spec.layout=\(absent\) does not fit its network: it takes 78 observation values, the "
     r"size of a DUS-v1 \(layout='v1'\) observation of 4 slots with history_length=8, but the "
     r"header describes a DUS-v0 observation of 4 modalities with history_length=8, 73 values"),
    ("deepsets", {"max_modalities": 1},
     r"its network has 4 modality slots but its recorded env spec says max_modalities=1"),
    ("mlp", {"history_length": 2},
     r"env_spec.history_length=2 does not fit its network: it takes \d+ observation values, but "
     r"the header describes a DUS-v0 observation of 2 modalities with history_length=2"),
    ("mlp", {"layout": "v1", "max_modalities": 2},
     r"env_spec.layout='v1' does not fit its network: it takes \d+ observation values, the size "
     r"of a DUS-v0 observation of 2 modalities"),
    ("mlp", {"n_modalities": 3}, r"env_spec.n_modalities=3 does not fit its network: it acts "
                                 r"on 2 modalities"),
])
def test_a_header_that_does_not_describe_its_network_is_refused_by_load_and_the_loop(
        network, changes, match, mlp_file, tmp_path):
    """A plain loop builds its observation from the header's layout, history length, slots
    and grid: each must fit the network, or the first decision would fail inside SB3 naming
    neither the file nor the field."""
    src = pretrained_path() if network == "deepsets" else mlp_file
    path = _header_edited(src, tmp_path / "h.zip", **changes)
    _refused(path, match)
    with pytest.raises(ArtifactError, match=match) as err:
        make_controller(("a", "b"), 6, 100, f"ppo:{path}")
    assert str(path) in str(err.value)


def test_the_loop_checks_the_observation_size_before_the_first_decision(reinforce_file,
                                                                         tmp_path, env):
    """A header whose history length does not give the observation size it records (here a
    REINFORCE file, whose own payload records its layout) is refused naming the file; an
    object whose env spec records another size is refused before its first predict."""
    path = _header_edited(reinforce_file, tmp_path / "r.zip", history_length=2)
    size = env.unwrapped.spec_dict()["observation_size"]
    with pytest.raises(ArtifactError, match=rf"its recorded env spec says observation_size="
                                            rf"{size}, but its 2 modalities .* history_length=2"
                       ) as err:
        make_controller(("a", "b"), 6, 100, f"reinforce:{path}")
    assert str(path) in str(err.value)
    policy = UniformPolicy(env.unwrapped.layout, env.unwrapped.config.sampler.multipliers)
    policy.env_spec = {**env.unwrapped.spec_dict(), "observation_size": size + 5}
    predicted = []
    policy.predict = lambda *args, **kwargs: predicted.append(1)
    with pytest.raises(IncompatibleEnvError, match=rf"policy UniformPolicy takes {size + 5} "
                                                   rf"observation values .* give {size}"):
        make_controller(("a", "b"), 6, 100, policy)
    assert predicted == []


def test_a_header_grid_that_does_not_fit_the_network_is_refused(tmp_path):
    """The plain loop builds its grid from the header: a header grid of 3 values over a
    network choosing among 17 would fail only at the first decision."""
    header = json.loads(_member(pretrained_path(), "dus_artifact.json"))
    header["env_spec"]["multipliers"] = [0.5, 1.0, 2.0]
    path = _edited(pretrained_path(), tmp_path / "g.zip",
                   {"dus_artifact.json": json.dumps(header).encode()})
    _refused(path, r"its network picks among \[17\] grid values but its recorded env spec has "
                   r"multipliers=\[0.5, 1.0, 2.0\] \(3 values\)")


# --------------------------------------------------------------------------- 3. declared sizes
@pytest.mark.parametrize("network", ["deepsets", "mlp"])
def test_declared_widths_are_checked_against_the_tensors_before_allocating(network, mlp_file,
                                                                           tmp_path,
                                                                           monkeypatch):
    built = []  # the device each network was built on; real storage only after the check
    if network == "deepsets":
        from dus_agents.deepsets import DeepSetsPolicy

        src, key = pretrained_path(), "phi.0.weight"
        real_init = DeepSetsPolicy.__init__

        def storage_free_only(self, *args, **kwargs):
            built.append(torch.empty(0).device.type)  # where its parameters would be made
            if built[-1] != "meta":
                raise AssertionError("the DeepSets network was built with real storage")
            real_init(self, *args, **kwargs)

        monkeypatch.setattr(DeepSetsPolicy, "__init__", storage_free_only)

        def edit(settings):
            settings["hidden"] = [10**6, 10**6]  # 4 TB of float32 if it were ever allocated
    else:
        import dus_agents.sb3_files

        def never(*args, **kwargs):
            built.append("cpu")
            raise AssertionError("the MLP was built before its shapes were checked")

        monkeypatch.setattr(dus_agents.sb3_files, "build_actor_critic", never)
        src, key = mlp_file, "mlp_extractor.policy_net.0.weight"

        def edit(settings):
            settings["net_arch"] = {"pi": [10**6, 10**6], "vf": [10**6, 10**6]}
    path = _with_layout(src, tmp_path / "wide.zip", edit)
    _refused(path, rf"tensor '{key}' has shape \(64, \d+\), the network its JSON declares "
                   r"expects \(1000000, \d+\); refused before building it")
    # DeepSets: built once, storage-free, to read its shapes; the MLP: never built
    assert built == (["meta"] if network == "deepsets" else [])


def test_absurd_declared_widths_are_refused_not_raised_raw(tmp_path):
    def edit(settings):
        settings["hidden"] = [10**12, 10**12]

    _refused(_with_layout(pretrained_path(), tmp_path / "absurd.zip", edit),
             "does not describe a buildable policy")


def test_reinforce_declared_widths_are_checked_before_allocating(reinforce_file, tmp_path,
                                                                 monkeypatch):
    import dus_agents.reinforce

    built = []

    def never(*args, **kwargs):
        built.append(1)
        raise AssertionError("the REINFORCE network was built before its shapes were checked")

    monkeypatch.setattr(dus_agents.reinforce.PolicyNetwork, "__init__", never)
    agent = json.loads(_member(reinforce_file, "agent.json"))
    agent["config"]["hidden_sizes"] = [10**6]  # one layer, as in the file
    path = _edited(reinforce_file, tmp_path / "wide.zip",
                   {"agent.json": json.dumps(agent).encode()})
    _refused(path, r"tensor 'body.0.weight' has shape \(64, \d+\), the network its JSON "
                   r"declares expects \(1000000, \d+\)", kind="reinforce")
    assert built == []  # (load would wrap the stand-in's error as a damaged payload)


# --------------------------------------------------------------------------- 4. NaN / inf
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("network", ["deepsets", "mlp", "reinforce"])
def test_non_finite_weights_are_refused_at_load(bad, network, mlp_file, reinforce_file,
                                                tmp_path):
    src = {"deepsets": pretrained_path(), "mlp": mlp_file, "reinforce": reinforce_file}[network]
    state = _tensors(src)
    name = sorted(state)[-1]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = bad  # one value is enough
    path = _edited(src, tmp_path / "nan.zip", {"policy.pt": _saved(state)})
    _refused(path, rf"member 'policy.pt' has tensor '{name}' with 1 non-finite value\(s\)",
             kind="reinforce" if network == "reinforce" else "ppo")


def test_a_reinforce_optimizer_with_nan_is_refused(reinforce_file, tmp_path):
    optimizer = _tensors(reinforce_file, "optimizer.pt")
    optimizer["state"][0]["exp_avg"] = torch.full_like(optimizer["state"][0]["exp_avg"],
                                                       float("nan"))
    path = _edited(reinforce_file, tmp_path / "o.zip", {"optimizer.pt": _saved(optimizer)})
    _refused(path, r"member 'optimizer.pt' has NaN or inf values in 'state.0.exp_avg'",
             kind="reinforce")
