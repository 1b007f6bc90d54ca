"""Clip names of the explanation workflows: short, unique, and usable as file names.

``midlevel explain`` names each clip by its file's stem and writes files (a bottleneck's
``<clip>_contributions.png``, a black box's ``<clip>/`` folder) under that name. Two clips
must never share one: names are made unique *after* every mapping they go through (a file-safe
form maps ``"a b"`` and ``"a_b"``, or ``"ü"`` and ``"é"``, to one name), against every name
of the batch, ignoring case (``A`` and ``a`` are one file on a case-insensitive file system),
and against the names the workflow writes beside the clips' files (``reserved``: a black box's
``predictions.csv``, ``listen_back.csv``, ... at the top of its folder).
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["safe_name", "unique_names", "clip_names", "MAX_NAME_BYTES"]

MAX_NAME_BYTES = 100
"""The longest clip name in bytes (UTF-8): a file system takes names of 255 bytes, and a clip's
files add their method, output and kind to its name (``<clip>_contributions.png``, a
compare report's ``<clip>_<run>_<output>_for.wav``). Longer names are cut, then made unique."""


def _bounded(name: str) -> str:
    """``name`` cut to :data:`MAX_NAME_BYTES` bytes, at a character's end."""
    raw = name.encode("utf-8")
    return name if len(raw) <= MAX_NAME_BYTES else raw[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def safe_name(text: str) -> str:
    """A file-name friendly version of ``text``: runs of characters other than ASCII letters,
    digits and ``_.=-`` become ``_`` (ends stripped), cut to :data:`MAX_NAME_BYTES`; ``"x"``
    when nothing is left, or only dots; a name that would start with a dot (a hidden file:
    ``../../x``, ``.intro``) gets an ``x`` in front, so it stays apart from ``intro``.
    Applying it twice changes nothing."""
    name = _bounded(re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(text)).strip("_")).strip("_")
    if not name.strip("."):
        return "x"
    return _bounded("x" + name) if name.startswith(".") else name


def unique_names(names, *, safe: bool = False, reserved=()) -> list[str]:
    """``names`` (mapped by :func:`safe_name` when ``safe``, cut to :data:`MAX_NAME_BYTES`
    bytes), each made unique.

    A name that occurs once (case ignored) and is not ``reserved`` (names taken already, case
    ignored: the files a workflow writes beside the clips') is kept; each copy of a repeated
    one, and a reserved one, gets the first suffix ``_1``, ``_2``, ... that no other name of
    the list and no reserved name holds, so ``a, a, a_1`` becomes ``a_2, a_3, a_1``, and
    ``predictions.csv`` with ``reserved=["predictions.csv"]`` becomes ``predictions.csv_1``.
    Returns a list of the same length, in the same order.
    """
    mapped = [safe_name(n) if safe else _bounded(str(n)) for n in names]
    blocked = {str(r).casefold() for r in reserved}
    counts: dict[str, int] = {}
    for n in mapped:
        counts[n.casefold()] = counts.get(n.casefold(), 0) + 1

    def kept(n: str) -> bool:
        return counts[n.casefold()] == 1 and n.casefold() not in blocked

    taken = blocked | {n.casefold() for n in mapped if kept(n)}
    out = []
    for n in mapped:
        if kept(n):
            out.append(n)
            continue
        k = 1
        while f"{n}_{k}".casefold() in taken:
            k += 1
        taken.add(f"{n}_{k}".casefold())
        out.append(f"{n}_{k}")
    return out


def clip_names(paths, *, safe: bool = False, reserved=()) -> list[str]:
    """Short unique clip names from file paths: the stems, made unique by
    :func:`unique_names` (after :func:`safe_name` when ``safe``; never one of ``reserved``)."""
    return unique_names([Path(str(p)).stem for p in paths], safe=safe, reserved=reserved)
