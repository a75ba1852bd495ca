"""The imbalance benchmark's smoke mode runs in seconds and writes a JSON that parses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "imbalance.py"


def test_smoke_runs_and_json_parses(tmp_path: Path) -> None:
    out = tmp_path / "imbalance.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
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
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--preset", "--seeds", "--splits", "--out", "--smoke", "--curve-budgets"):
        assert flag in proc.stdout
