"""Retrain a policy artefact from the training settings it records, and compare bit for bit.

    python tools/reproduce_policy.py --policy pretrained --cpu-capability avx2   # ~20 min, 2 cores
    python tools/reproduce_policy.py --policy runs/NAME/policy.zip

Every ``dus-train`` artefact records its flags (``metadata.args``); this runs ``dus-train``
again with them (in a fresh process, into ``--out-dir``) and compares the two artefacts'
tensors and JSON members exactly (the header's clock reading aside). Exit 0 when they are
identical, 1 when not (with the largest difference), 2 for a bad command line.

Training is repeatable bit for bit only on the same torch CPU kernel path: a CPU with wider
vectors (AVX512) runs other kernels than an AVX2 one, and their rounding compounds over a
training run into another policy. ``--cpu-capability`` pins the path (torch's
``ATEN_CPU_CAPABILITY``); by default it is the one the artefact records, if it records one
(artefacts written since dus-env recorded it, as ``versions.torch_cpu_capability``). The
shipped generalist predates that; it reproduces with ``--cpu-capability avx2`` (README, *The pretrained generalist*).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a file from a checkout
    sys.path.insert(0, str(ROOT))

from dus_agents.artifact import (  # noqa: E402
    ARTIFACT_ENTRY, ArtifactError, read_artifact, tensors_from_bytes,
)
from dus_agents.cli import common as cli  # noqa: E402
from dus_env.errors import UsageError  # noqa: E402
from dus_env.files import atomic_write  # noqa: E402

CAPABILITIES = ("default", "avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx_vnni")
"""torch's ATEN_CPU_CAPABILITY values on x86 (``recorded``: the artefact's own)."""
# flags whose recorded value names the old run's place, not how it trained
NOT_TRAINING = ("out_dir", "run_name", "resume", "progress_bar")


@dataclass
class Args:
    """Retrain a policy artefact from its recorded flags and compare the two bit for bit."""

    policy: str = "pretrained"
    """The artefact: ``pretrained`` (the shipped generalist), a ``policy.zip`` or a run
    directory."""
    cpu_capability: str = "recorded"
    """torch's CPU kernel path for the retraining: recorded (the artefact's, else this
    machine's default), default, avx2, avx512, ..."""
    out_dir: str = ""
    """Where the retraining's run directory goes (empty: a temporary folder, removed)."""
    out: str = ""
    """JSON report path (empty: print only)."""


def artefact_path(name: str) -> Path:
    if name == "pretrained":
        from dus_agents.registry import pretrained_path

        return pretrained_path()
    return Path(name)


def retrain_argv(recorded: dict[str, Any], out_dir: Path) -> list[str]:
    """The ``dus-train`` flags of ``recorded`` (an artefact's ``metadata.args``) that differ
    from the defaults, writing into ``out_dir``; flags the artefact predates keep their
    defaults."""
    from dus_agents.training import TrainArgs

    defaults = dataclasses.asdict(TrainArgs())
    unknown = sorted(set(recorded) - set(defaults))
    if unknown:
        raise UsageError(f"the artefact records flags this dus-train does not know: {unknown}")
    argv: list[str] = []
    for name, value in recorded.items():  # the defaults are left implicit, as typed
        if name in NOT_TRAINING or value is None or value == defaults[name]:
            continue
        flag = cli.flag_name(name)
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv + ["--out-dir", str(out_dir), "--run-name", "reproduced", "--no-progress-bar"]


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Member by member: tensors with ``torch.equal`` (and their largest absolute difference),
    JSON members as parsed values; the header is left out (it holds a clock reading)."""
    import torch

    first, second = read_artifact(a), read_artifact(b)
    names = sorted(set(first.entries) | set(second.entries))
    differ, max_diff, tensors = [], 0.0, 0
    for name in names:
        if name not in first.entries or name not in second.entries:
            differ.append(f"{name}: only in one")
            continue
        x, y = first.entries[name], second.entries[name]
        if name.endswith(".pt"):
            lx, ly = (_leaves(tensors_from_bytes(d, p, name)) for d, p in ((x, a), (y, b)))
            if lx.keys() != ly.keys():
                differ.append(f"{name}: other entries")
                continue
            for key in lx:
                u, v = lx[key], ly[key]
                if torch.is_tensor(u) and torch.is_tensor(v):
                    tensors += 1
                    if u.shape != v.shape or u.dtype != v.dtype:
                        differ.append(f"{name}:{key}: shape or dtype")
                    elif not torch.equal(u, v):
                        gap = float((u.double() - v.double()).abs().max())
                        max_diff = max(max_diff, gap)
                        differ.append(f"{name}:{key}: max |diff| {gap:.3g}")
                elif u != v:
                    differ.append(f"{name}:{key}: {u!r} != {v!r}")
        elif json.loads(x) != json.loads(y):
            differ.append(f"{name}: JSON differs")
    return {"identical": not differ, "tensors": tensors, "max_abs_diff": max_diff,
            "differences": differ, "members": [n for n in names if n != ARTIFACT_ENTRY]}


def main(argv: list[str] | None = None) -> int:
    args, _ = cli.parse(Args, argv, cli.build_parser(Args, prog="tools/reproduce_policy.py",
                                                       description=__doc__.splitlines()[0]))
    cli.check_option("--cpu-capability", args.cpu_capability, ("recorded", *CAPABILITIES))
    path = artefact_path(args.policy)
    try:
        art = read_artifact(path, members=())
    except (FileNotFoundError, ArtifactError) as exc:
        raise UsageError(f"--policy={args.policy!r}: {cli.one_line(exc)}") from None
    recorded = art.metadata.get("args")
    if not isinstance(recorded, dict):
        raise UsageError(f"--policy={args.policy!r}: {path} records no training flags "
                         "(metadata.args); only dus-train artefacts can be retrained")
    capability = args.cpu_capability
    if capability == "recorded":
        capability = str(art.versions.get("torch_cpu_capability") or "default").lower()
        if capability == "default":
            print(f"{path} records no CPU kernel path: this machine's default is used "
                  f"(--cpu-capability chooses one)", flush=True)
    env = dict(os.environ)
    if capability != "default":
        env["ATEN_CPU_CAPABILITY"] = capability
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = Path(args.out_dir) if args.out_dir else Path(scratch)
        command = [sys.executable, "-m", "dus_agents.cli.train", *retrain_argv(recorded, out_dir)]
        print(f"retraining {path} (kernel path {capability}): {' '.join(command[1:])}",
              flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                              check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
            print(f"the retraining failed (exit {done.returncode}): {tail[0]}", file=sys.stderr)
            return 1
        result = compare(path, out_dir / "reproduced" / "policy.zip")
    report = {"policy": str(path), "cpu_capability": capability, "command": command[1:],
              "wall_time_s": seconds, **result}
    if args.out:
        atomic_write(Path(args.out), json.dumps(report, indent=2))
    for line in result["differences"][:10]:
        print(f"differs: {line}")
    print(f"{'identical' if result['identical'] else 'NOT identical'}: {result['tensors']} "
          f"tensors and {len(result['members'])} members compared "
          f"(largest difference {result['max_abs_diff']:.3g}; retraining {seconds / 60:.1f} min)")
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(cli.run(main, prog="tools/reproduce_policy.py"))
