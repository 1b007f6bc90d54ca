"""``midlevel validate``: load a spec, every table and every audio file; summarize; list problems.

Nothing is dropped silently: every bad cell, duplicate id, unmatched id, bad audio file and
segment that runs past its clip's audio is a :class:`~midlevel.errors.Problem` naming the file,
row and column at fault. Doubtful input that is not an error is a warning (a Problem in
``ValidationReport.warnings``): a clip shorter than the training window (it will be padded with
silence), a missing rating (clip and column), a split with no rating of a column or with one
rating value only (split and column), an audio file in the audio folder that no annotation row
refers to, very quiet audio (peak below -60 dBFS, normalized to full scale), hard-clipped audio
(flat runs at a channel's rails), audio recorded at a rate too low for the front end's upper
bands (they stay empty). The warnings about ratings are
made in :mod:`midlevel.data.rating_warnings`.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from midlevel.data import segments as seg
from midlevel.data.audio import audio_info, load_audio
from midlevel.data.loudness import (
    clipping_warning, judges_clipping, quiet_warning, signal_peak,
)
from midlevel.data.frontends import LogFilteredSpectrogram, band_limit_note, window_frames
from midlevel.data.annotations import load_annotations
from midlevel.data.spec import SPLITS, DataSpec
from midlevel.data.rating_warnings import (
    missing_mask, missing_ratings, reliability_limits, shared_columns, split_ratings,
    unused_classes,
)
from midlevel.errors import AudioError, Problem


@dataclass
class AudioCheck:
    """What decoding one file found (``problem`` is None when it is fine)."""

    clip: str
    path: str
    duration: float = float("nan")
    sample_rate: int = 0
    channels: int = 0
    problem: Problem | None = None
    warning: Problem | None = None  # very quiet audio (see loudness.QUIET_DBFS)
    clipping: Problem | None = None  # hard-clipped audio (see loudness.CLIP_SHARE)
    content: str | None = None  # the file's bytes' SHA-1 (decoded checks) or resolved path


def check_audio(clip: str, path: str, *, decode: bool = True) -> AudioCheck:
    """Open (and by default fully decode) one file; report missing, undecodable, truncated,
    empty, silent (as ``load_audio`` would refuse it: no signal once the DC offset is removed,
    or channels that cancel in the mono down-mix), and warn about very quiet and hard-clipped
    audio."""
    check = AudioCheck(clip, path)
    try:
        info = audio_info(path)
        check.duration, check.sample_rate, check.channels = (info.duration, info.sample_rate,
                                                             info.channels)
        if info.frames == 0:
            raise AudioError(f"{path}: empty audio (0 samples)")
        if decode:
            y = load_audio(path, sample_rate=info.sample_rate, normalize=False, mono=False)
            if y.size == 0:
                raise AudioError(f"{path}: empty audio (0 samples)")
            mix, peak = signal_peak(y.mean(axis=0), path, channels=y)
            quiet = quiet_warning(path, peak, channels=y, mix=mix)
            if quiet:
                check.warning = Problem(quiet[len(path) + 2:], file=path, clip=clip)
            if judges_clipping(info.subtype) and (clipped := clipping_warning(path, y)):
                check.clipping = Problem(clipped[len(path) + 2:], file=path, clip=clip)
            check.duration = y.shape[-1] / info.sample_rate
            from midlevel.data.cache import file_digest  # (kept for the feature fill)
            check.content = file_digest(path)
        else:
            check.content = str(Path(path).resolve())
    except AudioError as exc:
        message = str(exc)
        if message.startswith(f"{path}: "):
            message = message[len(path) + 2:]
        check.problem = Problem(message, file=path, clip=clip)
    return check


@dataclass
class ValidationReport:
    """Summary of a dataset and every problem found in it."""

    spec: DataSpec
    table: pd.DataFrame
    audio: list[AudioCheck]
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    segments: seg.Segments = field(default_factory=seg.Segments.empty)
    warnings: list[Problem] = field(default_factory=list)
    window: float = 10.0
    rejected: dict = field(default_factory=dict)  # table column -> clips whose cell is a problem

    @property
    def ok(self) -> bool:
        return not self.problems

    def missing_ratings(self) -> pd.Series:
        """Number of clips lacking each concept / target rating: their cell is missing (or
        they have no row in a joined table) and no segment rates it over time; a rejected
        cell is a problem, not counted here."""
        cols = self.spec.concept_names + self.spec.target_names
        if not len(self.table):
            return pd.Series(0, index=cols)
        return missing_mask(self.spec, self.table, self.rejected, self.segments).sum()

    def rated_on_both(self) -> str:
        """How many clips carry every concept rating and a target's, per target (a range over
        the targets), in all and in the training split: what an independent-mode head and
        the ratings estimator of ``coefficients`` fit each target on."""
        mask = missing_mask(self.spec, self.table, self.rejected)
        concepts = ~mask[[c for c in self.spec.concept_names if c in mask]].any(axis=1)
        train = (self.table["split"] == "train").to_numpy()
        both = [(concepts & ~mask[t]).to_numpy() for t in self.spec.target_names if t in mask]

        def span(counts: list[int]) -> str:
            return f"{min(counts)}" if min(counts) == max(counts) else \
                f"{min(counts)}-{max(counts)}"
        return (f"clips rated on every concept: {int(concepts.sum())}; on every concept and a "
                f"target: {span([int(b.sum()) for b in both])} per target (training split "
                f"{span([int((b & train).sum()) for b in both])}: an independent run's head "
                f"and coefficients' ratings estimator fit each target on these)")

    def class_lines(self) -> list[str]:
        """A line per class column: its classes with their clip counts, and whether the spec
        declares them or they were read from the cells."""
        seen = self.table.attrs.get("classes", {})
        lines = []
        for col in self.spec.concepts + self.spec.targets:
            if not col.is_class or col.name not in seen or col.name not in self.table:
                continue
            counts = self.table[col.name].dropna().astype(int).value_counts()
            listed = ", ".join(f"{c} {int(counts.get(k, 0))}" for k, c in enumerate(seen[col.name]))
            lines.append(f"classes of {col.name}: {listed} ("
                         + ("declared" if col.classes else "read from the cells: no classes "
                            "declared") + ")")
        return lines

    def durations(self) -> pd.Series:
        return pd.Series([a.duration for a in self.audio], dtype=float)

    def summary(self) -> str:
        """A human-readable summary, as ``midlevel validate`` prints it."""
        s = self.spec
        lines = [f"spec: {s.name} ({s.path})", f"root: {s.root}",
                 f"clips: {len(self.table)}",
                 f"concepts ({len(s.concepts)}): {', '.join(s.concept_names) or '-'}",
                 f"targets ({len(s.targets)}): {', '.join(s.target_names) or '-'}"]
        if len(self.table):
            counts = self.table["split"].value_counts()
            shown = [k for k in SPLITS if k != "calibration" or counts.get(k, 0)]
            lines.append("splits: " + ", ".join(f"{k} {int(counts.get(k, 0))}" for k in shown))
            miss = self.missing_ratings()
            lines.append("missing ratings: " + (", ".join(f"{k} {v}" for k, v in miss.items() if v)
                                                or "none"))
            if miss.any() and s.concepts and s.targets:
                lines.append(self.rated_on_both())
            binary = [c.name for c in s.concepts + s.targets if c.is_binary]
            if binary:
                lines.append(binary_summary(self.table, binary, s.groups))
            lines.extend(self.class_lines())
        if s.segments:
            lines.append(seg.summary(self.segments, len(self.table), s))
        d = self.durations().dropna()
        if len(d):
            lines.append(f"durations (s): min {d.min():.2f}, mean {d.mean():.2f}, "
                         f"max {d.max():.2f}, total {d.sum() / 60:.1f} min")
            rates = pd.Series([a.sample_rate for a in self.audio if a.sample_rate])
            chans = pd.Series([a.channels for a in self.audio if a.channels])
            lines.append("sample rates: " + ", ".join(f"{int(k)} Hz x{v}"
                                                      for k, v in rates.value_counts().items()))
            lines.append("channels: " + ", ".join(f"{int(k)} x{v}"
                                                  for k, v in chans.value_counts().items()))
        lines.extend(f"note: {n}" for n in self.notes)
        if self.warnings:
            kinds = pd.Series([w.message.split(":")[0] for w in self.warnings]).value_counts()
            lines.append(f"warnings: {len(self.warnings)} (" + ", ".join(
                f"{n} {k}" for k, n in kinds.items()) + ")")
        return "\n".join(lines)

    def warnings_table(self) -> pd.DataFrame:
        """Every warning as a row: kind, file, row (a whole number; empty where the warning
        has none), column, clip, message."""
        return issues_table(self.warnings, [w.message.split(":")[0] for w in self.warnings])

    def problems_table(self) -> pd.DataFrame:
        """Every problem as a row, as :meth:`warnings_table`; its kind is the message with
        quoted values and numbers left out (``duplicate id '...' in rows N, N``)."""
        return issues_table(self.problems, [problem_kind(p.message) for p in self.problems])


def problem_kind(message: str) -> str:
    """The kind of a problem's message: quoted values as ``'...'`` and numbers as ``N``."""
    text = re.sub(r"'[^']*'", "'...'", message)  # quotes first: ids hold ': '
    depth = 0
    for i, char in enumerate(text):  # the first ': ' outside parentheses (hints hold some)
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth <= 0 and text.startswith(": ", i):
            text = text[:i]
            break
    return re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", text)


