"""Summaries of evaluation runs: confidence intervals and seed-paired differences.

Input is plain data: result rows (dicts, one per run, as a sweep writes them to
``results.csv``). Intervals are Student-t intervals of the mean (scipy); differences to the
baseline sampler are paired by seed (same seed = same data order and model initialisation),
which removes the seed-to-seed variance both arms share. Benchmarks use :func:`t_interval`
and :func:`paired_difference` too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

GROUP_KEYS: tuple[str, ...] = ("preset", "host", "policy")
"""Rows are summarised per preset x host x policy."""
BASELINE = "uniform"
"""The sampler every other policy is compared with, seed by seed."""


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class Interval:
    """Mean of a sample with a two-sided Student-t confidence interval."""

    mean: float
    half_width: float
    """t_{(1+confidence)/2, n-1} * std / sqrt(n); NaN when n < 2."""
    low: float
    high: float
    std: float
    """Sample standard deviation (ddof=1; NaN when n < 2)."""
    n: int
    confidence: float

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN becomes None."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}

    def format(self, digits: int = 3, scale: float = 1.0) -> str:
        """``mean ± half_width`` (just the mean when the width is undefined)."""
        if not math.isfinite(self.mean):
            return "n/a"
        if not math.isfinite(self.half_width):
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.half_width * scale:.{digits}f}"


def t_interval(values: Iterable[float], confidence: float = 0.95) -> Interval:
    """Student-t confidence interval of the mean of ``values`` (non-finite values dropped)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} is out of range; valid range: (0, 1)")
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        nan = float("nan")
        return Interval(nan, nan, nan, nan, nan, 0, confidence)
    mean = float(x.mean())
    if n < 2:
        nan = float("nan")
        return Interval(mean, nan, nan, nan, nan, 1, confidence)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n))
    return Interval(mean, half, mean - half, mean + half, std, n, confidence)


def paired_difference(
    treatment: Mapping[Any, float], baseline: Mapping[Any, float], confidence: float = 0.95
) -> Interval:
    """Interval of the mean of ``treatment[k] - baseline[k]`` over the keys (seeds) both have."""
    keys = sorted(set(treatment) & set(baseline))
    return t_interval([float(treatment[k]) - float(baseline[k]) for k in keys], confidence)


# --------------------------------------------------------------------------- summaries
def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def metric_columns(rows: Sequence[Mapping[str, Any]], main: Sequence[str]) -> list[str]:
    """The metrics to summarise: ``main`` first, then the sum of heads' accuracy, every
    per-modality column present (``acc_*``, ``probe_*``, ``samples_*``), then validation and
    time columns. A column
    counts as present where some row has a value in it (``results.csv`` holding runs of
    several presets has every preset's modality columns, empty in the others' rows)."""
    present = {k for r in rows for k, v in r.items() if v not in (None, "")}
    cols = [c for c in main if c in present]
    cols += [c for c in ("sum_heads_accuracy",) if c in present and c not in cols]
    for prefix in ("acc_", "probe_", "samples_"):
        cols += sorted(c for c in present if c.startswith(prefix) and c not in cols)
    cols += [c for c in ("paired_samples", "best_val_accuracy", "final_val_accuracy",
                         "best_val_step", "wall_time") if c in present and c not in cols]
    return cols


