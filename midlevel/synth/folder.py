"""The output folder of :func:`midlevel.synth.dataset.synthesize`: what may be there, what an
earlier synthetic dataset leaves, and whether the clips fit in memory.

A re-synthesis first checks that ``audio/`` holds nothing but an earlier synthetic dataset's
clips (:func:`stale_audio`), then marks the folder incomplete and removes the earlier
dataset's ``spec.yaml`` and tables (:func:`invalidate`) before any audio is touched: an
interrupted run leaves a folder that ``validate`` and ``train`` refuse (no spec), never new
audio beside old ratings. ``spec.yaml`` is written last and :func:`complete` removes the mark.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from midlevel.errors import ArgumentError
from midlevel.io import write_text

log = logging.getLogger(__name__)

# written first, removed last: the folder holds a synthetic dataset being written
INCOMPLETE = "SYNTH_INCOMPLETE.txt"
# the dataset's files, removed (spec first) before a re-synthesis touches any audio
DATASET_FILES = ("spec.yaml", "annotations.csv", "segments.csv", "ground_truth.json")
# peak memory of rendering one clip, per sample (measured: 92-120 bytes), with a margin
BYTES_PER_SAMPLE = 128


def physical_memory() -> int | None:
    """This machine's physical memory in bytes (None where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_duration(duration: float, sample_rate: int, n_workers: int) -> None:
    """ArgumentError naming ``duration`` (and ``--jobs``) where a clip has no sample, or
    ``n_workers`` clips rendered at once need more than this machine's physical memory
    (``BYTES_PER_SAMPLE`` per sample)."""
    if round(duration * sample_rate) < 1:
        raise ArgumentError(f"duration (--duration) {duration:g} s: shorter than one sample "
                            f"at {sample_rate} Hz")
    need = BYTES_PER_SAMPLE * duration * sample_rate
    have = physical_memory()
    if have is None or need * n_workers <= have:
        return
    fits = have / (BYTES_PER_SAMPLE * sample_rate)
    if need > have:
        raise ArgumentError(f"duration (--duration) {duration:g} s: rendering one clip needs "
                            f"about {need / 1e9:.3g} GB, more than this machine's "
                            f"{have / 1e9:.3g} GB of memory; at most {fits:.0f} s fits")
    raise ArgumentError(f"duration (--duration) {duration:g} s with {n_workers} workers "
                        f"(--jobs): {n_workers} clips rendered at once need about "
                        f"{need * n_workers / 1e9:.3g} GB, more than this machine's "
                        f"{have / 1e9:.3g} GB of memory; use at most "
                        f"{max(1, int(have // need))} workers or a shorter duration")


def stale_audio(out: Path, ids: list[str]) -> list[Path]:
    """An earlier synthetic dataset's audio in ``out/audio`` that the new one (``ids``) does
    not write; ArgumentError naming audio files of any other origin (nothing is changed)."""
    keep = {f"{clip_id}.wav" for clip_id in ids}
    other = sorted(p.name for p in (out / "audio").iterdir()
                   if p.is_file() and p.suffix.lower() != ".wav")
    if other:  # not audio the spec's pattern (audio/{id}.wav) can refer to: left, but said
        log.warning("%s: %d file(s) that are not part of the synthetic dataset are left there "
                    "(for example %s)", out / "audio", len(other), other[:3])
    stale = sorted(p for p in (out / "audio").iterdir() if p.is_file() and p.name not in keep
                   and p.suffix.lower() == ".wav")
    ours = (out / "ground_truth.json").is_file() or (out / INCOMPLETE).is_file()
    foreign = [p.name for p in stale if not (ours and re.fullmatch(r"s\d+\.wav", p.name))]
    if foreign:
        raise ArgumentError(f"{out / 'audio'} holds {len(foreign)} audio file(s) that are not "
                            f"part of a synthetic dataset (for example {foreign[:3]}); they "
                            f"would join no row of the new annotations: choose another folder")
    return stale


def invalidate(out: Path, stale: list[Path]) -> None:
    """Mark ``out`` incomplete, remove an earlier dataset's files (``spec.yaml`` first), then
    its ``stale`` audio (with a warning)."""
    write_text(out / INCOMPLETE, "midlevel synth is writing (or was interrupted writing) a "
                                 "synthetic dataset here; spec.yaml is written when it is "
                                 "complete. Run midlevel synth again.\n")
    for name in DATASET_FILES:
        (out / name).unlink(missing_ok=True)
    for p in stale:
        p.unlink()
    if stale:
        log.warning("%s: removed %d audio file(s) of the earlier synthetic dataset that this "
                    "one does not write", out / "audio", len(stale))


def complete(out: Path) -> None:
    """Remove the mark of an incomplete dataset (after ``spec.yaml`` is written)."""
    (out / INCOMPLETE).unlink(missing_ok=True)
