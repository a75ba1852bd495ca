"""Type checks every config dataclass runs first in ``__post_init__``, from its type hints.

:func:`check_fields` looks at each field's annotation and the value it holds:

* ``int`` takes an int (not a bool; a numpy integer is turned into an int);
* ``float`` takes an int or a float (not a bool), turned into a float, and finite unless the
  field's metadata says ``allow_inf``;
* ``bool`` and ``str`` take exactly that type;
* ``Literal[...]`` takes one of its values;
* ``tuple[X, ...]`` takes a list or tuple (never a string) of X, stored as a tuple;
  ``tuple[X, Y]`` takes exactly two;
* ``X | None`` takes None or an X; a nested config dataclass takes an instance of it.

Errors name the field with its prefix (``data.n_train``), the value and the expected type, so
``--set data.n_train=abc`` fails at once with that message instead of deep inside numpy.
Range checks stay in each class's ``__post_init__``, after these.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any, Literal, Union

from dus_env.errors import check_choice


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)}: " + ", ".join(_describe(a) for a in args)
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, name: str, allow_inf: bool) -> Any:
    """``value`` as type ``tp``, or ``TypeError``/``ValueError`` naming ``name``."""
    origin = typing.get_origin(tp)
    wrong = TypeError(f"{name}={value!r} has type {type(value).__name__}; expected "
                      f"{_describe(tp)}")
    if tp is Any:
        return value
    if origin is Literal:
        check_choice(name, value, typing.get_args(tp))
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, name, allow_inf)
            except (TypeError, ValueError) as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise wrong
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise wrong
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{name}[{i}]", allow_inf)
                         for i, v in enumerate(value))
        if len(value) != len(args):
            raise ValueError(f"{name}={value!r} needs exactly {len(args)} values")
        return tuple(_convert(a, v, f"{name}[{i}]", allow_inf)
                     for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise wrong
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise wrong
        value = float(value)
        if not allow_inf and not math.isfinite(value):
            raise ValueError(f"{name}={value!r} must be a finite number")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise wrong
        return value
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise wrong
        return value
    return value


def check_fields(config: Any, prefix: str = "") -> None:
    """Check (and normalise: lists -> tuples, numpy scalars -> Python) every field of the frozen
    dataclass ``config`` against its annotation; ``prefix`` names it in messages."""
    hints = _hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        name = f"{prefix}.{f.name}" if prefix else f.name
        converted = _convert(hints[f.name], value, name, bool(f.metadata.get("allow_inf")))
        if converted is not value:
            object.__setattr__(config, f.name, converted)
