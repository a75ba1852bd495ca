"""Ray scale-out, measured side by side in one run.

(a) sweep throughput: the same evaluation sweep (``--runs`` tiny runs: uniform and heuristic
    over seeds) with ``dus_agents.evaluation.sweep``'s local backend (one run after another in
    this process) and its Ray backend (one Ray task per run, 1 CPU each, on a Ray instance of
    ``--cpus`` CPUs), alternating local / Ray so machine noise hits both alike; ratio = local time / Ray
    time (the speed-up);
(b) env steps per second of PPO's VecEnv: ``RayVecEnv`` with 1 and with 2 actors (1 CPU each),
    next to an in-process ``DummyVecEnv`` of 1 env (what Ray's per-step round trip costs),
    in rotating order; ratio = steps/s with 2 actors / steps/s with 1 actor.

Ray starts once (its start-up time is printed, not counted); an untimed warm-up sweep lets the
Ray workers import torch before any timing, and each VecEnv's actors start before its clock.
Each ratio is the median over repeats of the per-repeat ratio, with its interquartile range,
min and max.

    python -m benchmarks.ray_scaling                  # 5 repeats, 8-run sweeps, 2 CPUs
    python -m benchmarks.ray_scaling --smoke          # seconds; checks that it all runs
    python -m benchmarks.ray_scaling --out ray.json   # also write the numbers as JSON
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import common
from dus_agents.evaluation.sweep import EvaluateArgs, sweep, validate
from dus_agents.ppo import make_env_fn
from dus_agents.ray_backend import connect
from dus_agents.cli.common import check_at_least
from dus_env.errors import RayConnectionError, RayNotInstalledError, UsageError


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.ray_scaling``."""

    preset: str = "tiny"
    """Env preset of every run and env."""
    runs: int = 8
    """Runs per sweep (even)."""
    vec_steps: int = 60
    """VecEnv steps per measurement (each env steps this many times)."""
    repeats: int = 5
    """Alternating repeats."""
    cpus: int = 2
    """CPUs of the local Ray instance."""

    SMOKE = {"runs": 2, "vec_steps": 4, "repeats": 1}  # and no warm-up sweep


