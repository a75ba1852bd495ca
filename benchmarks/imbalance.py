"""Does a preset show the modality-imbalance phenomenon, and does the sampling lever move it?

Three measurements, all built from the package API (``dus_env.config``, ``make_dataset``,
``MMLTrainer.build``, ``ModalitySampler``) with a plain loop of
``trainer.train_step(sampler.next_batch(sizes))``:

1. **Imbalance gap.** The joint host (unimodal CE per modality + concat-fusion CE) with uniform
   sampling versus the ``unimodal`` host (each modality trained alone on its own loss, no fusion),
   same iterations, same batch size, same seeds. Reported per modality: the linear-probe accuracy
   of the frozen encoder (``MMLTrainer.probe_accuracy``), the accuracy of the modality's own head,
   and the fused accuracy. The gap is ``alone - joint`` of the weak modality's probe accuracy,
   paired by seed, with its mean and 95% t-interval.
2. **Lever check.** The joint host with fixed per-modality batch sizes: uniform at 1.25 x n_b per
   modality versus skewed (weak 2 x n_b, strong 0.5 x n_b) and the reverse skew, all consuming
   2.5 x n_b unimodal samples per iteration (equal total samples); the fusion loss trains on a
   fixed paired batch of n_b in every arm (the sampler's default). Paired differences to uniform.
3. **Learning curves.** The weak modality trained alone (``unimodal`` host) at several batch sizes,
   its head's accuracy on the evaluation split at several iteration budgets: if accuracy still
   rises past the episode budget and with the batch size, the modality is learning-limited there.

The benchmark's sampler uses the preset's sampler config with the batch-size bounds widened (the
curves and lever arms may ask for sizes outside the env's action range); nothing else changes.
Model selection and design use ``--splits val``; report test numbers once (``--splits val,test``).

Examples::

    python -m benchmarks.imbalance                       # default preset, 5 seeds, val
    python -m benchmarks.imbalance --splits val,test --out imbalance.json
    python -m benchmarks.imbalance --smoke               # seconds; checks its own output
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.common import mean_ci
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.config import EnvConfig, config_to_dict, get_preset
from dus_env.data import make_dataset
from dus_env.errors import UsageError
from dus_env.sampler import ModalitySampler
from dus_env.trainer import MMLTrainer

LOG = common.logger("imbalance")


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.imbalance``: the modality-imbalance gap of a preset (joint host
    vs each modality trained alone), the fixed-skew sampling lever, and the weak modality's
    learning curves."""

    out: str = dataclasses.field(default="", metadata={"metavar": "PATH"})
    """Write the full results as JSON to this path; empty: print only."""
    preset: str = "default"
    """Name of a preset in dus_env.config.PRESETS."""
    seeds: int = 5
    """Number of training seeds (model init and sampling); the dataset is the preset's fixed
    one."""
    seed_offset: int = 0
    """First training seed; seeds are offset, offset+1, ..."""
    iterations: int = 0
    """Training iterations per run (0: the preset's total_iterations)."""
    splits: str = "val"
    """Comma-separated evaluation splits, from val and test; use val for design decisions and
    add test only for the final report."""
    weak: str = ""
    """Name of the weak modality (empty: the preset's last modality)."""
    skip_lever: bool = False
    """Skip the uniform-vs-skewed lever check."""
    skip_curves: bool = False
    """Skip the weak modality's learning curves."""
    curve_batch_sizes: str = "32,64,128"
    """Comma-separated per-modality batch sizes of the learning curves."""
    curve_budgets: str = "0.25,0.5,1,2,4"
    """Comma-separated iteration budgets of the learning curves, as multiples of the episode
    budget."""
    curve_seeds: int = 3
    """How many of the seeds the learning curves use."""
    verbose: bool = False
    """Progress messages on stderr."""

    SMOKE = {"preset": "tiny", "seeds": 1, "iterations": 20, "curve_batch_sizes": "8,16",
             "curve_budgets": "0.5,1", "curve_seeds": 1}


