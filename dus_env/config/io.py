"""Configs to and from plain dicts (JSON) and command-line ``KEY=VALUE`` overrides.

:func:`config_to_dict` and :func:`config_from_dict` round-trip an :class:`EnvConfig` through
JSON; unknown keys fail with the valid keys and a "did you mean", values of the wrong type with
the field, the value and the expected type (:mod:`dus_env.config.fields`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Union

from dus_env.config.components import EnvConfig
from dus_env.config.data import DATA_CONFIGS
from dus_env.errors import check_choice, did_you_mean


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config."""
    return dataclasses.asdict(config)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType) and isinstance(value, Mapping):
        kind = value.get("name", "synthetic")
        check_choice(f"{path}.name", kind, DATA_CONFIGS)
        return _from_dict(DATA_CONFIGS[kind], value, path)
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return _from_dict(tp, value, path)
    return value  # the config's own field checks take it from here


def _from_dict(cls: type, data: Mapping[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            full = f"{path}.{key}" if path else str(key)
            raise ValueError(
                f"unknown config key {full!r}; valid keys: {names}." + did_you_mean(key, names)
            )
        kwargs[key] = _convert(hints[key], value, f"{path}.{key}" if path else key)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any], base: EnvConfig | None = None) -> EnvConfig:
    """Build an :class:`EnvConfig` from a nested dict, over ``base`` (default: ``EnvConfig()``).

    Keys missing from ``data`` keep ``base``'s values; nested dicts are merged the same way.
    Unknown keys raise ``ValueError`` naming the key and the valid ones.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"config must be a dict of overrides, got {type(data).__name__}")
    merged = _merge(config_to_dict(base if base is not None else EnvConfig()), data, "")
    return _from_dict(EnvConfig, merged, "")


def value_of(text: str) -> Any:
    """A command-line value: read as JSON when it parses (``3``, ``1e-3``, ``[0.5,1]``,
    ``null``), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def overrides_from_pairs(pairs: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """Nested overrides from command-line ``KEY=VALUE`` pairs (``reward.name=discrepancy``,
    ``sampler.multipliers=[0.5,1,2]``). Values are read as JSON when they parse, else kept as
    strings. Feed the result to :func:`config_from_dict`, which checks the keys and types."""
    nested: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(f"{flag}={pair!r}: expected KEY=VALUE with a dotted key, e.g. "
                             f"{flag} reward.name=discrepancy")
        parsed = value_of(value)
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"{flag}={pair!r}: {part!r} was already set to a value")
            node = child
        node[leaf] = parsed
    return nested


def _merge(base: dict[str, Any], update: Mapping[str, Any], path: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        here = f"{path}.{key}" if path else str(key)
        if (key == "data" and not path and isinstance(value, Mapping)
                and value.get("name", out[key].get("name")) != out[key].get("name")):
            out[key] = dict(value)  # a different dataset kind replaces the whole slice
        elif isinstance(out.get(key), dict):
            if not isinstance(value, Mapping):
                raise TypeError(f"{here}={value!r} has type {type(value).__name__}; expected a "
                                f"dict of its keys {sorted(out[key])}")
            out[key] = _merge(out[key], value, here)
        else:
            out[key] = value
    return out
