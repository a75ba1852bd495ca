"""Cost benchmarks: PPO time-to-beat-uniform, env steps per second (1 vs 2 envs), memory.

Four parts (``--parts``, default all), each measured in one run of this script:

1. ``ppo_time``: wall time of ``train_agent.py`` PPO training until its replayed policy beats
   uniform sampling. PPO trains once with a checkpoint every ``--checkpoint-freq`` timesteps
   (or ``--ppo-run DIR`` reuses a run directory that has them, e.g. the one
   ``benchmarks.quality`` trains); each checkpoint is replayed deterministically on
   ``--val-episodes`` fresh episodes (seeds 20000, 20001, ...) next to the uniform sampler on the
   same seeds, and scored by the final **validation** accuracy of the run (what the default
   reward telescopes to); the test split is not read. A checkpoint "beats uniform" when the mean
   seed-paired difference is > 0 and its 95% t-interval excludes 0. The elapsed time of a
   checkpoint is its file's modification time minus the run's start (``config.json`` written
   just before training).
2. ``steps``: env steps per second of ``train_agent.py --n-envs 1`` and ``--n-envs 2`` (PPO,
   the same total timesteps), runs alternated 1, 2, 1, 2, ... so machine noise hits both; the
   rate is timesteps / the training wall time the run reports (``summary.json``: ``wall_time_s``,
   which excludes interpreter start-up). Prints the median ratio and its spread.
3. ``memory``: 100 consecutive ``dus_agents.evaluation.run_one`` runs (training, best-validation tracking,
   test evaluation, probes) in one fresh process; peak RSS (``ru_maxrss``) and current RSS after
   each; growth = peak after the last run / peak after run 10 - 1.
4. ``env_scaling``: the hardware reference for part 2: bare ``DUSEnv.step`` loops (no PPO) in
   1 and in 2 processes at once, alternated; their ratio is what 2 envs could reach at best.

    python -m benchmarks.cost --out results/cost/cost.json
    python -m benchmarks.cost --ppo-run results/quality/ppo/ppo_default --out results/cost/cost.json
    python -m benchmarks.cost --smoke
"""

from __future__ import annotations

import dataclasses
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.common import ROOT
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.errors import UsageError

PARTS = ("ppo_time", "steps", "memory", "env_scaling")
LOG = common.logger("cost")


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.cost``."""

    parts: str = ",".join(PARTS)
    """Comma list from ppo_time, steps, memory, env_scaling."""
    preset: str = "default"
    """Env preset."""
    ppo_run: str = ""
    """train_agent.py run directory with checkpoints to reuse for ppo_time (empty: train
    one)."""
    ppo_timesteps: int = 12000
    """PPO timesteps when ppo_time trains its own run."""
    n_envs: int = 2
    """Envs of that PPO run."""
    checkpoint_freq: int = 1600
    """Timesteps between checkpoints of that run."""
    val_episodes: int = 20
    """Validation episodes per checkpoint."""
    steps_timesteps: int = 2400
    """Timesteps of each steps-per-second run."""
    repeats: int = 3
    """Alternating pairs of steps-per-second runs."""
    episodes: int = 100
    """Runs of the memory part."""
    scaling_steps: int = 400
    """Env steps per process in the env_scaling part."""
    memory_child: str = dataclasses.field(default="", metadata={"hidden": True})
    """Internal: run the memory part's runs in this process, write them to this path."""

    SMOKE = {"preset": "tiny", "ppo_timesteps": 48, "n_envs": 1, "checkpoint_freq": 24,
             "val_episodes": 2, "steps_timesteps": 48, "repeats": 1, "episodes": 5,
             "scaling_steps": 12}


def spread(values: list[float]) -> dict[str, Any]:
    return common.median_spread(values, with_values=True)


