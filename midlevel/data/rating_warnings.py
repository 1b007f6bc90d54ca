"""The warnings ``midlevel validate`` gives about ratings (:mod:`midlevel.data.validate`):
a missing rating (clip and column), a split with no rating of a column or one value only, a
declared class no clip has, a column read by two concepts or by a concept and a target. Each
is a :class:`~midlevel.errors.Problem` naming the file, row and column it comes from."""
from __future__ import annotations

import pandas as pd

from midlevel.data.segments import Segments
from midlevel.data.spec import SPLITS, DataSpec
from midlevel.errors import Problem


def missing_mask(spec: DataSpec, table: pd.DataFrame, rejected: dict[str, set[str]],
                 segments: Segments | None = None) -> pd.DataFrame:
    """True per clip and concept / target of ``table`` where the rating is NaN, its cell
    was not rejected (``rejected``: table column -> clips whose cell is a problem) and no
    segment of the clip (``segments``) rates the column over time."""
    cols = [c for c in spec.concepts + spec.targets if c.name in table]
    mask = pd.DataFrame({c.name: table[c.name].isna()
                         & ~table.index.isin(list(rejected.get(c.column, ()))) for c in cols},
                        index=table.index, columns=[c.name for c in cols])
    seg = segments.table if segments is not None and len(segments) else None
    for name in [c for c in mask.columns if seg is not None and c in seg.columns]:
        rated = set(seg.loc[seg[name].notna(), "clip"].astype(str))
        mask[name] &= ~mask.index.astype(str).isin(rated)
    return mask


def missing_ratings(spec: DataSpec, table: pd.DataFrame, source,
                    rejected: dict | None = None, segments=None) -> list[Problem]:
    """A warning per missing rating: the clip, the column, and the file and row of the table
    that column comes from (``source(clip, column) -> (file, row)``, as
    :meth:`Annotations.source <midlevel.data.annotations.Annotations.source>` gives them).
    The cells in ``rejected`` (table column -> clips, as ``Annotations.rejected``) are
    problems already, not missing ratings; nor is an empty cell of a clip whose
    ``segments`` (:class:`~midlevel.data.segments.Segments`) rate the column over time."""
    out = []
    mask = missing_mask(spec, table, rejected or {}, segments)
    for col in spec.concepts + spec.targets:
        if col.name not in table:
            continue
        if len(table) > 1 and mask[col.name].all():  # one line, not one per clip
            file = source(table.index[0], col.column)[0]
            out.append(Problem(f"missing rating: {col.name} has no rating on any of the "
                               f"{len(table)} clips", file=file, column=col.column))
            continue
        for clip in table.index[mask[col.name]]:
            file, row = source(clip, col.column)
            out.append(Problem(f"missing rating: {col.name}", file=file, row=row,
                               column=col.column, clip=str(clip)))
    return out


def split_ratings(spec: DataSpec, table: pd.DataFrame, source,
                  rejected: dict | None = None) -> list[Problem]:
    """A warning per split (with clips) other than train and column that has no rating there
    (``unrated split``: validation cannot select on it, test cannot measure it; an unrated
    training split is a problem, see :mod:`midlevel.data.annotations`), and per split and rating
    column whose ratings there are all one value (``constant ratings``: no r, R^2 or calibration
    line there; the model learns a constant from such a training split), and per split and
    binary or class column with a single label there (``one label``: no AUC there; the model
    learns only that label from such a training split). ``source`` names the
    column's table file (see :func:`missing_ratings`); ``rejected`` (table column -> clips
    whose cell is a problem) lets an unrated split say that its cells were there but
    rejected."""
    out = []
    if not len(table) or "split" not in table:
        return out
    for split in SPLITS:
        rows = table[table["split"] == split]
        if not len(rows):
            continue
        for col in spec.concepts + spec.targets:
            if col.name not in rows:
                continue
            values = rows[col.name].dropna()
            file = source(rows.index[0], col.column)[0]
            if not len(values) and split != "train":  # train: a problem already
                bad = len(set(rows.index) & set((rejected or {}).get(col.column, ())))
                out.append(Problem(f"unrated split: the {split} split ({len(rows)} clips) has "
                                   f"no rating of {col.name}" + (
                                       f" that could be read ({bad} of its cells are problems, "
                                       f"listed as such)" if bad else ""),
                                   file=file, column=col.column))
            elif not col.is_binary and not col.is_class and len(values) > 1 and \
                    values.nunique() == 1:
                out.append(Problem(f"constant ratings: {col.name} is {values.iloc[0]:g} on "
                                   f"every one of the {len(values)} rated clips of the {split} "
                                   f"split (no r, R^2 or calibration line there)", file=file,
                                   column=col.column))
            elif (col.is_binary or col.is_class) and len(values) > 1 and values.nunique() == 1:
                out.append(Problem(_one_label(col, values.iloc[0], len(values), split,
                                              table.attrs.get("classes", {})),
                                   file=file, column=col.column))
    return out