# --------------------------------------------------------------------------- one run
class Runner:
    """Trains fresh models on one preset's dataset and measures them."""

    def __init__(self, config: EnvConfig, iterations: int, splits: list[str]) -> None:
        self.config = config
        self.iterations = iterations
        self.splits = splits
        self.dataset = make_dataset(config.data)
        self.modalities = tuple(self.dataset.modalities)
        self.base = config.sampler.base_batch_size
        # Wide bounds: the benchmark asks for fixed sizes outside the env's action range too.
        self.sampler_config = dataclasses.replace(
            config.sampler, min_batch_size=1, max_batch_size=max(4 * self.base, 1)
        )

    def build(self, host: str, seed: int) -> tuple[MMLTrainer, ModalitySampler]:
        trainer_config = dataclasses.replace(self.config.trainer, host=host)
        trainer = MMLTrainer.build(trainer_config, self.config.model, self.dataset, self.base,
                                   seed, device=self.config.device)
        sampler = ModalitySampler(self.sampler_config, self.modalities,
                                  self.dataset.split("train"), np.random.default_rng([seed, 7]),
                                  fusion=trainer.host.use_fusion)
        return trainer, sampler

    def run(self, host: str, sizes: list[int], seed: int) -> dict[str, Any]:
        """Train ``iterations`` steps with fixed ``sizes``; evaluate and probe on every split."""
        trainer, sampler = self.build(host, seed)
        start = time.perf_counter()
        diverged = False
        for _ in range(self.iterations):
            diverged |= trainer.train_step(sampler.next_batch(sizes)).diverged
        train_s = time.perf_counter() - start
        out: dict[str, Any] = {
            "host": host, "seed": seed, "batch_sizes": dict(zip(self.modalities, sizes)),
            "samples_consumed": dict(sampler.samples_consumed), "diverged": diverged,
            "train_seconds": train_s,
        }
        for split in self.splits:
            ev = trainer.evaluate(self.dataset.split(split))
            start = time.perf_counter()
            probe = trainer.probe_accuracy(self.dataset, eval_split=split)
            out[split] = {"fused": ev.accuracy, "head": dict(ev.modality_accuracy),
                          "probe": probe}
            out["probe_seconds"] = time.perf_counter() - start
        return out

    def curve(self, modality_sizes: int, checkpoints: list[int], seed: int) -> dict[str, Any]:
        """Head accuracy of every modality trained alone at one batch size, at ``checkpoints``."""
        trainer, sampler = self.build("unimodal", seed)
        split = self.dataset.split(self.splits[0])
        sizes = [modality_sizes] * len(self.modalities)
        acc: dict[str, list[float]] = {m: [] for m in self.modalities}
        done = 0
        for stop in sorted(checkpoints):
            for _ in range(stop - done):
                trainer.train_step(sampler.next_batch(sizes))
            done = stop
            ev = trainer.evaluate(split)
            for m in self.modalities:
                acc[m].append(ev.modality_accuracy[m])
        return {"batch_size": modality_sizes, "iterations": sorted(checkpoints), "head": acc}


# --------------------------------------------------------------------------- experiments
def weak_strong(runner: Runner, weak: str | None) -> tuple[str, str]:
    """(weak, strong): the named weak modality, or the last one; strong is the first other."""
    mods = runner.modalities
    weak = weak or mods[-1]
    if weak not in mods:
        raise UsageError(f"--weak={weak!r} is not a modality of the preset; choices: {list(mods)}")
    strong = next(m for m in mods if m != weak)
    return weak, strong


def summarize_arms(arms: dict[str, list[dict]], reference: str, splits: list[str],
                   weak: str, strong: str) -> dict[str, Any]:
    """Per arm and split: mean/CI of each metric, and paired differences to ``reference``."""
    metrics = {
        "weak_probe": lambda r, s: r[s]["probe"][weak],
        "strong_probe": lambda r, s: r[s]["probe"][strong],
        "weak_head": lambda r, s: r[s]["head"][weak],
        "strong_head": lambda r, s: r[s]["head"][strong],
        "fused": lambda r, s: r[s]["fused"],
    }
    out: dict[str, Any] = {}
    for split in splits:
        out[split] = {}
        for arm, runs in arms.items():
            row = {k: mean_ci([f(r, split) for r in runs]) for k, f in metrics.items()}
            if arm != reference:
                row["diff_to_" + reference] = {
                    k: mean_ci([f(r, split) - f(q, split) for r, q in zip(runs, arms[reference])])
                    for k, f in metrics.items()
                }
            out[split][arm] = row
    return out


