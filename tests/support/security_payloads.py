"""Crafted malicious files for the safe-loading tests (a helper module, not a test file).

Every payload, if it is ever unpickled, runs ``exec`` on a line of Python that creates a
marker file: the realistic attack on ``PPO.load`` / ``torch.load(weights_only=False)``. The
tests check that reading these files through ``dus_agents.sb3_files`` never creates the marker.
"""

from __future__ import annotations

import base64
import json
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

OBS_DIM = 5
NVEC = (5, 5)


class TinyEnv(gym.Env):
    """Box observation of shape (5,) and a MultiDiscrete([5, 5]) action; one-step episodes."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (OBS_DIM,), np.float32)
    action_space = gym.spaces.MultiDiscrete(list(NVEC))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(OBS_DIM, np.float32), {}

    def step(self, action):
        return np.zeros(OBS_DIM, np.float32), 0.0, True, False, {}


class _Payload:
    """Pickles to ``exec("open(marker, 'w').close()")``: runs when unpickled, never when pickled."""

    def __init__(self, marker: str | Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').close()"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (self.code,)


def payload_bytes(marker: str | Path) -> bytes:
    """Pickle bytes that create ``marker`` when loaded by pickle or cloudpickle."""
    return pickle.dumps(_Payload(marker), protocol=4)


def marker_absent(marker: str | Path) -> bool:
    """True while no payload has run (the marker file does not exist)."""
    return not Path(marker).exists()


def save_tiny_ppo(path: str | Path, env: gym.Env | None = None, **policy_kwargs: Any):
    """Save an untrained ``PPO("MlpPolicy", env or TinyEnv())`` to ``path`` and return the model."""
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", env or TinyEnv(), n_steps=8, batch_size=8, seed=0,
                policy_kwargs=policy_kwargs or None, device="cpu")
    model.save(path)
    return model


def _replace_member(path: str | Path, name: str, content: bytes) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = content
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, raw in members.items():
            archive.writestr(member, raw)


def evil_sb3_zip(path: str | Path, marker: str | Path, entry: str = "observation_space") -> Path:
    """A real SB3 PPO zip whose ``data[entry][":serialized:"]`` runs code under ``PPO.load``.

    The readable fields SB3 wrote beside the entry are kept, so a data-only reader still works.
    """
    save_tiny_ppo(path)
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    item = data[entry] if isinstance(data.get(entry), dict) else {}
    item.setdefault(":type:", f"<class '{type(data.get(entry)).__name__}'>")
    item[":serialized:"] = base64.b64encode(payload_bytes(marker)).decode()
    data[entry] = item
    _replace_member(path, "data", json.dumps(data, indent=4).encode())
    return Path(path)


def evil_torch_file(path: str | Path, marker: str | Path) -> Path:
    """A torch file that looks like a state dict but runs code under ``torch.load(weights_only=False)``."""
    torch.save({"action_net.weight": torch.zeros(10, 64), "action_net.bias": _Payload(marker)}, path)
    return Path(path)


def evil_sb3_policy_pth_zip(path: str | Path, marker: str | Path, member: str = "policy.pth") -> Path:
    """A valid SB3 zip whose ``member`` (``policy.pth`` by default) is a malicious torch file."""
    save_tiny_ppo(path)
    evil = evil_torch_file(Path(path).with_suffix(".evil.pth"), marker)
    _replace_member(path, member, evil.read_bytes())
    evil.unlink()
    return Path(path)


def zip_bomb(path: str | Path, member_name: str, size_bytes: int, chunk: int = 2**20) -> Path:
    """A zip with one deflated member of ``size_bytes`` zeros, written in chunks (little RAM)."""
    zeros = bytes(chunk)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open(member_name, "w", force_zip64=True) as member:
        left = size_bytes
        while left > 0:
            member.write(zeros[:min(chunk, left)])
            left -= chunk
    return Path(path)


def lying_size_zip(path: str | Path, member_name: str, content: bytes, claimed_size: int) -> Path:
    """A zip whose headers claim ``member_name`` is ``claimed_size`` bytes while it inflates to ``content``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member_name, content)
    raw = bytearray(Path(path).read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        start = raw.index(signature) if signature == b"PK\x03\x04" else raw.rindex(signature)
        assert struct.unpack_from("<I", raw, start + offset)[0] == len(content)
        struct.pack_into("<I", raw, start + offset, claimed_size)
    Path(path).write_bytes(bytes(raw))
    return Path(path)
