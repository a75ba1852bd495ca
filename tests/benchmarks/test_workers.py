"""benchmarks.common.worker_pool: the workers end with the pool, also on an exception and on
SIGTERM to a benchmark (exit status 143, nothing left computing)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import common
from tests.conftest import ROOT


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status is left


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def test_an_exception_in_the_block_terminates_the_workers_at_once():
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="stop"):
        with common.worker_pool(2) as pool:
            for _ in range(4):
                pool.submit(time.sleep, 60)
            while not all(_alive(p) for p in pool._processes) or len(pool._processes) < 2:
                time.sleep(0.05)
            workers = list(pool._processes)
            raise RuntimeError("stop")
    assert time.perf_counter() - start < 30  # not the 60 s of a sleep, let alone two rounds
    assert not any(_alive(p) for p in workers)


def test_a_normal_exit_waits_for_the_work():
    with common.worker_pool(2) as pool:
        futures = [pool.submit(pow, 2, n) for n in range(8)]
    assert [f.result() for f in futures] == [2 ** n for n in range(8)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_a_fit_ends_it_with_143_and_leaves_no_worker(tmp_path):
    out = tmp_path / "fit.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fit_heuristic", "--suite", "tiny", "--trials", "200",
         "--seeds-per-task", "1", "--jobs", "2", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [p for p in _children(proc.pid) if _alive(p)]
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the fit never started its two workers"
        time.sleep(2)  # inside a trial: the workers are computing episodes
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    for _ in range(100):
        if not any(_alive(p) for p in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)
    # an unfinished search leaves at most the trials it finished, marked as such
    assert not out.exists() or json.loads(out.read_text())["complete"] is False
