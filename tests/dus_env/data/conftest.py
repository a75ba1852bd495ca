"""Fixtures of the dataset tests: a generated Fashion-MNIST copy and isolation from the machine's."""

from __future__ import annotations

from pathlib import Path

import pytest

from dus_env.data import clear_dataset_cache
from dus_env.data import fashion_mnist as fm
from tests.support.fashion import write_copy


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_copy(tmp_path / "fmnist")


@pytest.fixture
def fashion_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No test sees the machine's copy, the caller's env var or another test's cache."""
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setattr(fm, "DEBIAN_ROOT", tmp_path / "no-debian")
    fm.clear_cache()
    clear_dataset_cache()
    yield
    fm.clear_cache()
    clear_dataset_cache()
