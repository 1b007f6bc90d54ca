"""Loading a spec's annotations: read, join and check its tables, assign splits, segments."""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from midlevel.data.segments import Segments, load_segments
from midlevel.data.spec import DataSpec, format_id
from midlevel.data.splits import assign_splits
from midlevel.data.tables import (Table, cell_text, inferred_classes, listing, padding_hint,
                                   parse_binary, parse_rating, parse_tags, read_table)
from midlevel.errors import Problem, ValidationFailed

log = logging.getLogger("midlevel.data")
_SAID: set = set()  # the segment tables' unread columns warned about (once per process)


@dataclass
class Annotations:
    """The result of :func:`load_annotations`.

    Attributes
    ----------
    table : pd.DataFrame
        Indexed by ``clip``; columns ``path``, ``split``, concepts, targets (see ARCHITECTURE.md).
    problems : list[Problem]
        Everything wrong with the tables (not yet the audio; see ``validate``).
    notes : list[str]
        Things a user should know that are not errors (rows dropped by an inner join, ...).
    segments : Segments
        The time-varying ratings of the spec's ``segments`` tables (empty without any); the
        table carries the same object as ``table.attrs["segments"]``.
    """

    table: pd.DataFrame
    problems: list[Problem]
    notes: list[str]
    sources: dict[str, tuple[str, int]]  # clip -> (file, row) of its first table
    segments: Any = None
    joined: Any = None  # the Joined tables, for source(); None when no table could be read
    rejected: dict = None  # table column -> the clips whose cell in it is a problem

    def __post_init__(self):
        if self.segments is None:
            self.segments = Segments.empty()

    def source(self, clip: str, column: str) -> tuple[str | None, int | None]:
        """(file, 1-based row) of ``clip``'s cell in table column ``column``: the table that
        column came from (row None where that table has no row for the clip); the clip's
        first table for a column no table has."""
        if self.joined is not None and column in self.joined.origin:
            return self.joined.where(column, self.joined.frame.index.get_loc(clip))
        return self.sources.get(clip, (None, None))


ROW = "\x00row{}"  # the joined frame's column holding table k's row of each clip (NaN: none)


@dataclass
class Joined:
    """The tables of a spec joined into one frame of raw cells, remembering where each cell
    came from.

    Attributes
    ----------
    frame : pd.DataFrame
        Indexed by clip; the tables' columns as strings (NaN where a join found no row), then
        one column ``ROW.format(k)`` per table ``k``: the clip's 1-based row in that file.
    files : list[str]
        The file of each table, in spec order.
    origin : dict[str, int]
        Column of ``frame`` -> the index of the table it came from.
    """

    frame: pd.DataFrame
    files: list[str]
    origin: dict[str, int]

    def cells(self) -> pd.DataFrame:
        """The table columns only (no row bookkeeping), for listings in messages."""
        return self.frame[[c for c in self.frame.columns if c in self.origin]]

    def where(self, column: str, i: int) -> tuple[str, int | None]:
        """(file, 1-based row) of the cell of ``column`` at position ``i``: the table the
        column came from; row None where that table has no row for the clip."""
        k = self.origin[column]
        row = self.frame[ROW.format(k)].iloc[i]
        return self.files[k], None if pd.isna(row) else int(row)

    def first_sources(self) -> list[tuple[str, int]]:
        """(file, row) of the first table holding each clip, in the frame's order."""
        ks = [k for k in range(len(self.files)) if ROW.format(k) in self.frame]  # joined so far
        rows = self.frame[[ROW.format(k) for k in ks]].to_numpy(float)
        first = np.argmax(~np.isnan(rows), axis=1)  # every clip comes from some table
        return [(self.files[ks[j]], int(rows[i, j])) for i, j in enumerate(first)]


def _with_rows(t: Table, k: int, keep: pd.Series) -> pd.DataFrame:
    """Table ``t``'s kept rows, its ``_row`` column renamed to ``ROW.format(k)``."""
    return t.frame[keep].rename(columns={"_row": ROW.format(k)})