def issues_table(items: list[Problem], kinds: list[str]) -> pd.DataFrame:
    """Problems or warnings as rows: kind, file, row (a whole number; empty where one has
    none), column, clip, message."""
    table = pd.DataFrame([{"kind": k, "file": w.file, "row": w.row, "column": w.column,
                           "clip": w.clip, "message": w.message}
                          for w, k in zip(items, kinds)],
                         columns=["kind", "file", "row", "column", "clip", "message"])
    return table.astype({"row": "Int64"})  # not 38.0 where other rows have none


def binary_summary(table: pd.DataFrame, names: list[str], groups: dict[str, list[str]]) -> str:
    """``binary: N columns (groups ...); positives per column min .. max`` for the summary."""
    pos = table[names].sum()
    rated = table[names].notna().sum()
    share = (pos / rated.where(rated > 0)).dropna()
    text = (f"binary: {len(names)} column(s)"
            + (f" (groups: {', '.join(f'{g} {len(c)} tags' for g, c in groups.items())})"
               if groups else ""))
    if len(share) and round(share.min(), 2) == round(share.max(), 2):  # ties: no one column
        text += f"; positive share {share.min():.2f} in every column"
    elif len(share):
        text += (f"; positive share per column min {share.min():.2f} ({share.idxmin()}), "
                 f"max {share.max():.2f} ({share.idxmax()})")
    return text


