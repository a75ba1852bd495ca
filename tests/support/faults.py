"""Fault injection shared by tests: stand-ins that raise where a real fault would strike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def interrupt_on_call(real: Callable[..., Any], n: int) -> tuple[Callable[..., Any], list[int]]:
    """A stand-in for ``real`` that raises ``KeyboardInterrupt`` (Ctrl-C) on its ``n``-th call
    and calls ``real`` otherwise; and the list its calls are counted in."""
    calls: list[int] = []

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return stand_in, calls
