"""Ray scale-out, measured side by side in one run.

(a) sweep throughput: the same evaluation sweep (``--runs`` tiny runs: uniform and heuristic
    over seeds) with ``evaluate.py``'s local backend (one run after another in this process)
    and its Ray backend (one Ray task per run, 1 CPU each, on a Ray instance of ``--cpus``
    CPUs), alternating local / Ray so machine noise hits both alike; ratio = local time / Ray
    time (the speed-up);
(b) env steps per second of PPO's VecEnv: ``RayVecEnv`` with 1 and with 2 actors (1 CPU each),
    next to an in-process ``DummyVecEnv`` of 1 env (what Ray's per-step round trip costs),
    in rotating order; ratio = steps/s with 2 actors / steps/s with 1 actor.

Ray starts once (its start-up time is printed, not counted); an untimed warm-up sweep lets the
Ray workers import torch before any timing, and each VecEnv's actors start before its clock.
Each ratio is the median over repeats of the per-repeat ratio, with its interquartile range,
min and max.

    python benchmarks/ray_scaling.py                  # 5 repeats, 8-run sweeps, 2 CPUs
    python benchmarks/ray_scaling.py --smoke          # seconds; checks that it all runs
    python benchmarks/ray_scaling.py --out ray.json   # also write the numbers as JSON
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evaluate  # noqa: E402
from dus_agents.ppo import make_env_fn  # noqa: E402
from dus_agents.ray_backend import connect  # noqa: E402


def summarise(values: list[float]) -> dict[str, float]:
    q1, q3 = np.percentile(values, [25, 75])
    return {"median": statistics.median(values), "q1": float(q1), "q3": float(q3),
            "min": min(values), "max": max(values), "n": len(values)}


def sweep_seconds(backend: str, preset: str, runs: int, scratch: Path) -> float:
    """Wall time of one fresh sweep of ``runs`` runs (no results on disk yet)."""
    seeds = max(1, runs // 2)
    out = Path(tempfile.mkdtemp(dir=scratch))
    args = evaluate.Args(policies="uniform,heuristic", preset=preset, seeds=f"0-{seeds - 1}",
                         out_dir=str(out), quiet=True, backend=backend)
    plan = evaluate.validate(args)
    start = time.perf_counter()
    rows, failures = evaluate.sweep(plan)
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", help="env preset of every run and env")
    parser.add_argument("--runs", type=int, default=8, help="runs per sweep (even)")
    parser.add_argument("--vec-steps", type=int, default=60,
                        help="VecEnv steps per measurement (each env steps this many times)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--smoke", action="store_true",
                        help="1 repeat, 2-run sweeps, 4 VecEnv steps, no warm-up (CI)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.vec_steps, args.repeats = 2, 4, 1
    for name in ("runs", "vec_steps", "repeats", "cpus"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}={getattr(args, name)} must be >= 1")
    torch.set_num_threads(1)

    start = time.perf_counter()
    session = connect(num_cpus=args.cpus, log_to_driver=False)
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
    result = {
        "preset": args.preset, "repeats": args.repeats, "cpus": args.cpus,
        "runs_per_sweep": runs, "vec_steps": args.vec_steps,
        "ray_start_seconds": ray_start, "ray_started_here": started_here,
        "ray_cluster_cpus": session.resources.get("CPU"),
        "sweep": {"local_seconds": summarise(local_t), "ray_seconds": summarise(ray_t),
                  "speedup_local_over_ray": summarise(speedups)},
        "env_steps_per_second": {name: summarise(v) for name, v in rates.items()},
        "actor_scaling_2_over_1": summarise(scaling),
        "ray_1_actor_over_in_process": summarise(overhead),
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
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    if args.smoke:
        print("smoke ok")
    return result


if __name__ == "__main__":
    main()
