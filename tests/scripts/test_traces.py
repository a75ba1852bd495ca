"""Behaviour held fixed across restructurings: recorded DUS-v0 episodes replay unchanged.

``tests/data/traces_v0.json.gz`` was recorded with ``tools/record_traces.py --write`` before the
decision-step refactor: 11 episodes (tiny, default and mfeat3 presets; joint, MLA and OGM-GE
hosts; random and heuristic actions; the hybrid reward with the ratio discrepancy and EMA
scores). Each step's observation, reward, flags and info must come back the same: bit for bit on the
machine the traces were recorded on (torch build, CPU path and model, thread count), to a
relative 1e-4 elsewhere (another CPU's kernels round differently). The check runs torch's
kernels on the recorded CPU path (AVX2) even where the CPU offers AVX512, whose kernels round
differently enough to compound past 1e-4 within one episode.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_recorded_traces_replay_unchanged():
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "record_traces.py"), "--check",
         str(ROOT / "tests" / "data" / "traces_v0.json.gz")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "11 traces equal" in out.stdout


def test_an_unreadable_traces_file_is_one_line_naming_it(tmp_path):
    not_gzip = tmp_path / "plain.json.gz"
    not_gzip.write_text("{}")
    for path in (tmp_path / "missing.json.gz", not_gzip):
        out = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "record_traces.py"), "--check", str(path)],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith(f"record_traces.py: error: --check: cannot read {str(path)!r}")
        assert out.stderr.count("\n") == 1
