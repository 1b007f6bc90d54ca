"""Checks of a workflow's options, run before its first file is written.

A command that fails on its inputs writes nothing: every workflow checks all of its options
(counts, seconds; names where they are defined) up front, these helpers each raising
:class:`~midlevel.errors.ArgumentError` that names the option (and, in parentheses, the
command-line flag where it is spelled differently) and the value at fault.
"""
from __future__ import annotations

import math
import numbers

from midlevel.errors import ArgumentError

__all__ = ["count", "seconds"]


def _label(name: str, flag: str | None) -> str:
    return f"{name} ({flag})" if flag else name


def count(name: str, value, *, minimum: int = 1, flag: str | None = None) -> int:
    """``value`` as an int ``>= minimum``; ArgumentError for anything else (a bool, a float
    with a fraction, a negative number, which must never act as a Python slice)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok and isinstance(value, numbers.Real) and not isinstance(value, bool) \
            and math.isfinite(value) and float(value).is_integer():
        ok, value = True, int(value)
    if not ok or int(value) < minimum:
        raise ArgumentError(f"{_label(name, flag)} must be a whole number >= {minimum}, got "
                            f"{value!r}")
    return int(value)


def seconds(name: str, value, *, allow_none: bool = False, flag: str | None = None
            ) -> float | None:
    """``value`` as finite seconds ``> 0`` (None passes when ``allow_none``); ArgumentError
    for zero, a negative number, NaN, infinity or a non-number."""
    if value is None and allow_none:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ArgumentError(f"{_label(name, flag)} must be a finite number of seconds > 0, "
                            f"got {value!r}")
    return number

