"""Env overhead: DUSEnv.step against a bare PyTorch loop over the same engine, side by side.

(a) bare: ``trainer.train_step(sampler.next_batch(sizes))`` for ``total_iterations``
    iterations, with the trainer and sampler the env would build for the same seed;
(b) env: ``DUSEnv.step`` over a whole episode with the same batch sizes and the validation
    reward switched off (``reward.name='discrepancy'``, which reads no validation data).
Runs alternate, in an order rotated every repeat, so machine noise and order effects hit
both alike; the script prints the median ratio b / a with its spread. It also prints the share of episode time the default validation
reward (``val_delta``) costs: 1 - time(episode, no validation) / time(episode, val_delta).

    python benchmarks/overhead.py              # default preset, 15 repeats
    python benchmarks/overhead.py --smoke      # seconds; checks the output parses
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from gymnasium.utils import seeding

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dus_env.config import RewardConfig, get_preset  # noqa: E402
from dus_env.data import make_dataset  # noqa: E402
from dus_env.env import DUSEnv  # noqa: E402
from dus_env.sampler import ModalitySampler, multipliers_to_batch_sizes  # noqa: E402
from dus_env.trainer import MMLTrainer  # noqa: E402


def bare_loop(config, dataset, seed: int, action: np.ndarray) -> float:
    model_seed, sampler_seed = DUSEnv.episode_seeds(seeding.np_random(seed)[0])
    trainer = MMLTrainer.build(config.trainer, config.model, dataset,
                               config.sampler.base_batch_size, model_seed, config.device)
    sampler = ModalitySampler(config.sampler, dataset.modalities, dataset.split("train"),
                              np.random.default_rng(sampler_seed))
    sizes = multipliers_to_batch_sizes(action, config.sampler)
    start = time.perf_counter()
    for _ in range(config.total_iterations):
        trainer.train_step(sampler.next_batch(sizes))
    return time.perf_counter() - start


def env_episode(env: DUSEnv, seed: int, action: np.ndarray) -> float:
    env.reset(seed=seed)
    start = time.perf_counter()
    done = False
    while not done:
        _, _, done, _, _ = env.step(action)
    return time.perf_counter() - start


def summarise(values: list[float]) -> dict[str, float]:
    q1, _, q3 = np.percentile(values, [25, 50, 75])
    return {"median": statistics.median(values), "q1": float(q1), "q3": float(q3),
            "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", help="env preset to time (default: default)")
    parser.add_argument("--repeats", type=int, default=15, help="alternating pairs of runs")
    parser.add_argument("--smoke", action="store_true", help="tiny preset, 3 repeats (CI)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset, args.repeats = "tiny", 3
    torch.set_num_threads(1)
    base = get_preset(args.preset)
    no_val = base.replace(reward=RewardConfig(name="discrepancy"))
    dataset = make_dataset(base.data)
    env_off, env_on = DUSEnv(config=no_val), DUSEnv(config=base)
    action = env_off.uniform_action
    ratios, shares, bare_times, env_times = [], [], [], []
    for r in range(args.repeats):
        seed = 1000 + r
        runs = {
            "bare": lambda: bare_loop(no_val, dataset, seed, action),
            "env": lambda: env_episode(env_off, seed, action),
            "val": lambda: env_episode(env_on, seed, action),
        }
        order = list(runs)[r % 3:] + list(runs)[:r % 3]  # rotate: no arm always runs first
        times = {name: runs[name]() for name in order}
        t_bare, t_env, t_val = times["bare"], times["env"], times["val"]
        bare_times.append(t_bare)
        env_times.append(t_env)
        ratios.append(t_env / t_bare)
        shares.append(1.0 - t_env / t_val)
    result = {
        "preset": args.preset,
        "repeats": args.repeats,
        "iterations_per_episode": base.total_iterations,
        "bare_seconds": summarise(bare_times),
        "env_seconds": summarise(env_times),
        "overhead_ratio": summarise(ratios),
        "validation_reward_share": summarise(shares),
    }
    o, s = result["overhead_ratio"], result["validation_reward_share"]
    print(f"preset={args.preset} repeats={args.repeats} iterations={base.total_iterations}")
    print(f"bare loop  median {result['bare_seconds']['median']:.4f} s per episode")
    print(f"env.step   median {result['env_seconds']['median']:.4f} s per episode")
    print(f"overhead ratio env/bare: median {o['median']:.4f} (IQR {o['q1']:.4f}-{o['q3']:.4f}, "
          f"min {o['min']:.4f}, max {o['max']:.4f})  target <= 1.02")
    print(f"validation-reward share of episode time: median {100 * s['median']:.1f}% "
          f"(IQR {100 * s['q1']:.1f}-{100 * s['q3']:.1f}%)  target <= 10%")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
