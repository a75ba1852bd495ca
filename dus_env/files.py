"""Writing files so that an interruption never leaves a half-written one in place.

:func:`atomic_writer` is the one way the package replaces a file: everything goes to a
temporary file beside the target, flushed and fsynced, then renamed over it (``os.replace`` is
atomic on POSIX and Windows). A kill, a full disk or an exception mid-write leaves the old file
(or none) and no temporary behind. :func:`append_line` appends one whole line and syncs it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode`` is ``"w"`` (text) or ``"wb"`` (bytes); extra keyword arguments go to ``open``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} is not valid; valid choices: ['w', 'wb']")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Replace ``path`` with ``data`` (text or bytes) atomically; returns the path."""
    with atomic_writer(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return Path(path)


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append ``line`` (a trailing newline is added if missing) and sync it to disk."""
    if not line.endswith("\n"):
        line += "\n"
    with open(path, "a") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
