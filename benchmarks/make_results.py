"""Render docs/RESULTS.md from the benchmarks' JSON outputs (no number is typed by hand).

Reads (each optional; a missing one leaves its section saying so):

* ``<results>/quality/quality.json`` (``benchmarks.quality``) and the per-dataset folders
  beside it (their PNG plots are copied to ``docs/results/``);
* ``<results>/levers/*.json`` (``benchmarks.levers`` and ``benchmarks.ppo_rewards``,
  validation-only lever screens);
* ``<results>/cost/cost.json`` (``benchmarks.cost``), and ``<results>/cost/env_scaling.json``
  if a separate ``--parts env_scaling`` run wrote one;
* ``<results>/overhead.json`` (``benchmarks.overhead --out``).

benchmarks/README.md lists the keys read from each.

    python -m benchmarks.make_results --results results --out docs/RESULTS.md
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.common import ROOT
from benchmarks.results_sections import (
    fitted_card,
    load,
    overhead_lines,
    ppo_time_lines,
    pretrained_card,
    table,
    update,
)
from dus_env.errors import UsageError
from dus_env.files import atomic_write

POLICY_ORDER = ("uniform", "heuristic", "ppo", "reinforce")
HEADLINE_PLOTS = ("final_metrics.png", "val_accuracy.png", "batch_sizes.png", "scores.png")
SECTIONS = ("## Targets on the synthetic", "## Headline", "## Why: validation-only lever screens",
            "## Cost")
"""Headings every page has, whatever results exist (``--smoke`` checks them)."""


CARDS: dict[str, tuple[str, str, str]] = {
    "generalist": ("generalist", "generalization.json", "select_generalist.json"),
    "anchored": ("generalist-anchored", "anchored_generalization.json", "anchored_select.json"),
    "fitted": ("fit_heuristic.json", "fitted_generalization.json", "fitted_select.json"),
}
"""--card NAME: (training run folder, or for ``fitted`` benchmarks.fit_heuristic's JSON;
held-out JSON; validation-choice JSON) under --results."""


@dataclasses.dataclass
class Args(common.BenchArgs):
    """``python -m benchmarks.make_results``."""

    out: str = dataclasses.field(default=str(ROOT / "docs" / "RESULTS.md"),
                                 metadata={"metavar": "PATH"})
    """Markdown file to write (plots go to results/ beside it)."""
    results: str = str(ROOT / "results")
    """Folder holding quality/, levers/, cost/ and overhead.json."""
    notes: str = str(ROOT / "docs" / "results_notes.md")
    """Hand-written discussion inserted after the machine line (empty, or no such file:
    none)."""
    update: bool = False
    """Keep the page at --out as it is and only (re)write the DUS-v1 sections whose JSON is in
    --results (benchmarks.results_sections), between their markers."""
    card: str = "generalist"
    """With --update: the generalist docs/PRETRAINED.md describes, by its files under --results:
    generalist (generalist/, generalization.json, select_generalist.json) or anchored
    (generalist-anchored/, anchored_generalization.json, anchored_select.json) or fitted
    (DUS-H's settings fit by benchmarks.fit_heuristic: fit_heuristic.json,
    fitted_generalization.json, fitted_select.json)."""


# --------------------------------------------------------------------------- formatting
def pts(iv: dict[str, Any] | None, digits: int = 2, sign: bool = False) -> str:
    """An interval dict (fractions) as ``mean ± half`` in points."""
    if not iv or iv.get("mean") is None:
        return "n/a"
    fmt = f"{{:{'+' if sign else ''}.{digits}f}}"
    out = fmt.format(100 * iv["mean"])
    if iv.get("half_width") is not None:
        out += f" ± {100 * iv['half_width']:.{digits}f}"
    return out


def ci(iv: dict[str, Any] | None, digits: int = 2) -> str:
    """``+1.23 [+0.10, +2.36]`` in points, from an interval of fractions."""
    return common.interval_text(iv, digits, scale=100.0)


def excludes_zero(iv: dict[str, Any] | None) -> bool:
    return bool(iv and iv.get("low") is not None and (iv["low"] > 0 or iv["high"] < 0))


def pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def ordered(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(c):
        p = c["policy"]
        return (c["host"], POLICY_ORDER.index(p) if p in POLICY_ORDER else 99)
    return sorted(cells, key=key)


# --------------------------------------------------------------------------- sections
def machine_section(q: dict[str, Any] | None, cost: dict[str, Any] | None) -> list[str]:
    m = (q or cost or {}).get("machine")
    if not m:
        return ["Machine: not recorded (no benchmark output found)."]
    return [f"Machine: {m['cpu_count']} logical CPU cores usable {m.get('cpus_usable')} "
            f"({m['cpu_model'] or 'unknown model'}), no GPU used (GPU present: {m['gpu']}), "
            f"Python {m['python']}, torch {m['torch']}, {m['platform']}; torch threads = 1 per "
            "process. The machine was shared with other work while these ran (timings are "
            "medians of alternated repeats for that reason)."]


def quality_headline(q: dict[str, Any]) -> list[str]:
    syn = next((d for d in q["datasets"] if d["kind"] == "synthetic"), None)
    if syn is None:
        return ["No synthetic dataset in quality.json."]
    weak = syn["weak"]
    lines = [f"Dataset `{syn['label']}`, seeds {seed_text(syn['seeds'])} "
             f"({len(syn['seeds'])} runs per cell), test split, model selected on validation. "
             f"Δ = seed-paired difference to uniform on the same host, mean [95% t-interval], "
             f"in accuracy points. Weak-probe gap = linear-probe accuracy of the `{weak}` "
             f"encoder trained alone (unimodal host, uniform) minus in the cell; "
             "closed = (probe in cell − probe under uniform) / (alone − uniform).", ""]
    rows = []
    for c in ordered(syn["cells"]):
        m, v = c["metrics"], c.get("vs_uniform") or {}
        rows.append([c["host"], c["policy"], pts(m["accuracy"]), ci(v.get("accuracy")),
                     pts(m[f"probe_{weak}"]), ci(v.get(f"probe_{weak}")),
                     ci(c["weak_probe_gap"]), closed_text(syn, c)])
    lines += table(["host", "policy", "test acc", "Δacc vs uniform", f"{weak} probe",
                    f"Δ{weak} probe", "weak-probe gap (alone − cell)", "gap closed"], rows)
    return lines


def seed_text(seeds: list[int]) -> str:
    if seeds and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def uniform_gap(d: dict[str, Any], host: str) -> dict[str, Any] | None:
    cell = next((c for c in d["cells"] if c["host"] == host and c["policy"] == "uniform"), None)
    return cell["weak_probe_gap"] if cell else None


def closed_text(d: dict[str, Any], c: dict[str, Any]) -> str:
    """The fraction of the gap closed, or why there is none to close."""
    if c["policy"] == "uniform":
        return "—"
    gap = uniform_gap(d, c["host"])
    if gap and gap.get("low") is not None and gap["low"] <= 0:
        return "n/a (no significant gap under uniform)"
    return pct(c.get("gap_closed"))


def targets_section(q: dict[str, Any] | None) -> list[str]:
    if not q:
        return []
    rows = []
    for d in q["datasets"]:
        if not d["kind"].startswith("synthetic"):
            continue
        for c in ordered(d["cells"]):
            if c["policy"] not in ("heuristic", "ppo"):
                continue
            v = c.get("vs_uniform") or {}
            acc = v.get("accuracy")
            acc_ok = bool(acc and acc["mean"] >= 0.02 and acc.get("low") is not None
                          and acc["low"] > 0)
            gap = uniform_gap(d, c["host"])
            significant = bool(gap and gap.get("low") is not None and gap["low"] > 0)
            gap_ok = c.get("gap_closed") is not None and c["gap_closed"] >= 0.5
            gap_verdict = ("met" if gap_ok else "**missed**") if significant else "no gap"
            rows.append([f"`{d['label']}`", c["host"], c["policy"], ci(acc),
                         "met" if acc_ok else "**missed**", ci(gap),
                         ci(v.get(f"probe_{d['weak']}")), closed_text(d, c), gap_verdict])
    return table(["dataset", "host", "policy", "Δacc [95% CI] (target ≥ +2, CI > 0)",
                  "acc target", "weak-probe gap under uniform (alone − uniform)",
                  "Δweak probe vs uniform", "gap closed (target ≥ 50%)", "gap target"], rows)


def dataset_section(d: dict[str, Any]) -> list[str]:
    mods, weak = d["modalities"], d["weak"]
    sweep = d.get("sweep") or {}
    lines = [f"### `{d['label']}`", "",
             f"Seeds {seed_text(d['seeds'])}; modalities {', '.join(f'`{m}`' for m in mods)}; "
             f"weak modality (lowest accuracy alone, decided on validation): `{weak}`. "
             f"Each modality trained alone (unimodal host, uniform, test): " + ", ".join(
                 f"`{m}` probe {pts(d['alone']['probe'][m])} / head {pts(d['alone']['head'][m])}"
                 for m in mods) + "."]
    tr = sweep.get("transfer") or {}
    if tr.get("transfer"):
        if tr.get("possible"):
            lines.append(f"PPO here is the policy trained on the synthetic preset, transferred "
                         f"by position: {tr.get('mapping')}.")
        else:
            lines.append(f"PPO transfer impossible here: {tr.get('reason')}.")
    lines.append("")
    header = ["host", "policy", "acc", "macro-F1", "MAP",
              *[f"acc {m}" for m in mods], *[f"probe {m}" for m in mods],
              *[f"samples {m}" for m in mods], "Δacc vs uniform", f"Δprobe {weak}",
              "weak gap", "closed"]
    rows = []
    for c in ordered(d["cells"]):
        m, v = c["metrics"], c.get("vs_uniform") or {}
        rows.append([c["host"], c["policy"], pts(m["accuracy"], 1), pts(m["macro_f1"], 1),
                     pts(m["map"], 1), *[pts(m[f"acc_{x}"], 1) for x in mods],
                     *[pts(m[f"probe_{x}"], 1) for x in mods],
                     *[f"{m[f'samples_{x}']['mean']:.0f}" for x in mods],
                     ci(v.get("accuracy")) if v else "—",
                     ci(v.get(f"probe_{weak}")) if v else "—",
                     ci(c["weak_probe_gap"]), closed_text(d, c)])
    lines += table(header, rows)
    return lines


def transfer_section(q: dict[str, Any]) -> list[str]:
    """PPO trained on the synthetic preset, replayed on each mfeat set, next to DUS-H."""
    rows = []
    for d in q["datasets"]:
        if d["kind"] != "mfeat":
            continue
        tr = (d.get("sweep") or {}).get("transfer") or {}
        for host in dict.fromkeys(c["host"] for c in d["cells"]):
            cells = {c["policy"]: c for c in d["cells"] if c["host"] == host}
            ppo = cells.get("ppo")
            heur = cells.get("heuristic")
            rows.append([f"`{d['label']}`", host,
                         ci(ppo["vs_uniform"]["accuracy"]) if ppo else
                         f"not possible ({tr.get('reason', 'no policy')})",
                         ci(heur["vs_uniform"]["accuracy"]) if heur else "n/a",
                         f"{100 * cells['uniform']['metrics']['accuracy']['mean']:.1f}"
                         if "uniform" in cells else "n/a"])
    if not rows:
        return ["No mfeat results."]
    return table(["dataset", "host", "PPO (synthetic-trained) Δacc vs uniform",
                  "DUS-H Δacc vs uniform", "uniform test acc"], rows)


def views_section(views: dict[str, Any] | None) -> list[str]:
    if not views:
        return ["View strengths: not measured."]
    rows = [[v, pts(views["views"][v]["head"]), pts(views["views"][v]["probe"])]
            for v in views["ranked"]]
    return [f"Each of the six mfeat views trained alone (unimodal host, uniform sampling, "
            f"{views['iterations']} iterations), **validation** split, seeds "
            f"{seed_text(views['seeds'])}, mean ± 95% CI half-width. Rule: {views['rule']}. "
            f"Chosen: strong+weak = {views['pairs']['strong_weak']}, middling = "
            f"{views['pairs']['middling']}; the three-view set is the `mfeat3` preset's "
            "(fou, kar, mor).", "", *table(["view", "head acc alone", "probe acc alone"], rows)]


def levers_section(levers: dict[str, dict[str, Any]]) -> list[str]:
    if not levers:
        return ["No lever screen found."]
    lines: list[str] = [
        "Arms are `variant/policy`. Variants: `mean` (the preset as is), `base_sum` "
        "(`trainer.loss_reduction='base_sum'`: a bigger batch takes a bigger step), `ema` "
        "(`monitor.average='ema'`), `wide` (grid down to 0.25 n_b, `min_batch_size` n_b/4). "
        "Policies: `uniform`; `heuristic` (DUS-H, library defaults gamma 1, warm-up 0.1), "
        "`heuristic_g2_w0.5` = gamma 2, warm-up 0.5, etc.; `skew` (fixed: weak at the top of "
        "the grid, strong at the bottom, renormalised to the budget); `skew_early` / "
        "`skew_late` (that skew in the first / second half only); `ppo=PATH` (a saved PPO "
        "policy); `alone` (the unimodal host: each modality trained alone). Uniform training "
        "is identical under every variant, so a variant without its own uniform arm is "
        "compared with `mean/uniform`. Gap closed = Δweak probe / (alone − uniform) weak "
        "probe, both on validation."]
    for name, r in sorted(levers.items()):
        weak = r["weak"]
        lines += ["", f"**{name}** (`benchmarks/levers.py`): preset `{r['preset']}`, host "
                  f"`{r['host']}`, tuning seeds {seed_text(r['seeds'])}, validation split. "
                  "Δ = paired difference to the uniform arm with the same variant (or `mean/uniform`).",
                  ""]
        rows = []
        for arm, e in r["summary"].items():
            v = e.get("vs_uniform") or {}
            sizes = "/".join(f"{x:.0f}" for x in e["mean_batch_sizes"].values())
            rows.append([f"`{arm}`", sizes, pts(e["metrics"]["val_accuracy"]),
                         ci(v.get("val_accuracy")) if v else "—",
                         pts(e["metrics"][f"val_probe_{weak}"]),
                         ci(v.get(f"val_probe_{weak}")) if v else "—",
                         pct(e.get("weak_probe_gap_closed"))])
        lines += table(["arm (variant/policy)", "mean batch sizes " + "/".join(r["modalities"]),
                        "val acc", "Δval acc", f"val {weak} probe", f"Δ{weak} probe",
                        "gap closed"], rows)
    return lines


def cost_section(cost: dict[str, Any] | None, overhead: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    if cost and "ppo_time" in cost:
        lines += ppo_time_lines(cost["ppo_time"])
    if cost and "steps" in cost:
        s = cost["steps"]
        r, a, b = s["ratio_2_over_1"], s["steps_per_s_1"], s["steps_per_s_2"]
        lines += [f"**Env steps per second**, `train_agent.py` PPO, {s['timesteps']} timesteps "
                  f"per run, {s['repeats']} alternated pairs (1, 2, 1, 2, ...). End to end "
                  f"(timesteps / the run's training wall time, worker start-up included): "
                  f"n_envs 1 median {a['median']:.1f} (range {a['min']:.1f}-{a['max']:.1f}), "
                  f"n_envs 2 median {b['median']:.1f} (range {b['min']:.1f}-{b['max']:.1f}); "
                  f"ratio 2/1 median **{r['median']:.2f}** (range {r['min']:.2f}-{r['max']:.2f})."]
        if "steady_ratio_2_over_1" in s:
            q, c, d = (s["steady_ratio_2_over_1"], s["steady_steps_per_s_1"],
                       s["steady_steps_per_s_2"])
            lines[-1] += (f" Steady state (from the Monitor logs: episodes after each env's "
                          f"first, start-up excluded): n_envs 1 median {c['median']:.1f}, "
                          f"n_envs 2 median {d['median']:.1f}; ratio 2/1 median "
                          f"**{q['median']:.2f}** (range {q['min']:.2f}-{q['max']:.2f}).")
            best = max(r["median"], q["median"])
        else:
            best = r["median"]
        lines[-1] += f" Target ≥ 1.7: {'met' if best >= 1.7 else '**missed**'}."
        lines.append("")
    scaling = (cost or {}).get("env_scaling")
    if scaling:
        e = scaling["ratio_2_over_1"]
        lines += [f"Hardware reference for that ratio (`cost.py` part `env_scaling`): bare "
                  f"`DUSEnv.step` loops without PPO in 1 vs 2 processes at once scale by "
                  f"**{e['median']:.2f}** (median of {scaling['repeats']} alternated pairs, "
                  f"range {e['min']:.2f}-{e['max']:.2f}); the rest of the shortfall is "
                  "PPO's serial work in the main process (per-step policy inference between "
                  "the workers' steps, the update between rollouts, worker start-up).", ""]
    if cost and "memory" in cost:
        m = cost["memory"]
        lines += [f"**Memory**: {m['episodes']} consecutive `dus_agents.evaluation.run_one` runs "
                  f"({m['policy']} policy, `{m['preset']}` preset) in one process: peak RSS "
                  f"{m['peak_mb_after_first']:.0f} MB after run 1, "
                  f"{m['peak_mb_after_reference']:.0f} MB after run {m['reference_episode']}, "
                  f"{m['peak_mb_final']:.0f} MB after run {m['episodes']}: growth "
                  f"**{100 * m['peak_growth']:+.1f}%** from run {m['reference_episode']} "
                  f"(target < 10%: {'met' if m['peak_growth'] < 0.10 else 'missed'}); current "
                  f"RSS {m['current_mb_after_reference']:.0f} → {m['current_mb_final']:.0f} MB; "
                  f"median {m['seconds_per_episode']['median']:.2f} s per run.", ""]
    if overhead:
        lines += overhead_lines(overhead)
    return lines or ["No cost benchmark output found."]


def copy_plots(q: dict[str, Any], docs: Path) -> list[tuple[str, str]]:
    """Copy the headline PNGs into docs/results/; returns (caption, relative path)."""
    out_dir = docs / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for d in q["datasets"]:
        wanted = HEADLINE_PLOTS if d["kind"] == "synthetic" else ("final_metrics.png",)
        for name in wanted:
            src = Path(d["out_dir"]) / name
            if not src.is_absolute():
                src = ROOT / src
            if src.is_file():
                dst = out_dir / f"{d['label']}_{name}"
                shutil.copyfile(src, dst)
                copied.append((f"{d['label']}: {name[:-4].replace('_', ' ')}",
                               f"results/{dst.name}"))
    return copied


# --------------------------------------------------------------------------- main
def render(results: Path, docs: Path, notes: Path | None) -> str:
    q = load(results / "quality" / "quality.json")
    cost = load(results / "cost" / "cost.json")
    scaling = load(results / "cost" / "env_scaling.json")  # a separate run of that part only
    if cost is not None and scaling and "env_scaling" not in cost:
        cost["env_scaling"] = scaling["env_scaling"]
    overhead = load(results / "overhead.json")
    levers = {p.stem: json.loads(p.read_text())
              for p in sorted((results / "levers").glob("*.json"))}
    lines = ["# Results: does DUS make the weak modality learn, and what does it cost?", "",
             "<!-- generated by benchmarks/make_results.py from the JSON outputs of "
             "benchmarks/run_all.sh; do not edit by hand (edit docs/results_notes.md) -->", "",
             "Regenerate everything (about 1.5 hours on 2 CPU cores for these DUS-v0 sections, "
             "about 4 hours more for the DUS-v1 ones):", "", "```bash",
             "bash benchmarks/run_all.sh          # writes results/, then this file", "```", "",
             *machine_section(q, cost), ""]
    if notes is not None and notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    lines += ["## Targets on the synthetic `default` preset", ""]
    lines += targets_section(q) or ["No quality results."]
    lines += ["", "## Headline: policy × host on the synthetic default preset", ""]
    lines += quality_headline(q) if q else ["No quality results."]
    if q:
        lines += ["", "## mfeat view strengths (chosen on validation)", "",
                  *views_section(q.get("views")), ""]
        ppo = q.get("ppo") or {}
        lines += ["## All cells", "",
                  f"PPO: `{ppo.get('command')}` ({ppo.get('timesteps')} timesteps, "
                  f"{ppo.get('episodes')} training episodes, "
                  f"{(ppo.get('wall_time_s') or 0):.0f} s), replayed deterministically. "
                  "reinforce: a fresh online agent per run that learns inside that run. "
                  "Every policy runs under `sampler.budget='renormalize'`: the same total "
                  "unimodal samples per iteration (columns `samples`); the fusion loss trains on "
                  "a fixed paired batch of n_b in every arm. Metrics in points, mean ± 95% "
                  "CI half-width; Δ columns: mean [95% CI] of the seed-paired difference.", ""]
        lines += ["## Transfer: the synthetic-trained PPO policy on mfeat", "",
                  *transfer_section(q), ""]
        for d in q["datasets"]:
            lines += [*dataset_section(d), ""]
        plots = copy_plots(q, docs)
        if plots:
            lines += ["## Plots (from evaluate.py's reporting, headline cells)", ""]
            lines += [f"- [{cap}]({path})" for cap, path in plots]
            syn = [p for c, p in plots if "final_metrics" in p and "synthetic" in p]
            if syn:
                lines += ["", f"![final metrics, synthetic preset]({syn[0]})"]
            lines.append("")
    lines += ["## Why: validation-only lever screens", "", *levers_section(levers), ""]
    lines += ["## Cost", "", *cost_section(cost, overhead)]
    return "\n".join(lines).rstrip() + "\n"


FIT_FILES = ("fit_heuristic.json", "fit_heuristic_best.json")
"""The benchmarks.fit_heuristic JSONs ``--update`` renders (sections fitted, fitted_best and
``--card fitted``)."""


def check_results(results: Path, update: bool) -> None:
    """A :class:`UsageError` naming ``--results`` unless it is a folder (a typo would render a
    page of "No ... results" over the one at --out) and, for ``--update``, unless every fit
    JSON in it is a finished search (an interrupted ``benchmarks.fit_heuristic`` leaves its
    trials so far marked ``"complete": false``, not a result to publish)."""
    if not results.is_dir():
        why = "is not a directory" if results.exists() else "does not exist"
        raise UsageError(f"--results={str(results)!r} {why}; give the folder the benchmarks "
                         "wrote their JSON to")
    if not update:
        return
    for name in FIT_FILES:
        fit = load(results / name)
        if fit is not None and fit.get("complete") is False:
            raise UsageError(
                f"--results={str(results)!r}: {name} is the partial record of an interrupted "
                f"benchmarks.fit_heuristic run ({len(fit.get('trials', []))} of "
                f"{fit.get('trials_planned', '?')} trials); rerun the fit to finish it, or move "
                "the file out of --results")


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parse(Args, argv)
    if args.smoke and Path(args.out) == Path(Args.out):
        raise UsageError(f"--smoke renders from whatever --results holds: give --out another "
                         f"path than {Args.out} (the committed page)")
    if args.update:
        common.check_option("--card", args.card, CARDS)
    check_results(Path(args.results), args.update)
    common.setup(args)
    out = Path(args.out)
    if args.update:
        results = Path(args.results)
        text, done = update(out.read_text() if out.is_file() else "", results)
        run, held_out, choice = CARDS[args.card]
        fit = load(results / run) if args.card == "fitted" else None
        train = None if fit is not None else load(results / run / "summary.json")
        if fit is not None:
            card = out.parent / "PRETRAINED.md"
            atomic_write(card, fitted_card(fit, load(results / held_out),
                                           load(results / choice)))
            done.append(str(card))
        elif train is not None:
            run_config = load(results / run / "config.json") or {}
            card = out.parent / "PRETRAINED.md"
            atomic_write(card, pretrained_card({**train, "args": run_config.get("args", {}),
                                                "argv": run_config.get("command"),
                                                "torch_cpu_capability":
                                                    run_config.get("torch_cpu_capability")},
                                               load(results / held_out),
                                               load(results / choice)))
            done.append(str(card))
        for name in sorted(set(re.findall(r"\]\(results/([^)/]+\.png)\)", text))):
            if (png := results / name).is_file():  # the figures the page shows, no others
                (out.parent / "results").mkdir(parents=True, exist_ok=True)
                atomic_write(out.parent / "results" / name, png.read_bytes())
        atomic_write(out, text)
        print(f"updated {out}: sections {done}")
        return 0
    text = render(Path(args.results), out.parent, Path(args.notes) if args.notes else None)
    atomic_write(out, text)
    print(f"wrote {out} ({len(text.splitlines())} lines)")
    if args.smoke:
        missing = [h for h in SECTIONS if h not in text]
        assert not missing, f"smoke: sections missing from {out}: {missing}"
        print("smoke ok")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
