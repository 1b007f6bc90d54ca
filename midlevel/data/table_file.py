"""Reading a table file: its cells as strings under its header's names, each row's file line.

Python's csv module reads a one-character separator record by record (as pandas' python
engine does), so that each row's fields can be checked against the header and each row
numbered by the line it starts on (blank lines and cells holding line breaks counted).
"""
from __future__ import annotations

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
    it, record by record, so that a row's fields are checked against the header: a short row's
    absent fields are empty cells (missing or a problem, as the table's missing_values say); a
    row with more fields than the header is a problem (an unquoted decimal comma or separator),
    unless the extra fields are empty (a trailing separator) or every row has one more field
    than the header and they are numbered 1..n (R's write.table row names, dropped); a quoted
    cell running over lines that look like rows (an unbalanced quote swallowing them) is a
    problem. A longer separator is a regular expression, read by pandas."""
    if len(table.sep) != 1:
        return _read_cells_pandas(table, file, problems)
    import csv
    records, end = [], 0
    try:
        with open(file, encoding=table.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=table.sep)
            try:
                for fields in reader:
                    start, end = end + 1, reader.line_num
                    if len(fields) > 1 or (len(fields) == 1 and fields[0].strip()):
                        records.append((start, end, fields))  # (pandas skips blank lines)
            except csv.Error as exc:
                problems.append(Problem(f"cannot parse table: {exc} (an unbalanced quote "
                                        f"\" opens a cell that runs to here?)", file=str(file),
                                        row=reader.line_num))
                return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"cannot parse table: {exc} (read as {table.encoding}: save "
                                f"it as UTF-8, or give the table's encoding, e.g. 'encoding: "
                                f"utf-16' for Excel's Unicode text)", file=str(file)))
        return None
    if not records:
        problems.append(Problem("cannot parse table: no columns to parse from file",
                                file=str(file)))
        return None
    header = list(records[0][2])
    header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark under encoding utf-8
    n, rows = len(header), records[1:]
    names = unique_header(header, table.strip_headers, str(file), problems)
    longer = [r for r in rows if len(r[2]) > n]
    if longer and all(len(r[2]) == n + 1 for r in rows) and \
            [r[2][0].strip() for r in rows] == [str(i) for i in range(1, len(rows) + 1)]:
        rows = [(a, b, fields[1:]) for a, b, fields in rows]  # R's row names 1..n
        longer = []
    bad = [r for r in longer if any(f.strip() for f in r[2][n:])]
    for start, _, fields in bad[:SHOWN_ROWS]:
        problems.append(Problem(
            f"row has {len(fields)} fields, the header {n} (an unquoted decimal comma such as "
            f"'4,66' in a table separated by {table.sep!r}, a separator inside a cell that is "
            f"not quoted, or a row-name column without a header name?)", file=str(file),
            row=start))
    if len(bad) > SHOWN_ROWS:
        problems.append(Problem(f"{len(bad) - SHOWN_ROWS} more rows have more fields than "
                                f"the header", file=str(file)))
    if bad:
        return None
    for start, end, fields in rows:
        if end > start:
            _merged_rows(start, end, fields, names, table.sep, n, str(file), problems)
    cells = [(fields + [""] * (n - len(fields)))[:n] for _, _, fields in rows]
    frame = pd.DataFrame(cells, columns=names, dtype=object)
    frame["_row"] = np.array([start for start, _, _ in rows], dtype=int)
    return frame


SHOWN_ROWS = 5
"""Rows named one by one in a table's field-count problems; the rest are counted."""


def _merged_rows(start: int, end: int, fields: list[str], names: list[str], sep: str, n: int,
                 file: str, problems: list[Problem]) -> None:
    """A problem for a quoted cell of the record on file lines ``start``-``end`` whose lines
    after its first hold as many separators as a row does: rows swallowed by an unbalanced
    quote (a line break typed inside a cell, Excel's Alt+Enter, holds no such line)."""
    for name, cell in zip(names, fields):
        lines = cell.split("\n")
        if len(lines) > 1 and any(line.count(sep) >= n - 1 for line in lines[1:]):
            problems.append(Problem(
                f"a quoted cell runs over file lines {start}-{end}, whose lines hold "
                f"separators as rows do: an unbalanced quote (\") in this row took the rows "
                f"below it into one cell (quote the cell whole, or remove the quote)",
                file=file, row=start, column=name))


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
        hint = (f" (read as {table.encoding}: save it as UTF-8, or give the table's encoding, "
                f"e.g. 'encoding: utf-16' for Excel's Unicode text)"
                if isinstance(exc, UnicodeDecodeError) else "")
        problems.append(Problem(f"cannot parse table: {exc}{hint}", file=str(file)))
        return None
    if len(header.columns) == len(frame.columns):  # else pandas moved a column to the index
        frame.columns = unique_header(list(header.iloc[0]), table.strip_headers, str(file),
                                       problems)
    elif table.strip_headers:
        frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.fillna("")  # a short row's absent fields: empty cells
    frame["_row"] = np.arange(2, len(frame) + 2)
    return frame


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
