"""Confidence intervals, seed-paired differences, summaries and plots (dus_agents.evaluation.stats and .plots)."""

from __future__ import annotations

import json
import math

import pytest

from dus_agents.evaluation import plots, stats
from dus_agents.evaluation.stats import paired_difference, summarize, t_interval


def test_t_interval_against_hand_computed_values():
    # x = 1..5: mean 3, s = sqrt(10 / 4) = 1.58114, s / sqrt(5) = 0.707107;
    # t_{0.975, 4} = 2.776 (table): half width 2.776 * 0.707107 = 1.9632
    iv = t_interval([1, 2, 3, 4, 5])
    assert iv.n == 5 and iv.mean == pytest.approx(3.0)
    assert iv.std == pytest.approx(1.58114, abs=1e-5)
    assert iv.half_width == pytest.approx(1.9632, abs=1e-3)
    assert (iv.low, iv.high) == pytest.approx((3 - 1.9632, 3 + 1.9632), abs=1e-3)
    # 90%: t_{0.95, 4} = 2.132 (table)
    assert t_interval([1, 2, 3, 4, 5], 0.90).half_width == pytest.approx(2.132 * 0.707107,
                                                                         abs=1e-3)


def test_t_interval_edge_cases():
    one = t_interval([0.7])
    assert one.mean == 0.7 and one.n == 1 and math.isnan(one.half_width)
    assert one.as_dict()["half_width"] is None  # JSON-ready
    assert one.format() == "0.700"
    empty = t_interval([])
    assert empty.n == 0 and empty.format() == "n/a"
    assert t_interval([1.0, float("nan"), 3.0]).n == 2  # non-finite values dropped
    assert t_interval([2.0, 2.0, 2.0]).half_width == 0.0
    with pytest.raises(ValueError, match=r"confidence=1.5 is out of range"):
        t_interval([1, 2], confidence=1.5)


def test_paired_difference_uses_common_seeds_only():
    # diffs on seeds 0, 1, 2: 0.10, 0.05, -0.02 -> mean 0.043333, s = 0.060277,
    # s / sqrt(3) = 0.034801, t_{0.975, 2} = 4.303 (table): half width 0.14975
    treatment = {2: 0.70, 0: 0.80, 1: 0.90}
    baseline = {0: 0.70, 1: 0.85, 2: 0.72, 3: 0.99}
    iv = paired_difference(treatment, baseline)
    assert iv.n == 3
    assert iv.mean == pytest.approx(0.0433333, abs=1e-6)
    assert iv.std == pytest.approx(0.060277, abs=1e-6)
    assert iv.half_width == pytest.approx(0.14975, abs=2e-4)
    # pairing removes what both arms share: a constant per-seed offset cancels
    shifted = paired_difference({s: v + 0.3 * s for s, v in treatment.items()},
                                {s: v + 0.3 * s for s, v in baseline.items()})
    assert shifted.half_width == pytest.approx(iv.half_width)


def _rows():
    rows = []
    for seed, (u, h) in enumerate([(0.80, 0.82), (0.70, 0.73), (0.90, 0.91)]):
        for policy, acc in (("uniform", u), ("heuristic", h)):
            rows.append({"policy": policy, "host": "joint", "preset": "tiny", "seed": str(seed),
                         "accuracy": str(acc), "samples_weak": "960"})
    return rows


def test_summarize_groups_and_paired_differences():
    summary = summarize(_rows(), ["accuracy", "samples_weak"])
    assert summary["n_runs"] == 6 and summary["baseline"] == "uniform"
    groups = {g["policy"]: g for g in summary["groups"]}
    assert [g["policy"] for g in summary["groups"]] == ["uniform", "heuristic"]  # baseline first
    assert groups["uniform"]["metrics"]["accuracy"]["mean"] == pytest.approx(0.8)
    assert "vs_baseline" not in groups["uniform"]
    diff = groups["heuristic"]["vs_baseline"]["accuracy"]
    assert diff["n"] == 3 and diff["mean"] == pytest.approx(0.02)  # (0.02 + 0.03 + 0.01) / 3
    assert diff["half_width"] == pytest.approx(4.303 * 0.01 / math.sqrt(3), abs=1e-4)
    json.dumps(summary, allow_nan=False)  # JSON-ready

    md = stats.summary_markdown(summary)
    assert "| heuristic | 3 | 0.820 ± " in md
    assert "| heuristic | 3 | 2.00 ± 2.48 |" in md  # Δ accuracy in points


def test_no_paired_difference_without_the_baseline():
    rows = [r for r in _rows() if r["policy"] != "uniform"]
    summary = summarize(rows, ["accuracy"])
    assert all("vs_baseline" not in g for g in summary["groups"])
    assert "Paired difference" not in stats.summary_markdown(summary)


def test_metric_columns_order():
    rows = [{"accuracy": 1, "map": 1, "probe_b": 1, "acc_a": 1, "samples_a": 1, "wall_time": 1}]
    assert stats.metric_columns(rows, ("accuracy", "macro_f1", "map")) == [
        "accuracy", "map", "acc_a", "probe_b", "samples_a", "wall_time"]


