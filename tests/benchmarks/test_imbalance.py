"""The imbalance benchmark's smoke mode runs in seconds and writes a JSON that parses."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_module

MODULE = "benchmarks.imbalance"


def test_smoke_runs_and_json_parses(tmp_path: Path) -> None:
    out = tmp_path / "imbalance.json"
    proc = run_module(MODULE, "--smoke", "--out", str(out), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "smoke ok" in proc.stdout
    assert "weak probe gap" in proc.stdout
    result = json.loads(out.read_text())
    assert result["preset"] == "tiny"
    assert result["seeds"] == [0]
    gap = result["imbalance"]["weak_probe_gap_alone_minus_joint"]["val"]
    assert len(gap["per_seed"]) == 1
    assert -1.0 <= gap["mean"] <= 1.0
    lever = result["lever"]["summary"]["val"]
    assert set(lever) == {"uniform", "skew_weak", "skew_strong"}
    sizes = result["lever"]["batch_sizes"]
    totals = {sum(v.values()) for v in sizes.values()}
    assert len(totals) == 1  # equal total samples per iteration in every arm
    curves = result["curves"]["by_batch_size"]
    assert [c["batch_size"] for c in curves] == [8, 16]


def test_help_describes_every_flag() -> None:
    proc = run_module(MODULE, "--help", timeout=60, check=False)
    assert proc.returncode == 0
    for flag in ("--preset", "--seeds", "--splits", "--out", "--smoke", "--curve-budgets"):
        assert flag in proc.stdout


def test_shared_statistics_and_json(tmp_path: Path) -> None:
    """imbalance's mean/CI comes from benchmarks.common (built on the one t-interval) with the
    keys and numbers the benchmark always wrote; NaN goes to JSON as null."""
    import math

    from scipy import stats

    from benchmarks.common import mean_ci, median_spread, write_json

    values = [0.5, 0.7, 0.65, 0.9]
    mean = sum(values) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 3)
    half = stats.t.ppf(0.975, 3) * std / 2
    got = mean_ci(values)
    assert set(got) == {"mean", "std", "ci_low", "ci_high", "n"} and got["n"] == 4
    for key, want in (("mean", mean), ("std", std), ("ci_low", mean - half),
                      ("ci_high", mean + half)):
        assert math.isclose(got[key], want, rel_tol=1e-12), key
    assert mean_ci([0.4]) == {"mean": 0.4, "std": None, "ci_low": None, "ci_high": None, "n": 1}
    spread = median_spread([3.0, 1.0, 2.0, 4.0])
    assert spread == {"median": 2.5, "q1": 1.75, "q3": 3.25, "min": 1.0, "max": 4.0, "n": 4}
    assert set(median_spread([1.0], with_n=False)) == {"median", "q1", "q3", "min", "max"}
    out = tmp_path / "sub" / "x.json"
    write_json(out, {"a": math.nan, "b": [1.0, math.inf]})
    assert json.loads(out.read_text()) == {"a": None, "b": [1.0, None]}