def run_benchmark(args: Args) -> dict[str, Any]:
    config = get_preset(args.preset)
    iterations = args.iterations or config.total_iterations
    splits = comma_list("--splits", args.splits)
    runner = Runner(config, iterations, splits)
    weak, strong = weak_strong(runner, args.weak or None)
    seeds = [args.seed_offset + i for i in range(args.seeds)]
    b = runner.base
    log = LOG.info
    result: dict[str, Any] = {
        "preset": args.preset, "config": config_to_dict(config), "iterations": iterations,
        "seeds": seeds, "splits": splits, "weak": weak, "strong": strong, "base_batch_size": b,
    }

    uniform = [b] * len(runner.modalities)
    arms: dict[str, list[dict]] = {"joint": [], "alone": []}
    for seed in seeds:
        arms["joint"].append(runner.run("joint", uniform, seed))
        arms["alone"].append(runner.run("unimodal", uniform, seed))
        log(f"gap seed {seed} done")
    gap = {}
    for split in splits:
        diffs = [a[split]["probe"][weak] - j[split]["probe"][weak]
                 for j, a in zip(arms["joint"], arms["alone"])]
        gap[split] = {"per_seed": diffs, **mean_ci(diffs)}
    result["imbalance"] = {
        "summary": summarize_arms(arms, "alone", splits, weak, strong),
        "weak_probe_gap_alone_minus_joint": gap,
        "episode_train_seconds": mean_ci([r["train_seconds"] for r in arms["joint"]]),
        "runs": arms,
    }

    if not args.skip_lever:
        def sized(mult_weak: float, mult_strong: float) -> list[int]:
            return [int(round((mult_weak if m == weak else mult_strong) * b))
                    for m in runner.modalities]

        # Every arm trains the unimodal losses on 2.5 * b samples per iteration in total.
        lever_sizes = {"uniform": sized(1.25, 1.25), "skew_weak": sized(2.0, 0.5),
                       "skew_strong": sized(0.5, 2.0)}
        lever: dict[str, list[dict]] = {k: [] for k in lever_sizes}
        for seed in seeds:
            for arm, sizes in lever_sizes.items():
                lever[arm].append(runner.run("joint", sizes, seed))
            log(f"lever seed {seed} done")
        result["lever"] = {
            "batch_sizes": {k: dict(zip(runner.modalities, v)) for k, v in lever_sizes.items()},
            "fusion_batch": config.sampler.fusion_batch,
            "summary": summarize_arms(lever, "uniform", splits, weak, strong),
            "runs": lever,
        }

    if not args.skip_curves:
        sizes = [int(s) for s in args.curve_batch_sizes.split(",")]
        budgets = sorted({int(round(f * iterations)) for f in
                          (float(x) for x in args.curve_budgets.split(","))} - {0})
        curves = []
        for size in sizes:
            per_seed = [runner.curve(size, budgets, seed) for seed in seeds[: args.curve_seeds]]
            curves.append({
                "batch_size": size, "iterations": budgets,
                "head": {m: [mean_ci([c["head"][m][i] for c in per_seed])
                             for i in range(len(budgets))] for m in runner.modalities},
            })
            log(f"curve batch {size} done")
        result["curves"] = {"split": splits[0], "seeds": seeds[: args.curve_seeds],
                            "episode_iterations": iterations, "by_batch_size": curves}
    return result


# --------------------------------------------------------------------------- report
def _fmt(ci: dict[str, Any], scale: float = 100.0) -> str:
    if ci["ci_low"] is None or not math.isfinite(ci.get("ci_low") or math.nan):
        return f"{scale * ci['mean']:6.2f}"
    return f"{scale * ci['mean']:6.2f} [{scale * ci['ci_low']:6.2f}, {scale * ci['ci_high']:6.2f}]"


