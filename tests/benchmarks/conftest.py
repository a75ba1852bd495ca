"""The benchmark tests call benchmarks' ``main`` in this process too: each test gets the
process-wide state ``benchmarks.common.setup`` changes put back afterwards."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _restore_benchmark_process_state(benchmark_process_state):
    yield
