"""One file per trained policy, recording the env it was trained on.

A policy artefact is a zip archive holding ``dus_artifact.json`` (what kind of policy, the env
spec from ``env.unwrapped.spec_dict()``, versions and free-form metadata) next to the policy's
own payload:

* ``ppo``: the archive *is* a Stable-Baselines3 model zip (``data``, ``policy.pth``, ...) with
  ``dus_artifact.json`` added, so ``PPO.load(path)`` (and rl-zoo3) still read it;
* ``reinforce``: ``policy.pt`` (a torch state dict) and the agent's config.

Loading checks the recorded spec against the env the policy is about to act in and fails
naming each part that differs ("policy was trained for n_modalities=2, this env has 3").
"""

from __future__ import annotations

import io
import json
import platform
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dus_env.errors import ArtifactError, IncompatibleEnvError
from dus_env.files import atomic_writer

ARTIFACT_ENTRY = "dus_artifact.json"
RUN_POLICY_FILE = "policy.zip"  # the artefact inside a train_agent.py run directory
"""Name of the metadata entry inside every artefact zip."""
FORMAT_VERSION = 1
"""Bumped when the artefact layout changes."""

STRICT_SPEC_KEYS: tuple[str, ...] = (
    "env_id",
    "env_version",
    "n_modalities",
    "modalities",
    "observation_size",
    "history_length",
    "discrepancy",
    "multipliers",
)
"""Spec entries a policy depends on: any difference makes it unusable on that env.
(``base_batch_size`` is recorded but not checked: the action picks multipliers of it.)"""


@dataclass
class Artifact:
    """What :func:`read_artifact` returns: the metadata and the raw payload entries."""

    path: Path
    kind: str
    env_spec: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, bytes] = field(default_factory=dict)


def env_spec_of(env: Any) -> dict[str, Any]:
    """The spec of ``env`` (wrapped or not, or a VecEnv of DUS-v0 envs)."""
    if hasattr(env, "env_method") and not hasattr(env, "unwrapped"):  # a VecEnv
        return env.env_method("spec_dict", indices=[0])[0]
    return env.unwrapped.spec_dict()


def spec_differences(trained: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """One line per strict spec entry that differs between ``trained`` and ``current``."""
    diffs = []
    for key in STRICT_SPEC_KEYS:
        a, b = trained.get(key), current.get(key)
        if isinstance(a, tuple):
            a = list(a)
        if isinstance(b, tuple):
            b = list(b)
        if a != b:
            diffs.append(f"policy was trained for {key}={a!r}, this env has {b!r}")
    return diffs


def check_compatible(trained: Mapping[str, Any], current: Mapping[str, Any],
                     path: str | Path | None = None) -> None:
    """Raise :class:`IncompatibleEnvError` listing every strict spec entry that differs."""
    diffs = spec_differences(trained, current)
    if diffs:
        where = f" {str(path)!r}" if path is not None else ""
        raise IncompatibleEnvError(
            f"policy{where} does not fit this env: " + "; ".join(diffs)
        )


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "gymnasium", "stable_baselines3", "dus_env"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "unknown"))
        except ImportError:
            continue
    return out


def artifact_header(kind: str, env_spec: Mapping[str, Any],
                    metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON header written as :data:`ARTIFACT_ENTRY`."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "env_spec": dict(env_spec),
        "created_unix": time.time(),
        "versions": _versions(),
        "metadata": dict(metadata or {}),
    }


def write_artifact(path: str | Path, kind: str, env_spec: Mapping[str, Any],
                   entries: Mapping[str, bytes], metadata: Mapping[str, Any] | None = None,
                   base_zip: bytes | None = None) -> Path:
    """Write an artefact zip at ``path`` (atomically: a temp file renamed into place).

    ``base_zip`` (e.g. an SB3 model zip) is copied entry by entry first, then ``entries`` and
    the header are added.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"policy path {str(path)!r} is a directory; give a file name")
    with atomic_writer(path, "wb") as handle, \
            zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if base_zip is not None:
            with zipfile.ZipFile(io.BytesIO(base_zip)) as base:
                for name in base.namelist():
                    if name != ARTIFACT_ENTRY:
                        archive.writestr(name, base.read(name))
        for name, data in entries.items():
            archive.writestr(name, data)
        header = artifact_header(kind, env_spec, metadata)
        archive.writestr(ARTIFACT_ENTRY, json.dumps(header, indent=2, default=str))
    return path


def resolve_policy_path(path: str | Path) -> Path:
    """The artefact file ``path`` names: the file itself, or a ``train_agent.py`` run
    directory's ``policy.zip``."""
    path = Path(path)
    if path.is_dir() and (path / RUN_POLICY_FILE).is_file():
        return path / RUN_POLICY_FILE
    return path


def read_artifact(path: str | Path, kind: str | None = None) -> Artifact:
    """Read the artefact at ``path``; ``kind`` (if given) must match the recorded kind.

    Raises ``FileNotFoundError`` for a missing file and :class:`ArtifactError` for anything
    that is not a readable dus-env artefact, both naming the path.
    """
    path = resolve_policy_path(path)
    if not path.exists():
        raise FileNotFoundError(f"policy file {str(path)!r} does not exist")
    if path.is_dir():
        raise ArtifactError(f"policy file {str(path)!r} is a directory without a "
                            f"{RUN_POLICY_FILE}, not an artefact file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if ARTIFACT_ENTRY not in names:
                raise ArtifactError(
                    f"policy file {str(path)!r} is a zip without {ARTIFACT_ENTRY!r}: not a "
                    "dus-env policy artefact (a plain SB3 checkpoint? save it with "
                    "dus_agents.ppo.PPOPolicy.save)"
                )
            header = json.loads(archive.read(ARTIFACT_ENTRY).decode("utf-8"))
            entries = {n: archive.read(n) for n in names if n != ARTIFACT_ENTRY}
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, UnicodeDecodeError,
            json.JSONDecodeError, KeyError) as exc:
        raise ArtifactError(
            f"policy file {str(path)!r} is corrupt or not a dus-env policy artefact "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(header, dict) or not {"kind", "env_spec"} <= set(header):
        raise ArtifactError(
            f"policy file {str(path)!r} has a malformed {ARTIFACT_ENTRY!r} (needs 'kind' and "
            "'env_spec')"
        )
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(
            f"policy file {str(path)!r} has artefact format_version="
            f"{header['format_version']}; this code reads up to {FORMAT_VERSION}"
        )
    if kind is not None and header["kind"] != kind:
        raise ArtifactError(
            f"policy file {str(path)!r} holds a {header['kind']!r} policy, not {kind!r}; "
            f"load it as '{header['kind']}:{path}'"
        )
    return Artifact(path=path, kind=header["kind"], env_spec=header["env_spec"],
                    metadata=header.get("metadata", {}), entries=entries)


def read_header(path: str | Path) -> dict[str, Any]:
    """Kind, env spec and metadata of an artefact, without its payload."""
    art = read_artifact(path)
    return {"kind": art.kind, "env_spec": art.env_spec, "metadata": art.metadata}