def _merge(spec: DataSpec, tables: list[Table], problems: list[Problem],
           notes: list[str]) -> Joined:
    """Join the tables in order; returns a :class:`Joined` indexed by clip id, cells as
    strings."""
    first = tables[0]
    keep = first.ids.notna() & ~first.ids.duplicated(keep="first")
    merged = _with_rows(first, 0, keep)
    merged.index = pd.Index(first.ids[keep], name="clip")
    joined = Joined(merged, [str(t.file) for t in tables],
                    {c: 0 for c in first.frame.columns if c != "_row"})
    for k, t in enumerate(tables[1:], start=1):
        keep = t.ids.notna() & ~t.ids.duplicated(keep="first")
        right = _with_rows(t, k, keep)
        right.index = pd.Index(t.ids[keep], name="_key")
        right_rows = right[ROW.format(k)]
        if t.spec.join_on is None:
            left_keys = pd.Series(merged.index, index=merged.index)
        else:
            if t.spec.join_on not in joined.origin:
                problems.append(Problem(f"join_on column not found in the tables before; columns "
                                        f"are {listing(joined.cells())}",
                                        file=str(t.file), column=t.spec.join_on))
                continue
            fmt = t.spec.join_format or t.spec.id_format
            left_keys = pd.Series([_safe_format(v, fmt) for v in merged[t.spec.join_on]],
                                  index=merged.index)
        matched_left = left_keys.isin(right.index)
        matched_right = right.index.isin(set(left_keys.dropna()))
        how = t.spec.how
        if padding := padding_hint(left_keys[~matched_left.to_numpy()].dropna(),
                                   right.index[~matched_right], joined.files[0] if k == 1
                                   else "the tables before it", t.file):
            (problems.append(Problem(padding, file=str(t.file), column=t.spec.id_column))
             if how == "exact" else notes.append(padding))
        if how == "exact":
            joined.frame = merged
            firsts = joined.first_sources()
            for i in np.flatnonzero(~matched_left.to_numpy()):
                file, row = firsts[i]
                problems.append(Problem(f"id present in {file} but not in {t.file}",
                                        file=file, row=row, clip=str(merged.index[i])))
            for key in right.index[~matched_right]:
                problems.append(Problem("id present in this table only (no match in the tables "
                                        "before)", file=str(t.file), row=int(right_rows[key]),
                                        column=t.spec.id_column, clip=str(key)))
        elif how in ("inner", "left"):
            n_left, n_right = int((~matched_left).sum()), int((~matched_right).sum())
            if how == "inner" and n_left:
                notes.append(f"{n_left} clip(s) without a match in {t.file} dropped (how: inner)")
            if n_right:
                notes.append(f"{n_right} row(s) of {t.file} without a match ignored (how: {how})")
        overlap = set(right.columns) & set(joined.origin)
        right = right.rename(columns={c: f"{c}__{k + 1}" for c in overlap})
        repeated = sorted(overlap - {t.spec.id_column})  # the key it joins on is no repeat
        if repeated:
            notes.append(f"column(s) {repeated} of {t.file} also in an earlier table; "
                         f"the earlier table's values are used")
        joined.origin.update({c: k for c in right.columns if c != ROW.format(k)})
        extra = right.reindex(left_keys.to_numpy())
        extra.index = merged.index
        merged = pd.concat([merged, extra], axis=1)
        if how in ("inner", "exact"):
            merged = merged[matched_left.to_numpy()]
        if how == "outer":
            unmatched = right[~matched_right]
            if len(unmatched):
                notes.append(f"{len(unmatched)} row(s) of {t.file} without a match kept as clips "
                             f"of their own (how: outer)")
                add = unmatched.copy()
                add.index = pd.Index(add.index, name="clip")
                merged = pd.concat([merged, add], axis=0)
        joined.frame = merged
    return joined


def _safe_format(value: Any, fmt: str | None) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "":
        return None
    try:
        return format_id(value, fmt)
    except ValueError:
        return None


