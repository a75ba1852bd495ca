"""Read Stable-Baselines3 model zips as data only, never as code.

``PPO.load`` unpickles every ``":serialized:"`` entry of a zip's ``data`` member with
cloudpickle, so a crafted zip runs arbitrary code. This module reads the same zips (rl-zoo3
outputs, ``CheckpointCallback`` checkpoints) without unpickling anything: ``data`` is parsed as
JSON and each serialized entry is reduced to the readable fields SB3 writes next to it,
``*.pth`` members go through ``torch.load(..., weights_only=True)``, and every member is read
with a bounded size. An MLP actor-critic is then rebuilt from those readable fields and the
state-dict shapes, for replay.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dus_env.errors import ArtifactError

MAX_MEMBER_BYTES = 256 * 2**20
"""Largest uncompressed size accepted for one zip member."""
MAX_TOTAL_BYTES = 512 * 2**20
"""Largest uncompressed size accepted for all members read from one zip."""
READABLE_MEMBERS = ("data", "policy.pth", "policy.optimizer.pth")
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU,
}
_ACTIVATION_BY_CLASS = {cls.__name__: name for name, cls in ACTIVATIONS.items()}
_SB3_CLASS = "<class 'stable_baselines3.common.{}'>"
# policy_kwargs that do not change what a discrete-action policy computes once weights are loaded
_IGNORED_KWARGS = ("optimizer_class", "optimizer_kwargs", "log_std_init")
_KNOWN_KWARGS = ("net_arch", "activation_fn", "ortho_init", "share_features_extractor",
                 "normalize_images", "features_extractor_class", "features_extractor_kwargs",
                 *_IGNORED_KWARGS)


class SB3FileError(ArtifactError):
    """An SB3 model zip that cannot be read, or rebuilt, safely; the message names the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}".replace("\n", " "))


@dataclass(frozen=True)
class SB3Zip:
    """What was read from an SB3 model zip: plain JSON data and tensor state dicts."""

    path: str
    data: dict[str, Any] | None
    policy_state: dict[str, torch.Tensor] | None
    optimizer_state: dict[str, Any] | None = None


def read_member_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int,
                        path: str | Path) -> bytes:
    """Read one member, refusing it when its header or its actual content exceeds ``limit`` bytes."""
    if info.file_size > limit:
        raise SB3FileError(path, f"member {info.filename!r} is {info.file_size} bytes uncompressed, "
                                 f"over the limit of {limit} bytes; refused without inflating it")
    with archive.open(info) as member:
        raw = member.read(limit + 1)  # the header may lie about file_size
    if len(raw) > limit:
        raise SB3FileError(path, f"member {info.filename!r} inflates past the limit of {limit} bytes "
                                 f"although its header says {info.file_size} bytes; refused")
    return raw


def read_sb3_zip(path: str | Path, *, members: tuple[str, ...] = ("data", "policy.pth"),
                 max_member_bytes: int = MAX_MEMBER_BYTES,
                 max_total_bytes: int = MAX_TOTAL_BYTES) -> SB3Zip:
    """Read the named members of an SB3 model zip as data only (no unpickling, bounded sizes)."""
    unknown = [name for name in members if name not in READABLE_MEMBERS]
    if unknown:
        raise ValueError(f"members={unknown!r} cannot be read; valid choices: {list(READABLE_MEMBERS)}")
    raw: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {}
            for name in members:
                try:
                    infos[name] = archive.getinfo(name)
                except KeyError:
                    raise SB3FileError(path, f"has no {name!r} member (it holds {sorted(archive.namelist())[:12]})") from None
            total = sum(info.file_size for info in infos.values())
            if total > max_total_bytes:
                raise SB3FileError(path, f"members {list(members)} are {total} bytes uncompressed in all, "
                                         f"over the limit of {max_total_bytes} bytes")
            for name, info in infos.items():
                try:
                    raw[name] = read_member_bounded(archive, info, limit=max_member_bytes, path=path)
                except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
                    raise SB3FileError(path, f"member {name!r} is corrupt or unreadable ({type(exc).__name__}: {exc})") from None
                if sum(map(len, raw.values())) > max_total_bytes:
                    raise SB3FileError(path, f"members read so far exceed the limit of {max_total_bytes} bytes")
    except SB3FileError:
        raise
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise SB3FileError(path, f"is not a readable zip file ({type(exc).__name__}: {exc})") from None
    return SB3Zip(
        path=str(path),
        data=_parse_data(raw["data"], path) if "data" in raw else None,
        policy_state=_load_tensors(raw["policy.pth"], path, "policy.pth", flat=True) if "policy.pth" in raw else None,
        optimizer_state=(_load_tensors(raw["policy.optimizer.pth"], path, "policy.optimizer.pth", flat=False)
                         if "policy.optimizer.pth" in raw else None),
    )