def validate(spec: DataSpec, *, decode: bool = True, jobs: int = 2, window: float = 10.0,
             progress: bool = True, frontend=None) -> ValidationReport:
    """Check ``spec``'s tables and every audio file.

    Parameters
    ----------
    decode : fully decode each file (finds truncated and silent audio); False only opens them.
    jobs : threads decoding in parallel (soundfile releases the GIL while decoding).
    window : the training window in seconds; shorter clips are warned about.
    frontend : the front end whose bands a file recorded at a low rate leaves empty (warned
        about; default: the default :class:`~midlevel.data.frontends.LogFilteredSpectrogram`).
    """
    ann = load_annotations(spec, strict=False)
    problems = list(ann.problems)
    table = ann.table
    items = [(clip, path) for clip, path in table["path"].items()] if len(table) else []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        checks = list(tqdm(pool.map(lambda cp: check_audio(*cp, decode=decode), items),
                           total=len(items), desc="checking audio", unit="file",
                           disable=not progress))
    near_match_hints(checks)
    problems.extend(c.problem for c in checks if c.problem is not None)
    problems.extend(seg.check_durations(ann.segments, {c.clip: c.duration for c in checks}))
    frontend = frontend or LogFilteredSpectrogram()
    frames = {c.clip: frontend.num_frames(int(round(c.duration * frontend.sample_rate)))
              for c in checks if c.problem is None and c.duration is not None
              and np.isfinite(c.duration)}
    warnings = ([c.warning for c in checks if c.warning is not None]
                + [c.clipping for c in checks if c.clipping is not None]
                + list(ann.segments.unread if ann.segments is not None else ())
                + seg.frameless(ann.segments, frames, frontend.fps)
                + seg.early_ends(ann.segments, {c.clip: c.duration for c in checks
                                                if c.problem is None})
                + short_clips(checks, window, frontend)
                + band_limited(checks, frontend)
                + missing_ratings(spec, table, ann.source, ann.rejected, ann.segments)
                + split_ratings(spec, table, ann.source, ann.rejected)
                + unused_classes(spec, table, ann.source)
                + shared_columns(spec, table, ann.source)
                + reliability_limits(spec, table)
                + unreferenced_audio(spec, table)
                + shared_audio(checks, table))
    return ValidationReport(spec, table, checks, problems, list(ann.notes), ann.segments,
                            warnings, window, dict(ann.rejected or {}))