def report(result: dict[str, Any]) -> str:
    weak, strong = result["weak"], result["strong"]
    lines = [f"preset={result['preset']} iterations={result['iterations']} "
             f"seeds={result['seeds']} weak={weak} strong={strong} (accuracy %, mean [95% CI])"]
    imb = result["imbalance"]
    lines.append(f"episode training time: {imb['episode_train_seconds']['mean']:.2f} s")
    keys = ["weak_probe", "strong_probe", "weak_head", "strong_head", "fused"]
    for split in result["splits"]:
        lines.append(f"\n== imbalance ({split}): joint host vs trained alone, uniform n_b")
        for arm in ("joint", "alone"):
            row = imb["summary"][split][arm]
            lines.append(f"  {arm:6s} " + "  ".join(f"{k}={_fmt(row[k])}" for k in keys))
        g = imb["weak_probe_gap_alone_minus_joint"][split]
        lines.append(f"  weak probe gap (alone - joint) = {_fmt(g)}  per seed: "
                     + ", ".join(f"{100 * d:.2f}" for d in g["per_seed"]))
    if "lever" in result:
        lev = result["lever"]
        sizes = ", ".join(f"{k}={v}" for k, v in lev["batch_sizes"].items())
        for split in result["splits"]:
            lines.append(f"\n== lever ({split}), joint host, equal total samples: {sizes}")
            for arm, row in lev["summary"][split].items():
                lines.append(f"  {arm:11s} " + "  ".join(
                    f"{k}={_fmt(row[k])}" for k in ("weak_probe", "weak_head", "fused")))
                if "diff_to_uniform" in row:
                    d = row["diff_to_uniform"]
                    lines.append(f"  {'  - uniform':11s} " + "  ".join(
                        f"{k}={_fmt(d[k])}" for k in ("weak_probe", "weak_head", "fused")))
    if "curves" in result:
        cur = result["curves"]
        lines.append(f"\n== learning curves ({cur['split']}): {weak} head accuracy trained alone, "
                     f"episode budget {cur['episode_iterations']} iterations")
        lines.append("  batch  " + "  ".join(f"{t:>7d}" for t in cur["by_batch_size"][0]["iterations"]))
        for c in cur["by_batch_size"]:
            lines.append(f"  {c['batch_size']:5d}  " + "  ".join(
                f"{100 * v['mean']:7.2f}" for v in c["head"][weak]))
    return "\n".join(lines)


def check_result(result: dict[str, Any]) -> None:
    """Raise if a result dict lacks a field this benchmark promises."""
    for split in result["splits"]:
        g = result["imbalance"]["weak_probe_gap_alone_minus_joint"][split]
        assert len(g["per_seed"]) == len(result["seeds"])
        for arm in ("joint", "alone"):
            row = result["imbalance"]["summary"][split][arm]
            for key in ("weak_probe", "strong_probe", "weak_head", "fused"):
                assert 0.0 <= row[key]["mean"] <= 1.0, (arm, key)
        if "lever" in result:
            assert set(result["lever"]["summary"][split]) == {"uniform", "skew_weak", "skew_strong"}
    if "curves" in result:
        for c in result["curves"]["by_batch_size"]:
            assert len(c["head"][result["weak"]]) == len(c["iterations"])


# --------------------------------------------------------------------------- CLI
def check_args(args: Args) -> None:
    """Raise UsageError for flags the benchmark cannot run with."""
    for split in comma_list("--splits", args.splits):
        if split not in ("val", "test"):
            raise UsageError(f"--splits: unknown split {split!r}; valid choices: val, test")
    check_at_least("--seeds", args.seeds, 1)


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(Args, argv)
    check_args(args)
    common.setup(args, verbose=args.verbose)
    result = common.finite_or_none(run_benchmark(args))
    text = common.write_json(args.out, result)
    print(report(result))
    if args.smoke:
        check_result(json.loads(Path(args.out).read_text() if args.out else text))
        print("smoke ok")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