def unused_classes(spec: DataSpec, table: pd.DataFrame, source) -> list[Problem]:
    """A warning per declared class that no clip has (``unused class``): its logit is
    trained only to lose, and a coefficient table cannot use it as the base class (its
    ``versus`` column names the first class clips have). ``source`` as in
    :func:`missing_ratings`."""
    out = []
    for col in spec.concepts + spec.targets:
        if not col.is_class or not col.classes or col.name not in table or not len(table):
            continue
        declared = list(col.classes)
        used = set(table[col.name].dropna().astype(int))
        unused = [c for k, c in enumerate(declared) if k not in used]
        if unused and used:
            file = source(table.index[0], col.column)[0]
            first = declared[min(used)]
            out.append(Problem(f"unused class: {col.name} declares {unused} but no clip has "
                               f"{'it' if len(unused) == 1 else 'them'} (coefficient tables "
                               f"compare the classes with '{first}', the first class clips "
                               f"have)", file=file, column=col.column))
    return out


def shared_columns(spec: DataSpec, table: pd.DataFrame, source) -> list[Problem]:
    """A warning per column that two concepts read (``shared column``: the same ratings under
    two names; no model or coefficient table can tell their effects apart) and per concept
    reading a target's column (the bottleneck is handed the target: its head can copy it).
    Tags of one group read from one delimited cell share that cell by design. ``source`` as
    in :func:`missing_ratings`."""
    readers: dict[str, dict[str, bool]] = {}  # column -> reader (a tag group once) -> concept?
    concept_ids = {id(c) for c in spec.concepts}
    for col in spec.concepts + spec.targets:
        name = col.group if col.sep is not None and col.group else col.name
        readers.setdefault(col.column, {})[name] = id(col) in concept_ids
    out = []
    for column, cols in readers.items():
        if len(cols) < 2:
            continue
        file = source(table.index[0], column)[0] if len(table) else None
        c_names = [n for n, is_concept in cols.items() if is_concept]
        t_names = [n for n, is_concept in cols.items() if not is_concept]
        if len(c_names) > 1:
            out.append(Problem(f"shared column: concepts {', '.join(map(repr, c_names))} read "
                               f"the same column: one set of ratings under two names, whose "
                               f"effects no model or coefficient table can tell apart",
                               file=file, column=column))
        if c_names and t_names:
            out.append(Problem(f"shared column: concept {c_names[0]!r} reads the column of "
                               f"target {t_names[0]!r}: the bottleneck is handed the target "
                               f"as a concept, and its head can copy it", file=file,
                               column=column))
    return out


def _one_label(col, value: float, n: int, split: str, classes: dict) -> str:
    """The ``one label`` warning of :func:`split_ratings` for a binary or class column."""
    label = classes.get(col.name, [])[int(value)] if col.is_class else f"{value:g}"
    if split == "train":
        why = "the model can only learn that label"
    elif col.is_binary:
        why = "no AUC, r or Brier skill score there"
    else:
        why = "its accuracy there only counts how often a model picks that class"
    return (f"one label: {col.name} is {label} on every one of the {n} rated clips of the "
            f"{split} split ({why})")


def reliability_limits(spec: DataSpec, table: pd.DataFrame) -> list[Problem]:
    """A warning per pair of rating concepts whose ratings correlate more, on the clips rated
    on both, than their declared ``reliability`` values allow (``sqrt(R_a R_b)``; a concept
    without one counts as 1): ``midlevel coefficients`` would limit its correction there
    (:mod:`midlevel.explain.reliability`), so the declared values are likely too low. Named
    by the spec file and both concepts."""
    rated = [c for c in spec.concepts if c.is_rating and c.name in table]
    if not any(c.reliability is not None for c in rated):
        return []
    out = []
    for i, a in enumerate(rated):
        for b in rated[i + 1:]:
            ra, rb = a.reliability or 1.0, b.reliability or 1.0
            both = table[[a.name, b.name]].astype(float).dropna()
            if len(both) < 3 or both.std().min() == 0 or (ra == 1 and rb == 1):
                continue
            r = float(both[a.name].corr(both[b.name]))
            limit = (ra * rb) ** 0.5
            if abs(r) > limit:
                out.append(Problem(
                    f"reliability too low: {a.name!r} and {b.name!r} correlate {r:.2f} on the "
                    f"{len(both)} clips rated on both, more than their declared reliabilities "
                    f"({ra:g}, {rb:g}) allow (at most {limit:.2f}); `midlevel coefficients` "
                    f"would limit its correction for rater noise there: check the declared "
                    f"values", file=str(spec.path) if spec.path else None, column=a.column))
    return out

