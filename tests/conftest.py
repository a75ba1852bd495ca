"""Shared test helpers: the repository root, script runners and small configs.

Tests mirror the package: ``tests/dus_env`` (the library), ``tests/agents`` (policies, RL
glue, evaluation), ``tests/scripts`` (the command lines end to end), ``tests/benchmarks``.
Helper modules bigger than a fixture live in ``tests/support``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
"""The repository checkout."""


@pytest.fixture
def benchmark_process_state():
    """Put back what ``benchmarks.common.setup`` changes in this process when a test calls a
    benchmark's ``main`` in-process: the BLAS/OpenMP thread variables (which every later
    subprocess would inherit), the threadpoolctl limit, torch's thread count and the
    ``benchmarks`` logger's handlers and level."""
    import logging

    from benchmarks import common

    saved = {var: os.environ.get(var) for var in common.THREAD_VARS}
    threads = torch.get_num_threads()
    log = logging.getLogger("benchmarks")
    handlers, level, propagate = list(log.handlers), log.level, log.propagate
    yield
    for var, value in saved.items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    if common._limits is not None:
        common._limits.restore_original_limits()
        common._limits = None
    torch.set_num_threads(threads)
    log.handlers[:] = handlers
    log.setLevel(level)
    log.propagate = propagate


def run_script(script: str, *args: str, timeout: float = 300, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python ROOT/script args...`` in a fresh interpreter (cwd ROOT), output captured."""
    proc = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def run_module(module: str, *args: str, timeout: float = 300, check: bool = True,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m module args...`` in a fresh interpreter (cwd ROOT), output captured."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          env=dict(os.environ, **(env or {})), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def rollout_observations(env, policy, n_episodes: int = 3):
    """Every observation of ``n_episodes`` whole episodes (seeds 0..n-1) of ``policy`` acting
    deterministically in ``env``, stacked."""
    import numpy as np

    out = []
    for seed in range(n_episodes):
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            out.append(obs)
            obs, _, done, _, _ = env.step(policy.predict(obs, deterministic=True)[0])
    return np.stack(out)


@pytest.fixture
def tiny_config():
    from dus_env.config import get_preset

    return get_preset("tiny")


@pytest.fixture(autouse=True, scope="session")
def _sb3_logs_in_tmp(tmp_path_factory):
    """SB3's default logger makes a folder per ``learn()`` under $TMPDIR; keep tests' in pytest's."""
    old = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3_logs"))
    yield
    if old is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = old
