"""Checks of a spec's time-varying ratings against the clips' spectrograms, before training.

``validate`` refuses a segment that ends (or an instant that lies) past its clip's audio
(:func:`midlevel.data.segments.check_durations`), since such times are usually in another
unit (milliseconds read as seconds: ``[0, 4000)`` covers the whole of an 8-s clip with its
first half's rating). Training reads the same spectrograms, so it refuses them too, and
warns about segments that hold no frame centre (shorter than a frame, 32 ms by default):
their rating reaches no crop.
"""
from __future__ import annotations

import logging

import numpy as np

from midlevel.data.segments import check_durations, frameless, segments_of
from midlevel.errors import TrainingError
from midlevel.training.ddp import first_process

log = logging.getLogger("midlevel.training")

# problems shown in a message; the rest are counted (validate lists every one)
SHOWN = 5


def check_segment_times(table, n_frames: dict, fps: float) -> None:
    """TrainingError naming the segments past their clip's end (file, row, column, clip), as
    ``validate`` judges it (the audio's duration from its header); a warning naming the
    segments that hold no frame (:func:`~midlevel.data.segments.frameless`; from the first
    process only under torchrun). ``n_frames``: clip -> its
    spectrogram's frames; ``fps``: the front end's frame rate."""
    from midlevel.data.audio import audio_info
    segments = segments_of(table)
    if not len(segments):
        return
    durations = {clip: audio_info(table.loc[clip, "path"]).duration for clip in n_frames}
    late = check_durations(segments, durations)
    if late:
        raise TrainingError(
            f"{len(late)} time-varying rating(s) lie past the end of their clip's audio: "
            f"{_listed(late)}. Segment times are in seconds; `midlevel validate` lists every "
            f"one")
    empty = frameless(segments, n_frames, fps)
    if empty and first_process():  # one warning, not one per process
        log.warning("%d segment(s) without a frame: %s", len(empty), _listed(empty))


def _listed(problems) -> str:
    """The first ``SHOWN`` problems, and how many more."""
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return "; ".join(str(p) for p in problems[:SHOWN]) + more


def scored_clip_level_note(table) -> str:
    """The sentence saying what the scores of a spec with time-varying ratings compare ("" for
    a spec without them): the clip-level cells, not the segments."""
    clips = len(segments_of(table).clips)
    if not clips:
        return ""
    return (f"{clips} clip(s) have time-varying ratings (segments): training crops take them, "
            f"but model selection and the metrics score each clip's prediction against its "
            f"clip-level rating (the table's cell; a clip without one is not scored for that "
            f"column)")


def spectrogram_frames(table, features) -> dict:
    """Clip -> frames of its spectrogram, for the clips of ``table`` that have segments
    (read from the feature store's headers, no spectrogram loaded)."""
    have = set(segments_of(table).clips)
    shape = getattr(features, "shape", None)
    return {clip: int((shape(clip) if callable(shape) else np.shape(features[clip]))[1])
            for clip in table.index if clip in have}