def test_plots_are_written(tmp_path):
    def trace(policy, seed, skew):
        steps = [{"iteration": 0, "batch_sizes": None, "cumulative_scores": {"a": .1, "b": .1},
                  "gap": {"a": 0.0, "b": 0.0}, "val_accuracy": 0.1}]
        for i in range(1, 4):
            steps.append({"iteration": 10 * i, "batch_sizes": {"a": 16 - skew, "b": 16 + skew},
                          "cumulative_scores": {"a": .1 + .2 * i, "b": .1 + .1 * i},
                          "gap": {"a": .05 * i, "b": -.05 * i}, "val_accuracy": .2 * i})
        return {"policy": policy, "host": "joint", "preset": "tiny", "seed": seed,
                "modalities": ["a", "b"], "steps": steps}

    traces = [trace(p, s, k) for p, k in (("uniform", 0), ("heuristic", 4)) for s in (0, 1)]
    plots.plot_batch_sizes(traces, tmp_path / "b.png")
    plots.plot_scores(traces, tmp_path / "s.png")
    plots.plot_validation(traces, tmp_path / "v.png")
    plots.plot_final_metrics(summarize(_rows(), ["accuracy"]), ["accuracy"],
                                 tmp_path / "f.png")
    for name in ("b", "s", "v", "f"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_plots_of_presets_with_different_modalities(tmp_path):
    """Runs of two presets in one folder (tiny's strong/weak, a three-modality preset's
    fac/fou/zer): each panel plots its own preset's modalities."""
    def trace(preset, modalities, seed):
        steps = [{"iteration": 0, "batch_sizes": None,
                  "cumulative_scores": dict.fromkeys(modalities, .1),
                  "gap": dict.fromkeys(modalities, 0.0), "val_accuracy": 0.1}]
        for i in range(1, 3):
            steps.append({"iteration": 10 * i, "batch_sizes": dict.fromkeys(modalities, 16),
                          "cumulative_scores": dict.fromkeys(modalities, .1 * i),
                          "gap": dict.fromkeys(modalities, .05 * i), "val_accuracy": .2 * i})
        return {"policy": "uniform", "host": "joint", "preset": preset, "seed": seed,
                "modalities": modalities, "steps": steps}

    traces = [trace("tiny", ["strong", "weak"], 0), trace("mfeat", ["fac", "fou", "zer"], 0)]
    plots.plot_batch_sizes(traces, tmp_path / "b.png")
    plots.plot_scores(traces, tmp_path / "s.png")
    plots.plot_validation(traces, tmp_path / "v.png")
    rows = [{"policy": "uniform", "host": "joint", "preset": "tiny", "seed": "0",
             "accuracy": "0.9", "acc_strong": "0.8", "acc_fac": ""},
            {"policy": "uniform", "host": "joint", "preset": "mfeat", "seed": "0",
             "accuracy": "0.8", "acc_strong": "", "acc_fac": "0.7"}]
    metrics = stats.metric_columns(rows, ("accuracy",))
    assert metrics == ["accuracy", "acc_fac", "acc_strong"]
    plots.plot_final_metrics(summarize(rows, metrics), metrics, tmp_path / "f.png")
    for name in ("b", "s", "v", "f"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    # one preset's rows name only its own modality columns, though the file has both
    assert stats.metric_columns(rows[:1], ("accuracy",)) == ["accuracy", "acc_strong"]


def test_summary_does_not_depend_on_the_order_of_the_rows():
    # Ray writes rows as runs finish: the means were float sums in file order, so the same
    # runs gave summaries that differed in the last bits (0.20000000000000004 vs 0.19999999999999998)
    rows = [{"policy": "uniform", "host": "joint", "preset": "tiny", "seed": str(seed),
             "accuracy": str(acc)} for seed, acc in ((0, 0.1), (1, 0.2), (2, 0.3))]
    forward = summarize(rows, ["accuracy"])
    assert summarize(rows[::-1], ["accuracy"]) == forward
    assert summarize([rows[1], rows[2], rows[0]], ["accuracy"]) == forward


def test_load_rows_keeps_the_row_before_a_cut_one(tmp_path):
    from dus_agents.evaluation.results import load_rows

    path = tmp_path / "results.csv"
    whole = "".join(f"uniform,joint,tiny,{seed},0.{seed + 1}\n" for seed in range(3))
    path.write_text("policy,host,preset,seed,accuracy\n" + whole + "uniform,joint,ti")
    rows, _ = load_rows(path, repair=False)  # the cut line is dropped, the one before it kept
    assert [r["seed"] for r in rows] == ["0", "1", "2"]
    path.write_text("policy,host,preset,seed,accuracy\n" + whole + "uniform,joint,tiny,3,0.4")
    rows, _ = load_rows(path, repair=True)  # a cut line that still parses: dropped as well
    assert [r["seed"] for r in rows] == ["0", "1", "2"]
    assert path.read_text().endswith("tiny,2,0.3\n")
