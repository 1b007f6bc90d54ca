"""Clip names of the explanation workflows: short, unique, and usable as file names.

``midlevel explain`` names each clip by its file's stem and writes files (a bottleneck's
``<clip>_contributions.png``, a black box's ``<clip>/`` folder) under that name. Two clips
must never share one: names are made unique *after* every mapping they go through (a file-safe
form maps ``"a b"`` and ``"a_b"``, or ``"ü"`` and ``"é"``, to one name), against every name
of the batch, ignoring case (``A`` and ``a`` are one file on a case-insensitive file system).
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["safe_name", "unique_names", "clip_names"]


def safe_name(text: str) -> str:
    """A file-name friendly version of ``text``: runs of characters other than ASCII letters,
    digits and ``_.=-`` become ``_`` (ends stripped); ``"x"`` when nothing is left, or only
    dots (``.`` and ``..`` name folders). Applying it twice changes nothing."""
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(text)).strip("_")
    return name if name.strip(".") else "x"


def unique_names(names, *, safe: bool = False) -> list[str]:
    """``names`` (mapped by :func:`safe_name` when ``safe``), each made unique.

    A name that occurs once (case ignored) is kept; each copy of a repeated one gets the first
    suffix ``_1``, ``_2``, ... that no other name of the list holds, so ``a, a, a_1`` becomes
    ``a_2, a_3, a_1``. Returns a list of the same length, in the same order.
    """
    mapped = [safe_name(n) if safe else str(n) for n in names]
    counts: dict[str, int] = {}
    for n in mapped:
        counts[n.casefold()] = counts.get(n.casefold(), 0) + 1
    taken = {n.casefold() for n in mapped if counts[n.casefold()] == 1}
    out = []
    for n in mapped:
        if counts[n.casefold()] == 1:
            out.append(n)
            continue
        k = 1
        while f"{n}_{k}".casefold() in taken:
            k += 1
        taken.add(f"{n}_{k}".casefold())
        out.append(f"{n}_{k}")
    return out


def clip_names(paths, *, safe: bool = False) -> list[str]:
    """Short unique clip names from file paths: the stems, made unique by
    :func:`unique_names` (after :func:`safe_name` when ``safe``)."""
    return unique_names([Path(str(p)).stem for p in paths], safe=safe)
