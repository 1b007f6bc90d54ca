"""``midlevel validate``: load a spec, every table and every audio file; summarize; list problems.

Nothing is dropped silently: every bad cell, duplicate id, unmatched id, bad audio file and
segment that runs past its clip's audio is a :class:`~midlevel.errors.Problem` naming the
file, row and column at fault.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
from tqdm.auto import tqdm

from midlevel.data import segments as seg
from midlevel.data.audio import audio_info, is_silent, load_audio
from midlevel.data.annotations import load_annotations
from midlevel.data.spec import DataSpec
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


def check_audio(clip: str, path: str, *, decode: bool = True) -> AudioCheck:
    """Open (and by default fully decode) one file; report missing, undecodable, empty, silent."""
    check = AudioCheck(clip, path)
    try:
        info = audio_info(path)
        check.duration, check.sample_rate, check.channels = (info.duration, info.sample_rate,
                                                             info.channels)
        if info.frames == 0:
            raise AudioError(f"{path}: empty audio (0 samples)")
        if decode:
            y = load_audio(path, sample_rate=info.sample_rate, normalize=False)
            if y.size == 0:
                raise AudioError(f"{path}: empty audio (0 samples)")
            if is_silent(y):
                raise AudioError(f"{path}: silent audio (all samples are zero)")
            check.duration = y.shape[-1] / info.sample_rate
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

    @property
    def ok(self) -> bool:
        return not self.problems

    def missing_ratings(self) -> pd.Series:
        """Number of clips lacking each concept / target rating."""
        cols = self.spec.concept_names + self.spec.target_names
        return self.table[cols].isna().sum() if len(self.table) else pd.Series(0, index=cols)

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
            lines.append("splits: " + ", ".join(f"{k} {int(counts.get(k, 0))}"
                                                for k in ("train", "validation", "test")))
            miss = self.missing_ratings()
            lines.append("missing ratings: " + (", ".join(f"{k} {v}" for k, v in miss.items() if v)
                                                or "none"))
            binary = [c.name for c in s.concepts + s.targets if c.is_binary]
            if binary:
                lines.append(binary_summary(self.table, binary, s.groups))
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
        return "\n".join(lines)


def binary_summary(table: pd.DataFrame, names: list[str], groups: dict[str, list[str]]) -> str:
    """``binary: N columns (groups ...); positives per column min .. max`` for the summary."""
    pos = table[names].sum()
    rated = table[names].notna().sum()
    share = (pos / rated.where(rated > 0)).dropna()
    text = (f"binary: {len(names)} column(s)"
            + (f" (groups: {', '.join(f'{g} {len(c)} tags' for g, c in groups.items())})"
               if groups else ""))
    if len(share):
        text += (f"; positive share per column min {share.min():.2f} ({share.idxmin()}), "
                 f"max {share.max():.2f} ({share.idxmax()})")
    return text


def validate(spec: DataSpec, *, decode: bool = True, jobs: int = 2,
             progress: bool = True) -> ValidationReport:
    """Check ``spec``'s tables and every audio file.

    Parameters
    ----------
    decode : fully decode each file (finds truncated and silent audio); False only opens them.
    jobs : threads decoding in parallel (soundfile releases the GIL while decoding).
    """
    ann = load_annotations(spec, strict=False)
    problems = list(ann.problems)
    table = ann.table
    items = [(clip, path) for clip, path in table["path"].items()] if len(table) else []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        checks = list(tqdm(pool.map(lambda cp: check_audio(*cp, decode=decode), items),
                           total=len(items), desc="checking audio", unit="file",
                           disable=not progress))
    problems.extend(c.problem for c in checks if c.problem is not None)
    problems.extend(seg.check_durations(ann.segments, {c.clip: c.duration for c in checks}))
    return ValidationReport(spec, table, checks, problems, list(ann.notes), ann.segments)

