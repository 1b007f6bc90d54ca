"""Reading annotation tables: every cell as a string, each row's file line, formatted keys."""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.data.spec import SegmentTableSpec, TableSpec, format_id
from midlevel.errors import Problem


@dataclass
class Table:
    spec: TableSpec
    file: Path
    frame: pd.DataFrame  # raw cells as str, with a '_row' column (1-based file line)
    ids: pd.Series  # formatted key per row (index aligned with frame)


def read_table(table: TableSpec | SegmentTableSpec, file: Path, problems: list[Problem], *,
                unique: bool = True, kind: str = "annotation table",
                key: str = "table") -> Table | None:
    """Read ``file`` as strings; ``unique``: a key may appear once (not so for segments);
    ``key``: the table's place in the spec for messages (``tables[0]``, ``segments[1]``)."""
    if not file.is_file():
        where = (f" (under the spec's root '{table.root}': give it with --root "
                 f"{table.root}=DIR)" if getattr(table, "root", None) else "")
        problems.append(Problem(f"{kind} not found{where}", file=str(file)))
        return None
    frame = _read_cells(table, file, problems)
    if frame is None:
        return None
    if table.id_column not in frame.columns:
        problems.append(Problem(f"id column not found; columns are {listing(frame)}",
                                file=str(file), column=table.id_column))
        return None
    if table.filter:
        view = filter_view(frame, table.missing_values)
        try:
            kept = view.query(table.filter, engine="python")
        except Exception as exc:  # pandas raises many types for a bad query
            problems.append(Problem(f"'{key}.filter' {table.filter!r} failed on this table: "
                                    f"{type(exc).__name__}: {exc} ({FILTER_SEES})",
                                    file=str(file)))
            return None
        mismatched = filter_type_mismatches(table.filter, view)
        if mismatched or (len(frame) and not len(kept)):
            why = ("; ".join(mismatched) + f" ({FILTER_SEES})" if mismatched else
                   f"it keeps none of the table's {len(frame)} rows")
            problems.append(Problem(f"'{key}.filter' {table.filter!r}: {why}", file=str(file)))
            return None
        frame = frame.loc[kept.index]
    ids = []
    for row, raw in zip(frame["_row"], frame[table.id_column]):
        try:
            ids.append(format_id(raw, table.id_format))
        except ValueError as exc:
            problems.append(Problem(f"bad id: {exc}", file=str(file), row=int(row),
                                    column=table.id_column))
            ids.append(None)
    ids = pd.Series(ids, index=frame.index, dtype=object)
    blank = ids.isin([""])
    for index, row in frame.loc[blank, "_row"].items():
        cells = frame.loc[index].drop("_row")
        stray = all(pd.isna(v) or not str(v).strip() for v in cells)
        problems.append(Problem("empty id" + (" (every cell of the row is empty: a stray row "
                                              "at the end of a spreadsheet export?)" if stray
                                              else ""),
                                file=str(file), row=int(row), column=table.id_column))
    ids[blank] = None
    if not unique:
        return Table(table, file, frame, ids)
    dup = ids.notna() & ids.duplicated(keep=False)
    for clip, group in frame[dup].groupby(ids[dup]):
        rows = ", ".join(str(r) for r in group["_row"])
        problems.append(Problem(f"duplicate id '{clip}' in rows {rows}", file=str(file),
                                row=int(group["_row"].iloc[1]), column=table.id_column,
                                clip=str(clip)))
    return Table(table, file, frame, ids)