def sweep_seconds(backend: str, preset: str, runs: int, scratch: Path) -> float:
    """Wall time of one fresh sweep of ``runs`` runs (no results on disk yet)."""
    seeds = max(1, runs // 2)
    out = Path(tempfile.mkdtemp(dir=scratch))
    args = EvaluateArgs(policies="uniform,heuristic", preset=preset, seeds=f"0-{seeds - 1}",
                        out_dir=str(out), quiet=True, backend=backend)
    plan = validate(args)
    start = time.perf_counter()
    rows, failures = sweep(plan)
    elapsed = time.perf_counter() - start
    if failures or len(rows) != 2 * seeds:
        raise RuntimeError(f"{backend} sweep finished {len(rows)} of {2 * seeds} runs: "
                           f"{failures}")
    shutil.rmtree(out)
    return elapsed


def steps_per_second(kind: str, preset: str, n_envs: int, vec_steps: int, seed: int) -> float:
    """Env steps per second of a VecEnv of ``n_envs`` envs over ``vec_steps`` steps (random
    actions; auto-reset at episode ends included; actor start-up and the first reset not)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from dus_agents.ray_vec_env import RayVecEnv

    fns = [make_env_fn(preset) for _ in range(n_envs)]
    vec = DummyVecEnv(fns) if kind == "dummy" else RayVecEnv(fns, num_cpus=1)
    try:
        vec.seed(seed)
        vec.reset()
        rng = np.random.default_rng(seed)
        nvec = vec.action_space.nvec
        actions = [rng.integers(0, nvec, size=(n_envs, len(nvec))) for _ in range(vec_steps)]
        start = time.perf_counter()
        for action in actions:
            vec.step(action)
        elapsed = time.perf_counter() - start
    finally:
        vec.close()
    return n_envs * vec_steps / elapsed


def main(argv: Sequence[str] | None = None) -> dict:
    args = common.parse(Args, argv)
    for name in ("runs", "vec_steps", "repeats", "cpus"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name), 1)
    common.setup(args)

    start = time.perf_counter()
    try:
        session = connect(num_cpus=args.cpus, log_to_driver=False)
    except (RayNotInstalledError, RayConnectionError) as err:
        raise UsageError(f"Ray: {err}") from None
    ray_start = time.perf_counter() - start
    started_here = session.started
    scratch = Path(tempfile.mkdtemp(prefix="ray_scaling_"))
    try:
        # (a) untimed warm-up first (not in --smoke): Ray's workers start and import torch,
        # evaluate and the env; this process's first run pays torch's one-off start-up
        if not args.smoke:
            sweep_seconds("local", args.preset, 2, scratch)
            sweep_seconds("ray", args.preset, min(args.runs, 2 * args.cpus), scratch)
        local_t, ray_t, speedups = [], [], []
        for r in range(args.repeats):
            order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
            times = {b: sweep_seconds(b, args.preset, args.runs, scratch) for b in order}
            local_t.append(times["local"])
            ray_t.append(times["ray"])
            speedups.append(times["local"] / times["ray"])

        # (b) each measurement starts its own actors (start-up and first reset not timed)
        arms = [("dummy", 1), ("ray", 1), ("ray", 2)]
        rates: dict[str, list[float]] = {f"{k}x{n}": [] for k, n in arms}
        scaling, overhead = [], []
        for r in range(args.repeats):
            order = arms[r % 3:] + arms[:r % 3]
            got = {f"{k}x{n}": steps_per_second(k, args.preset, n, args.vec_steps, seed=r)
                   for k, n in order}
            for name, value in got.items():
                rates[name].append(value)
            scaling.append(got["rayx2"] / got["rayx1"])
            overhead.append(got["rayx1"] / got["dummyx1"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        session.close()

    runs = 2 * max(1, args.runs // 2)
    spread = common.median_spread
    result = {
        "preset": args.preset, "repeats": args.repeats, "cpus": args.cpus,
        "runs_per_sweep": runs, "vec_steps": args.vec_steps,
        "ray_start_seconds": ray_start, "ray_started_here": started_here,
        "ray_cluster_cpus": session.resources.get("CPU"),
        "sweep": {"local_seconds": spread(local_t), "ray_seconds": spread(ray_t),
                  "speedup_local_over_ray": spread(speedups)},
        "env_steps_per_second": {name: spread(v) for name, v in rates.items()},
        "actor_scaling_2_over_1": spread(scaling),
        "ray_1_actor_over_in_process": spread(overhead),
    }

    def line(label: str, s: dict[str, float], unit: str = "", digits: int = 2) -> str:
        f = f"{{:.{digits}f}}"
        return (f"{label}: median {f.format(s['median'])}{unit} (IQR {f.format(s['q1'])}-"
                f"{f.format(s['q3'])}, min {f.format(s['min'])}, max {f.format(s['max'])}, "
                f"n={s['n']})")

    print(f"preset={args.preset} repeats={args.repeats} ray cpus={args.cpus} "
          f"(ray start {ray_start:.1f} s, not counted)")
    print(f"(a) sweep of {runs} runs")
    print("  " + line("local backend", result["sweep"]["local_seconds"], " s"))
    print("  " + line("ray backend  ", result["sweep"]["ray_seconds"], " s"))
    print("  " + line("speed-up local/ray", result["sweep"]["speedup_local_over_ray"], "x"))
    print(f"(b) env steps per second ({args.vec_steps} VecEnv steps per measurement)")
    for name, s in result["env_steps_per_second"].items():
        print("  " + line(f"{name:8s}", s, " steps/s", 1))
    print("  " + line("scaling 2 actors / 1 actor", result["actor_scaling_2_over_1"], "x"))
    print("  " + line("1 Ray actor / in-process", result["ray_1_actor_over_in_process"], "x"))
    common.write_json(args.out, result, indent=2)
    if args.smoke:
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
