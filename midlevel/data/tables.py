"""Reading annotation tables: every cell as a string, each row's file line, formatted keys."""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from midlevel.data.spec import SegmentTableSpec, TableSpec, format_id
from midlevel.data.table_file import read_cells
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
    frame = read_cells(table, file, problems)
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


CLASS_MISSING_MARKERS = MISSING_MARKERS - {"NA", "NONE"}
"""The markers an undeclared class list refuses: ``NA`` and ``none`` may be real classes (no
vocals: ``none``), the others are no class name."""


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


def inferred_classes(read: list[tuple[str | None, str | None]]
                     ) -> tuple[list[str], list[tuple[str | None, str | None]]]:
    """The classes of a class column that declares none: its cells' texts, sorted; and the
    cells again, with a problem for a text that is no class: a missing-value marker
    (``n/a``, ``-``: :data:`CLASS_MISSING_MARKERS`) and a spelling of a class
    that differs from a more frequent one only in case or spaces (``Calm`` beside ``calm``:
    the same class written two ways would be learned as two). ``read``: (text, problem) per
    cell, as :func:`cell_text` gives them."""
    from collections import Counter
    counts = Counter(text for text, _ in read if text is not None)
    spelling: dict[str, str] = {}  # folded -> the most frequent spelling (first in order)
    for text, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        spelling.setdefault(" ".join(text.casefold().split()), text)
    out, classes = [], set()
    for text, message in read:
        if text is not None and message is None:
            usual = spelling[" ".join(text.casefold().split())]
            if text.upper() in CLASS_MISSING_MARKERS:
                message = (f"class {text!r} looks like a missing rating (add {text!r} to the "
                           f"table's missing_values, or declare the classes in the spec)")
            elif text != usual:
                message = (f"class {text!r} differs from class {usual!r} ({counts[usual]} "
                           f"cells) only in case or spaces (one class written two ways? "
                           f"declare the classes in the spec to keep both)")
            else:
                classes.add(text)
        out.append((text, message))
    return sorted(classes), out


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
