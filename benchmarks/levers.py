"""Why does (or doesn't) DUS beat uniform on a preset?  Validation-only lever screen.

Each arm is one configuration of (env overrides, policy); every arm runs the same tuning seeds
(disjoint from the seeds ``benchmarks.quality`` reports on test), through the same machinery
as ``dus-evaluate`` (``dus_agents.evaluation.run_selected`` runs the episode and keeps the
best-validation weights; ``dus_agents.rollout.run_episode`` drives the policy). Each run is
scored on the **validation split only** (full split: fused accuracy, per-modality head
accuracy, linear probe of every encoder), and every arm is compared with its matching uniform
arm (same env overrides), paired by seed. The test split is never read here: this is where
design decisions (loss reduction, heuristic settings, monitor averaging) are made.

Arms (``--arms`` selects a comma list; the default is ``DEFAULT_ARMS``):

* ``<variant>/<policy>`` with variant in ``mean`` (preset as is), ``base_sum``
  (``trainer.loss_reduction='base_sum'``), ``ema`` (``monitor.average='ema'``), ``free``
  (``sampler.budget='free'``), ``wide`` (action grid down to 0.25 n_b and ``min_batch_size``
  n_b/4, so a skew can go further than the presets' n_b/2 floor) and policy in ``uniform``,
  ``heuristic`` (library defaults), ``heuristic_g2`` (gamma 2), ``heuristic_g2_w0`` (gamma 2,
  no warm-up), ``skew`` (a fixed action: the weak modality at the top of the grid, every other
  modality at the bottom; renormalised to the budget), ``skew_early`` / ``skew_late`` (that
  action in the first / second half of the run, uniform in the other), ``ppo=PATH`` (a saved
  PPO policy), ``alone`` (the ``unimodal`` host, uniform sampling: the weak modality trained
  alone).

    python -m benchmarks.levers --seeds 100-119 --out results/levers/levers.json
    python -m benchmarks.levers --smoke
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import common
from dus_agents.evaluation.runs import run_selected
from dus_agents.evaluation.stats import paired_difference, t_interval
from dus_agents.evaluation.sweep import parse_seeds
from dus_agents.heuristic import HeuristicPolicy, UniformPolicy
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.env import DUSEnv
from dus_env.errors import UsageError

LOG = common.logger("levers")

VARIANTS: dict[str, dict[str, Any]] = {
    "mean": {},
    "base_sum": {"trainer": {"loss_reduction": "base_sum"}},
    "ema": {"monitor": {"average": "ema"}},
    "free": {"sampler": {"budget": "free"}},
    "wide": {"sampler": {"min_batch_size": 16, "multipliers": [0.25, 0.5, 1.0, 1.5, 2.0]}},
}
POLICIES: tuple[str, ...] = ("uniform", "heuristic", "skew", "skew_early", "skew_late", "alone",
                             "ppo")
"""``ppo`` is written ``ppo=PATH``: a saved PPO policy replayed deterministically."""
"""Arm policies; ``heuristic`` also takes settings: ``heuristic_g2_w0`` = gamma 2, warm-up 0."""
DEFAULT_ARMS = ("mean/uniform,mean/heuristic,mean/heuristic_g2,mean/heuristic_w0,"
                "mean/heuristic_g2_w0,mean/heuristic_g3_w0,mean/skew,mean/alone,"
                "base_sum/uniform,base_sum/heuristic,base_sum/heuristic_g2_w0,base_sum/skew,"
                "ema/uniform,ema/heuristic")


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.levers``."""

    preset: str = "default"
    """Env preset."""
    host: str = "joint"
    """Host method."""
    seeds: str = "100-119"
    """Tuning seeds, disjoint from the reported ones."""
    arms: str = DEFAULT_ARMS
    """Comma list of variant/policy arms."""
    weak: str = ""
    """Weak modality (empty: the last one)."""
    probe_max_train: int = 5000
    """Training rows of the linear probes."""

    SMOKE = {"preset": "tiny", "seeds": "0-1", "probe_max_train": 256,
             "arms": "mean/uniform,mean/heuristic,mean/alone"}


