"""Figures of evaluation runs, from their traces (dicts with a ``steps`` list, as in
``traces.jsonl``) and summaries (:func:`dus_agents.evaluation.stats.summarize`).

Plots use matplotlib's object API (``Figure``, Agg), so nothing here touches pyplot's global
state or needs a display. matplotlib is the optional extra ``plots``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

def _panels(traces: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, list]]:
    """(preset, host) -> policy -> traces, in first-seen order."""
    out: dict[tuple[str, str], dict[str, list]] = {}
    for t in traces:
        out.setdefault((t["preset"], t["host"]), {}).setdefault(t["policy"], []).append(t)
    return out


def _modalities(by_policy: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The modalities of one panel's runs (presets differ in theirs), in first-seen order."""
    return list(dict.fromkeys(m for runs in by_policy.values() for t in runs
                              for m in t["modalities"]))


def _series(runs: Sequence[Mapping[str, Any]], field: str, modality: str | None):
    """x (iterations) and a (runs, steps) array of one traced quantity, aligned on steps."""
    xs, ys = None, []
    for run in runs:
        steps = [s for s in run["steps"] if s.get(field) not in (None, {})]
        if not steps:
            continue
        x = [s["iteration"] for s in steps]
        y = [s[field][modality] if modality is not None else s[field] for s in steps]
        if xs is None or len(x) < len(xs):
            xs = x
        ys.append(y)
    if xs is None:
        return None, None
    n = len(xs)
    return np.asarray(xs), np.asarray([y[:n] for y in ys], dtype=float)


def _colors(policies: Iterable[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


def _figure(n_rows: int, n_cols: int, width: float = 4.2, height: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def _band(ax, x, y, color, label, steps=False):
    mean = y.mean(axis=0)
    style = {"drawstyle": "steps-pre"} if steps else {}
    ax.plot(x, mean, color=color, label=label, **style)
    if len(y) > 1:
        ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=color, alpha=0.15, linewidth=0,
                        step="pre" if steps else None)


def plot_batch_sizes(traces: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Per-modality batch size over training: one row per modality, one column per
    preset x host (each with its preset's modalities; a preset with fewer leaves its last
    rows blank); mean over seeds, band = min..max. A size is drawn over the iterations it
    was in force (the step ending at the iteration it is recorded at)."""
    panels = _panels(traces)
    colors = _colors(dict.fromkeys(t["policy"] for t in traces))
    n_rows = max(len(_modalities(by_policy)) for by_policy in panels.values())
    fig, axes = _figure(n_rows, len(panels))
    for col, ((preset, host), by_policy) in enumerate(panels.items()):
        modalities = _modalities(by_policy)
        for row in range(len(modalities), n_rows):
            axes[row, col].set_axis_off()
        for row, m in enumerate(modalities):
            ax = axes[row, col]
            for policy, runs in by_policy.items():
                x, y = _series(runs, "batch_sizes", m)
                if x is not None:
                    _band(ax, x, y, colors[policy], policy, steps=True)
            ax.set_title(f"{preset} · {host} · {m}", fontsize=9)
            ax.set_xlabel("iteration")
            ax.set_ylabel("batch size")
    axes[0, 0].legend(fontsize=8)
    fig.savefig(path, dpi=110)


def plot_scores(traces: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Cumulative scores S^j (top row) and the gap of each modality (bottom row) over
    training; colour = policy, line style = modality; mean over seeds."""
    panels = _panels(traces)
    colors = _colors(dict.fromkeys(t["policy"] for t in traces))
    styles = ["-", "--", ":", "-."]
    fig, axes = _figure(2, len(panels))
    for col, ((preset, host), by_policy) in enumerate(panels.items()):
        modalities = _modalities(by_policy)
        for row, field in enumerate(("cumulative_scores", "gap")):
            ax = axes[row, col]
            for policy, runs in by_policy.items():
                for j, m in enumerate(modalities):
                    x, y = _series(runs, field, m)
                    if x is not None:
                        ax.plot(x, y.mean(axis=0), color=colors[policy],
                                linestyle=styles[j % len(styles)], label=f"{policy} · {m}")
            if field == "gap":
                ax.axhline(0.0, color="grey", linewidth=0.6)
            ax.set_title(f"{preset} · {host}", fontsize=9)
            ax.set_xlabel("iteration")
            ax.set_ylabel("cumulative score S" if field == "cumulative_scores" else "gap")
    axes[0, 0].legend(fontsize=7)
    fig.savefig(path, dpi=110)


def plot_validation(traces: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Validation accuracy over training per policy; mean over seeds, band = min..max."""
    panels = _panels(traces)
    colors = _colors(dict.fromkeys(t["policy"] for t in traces))
    fig, axes = _figure(1, len(panels))
    for col, ((preset, host), by_policy) in enumerate(panels.items()):
        ax = axes[0, col]
        for policy, runs in by_policy.items():
            x, y = _series(runs, "val_accuracy", None)
            if x is not None:
                _band(ax, x, y, colors[policy], policy)
        ax.set_title(f"{preset} · {host}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("validation accuracy")
    axes[0, 0].legend(fontsize=8)
    fig.savefig(path, dpi=110)


def plot_final_metrics(
    summary: Mapping[str, Any], metrics: Sequence[str], path: str | Path
) -> None:
    """Bar chart of final test metrics with CI error bars: one panel per preset x host,
    metric groups on the x axis, one bar per policy."""
    sections: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for g in summary["groups"]:
        sections.setdefault((g["preset"], g["host"]), []).append(g)
    policies = list(dict.fromkeys(g["policy"] for g in summary["groups"]))
    colors = _colors(policies)
    fig, axes = _figure(len(sections), 1, width=max(4.2, 0.9 * len(metrics) + 1.5), height=3.2)
    width = 0.8 / max(len(policies), 1)
    for row, ((preset, host), groups) in enumerate(sections.items()):
        ax = axes[row, 0]
        x = np.arange(len(metrics))
        for i, g in enumerate(groups):
            means = [_nan(g["metrics"][m]["mean"]) for m in metrics]
            errs = [_nan(g["metrics"][m]["half_width"]) for m in metrics]
            errs = [0.0 if not math.isfinite(e) else e for e in errs]
            idx = policies.index(g["policy"])
            ax.bar(x + (idx - (len(policies) - 1) / 2) * width, means, width, yerr=errs,
                   capsize=2, color=colors[g["policy"]], label=g["policy"])
        ax.set_xticks(x, metrics, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0.0, 1.0)
        ax.set_title(f"{preset} · {host}", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    fig.savefig(path, dpi=110)


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)
