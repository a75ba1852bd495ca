"""Two-view Fashion-MNIST with small CNNs from scratch: the imbalance, the lever, the policies.

1. ``noise``: for each ``--noises`` level of view 2 (``noisy``), the weak view's linear probe
   under joint training with uniform sampling against the same view trained alone (host
   ``unimodal``), on the *validation* split, ``--choose-seeds`` seeds; the level chosen is the
   smallest whose mean gap is at least 3 points (else the one with the largest gap, reported).
2. ``imbalance``: at the chosen level, that gap on validation and test, ``--seeds`` seeds.
3. ``lever``: fixed skews at equal budget (toward the noisy view 0.5x / 2x, and the reverse)
   against uniform: weak-view probe and fused test accuracy, paired by seed.
4. ``policies``: uniform, DUS-H (full resolution), the PPO trained on ``default``
   (``--ppo-default``, a DUS-v0 policy read positionally) and the generalist
   (``--generalist``, DUS-v1) on the joint, MLA and OGM-GE hosts, ``--policy-seeds`` seeds:
   test accuracy, paired 95% CIs against uniform.
5. ``cost``: one uniform episode's wall time split into data (sampler), forward/backward
   (train steps) and validation.

    python -m benchmarks.fashion --out results/fashion.json     # about 40 minutes
    python -m benchmarks.fashion --smoke                        # a generated fixture
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from benchmarks import common
from dus_agents.evaluation.runs import run_one
from dus_agents.evaluation.stats import paired_difference, t_interval
from dus_agents.heuristic import HeuristicPolicy, UniformPolicy
from dus_agents.cli.common import comma_list
from dus_env.config import config_from_dict, get_preset


A = TypeVar("A", bound="common.BenchArgs")


@dataclasses.dataclass
class Args(common.BenchArgs):
    noises: str = "0.4,0.6,0.8,1.0,1.2"
    """Noise levels (std on [0, 1] pixels) of view 2 screened on validation."""
    choose_seeds: int = 3
    """Seeds per level in the noise screen (validation only)."""
    seeds: int = 5
    """Seeds of the imbalance and lever measurements."""
    policy_seeds: int = 10
    """Seeds per policy and host."""
    hosts: str = "joint,mla,ogm_ge"
    """Hosts of the policy comparison."""
    ppo_default: str = ""
    """A DUS-v0 PPO artefact trained on the default preset (empty: left out)."""
    generalist: str = "pretrained"
    """The generalist: pretrained, a DUS-v1 artefact path, or empty (left out)."""
    root: str = ""
    """Fashion-MNIST folder (empty: the reader's default search)."""
    probe_max_train: int = 2000
    """Training rows of the linear probes."""

    SMOKE: ClassVar[dict[str, Any]] = {"noises": "0.6", "choose_seeds": 2, "seeds": 2,
                                        "policy_seeds": 2, "hosts": "joint", "generalist": ""}


def _config(args: Args, noise: float, host: str, **extra: Any):
    overrides: dict[str, Any] = {"data": {"noise": noise}, "trainer": {"host": host}}
    if args.root:
        overrides["data"]["root"] = args.root
    for key, value in extra.items():
        overrides.setdefault(key, {}).update(value)
    return config_from_dict(overrides, base=get_preset("fashion"))


def _env(config, layout: str = "v0"):
    from dus_env.env import DUSEnv
    from dus_env.env_v1 import DUSEnvV1

    return DUSEnvV1(config=config, permute_modalities=False) if layout == "v1" else \
        DUSEnv(config=config)


def _run(env, policy, seed: int, args: Args, split: str = "test") -> dict[str, float]:
    """Test (or validation) metrics and probes of one run."""
    from dus_agents.evaluation.runs import run_selected

    if split == "test":
        row, _ = run_one(env, "p", "fashion", seed, args.probe_max_train, policy=policy)
        return {k: float(v) for k, v in row.items() if k.startswith(("acc", "probe_"))}
    run_selected(env, policy, seed)
    probes = env.trainer.probe_accuracy(env.dataset, "val", max_train=args.probe_max_train)
    stats = env.trainer.evaluate(env.dataset.split("val"))
    return {"accuracy": stats.accuracy, **{f"probe_{m}": v for m, v in probes.items()}}


def noise_screen(args: Args) -> dict[str, Any]:
    levels = [float(v) for v in comma_list("--noises", args.noises)]
    out = {}
    for noise in levels:
        joint, alone = _env(_config(args, noise, "joint")), _env(_config(args, noise, "unimodal"))
        gaps, jv, av = [], [], []
        for seed in range(100, 100 + args.choose_seeds):  # tuning seeds: never reported
            j = _run(joint, UniformPolicy.for_env(joint), seed, args, "val")["probe_noisy"]
            a = _run(alone, UniformPolicy.for_env(alone), seed, args, "val")["probe_noisy"]
            gaps.append(100 * (a - j))
            jv.append(j)
            av.append(a)
        out[str(noise)] = {"gap_points": common.mean_ci(gaps), "joint_probe": float(np.mean(jv)),
                           "alone_probe": float(np.mean(av))}
    meeting = [n for n in levels if out[str(n)]["gap_points"]["mean"] >= 3.0]
    chosen = min(meeting) if meeting else max(levels, key=lambda n: out[str(n)]["gap_points"]
                                               ["mean"])
    return {"levels": out, "chosen": chosen, "target_met": bool(meeting)}


def imbalance(args: Args, noise: float) -> dict[str, Any]:
    out = {}
    joint, alone = _env(_config(args, noise, "joint")), _env(_config(args, noise, "unimodal"))
    for split in ("val", "test"):
        j = {s: _run(joint, UniformPolicy.for_env(joint), s, args, split)["probe_noisy"]
             for s in range(args.seeds)}
        a = {s: _run(alone, UniformPolicy.for_env(alone), s, args, split)["probe_noisy"]
             for s in range(args.seeds)}
        out[split] = {"joint": t_interval(j.values()).as_dict(),
                      "alone": t_interval(a.values()).as_dict(),
                      "gap_alone_minus_joint_points": paired_difference(
                          {s: 100 * v for s, v in a.items()},
                          {s: 100 * v for s, v in j.items()}).as_dict()}
    return out


class _Fixed:
    def __init__(self, action) -> None:
        self.action = np.asarray(action, dtype=np.int64)

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return self.action.copy(), state


def lever(args: Args, noise: float) -> dict[str, Any]:
    env = _env(_config(args, noise, "joint"))
    arms = {"uniform": [2, 2], "skew_to_noisy": [0, 4], "skew_to_rotated": [4, 0]}
    runs = {name: {s: _run(env, _Fixed(a), s, args) for s in range(args.seeds)}
            for name, a in arms.items()}
    out = {}
    for name in ("skew_to_noisy", "skew_to_rotated"):
        out[name] = {metric: paired_difference(
            {s: 100 * r[metric] for s, r in runs[name].items()},
            {s: 100 * r[metric] for s, r in runs["uniform"].items()}).as_dict()
            for metric in ("accuracy", "probe_noisy", "probe_rotated")}
    return out


def policies(args: Args, noise: float) -> dict[str, Any]:
    from dus_agents.ppo import PPOPolicy
    from dus_agents.registry import make_policy

    out = {}
    for host in comma_list("--hosts", args.hosts):
        config = _config(args, noise, host)
        envs = {"v0": _env(config), "full": _env(_config(args, noise, host,
                                                           sampler={"action": "multipliers"})),
                "v1": _env(config, "v1")}
        chosen: dict[str, tuple[Any, Any]] = {
            "uniform": (envs["v0"], UniformPolicy.for_env(envs["v0"])),
            "heuristic": (envs["full"], HeuristicPolicy.for_env(envs["full"]))}
        if args.ppo_default:
            chosen["ppo-default"] = (envs["v0"], PPOPolicy.load(args.ppo_default))
        if args.generalist:
            spec = "pretrained" if args.generalist == "pretrained" else f"ppo:{args.generalist}"
            chosen["generalist"] = (envs["v1"], make_policy(spec, envs["v1"]))
        acc = {name: {s: _run(env, pol, s, args)["accuracy"] for s in range(args.policy_seeds)}
               for name, (env, pol) in chosen.items()}
        out[host] = {name: {"accuracy": t_interval(v.values()).as_dict(),
                            **({"vs_uniform_points": paired_difference(
                                {s: 100 * x for s, x in v.items()},
                                {s: 100 * x for s, x in acc["uniform"].items()}).as_dict()}
                               if name != "uniform" else {})}
                     for name, v in acc.items()}
    return out


def cost(args: Args, noise: float) -> dict[str, Any]:
    env = _env(_config(args, noise, "joint"))
    spent = {"data": 0.0, "train_step": 0.0, "validation": 0.0}
    env.reset(seed=0)
    trainer, sampler = env.trainer, env._sampler

    def timed(name, fn):
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    sampler.next_batch = timed("data", sampler.next_batch)
    trainer.train_step = timed("train_step", trainer.train_step)
    trainer.evaluate = timed("validation", trainer.evaluate)
    start, done = time.perf_counter(), False
    while not done:
        _, _, done, _, _ = env.step(env.uniform_action)
    total = time.perf_counter() - start
    return {"episode_seconds": total, **{f"{k}_seconds": v for k, v in spent.items()},
            "other_seconds": total - sum(spent.values()),
            "iterations": env.config.total_iterations}


def markdown(result: dict[str, Any]) -> str:
    def ci(d):
        return "n/a" if d.get("mean") is None or d.get("low") is None else \
            f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"

    lines = ["## Real pixels on CPU: two-view Fashion-MNIST", "",
             f"`{common.command_line(result['command'])}`. Preset `fashion`: two small CNNs from scratch, "
             "view 1 the image rotated, view 2 another image of the same class plus noise.", "",
             "Noise screen (validation, tuning seeds 100+; weak-view probe alone minus under "
             "joint training with uniform sampling, points):", "",
             "| noise | joint probe | alone probe | gap |", "|---|---|---|---|"]
    for noise, e in result["noise"]["levels"].items():
        g = e["gap_points"]
        low = "n/a" if g["ci_low"] is None else f"{g['ci_low']:.2f}"
        high = "n/a" if g["ci_high"] is None else f"{g['ci_high']:.2f}"
        lines.append(f"| {noise} | {100 * e['joint_probe']:.2f} | {100 * e['alone_probe']:.2f} | "
                     f"{g['mean']:.2f} [{low}, {high}] |")
    lines += ["", f"Chosen: noise {result['noise']['chosen']} (target gap >= 3 points "
                  f"{'met' if result['noise']['target_met'] else 'missed at every level'}).", ""]
    for split, e in result["imbalance"].items():
        lines.append(f"- imbalance on {split} ({len(result['seeds'])} seeds): joint probe "
                     f"{100 * e['joint']['mean']:.2f}, alone {100 * e['alone']['mean']:.2f}, gap "
                     f"{ci(e['gap_alone_minus_joint_points'])}")
    lines += ["", "Lever at equal budget (test, paired vs uniform, points):", "",
              "| arm | fused accuracy | probe noisy | probe rotated |", "|---|---|---|---|"]
    for arm, e in result["lever"].items():
        lines.append(f"| {arm} | {ci(e['accuracy'])} | {ci(e['probe_noisy'])} | "
                     f"{ci(e['probe_rotated'])} |")
    lines += ["", "Policies (test accuracy, paired difference to uniform in points):", "",
              "| host | policy | accuracy | vs uniform |", "|---|---|---|---|"]
    for host, e in result["policies"].items():
        for name, p in e.items():
            lines.append(f"| {host} | {name} | {100 * p['accuracy']['mean']:.2f} | "
                         f"{ci(p.get('vs_uniform_points', {}))} |")
    c = result["cost"]
    lines += ["", f"Episode cost (uniform, joint): {c['episode_seconds']:.1f} s for "
                  f"{c['iterations']} iterations: data {c['data_seconds']:.1f} s, "
                  f"forward/backward {c['train_step_seconds']:.1f} s, validation "
                  f"{c['validation_seconds']:.1f} s, other {c['other_seconds']:.1f} s.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = smoke_setup(common.parse(Args, argv))
    common.setup(args)
    log = common.logger("fashion")
    result: dict[str, Any] = {"machine": common.machine_info(), "command": sys.argv,
                              "seeds": list(range(args.seeds))}
    result["noise"] = noise_screen(args)
    noise = result["noise"]["chosen"]
    log.info("chosen noise %s", noise)
    result["imbalance"] = imbalance(args, noise)
    result["lever"] = lever(args, noise)
    result["policies"] = policies(args, noise)
    result["cost"] = cost(args, noise)
    return finish(args, result, markdown)


def finish(args: common.BenchArgs, result: dict[str, Any],
           render: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Render ``result`` into its own ``markdown`` key, print it, write the JSON (``--out``)
    and, under ``--smoke``, say so."""
    result["markdown"] = render(result)
    print(result["markdown"])
    common.write_json(args.out, result)
    if args.smoke:
        print("smoke ok")
    return result


def smoke_setup(args: A) -> A:
    """Under ``--smoke``: a generated idx fixture (unless ``--root``) and a small ``fashion``
    preset (150 training images) in this process; otherwise ``args`` as given."""
    if not args.smoke:
        return args
    if not args.root:
        args = dataclasses.replace(args, root=_smoke_fixture())
    from dus_env.config.presets import PRESETS
    base = get_preset("fashion")
    small = base.replace(data=dataclasses.replace(base.data, n_train=150, val_size=40,
                                                  n_test=40, expect_canonical=False))
    PRESETS.add("fashion", lambda: small, PRESETS.describe("fashion"), overwrite=True)
    return args


def _smoke_fixture() -> str:
    """A tiny generated idx folder (the tests' fixture writer), removed when the process ends."""
    import atexit
    import gzip
    import shutil
    import struct

    folder = Path(tempfile.mkdtemp(prefix="dus_fashion_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 80)):
        labels = np.arange(n) % 10
        images = (rng.random((n, 28, 28)) * 80).astype(np.uint8)
        for i, y in enumerate(labels):
            images[i, 2 * y: 2 * y + 6, 4:24] = 255
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes())
    return str(folder)


if __name__ == "__main__":
    sys.exit(common.run(main))
