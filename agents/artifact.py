"""One file per trained policy, recording the env it was trained on. Files are data, never code.

A policy artefact is a zip archive holding ``dus_artifact.json`` (what kind of policy, the env
spec from ``env.unwrapped.spec_dict()``, versions and free-form metadata) next to the policy's
own payload, which is only ever tensors and JSON:

* ``ppo`` (format 2): ``policy.json`` (the network's layout, spaces and settings) and
  ``policy.pt`` (its state dict); training checkpoints add ``optimizer.pt`` and
  ``training.json``. Format 1 (an SB3 model zip, which only unpickling could load) is refused;
* ``reinforce``: ``agent.json`` (the agent's config and counters), ``policy.pt``,
  ``optimizer.pt`` and ``generator.pt``.

Every ``*.pt`` member is read with ``torch.load(..., weights_only=True)`` (tensors, numbers,
strings and containers of them; anything else is refused), and only the members a loader asks
for are read, each at most :data:`MAX_MEMBER_BYTES` uncompressed and all of them together at
most :data:`MAX_TOTAL_BYTES`, checked before anything is inflated. Loading checks the recorded
spec against the env the policy is about to act in and fails naming each part that differs
("policy was trained for n_modalities=2, this env has 3"). A network is only built once the
sizes its JSON declares are checked against the tensors in the file
(:func:`check_state_shapes`), and weights that are not finite are refused
(:func:`state_dict_from_bytes`).
"""

from __future__ import annotations

import io
import json
import math
import platform
import random
import time
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dus_env.errors import ArtifactError, IncompatibleEnvError
from dus_env.files import atomic_writer

ARTIFACT_ENTRY = "dus_artifact.json"
RUN_POLICY_FILE = "policy.zip"  # the artefact inside a train_agent.py run directory
"""Name of the metadata entry inside every artefact zip."""
FORMAT_VERSION = 2
"""Bumped when the artefact layout changes (2: PPO payloads are tensors + JSON)."""
MAX_MEMBER_BYTES = 256 * 2**20
"""Largest uncompressed size of one artefact member that is read (256 MiB)."""
MAX_TOTAL_BYTES = 512 * 2**20
"""Largest uncompressed size of all members read from one artefact (512 MiB)."""
MAX_HEADER_BYTES = 4 * 2**20
"""Largest ``dus_artifact.json`` accepted (4 MiB)."""
KINDS: tuple[str, ...] = ("ppo", "reinforce")
"""The kinds of policy an artefact may hold (its header's ``kind``)."""

STRICT_SPEC_KEYS: tuple[str, ...] = (
    "env_id",
    "env_version",
    "n_modalities",
    "modalities",
    "observation_size",
    "history_length",
    "discrepancy",
    "multipliers",
    "monitor_ema_beta",
)
"""Spec entries a policy depends on: any difference makes it unusable on that env.
(``base_batch_size`` is recorded but not checked: the action picks multipliers of it.
``monitor_ema_beta`` is there only for envs that average scores with an EMA.)"""


@dataclass
class Artifact:
    """What :func:`read_artifact` returns: the metadata and the raw payload entries."""

    path: Path
    kind: str
    env_spec: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    entries: dict[str, bytes] = field(default_factory=dict)
    """The members that were asked for, by name."""
    format_version: int = FORMAT_VERSION
    names: tuple[str, ...] = ()
    """Every member the archive lists."""
    versions: dict[str, Any] = field(default_factory=dict)
    """What it was written with (the header's ``versions``; :func:`_versions`)."""


@contextmanager
def global_random_kept() -> Iterator[None]:
    """Leave Python's global ``random`` generator as the block found it. The first import of
    stable_baselines3 loads rich, whose import draws from that generator, and loading a policy
    draws no global random numbers (``dus_env.metrics`` does the same around scikit-learn)."""
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


