"""Markdown rendering of tidy tables (the report and the benchmarks use it)."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd


def format_value(v) -> str:
    """A cell for a report: floats to 3 decimals (3 significant digits when tiny or huge);
    a missing value (NaN, None: listen-back's unchecked ``readable``) as "-"."""
    if v is None or v is pd.NA:
        return "-"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "-"
        return f"{v:.3g}" if abs(v) >= 1000 or abs(v) < 0.001 and v != 0 else f"{v:.3f}"
    return str(v)


_SPECIAL = re.compile(r"([\\`*_\[\]|#!])")


def md_text(text) -> str:
    """``text`` (a clip, concept, target or run name, a caption) as Markdown that shows it as
    it is: HTML's ``& < >`` as entities, Markdown's ``\\ ` * _ [ ] | # !`` escaped, line
    breaks as spaces."""
    text = " ".join(str(text).splitlines())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def md_link(target) -> str:
    """A link destination that may hold spaces and parentheses (``<...>``, CommonMark)."""
    return "<" + str(target).replace("<", "%3C").replace(">", "%3E") + ">"


def md_code(text) -> str:
    """``text`` as an inline code span, shown verbatim whatever it holds (a fence of one
    backtick more than its longest run of them): a list of names in code spans reads as one
    item per name even where a name holds ``,`` or ``;``."""
    text = " ".join(str(text).splitlines())
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(value) -> str:
    """A table cell: :func:`format_value` shown as it is (:func:`md_text`: ``|``, HTML and
    Markdown's marks escaped)."""
    return md_text(format_value(value))


def markdown_table(df: pd.DataFrame, max_rows: int = 60, *, literal: bool = True) -> str:
    """A pipe table (no extra dependency); long tables are cut with a note; a ``|`` in a cell
    is escaped (a note ``|f(x) - f(ref)|`` would shift the columns). ``literal``: every cell
    shown as it is (:func:`md_text`: names from the data); off, cells written by the caller
    keep their Markdown (``**yes**``, code spans: the benchmarks' own tables), only ``|``
    escaped."""
    if df is None or len(df) == 0:
        return "_(empty)_\n"
    cell = _cell if literal else (lambda v: format_value(v).replace("|", "\\|"))
    d = df.head(max_rows)
    lines = ["| " + " | ".join(cell(c) for c in d.columns) + " |",
             "|" + "|".join("---" for _ in d.columns) + "|"]
    for _, row in d.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in row.to_numpy()) + " |")
    if len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows in the CSV_")
    return "\n".join(lines) + "\n"