def _read_cells(table: TableSpec | SegmentTableSpec, file: Path,
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
    names = _unique_header(header, table.strip_headers, str(file), problems)
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
    """:func:`_read_cells` for a separator of more than one character (a regular expression,
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
        frame.columns = _unique_header(list(header.iloc[0]), table.strip_headers, str(file),
                                       problems)
    elif table.strip_headers:
        frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.fillna("")  # a short row's absent fields: empty cells
    frame["_row"] = np.arange(2, len(frame) + 2)
    return frame


FILTER_SEES = ("a filter sees numbers in a column whose cells are all numbers or missing, text "
               "in every other column and in a column of numbers written with leading zeros "
               "such as ids '007', compared as number == '007'")


def filter_type_mismatches(expression: str, view: pd.DataFrame) -> list[str]:
    """Comparisons in a filter that can match no row whatever the data: a column of numbers
    tested for equality or membership with text (``year == '2001'``), or a column of text with a
    number (``code == 1``). Each is described in a sentence naming the column; an expression
    Python cannot parse (backtick-quoted names) is not checked here."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return []
    numeric = {c for c in view.columns if c != "_row" and pd.api.types.is_numeric_dtype(view[c])}
    text = {c for c in view.columns if c != "_row"} - numeric

    def literals(node) -> list:
        if isinstance(node, ast.Constant):
            return [node.value]
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [e.value for e in node.elts if isinstance(e, ast.Constant)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant):
            return [node.operand.value]
        return []

    found = []
    equality = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, a, b in zip(node.ops, operands, operands[1:]):
            if not isinstance(op, equality):
                continue
            for name, other in ((a, b), (b, a)):
                if not isinstance(name, ast.Name):
                    continue
                values = [v for v in literals(other) if not isinstance(v, bool)]
                if name.id in numeric and any(isinstance(v, str) for v in values):
                    found.append(f"column {name.id!r} holds numbers and is compared with text "
                                 f"{[v for v in values if isinstance(v, str)]} (write the "
                                 f"number without quotes)")
                elif name.id in text and any(isinstance(v, (int, float)) for v in values):
                    found.append(f"column {name.id!r} holds text and is compared with a number "
                                 f"{[v for v in values if isinstance(v, (int, float))]} (quote "
                                 f"it: {name.id} == '...')")
    return found


def filter_view(frame: pd.DataFrame, missing) -> pd.DataFrame:
    """What a table's ``filter`` query sees: a copy of the raw cells in which every column
    whose cells are all numbers, empty or one of ``missing`` (with at least one number) holds
    floats (NaN for the empty and missing cells); every other column keeps its text, and so
    does a column of numbers written with leading zeros (``007``: an id, compared as
    ``id == '007'``, as before filters saw numbers)."""
    view = frame.copy()
    for column in frame.columns:
        if column == "_row":
            continue
        text = frame[column].astype(str).str.strip()
        absent = text.isin(set(missing) | {""})
        present = text[~absent]
        numbers = pd.to_numeric(text.where(~absent), errors="coerce")
        if len(present) and numbers[~absent].notna().all() and \
                not present.str.match(r"^[+-]?0\d").any():
            view[column] = numbers
    return view


def _unique_header(names: list[str], strip: bool, file: str, problems: list[Problem]) -> list[str]:
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


def listing(frame: pd.DataFrame) -> str:
    return ", ".join(repr(c) for c in frame.columns if c != "_row")


def cell_text(cell, missing) -> tuple[str | None, str | None]:
    """One raw cell of a concept, target or segment column -> (its text stripped of spaces,
    None); (None, None) for a missing cell: NaN (a join found no row for the clip) or one of
    ``missing`` (the missing_values of the tables holding the column); (None, what is wrong)
    for an empty or whitespace-only cell that is not a missing value. Every column type reads
    its cells through here, so an empty cell means the same in each: missing where the
    tables say so, else a problem (never a rating, a class ``''`` or "no tag")."""
    if not isinstance(cell, str):
        return None, None
    text = cell.strip()
    if text in missing:
        return None, None
    if not text:
        return None, (f"empty cell, which is not one of the table's missing_values "
                      f"{sorted(missing)} (add \"\" to missing_values to read it as missing)")
    return text, None


DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
"""A number as a rating cell may write it: ASCII digits, a decimal point, an exponent."""

MISSING_MARKERS = frozenset({"NA", "N/A", "NAN", "NULL", "NONE", "-", "?", "#N/A"})
"""Cells (in upper case) that spreadsheets and scripts write for a missing value: a problem,
with a hint to add them to missing_values, where a rating, or an undeclared class, is read."""


def parse_rating(text: str, scale: tuple[float, float] | None) -> tuple[float, str | None]:
    """One rating cell -> (value, None), or (NaN, what is wrong with it)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or (math.isfinite(value) and not DECIMAL.fullmatch(text)):
        # (float() also reads '1_0' as 10 and Arabic-Indic digits)
        if text.upper() in MISSING_MARKERS:
            return math.nan, (f"non-numeric rating {text!r} (a missing rating? add {text!r} to "
                              f"the table's missing_values)")
        if re.fullmatch(r"[+-]?\d*,\d{3}", text):
            return math.nan, (f"non-numeric rating {text!r} (a thousands separator, or a "
                              f"decimal comma? ratings are read with a decimal point and no "
                              f"separators)")
        if re.fullmatch(r"[+-]?\d*,\d+", text):
            return math.nan, (f"non-numeric rating {text!r} (a decimal comma? ratings are read "
                              f"with a decimal point: save the table with '.' decimals, "
                              f"{text.replace(',', '.')!r})")
        return math.nan, f"non-numeric rating {text!r}"
    if not math.isfinite(value):
        return math.nan, (f"non-finite rating {text!r} (leave the cell empty for a missing "
                          f"rating)")
    if scale and not (scale[0] <= value <= scale[1]):
        return math.nan, f"rating {value:g} outside the scale [{scale[0]:g}, {scale[1]:g}]"
    return value, None


BINARY_CELLS = {"0": 0.0, "1": 1.0, "no": 0.0, "yes": 1.0, "false": 0.0, "true": 1.0}


def parse_binary(text: str) -> tuple[float, str | None]:
    """One binary cell -> (0.0 or 1.0, None), or (NaN, what is wrong with it).

    ``0``/``1``, ``yes``/``no`` and ``true``/``false`` (any case; ``0.0``/``1.0`` too)."""
    key = text.strip().lower()
    if key in BINARY_CELLS:
        return BINARY_CELLS[key], None
    try:
        value = float(key)
    except ValueError:
        value = math.nan
    if value in (0.0, 1.0):
        return value, None
    return math.nan, f"binary cell {text!r} is not 0/1, yes/no or true/false"


def parse_tags(text: str, sep: str, tags: list[str]) -> tuple[set[str], list[str]]:
    """One delimited tag cell -> (the tags it names, the names that are not tags)."""
    named = [t.strip() for t in text.split(sep) if t.strip()]
    return {t for t in named if t in tags}, [t for t in named if t not in tags]


def padding_hint(left, right, left_file, right_file) -> str:
    """A sentence when unmatched ids of two tables match once leading zeros are ignored
    (``1`` in one, ``001`` in the other): the cause of every unmatched-id line, said once."""
    def bare(key) -> str:
        text = str(key)
        return text.lstrip("0") or "0" if text.isdigit() else text
    others = {bare(k): str(k) for k in left}
    pairs = [(others[bare(k)], str(k)) for k in right if bare(k) in others]
    if not pairs:
        return ""
    mine, theirs = pairs[0]
    padded = max(pairs[0], key=len)
    shorter = "the first" if len(mine) < len(theirs) else "the second"
    return (f"ids are written differently in {left_file} and {right_file}: {len(pairs)} "
            f"match once leading zeros are ignored (clip '{mine}' in the first is '{theirs}' "
            f"in the second); give {shorter}, whose ids have fewer digits, id_format: "
            f"\"{{:0{len(padded)}d}}\"")