def near_match_hints(checks: list[AudioCheck]) -> None:
    """Add to each "audio file not found" problem the file of its folder whose name differs
    only in case, in Unicode form (macOS writes decomposed accents: NFD) or in an id's
    leading zeros, and what tells them apart: a message naming a file that looks like the one
    in ``ls`` is no help."""
    import unicodedata

    def key(name: str) -> str:
        stem, dot, suffix = unicodedata.normalize("NFC", name).casefold().rpartition(".")
        stem = stem if dot else suffix
        bare = stem.lstrip("0") or "0" if stem.isdigit() else stem
        return bare + (dot + suffix if dot else "")

    listings: dict[Path, dict[str, str]] = {}
    for c in checks:
        if c.problem is None or c.problem.message != "audio file not found":
            continue
        path = Path(c.path)
        if path.parent not in listings:
            names = sorted(f.name for f in path.parent.iterdir()) if path.parent.is_dir() else []
            listings[path.parent] = {key(n): n for n in reversed(names)}
        found = listings[path.parent].get(key(path.name))
        if found is None or found == path.name:
            continue
        if unicodedata.normalize("NFC", found) == unicodedata.normalize("NFC", path.name):
            why = ("the same letters in another Unicode form (accents composed in one, "
                   "decomposed in the other, as macOS archives write them): rename the files "
                   "or the ids to one form (NFC)")
        elif found.casefold() == path.name.casefold():
            why = "the same name in other upper and lower case: the file system tells them apart"
        else:
            digits = found.rpartition(".")[0] or found
            fmt = "{:d}" if not digits.startswith("0") else "{:0%dd}" % len(digits)
            why = ("the same number with other leading zeros: give the table's ids an "
                   f"id_format such as \"{fmt}\"")
        c.problem = Problem(f"audio file not found; the folder holds '{found}', {why}",
                            file=c.path, clip=c.clip)


def shared_audio(checks: list[AudioCheck], table: pd.DataFrame) -> list[Problem]:
    """A warning per clip whose audio is another clip's: the same file (a path given twice, a
    link) or, where the files were decoded, the same bytes (a copy). Clips of one audio in
    different splits score the model on audio it trained on (``shared audio``)."""
    split = table["split"] if "split" in table else pd.Series(dtype=object)
    by_content: dict[str, list[AudioCheck]] = {}
    for c in checks:
        if c.problem is None and c.content is not None:
            by_content.setdefault(c.content, []).append(c)
    out = []
    for group in by_content.values():
        if len(group) < 2:
            continue
        splits = {c.clip: split.get(c.clip) for c in group}
        apart = len(set(splits.values())) > 1
        for c in group:
            others = ", ".join(f"'{o.clip}' ({splits[o.clip]}, {o.path})" for o in group
                               if o is not c)
            out.append(Problem(
                f"shared audio: the audio of clip '{c.clip}' ({splits[c.clip]}) is that of "
                f"{others}" + (": clips of one audio in different splits score the model on "
                               "audio it trained on (give them one group with the splits' "
                               "group_by, or remove the copies)" if apart else ""),
                file=c.path, clip=c.clip))
    return out


def short_clips(checks: list[AudioCheck], window: float, frontend) -> list[Problem]:
    """A warning per clip whose spectrogram under ``frontend`` has fewer frames than a window
    of ``window`` seconds (:func:`~midlevel.data.frontends.window_frames`): padded with
    silence in training and prediction. Judged in frames, as the padding is: a 2.99-s clip
    fills a 3-s window's 94 frames at 31.25 frames per second."""
    need = window_frames(window, frontend.fps)
    return [Problem(f"short clip: {c.duration:.2f} s, shorter than the {window:g}-s window "
                    f"(padded with silence)", file=c.path, clip=c.clip)
            for c in checks if c.problem is None and c.duration is not None
            and np.isfinite(c.duration)
            and frontend.num_frames(int(round(c.duration * frontend.sample_rate))) < need]


def band_limited(checks: list[AudioCheck], frontend) -> list[Problem]:
    """A warning per file recorded at a rate whose Nyquist frequency lies below bands of
    ``frontend`` (:func:`~midlevel.data.frontends.band_limit_note`): resampling cannot give
    it what it never held."""
    notes = [(c, band_limit_note(c.sample_rate, frontend)) for c in checks
             if c.problem is None and c.sample_rate]
    return [Problem(note, file=c.path, clip=c.clip) for c, note in notes if note]


def unreferenced_audio(spec: DataSpec, table: pd.DataFrame) -> list[Problem]:
    """A warning per audio file in the folders of the dataset's audio (with the same
    extensions) that no annotation row refers to."""
    paths = [Path(p) for p in table["path"] if isinstance(p, str) and p] if len(table) else []
    if not paths:
        return []
    used = {p.resolve() for p in paths}
    suffixes = {p.suffix.lower() for p in paths}
    out = []
    for folder in sorted({p.parent for p in paths}):
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix.lower() in suffixes and f.resolve() not in used:
                out.append(Problem("unreferenced audio: no annotation row refers to this "
                                   "file", file=str(f)))
    return out

