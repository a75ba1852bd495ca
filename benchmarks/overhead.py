"""Env overhead: DUSEnv.step against a bare PyTorch loop over the same engine, side by side.

(a) bare: ``trainer.train_step(sampler.next_batch(sizes))`` for ``total_iterations``
    iterations, with the trainer and sampler the env would build for the same seed;
(b) env: ``DUSEnv.step`` over a whole episode with the same batch sizes and the validation
    reward switched off (``reward.name='discrepancy'``, which reads no validation data);
(c) val: the same episode with the default validation reward (``val_delta``).

Two designs, both in every round, so a reader can see how much of the spread is the machine:

* episode-alternated: whole episodes of (a), (b), (c) one after another, in an order rotated
  every round; ratio b / a per round. Noise on a shared machine moves on the scale of whole
  episodes, so these ratios spread by several percent.
* step-interleaved: one episode of each, advanced together a step at a time (20 iterations of
  the bare loop, one ``env.step`` without and one with validation, order rotated every step);
  each arm's time is the sum of its own chunks, so all three see the same machine conditions.

The script prints the median ratio b / a (target <= 1.02) and the share of episode time the
default validation reward costs, 1 - time(b) / time(c) (target <= 10%), for both designs, with
their spread.

    python -m benchmarks.overhead              # default preset, 31 rounds (about 70 s)
    python -m benchmarks.overhead --smoke      # seconds; checks the output parses
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from gymnasium.utils import seeding

from benchmarks import common
from dus_agents.cli.common import check_at_least
from dus_env.config import RewardConfig, get_preset
from dus_env.data import make_dataset
from dus_env.env import DUSEnv
from dus_env.sampler import ModalitySampler, multipliers_to_batch_sizes
from dus_env.trainer import MMLTrainer


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.overhead``."""

    preset: str = "default"
    """Env preset to time."""
    repeats: int = 31
    """Rounds, each with both designs."""

    SMOKE = {"preset": "tiny", "repeats": 3}


def bare_runner(config, dataset, seed: int, action: np.ndarray) -> Callable[[int], None]:
    """``run(n)``: n iterations of a bare loop over a fresh trainer and sampler, built as the
    env builds them after ``reset(seed=seed)``."""
    model_seed, sampler_seed = DUSEnv.episode_seeds(seeding.np_random(seed)[0])
    trainer = MMLTrainer.build(config.trainer, config.model, dataset,
                               config.sampler.base_batch_size, model_seed, config.device)
    sampler = ModalitySampler(config.sampler, dataset.modalities, dataset.split("train"),
                              np.random.default_rng(sampler_seed),
                              fusion=trainer.host.use_fusion)
    sizes = multipliers_to_batch_sizes(action, config.sampler)

    def run(n: int) -> None:
        for _ in range(n):
            trainer.train_step(sampler.next_batch(sizes))

    return run


def bare_loop(config, dataset, seed: int, action: np.ndarray) -> float:
    run = bare_runner(config, dataset, seed, action)
    start = time.perf_counter()
    run(config.total_iterations)
    return time.perf_counter() - start


def env_episode(env: DUSEnv, seed: int, action: np.ndarray) -> float:
    env.reset(seed=seed)
    start = time.perf_counter()
    done = False
    while not done:
        _, _, done, _, _ = env.step(action)
    return time.perf_counter() - start


def rotated(names: list[str], k: int) -> list[str]:
    """``names`` starting at position ``k`` (mod its length), so no arm always runs first."""
    k %= len(names)
    return names[k:] + names[:k]


def interleaved_episodes(config, dataset, env_off: DUSEnv, env_on: DUSEnv, seed: int,
                         action: np.ndarray) -> dict[str, float]:
    """One episode of each arm, advanced a step at a time in a rotating order; the summed
    seconds of each arm's own chunks."""
    bare = bare_runner(config, dataset, seed, action)
    env_off.reset(seed=seed)
    env_on.reset(seed=seed)
    chunks = {
        "bare": lambda: bare(config.iters_per_step),
        "env": lambda: env_off.step(action),
        "val": lambda: env_on.step(action),
    }
    totals = dict.fromkeys(chunks, 0.0)
    for step in range(config.steps_per_episode):
        for name in rotated(list(chunks), step):
            start = time.perf_counter()
            chunks[name]()
            totals[name] += time.perf_counter() - start
    return totals


def summarise(values: list[float]) -> dict[str, float]:
    return common.median_spread(values, with_n=False)


def main(argv: Sequence[str] | None = None) -> dict:
    args = common.parse(Args, argv)
    check_at_least("--repeats", args.repeats, 1)
    common.setup(args)
    base = get_preset(args.preset)
    no_val = base.replace(reward=RewardConfig(name="discrepancy"))
    dataset = make_dataset(base.data)
    env_off, env_on = DUSEnv(config=no_val), DUSEnv(config=base)
    action = env_off.uniform_action
    episodes: dict[str, list[float]] = {"bare": [], "env": [], "val": []}
    interleaved: dict[str, list[float]] = {"bare": [], "env": [], "val": []}
    for r in range(args.repeats):
        seed = 1000 + r
        runs = {
            "bare": lambda: bare_loop(no_val, dataset, seed, action),
            "env": lambda: env_episode(env_off, seed, action),
            "val": lambda: env_episode(env_on, seed, action),
        }
        for name in rotated(list(runs), r):
            episodes[name].append(runs[name]())
        for name, seconds in interleaved_episodes(no_val, dataset, env_off, env_on, seed,
                                                  action).items():
            interleaved[name].append(seconds)

    def ratios(times: dict[str, list[float]]) -> tuple[list[float], list[float]]:
        overhead = [e / b for e, b in zip(times["env"], times["bare"])]
        share = [1.0 - e / v for e, v in zip(times["env"], times["val"])]
        return overhead, share

    overhead, share = ratios(episodes)
    overhead_i, share_i = ratios(interleaved)
    result = {
        "preset": args.preset,
        "repeats": args.repeats,
        "iterations_per_episode": base.total_iterations,
        "bare_seconds": summarise(episodes["bare"]),
        "env_seconds": summarise(episodes["env"]),
        "overhead_ratio": summarise(overhead),
        "validation_reward_share": summarise(share),
        "interleaved": {
            "bare_seconds": summarise(interleaved["bare"]),
            "env_seconds": summarise(interleaved["env"]),
            "overhead_ratio": summarise(overhead_i),
            "validation_reward_share": summarise(share_i),
        },
    }
    print(f"preset={args.preset} rounds={args.repeats} iterations={base.total_iterations}")
    for title, part in (("episode-alternated", result), ("step-interleaved", result["interleaved"])):
        o, v = part["overhead_ratio"], part["validation_reward_share"]
        print(f"{title}: bare loop median {part['bare_seconds']['median']:.4f} s, env.step "
              f"median {part['env_seconds']['median']:.4f} s per episode")
        print(f"  overhead ratio env/bare: median {o['median']:.4f} (IQR {o['q1']:.4f}-"
              f"{o['q3']:.4f}, min {o['min']:.4f}, max {o['max']:.4f})  target <= 1.02")
        print(f"  validation-reward share of episode time: median {100 * v['median']:.1f}% "
              f"(IQR {100 * v['q1']:.1f}-{100 * v['q3']:.1f}%)  target <= 10%")
    common.write_json(args.out, result, indent=2)
    if args.smoke:
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
