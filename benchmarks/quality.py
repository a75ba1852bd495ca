"""Quality benchmark: DUS sampling policies against uniform sampling, per dataset and host.

Built on ``dus-evaluate``'s machinery (:mod:`dus_agents.evaluation.sweep`): every dataset is
one ``Plan`` run by ``sweep`` (one training run per policy x host x seed, the best-validation
weights evaluated once on test; ``results.csv``, ``traces.jsonl``) and summarised by
``write_reports`` (``summary.json``/``summary.md`` with seed-paired differences to uniform and
their 95% t-intervals, and the PNG plots). This module adds what ``evaluate.py`` cannot do by
preset name: datasets given by config overrides (mfeat view sets), the reference
runs of each modality trained alone (the ``unimodal`` host, for the imbalance gap), the PPO
policy trained by ``train_agent.py`` and its transfer to the mfeat sets, and one
``quality.json`` that gathers everything for ``benchmarks.make_results``.

Stages (``--stages``, default all, in this order):

1. ``views``: the strength of each of the six mfeat views trained alone (``unimodal`` host,
   uniform sampling), on the **validation** split, several seeds. From it, by a fixed rule, two
   view pairs: the strongest view with the weakest one, and the two views ranked in the middle
   (3rd and 4th of 6). Views inside a pair are ordered (stronger, weaker), the order of the
   synthetic preset's (strong, weak), so a policy trained there reads the same positions.
2. ``ppo``: ``train_agent.py --agent ppo --preset default`` (skipped if its policy exists).
3. ``sweep``: per dataset: policies uniform, heuristic, PPO (``ppo:PATH``; on mfeat the synthetic
   policy transferred, see below), reinforce (a fresh online agent that learns inside each run)
   on hosts joint, mla, ogm_ge; plus uniform on the ``unimodal`` host (each modality alone).
   Every policy runs under ``sampler.budget='renormalize'`` (equal total samples per iteration;
   ``samples_*`` columns report each modality's count). Last, the synthetic preset again with
   ``trainer.loss_reduction='base_sum'`` (uniform and heuristic only): the lever the
   validation-only screen ``benchmarks.levers`` found to close the most of the weak
   modality's gap, reported on test.
4. ``report``: ``quality.json`` (per cell: test accuracy, macro-F1, MAP, per-modality accuracy,
   probe accuracy of each encoder, samples, the imbalance gap and the fraction of it closed, and
   the paired difference to uniform with its 95% CI).

Transfer: a DUS-v0 policy depends on M, H, the discrepancy kind, the multiplier grid and the
modality names (``dus_agents.artifact.STRICT_SPEC_KEYS``). For an mfeat pair only the names differ,
so the synthetic policy is copied with its recorded modality names replaced by the pair's
(``retarget_policy``): it then reads position 0 as the stronger view and 1 as the weaker. The
three-view set has M = 3 (observation 55 values, 3 action heads, vs 37 and 2): no transfer is
possible and the report says so.

    python -m benchmarks.quality --out-dir results/quality          # the full benchmark
    python -m benchmarks.quality --smoke --out-dir /tmp/q            # ~30 s; tiny preset

Seeds: 0-19 on the synthetic preset, 0-9 on each mfeat set (test); 100-104 for the view
strengths (validation). Design decisions never read the test split.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import ROOT
from dus_agents.artifact import ARTIFACT_ENTRY, read_artifact, spec_differences
from dus_agents.evaluation.results import load_rows
from dus_agents.evaluation.stats import paired_difference, t_interval
from dus_agents.evaluation.sweep import EvaluateArgs, Plan, parse_seeds, sweep, write_reports
from dus_agents.cli.common import check_at_least, comma_list
from dus_env.config import MFEAT_VIEWS
from dus_env.env import DUSEnv
from dus_env.errors import UsageError

HOSTS = ("joint", "mla", "ogm_ge")
POLICIES = ("uniform", "heuristic", "ppo", "reinforce")
STAGES = ("views", "ppo", "sweep", "report")
LOG = common.logger("quality")


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.quality``. Flags left empty take the full benchmark's value, or
    the smoke mode's with --smoke."""

    out: str = dataclasses.field(default="", metadata={"metavar": "PATH"})
    """Where quality.json goes; empty: OUT_DIR/quality.json."""
    out_dir: str = "results/quality"
    """Output folder (resumable)."""
    stages: str = ",".join(STAGES)
    """Comma list of stages to run, from views, ppo, sweep, report."""
    synthetic_seeds: str | None = None
    """Seeds on the synthetic preset (empty: 0-19)."""
    mfeat_seeds: str | None = None
    """Seeds on each mfeat set (empty: 0-9)."""
    view_seeds: str | None = None
    """Seeds of the view-strength measurement (empty: 100-104; validation)."""
    hosts: str | None = None
    """Comma list of hosts (empty: joint,mla,ogm_ge)."""
    ppo_timesteps: int | None = None
    """PPO training timesteps (empty: 12000)."""
    ppo_n_envs: int | None = None
    """PPO envs (empty: 2)."""


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass
class Settings:
    out_dir: Path
    synthetic_preset: str = "default"
    synthetic_seeds: str = "0-19"
    mfeat_seeds: str = "0-9"
    view_seeds: str = "100-104"
    hosts: tuple[str, ...] = HOSTS
    ppo_timesteps: int = 12000
    ppo_n_envs: int = 2
    ppo_checkpoint_freq: int = 1600
    mfeat_extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Overrides added to every mfeat dataset (smoke mode shortens the runs)."""
    probe_max_train: int = 5000
    smoke: bool = False

    @property
    def ppo_dir(self) -> Path:
        return self.out_dir / "ppo" / f"ppo_{self.synthetic_preset}"


def settings_from_args(args: Args) -> Settings:
    s = Settings(out_dir=Path(args.out_dir))
    if args.smoke:
        s.synthetic_preset, s.synthetic_seeds, s.mfeat_seeds, s.view_seeds = "tiny", "0-1", "0-1", "0"
        s.hosts, s.ppo_timesteps, s.ppo_n_envs, s.ppo_checkpoint_freq = ("joint",), 24, 1, 12
        # short mfeat runs, and H = 4 as in the tiny preset so the transfer path is exercised
        s.mfeat_extra = {"total_iterations": 30, "iters_per_step": 15,
                         "monitor": {"history_length": 4}}
        s.probe_max_train, s.smoke = 300, True
    for name in ("synthetic_seeds", "mfeat_seeds", "view_seeds", "ppo_timesteps", "ppo_n_envs"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(s, name, value)
    if args.hosts:
        s.hosts = tuple(comma_list("--hosts", args.hosts))
    return s


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- stage: views
def measure_views(s: Settings) -> dict[str, Any]:
    """Each mfeat view trained alone (unimodal host, uniform), scored on validation."""
    overrides = merge({"data": {"name": "mfeat", "views": list(MFEAT_VIEWS)},
                       "trainer": {"host": "unimodal"}}, s.mfeat_extra)
    overrides.pop("monitor", None)
    env = DUSEnv(config=overrides, preset="mfeat")
    from dus_agents.heuristic import UniformPolicy
    from dus_agents.rollout import run_episode

    seeds = parse_seeds(s.view_seeds)
    head: dict[str, list[float]] = {v: [] for v in MFEAT_VIEWS}
    probe: dict[str, list[float]] = {v: [] for v in MFEAT_VIEWS}
    for seed in seeds:
        # each encoder trains on its own loss only, so the last weights of each view are that
        # view trained alone; evaluate them as they are (no joint model selection across views)
        run_episode(env, UniformPolicy.for_env(env), seed=seed)
        val = env.trainer.evaluate(env.dataset.split("val"))
        probes = env.trainer.probe_accuracy(env.dataset, "val", max_train=s.probe_max_train)
        for v in MFEAT_VIEWS:
            head[v].append(val.modality_accuracy[v])
            probe[v].append(probes[v])
    stats = {v: {"head": t_interval(head[v]).as_dict(), "probe": t_interval(probe[v]).as_dict(),
                 "head_per_seed": head[v], "probe_per_seed": probe[v]} for v in MFEAT_VIEWS}
    ranked = sorted(MFEAT_VIEWS, key=lambda v: -stats[v]["head"]["mean"])
    pairs = {
        "strong_weak": [ranked[0], ranked[-1]],
        "middling": [ranked[2], ranked[3]],
    }
    return {"split": "val", "seeds": seeds, "iterations": env.config.total_iterations,
            "rule": "rank by val head accuracy trained alone; strong_weak = ranks 1 and 6, "
                    "middling = ranks 3 and 4; each pair ordered (stronger, weaker)",
            "views": stats, "ranked": ranked, "pairs": pairs}


# --------------------------------------------------------------------------- stage: ppo
def train_ppo(s: Settings) -> dict[str, Any]:
    policy = s.ppo_dir / "policy.zip"
    if policy.is_file():
        LOG.info("ppo: %s exists; not retraining", policy)
    else:
        if s.ppo_dir.exists():
            shutil.rmtree(s.ppo_dir)  # an interrupted run; train_agent refuses an existing name
        cmd = [sys.executable, str(ROOT / "train_agent.py"), "--agent", "ppo",
               "--preset", s.synthetic_preset, "--total-timesteps", str(s.ppo_timesteps),
               "--n-envs", str(s.ppo_n_envs), "--seed", "0",
               "--out-dir", str(s.ppo_dir.parent), "--run-name", s.ppo_dir.name,
               "--checkpoint-freq", str(s.ppo_checkpoint_freq), "--keep-checkpoints", "1000",
               "--eval-episodes", "0", "--no-progress-bar"]
        LOG.info("ppo: %s", " ".join(cmd))
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=sys.stderr)
    summary = json.loads((s.ppo_dir / "summary.json").read_text())
    return {"run_dir": str(s.ppo_dir), "policy": str(policy),
            "command": f"python train_agent.py --agent ppo --preset {s.synthetic_preset} "
                       f"--total-timesteps {s.ppo_timesteps} --n-envs {s.ppo_n_envs} --seed 0",
            "timesteps": summary.get("timesteps"), "episodes": summary.get("episodes"),
            "wall_time_s": summary.get("wall_time_s"),
            "final_mean_episode_return": summary.get("final_mean_episode_return")}


def retarget_policy(src: Path, dst: Path, modalities: list[str]) -> Path:
    """A copy of the artefact ``src`` whose recorded modality names are ``modalities``
    (everything else, the network included, unchanged)."""
    with zipfile.ZipFile(src) as zin:
        entries = {n: zin.read(n) for n in zin.namelist()}
    header = json.loads(entries[ARTIFACT_ENTRY].decode("utf-8"))
    header["env_spec"]["modalities"] = list(modalities)
    header.setdefault("metadata", {})["retargeted_from"] = {
        "path": str(src), "modalities": read_artifact(src).env_spec.get("modalities")}
    entries[ARTIFACT_ENTRY] = json.dumps(header, indent=2).encode("utf-8")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries.items():
            zout.writestr(name, data)
    return dst


# --------------------------------------------------------------------------- datasets
def datasets(s: Settings, views: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = [{"label": f"synthetic-{s.synthetic_preset}", "preset": s.synthetic_preset,
            "overrides": {}, "seeds": s.synthetic_seeds, "kind": "synthetic"}]
    mfeat_sets = []
    if views is not None:
        for key in ("strong_weak",) if s.smoke else ("strong_weak", "middling"):
            mfeat_sets.append((key, views["pairs"][key]))
    mfeat_sets.append(("three_view", ["fou", "kar", "mor"]))  # the mfeat3 preset's views
    for key, vs in mfeat_sets:
        preset = "mfeat3" if len(vs) == 3 else "mfeat"
        out.append({"label": f"{preset}-{'+'.join(vs)}", "preset": preset, "set": key,
                    "overrides": merge({"data": {"name": "mfeat", "views": vs}}, s.mfeat_extra),
                    "seeds": s.mfeat_seeds, "kind": "mfeat"})
    # The lever the validation screen (benchmarks.levers) found to close most of the weak
    # modality's gap: per-modality losses summed and divided by n_b (a bigger batch is a bigger
    # step), chosen there on validation; reported here on test, DUS-H vs uniform only. (Uniform
    # sampling gives every modality n_b rows, so its training is identical to the mean loss.)
    out.append({"label": f"synthetic-{s.synthetic_preset}-base_sum",
                "preset": s.synthetic_preset, "set": "loss_reduction=base_sum",
                "overrides": {"trainer": {"loss_reduction": "base_sum"}},
                "seeds": s.synthetic_seeds, "kind": "synthetic_variant",
                "policies": ["uniform", "heuristic"]})
    return out


def ppo_spec_for(s: Settings, ds: dict[str, Any], env: DUSEnv) -> tuple[str | None, dict]:
    """The ``ppo:PATH`` spec to replay on ``ds`` (None if the policy cannot fit its env)."""
    src = s.ppo_dir / "policy.zip"
    if not src.is_file():
        return None, {"possible": False, "reason": "no trained PPO policy"}
    trained = read_artifact(src).env_spec
    current = env.spec_dict()
    if ds["kind"].startswith("synthetic"):
        return f"ppo:{src}", {"possible": True, "transfer": False}
    other = [d for d in spec_differences({**trained, "modalities": current["modalities"]},
                                         current)]
    if other:
        return None, {"possible": False, "transfer": True, "reason": "; ".join(other)}
    dst = s.out_dir / ds["label"] / "ppo_transfer.zip"
    retarget_policy(src, dst, current["modalities"])
    return f"ppo:{dst}", {"possible": True, "transfer": True,
                          "mapping": dict(zip(trained["modalities"], current["modalities"]))}


def run_plan(label: str, out_dir: Path, envs: dict[str, DUSEnv], policies: list[str],
             seeds: list[int], probe_max_train: int, threads: int) -> list[dict[str, str]]:
    """``sweep`` + ``write_reports`` of :mod:`dus_agents.evaluation.sweep` on envs built from
    overrides."""
    args = EvaluateArgs(policies=",".join(policies), hosts=",".join(envs), preset=label,
                        seeds=",".join(map(str, seeds)), out_dir=str(out_dir),
                        budget_matched=True, probe_max_train=probe_max_train, threads=threads,
                        quiet=True)
    budget = next(iter(envs.values())).config.sampler.budget
    plan = Plan(args, policies, list(envs), seeds, out_dir, envs, budget)
    rows, failed = sweep(plan)  # failed runs exist only on the Ray backend
    if failed:
        raise RuntimeError(f"{len(failed)} runs failed for good: {sorted(failed)}")
    write_reports(plan, rows)
    return rows


def sweep_dataset(s: Settings, ds: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    seeds = parse_seeds(ds["seeds"])
    out = s.out_dir / ds["label"]
    budget = {"sampler": {"budget": "renormalize"}}
    envs = {h: DUSEnv(config=merge(ds["overrides"], {"trainer": {"host": h}, **budget}),
                      preset=ds["preset"]) for h in s.hosts}
    first = next(iter(envs.values()))
    ppo_spec, transfer = ppo_spec_for(s, ds, first)
    policies = ds.get("policies") or (
        ["uniform", "heuristic"] + ([ppo_spec] if ppo_spec else []) + ["reinforce"])
    start = time.perf_counter()
    LOG.info("sweep %s: %d policies x %d hosts x %d seeds", ds["label"], len(policies),
             len(envs), len(seeds))
    run_plan(ds["label"], out, envs, policies, seeds, s.probe_max_train, threads)
    alone_env = {"unimodal": DUSEnv(config=merge(ds["overrides"],
                                                 {"trainer": {"host": "unimodal"}, **budget}),
                                    preset=ds["preset"])}
    run_plan(ds["label"], out / "alone", alone_env, ["uniform"], seeds, s.probe_max_train,
             threads)
    return {"policies": policies, "ppo_spec": ppo_spec, "transfer": transfer,
            "modalities": list(first.modalities), "seconds": time.perf_counter() - start,
            "config": {h: e.config_dict() for h, e in envs.items()}}


# --------------------------------------------------------------------------- stage: report
def short_policy(spec: str) -> str:
    return spec.split(":", 1)[0] if ":" in spec else spec


def _num(row: dict[str, str], key: str) -> float:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return float("nan")


def dataset_report(s: Settings, ds: dict[str, Any], weak: str) -> dict[str, Any]:
    out = s.out_dir / ds["label"]
    rows, _ = load_rows(out / "results.csv", repair=False)
    alone_rows, _ = load_rows(out / "alone" / "results.csv", repair=False)
    summary = json.loads((out / "summary.json").read_text())
    modalities = [c[len("probe_"):] for c in rows[0] if c.startswith("probe_")] if rows else []
    alone = {int(r["seed"]): r for r in alone_rows}
    alone_probe = {m: t_interval([_num(r, f"probe_{m}") for r in alone.values()]).as_dict()
                   for m in modalities}
    alone_acc = {m: t_interval([_num(r, f"acc_{m}") for r in alone.values()]).as_dict()
                 for m in modalities}
    by_cell: dict[tuple[str, str], dict[int, dict[str, str]]] = {}
    for r in rows:
        by_cell.setdefault((r["host"], r["policy"]), {})[int(r["seed"])] = r
    cells = []
    for g in summary["groups"]:
        runs = by_cell[(g["host"], g["policy"])]
        uniform = by_cell.get((g["host"], "uniform"), {})
        key = f"probe_{weak}"
        # imbalance gap of this cell: weak probe trained alone minus weak probe in this cell
        gap = paired_difference({k: _num(a, key) for k, a in alone.items()},
                                {k: _num(r, key) for k, r in runs.items()}).as_dict()
        cell = {
            "host": g["host"], "policy": short_policy(g["policy"]), "spec": g["policy"],
            "n": g["n"], "seeds": g["seeds"], "metrics": g["metrics"],
            "vs_uniform": g.get("vs_baseline"), "weak_probe_gap": gap,
        }
        if g["policy"] != "uniform" and uniform:
            base_gap = paired_difference({k: _num(a, key) for k, a in alone.items()},
                                         {k: _num(r, key) for k, r in uniform.items()})
            gain = paired_difference({k: _num(r, key) for k, r in runs.items()},
                                     {k: _num(r, key) for k, r in uniform.items()})
            closed = gain.mean / base_gap.mean if base_gap.mean > 0 else float("nan")
            cell["gap_closed"] = None if not math.isfinite(closed) else closed
            cell["gap_closed_interval"] = (
                None if not (base_gap.mean > 0 and math.isfinite(gain.half_width))
                else [gain.low / base_gap.mean, gain.high / base_gap.mean])
        cells.append(cell)
    return {"label": ds["label"], "preset": ds["preset"], "kind": ds["kind"],
            "set": ds.get("set"), "overrides": ds["overrides"], "modalities": modalities,
            "weak": weak, "seeds": parse_seeds(ds["seeds"]),
            "alone": {"probe": alone_probe, "head": alone_acc, "n": len(alone)},
            "cells": cells, "out_dir": str(out),
            "plots": sorted(str(p) for p in out.glob("*.png"))}


def weak_of(ds: dict[str, Any], s: Settings) -> str:
    """The weak modality, decided on validation only: the synthetic preset's designed 'weak'
    (its last modality), or the mfeat view with the lowest alone accuracy in the views stage."""
    if ds["kind"].startswith("synthetic"):
        return DUSEnv(preset=ds["preset"]).modalities[-1]
    views = json.loads((s.out_dir / "views.json").read_text())
    vs = ds["overrides"]["data"]["views"]
    return min(vs, key=lambda v: views["views"][v]["head"]["mean"])


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(Args, argv)
    stages = comma_list("--stages", args.stages)
    for stage in stages:
        if stage not in STAGES:
            raise UsageError(f"--stages: unknown stage {stage!r}; valid: {list(STAGES)}")
    for name in ("ppo_timesteps", "ppo_n_envs"):
        if getattr(args, name) is not None:
            check_at_least("--" + name.replace("_", "-"), getattr(args, name), 1)
    common.setup(args)
    s = settings_from_args(args)
    s.out_dir.mkdir(parents=True, exist_ok=True)
    views_path = s.out_dir / "views.json"
    if "views" in stages:
        views = measure_views(s)
        common.write_json(views_path, views)
        LOG.info("views ranked (val head accuracy alone): %s %s", views["ranked"], views["pairs"])
    views = json.loads(views_path.read_text()) if views_path.is_file() else None
    ppo_info = None
    if "ppo" in stages:
        ppo_info = train_ppo(s)
        common.write_json(s.out_dir / "ppo.json", ppo_info)
    sweeps_path = s.out_dir / "sweeps.json"
    sweeps = json.loads(sweeps_path.read_text()) if sweeps_path.is_file() else {}
    if "sweep" in stages:
        for ds in datasets(s, views):
            sweeps[ds["label"]] = sweep_dataset(s, ds, args.threads)
            common.write_json(sweeps_path, sweeps)
    if "report" in stages:
        ppo_path = s.out_dir / "ppo.json"
        result = {
            "machine": common.machine_info(), "smoke": s.smoke,
            "settings": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in dataclasses.asdict(s).items()},
            "command": "python -m benchmarks.quality "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "views": views,
            "ppo": json.loads(ppo_path.read_text()) if ppo_path.is_file() else ppo_info,
            "datasets": [],
        }
        for ds in datasets(s, views):
            if not (s.out_dir / ds["label"] / "summary.json").is_file():
                continue
            rep = dataset_report(s, ds, weak_of(ds, s))
            rep["sweep"] = {k: v for k, v in sweeps.get(ds["label"], {}).items() if k != "config"}
            result["datasets"].append(rep)
        text = common.write_json(args.out or s.out_dir / "quality.json", result)
        parsed = json.loads(text)
        for d in parsed["datasets"]:
            for c in d["cells"]:
                if c["policy"] == "uniform":
                    continue
                dv = c["vs_uniform"]["accuracy"]
                LOG.info(f"{d['label']:28s} {c['host']:7s} {c['policy']:10s} "
                         f"Δacc {100 * dv['mean']:+6.2f} ± {100 * (dv['half_width'] or 0):.2f}  "
                         f"gap closed {c.get('gap_closed')}")
        if s.smoke:
            assert parsed["datasets"], "smoke: no dataset reported"
            assert all(d["cells"] for d in parsed["datasets"])
            print("smoke ok")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