def _readable(value: Any) -> Any:
    """Drop every ``":serialized:"`` payload, keeping the readable fields SB3 wrote beside it."""
    if isinstance(value, dict):
        return {key: _readable(item) for key, item in value.items() if key != ":serialized:"}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    return value


def _parse_data(raw: bytes, path: str | Path) -> dict[str, Any]:
    try:
        data = _readable(json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SB3FileError(path, f"member 'data' is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise SB3FileError(path, f"member 'data' holds a JSON {type(data).__name__}, expected an object")
    return data


def _load_tensors(raw: bytes, path: str | Path, member: str, *, flat: bool) -> dict[str, Any]:
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - the weights-only unpickler raises many types
        lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
        reason = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else "")
        reason = reason.split(". Please")[0][:200]
        raise SB3FileError(path, f"member {member!r} holds objects other than tensors (or is not a torch "
                                 f"file) and was refused by weights_only loading ({type(exc).__name__}: {reason})") from None
    if not isinstance(state, dict) or (flat and not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items())):
        raise SB3FileError(path, f"member {member!r} is not a state dict of named tensors")
    return state


def _layers(state: dict[str, torch.Tensor], prefix: str, path: str | Path) -> tuple[int | None, list[int]]:
    """Input width and layer widths of an SB3 MLP ``Sequential(Linear, act, Linear, act, ...)``."""
    keys = [key for key in state if key.startswith(prefix)]
    found = {}
    for key in keys:
        match = re.fullmatch(re.escape(prefix) + r"(\d+)\.(weight|bias)", key)
        if match is None:
            raise SB3FileError(path, f"state dict key {key!r} is not part of an SB3 MLP layout")
        found.setdefault(int(match.group(1)), set()).add(match.group(2))
    if sorted(found) != list(range(0, 2 * len(found), 2)) or any(v != {"weight", "bias"} for v in found.values()):
        raise SB3FileError(path, f"{prefix}* layers {sorted(found)} are not Linear layers at 0, 2, 4, ...")
    widths: list[int] = []
    first_in = None
    for index in sorted(found):
        weight, bias = state[f"{prefix}{index}.weight"], state[f"{prefix}{index}.bias"]
        expect_in = widths[-1] if widths else (weight.shape[1] if weight.dim() == 2 else None)
        if weight.dim() != 2 or weight.shape[1] != expect_in or tuple(bias.shape) != (weight.shape[0],):
            raise SB3FileError(path, f"{prefix}{index} has weight {tuple(weight.shape)} and bias {tuple(bias.shape)}, "
                                     f"which do not chain as a Linear layer of input width {expect_in}")
        first_in = weight.shape[1] if first_in is None else first_in
        widths.append(int(weight.shape[0]))
    return first_in, widths


def _space_kind(item: dict[str, Any]) -> str | None:
    """``"Box"`` from ``"<class 'gymnasium.spaces.box.Box'>"`` (gym for SB3 1.x zips), else None."""
    match = re.fullmatch(r"<class '(?:gymnasium|gym)\.spaces\.\w+\.(\w+)'>", str(item.get(":type:")))
    return match.group(1) if match else None


def _int_list(text: Any) -> list[int] | None:
    if isinstance(text, str) and re.fullmatch(r"\[\s*\d+(\s+\d+)*\s*\]|\d+", text.strip()):
        return [int(n) for n in re.findall(r"\d+", text)]
    return None


