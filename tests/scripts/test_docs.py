"""Docs that stay true: generated parts of the README match the code."""

from __future__ import annotations

from tests.conftest import run_script


def test_readme_preset_table_comes_from_the_registry():
    proc = run_script("tools/sync_docs.py", "--check", check=False)
    assert proc.returncode == 0, proc.stderr