def train(preset: str, timesteps: int, n_envs: int, out_dir: Path, name: str,
          checkpoint_freq: int, seed: int = 0) -> Path:
    run = out_dir / name
    if run.exists():
        shutil.rmtree(run)
    cmd = [sys.executable, str(ROOT / "train_agent.py"), "--agent", "ppo", "--preset", preset,
           "--total-timesteps", str(timesteps), "--n-envs", str(n_envs), "--seed", str(seed),
           "--out-dir", str(out_dir), "--run-name", name, "--checkpoint-freq",
           str(checkpoint_freq), "--keep-checkpoints", "1000", "--eval-episodes", "0",
           "--no-progress-bar"]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return run


# --------------------------------------------------------------------------- part 1
def final_val_accuracy(env, policy, seed: int) -> float:
    from dus_agents.rollout import run_episode

    result = run_episode(env, policy, seed=seed, deterministic=True)
    return float(result.infos[-1]["validation"]["accuracy"])


def load_checkpoint(path: Path, env: Any) -> Any:
    """A PPO training checkpoint as a policy for ``env``: the package's checkpoint artefact, or
    a plain SB3 zip (runs checkpointed before checkpoints became artefacts), read as data."""
    import zipfile

    from dus_agents.artifact import ARTIFACT_ENTRY
    from dus_agents.ppo import PPOPolicy

    with zipfile.ZipFile(path) as archive:
        artefact = ARTIFACT_ENTRY in archive.namelist()
    return PPOPolicy.load(path, env) if artefact else PPOPolicy.from_sb3(path, env)


def ppo_time(args: Args, work: Path) -> dict[str, Any]:
    import gymnasium as gym

    import dus_env
    from dus_agents.callbacks import list_checkpoints
    from dus_agents.evaluation.stats import paired_difference
    from dus_agents.heuristic import UniformPolicy

    if args.ppo_run:
        run = Path(args.ppo_run)
    else:
        run = train(args.preset, args.ppo_timesteps, args.n_envs, work, "ppo_time",
                    args.checkpoint_freq)
    config = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    start = (run / "config.json").stat().st_mtime
    env = gym.make(dus_env.ENV_ID, preset=config["args"]["preset"],
                   config={"trainer": {"host": config["args"]["host"]}}
                   if config["args"].get("host") else None)
    seeds = [20_000 + i for i in range(args.val_episodes)]
    uniform = {s: final_val_accuracy(env, UniformPolicy.for_env(env), s) for s in seeds}
    checkpoints = []
    for path in list_checkpoints(run / "checkpoints"):
        policy = load_checkpoint(path, env)
        accs = {s: final_val_accuracy(env, policy, s) for s in seeds}
        diff = paired_difference(accs, uniform)
        steps = int(path.stem.split("_")[-2])
        entry = {"checkpoint": path.name, "timesteps": steps,
                 "elapsed_s": path.stat().st_mtime - start,
                 "mean_val_acc": float(np.mean(list(accs.values()))),
                 "diff_to_uniform": diff.as_dict(),
                 "beats_uniform": bool(diff.mean > 0 and diff.low > 0)}
        checkpoints.append(entry)
        LOG.info(f"ppo_time: {path.name} t={entry['elapsed_s']:.0f}s "
                 f"Δval {100 * diff.mean:+.2f} ± {100 * diff.half_width:.2f}")
    first = next((c for c in checkpoints if c["beats_uniform"]), None)
    first_mean = next((c for c in checkpoints if c["diff_to_uniform"]["mean"] > 0), None)
    return {
        "run_dir": str(run), "preset": config["args"]["preset"],
        "n_envs": config["args"]["n_envs"], "total_timesteps": summary.get("timesteps"),
        "training_wall_time_s": summary.get("wall_time_s"),
        "val_episode_seeds": seeds, "uniform_mean_val_acc": float(np.mean(list(uniform.values()))),
        "checkpoints": checkpoints,
        "first_beating_checkpoint": first,
        "first_checkpoint_with_positive_mean": first_mean,
        "criterion": "mean paired final-validation-accuracy difference > 0 with its 95% "
                     "t-interval excluding 0",
    }


