"""The command-line toolkit every script of the project shares: one dataclass -> argparse.

A CLI is a dataclass whose fields are its flags, each with a docstring under it (the help
text), as CleanRL's scripts do. :func:`build_parser` turns it into an ``argparse`` parser:

* ``bool`` -> ``--flag`` / ``--no-flag``;
* ``int``, ``float``, ``str`` (or ``X | None``) -> ``--flag VALUE``;
* ``list[str]`` -> a repeatable ``--flag VALUE``;

a field's ``metadata={"metavar": ...}`` names its value in the usage line.

:func:`parse` returns the dataclass instance and the names given on the command line;
:func:`run` calls a ``main`` and turns the package's usage errors into one line on stderr and
exit status 2, never a traceback. Used by ``dus-train``, ``dus-evaluate``, ``dus-prepare`` and
the benchmarks.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from dus_env.errors import UsageError, check_choice

T = TypeVar("T")


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
    ``SystemExit(2)`` raised (as argparse does for a bad flag), and Ctrl-C as exit status 130;
    other exceptions propagate."""
    prog = prog or (sys.argv[0].rsplit("/", 1)[-1] if sys.argv else "dus")
    try:
        return main(argv)
    except UsageError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
