"""Time-varying ratings: the ``segments`` tables of a data spec (format in data_specs/README.md).

A segment table rates concepts and targets per time span of a clip, the form dynamic emotion
datasets use: one row per (clip, start, end) or per (clip, time), where a rating at an instant
holds until the clip's next row or the clip's end. :func:`load_segments` reads every segment
table of a spec into one tidy table (:class:`Segments`), reporting every bad cell, unknown clip,
empty or overlapping span as a :class:`~midlevel.errors.Problem` with its file, row and column;
:func:`check_durations` adds the spans that run past a clip's audio and :func:`early_ends` warns
about tables that rate only the start of their clips (``midlevel validate``, which knows the
durations). ``load_annotations`` puts the result on the annotations table as
``table.attrs["segments"]``; :func:`segments_of` reads it back.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from midlevel.data.tables import DECIMAL, cell_text, listing, parse_rating, read_table
from midlevel.errors import Problem

KEYS = ("clip", "start", "end")
DURATION_TOLERANCE = 0.1  # seconds a segment may run past the end of its clip's audio


@dataclass(frozen=True, eq=False)
class Segments:
    """Time-varying ratings of some clips, in the clip table's rating units.

    Attributes
    ----------
    table : pd.DataFrame
        Columns ``clip`` (str), ``start``, ``end`` (seconds; ``end`` is ``inf`` for the last
        instant of a ``time_column`` table: it holds until the clip's end), then one float
        column per concept / target some segment table rates, in spec order (NaN = not rated).
        Sorted by clip and start.
    sources : tuple
        Per row of ``table``: ``(file, row, column, instant)``: where the row comes from, the
        column that ends its span (``end_column``) or places its instant (``time_column``), and
        whether it is an instant; for problems found later.
    unread : tuple of Problem
        Warnings (``validate`` lists them, other commands log them): each class or binary
        column of a segment table, which segments cannot rate.

    A ``Segments`` is shared, not copied, by every table that carries it in its ``attrs``
    (pandas deep-copies ``attrs`` on every operation): treat it as read-only.
    """

    table: pd.DataFrame
    sources: tuple[tuple[str, int, str, bool], ...] = ()
    unread: tuple[Problem, ...] = ()  # warnings: class or binary columns a table holds
    _rows: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        groups = self.table.groupby("clip", sort=False).indices if len(self.table) else {}
        self._rows.update({str(k): np.asarray(v) for k, v in groups.items()})

    @classmethod
    def empty(cls, columns=()) -> "Segments":
        table = pd.DataFrame({"clip": pd.Series(dtype=object), "start": pd.Series(dtype=float),
                              "end": pd.Series(dtype=float),
                              **{c: pd.Series(dtype=float) for c in columns}})
        return cls(table)

    def __len__(self) -> int:
        return len(self.table)

    def __deepcopy__(self, memo) -> "Segments":
        return self

    def __repr__(self) -> str:
        return (f"Segments({len(self)} segments of {len(self.clips)} clips, "
                f"rating {self.columns})")

    @property
    def columns(self) -> list[str]:
        """The concepts and targets rated (column names of ``table`` after the keys)."""
        return [c for c in self.table.columns if c not in KEYS]

    @property
    def clips(self) -> list[str]:
        """The clips that have segments, in table order."""
        return list(self._rows)

    def for_clip(self, clip: str) -> pd.DataFrame:
        """The segments of one clip (empty table when it has none)."""
        rows = self._rows.get(str(clip))
        return self.table.iloc[rows] if rows is not None else self.table.iloc[:0]


def segments_of(table: pd.DataFrame) -> Segments:
    """The segments a table from :func:`~midlevel.data.annotations.load_annotations` carries (or an
    empty :class:`Segments` when its spec has none)."""
    found = table.attrs.get("segments")
    return found if isinstance(found, Segments) else Segments.empty()


@dataclass
class _Row:
    clip: str
    start: float
    end: float
    values: dict
    source: tuple[str, int, str, bool]   # see Segments.sources
    start_column: str
    table: int


def _seconds(text: str, column: str, where: dict, problems: list[Problem]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or (math.isfinite(value) and not DECIMAL.fullmatch(text.strip())):
        # (float() also reads '1_0' as 10)
        comma = (f"; a decimal comma? times are read with a decimal point, "
                 f"{text.replace(',', '.')!r}" if re.fullmatch(r"\s*[+-]?\d*,\d+\s*", text)
                 else "")
        problems.append(Problem(f"non-numeric time {text!r} (seconds expected{comma})",
                                column=column, **where))
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(Problem(f"time {text!r} must be a finite number of seconds >= 0",
                                column=column, **where))
        return None
    return value


def _unread(column, concept: bool, file) -> Problem:
    """The warning for the class or binary ``column`` (a spec column) in a segment table."""
    what, holds = ("a concept" if concept else "the target"), (
        "label" if column.kind == "binary" else "class")
    return Problem(f"unread segment column: it holds {what} '{column.name}', a {column.kind} "
                   f"column; segments hold numeric ratings only, so it is not read (the "
                   f"clip's own {holds} holds over the whole clip)", file=str(file),
                   column=column.column)


def _read_rows(spec, index: int, clips: set[str], problems: list[Problem],
               unread: list[Problem]) -> list[_Row]:
    """The rows of segment table ``index`` of ``spec`` that locate a known clip in time;
    ``unread`` gets a warning per class or binary column of the table (audit 22a: left out
    without a word)."""
    seg = spec.segments[index]
    file = spec.table_root(seg) / seg.path
    read = read_table(seg, file, problems, unique=False, kind="segments table",
                      key=f"segments[{index}]")
    if read is None:
        return []
    frame = read.frame
    if seg.columns is None:
        pairs = [(c.name, c.column) for c in spec.concepts + spec.targets
                 if c.is_rating and c.column in frame.columns]
        for c in spec.concepts + spec.targets:
            if not c.is_rating and c.column in frame.columns:
                unread.append(_unread(c, c in spec.concepts, file))
        if not pairs:
            problems.append(Problem(f"segments table rates none of the spec's concepts or "
                                    f"targets (no column of theirs in {listing(frame)}); name "
                                    f"its columns with 'columns:'", file=str(file)))
    else:
        pairs = []
        for name, column in seg.columns:
            if column in frame.columns:
                pairs.append((name, column))
            else:
                problems.append(Problem(f"column for '{name}' not found; columns are "
                                        f"{listing(frame)}", file=str(file), column=column))
    locate = [seg.time_column] if seg.time_column else [seg.start_column, seg.end_column]
    absent = [c for c in locate if c not in frame.columns]
    for column in absent:
        problems.append(Problem(f"time column not found; columns are {listing(frame)}",
                                file=str(file), column=column))
    if absent or not pairs:
        return []
    missing = set(seg.missing_values)
    rows = []
    for pos in range(len(frame)):
        clip = read.ids.iloc[pos]
        if clip is None:  # a bad or empty id: already a problem
            continue
        where = dict(file=str(file), row=int(frame["_row"].iloc[pos]), clip=str(clip))
        if clip not in clips:
            problems.append(Problem("clip id not in the annotations tables",
                                    column=seg.id_column, **where))
            continue
        times = [_seconds(str(frame[c].iloc[pos]).strip(), c, where, problems) for c in locate]
        if any(t is None for t in times):
            continue
        values = {}
        for name, column in pairs:
            text, message = cell_text(frame[column].iloc[pos], missing)
            values[name] = math.nan
            if text is not None:
                values[name], message = parse_rating(text, spec.column(name).scale)
            if message:
                problems.append(Problem(message, column=column, **where))
        start = times[0]
        end = times[1] if len(times) == 2 else math.inf
        if end <= start:
            problems.append(Problem(f"segment end {end:g} s is not after its start {start:g} s",
                                    column=seg.end_column, **where))
            continue
        rows.append(_Row(str(clip), start, end, values,
                         (str(file), where["row"], locate[-1], bool(seg.time_column)),
                         locate[0], index))
    if seg.time_column:
        rows = _instants_to_spans(rows, seg.time_column, problems)
    return rows


def _instants_to_spans(rows: list[_Row], column: str, problems: list[Problem]) -> list[_Row]:
    """A rating at an instant holds until the clip's next instant (or its end: ``inf``)."""
    out = []
    by_clip: dict[str, list[_Row]] = {}
    for r in rows:
        by_clip.setdefault(r.clip, []).append(r)
    for clip, items in by_clip.items():
        items.sort(key=lambda r: r.start)
        kept = []
        for r in items:
            if kept and r.start == kept[-1].start:
                problems.append(Problem(f"a second rating of clip '{clip}' at {r.start:g} s "
                                        f"(first in row {kept[-1].source[1]})",
                                        file=r.source[0], row=r.source[1], column=column,
                                        clip=clip))
                continue
            kept.append(r)
        for a, b in zip(kept[:-1], kept[1:]):
            a.end = b.start
        out.extend(kept)
    return out


def _overlaps(rows: list[_Row], names: list[str], problems: list[Problem]) -> None:
    """Two segments of one clip that rate the same column must not overlap in time."""
    seen = set()
    for name in names:
        by_clip: dict[str, list[_Row]] = {}
        for r in rows:
            if not math.isnan(r.values.get(name, math.nan)):  # an empty cell rates nothing
                by_clip.setdefault(r.clip, []).append(r)
        for clip, items in by_clip.items():
            items.sort(key=lambda r: (r.start, r.end))
            longest = items[0]
            for r in items[1:]:
                if r.start < longest.end and (id(longest), id(r)) not in seen:
                    seen.add((id(longest), id(r)))
                    other = (f"row {longest.source[1]}" if longest.source[0] == r.source[0]
                             else f"{longest.source[0]} row {longest.source[1]}")
                    problems.append(Problem(
                        f"segment {r.start:g}-{r.end:g} s overlaps the segment "
                        f"{longest.start:g}-{longest.end:g} s of {other} (both rate '{name}')",
                        file=r.source[0], row=r.source[1], column=r.start_column, clip=clip))
                if r.end > longest.end:
                    longest = r


def load_segments(spec, clips, problems: list[Problem]) -> Segments:
    """Read and check every segment table of ``spec``.

    Parameters
    ----------
    spec : a loaded :class:`~midlevel.data.spec.DataSpec`.
    clips : the clip ids of the annotations table (a segment of any other id is a problem).
    problems : list the problems are appended to (file, row and column of each).

    Returns
    -------
    Segments; rows with an unknown clip, a bad time or an empty span are left out, bad rating
    cells are NaN.
    """
    known = {str(c) for c in clips}
    rows, unread = [], []
    for i in range(len(spec.segments)):
        rows.extend(_read_rows(spec, i, known, problems, unread))
    rated = {n for r in rows for n in r.values}
    names = [c.name for c in spec.concepts + spec.targets if c.name in rated]
    _overlaps(rows, names, problems)
    rows.sort(key=lambda r: (r.clip, r.start, r.end, r.table))
    table = pd.DataFrame({"clip": pd.Series([r.clip for r in rows], dtype=object),
                          "start": np.array([r.start for r in rows], dtype=float),
                          "end": np.array([r.end for r in rows], dtype=float),
                          **{n: np.array([r.values.get(n, math.nan) for r in rows], dtype=float)
                             for n in names}})
    return Segments(table, tuple(r.source for r in rows), unread=tuple(unread))


def check_durations(segments: Segments, durations: Mapping[str, float], *,
                    tolerance: float = DURATION_TOLERANCE) -> list[Problem]:
    """Segments that end (or instants that lie) more than ``tolerance`` s past their clip's
    audio; ``durations`` maps clip -> seconds (clips without a known duration are skipped)."""
    problems = []
    for (clip, start, end), (file, row, column, instant) in zip(
            segments.table[list(KEYS)].itertuples(index=False), segments.sources):
        duration = durations.get(clip)
        if duration is None or not math.isfinite(duration):
            continue
        if not instant and end > duration + tolerance:
            problems.append(Problem(f"segment ends at {end:g} s, after the end of the clip's "
                                    f"audio ({duration:.2f} s)", file=file, row=row,
                                    column=column, clip=clip))
        elif instant and start > duration + tolerance:
            problems.append(Problem(f"rating at {start:g} s lies after the end of the clip's "
                                    f"audio ({duration:.2f} s)", file=file, row=row,
                                    column=column, clip=clip))
    return problems


# A segment table whose spans end (or whose last instant lies) before this share of their
# clips' audio on nearly all its clips is likely in another unit than seconds (tenths,
# minutes): warned about, naming the file. Spans that cover part of a clip are allowed (the
# rest takes the clip rating), so one clip alone says nothing.
EARLY_REACH = 0.25


def early_ends(segments: Segments, durations: Mapping[str, float]) -> list[Problem]:
    """A warning per segment table of spans in which at least 90 % of the clips (and at least
    two) have their latest segment end before ``EARLY_REACH`` of the clip's audio
    (``durations``: clip -> seconds): times in another unit would silently rate only the
    start of each clip, the rest falling back to its clip rating. Tables of instants are not
    judged: their last rating holds to the clip's end, whatever its time."""
    sources = segments.sources or ((None, None, None, False),) * len(segments)
    spans = [i for i, source in enumerate(sources) if not source[3]]
    if not spans:
        return []
    table = segments.table.iloc[spans]
    frame = pd.DataFrame({"clip": table["clip"].astype(str).to_numpy(),
                          "reach": table["end"].to_numpy(dtype=float),
                          "file": [sources[i][0] or "" for i in spans]})
    out = []
    for file, g in frame.groupby("file", sort=False):
        last = g.groupby("clip")["reach"].max()
        known = {c: durations.get(c) for c in last.index}
        share = pd.Series({c: last[c] / d for c, d in known.items()
                           if d is not None and math.isfinite(d) and d > 0}, dtype=float)
        early = share[share < EARLY_REACH]
        if len(share) >= 2 and len(early) >= 0.9 * len(share):
            out.append(Problem(
                f"segments end early: on {len(early)} of {len(share)} clips the last segment "
                f"ends before {EARLY_REACH:.0%} of the clip's audio (median "
                f"{share.median():.1%}; e.g. {early.index[0]} at "
                f"{last[early.index[0]]:g} s of {known[early.index[0]]:.2f} s), so the rest of "
                f"each clip takes its clip rating: are the times in another unit than seconds?",
                file=file or None))
    return out


def frame_span(start, end, n_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The frames ``first[i] .. stop[i] - 1`` whose centres ``k / fps`` lie in
    ``start[i] <= t < end[i]`` (seconds), within the clip's ``n_frames``: two int arrays of
    the segments' length (``stop <= first``: the segment holds no frame centre)."""
    first = np.ceil(np.asarray(start, np.float64) * fps - 1e-9)
    stop = np.ceil(np.minimum(np.asarray(end, np.float64), n_frames / fps) * fps - 1e-9)
    return (np.clip(first, 0, n_frames).astype(int), np.clip(stop, 0, n_frames).astype(int))


def frameless(segments: Segments, n_frames: Mapping[str, int], fps: float) -> list[Problem]:
    """The spans that hold no frame centre of their clip (``n_frames``: clip -> its
    spectrogram's frames at ``fps``): shorter than a frame, their rating reaches no training
    crop. An instant's span runs to the clip's next instant, so two instants closer than a
    frame are listed too; the last instant holds until the clip's end and may hold none at
    its very end, as sampled dynamic ratings do: not listed."""
    out = []
    for (clip, start, end), (file, row, column, instant) in zip(
            segments.table[list(KEYS)].itertuples(index=False), segments.sources):
        if clip not in n_frames or (instant and not np.isfinite(end)):
            continue
        first, stop = frame_span([start], [end], int(n_frames[clip]), fps)
        if stop[0] <= first[0]:
            out.append(Problem(f"segment holds no frame: {start:g}-{end:g} s, frames are "
                               f"{1 / fps:.3g} s apart (its rating reaches no training crop)",
                               file=file, row=row, column=column, clip=clip))
    return out


def summary(segments: Segments, n_clips: int, spec=None) -> str:
    """One line: how many clips have segments, how many segments, what they rate."""
    if not len(segments):
        return f"segments: 0 of {n_clips} clips"
    rated = segments.columns
    what = ", ".join(rated)
    if spec is not None and len(rated) > 4:
        n_c = sum(c in spec.concept_names for c in rated)
        what = f"{n_c} concepts, {len(rated) - n_c} targets"
    return (f"segments: {len(segments.clips)} of {n_clips} clips, {len(segments)} segments, "
            f"rating {what}")


__all__ = ["Segments", "segments_of", "load_segments", "check_durations", "frame_span",
           "frameless", "summary", "DURATION_TOLERANCE"]

