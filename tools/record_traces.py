"""Record DUS-v0 episode traces, or check the current code against recorded ones.

A trace is everything one episode gives back, bit for bit: each step's observation, reward,
termination flags and info (except ``wall_time``, the one entry that is a clock reading), the
batch sizes, and the action taken. Actions are recorded too and replayed when checking, so a
later change to how a policy decides does not change what the env is asked to do.

    python tools/record_traces.py --write tests/data/traces_v0.json.gz   # record (once)
    python tools/record_traces.py --check tests/data/traces_v0.json.gz   # compare, exit 1 if not equal

``tests/test_traces.py`` runs the check on every CI run. The check takes the recorded CPU
kernel path (torch's ``ATEN_CPU_CAPABILITY``, unless the caller set it): a CPU with wider
vectors (AVX512) otherwise runs other kernels, whose rounding compounds over the training
steps of an episode (seen 8e-4 apart, relative, after 5 steps of the ``default`` preset).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

# (name, preset, config overrides, policy, seed): every host, three presets, two ways to act
CASES: tuple[tuple[str, str, dict[str, Any], str, int], ...] = (
    ("tiny-random", "tiny", {}, "random", 1),
    ("tiny-heuristic", "tiny", {}, "heuristic", 2),
    ("default-random", "default", {}, "random", 3),
    ("default-heuristic", "default", {}, "heuristic", 4),
    ("mfeat3-random", "mfeat3", {}, "random", 5),
    ("mfeat3-heuristic", "mfeat3", {}, "heuristic", 6),
    ("tiny-mla-random", "tiny", {"trainer": {"host": "mla"}}, "random", 7),
    ("tiny-mla-heuristic", "tiny", {"trainer": {"host": "mla"}}, "heuristic", 8),
    ("tiny-ogm_ge-random", "tiny", {"trainer": {"host": "ogm_ge"}}, "random", 9),
    ("tiny-ogm_ge-heuristic", "tiny", {"trainer": {"host": "ogm_ge"}}, "heuristic", 10),
    ("tiny-discrepancy-ratio", "tiny",
     {"reward": {"name": "hybrid"}, "monitor": {"discrepancy": "ratio", "average": "ema"}},
     "random", 11),
)


def _plain(value: Any) -> Any:
    """JSON-ready, exact: floats stay Python floats (``repr`` round-trips them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


def _info(info: dict[str, Any]) -> dict[str, Any]:
    return _plain({k: v for k, v in info.items() if k != "wall_time"})


def _policy(name: str, env: Any, seed: int):
    from dus_agents.heuristic import HeuristicPolicy, RandomPolicy

    if name == "heuristic":
        return HeuristicPolicy.for_env(env)
    return RandomPolicy.for_env(env, seed=seed)


def record_case(preset: str, overrides: dict[str, Any], policy: str, seed: int,
                actions: list[list[int]] | None = None) -> dict[str, Any]:
    """One episode's trace; with ``actions`` those are replayed instead of asking the policy."""
    import torch

    from dus_env.env import DUSEnv

    torch.set_num_threads(1)
    env = DUSEnv(config=overrides or None, preset=preset)
    pol = _policy(policy, env, seed) if actions is None else None
    obs, info = env.reset(seed=seed)
    steps: list[dict[str, Any]] = [{"observation": _plain(obs), "info": _info(info)}]
    done, i = False, 0
    while not done:
        if actions is None:
            action, _ = pol.predict(obs, deterministic=True)
        else:
            action = np.asarray(actions[i], dtype=np.int64)
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append({
            "action": _plain(np.asarray(action)),
            "observation": _plain(obs),
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "info": _info(info),
        })
        done = terminated or truncated
        i += 1
    env.close()
    return {"preset": preset, "overrides": overrides, "policy": policy, "seed": seed,
            "steps": steps}


def machine() -> dict[str, str]:
    """What floating-point results depend on: torch's build, the CPU code path it takes, the CPU
    model (MKL and oneDNN pick their own kernels by vendor and model) and the thread count (it
    sets the order of parallel reductions)."""
    import platform

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's benchmarks
    from benchmarks.common import cpu_model

    from dus_env.seeding import cpu_capability

    return {"torch": torch.__version__, "cpu_capability": cpu_capability(),
            "machine": platform.machine(), "cpu_model": cpu_model(),
            "threads": str(torch.get_num_threads())}


def record_all() -> dict[str, Any]:
    return {"machine": machine(),
            "traces": {name: record_case(preset, overrides, policy, seed)
                       for name, preset, overrides, policy, seed in CASES}}


def first_difference(expected: Any, got: Any, where: str = "", rel: float = 0.0) -> str | None:
    """Where two traces first differ (None when equal); floats may differ by ``rel`` relative
    (0: bit for bit)."""
    if type(expected) is not type(got) and not (
            isinstance(expected, (int, float)) and isinstance(got, (int, float))
            and type(expected) is type(got)):
        return f"{where}: type {type(expected).__name__} != {type(got).__name__}"
    if isinstance(expected, dict):
        if set(expected) != set(got):
            return f"{where}: keys {sorted(expected)} != {sorted(got)}"
        for k in expected:
            diff = first_difference(expected[k], got[k], f"{where}.{k}", rel)
            if diff:
                return diff
        return None
    if isinstance(expected, list):
        if len(expected) != len(got):
            return f"{where}: length {len(expected)} != {len(got)}"
        for i, (a, b) in enumerate(zip(expected, got)):
            diff = first_difference(a, b, f"{where}[{i}]", rel)
            if diff:
                return diff
        return None
    if expected == got or (expected != expected and got != got):  # NaN == NaN here
        return None
    if rel and isinstance(expected, float) and abs(expected - got) <= rel * max(abs(expected), 1.0):
        return None
    return f"{where}: {expected!r} != {got!r}"


def load(path: Path) -> dict[str, Any]:
    """A recorded traces file; ``UsageError`` naming it when it is missing, not gzip, not
    JSON or not a file of recorded traces."""
    from dus_env.errors import UsageError

    try:
        data = json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    except (OSError, EOFError, ValueError) as exc:  # missing, not gzip, cut short, not JSON
        raise UsageError(f"--check: cannot read {str(path)!r} as recorded traces "
                         f"({type(exc).__name__}: {exc})") from None
    if not (isinstance(data, dict) and isinstance(data.get("traces"), dict)
            and isinstance(data.get("machine"), dict)):
        raise UsageError(f"--check: {str(path)!r} is not a file of recorded traces (no "
                         "'machine' and 'traces'); record one with --write")
    return data


def pin_kernels(recorded: dict[str, Any]) -> None:
    """Make torch take the CPU kernel path the traces were recorded with (its
    ``ATEN_CPU_CAPABILITY``), unless the caller chose one. Only before torch is imported."""
    capability = recorded.get("machine", {}).get("cpu_capability")
    if capability and "torch" not in sys.modules:
        os.environ.setdefault("ATEN_CPU_CAPABILITY", capability.lower())


def check(path: Path, rel: float | None = None,
          data: dict[str, Any] | None = None) -> tuple[list[str], float]:
    """One line per recorded case whose replay differs from the recording, and the tolerance
    used: bit for bit (0) on the machine kind the traces were recorded on; elsewhere, where
    another CPU, thread count or torch build may round differently and the rounding compounds
    over an episode's training steps, ``rel`` (default 1e-4: a CI machine with the same torch
    build and AVX2 path was seen 2e-6 apart after 4 steps; a change of behaviour moves values by
    far more). ``data``: the file already read (:func:`load`)."""
    data = load(path) if data is None else data
    if rel is None:
        rel = 0.0 if data["machine"] == machine() else 1e-4
    problems = []
    for name, trace in data["traces"].items():
        actions = [step["action"] for step in trace["steps"][1:]]
        got = record_case(trace["preset"], trace["overrides"], trace["policy"], trace["seed"],
                          actions=actions)
        diff = first_difference(trace, json.loads(json.dumps(got)), name, rel)
        if diff:
            problems.append(diff)
    return problems, rel


def main(argv: list[str] | None = None) -> int:
    """Record or check; an unreadable ``--check`` file is one line on stderr and exit status 2
    (no traceback), as :func:`dus_agents.cli.common.run` does (not imported here: it imports
    torch, which :func:`pin_kernels` must precede)."""
    from dus_env.errors import UsageError

    try:
        return _main(argv)
    except UsageError as exc:
        print(f"record_traces.py: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="PATH", help="record the traces into PATH (.json.gz)")
    group.add_argument("--check", metavar="PATH", help="compare the current code with PATH")
    args = parser.parse_args(argv)
    if args.write:
        data = json.dumps(record_all(), sort_keys=True).encode("utf-8")
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_bytes(gzip.compress(data, mtime=0))
        print(f"recorded {len(CASES)} traces into {args.write}")
        return 0
    data = load(Path(args.check))
    pin_kernels(data)
    problems, rel = check(Path(args.check), data=data)
    for line in problems:
        print(f"differs: {line}")
    how = "bit for bit" if rel == 0 else f"to a relative {rel:g} (recorded on another machine kind)"
    print(f"{len(CASES)} traces equal, {how}" if not problems
          else f"{len(problems)} trace(s) differ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
