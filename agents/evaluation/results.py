"""A sweep's results on disk: ``results.csv`` (one row per run) and ``traces.jsonl`` (one
line per run), written so that any interruption leaves a state the next run repairs.

Each finished run appends its trace line, then its row; both are flushed and fsynced. A run
counts as done only when its row is complete. What an interruption can leave, and what
:meth:`ResultsStore.open` does about it:

* a trace without a row (killed between the two writes): the run is redone, and the newer
  trace wins (:func:`load_traces` keeps the last complete trace of each run);
* a half-written last line of either file (killed, or the disk filled, mid-write): it is cut
  off, so the next append starts on a fresh line;
* a half-written or duplicated row: dropped (the file is rewritten atomically without it).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dus_env.files import append_line, atomic_writer

KEY_FIELDS: tuple[str, ...] = ("policy", "host", "preset", "seed")
"""A run is identified by these columns of ``results.csv``."""


def run_key(row: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """(policy, host, preset, seed) of a row or trace."""
    return (str(row["policy"]), str(row["host"]), str(row["preset"]), int(row["seed"]))


def load_rows(path: Path, repair: bool = True) -> tuple[list[dict[str, str]], list[str]]:
    """Complete rows of ``results.csv`` and its header. A row cut short by a killed run (or a
    last line without its newline) is dropped; with ``repair`` the file is rewritten without it.
    """
    if not path.is_file():
        return [], []
    text = path.read_text()
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    rows, dropped, last_kept = [], 0, False
    for row in reader:
        ok = None not in row and all(v is not None for v in row.values())
        try:
            ok = ok and bool(run_key(row)) and bool(float(row["accuracy"]) >= 0)
        except (KeyError, TypeError, ValueError):
            ok = False
        if ok:
            rows.append(row)
        else:
            dropped += 1
        last_kept = bool(ok)
    if last_kept and not text.endswith("\n"):  # the last line was cut, though it parsed
        rows.pop()
        dropped += 1
    unique = {run_key(r): r for r in rows}
    dropped += len(rows) - len(unique)
    rows = list(unique.values())
    if dropped and repair:
        write_rows(path, rows, header)
    return rows, header


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]], header: Sequence[str]) -> None:
    """Rewrite ``path`` atomically."""
    with atomic_writer(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(header), restval="")
        writer.writeheader()
        writer.writerows(rows)


def csv_line(row: Mapping[str, Any], header: Sequence[str]) -> str:
    """One CSV row as text (with its newline)."""
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=list(header), restval="").writerow(row)
    return buf.getvalue()


def cut_partial_line(path: Path) -> bool:
    """Truncate ``path`` after its last newline (a line cut short by a kill or a full disk);
    returns whether anything was cut."""
    if not path.is_file():
        return False
    size = path.stat().st_size
    if size == 0:
        return False
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return False
        handle.seek(0)
        keep = handle.read().rfind(b"\n") + 1
        handle.truncate(keep)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def load_traces(path: Path, keys: set[tuple]) -> list[dict[str, Any]]:
    """The last complete trace of each run in ``keys``, in file order."""
    if not path.is_file():
        return []
    out: dict[tuple, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        try:
            trace = json.loads(line)
            key = run_key(trace)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if key in keys:
            out.pop(key, None)
            out[key] = trace
    return list(out.values())


class ResultsStore:
    """``results.csv`` and ``traces.jsonl`` of one output directory.

    Args:
        out_dir: the directory (must exist and be writable).
        header: the columns this sweep writes; an existing file with other columns is
            rewritten with the union (old rows keep empty cells for new columns).
    """

    def __init__(self, out_dir: Path, header: Sequence[str]) -> None:
        self.csv_path = out_dir / "results.csv"
        self.trace_path = out_dir / "traces.jsonl"
        for path in (self.csv_path, self.trace_path):  # fail before any run, not after one
            with open(path, "a"):
                pass
        cut_partial_line(self.trace_path)
        cut_partial_line(self.csv_path)
        self.rows, old_header = load_rows(self.csv_path)
        if not old_header:  # a new (or empty) file
            write_rows(self.csv_path, [], header)
            old_header = list(header)
        merged = list(dict.fromkeys([*old_header, *header]))
        if merged != old_header:
            write_rows(self.csv_path, self.rows, merged)
        self.header = merged
        self.done = {run_key(r) for r in self.rows}

    def append(self, row: Mapping[str, Any], trace: Mapping[str, Any]) -> bool:
        """Write one finished run (trace first, then row); False if it is already there."""
        key = run_key(row)
        if key in self.done:
            return False
        append_line(self.trace_path, json.dumps(trace))
        append_line(self.csv_path, csv_line(row, self.header))
        self.done.add(key)
        self.rows.append({k: str(v) for k, v in row.items()})
        return True

    def traces(self) -> list[dict[str, Any]]:
        """The trace of every finished run."""
        return load_traces(self.trace_path, set(self.done))