# --------------------------------------------------------------------------- part 2
def monitor_rate(run: Path) -> float:
    """Steady-state env steps per second of a run, from its Monitor logs: per env, the steps of
    every episode after its first, over the time from the end of its first episode to the end of
    its last; summed over the envs (they run side by side). Excludes interpreter and worker
    start-up and the model build, which the end-to-end rate includes."""
    total = 0.0
    for path in sorted((run / "monitor").glob("*.csv")):
        rows = []
        for line in path.read_text().splitlines():
            if line.startswith("#") or line.startswith("r,"):
                continue
            r, length, t = line.split(",")
            rows.append((int(float(length)), float(t)))
        if len(rows) >= 2:
            total += sum(n for n, _ in rows[1:]) / (rows[-1][1] - rows[0][1])
    return total


def steps_rate(args: Args, work: Path) -> dict[str, Any]:
    rates: dict[int, list[float]] = {1: [], 2: []}
    steady: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.repeats):
        for n in (1, 2):
            run = train(args.preset, args.steps_timesteps, n, work, f"steps_{n}_{r}",
                        checkpoint_freq=10 ** 9)
            summary = json.loads((run / "summary.json").read_text())
            rates[n].append(summary["timesteps"] / summary["wall_time_s"])
            steady[n].append(monitor_rate(run))
            LOG.info(f"steps: repeat {r} n_envs={n} {rates[n][-1]:.1f} steps/s end to end, "
                     f"{steady[n][-1]:.1f} steady")
            shutil.rmtree(run)
    return {"preset": args.preset, "timesteps": args.steps_timesteps, "repeats": args.repeats,
            "steps_per_s_1": spread(rates[1]), "steps_per_s_2": spread(rates[2]),
            "ratio_2_over_1": spread([b / a for a, b in zip(rates[1], rates[2])]),
            "steady_steps_per_s_1": spread(steady[1]), "steady_steps_per_s_2": spread(steady[2]),
            "steady_ratio_2_over_1": spread([b / a for a, b in zip(steady[1], steady[2])]),
            "cpu_load_note": "the 2 cores were shared with another job while this ran"}


def env_worker(args: tuple[str, int, int, int]) -> float:
    """One process stepping DUS-v0 with the uniform action: env steps per second."""
    preset, n_steps, seed, threads = args
    import torch

    from dus_env.env import DUSEnv

    torch.set_num_threads(threads)
    env = DUSEnv(preset=preset)
    env.reset(seed=seed)
    start, done_steps = time.perf_counter(), 0
    while done_steps < n_steps:
        _, _, done, _, _ = env.step(env.uniform_action)
        done_steps += 1
        if done:
            env.reset(seed=seed + done_steps)
    return done_steps / (time.perf_counter() - start)