def tensor_bytes(obj: Any) -> bytes:
    """``torch.save`` of a state dict (tensors and plain values) into bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def tensors_from_bytes(data: bytes, path: str | Path, member: str) -> Any:
    """The inverse of :func:`tensor_bytes`, with ``weights_only=True``: a member holding
    anything but tensors and plain values is refused with an error naming the file."""
    import torch

    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - the weights-only unpickler raises many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(
            f"policy file {str(path)!r}: member {member!r} holds something other than tensors "
            f"and plain values, or is damaged; refused without running it ({first})"
        ) from None


def state_dict_problem(state: Any) -> str | None:
    """What makes ``state`` unfit as a policy's weights (a state dict of named, finite
    floating-point tensors), phrased to follow "member 'policy.pt' ..."; None when it fits."""
    import torch

    if not isinstance(state, dict):
        return (f"holds a {type(state).__name__}, expected a state dict (a mapping of names to "
                "tensors)")
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            return (f"has entry {name!r} holding a {type(tensor).__name__}, expected a tensor "
                    "named by a string")
        if not tensor.is_floating_point():
            return f"has tensor {name!r} of dtype {tensor.dtype}, expected a floating-point one"
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            return (f"has tensor {name!r} with {int((~finite).sum())} non-finite value(s) (NaN "
                    f"or inf) out of {tensor.numel()}; refused")
    return None


def check_state_dict(state: Any, path: str | Path, member: str) -> dict[str, Any]:
    """``state`` if it is a state dict of named, finite floating-point tensors; otherwise an
    :class:`ArtifactError` naming the file, the member and the first entry at fault."""
    problem = state_dict_problem(state)
    if problem is not None:
        raise ArtifactError(f"policy file {str(path)!r}: member {member!r} {problem}")
    return state


def nonfinite_tensor(obj: Any, prefix: str = "") -> str | None:
    """The name of the first floating-point tensor in ``obj`` (nested dicts, lists and tuples)
    holding NaN or inf, or None when every one is finite (optimiser states, checkpoints)."""
    import torch

    if isinstance(obj, torch.Tensor):
        finite = not obj.is_floating_point() or bool(torch.isfinite(obj).all())
        return None if finite else prefix or "<tensor>"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) \
        if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = nonfinite_tensor(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def state_dict_from_bytes(data: bytes, path: str | Path, member: str) -> dict[str, Any]:
    """A policy's weights read with :func:`tensors_from_bytes` and checked with
    :func:`check_state_dict` (named, floating-point, finite tensors only)."""
    return check_state_dict(tensors_from_bytes(data, path, member), path, member)


def check_state_shapes(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, Any],
                       path: str | Path, member: str) -> None:
    """Refuse, naming the file and the tensor, a state dict whose names or shapes differ from
    ``expected`` (what the file's JSON declares): run *before* building the network, so that
    declared sizes never allocate more than the tensors the file really holds."""
    where = f"policy file {str(path)!r}: member {member!r}"
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    if missing or unexpected:
        raise ArtifactError(f"{where} does not fit the network its JSON declares: missing "
                            f"tensors {missing[:3]}, unexpected tensors {unexpected[:3]}")
    for name, shape in expected.items():
        found = tuple(state[name].shape)
        if found != tuple(shape):
            raise ArtifactError(f"{where}: tensor {name!r} has shape {found}, the network its "
                                f"JSON declares expects {tuple(shape)}; refused before "
                                "building it")


def env_spec_of(env: Any) -> dict[str, Any]:
    """The spec of ``env`` (wrapped or not, or a vector env of DUS envs)."""
    from dus_agents.base import unwrap_dus

    return unwrap_dus(env).spec


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
    """The versions a file was written with, and torch's CPU kernel path
    (``torch_cpu_capability``, e.g. AVX2, AVX512): training is bit for bit repeatable only on
    the same path (``ATEN_CPU_CAPABILITY`` chooses it on a CPU that has several)."""
    out = {"python": platform.python_version()}
    for name in ("torch", "gymnasium", "stable_baselines3", "dus_env"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "unknown"))
        except ImportError:
            continue
    if "torch" in out:
        from dus_env.seeding import cpu_capability

        out["torch_cpu_capability"] = cpu_capability()
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
                   entries: Mapping[str, bytes], metadata: Mapping[str, Any] | None = None
                   ) -> Path:
    """Write an artefact zip at ``path`` (atomically: a temp file renamed into place)."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"policy path {str(path)!r} is a directory; give a file name")
    with atomic_writer(path, "wb") as handle, \
            zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
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


def _read_member(archive: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise ArtifactError(
            f"policy file {str(path)!r}: member {name!r} is {info.file_size} bytes uncompressed, "
            f"over the limit of {limit} bytes; refused without inflating it"
        )
    with archive.open(info) as member:
        data = member.read(limit + 1)  # a header may understate the size
    if len(data) > limit:
        raise ArtifactError(f"policy file {str(path)!r}: member {name!r} inflates past the limit "
                            f"of {limit} bytes; refused")
    return data


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


SPEC_CHECKS: dict[str, tuple[Any, str]] = {
    "max_modalities": (lambda v: _is_int(v, 1),
                       "a positive integer (the number of modality slots)"),
    "n_modalities": (lambda v: _is_int(v, 1), "a positive integer"),
    "observation_size": (lambda v: _is_int(v, 1), "a positive integer"),
    "history_length": (lambda v: _is_int(v, 1), "a positive integer"),
    "base_batch_size": (lambda v: _is_int(v, 1), "a positive integer"),
    "discrepancy": (lambda v: v in ("gap", "ratio"), "one of ['gap', 'ratio']"),
    "multipliers": (lambda v: isinstance(v, list) and len(v) >= 2
                    and all(_is_number(x) and x > 0 for x in v)
                    and all(a < b for a, b in zip(v, v[1:])),
                    "a strictly increasing list of at least 2 positive numbers (the action "
                    "grid)"),
    "layout": (lambda v: v in ("v0", "v1"),
               "one of ['v0', 'v1'] ('v1': DUS-v1, modality slots; absent: DUS-v0)"),
    "modalities": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                   "a list of names"),
    "monitor_ema_beta": (lambda v: _is_number(v) and 0 < v < 1, "a number in (0, 1)"),
}
"""Checks of the env-spec entries a header may hold (where present), so that a damaged header
is refused naming the file, not later by whatever reads the entry."""


def _check_header(header: Any, path: Path, kind: str | None) -> int:
    """The header's format version, after checking its shape, version and kind."""
    if not isinstance(header, dict) or not {"kind", "env_spec"} <= set(header) or not \
            isinstance(header.get("env_spec"), dict):
        raise ArtifactError(
            f"policy file {str(path)!r} has a malformed {ARTIFACT_ENTRY!r} (needs 'kind' and "
            "'env_spec')"
        )
    if not isinstance(header["kind"], str) or header["kind"] not in KINDS:
        raise ArtifactError(
            f"policy file {str(path)!r}: {ARTIFACT_ENTRY!r} kind={header['kind']!r} is not "
            f"valid; valid kinds: {list(KINDS)}"
        )
    version = header.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"policy file {str(path)!r} has artefact format_version={version!r}; this code "
            f"reads up to {FORMAT_VERSION}"
        )
    spec = header["env_spec"]
    if spec.get("layout") == "v1" and "max_modalities" not in spec:
        spec = {**spec, "max_modalities": None}  # required there: checked as a bad value
    for name, value in spec.items():
        check = SPEC_CHECKS.get(name)
        if check is not None and not check[0](value):
            raise ArtifactError(
                f"policy file {str(path)!r}: {ARTIFACT_ENTRY!r} env_spec.{name}={value!r} is "
                f"not valid; expected {check[1]}"
                + (" (a layout='v1', DUS-v1, policy needs it)" if name == "max_modalities"
                   else "")
            )
    if kind is not None and header["kind"] != kind:
        raise ArtifactError(
            f"policy file {str(path)!r} holds a {header['kind']!r} policy, not {kind!r}; "
            f"load it as '{header['kind']}:{path}'"
        )
    return version