def policy_settings(sb3: SB3Zip) -> dict[str, Any]:
    """What is needed to rebuild the zip's ``ActorCriticPolicy`` (MlpPolicy), as JSON-ready values."""
    where, data, state = sb3.path, sb3.data, sb3.policy_state
    if data is None or state is None:
        raise SB3FileError(where, "policy_settings needs the 'data' and 'policy.pth' members; read both")
    policy_class = data.get("policy_class")
    init = policy_class.get("__init__") if isinstance(policy_class, dict) else None
    if not (isinstance(init, str) and init.startswith("<function ActorCriticPolicy.__init__ ")
            and policy_class.get("__module__") == "stable_baselines3.common.policies"):
        shown = {k: policy_class.get(k) for k in ("__module__", "__init__")} if isinstance(policy_class, dict) else policy_class
        raise SB3FileError(where, f"policy_class {shown!r} is not SB3's ActorCriticPolicy (MlpPolicy); "
                                  "only that class can be rebuilt safely")
    if data.get("use_sde"):
        raise SB3FileError(where, "use_sde=True (gSDE) cannot be rebuilt; only use_sde=False")
    kwargs = data.get("policy_kwargs") or {}
    if not isinstance(kwargs, dict) or kwargs.get(":type:", "<class 'dict'>") != "<class 'dict'>":
        raise SB3FileError(where, f"policy_kwargs is a {type(kwargs).__name__} {str(kwargs)[:80]!r}, expected a dict")
    kwargs = {key: value for key, value in kwargs.items() if key != ":type:"}
    extra = sorted(set(kwargs) - set(_KNOWN_KWARGS))
    if extra:
        raise SB3FileError(where, f"policy_kwargs {extra} cannot be rebuilt safely; known keys: {list(_KNOWN_KWARGS)}")
    if kwargs.get("features_extractor_class", _SB3_CLASS.format("torch_layers.FlattenExtractor")) != \
            _SB3_CLASS.format("torch_layers.FlattenExtractor") or kwargs.get("features_extractor_kwargs"):
        raise SB3FileError(where, f"features_extractor_class={kwargs.get('features_extractor_class')!r} with kwargs "
                                  f"{kwargs.get('features_extractor_kwargs')!r}; only FlattenExtractor can be rebuilt")
    outside = [k for k in state if not k.startswith(("mlp_extractor.policy_net.", "mlp_extractor.value_net.",
                                                      "action_net.", "value_net."))]
    if outside:
        raise SB3FileError(where, f"state dict key {outside[0]!r} is outside the MLP actor-critic layout "
                                  "(a non-MLP features extractor, continuous actions or a custom policy)")
    for key in ("action_net.weight", "value_net.weight"):
        if key not in state or state[key].dim() != 2:
            raise SB3FileError(where, f"state dict has no 2-D {key!r}")
    pi_in, pi = _layers(state, "mlp_extractor.policy_net.", where)
    vf_in, vf = _layers(state, "mlp_extractor.value_net.", where)
    width = int(state["action_net.weight"].shape[1])
    features = pi_in or vf_in or width
    if {w for w in (pi_in, vf_in) if w} - {features} or width != (pi[-1] if pi else features) \
            or tuple(state["value_net.weight"].shape) != (1, vf[-1] if vf else features):
        raise SB3FileError(where, "policy_net, value_net, action_net and value_net widths do not fit one MLP actor-critic")
    net_arch = kwargs.get("net_arch")
    if isinstance(net_arch, list) and net_arch and isinstance(net_arch[0], dict):
        net_arch = net_arch[0]
    if isinstance(net_arch, list):
        net_arch = {"pi": net_arch, "vf": net_arch}
    if net_arch is not None and net_arch != {"pi": pi, "vf": vf}:
        raise SB3FileError(where, f"policy_kwargs net_arch={kwargs['net_arch']!r} differs from the weights' {({'pi': pi, 'vf': vf})}")
    activation, activation_source = "tanh", "sb3_default (policy_kwargs names no activation_fn)"
    if "activation_fn" in kwargs:
        match = re.fullmatch(r"<class 'torch\.nn\.modules\.activation\.(\w+)'>", str(kwargs["activation_fn"]))
        if match is None or match.group(1) not in _ACTIVATION_BY_CLASS:
            raise SB3FileError(where, f"activation_fn={kwargs['activation_fn']!r} is not one of "
                                      f"{sorted(c.__name__ for c in ACTIVATIONS.values())}")
        activation, activation_source = _ACTIVATION_BY_CLASS[match.group(1)], "policy_kwargs"
    obs, obs_source = data.get("observation_space"), "observation_space"
    if isinstance(obs, dict):
        shape = obs.get("_shape")
        if _space_kind(obs) != "Box" or not (
                isinstance(shape, list) and shape and all(isinstance(n, int) and n > 0 for n in shape)):
            raise SB3FileError(where, f"observation_space {obs.get(':type:')!r} with shape {shape!r}; only a Box can be rebuilt")
        if math.prod(shape) != features:
            raise SB3FileError(where, f"observation_space shape {shape} flattens to {math.prod(shape)}, the weights take {features}")
    else:
        shape, obs_source = [features], "state_dict (first layer input width)"
    act, act_source = data.get("action_space"), "action_space"
    if isinstance(act, dict):
        kind = act.get(":type:")
        nvec = _int_list({"MultiDiscrete": act.get("nvec"), "Discrete": act.get("n")}.get(_space_kind(act) or ""))
        if nvec is None or sum(nvec) != int(state["action_net.weight"].shape[0]):
            raise SB3FileError(where, f"action_space {kind!r} (nvec/n {act.get('nvec', act.get('n'))!r}) is not a "
                                      f"Discrete/MultiDiscrete matching action_net width {state['action_net.weight'].shape[0]}")
    else:
        nvec, act_source = [int(state["action_net.weight"].shape[0])], "state_dict (action_net width: sum of nvec only)"
    return {
        "net_arch": {"pi": pi, "vf": vf}, "activation_fn": activation, "activation_source": activation_source,
        "ortho_init": bool(kwargs.get("ortho_init", True)),
        "share_features_extractor": bool(kwargs.get("share_features_extractor", True)),
        "normalize_images": bool(kwargs.get("normalize_images", True)),
        "observation_shape": shape, "observation_source": obs_source,
        "action_nvec": nvec, "action_source": act_source,
    }


