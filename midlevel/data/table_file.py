"""Reading a table file: its cells as strings under its header's names, each row's file line.

Python's csv module reads a one-character separator record by record (as pandas' python
engine does), so that each row's fields can be checked against the header and each row
numbered by the line it starts on (blank lines and cells holding line breaks counted).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.data.spec import SegmentTableSpec, TableSpec
from midlevel.errors import Problem

__all__ = ["read_cells", "unique_header"]


def read_cells(table: TableSpec | SegmentTableSpec, file: Path,
                problems: list[Problem]) -> pd.DataFrame | None:
    """The cells of ``file`` as strings under its header's names, with a ``_row`` column: the
    file line each row starts on (blank lines and cells spanning lines counted, so that an
    editor's line number finds the row). None, with a problem, for a table that cannot be read.

    A one-character separator is read with Python's csv module as pandas' python engine reads
    it (strictly: a quote must close before the next separator), record by record, so that a
    row's fields are checked against the header: a short row's absent fields are empty cells
    (missing or a problem, as the table's missing_values say); empty fields past the header's
    (a trailing separator) are dropped; a row with more fields than the header is a problem
    (an unquoted decimal comma or separator), unless every row has exactly one more and the
    header and every row begin with a quote, or the rows' first fields are 1..n and no two
    neighbouring fields after them are whole numbers in every row (R's write.table layout,
    whose header lacks the row names' field: the row names are dropped; in the quoted layout
    before any trailing field is dropped, as its last column may be empty); a quoted cell
    holding lines that begin rows of their own (an unbalanced quote took them into one cell)
    is a problem. A longer separator is a regular expression, read by pandas: its rows are numbered
    from 2 whatever blank lines there are, and a row with more fields than the header is a
    problem."""
    if len(table.sep) != 1:
        return _read_cells_pandas(table, file, problems)
    import csv
    records, end = [], 0
    try:
        # utf-8-sig: a byte-order mark before a quoted header would keep its quotes
        encoding = "utf-8-sig" if table.encoding.lower().replace("_", "-") in ("utf-8", "utf8") \
            else table.encoding
        with open(file, encoding=encoding, newline="") as handle:
            lines: list[str] = []  # as written: R's row names are quoted
            reader = csv.reader(_kept(handle, lines), delimiter=table.sep, strict=True)
            try:
                for fields in reader:
                    start, end = end + 1, reader.line_num
                    if len(fields) > 1 or (len(fields) == 1 and fields[0].strip()):
                        records.append((start, end, fields))  # (pandas skips blank lines)
            except csv.Error as exc:
                quote = '"' in str(exc) or "end of data" in str(exc)
                problems.append(Problem(f"cannot parse table: {exc}" + (
                    " (a quote \" that does not close before the next separator, or a cell "
                    "opened by a quote that runs to here?)" if quote else ""), file=str(file),
                    row=reader.line_num))
                return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"cannot parse table: {exc}{_encoding_hint(table)}",
                                file=str(file)))
        return None
    if not records:
        problems.append(Problem("cannot parse table: no columns to parse from file",
                                file=str(file)))
        return None
    header = list(records[0][2])
    n, rows = len(header), records[1:]
    names = unique_header(header, table.strip_headers, str(file), problems)
    # R's write.table layout: a header without the row names' field. Quoted (R's default),
    # it is told apart first, as its last column may be empty; else empty fields past the
    # header's are trailing separators (dropped), and rows numbered 1..n hold R's row names
    quoted = all(lines[start - 1].lstrip("\ufeff").startswith('"') for start, _, _ in records)
    if not (quoted and _r_row_names(rows, n)):
        rows = [(a, b, fields[:n] if not any(f.strip() for f in fields[n:]) else fields)
                for a, b, fields in rows]
    numbered = [r[2][0].strip() for r in rows] == [str(i) for i in range(1, len(rows) + 1)] \
        and not _split_numbers(rows, table.sep)
    if _r_row_names(rows, n) and (quoted or numbered):
        rows = [(a, b, fields[1:]) for a, b, fields in rows]
    bad = [r for r in rows if len(r[2]) > n]
    for start, _, fields in bad[:SHOWN_ROWS]:
        problems.append(Problem(
            f"row has {len(fields)} fields, the header {n} (an unquoted decimal comma such as "
            f"'4,66' in a table separated by {table.sep!r}, a separator inside a cell that is "
            f"not quoted, or a row-name column without a header name: R's write.table with "
            f"row.names = FALSE writes none?)", file=str(file), row=start))
    if len(bad) > SHOWN_ROWS:
        problems.append(Problem(f"{len(bad) - SHOWN_ROWS} more rows have more fields than "
                                f"the header", file=str(file)))
    if bad:
        return None
    _swallowed_rows(rows, names, table.id_column, table.sep, str(file), problems)
    cells = [(fields + [""] * (n - len(fields)))[:n] for _, _, fields in rows]
    frame = pd.DataFrame(cells, columns=names, dtype=object)
    frame["_row"] = np.array([start for start, _, _ in rows], dtype=int)
    return frame


SHOWN_ROWS = 5
"""Rows named one by one in a table's field-count problems; the rest are counted."""


def _r_row_names(rows, n: int) -> bool:
    """Whether every row has one field more than the header's ``n``, as in R's write.table
    layout, whose header lacks the row names' field (the caller tells it by its quotes or
    its numbers 1..n)."""
    return bool(rows) and all(len(fields) == n + 1 for _, _, fields in rows)


def _split_numbers(rows, sep: str) -> bool:
    """Whether, in a comma-separated table, two neighbouring fields after the first hold
    whole numbers in every row: an unquoted decimal comma (``4,66`` read as ``4`` and
    ``66``), more likely than unquoted R row names before integer columns."""
    if sep != "," or not rows:
        return False
    whole = re.compile(r"\s*[+-]?\d+\s*")
    width = min(len(fields) for _, _, fields in rows)
    return any(all(whole.fullmatch(f[j]) and whole.fullmatch(f[j + 1]) for _, _, f in rows)
               for j in range(1, width - 1))


def _kept(handle, lines: list[str]):
    """The lines of ``handle``, each also appended to ``lines``."""
    for line in handle:
        lines.append(line)
        yield line


def _shape(text: str) -> str:
    """An id's shape: runs of letters as ``a``, of digits as ``9`` (``s0006`` -> ``a9``)."""
    return re.sub(r"\d+", "9", re.sub(r"[^\W\d_]+", "a", text))


def _swallowed_rows(rows, names: list[str], id_column: str, sep: str, file: str,
                    problems: list[Problem]) -> None:
    """A problem for each record with a quoted cell holding lines that begin rows of their
    own: a line after the cell's first whose field at the id column's place has the shape of
    the table's ids (most of them share one) and is no id of a row read (the rows an
    unbalanced quote takes into one cell are not read). A line break typed inside a cell
    (Excel's Alt+Enter) begins no such line."""
    if id_column not in names:
        return
    k = names.index(id_column)
    ids = [f[k].strip() for _, _, f in rows if len(f) > k and f[k].strip()]
    shapes = Counter(_shape(i) for i in ids).most_common(1)
    if not shapes or shapes[0][1] < 0.8 * len(ids):
        return  # ids of many shapes: no line can be told a row by its id
    shape, known = shapes[0][0], set(ids)
    for start, end, fields in rows:
        if end == start:
            continue
        for name, cell in zip(names, fields):
            parts = [line.split(sep) for line in cell.split("\n")[1:]]
            begun = [p[k].strip() for p in parts if len(p) > max(k, 1)]  # a row holds a sep
            begun = [i for i in begun if i and i not in known and _shape(i) == shape]
            if begun:
                problems.append(Problem(
                    f"a quoted cell runs over file lines {start}-{end} and holds what looks "
                    f"like the row of clip {begun[0]!r}: an unbalanced quote (\") in this row "
                    f"took the rows below it into one cell (quote the cell whole, or remove "
                    f"the quote)", file=file, row=start, column=name))
                break


def _read_cells_pandas(table: TableSpec | SegmentTableSpec, file: Path,
                       problems: list[Problem]) -> pd.DataFrame | None:
    """:func:`read_cells` for a separator of more than one character (a regular expression,
    read by pandas' python engine; rows are numbered from 2 without regard to blank lines)."""
    try:
        frame = pd.read_csv(file, sep=table.sep, encoding=table.encoding, dtype=str,
                            keep_default_na=False, na_filter=False, engine="python")
        header = pd.read_csv(file, sep=table.sep, encoding=table.encoding, dtype=str,
                             keep_default_na=False, na_filter=False, engine="python",
                             header=None, nrows=1)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        hint = _encoding_hint(table) if isinstance(exc, UnicodeDecodeError) else ""
        problems.append(Problem(f"cannot parse table: {exc}{hint}", file=str(file)))
        return None
    if len(header.columns) != len(frame.columns) or not isinstance(frame.index, pd.RangeIndex):
        # pandas moved a column (or more) to the index: rows longer than the header
        problems.append(Problem(f"rows have more fields than the header's "
                                f"{len(header.columns)} (sep {table.sep!r}: a separator at "
                                f"the end of each row, or inside a cell?)", file=str(file)))
        return None
    frame.columns = unique_header(list(header.iloc[0]), table.strip_headers, str(file),
                                  problems)
    frame = frame.fillna("")  # a short row's absent fields: empty cells
    frame["_row"] = np.arange(2, len(frame) + 2)
    return frame


def _encoding_hint(table) -> str:
    """What to do about a table its declared encoding cannot decode."""
    return (f" (read as {table.encoding}: save it as UTF-8, or give the table's encoding, "
            f"e.g. 'encoding: utf-16' for Excel's Unicode text)")


def unique_header(names: list[str], strip: bool, file: str, problems: list[Problem]) -> list[str]:
    """The column names of a table's header line (stripped of spaces when ``strip``), each
    name given more than once a problem naming its columns; returns unique names: a repeat
    keeps its name with `` (column N)`` added (N: its 1-based position), so that no column
    is read in place of another."""
    raw = [str(n) for n in names]
    names = [n.strip() if strip else n for n in raw]
    names = [n if n.strip() else f"Unnamed: {i}" for i, n in enumerate(names)]  # as pandas
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(name, []).append(i)
    out = list(names)
    for name, where in positions.items():
        if len(where) < 2:
            continue
        problems.append(Problem(
            f"column name {name!r} appears {len(where)} times in the header (columns "
            f"{', '.join(str(i + 1) for i in where)}"
            + ("; equal after stripping spaces" if len({raw[i] for i in where}) > 1 else "")
            + "): rename or remove all but one",
            file=file, row=1, column=name))
        for i in where[1:]:
            out[i] = f"{name} (column {i + 1})"
    return out
