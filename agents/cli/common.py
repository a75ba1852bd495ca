"""The command-line toolkit every script of the project shares: one dataclass -> argparse.

A CLI is a dataclass whose fields are its flags, each with a docstring under it (the help
text), as CleanRL's scripts do. :func:`build_parser` turns it into an ``argparse`` parser:

* ``bool`` -> ``--flag`` / ``--no-flag``;
* ``int``, ``float``, ``str`` (or ``X | None``) -> ``--flag VALUE``;
* ``list[str]`` -> a repeatable ``--flag VALUE``;

a field's ``metadata={"metavar": ...}`` names its value in the usage line.

:func:`parse` returns the dataclass instance and the names given on the command line;
:func:`run` calls a ``main`` and turns the package's usage errors into one line on stderr and
exit status 2, never a traceback, a :class:`Failed` run as one line and exit status 1, and
Ctrl-C as exit status 130. The checks every CLI shares live here too: ranges
(:func:`check_at_least`, :data:`MAX_THREADS`), ``--set`` overrides (:func:`check_set`), output
folders and files (:func:`check_writable_dir`, :func:`check_output_file`) and the message of a
full disk (:func:`write_failure`). Used by ``dus-train``, ``dus-evaluate``, ``dus-prepare`` and
the benchmarks.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import errno
import inspect
import os
import sys
import tempfile
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dus_env.errors import UsageError, check_choice

T = TypeVar("T")

MAX_THREADS = 1024
"""The most CPU threads a flag may ask for (OpenMP aborts, or segfaults, on absurd counts)."""
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
"""The ``errno`` of a write the disk refused (full, over quota, read-only, failing)."""


class Failed(Exception):
    """A run that stopped on a fault after it started writing (a full disk, a lost worker);
    :func:`run` prints it as one line and exits with status 1. Its message says what is kept
    and how to go on."""


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass ``cls`` (and of its bases), by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def flag_name(name: str) -> str:
    """``probe_max_train`` -> ``--probe-max-train``."""
    return "--" + name.replace("_", "-")


def _scalar(tp: Any) -> Any:
    """The argparse ``type`` of an annotation (``X | None`` -> X)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else str
    return tp if tp in (int, float, str) else str


def build_parser(cls: type, *, prog: str | None = None, description: str | None = None,
                 epilog: str | None = None) -> argparse.ArgumentParser:
    """An ``argparse`` parser with one flag per field of dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, help_text = hints[f.name], docs.get(f.name, "") or " "
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if tp is bool:
            parser.add_argument(flag_name(f.name), dest=f.name,
                                action=argparse.BooleanOptionalAction, default=default,
                                help=help_text)
        elif typing.get_origin(tp) is list:
            parser.add_argument(flag_name(f.name), dest=f.name, action="append",
                                default=list(default or []),
                                metavar=f.metadata.get("metavar", "VALUE"), help=help_text)
        else:
            kind = _scalar(tp)
            metavar = f.metadata.get("metavar") or {int: "N", float: "X"}.get(kind, f.name.upper())
            parser.add_argument(flag_name(f.name), dest=f.name, type=kind, default=default,
                                metavar=metavar, help=help_text)
    return parser


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Names of the fields given on the command line (not left at their defaults)."""
    quiet = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kwargs: dict[str, Any] = {"dest": action.dest, "default": argparse.SUPPRESS}
            if isinstance(action, argparse.BooleanOptionalAction):
                kwargs["action"] = argparse.BooleanOptionalAction
            elif isinstance(action, argparse._AppendAction):
                kwargs["action"] = "append"
            else:
                kwargs["type"] = action.type
            quiet.add_argument(*action.option_strings, **kwargs)
    namespace, _ = quiet.parse_known_args(list(argv))
    return set(vars(namespace))


def parse(cls: type[T], argv: Sequence[str] | None = None,
          parser: argparse.ArgumentParser | None = None) -> tuple[T, set[str]]:
    """(an instance of ``cls`` from ``argv``, the field names given explicitly)."""
    parser = parser or build_parser(cls)
    argv = list(sys.argv[1:] if argv is None else argv)
    namespace = parser.parse_args(argv)
    return cls(**vars(namespace)), explicit_flags(parser, argv)