def check_widths(field: str, widths: Any, at_least: int = 0) -> tuple[int, ...]:
    """``widths`` as a tuple of positive layer widths (at least ``at_least`` of them), or a
    ``ValueError`` naming ``field`` (the MLP's ``net_arch`` parts, the DeepSets widths)."""
    def width(w: Any) -> bool:
        return isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1

    if not isinstance(widths, (list, tuple)) or len(widths) < at_least or \
            not all(width(w) for w in widths):
        shown = list(widths) if isinstance(widths, tuple) else widths
        need = "a non-empty list" if at_least else "a list"
        raise ValueError(f"{field}={shown!r} is not valid; expected {need} of positive integer "
                         "layer widths, e.g. [64, 64]")
    return tuple(int(w) for w in widths)


def mlp_state_shapes(observation_space: gym.Space, action_space: gym.Space,
                     settings: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of the ``ActorCriticPolicy`` that :func:`build_actor_critic`
    would build from ``settings``, computed without building it (so that declared sizes can
    be checked against a file's tensors before anything is allocated)."""
    arch = settings.get("net_arch")
    if not isinstance(arch, dict) or set(arch) != {"pi", "vf"}:
        raise ValueError(f"net_arch={arch!r} is not valid; expected {{'pi': [...], 'vf': [...]}}")
    features = math.prod(observation_space.shape)
    n_out = int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else \
        sum(int(n) for n in action_space.nvec)
    shapes: dict[str, tuple[int, ...]] = {}
    last = {}
    for part, net in (("pi", "policy_net"), ("vf", "value_net")):
        width = features
        for i, out in enumerate(check_widths(f"net_arch.{part}", arch[part])):
            shapes[f"mlp_extractor.{net}.{2 * i}.weight"] = (out, width)
            shapes[f"mlp_extractor.{net}.{2 * i}.bias"] = (out,)
            width = out
        last[part] = width
    shapes.update({"action_net.weight": (n_out, last["pi"]), "action_net.bias": (n_out,),
                   "value_net.weight": (1, last["vf"]), "value_net.bias": (1,)})
    return shapes


def build_actor_critic(observation_space: gym.Space, action_space: gym.Space, settings: dict[str, Any]) -> Any:
    """Construct an untrained SB3 ``ActorCriticPolicy`` laid out as ``settings`` (from ``policy_settings``).

    Its initial weights are drawn inside ``torch.random.fork_rng``: building it (to load a file's
    weights into it) leaves torch's global random state as it was."""
    from stable_baselines3.common.policies import ActorCriticPolicy

    name = settings.get("activation_fn")
    if name not in ACTIVATIONS:
        raise ValueError(f"activation_fn={name!r} is unknown; valid choices: {list(ACTIVATIONS)}")
    if not isinstance(observation_space, gym.spaces.Box) or \
            math.prod(observation_space.shape) != math.prod(settings["observation_shape"]):
        raise ValueError(f"observation_space={observation_space} does not fit observation_shape={settings['observation_shape']}")
    nvec = [int(action_space.n)] if isinstance(action_space, gym.spaces.Discrete) else \
        [int(n) for n in action_space.nvec] if isinstance(action_space, gym.spaces.MultiDiscrete) else None
    expected = settings["action_nvec"]
    if nvec is None or (nvec != expected if settings.get("action_source") == "action_space" else sum(nvec) != sum(expected)):
        raise ValueError(f"action_space={action_space} does not fit action_nvec={expected}")
    mlp_state_shapes(observation_space, action_space, settings)  # checks net_arch
    with torch.random.fork_rng(devices=[]):
        policy = ActorCriticPolicy(
            observation_space, action_space, lr_schedule=lambda _: 0.0,
            net_arch={"pi": list(settings["net_arch"]["pi"]), "vf": list(settings["net_arch"]["vf"])},
            activation_fn=ACTIVATIONS[name], ortho_init=bool(settings.get("ortho_init", True)),
            share_features_extractor=bool(settings.get("share_features_extractor", True)),
            normalize_images=bool(settings.get("normalize_images", True)),
        )
    policy.set_training_mode(False)
    return policy


def load_policy_state(policy: nn.Module, state_dict: Any, path: str | Path,
                      member: str = "policy.pth") -> None:
    """Load ``state_dict`` into ``policy`` strictly; a key or shape mismatch, an entry that is not
    a floating-point tensor, or a NaN/inf weight names ``path``, ``member`` and the key.

    A ``policy`` built on torch's ``meta`` device (no storage, no random draws) gets the file's
    tensors themselves (``assign=True``), as ordinary CPU tensors of its own dtypes, and a fresh
    optimiser over them."""
    from dus_agents.artifact import state_dict_problem

    problem = state_dict_problem(state_dict)
    if problem is not None:
        raise SB3FileError(path, f"{member} {problem}")
    own = policy.state_dict()
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    if missing or unexpected:
        raise SB3FileError(path, f"{member} does not fit the rebuilt policy: missing keys {missing[:3]}, "
                                 f"unexpected keys {unexpected[:3]}")
    for key, tensor in own.items():
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise SB3FileError(path, f"{member} key {key!r} has shape {tuple(state_dict[key].shape)}, "
                                     f"the rebuilt policy expects {tuple(tensor.shape)}")
    on_meta = any(tensor.is_meta for tensor in own.values())
    if on_meta:
        state_dict = {key: state_dict[key].detach().to(own[key].dtype).clone(
            memory_format=torch.contiguous_format) for key in own}
    try:
        policy.load_state_dict(state_dict, strict=True, assign=on_meta)
    except RuntimeError as exc:
        raise SB3FileError(path, f"{member} could not be loaded: {exc}") from None
    if on_meta:
        left = [name for name, t in (*policy.named_parameters(), *policy.named_buffers()) if t.is_meta]
        if left:  # a tensor outside the state dict: this network cannot be rebuilt from a file
            raise SB3FileError(path, f"{member} leaves {left[:3]} of the rebuilt policy without values")
        optimizer = getattr(policy, "optimizer", None)
        if isinstance(optimizer, torch.optim.Optimizer):  # it held the meta parameters
            policy.optimizer = type(optimizer)(policy.parameters(), **optimizer.defaults)


def load_actor_critic(path: str | Path, observation_space: gym.Space, action_space: gym.Space) -> Any:
    """Read an SB3 MlpPolicy zip safely and return its rebuilt ``ActorCriticPolicy`` with weights loaded."""
    sb3 = read_sb3_zip(path)
    policy = build_actor_critic(observation_space, action_space, policy_settings(sb3))
    load_policy_state(policy, sb3.policy_state or {}, path)
    return policy