class ScheduledPolicy:
    """``action`` while training progress is in ``[start, stop)``, uniform otherwise (does a
    time-varying allocation beat a fixed one?)."""

    def __init__(self, env: DUSEnv, action: np.ndarray, start: float, stop: float) -> None:
        self.layout, self.action = env.layout, np.asarray(action, dtype=np.int64)
        self.uniform = np.asarray(env.uniform_action, dtype=np.int64)
        self.start, self.stop = start, stop

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        progress = float(self.layout.decode(np.asarray(observation))["progress"].reshape(-1)[0])
        on = self.start <= progress < self.stop
        return (self.action if on else self.uniform).copy(), state


class FixedPolicy:
    """Always the same action (for the lever's upper bound at this budget)."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action, dtype=np.int64)

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.asarray(observation)
        if obs.ndim == 1:
            return self.action.copy(), state
        return np.tile(self.action, (obs.shape[0], 1)), state


def weak_index(env: DUSEnv, weak: str | None) -> int:
    mods = list(env.modalities)
    return mods.index(weak) if weak else len(mods) - 1


def heuristic_settings(name: str) -> dict[str, float]:
    """``heuristic_g2_w0.05`` -> {"gamma": 2.0, "warmup": 0.05}; plain ``heuristic``: {}."""
    keys = {"g": "gamma", "w": "warmup"}
    out = {}
    for part in name.split("_")[1:]:
        if part[:1] not in keys:
            raise ValueError(f"heuristic arm {name!r}: {part!r} is not g<gamma> or w<warmup>")
        out[keys[part[0]]] = float(part[1:])
    return out


def make_arm_policy(name: str, env: DUSEnv, weak: int):
    if name in ("uniform", "alone"):
        return UniformPolicy.for_env(env)
    if name.startswith("heuristic"):
        return HeuristicPolicy.for_env(env, **heuristic_settings(name))
    if name.startswith("ppo="):
        from dus_agents.registry import make_policy

        return make_policy("ppo:" + name[len("ppo="):], env)
    if name.startswith("skew"):
        k = len(env.config.sampler.multipliers)
        action = np.zeros(len(env.modalities), dtype=np.int64)
        action[weak] = k - 1
        if name == "skew_early":
            return ScheduledPolicy(env, action, 0.0, 0.5)
        if name == "skew_late":
            return ScheduledPolicy(env, action, 0.5, 1.01)
        return FixedPolicy(action)
    raise ValueError(f"unknown arm policy {name!r}; choices: {list(POLICIES)}")


def run_arm_seed(env: DUSEnv, policy, seed: int, probe_max_train: int) -> dict[str, Any]:
    start = time.perf_counter()
    episode, _ = run_selected(env, policy, seed)
    trainer, dataset = env.trainer, env.dataset
    val = trainer.evaluate(dataset.split("val"))
    probes = trainer.probe_accuracy(dataset, "val", max_train=probe_max_train)
    last = episode.infos[-1]
    return {
        "seed": seed, "val_accuracy": val.accuracy, "val_macro_f1": val.macro_f1,
        **{f"val_acc_{m}": v for m, v in val.modality_accuracy.items()},
        **{f"val_probe_{m}": v for m, v in probes.items()},
        **{f"samples_{m}": int(v) for m, v in last["samples_consumed"].items()},
        "mean_batch_sizes": {m: float(np.mean([i["batch_sizes"][m] for i in episode.infos[1:]]))
                             for m in env.modalities},
        "diverged": bool(episode.diverged), "seconds": time.perf_counter() - start,
    }


def summarise(arms: dict[str, list[dict[str, Any]]], modalities: list[str],
              weak: str) -> dict[str, Any]:
    metrics = ["val_accuracy", *[f"val_probe_{m}" for m in modalities],
               *[f"val_acc_{m}" for m in modalities]]
    out: dict[str, Any] = {}
    for arm, runs in arms.items():
        variant, _, policy = arm.partition("/")
        entry: dict[str, Any] = {
            "n": len(runs),
            "metrics": {m: t_interval([r[m] for r in runs]).as_dict() for m in metrics},
            "samples": {m: float(np.mean([r[f"samples_{m}"] for r in runs])) for m in modalities},
            "mean_batch_sizes": {m: float(np.mean([r["mean_batch_sizes"][m] for r in runs]))
                                 for m in modalities},
        }
        # every variant leaves uniform training unchanged (base_sum: all batches are n_b, so
        # sum / n_b is the mean; ema: the monitor does not steer uniform; wide / free: uniform
        # asks for n_b), so a variant without its own uniform arm is paired with mean/uniform
        base = arms.get(f"{variant}/uniform") or arms.get("mean/uniform")
        if base is not None and policy != "uniform":
            entry["vs_uniform"] = {
                m: paired_difference({r["seed"]: r[m] for r in runs},
                                     {r["seed"]: r[m] for r in base}).as_dict()
                for m in metrics
            }
        alone = arms.get(f"{variant}/alone") or arms.get("mean/alone")
        if base is not None and alone is not None and policy not in ("uniform", "alone"):
            key = f"val_probe_{weak}"
            gap = np.mean([a[key] for a in alone]) - np.mean([b[key] for b in base])
            gain = np.mean([r[key] for r in runs]) - np.mean([b[key] for b in base])
            entry["weak_probe_gap"] = float(gap)
            entry["weak_probe_gap_closed"] = float(gain / gap) if gap > 0 else None
        out[arm] = entry
    return out


def report(result: dict[str, Any]) -> str:
    weak = result["weak"]
    lines = [f"preset={result['preset']} host={result['host']} seeds={result['seeds']} "
             f"weak={weak} (validation split; points, mean ± 95% CI half-width)"]
    for arm, e in result["summary"].items():
        acc = e["metrics"]["val_accuracy"]
        probe = e["metrics"][f"val_probe_{weak}"]
        line = (f"  {arm:22s} acc {100 * acc['mean']:6.2f}  weak probe {100 * probe['mean']:6.2f}"
                f"  sizes " + "/".join(f"{v:.0f}" for v in e["mean_batch_sizes"].values()))
        if "vs_uniform" in e:
            d = e["vs_uniform"]["val_accuracy"]
            p = e["vs_uniform"][f"val_probe_{weak}"]
            line += (f"  Δacc {100 * d['mean']:+.2f} ± {100 * (d['half_width'] or math.nan):.2f}"
                     f"  Δprobe {100 * p['mean']:+.2f} ± {100 * (p['half_width'] or math.nan):.2f}")
        if e.get("weak_probe_gap_closed") is not None:
            line += f"  gap closed {100 * e['weak_probe_gap_closed']:.0f}%"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = common.parse(Args, argv)
    arms_wanted = comma_list("--arms", args.arms)
    for arm in arms_wanted:
        variant, _, policy = arm.partition("/")
        base_policy = ("heuristic" if policy.startswith("heuristic")
                       else "ppo" if policy.startswith("ppo=") else policy)
        if variant not in VARIANTS or base_policy not in POLICIES:
            raise UsageError(f"--arms: {arm!r} is not variant/policy with variant in "
                             f"{list(VARIANTS)} and policy in {list(POLICIES)}")
    check_at_least("--probe-max-train", args.probe_max_train, 1)
    common.setup(args)
    seeds = parse_seeds(args.seeds)
    arms: dict[str, list[dict[str, Any]]] = {}
    modalities: list[str] = []
    weak = ""
    for arm in arms_wanted:
        variant, _, policy = arm.partition("/")
        overrides = json.loads(json.dumps(VARIANTS[variant]))
        host = "unimodal" if policy == "alone" else args.host
        overrides.setdefault("trainer", {})["host"] = host
        env = DUSEnv(config=overrides, preset=args.preset)
        modalities = list(env.modalities)
        w = weak_index(env, args.weak or None)
        weak = modalities[w]
        arms[arm] = []
        for seed in seeds:
            arms[arm].append(run_arm_seed(env, make_arm_policy(policy, env, w), seed,
                                          args.probe_max_train))
        LOG.info("arm %s done", arm)
    result = {"preset": args.preset, "host": args.host, "seeds": seeds, "weak": weak,
              "modalities": modalities, "arms": arms,
              "summary": summarise(arms, modalities, weak)}
    text = common.write_json(args.out, result, default=lambda o: None)
    print(report(result))
    if args.smoke:
        parsed = json.loads(text)
        assert set(parsed["summary"]) == set(arms_wanted)
        print("smoke ok")
    return result


if __name__ == "__main__":
    sys.exit(common.run(main))