def summarize(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    baseline: str = BASELINE,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Mean and CI of every metric per preset x host x policy, and (where ``baseline`` ran
    on the same preset and host) the seed-paired difference to it.

    Returns a JSON-ready dict: ``{"confidence", "baseline", "metrics", "n_runs", "groups"}``;
    each group has ``preset``, ``host``, ``policy``, ``n``, ``seeds``, ``metrics``
    (metric -> interval dict) and ``vs_baseline`` (metric -> interval dict of the paired
    difference, with ``n`` paired seeds), the latter only for non-baseline policies.
    """
    by_group: dict[tuple[str, ...], dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for row in rows:
        key = tuple(str(row[k]) for k in GROUP_KEYS)
        by_group[key][int(row["seed"])] = row
    groups = []
    for (preset, host, policy), runs in sorted(by_group.items(), key=_group_order(baseline)):
        group: dict[str, Any] = {
            "preset": preset, "host": host, "policy": policy, "n": len(runs),
            "seeds": sorted(runs),
            "metrics": {
                # in seed order: the sums, and so the last bits, must not depend on the order
                # rows sit in results.csv (Ray writes them as runs finish)
                m: t_interval([_number(runs[s].get(m)) for s in sorted(runs)],
                              confidence).as_dict()
                for m in metrics
            },
        }
        base = by_group.get((preset, host, baseline))
        if base is not None and policy != baseline:
            group["vs_baseline"] = {
                m: paired_difference(
                    {s: _number(r.get(m)) for s, r in runs.items()},
                    {s: _number(r.get(m)) for s, r in base.items()}, confidence,
                ).as_dict()
                for m in metrics
            }
        groups.append(group)
    return {
        "confidence": confidence,
        "baseline": baseline,
        "metrics": list(metrics),
        "n_runs": len(rows),
        "groups": groups,
    }


def _group_order(baseline: str):
    def key(item):
        preset, host, policy = item[0]
        return (preset, host, policy != baseline, policy)
    return key


def _cell(d: Mapping[str, Any] | None, digits: int = 3, scale: float = 1.0) -> str:
    if d is None:
        return ""
    iv = Interval(**{k: (float("nan") if v is None else v) for k, v in d.items()})
    return iv.format(digits, scale)


def summary_markdown(summary: Mapping[str, Any], table_metrics: Sequence[str] | None = None) -> str:
    """A Markdown report: one table of means ± CI half-widths per preset x host, and one of
    seed-paired differences to the baseline (in accuracy points for [0, 1] metrics)."""
    conf = int(round(100 * summary["confidence"]))
    metrics = list(table_metrics or summary["metrics"])
    base = summary["baseline"]
    lines = [
        "# Evaluation summary",
        "",
        f"Mean ± {conf}% t-interval half-width over seeds; test metrics of the model with the "
        "best validation accuracy. `samples_*` = samples each modality's own loss consumed.",
    ]
    sections: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for g in summary["groups"]:
        sections[(g["preset"], g["host"])].append(g)
    for (preset, host), groups in sections.items():
        lines += ["", f"## preset `{preset}`, host `{host}`", ""]
        lines.append("| policy | n | " + " | ".join(metrics) + " |")
        lines.append("|---|---|" + "---|" * len(metrics))
        for g in groups:
            cells = [_cell(g["metrics"].get(m), _digits(m)) for m in metrics]
            lines.append(f"| {g['policy']} | {g['n']} | " + " | ".join(cells) + " |")
        paired = [g for g in groups if "vs_baseline" in g]
        if paired:
            diff_metrics = [m for m in metrics if not m.startswith("samples")
                            and m not in ("wall_time", "best_val_step", "paired_samples")]
            lines += ["", f"Paired difference to `{base}` (same seed), in points (x100):", ""]
            lines.append("| policy | pairs | " + " | ".join(f"Δ {m}" for m in diff_metrics) + " |")
            lines.append("|---|---|" + "---|" * len(diff_metrics))
            for g in paired:
                n = next(iter(g["vs_baseline"].values()))["n"] if g["vs_baseline"] else 0
                cells = [_cell(g["vs_baseline"].get(m), 2, 100.0) for m in diff_metrics]
                lines.append(f"| {g['policy']} | {n} | " + " | ".join(cells) + " |")
        same = [g["policy"] for g in groups if g.get("same_decisions_as_baseline")]
        for policy in same:
            lines += ["", f"Note: `{policy}` made exactly `{base}`'s batch-size decisions in "
                          f"every run here (every step, every seed): its differences to `{base}` "
                          "are zero by construction, not a measured effect."]
    return "\n".join(lines) + "\n"


def mark_same_decisions(summary: dict[str, Any], traces: Sequence[Mapping[str, Any]]) -> None:
    """Flag each group whose every run made the baseline's batch-size decisions on the same
    seed (``same_decisions_as_baseline``), from the runs' traces."""
    sizes: dict[tuple, list] = {}
    for t in traces:
        sizes[(t["preset"], t["host"], t["policy"], int(t["seed"]))] = [
            s.get("batch_sizes") for s in t["steps"]]
    base = summary["baseline"]
    for g in summary["groups"]:
        if g["policy"] == base:
            continue
        pairs = [(sizes.get((g["preset"], g["host"], g["policy"], s)),
                  sizes.get((g["preset"], g["host"], base, s))) for s in g["seeds"]]
        g["same_decisions_as_baseline"] = bool(pairs) and all(
            a is not None and a == b for a, b in pairs)


def _digits(metric: str) -> int:
    if metric.startswith("samples") or metric in ("paired_samples", "best_val_step"):
        return 0
    if metric == "wall_time":
        return 2
    return 3