def env_scaling(args: Args) -> dict[str, Any]:
    """The hardware reference for the steps part: bare DUS-v0 stepping (no PPO) in 1 vs 2
    processes at once, alternated; the ratio PPO's 2 envs could reach at best."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.repeats):
        for k in (1, 2):
            with ctx.Pool(k) as pool:
                per = pool.map(env_worker,
                               [(args.preset, args.scaling_steps, 1000 + r, args.threads)] * k)
            rates[k].append(sum(per))
            LOG.info(f"env_scaling: repeat {r} {k} process(es): {rates[k][-1]:.1f} env steps/s")
    return {"preset": args.preset, "steps_per_process": args.scaling_steps,
            "repeats": args.repeats, "steps_per_s_1": spread(rates[1]),
            "steps_per_s_2": spread(rates[2]),
            "ratio_2_over_1": spread([b / a for a, b in zip(rates[1], rates[2])])}


# --------------------------------------------------------------------------- part 3
def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def memory_child(preset: str, episodes: int, out: Path) -> None:
    """Runs in a fresh process: ``episodes`` consecutive ``run_one`` runs."""
    from dus_agents.evaluation.runs import run_one
    from dus_env.env import DUSEnv

    env = DUSEnv(config={"sampler": {"budget": "renormalize"}}, preset=preset)
    peak, current, seconds = [], [], []
    for i in range(episodes):
        start = time.perf_counter()
        run_one(env, "heuristic", preset, i, 5000)
        seconds.append(time.perf_counter() - start)
        peak.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
        current.append(current_rss_mb())
    common.write_json(out, {"peak_mb": peak, "current_mb": current, "seconds": seconds})


def memory(args: Args, work: Path) -> dict[str, Any]:
    out = work / "memory.json"
    subprocess.run([sys.executable, "-m", "benchmarks.cost", "--memory-child", str(out),
                    "--preset", args.preset, "--episodes", str(args.episodes),
                    "--threads", str(args.threads)], cwd=ROOT, check=True)
    data = json.loads(out.read_text())
    ref = min(10, len(data["peak_mb"])) - 1
    return {
        "preset": args.preset, "episodes": args.episodes, "policy": "heuristic",
        "reference_episode": ref + 1,
        "peak_mb_after_reference": data["peak_mb"][ref], "peak_mb_final": data["peak_mb"][-1],
        "peak_growth": data["peak_mb"][-1] / data["peak_mb"][ref] - 1.0,
        "current_mb_after_reference": data["current_mb"][ref],
        "current_mb_final": data["current_mb"][-1],
        "current_growth": data["current_mb"][-1] / data["current_mb"][ref] - 1.0,
        "peak_mb_after_first": data["peak_mb"][0],
        "seconds_per_episode": spread(data["seconds"]),
        "peak_mb": data["peak_mb"], "current_mb": data["current_mb"],
    }


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    if args.memory_child:
        common.setup(args)
        memory_child(args.preset, args.episodes, Path(args.memory_child))
        return {}
    parts = comma_list("--parts", args.parts)
    for part in parts:
        if part not in PARTS:
            raise UsageError(f"--parts: unknown part {part!r}; valid: {list(PARTS)}")
    for name in ("ppo_timesteps", "n_envs", "checkpoint_freq", "val_episodes",
                 "steps_timesteps", "repeats", "episodes", "scaling_steps"):
        check_at_least("--" + name.replace("_", "-"), getattr(args, name), 1)
    common.setup(args)
    result: dict[str, Any] = {"machine": common.machine_info(), "smoke": args.smoke,
                              "command": "python -m benchmarks.cost "
                                         + " ".join(argv if argv is not None else sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="dus_cost_") as tmp:
        work = Path(tmp)
        if "ppo_time" in parts:
            result["ppo_time"] = ppo_time(args, work)
        if "steps" in parts:
            result["steps"] = steps_rate(args, work)
        if "memory" in parts:
            result["memory"] = memory(args, work)
        if "env_scaling" in parts:
            result["env_scaling"] = env_scaling(args)
    text = common.write_json(args.out, result)
    if "ppo_time" in result:
        first = result["ppo_time"]["first_beating_checkpoint"]
        print("ppo_time: first checkpoint beating uniform on validation: "
              + (f"{first['checkpoint']} after {first['elapsed_s']:.0f} s" if first else "none"))
    if "steps" in result:
        r = result["steps"]["ratio_2_over_1"]
        q = result["steps"]["steady_ratio_2_over_1"]
        print(f"steps/s ratio n_envs 2 / 1: median {r['median']:.2f} "
              f"(min {r['min']:.2f}, max {r['max']:.2f}) end to end, median {q['median']:.2f} "
              f"(min {q['min']:.2f}, max {q['max']:.2f}) steady state; target >= 1.7")
    if "env_scaling" in result:
        e = result["env_scaling"]["ratio_2_over_1"]
        print(f"bare env stepping, 2 processes / 1: median {e['median']:.2f} "
              f"(min {e['min']:.2f}, max {e['max']:.2f})")
    if "memory" in result:
        m = result["memory"]
        print(f"memory: peak RSS {m['peak_mb_after_reference']:.0f} MB after run "
              f"{m['reference_episode']}, {m['peak_mb_final']:.0f} MB after {m['episodes']} "
              f"({100 * m['peak_growth']:+.1f}%); target < +10%")
    if args.smoke:
        json.loads(text)
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