def read_artifact(path: str | Path, kind: str | None = None,
                  members: tuple[str, ...] | None = None) -> Artifact:
    """Read the artefact at ``path``; ``kind`` (if given) must match the recorded kind.

    Only ``members`` are read (None: every member), each within :data:`MAX_MEMBER_BYTES` and
    all within :data:`MAX_TOTAL_BYTES`; a named member the archive lacks is an error. Raises
    ``FileNotFoundError`` for a missing file and :class:`ArtifactError` for anything that is not
    a readable dus-env artefact, both naming the path.
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
                    "dus-env policy artefact (a plain SB3 model zip? adopt it with "
                    "dus_agents.ppo.PPOPolicy.from_sb3)"
                )
            header = json.loads(_read_member(archive, ARTIFACT_ENTRY, MAX_HEADER_BYTES, path)
                                .decode("utf-8"))
            version = _check_header(header, path, kind)
            wanted = [n for n in names if n != ARTIFACT_ENTRY] if members is None else members
            missing = [n for n in wanted if n not in names]
            if missing and version >= 2:
                raise ArtifactError(f"policy file {str(path)!r} has no member {missing[0]!r}")
            entries, total = {}, 0
            for name in wanted:
                if name in names:
                    entries[name] = _read_member(archive, name, MAX_MEMBER_BYTES, path)
                    total += len(entries[name])
                    if total > MAX_TOTAL_BYTES:
                        raise ArtifactError(
                            f"policy file {str(path)!r}: its members add up to more than "
                            f"{MAX_TOTAL_BYTES} bytes uncompressed; refused"
                        )
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError, NotImplementedError,
            RuntimeError) as exc:  # a damaged stream, an unknown compression, an encrypted member
        raise ArtifactError(
            f"policy file {str(path)!r} is corrupt or not a dus-env policy artefact "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    metadata, versions = header.get("metadata", {}), header.get("versions", {})
    return Artifact(path=path, kind=header["kind"], env_spec=header["env_spec"],
                    metadata=metadata if isinstance(metadata, dict) else {}, entries=entries,
                    format_version=version, names=tuple(names),
                    versions=versions if isinstance(versions, dict) else {})


def read_header(path: str | Path) -> dict[str, Any]:
    """Kind, env spec and metadata of an artefact, without its payload."""
    art = read_artifact(path, members=())
    return {"kind": art.kind, "env_spec": art.env_spec, "metadata": art.metadata}
