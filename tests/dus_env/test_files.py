"""The one atomic-write helper: a failed or interrupted write leaves the old file."""

from __future__ import annotations

import pytest

from dus_env.files import append_line, atomic_write, atomic_writer


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write(path, "one")
    atomic_write(path, b"two")
    assert path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(path) as handle:
            handle.write("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_append_line_adds_one_whole_line(tmp_path):
    path = tmp_path / "log.jsonl"
    append_line(path, "a")
    append_line(path, "b\n")
    assert path.read_text() == "a\nb\n"
    with pytest.raises(ValueError, match="valid choices"):
        with atomic_writer(path, "a"):
            pass