def _numeric(spec: DataSpec, joined: Joined, problems: list[Problem],
             missing: dict[str, set[str]], rejected: dict[str, set[str]]) -> pd.DataFrame:
    """Convert concept and target cells to numbers, reporting every bad cell with the file and
    row of the table its column came from (and its clip in ``rejected[column]``); returns
    one float column per concept / target."""
    merged = joined.frame
    out = pd.DataFrame(index=merged.index)
    tagged: dict[str, list] = {}  # group -> tags per cell (None: missing), parsed once
    for col in spec.concepts + spec.targets:
        if col.sep is not None and col.column in merged.columns:
            if col.group not in tagged:
                tagged[col.group] = _tag_cells(spec, col, joined, problems, missing, rejected)
            out[col.name] = [np.nan if t is None else float(col.tag in t)
                             for t in tagged[col.group]]
            continue
        if col.column not in merged.columns:
            if col.sep is not None:
                if col.group in tagged:
                    out[col.name] = np.nan
                    continue  # reported once for its group
                tagged[col.group] = []
            problems.append(Problem(f"unknown column for {'concept' if col in spec.concepts else 'target'} "
                                    f"'{col.name}'; table columns are "
                                    f"{listing(joined.cells())}",
                                    file=str(spec.path) if spec.path else None, column=col.column))
            out[col.name] = np.nan
            continue
        values = np.full(len(merged), np.nan)
        read = [cell_text(c, missing.get(col.column, {""}))
                for c in merged[col.column].to_numpy()]
        classes = list(col.classes) if col.classes else None
        if col.is_class and classes is None:
            classes, read = inferred_classes(read)
        for i, (text, message) in enumerate(read):
            if text is None and message is None:  # a missing rating
                continue
            if message is None and col.is_class:
                value, message = ((classes.index(text), None) if text in classes else
                                  (np.nan, f"unknown class {text!r}; classes are {classes}"))
            elif message is None:
                value, message = (parse_binary(text) if col.is_binary
                                  else parse_rating(text, col.scale))
            if message:
                file, row = joined.where(col.column, i)
                problems.append(Problem(message, file=file, row=row, column=col.column,
                                        clip=str(merged.index[i])))
                rejected.setdefault(col.column, set()).add(str(merged.index[i]))
                continue
            values[i] = value
        out[col.name] = values
        if col.is_class:
            out.attrs.setdefault("classes", {})[col.name] = classes
    return out


def _tag_cells(spec: DataSpec, col, joined: Joined, problems: list[Problem],
               missing: dict[str, set[str]],
               rejected: dict[str, set[str]]) -> list[set[str] | None]:
    """The tags named in each cell of a delimited group column (None: a missing cell);
    every name that is not one of the group's tags is a problem naming file, row, column."""
    tags = [c.tag for c in spec.concepts + spec.targets if c.group == col.group]
    out: list[set[str] | None] = []
    merged = joined.frame
    for i, cell in enumerate(merged[col.column].to_numpy()):
        if col.empty == "none" and isinstance(cell, str) and not cell.strip():
            out.append(set())  # an empty cell: no tag applies
            continue
        text, message = cell_text(cell, missing.get(col.column, {""}))
        found, unknown = parse_tags(text, col.sep, tags) if text is not None else (None, [])
        if unknown:
            message = f"unknown tag(s) {unknown} of group '{col.group}'; its tags are {tags}"
        if message:
            file, row = joined.where(col.column, i)
            problems.append(Problem(message, file=file, row=row, column=col.column,
                                    clip=str(merged.index[i])))
            rejected.setdefault(col.column, set()).add(str(merged.index[i]))
            found = None
        out.append(found)
    return out


def _absolute(path: os.PathLike) -> str:
    """``path`` made absolute and normalized (``..`` removed) without following symlinks: the
    path a user wrote, not the file a link points to (a dataset of linked files is named, and
    scanned for unreferenced audio, in its own folder)."""
    return os.path.abspath(path)


def _resolve_paths(spec: DataSpec, joined: Joined, problems: list[Problem]) -> pd.Series:
    """The absolute audio path of each clip ("" where the spec's path column is missing)."""
    merged = joined.frame
    if spec.audio_pattern:
        return pd.Series([_absolute(spec.root / spec.audio_pattern.format(id=clip))
                          for clip in merged.index], index=merged.index)
    col = spec.audio_path_column
    if col not in merged.columns:
        problems.append(Problem(f"audio.path_column not found; columns are "
                                f"{listing(joined.cells())}", column=col,
                                file=str(spec.path) if spec.path else None))
        return pd.Series([""] * len(merged), index=merged.index)
    return pd.Series([_absolute(spec.root / str(p)) if isinstance(p, str) and p else ""
                      for p in merged[col]], index=merged.index)


