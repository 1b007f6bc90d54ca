"""The value checks every layer shares: a whole number, or a finite number within bounds.

Settings reach the package as Python values (the API), as YAML (``--config``, data specs) and
as text (the command line). YAML leaves ``1e-3`` as the string ``'1e-3'`` (its 1.1 rules want a
dot), so a number written as text is read as that number here. Everything else that is not a
number is refused: a bool (``True`` is an int to Python), NaN, infinity, a fraction where a
count is wanted.

Each check returns the value as an ``int`` or ``float`` or raises ``error`` (each layer passes
its own class: ``TrainingError`` for a training setting, ``SpecError`` for a data spec, the
CLI's ``OptionValueError`` for argparse) with a message that names the setting (``name``; the
command line leaves it empty, argparse names the option) and the value at fault.
"""
from __future__ import annotations

import math
import numbers
import operator

from midlevel.errors import ArgumentError

__all__ = ["whole_number", "real_number"]


def _as_number(value, *, whole: bool):
    """``value`` as an int (``whole``) or a float, or None when it is no such number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:  # int() first: a long whole number keeps every digit
            return int(text) if whole else _as_number(float(text), whole=False)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, numbers.Integral):
        return int(value) if whole else float(value)
    if not isinstance(value, numbers.Real) or not math.isfinite(value):
        return None
    if whole:
        return int(value) if float(value).is_integer() else None
    return float(value)


def _prefix(name: str) -> str:
    return f"{name} " if name else ""


def whole_number(value, name: str = "", *, least: int = 1, most: int | None = None,
                 size: int | None = None, allow_none: bool = False,
                 error: type[Exception] = ArgumentError):
    """``value`` as an ``int >= least`` (and ``<= most`` where given; a float such as ``3.0``
    or the text ``'3'`` counts); with ``size``, a tuple of that many such ints (a window of
    (bands, frames)). None passes when ``allow_none``. Raises ``error`` naming ``name``
    otherwise."""
    if value is None and allow_none:
        return None
    items = (value,) if size is None else value
    numbers_, ok = [], not isinstance(items, (str, bytes))  # "33" is not the pair (3, 3)
    if ok:
        try:
            numbers_ = [_as_number(v, whole=True) for v in items]
        except TypeError:  # not a sequence where ``size`` asks for one
            ok = False
    ok = ok and (size is None or len(numbers_) == size) and all(
        v is not None and v >= least and (most is None or v <= most) for v in numbers_)
    if not ok:
        what = "a whole number" if size is None else f"{size} whole numbers"
        bounds = f">= {least}" + (f" and <= {most}" if most is not None else "")
        raise error(f"{_prefix(name)}must be {what} {bounds}, got {value!r}")
    return numbers_[0] if size is None else tuple(numbers_)


def real_number(value, name: str = "", *, above: float | None = None,
                least: float | None = None, below: float | None = None,
                most: float | None = None, unit: str = "", allow_none: bool = False,
                error: type[Exception] = ArgumentError) -> float | None:
    """``value`` as a finite float ``> above``, ``>= least``, ``< below`` and ``<= most``
    (each where given); None passes when ``allow_none``. Raises ``error`` naming ``name``
    (and ``unit``, e.g. ``"seconds"``) otherwise."""
    if value is None and allow_none:
        return None
    number = _as_number(value, whole=False)
    ok = number is not None and all(
        bound is None or test(number, bound)
        for bound, test in ((above, operator.gt), (least, operator.ge),
                            (below, operator.lt), (most, operator.le)))
    if not ok:
        bounds = " and ".join(f"{sign} {bound:g}" for sign, bound in (
            (">", above), (">=", least), ("<", below), ("<=", most)) if bound is not None)
        what = "a finite number" + (f" of {unit}" if unit else "") + (f" {bounds}" if bounds
                                                                       else "")
        raise error(f"{_prefix(name)}must be {what}, got {value!r}")
    return number


def article(word: str) -> str:
    """"an" before a word that starts with a vowel letter ("an independent run"), else "a"."""
    return "an" if str(word)[:1].lower() in "aeiou" else "a"
