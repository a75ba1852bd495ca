"""The package's error types, and the checks that raise them with the field, the value and the
valid choices.

Every error here subclasses a builtin (``ValueError``, ``ImportError``, ...), so callers that
catch the builtin keep working; catch the specific type to tell the package's errors apart.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable


# --------------------------------------------------------------------------- error types
class UsageError(ValueError):
    """Bad command-line input; CLIs print it as one line and exit with status 2."""


class DatasetError(ValueError):
    """The data on disk does not match the documented layout (see docs/datasets.md)."""


class MediaError(ValueError):
    """A media file exists but cannot be decoded (corrupt, truncated, wrong format)."""


class ArtifactError(ValueError):
    """A policy file that cannot be read as a dus-env artefact (or refuses to be: a file that
    would need unpickling, an oversized member)."""


class IncompatibleEnvError(ValueError):
    """A policy artefact loaded against an env it was not trained for."""


class RayNotInstalledError(ImportError):
    """The Ray backend was asked for but Ray cannot be imported."""


class RayConnectionError(ConnectionError):
    """The Ray cluster at the given address cannot be reached or joined."""


class RayWorkerLostError(RuntimeError):
    """An env actor died and Ray has no restarts left for it."""


# --------------------------------------------------------------------------- checks
def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """A " Did you mean 'x'?" suffix when ``value`` is close to one of ``choices``."""
    matches = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def check_choice(field: str, value: object, choices: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(
            f"{field}={value!r} is not valid; valid choices: {choices}."
            + did_you_mean(value, choices)
        )


def check_range(
    field: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (bounds optional, inclusivity
    chosen); NaN is never in range."""
    ok = not (isinstance(value, float) and math.isnan(value))
    if low is not None:
        ok &= value >= low if low_inclusive else value > low
    if high is not None:
        ok &= value <= high if high_inclusive else value < high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise ValueError(f"{field}={value!r} is out of range; valid range: {lb}{lo}, {hi}{hb}.")


def check_integer(field: str, value: object, low: int | None = None,
                  high: int | None = None) -> None:
    """Raise ``TypeError`` unless ``value`` is an integer (Python or numpy; not a bool, not a
    float that happens to be whole), then ``ValueError`` unless ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{field}={value!r} has type {type(value).__name__}; expected an "
                        "integer")
    check_range(field, value, low, high)


def check_names(field: str, value: object) -> None:
    """Raise ``TypeError`` unless ``value`` is a sequence of strings (a single string is not:
    ``"audio"`` would otherwise read as five one-letter names)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{field}={value!r} must be a sequence of names, e.g. "
                        "['audio', 'video']")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise TypeError(f"{field}={list(value)!r} must hold strings; got {bad[0]!r} "
                        f"({type(bad[0]).__name__})")