def comma_list(flag: str, value: str) -> list[str]:
    """``"a, b,a"`` -> ``["a", "b"]`` (order kept, duplicates and blanks dropped)."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise UsageError(f"{flag}={value!r} is empty; give a comma list")
    return list(dict.fromkeys(items))


def check_at_least(flag: str, value: float, low: float, high: float | None = None) -> None:
    """Raise :class:`UsageError` unless ``low <= value <= high``."""
    if value < low or (high is not None and value > high):
        top = "inf" if high is None else f"{high}"
        raise UsageError(f"{flag}={value} is out of range; valid range: [{low}, {top}]")


def check_option(flag: str, value: str, choices: Iterable[str]) -> None:
    """``value`` is one of ``choices``, or a usage error (exit 2) naming the flag, the value
    and the valid choices."""
    try:
        check_choice(flag, value, choices)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_set(pairs: Sequence[str], preset: str) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs as config overrides, each key, value and name checked against
    ``preset``'s config; :class:`UsageError` naming ``--set``, the key, the value and what it
    should be otherwise (``--set trainer=5``: "expected a dict of its keys [...]")."""
    from dus_env.config import config_from_dict, get_preset, overrides_from_pairs

    try:
        overrides = overrides_from_pairs(pairs)
        config_from_dict(overrides, base=get_preset(preset))
    except (ValueError, TypeError) as exc:
        raise UsageError(set_message(exc)) from None
    return overrides


def set_message(exc: BaseException) -> str:
    """A config error of ``--set`` pairs as the message that names ``--set``."""
    return str(exc) if str(exc).startswith("--set") else f"--set: {exc}"


def check_writable_dir(flag: str, path: str | os.PathLike) -> None:
    """:class:`UsageError` (``--out-dir='/proc/x' cannot be written (...); choose another
    --out-dir``) unless ``path`` is, or can be made as, a folder this process can write in.
    Tried for real where nothing is shared: a probe file in ``path`` when it exists, else a
    probe folder of a unique name beside the first missing part; removed at once, so it leaves
    nothing behind and runs started side by side do not trip over each other's probes."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{str(existing)!r} is not a directory")
        if existing == path:
            handle, name = tempfile.mkstemp(dir=path, prefix=".write-check-")
            os.close(handle)
            os.unlink(name)
        else:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-check-"))
    except OSError as err:
        raise not_writable(flag, path, err) from None


def not_writable(flag: str, path: str | os.PathLike, err: OSError) -> UsageError:
    """The :class:`UsageError` of an output folder this process cannot write in."""
    reason = f"[Errno {err.errno}] {err.strerror}" if err.strerror else one_line(err)
    return UsageError(f"{flag}={str(path)!r} cannot be written ({reason}); choose another {flag}")


def check_output_file(flag: str, path: str | os.PathLike) -> None:
    """:class:`UsageError` unless a file can be written at ``path`` (not a folder, its parent
    a folder this process can write in); checked before any work, leaving nothing behind."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag}={str(path)!r} is a directory; give a file path")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{flag}={str(path)!r}: {str(parent)!r} is a file, not a directory")
    check_writable_dir(flag, path.parent)


def is_disk_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a write the disk refused (:data:`DISK_ERRNOS`)."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def write_failure(where: str | os.PathLike, err: BaseException, kept: str, rerun: str) -> str:
    """The one line of a run whose writes failed mid-way (a full disk): what failed, what is
    kept, how to go on (``rerun``, e.g. "rerun the same command to resume")."""
    return (f"could not write the results in {where} ({one_line(err)}); {kept}; free space and "
            f"{rerun}")


def require(module: str, extra: str, what: str) -> Any:
    """Import ``module``, or raise :class:`UsageError` naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"{what} needs {module.split('.')[0]}, which is not installed; install the extra: "
            f"pip install 'dus-env[{extra}]'"
        ) from None


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message with newlines folded."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None, *,
        prog: str | None = None) -> int:
    """``main(argv)``, with a :class:`UsageError` printed as one line ``prog: error: ...`` and
    ``SystemExit(2)`` raised (as argparse does for a bad flag), a :class:`Failed` run as one
    line and exit status 1, and Ctrl-C as exit status 130 (``prog: interrupted``); other
    exceptions propagate."""
    prog = prog or (sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "dus")
    try:
        return main(argv)
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except Failed as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