def _unrated_in_training(spec: DataSpec, joined: Joined, table: pd.DataFrame,
                         segments: Segments | None, named: set) -> list[Problem]:
    """A problem per concept / target that no training clip rates (a clip's cell or one of
    its segments), naming its column and table: a model cannot learn it. Columns no table
    has and those with bad cells (``named``: the columns problems name already) are left to
    those problems; without training clips the splits' problem says it all."""
    train = table.index[table["split"] == "train"]
    if not len(train):
        return []
    seg = segments.table if segments is not None else None
    if seg is not None:
        seg = seg[seg["clip"].isin(set(train))]
    out = []
    for col in spec.concepts + spec.targets:
        if (col.column not in joined.origin or col.column in named
                or table.loc[train, col.name].notna().any()):
            continue
        if seg is not None and col.name in seg and seg[col.name].notna().any():
            continue
        rated = int(table[col.name].notna().sum())
        kind = "concept" if col in spec.concepts else "target"
        out.append(Problem(
            f"{kind} '{col.name}' has no rating in the training split ({len(train)} clips"
            + (f"; {rated} clip(s) of other splits are rated" if rated else "")
            + "): a model cannot learn it; rate training clips or change the splits",
            file=joined.files[joined.origin[col.column]], column=col.column))
    return out


def load_annotations(spec: DataSpec, *, strict: bool = True) -> Annotations | pd.DataFrame:
    """Read, join and check the annotation tables of ``spec``; assign splits.

    Parameters
    ----------
    spec : a loaded :class:`DataSpec`.
    strict : raise :class:`ValidationFailed` listing every problem (default), and return only
        the table; with ``strict=False`` return an :class:`Annotations` holding the table (clips
        with bad cells keep NaN there), the problems and the notes.

    Returns
    -------
    pd.DataFrame [index=clip; columns=path, split, *concepts, *targets] (strict) or Annotations.
    A spec with ``segments`` tables puts their time-varying ratings on the table as
    ``table.attrs["segments"]`` (a :class:`~midlevel.data.segments.Segments`; read it with
    :func:`~midlevel.data.segments.segments_of`).
    """
    problems: list[Problem] = []
    notes: list[str] = []
    tables = []
    for i, t in enumerate(spec.tables):
        read = read_table(t, spec.table_root(t) / t.path, problems, key=f"tables[{i}]")
        if read is None:
            break
        tables.append(read)
    if len(tables) < len(spec.tables):
        result = Annotations(pd.DataFrame(columns=["path", "split"]), problems, notes, {})
        if strict:
            raise ValidationFailed(problems, f"cannot load the annotations of spec '{spec.name}'")
        return result
    missing_by_column: dict[str, set[str]] = {}
    for t in tables:
        for c in t.frame.columns:
            missing_by_column.setdefault(c, set()).update(t.spec.missing_values)
    joined = _merge(spec, tables, problems, notes)
    merged = joined.frame
    rejected: dict[str, set[str]] = {}
    values = _numeric(spec, joined, problems, missing_by_column, rejected)
    table = pd.concat([pd.DataFrame({"path": _resolve_paths(spec, joined, problems)}),
                       pd.DataFrame({"split": "train"}, index=merged.index), values], axis=1)
    table.index.name = "clip"
    table.attrs["classes"] = values.attrs.get("classes", {})
    groups = {}
    for s in spec.splits.values():
        if s.group_by:
            if s.group_by not in joined.origin:
                problems.append(Problem(f"splits group_by column not found; columns are "
                                        f"{listing(joined.cells())}",
                                        column=s.group_by, file=str(spec.path)))
            else:
                groups[s.group_by] = merged[s.group_by].astype(str)
    table["split"] = assign_splits(spec, table.index, groups, problems, notes)
    sources = dict(zip(merged.index, joined.first_sources()))
    segments = None
    if spec.segments:
        segments = load_segments(spec, table.index, problems)
        table.attrs["segments"] = segments
    problems.extend(_unrated_in_training(spec, joined, table, segments,
                                         {p.column for p in problems}))
    if strict:
        if problems:
            raise ValidationFailed(problems, f"annotations of spec '{spec.name}' have problems")
        for note in notes:  # validate lists them; every other command logs them
            log.info("spec '%s': %s", spec.name, note)
        for warning in segments.unread if segments is not None else ():
            if (warning.file, warning.column) not in _SAID:  # once per process
                _SAID.add((warning.file, warning.column))
                log.warning("%s", warning)
        return table
    return Annotations(table, problems, notes, sources, segments, joined, rejected)
