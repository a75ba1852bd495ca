"""Reward signal to noise: the paired reward against ``val_delta``, side by side; reset costs.

1. Returns: on one task (``--preset``, default ``default``), for each of ``--seeds`` episode
   seeds and each policy (uniform, DUS-H, and the fixed extreme skew toward the weak modality
   of docs/RESULTS.md), one episode under ``val_delta`` and one under ``paired``. Same seeds,
   same actions: the two returns differ only by the reward. Reported per policy and reward:
   mean return with its 95% t-interval and the std over seeds; per policy the std ratio
   val_delta / paired (target >= 3 for DUS-H and the skew; uniform's paired return is 0 by
   construction). Done for each ``--val-subsets`` size of the fixed validation subset both
   rewards read (the preset's 500 rows, and 0: the whole validation split).
2. Cost: with the reference curves in memory (warm), episodes of both rewards alternated seed
   by seed; median time ratio paired / val_delta (target <= 1.1), and the cold cost (one
   reference run) for comparison.
3. Reset cost of DUS-v1 per suite: ``reset`` over the suite's training tasks with the dataset
   cache cleared before every reset (cold) against the same resets with the cache filled
   (warm); medians.

    python -m benchmarks.paired_reward            # default preset, 20 seeds (about 6 minutes)
    python -m benchmarks.paired_reward --smoke    # tiny preset, seconds
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from benchmarks import common
from dus_agents.heuristic import HeuristicPolicy
from dus_agents.cli.common import check_at_least, check_option, comma_list
from dus_env.env import DUSEnv
from dus_env.errors import UsageError

POLICIES: tuple[str, ...] = ("uniform", "heuristic", "skew")


@dataclasses.dataclass
class Args(common.BenchArgs):
    preset: str = "default"
    """Env preset of the return comparison."""
    seeds: int = 20
    """Episode seeds per policy and reward (seeds 0..N-1)."""
    skew: str = "0,4"
    """The fixed extreme skew's grid indices, one per modality (default: 0.5x / 2x, toward the
    weak modality of the default preset)."""
    val_subsets: str = "500,0"
    """Comma list of reward.val_subset_size values compared (0: the whole validation split);
    the cost is measured on the first."""
    suites: str = "synthetic-mix,mfeat-views"
    """Comma list of suites whose reset cost is measured."""
    resets: int = 24
    """Resets per suite and arm (cold, warm)."""

    SMOKE: ClassVar[dict[str, Any]] = {"preset": "tiny", "seeds": 3, "suites": "tiny",
                                        "resets": 4, "val_subsets": "0"}


def _policy(name: str, env: DUSEnv, skew: tuple[int, ...]):
    if name == "heuristic":
        return HeuristicPolicy.for_env(env)
    fixed = env.uniform_action if name == "uniform" else np.asarray(skew, dtype=np.int64)

    class Fixed:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return fixed.copy(), state
    return Fixed()


def episode(env: DUSEnv, policy: Any, seed: int) -> tuple[float, float]:
    """(return, seconds) of one episode."""
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, reward, done, _, _ = env.step(action)
        total += reward
    return total, time.perf_counter() - start


def _integers(flag: str, value: str, items: list[str], low: int, high: int | None,
              valid: str) -> list[int]:
    """``items`` (of ``flag=value``) as integers in ``[low, high]``, or a :class:`UsageError`
    naming the flag, the value, the item and ``valid`` (what the flag takes)."""
    out = []
    for item in items:
        try:
            number = int(item)
        except ValueError:
            raise UsageError(f"{flag}={value!r}: {item!r} is not an integer; valid: "
                             f"{valid}") from None
        if number < low or (high is not None and number > high):
            raise UsageError(f"{flag}={value!r}: {number} is out of range; valid: {valid}")
        out.append(number)
    return out


def check_lists(args: Args) -> tuple[tuple[int, ...], list[int], list[str]]:
    """(``--skew``, ``--val-subsets``, ``--suites``) parsed and checked against the preset and
    the suites before any episode runs: a :class:`UsageError` naming the flag, the value and
    the valid choices or range otherwise."""
    from dus_env.config import get_preset
    from dus_env.suites import SUITES

    config = get_preset(args.preset)
    modalities, grid = list(config.modalities), list(config.sampler.multipliers)
    items = [v.strip() for v in args.skew.split(",")]  # one per modality, repeats allowed
    if len(items) != len(modalities):
        raise UsageError(f"--skew={args.skew!r} needs one grid index per modality of preset "
                         f"{args.preset!r} ({len(modalities)}: {modalities})")
    skew = tuple(_integers("--skew", args.skew, items, 0, len(grid) - 1,
                           f"integers in [0, {len(grid) - 1}] (indices into "
                           f"sampler.multipliers={grid})"))
    subsets = _integers("--val-subsets", args.val_subsets,
                        comma_list("--val-subsets", args.val_subsets), 0, None,
                        "a comma list of integers >= 0 (0: the whole validation split)")
    suites = comma_list("--suites", args.suites)
    for suite in suites:
        check_option("--suites", suite, SUITES)
    return skew, subsets, suites


def returns_and_cost(args: Args, subset: int) -> dict[str, Any]:
    from dus_env import reference

    skew = check_lists(args)[0]
    envs = {"val_delta": DUSEnv(preset=args.preset,
                                config={"reward": {"val_subset_size": subset}}),
            "paired": DUSEnv(preset=args.preset, config={"reward": {
                "name": "paired", "val_subset_size": subset}})}
    seeds = list(range(args.seeds))
    reference.clear_memory()
    cold: list[float] = []
    values: dict[str, dict[str, list[float]]] = {p: {"val_delta": [], "paired": []}
                                                 for p in POLICIES}
    for seed in seeds:  # the first paired episode of a seed also runs its reference
        for name in POLICIES:
            for reward, env in envs.items():
                ret, seconds = episode(env, _policy(name, env, skew), seed)
                values[name][reward].append(ret)
                if reward == "paired" and env.reference_source == "computed":
                    cold.append(seconds)
    warm: dict[str, list[float]] = {"val_delta": [], "paired": []}
    for i, seed in enumerate(seeds):  # every curve is in memory now: alternate the order
        order = list(envs) if i % 2 == 0 else list(reversed(envs))
        for reward in order:
            env = envs[reward]
            warm[reward].append(episode(env, _policy("heuristic", env, skew), seed)[1])
    per_policy = {}
    for name in POLICIES:
        entry = {reward: {**common.mean_ci(v), "values": v} for reward, v in values[name].items()}
        sd_v, sd_p = entry["val_delta"]["std"], entry["paired"]["std"]
        entry["std_ratio_val_delta_over_paired"] = (sd_v / sd_p if sd_v is not None and sd_p
                                                    else None)
        per_policy[name] = entry
    ratios = [p / v for p, v in zip(warm["paired"], warm["val_delta"])]
    return {
        "preset": args.preset, "seeds": seeds, "skew": list(skew), "val_subset_size": subset,
        "validation_rows": len(envs["paired"]._val_indices if envs["paired"]._val_indices
                               is not None else envs["paired"]._val_split),
        "returns": per_policy,
        "cost": {
            "warm_seconds": {r: common.median_spread(t) for r, t in warm.items()},
            "warm_ratio_paired_over_val_delta": common.median_spread(ratios),
            "cold_paired_seconds": common.median_spread(cold) if cold else None,
        },
    }


def reset_costs(args: Args) -> dict[str, Any]:
    from dus_env.data import clear_dataset_cache
    from dus_env.env_v1 import DUSEnvV1

    out = {}
    for suite in check_lists(args)[2]:
        env = DUSEnvV1(suite=suite)
        arms: dict[str, list[float]] = {"cold": [], "warm": []}
        names = [t.name for t in env._pool]
        for i in range(args.resets):  # one cold reset, then the same reset warm
            task = names[i % len(names)]
            env._use_task(env._by_name[names[(i + 1) % len(names)]])  # leave the task
            clear_dataset_cache()
            start = time.perf_counter()
            env.reset(seed=i, options={"task": task})
            arms["cold"].append(time.perf_counter() - start)
            env._use_task(env._by_name[names[(i + 1) % len(names)]])
            start = time.perf_counter()
            env.reset(seed=i, options={"task": task})
            arms["warm"].append(time.perf_counter() - start)
        out[suite] = {arm: common.median_spread(t) for arm, t in arms.items()}
        out[suite]["speedup_cold_over_warm"] = common.median_spread(
            [c / w for c, w in zip(arms["cold"], arms["warm"])])
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    check_at_least("--seeds", args.seeds, 2)
    check_at_least("--resets", args.resets, 1)
    subsets = check_lists(args)[1]
    common.setup(args)
    result = {"machine": common.machine_info(), "command": sys.argv,
              "by_subset": [returns_and_cost(args, s) for s in subsets],
              "reset": reset_costs(args)}
    result["rewards"] = result["by_subset"][0]
    for rewards in result["by_subset"]:
        print(f"preset={args.preset} seeds={args.seeds} validation rows "
              f"{rewards['validation_rows']}: episode return, mean [95% CI] (std)")
        for name, entry in rewards["returns"].items():
            cells = []
            for reward in ("val_delta", "paired"):
                e = entry[reward]
                cells.append(f"{reward} {e['mean']:.2f} [{_f(e['ci_low'])}, "
                             f"{_f(e['ci_high'])}] (std {_f(e['std'])})")
            ratio = entry["std_ratio_val_delta_over_paired"]
            print(f"  {name:9s} " + "  ".join(cells) + f"  std ratio {_f(ratio)}")
    rewards = result["rewards"]
    cost = rewards["cost"]["warm_ratio_paired_over_val_delta"]
    print(f"cost per episode, warm reference cache: paired / val_delta median "
          f"{cost['median']:.3f} (IQR {cost['q1']:.3f}-{cost['q3']:.3f})  target <= 1.1")
    for suite, entry in result["reset"].items():
        print(f"reset {suite}: cold median {entry['cold']['median'] * 1e3:.1f} ms, warm "
              f"{entry['warm']['median'] * 1e3:.1f} ms (x{entry['speedup_cold_over_warm']['median']:.1f})")
    common.write_json(args.out, result)
    if args.smoke:
        print("smoke ok")
    return result


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(common.run(main))
