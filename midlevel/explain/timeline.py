"""Contributions over time: windowed concept predictions turned into contribution curves.

The model is run on windows of ``window`` seconds every ``hop`` seconds; each window's
concepts give contributions exactly as for a whole clip (see
:mod:`midlevel.explain.head`), placed at the window's centre ``time``. A concept that
changes at ``t0`` shows as a ramp from ``t0 - window/2`` to ``t0 + window/2`` centred on ``t0``;
:func:`locate_change` finds that centre with a one-step fit.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from midlevel.checks import real_number
from midlevel.data.inputs import item_spectrogram
from midlevel.errors import ExplainError
from midlevel.explain.head import LinearHead, contributions, require_bottleneck
from midlevel.run import load_run


def timeline_frames(run, *, hop: float = 0.5, window: float | None = None) -> tuple[int, int]:
    """``(n_frames, hop_frames)`` of the windows over time; ExplainError unless ``hop`` and
    ``window`` (None: the run's training crop) are finite seconds > 0 and the hop is at least
    one frame (a shorter one would silently become one frame).

    Parameters
    ----------
    run : a loaded run (its ``fps`` and training crop).
    hop, window : seconds, see :func:`window_concepts`.
    """
    from midlevel.data.frontends import window_frames
    hop = real_number(hop, "timeline hop (--hop)", above=0, unit="seconds", error=ExplainError)
    window = real_number(window, "timeline window (--window)", above=0, unit="seconds",
                         allow_none=True, error=ExplainError)
    fps = run.fps
    hop_frames = int(round(hop * fps))
    if hop_frames < 1:
        raise ExplainError(f"timeline hop (--hop) {hop!r} s is shorter than one frame "
                           f"({1 / fps:.3g} s at {fps:g} frames per second)")
    crop = window_frames(run.config.crop_seconds, fps)
    if window is None:
        return crop, hop_frames
    n_frames = window_frames(window, fps)
    if n_frames < crop and not _runs_on(run, n_frames):
        least = min_frames(run)  # the training crop fits; a shorter window may not
        shortest = (least - 1) / fps  # the window of `least` frames (see window_frames)
        raise ExplainError(f"timeline window (--window) {window:g} s is shorter than the "
                           f"model's shortest input, {shortest:.3g} s ({least} frames at "
                           f"{fps:g} frames per second); pass --window "
                           f"{math.ceil(shortest * 100) / 100:g} or more")
    return n_frames, hop_frames


def _runs_on(run, n_frames: int) -> bool:
    """Whether the run's model takes an input of ``n_frames`` frames
    (:func:`~midlevel.models.backbone.takes_input`)."""
    from midlevel.models.backbone import takes_input
    return takes_input(run.model, run.frontend_module.n_bands, n_frames)


def min_frames(run) -> int:
    """The fewest frames the run's model takes as input
    (:func:`~midlevel.models.backbone.fewest_frames` below the training crop, which fits)."""
    from midlevel.models.backbone import fewest_frames
    from midlevel.data.frontends import window_frames
    return fewest_frames(run.model, run.frontend_module.n_bands,
                         window_frames(run.config.crop_seconds, run.fps))


def window_concepts(run, spectrogram, *, hop: float = 0.5, window: float | None = None,
                    name: str = "clip", batch_size: int = 16,
                    seconds: float | None = None) -> pd.DataFrame:
    """Concept predictions per window of one spectrogram.

    Parameters
    ----------
    run : a loaded bottleneck run.
    spectrogram : array [shape=(n_bands, n_frames)] of the run's front end.
    hop : seconds between window starts (the last window ends at the clip's end); finite,
        at least one frame.
    window : window length in seconds, finite and > 0 (default None: the run's training
        crop; clips no longer than that give a single window).
    seconds : the audio's duration; ``end`` is clipped to it, rounded to the microsecond
        (default: the spectrogram's,
        ``n_frames / fps``, which passes the audio's end by up to a frame: the front end
        rounds the frame count up).

    Returns
    -------
    pd.DataFrame with ``clip, start, end, time`` (window centre, s: the middle of ``start``
    and ``end``) and the concepts (rating units). ``start`` and the windows' frames do not
    depend on ``seconds``.
    """
    import torch
    from midlevel.training.predict import predict_specs
    spec = torch.as_tensor(np.asarray(spectrogram), dtype=torch.float32)
    fps = run.fps
    n_frames, hop_frames = timeline_frames(run, hop=hop, window=window)
    device = next(run.model.parameters()).device
    [(starts, concepts, _)] = predict_specs(run.model, [spec], n_frames, hop_frames,
                                            device=device, batch_size=batch_size,
                                            per_window=True)
    start = np.asarray(starts, dtype=float) / fps
    end = np.minimum(start + n_frames / fps, spec.shape[1] / fps if seconds is None  # to the
                     else min(round(float(seconds), 6), spec.shape[1] / fps))  # microsecond
    frame = pd.DataFrame({"clip": name, "start": start.round(6), "end": end.round(6),
                          "time": ((start + end) / 2).round(6)})  # times to the microsecond
    for k, c in enumerate(run.concept_names):
        frame[c] = concepts[:, k]
    return frame


def contributions_over_time(run, audio, *, baseline, hop: float = 0.5,
                            window: float | None = None, name: str | None = None,
                            targets=None) -> tuple[pd.DataFrame, np.ndarray]:
    """Contributions of every concept to every target, per window over time.

    Parameters
    ----------
    run : a bottleneck run or its directory.
    audio : a path, a waveform (front end's rate; prepared as a file is, see
        :mod:`midlevel.data.inputs`) or a spectrogram ``(n_bands, n_frames)`` with the front
        end's band count.
    baseline : concept baseline (see :func:`midlevel.explain.head.baseline_concepts`).
    hop, window : see :func:`window_concepts`.
    name : clip name in the table.
    targets : targets to keep (default all).

    Returns
    -------
    table : tidy contributions with ``clip, start, end, time`` keys (``end`` at most the
        audio's duration where ``audio`` is a path or a waveform).
    spectrogram : np.ndarray [shape=(n_bands, n_frames)] the windows were cut from.
    """
    run = load_run(run)
    require_bottleneck(run)
    path = isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__")
    if name is None:
        from pathlib import Path
        name = Path(str(audio)).stem if path else "clip"
    # as Run.predict: a path or waveform prepared once (its length the audio's duration), a
    # spectrogram checked against the front end's bands
    spec, seconds = item_spectrogram(str(audio) if path else audio, name,
                                     frontend=getattr(run, "frontend_module", None),
                                     fps=getattr(run, "fps", None))
    spec = np.asarray(spec)
    if not path and np.ndim(audio) == 2:
        seconds = None  # a spectrogram: its windows are not cut at an audio duration
    frame = window_concepts(run, spec, hop=hop, window=window, name=name, seconds=seconds)
    return contributions(frame, LinearHead.from_run(run), baseline, targets=targets), spec


def locate_change(times, values, *, window: float | None = None) -> float:
    """Time of the single change that best explains a curve (least squares), or NaN (with a
    warning) where the curve does not tell it.

    Parameters
    ----------
    times : array [shape=(n,)] window centres, increasing.
    values : array [shape=(n,)] or [shape=(n, m)] curve(s) sampled at ``times`` (several
        curves share one change time).
    window : the window length in seconds. Given, the curve is fitted with the ramp that a
        step at ``t0`` makes when seen through windows of that length (``a + b * clip((t - t0
        + window / 2) / window, 0, 1)``, ``t0`` on a grid of a tenth of the hop); without it, a
        plain step between two samples.

    Returns
    -------
    float : the estimated change time in seconds; NaN where the fit cannot tell it: a flat
        curve, separate times that fit equally well, or every ``t0`` over more than two grid
        steps fitting equally well, as when (with ``window``) every window spans the change,
        so the ramp is a straight line through all of them and its centre could be anywhere
        on it (a 10-s window on a 15-s clip: centres 5-10 s, any change between 5 and 10 s).
        Ties are judged relative to the curve's own spread, so its units do not matter. The
        warning says which case and names the times.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float).reshape(len(t), -1)
    if len(t) < 2:
        raise ExplainError("need at least two windows to locate a change")
    scale = float(((v - v.mean(0)) ** 2).sum())
    flat = not np.ptp(v, axis=0).max() > 1e-9 * float(np.abs(v).max())  # scale-free
    if window:
        step = max(1e-3, float(np.min(np.diff(t))) / 10 if len(t) > 1 else 0.01)
        grid = np.arange(t[0] - window / 2, t[-1] + window / 2 + step, step)
        sse = np.empty(len(grid))
        for j, t0 in enumerate(grid):
            ramp = np.clip((t - t0 + window / 2) / window, 0.0, 1.0)
            design = np.stack([np.ones_like(t), ramp], 1)
            coef, *_ = np.linalg.lstsq(design, v, rcond=None)
            sse[j] = float(((v - design @ coef) ** 2).sum())
    else:
        step = float(np.min(np.diff(t)))
        grid = (t[:-1] + t[1:]) / 2
        sse = np.array([((v[:i] - v[:i].mean(0)) ** 2).sum()
                        + ((v[i:] - v[i:].mean(0)) ** 2).sum() for i in range(1, len(t))])
    best = int(np.argmin(sse))
    tied = np.flatnonzero(sse <= sse[best] + 1e-9 * scale)  # relative: any units
    if flat:
        why = "the curve is flat"
    elif np.any(np.diff(tied) > 1):
        why = ("several separate times fit it equally well: "
               + ", ".join(f"{x:.2f}" for x in grid[tied][np.r_[True, np.diff(tied) > 1]]) + " s")
    elif grid[tied[-1]] - grid[tied[0]] > 2.5 * step:
        seen = np.clip((t - grid[best] + window / 2) / window, 0, 1) if window else None
        why = (f"every time from {grid[tied[0]]:.2f} to {grid[tied[-1]]:.2f} s fits it "
               f"equally well: " + (
                   "the best fit shows no change within the windows" if seen is not None
                   and np.ptp(seen) == 0 else
                   "every window spans the change, so the ramp is a straight line through "
                   "all of them" if window else "a flat stretch"))
    else:
        return float(grid[best])
    import logging
    logging.getLogger("midlevel").warning(
        "locate_change: the curve does not tell when it changes (%s); returned NaN", why)
    return float("nan")
