"""``synthesize``: a whole synthetic dataset on disk (audio, ratings, segments, truth, spec).

Files are written under a temporary name and moved into place (:mod:`midlevel.io`), so an
interrupted run never leaves a half-written file under a final name; an earlier dataset's spec
and tables are removed before any audio is written (:mod:`midlevel.synth.folder`), and
``spec.yaml`` is written last and marks a complete dataset.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from midlevel.io import write_json, write_text, write_wav

from midlevel.checks import real_number, whole_number
from midlevel.errors import ArgumentError
from midlevel.synth import folder
from midlevel.synth.material import draw_material
from midlevel.synth.render import render_clip
from midlevel.synth import tags as tagging
from midlevel.synth.world import (
    CONCEPT_QUESTIONS, COPULA_CORRELATION, EMOTION_DESCRIPTIONS, MIDLEVEL_CONCEPTS, RATING_SCALE, TARGET_SCALE, concepts_to_ratings, concepts_to_targets, draw_changes, load_weights, sample_concepts,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- dataset

@dataclass(frozen=True)
class _ClipJob:
    """Everything a worker needs to render and write one clip."""

    clip_id: str
    concepts: dict[str, float]
    change: tuple[str, float] | None
    seed: np.random.SeedSequence
    duration: float
    sample_rate: int
    path: Path
    layers: dict[str, bool] | None = None   # the tag world's layer families (None: all)
    change_time: float | None = None        # seconds (None: duration / 2)


def _run_job(job: _ClipJob) -> tuple[str, dict[str, float]]:
    """Render one clip and write it atomically; returns its id and nuisance parameters."""
    mat = draw_material(np.random.default_rng(job.seed), job.duration, job.sample_rate)
    wave = render_clip(mat, job.concepts, job.change, job.layers, change_time=job.change_time)
    write_wav(job.path, wave, job.sample_rate)
    return job.clip_id, {"tempo_bpm": round(mat.tempo, 2), "key": int(mat.key)}


def _usable_cores() -> int:
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _n_workers(n_jobs: int | None, n_clips: int) -> int:
    """Worker processes for ``n_clips`` jobs (``n_jobs`` None: all usable cores)."""
    return max(1, min(n_jobs or _usable_cores(), n_clips))


def _run_jobs(jobs: list[_ClipJob], n_jobs: int | None) -> Iterator[tuple[str, dict]]:
    """Run ``jobs`` in this process (n_jobs == 1) or a process pool (None = all cores)."""
    n_workers = _n_workers(n_jobs, len(jobs))
    if n_workers <= 1:
        yield from map(_run_job, jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(n_workers) as pool:
        yield from pool.imap_unordered(_run_job, jobs, chunksize=2)


def _segment_table(ids: list[str], first: np.ndarray, changes: dict[int, tuple[int, float]],
                   times: dict[int, float], duration: float, weights: pd.DataFrame,
                   intercepts: pd.Series, rng: np.random.Generator, rating_noise: float,
                   target_noise: float) -> pd.DataFrame:
    """Ratings of both parts of every changed clip (before and after its change time in
    ``times``): ``clip_id, start, end``, concepts, targets.

    Each part is rated from its own true concepts (the first part's ``first``, the second's
    with the changed value) with the clip ratings' formulas and independent noise from ``rng``.
    """
    rows, values = [], []
    for i in sorted(changes):
        k, new = changes[i]
        second = first[i].copy()
        second[k] = new
        rows += [(ids[i], 0.0, times[i]), (ids[i], times[i], float(duration))]
        values += [first[i], second]
    true = np.array(values).reshape(len(values), len(MIDLEVEL_CONCEPTS))
    table = pd.DataFrame(rows, columns=["clip_id", "start", "end"])
    for key in ("start", "end"):  # full precision, not the ratings' 2 decimals
        table[key] = [f"{t:.6g}" for t in table[key]]
    table[list(MIDLEVEL_CONCEPTS)] = concepts_to_ratings(true, rng, rating_noise)
    table[list(weights.index)] = concepts_to_targets(true, weights, intercepts, rng, target_noise)
    return table


def _tag_spec(spec: dict) -> dict:
    """Add the tag world's layer tags (one 0/1 column per tag) and its multi-label mood
    target (one delimited column) to a synthetic spec."""
    spec["description"] += (" Tags: which layer families a clip holds (binary concepts) and "
                            "moods drawn from them by a known logistic map (a multi-label "
                            "target).")
    spec["concepts"]["layer"] = {"type": "tags", "columns": dict(tagging.TAG_COLUMNS),
                                 "description": "Which layer families sound in the clip"}
    spec["targets"]["mood"] = {"type": "tags", "column": "mood", "sep": "|",
                               "tags": list(tagging.MOODS), "empty": "none",
                               "description": "Moods (synthetic: logistic map of the layers)"}
    return spec


def _tag_truth(ids: list[str], tags: np.ndarray, moods: np.ndarray, presence: float) -> dict:
    """The ground truth of the tags: presence, the logistic map (in log-odds per tag), and
    every clip's tags and moods."""
    return {
        "layers": list(tagging.TAG_LAYERS), "moods": list(tagging.MOODS),
        "presence_probability": float(presence),
        "concept_names": {k: f"layer={k}" for k in tagging.TAG_LAYERS},
        "target_names": {m: f"mood={m}" for m in tagging.MOODS},
        "map": {"formula": "P(mood_t) = sigmoid(intercept_t + sum_k weights[t][k] * tag_k), "
                           "tag_k in {0, 1}; each mood drawn independently",
                "weights": tagging.DEFAULT_TAG_WEIGHTS.to_dict(orient="index"),
                "intercept": tagging.DEFAULT_TAG_INTERCEPTS.to_dict()},
        "clips": {c: {"layers": [k for k, on in zip(tagging.TAG_LAYERS, t) if on],
                      "moods": [m for m, on in zip(tagging.MOODS, md) if on]}
                  for c, t, md in zip(ids, tags, moods)},
    }


def _spec_dict(seed: int, targets: list[str]) -> dict:
    """The data spec of a synthetic dataset (format of data_specs/README.md)."""
    return {
        "name": "synthetic",
        "description": "Synthetic concept world (midlevel.synth): noisy 1-10 ratings of "
                       "known concepts, 1-9 targets from a known linear map; see "
                       "ground_truth.json.",
        "root": ".",
        "audio": {"pattern": "audio/{id}.wav"},
        "tables": [{"path": "annotations.csv", "id_column": "clip_id"}],
        "segments": [{"path": "segments.csv", "id_column": "clip_id", "start_column": "start",
                      "end_column": "end"}],
        "concepts": {k: {"column": k, "scale": list(RATING_SCALE),
                         "description": CONCEPT_QUESTIONS[k]} for k in MIDLEVEL_CONCEPTS},
        "targets": {t: {"column": t, "scale": list(TARGET_SCALE),
                        "description": EMOTION_DESCRIPTIONS[t]} for t in targets},
        "splits": {"seed": int(seed), "test": {"fraction": 0.15},
                   "validation": {"fraction": 0.15}},
    }


def _ground_truth(ids: list[str], true: np.ndarray, first: np.ndarray,
                  changes: dict[int, tuple[int, float]], times: dict[int, float],
                  nuisance: dict[str, dict], weights: pd.DataFrame, intercepts: pd.Series,
                  settings: dict) -> dict:
    """The JSON-ready record of everything that generated the dataset."""
    lo, hi = RATING_SCALE
    per_point = weights / (hi - lo)
    clips = {}
    for i, clip_id in enumerate(ids):
        record = {"concepts": dict(zip(MIDLEVEL_CONCEPTS, np.round(true[i], 6).tolist())),
                  "change": None, "segments": None, **nuisance[clip_id]}
        if i in changes:
            k, new = changes[i]
            record["change"] = {"concept": MIDLEVEL_CONCEPTS[k],
                                "old": round(float(first[i, k]), 6), "new": round(new, 6),
                                "time": times[i]}
            second = first[i].copy()
            second[k] = new
            record["segments"] = [
                {"start": 0.0, "end": times[i],
                 "concepts": dict(zip(MIDLEVEL_CONCEPTS, np.round(first[i], 6).tolist()))},
                {"start": times[i], "end": settings["duration"],
                 "concepts": dict(zip(MIDLEVEL_CONCEPTS, np.round(second, 6).tolist()))}]
        clips[clip_id] = record
    return {
        **settings,
        "concepts": list(MIDLEVEL_CONCEPTS),
        "targets": list(weights.index),
        "copula_correlation": COPULA_CORRELATION.to_numpy().tolist()
        if settings["correlated"] else None,
        "concept_to_rating": {
            "formula": "rating = clip(offset + scale * true + N(0, rating_noise^2), 1, 10), "
                       "rounded to 2 decimals; true = time average over the clip "
                       "(annotations.csv) or the segment's value (segments.csv)",
            "offset": lo, "scale": hi - lo, "range": list(RATING_SCALE)},
        "target_map": {
            "formula": "target = clip(intercept + sum_j weights[target][j] * true_j "
                       "+ N(0, target_noise^2), 1, 9), rounded to 2 decimals",
            "weights": weights.to_dict(orient="index"),
            "intercept": intercepts.to_dict(),
            "weights_per_rating_point": per_point.to_dict(orient="index"),
            "intercept_rating_scale": (intercepts - lo * per_point.sum(axis=1)).to_dict(),
            "range": list(TARGET_SCALE)},
        "clips": clips,
    }


def synthesize(out_dir: str | os.PathLike, *, n_clips: int = 200, seed: int = 0,
               duration: float = 10.0, sample_rate: int = 22050,
               weights: str | os.PathLike | pd.DataFrame | None = None,
               correlated: bool = False, change_fraction: float = 0.25,
               change_range: tuple[float, float] = (0.5, 0.5),
               rating_noise: float = 0.5, target_noise: float = 0.3,
               tags: bool = False, tag_presence: float = tagging.PRESENCE,
               n_jobs: int | None = None, progress: bool = True) -> Path:
    """Write a synthetic concept dataset to ``out_dir`` and return the path of its spec.yaml.

    Writes ``audio/<id>.wav`` (16-bit mono, ids ``s0000``...), ``annotations.csv`` (``clip_id``,
    7 concept ratings on 1-10, targets on 1-9), ``ground_truth.json`` and ``segments.csv``
    (``clip_id``, ``start``, ``end``, then the same columns, two rows per clip with a change:
    before and after it), ``spec.yaml`` (last); files of the same names are replaced. Audio
    of an earlier synthetic dataset in ``out_dir`` (``audio/s<digits>.wav`` beside its
    ``ground_truth.json``) that this one does not write is removed, with a warning; other
    audio files in ``audio/`` are an error (they would join no row of the new annotations). Before any audio is written the
    earlier dataset's spec and tables are removed and ``SYNTH_INCOMPLETE.txt`` marks the folder
    (:mod:`midlevel.synth.folder`), so an interrupted run leaves no folder that loads as a
    dataset. A ``duration`` shorter than a sample, or whose clips, rendered at once by the
    workers, need more than this machine's memory (about 128 bytes per sample each), is refused.
    A warning names targets of which more than 1 % of the clips are clipped to the 1-9 scale.
    Results depend only on ``seed`` (not on ``n_jobs``): concepts, changes and clip rating noise
    come from the first child of ``SeedSequence(seed)``, clip ``i``'s audio from child ``i +
    1``, segment rating noise from child ``n_clips + 1``, the tags (with ``tags``) from child
    ``n_clips + 2``, the change times (with a ``change_range`` wider than a point) from child
    ``n_clips + 3``: a dataset without tags or with changes at one fraction of the clip is the
    same with these options as before they existed.

    Parameters
    ----------
    weights : path, DataFrame or None
        Concept-to-target map, see ``load_weights``; rows give the targets written.
    correlated : bool
        Draw concepts through the Gaussian copula ``COPULA_CORRELATION``.
    change_fraction : float
        Share of clips in which one concept jumps by at least 0.5 at their change time.
    change_range : (low, high)
        Fractions of ``duration`` between which each clip's change time is drawn uniformly
        (rounded to the millisecond); default ``(0.5, 0.5)``: every change at the middle,
        where a guess of the middle would locate every change exactly (a localization
        benchmark needs a range).
    rating_noise, target_noise : float
        Standard deviations of the rating noise (1-10 points) and target noise (1-9 points).
    tags : bool
        The tag world (:mod:`midlevel.synth.tags`): each layer family of ``TAG_LAYERS``
        sounds with probability ``tag_presence`` (absent: silent), written as 0/1 columns
        ``has_<layer>`` (binary concepts ``layer=<layer>`` of the spec), and a multi-label
        ``mood`` target drawn from them by a known logistic map (one ``|``-delimited column;
        the spec's targets ``mood=<mood>``); ``ground_truth.json`` holds it under ``tags``.
    n_jobs : int or None
        Worker processes (None: all cores, 1: this process).
    """
    n_clips, sample_rate = whole_number(n_clips, "n_clips"), whole_number(sample_rate,
                                                                          "sample_rate")
    duration = real_number(duration, "duration", above=0, unit="seconds")
    change_fraction = real_number(change_fraction, "change_fraction", least=0, most=1)
    change_range = _change_range(change_range)
    tag_presence = real_number(tag_presence, "tag_presence", least=0, most=1)
    rating_noise = real_number(rating_noise, "rating_noise", least=0)
    target_noise = real_number(target_noise, "target_noise", least=0)
    weight_matrix, intercepts = load_weights(weights)
    folder.check_duration(duration, sample_rate, _n_workers(n_jobs, n_clips))
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    width = max(4, len(str(n_clips - 1)))
    ids = [f"s{i:0{width}d}" for i in range(n_clips)]
    folder.invalidate(out, folder.stale_audio(out, ids))
    # children: 0 concepts, 1..n clips, n + 1 segment noise, n + 2 tags, n + 3 change times
    children = np.random.SeedSequence(seed).spawn(n_clips + 4)
    rng = np.random.default_rng(children[0])
    first = sample_concepts(n_clips, rng, correlated=correlated)
    changes = draw_changes(first, change_fraction, rng)
    times = _change_times(sorted(changes), change_range, duration, children[n_clips + 3])
    true = first.copy()
    for i, (k, new) in changes.items():  # the clip's rating: the time average
        share = times[i] / duration
        true[i, k] = share * first[i, k] + (1 - share) * new
    layer_tags = moods = None
    if tags:
        tag_rng = np.random.default_rng(children[n_clips + 2])
        layer_tags = tagging.sample_tags(n_clips, tag_rng, tag_presence)
        moods = tagging.sample_moods(layer_tags, tag_rng)
    jobs = [_ClipJob(clip_id, dict(zip(MIDLEVEL_CONCEPTS, first[i].tolist())),
                     (MIDLEVEL_CONCEPTS[changes[i][0]], changes[i][1]) if i in changes else None,
                     children[i + 1], float(duration), int(sample_rate),
                     out / "audio" / f"{clip_id}.wav",
                     None if layer_tags is None else
                     dict(zip(tagging.TAG_LAYERS, map(bool, layer_tags[i]))),
                     times.get(i))
            for i, clip_id in enumerate(ids)]
    try:
        nuisance = dict(tqdm(_run_jobs(jobs, n_jobs), total=n_clips,
                             desc="synthesizing clips", disable=not progress))
    except MemoryError:
        raise ArgumentError(f"duration (--duration) {duration:g} s: a clip does not fit in the "
                            f"memory this process may use; {out} is left incomplete "
                            f"({folder.INCOMPLETE})") from None

    table = pd.DataFrame(concepts_to_ratings(true, rng, rating_noise), columns=MIDLEVEL_CONCEPTS)
    targets = concepts_to_targets(true, weight_matrix, intercepts, rng, target_noise)
    table[list(weight_matrix.index)] = targets
    _warn_clipped(targets, list(weight_matrix.index))
    table.insert(0, "clip_id", ids)
    if tags:
        for k, name in enumerate(tagging.TAG_LAYERS):
            table[tagging.TAG_COLUMNS[name]] = layer_tags[:, k].astype(int)
        table["mood"] = tagging.mood_cells(moods)
    write_text(out / "annotations.csv", table.to_csv(index=False, float_format="%.2f"))
    segments = _segment_table(ids, first, changes, times, duration, weight_matrix, intercepts,
                              np.random.default_rng(children[n_clips + 1]), rating_noise,
                              target_noise)
    write_text(out / "segments.csv", segments.to_csv(index=False, float_format="%.2f"))
    settings = {"seed": int(seed), "n_clips": int(n_clips), "duration": float(duration),
                "sample_rate": int(sample_rate), "correlated": bool(correlated),
                "change_fraction": float(change_fraction),
                "change_range": [float(v) for v in change_range],
                "noise": {"rating_noise": float(rating_noise), "target_noise": float(target_noise)}}
    truth = _ground_truth(ids, true, first, changes, times, nuisance, weight_matrix, intercepts,
                          settings)
    spec = _spec_dict(seed, list(weight_matrix.index))
    if tags:
        truth["tags"] = _tag_truth(ids, layer_tags, moods, tag_presence)
        spec = _tag_spec(spec)
    write_json(out / "ground_truth.json", truth, indent=1)
    spec_path = out / "spec.yaml"
    write_text(spec_path, yaml.safe_dump(spec, sort_keys=False, width=100,
                                         default_flow_style=None))
    folder.complete(out)
    return spec_path


def _change_range(value) -> tuple[float, float]:
    """``(low, high)`` fractions of a clip with ``0 < low <= high < 1``, else ArgumentError."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ArgumentError(f"change_range must be two fractions of the clip (low, high), got "
                            f"{value!r}") from None
    if not 0.0 < low <= high < 1.0:
        raise ArgumentError(f"change_range must satisfy 0 < low <= high < 1 (fractions of the "
                            f"clip), got ({low:g}, {high:g})")
    return low, high


def _change_times(changed: list[int], change_range: tuple[float, float], duration: float,
                  seed: np.random.SeedSequence) -> dict[int, float]:
    """Each changed clip's change time in seconds: ``low * duration`` when the range is a
    point (no draw), else uniform in the range, rounded to the millisecond and kept a
    millisecond inside the clip."""
    low, high = change_range
    if low == high:
        return {i: low * duration for i in changed}
    draws = np.random.default_rng(seed).uniform(low, high, size=len(changed)) * duration
    inside = np.clip(np.round(draws, 3), 1e-3, max(1e-3, duration - 1e-3))
    return {i: float(t) for i, t in zip(changed, inside)}


def _warn_clipped(targets: np.ndarray, names: list[str], most: float = 0.01) -> None:
    """Warn, per target, where more than ``most`` of ``targets`` ``(n_clips, n_targets)`` lie
    at an end of ``TARGET_SCALE`` (clipped there: large ``weights``)."""
    ends = (targets <= TARGET_SCALE[0]) | (targets >= TARGET_SCALE[1])
    share = ends.mean(axis=0) if len(targets) else np.zeros(len(names))
    hit = [f"{name} {s:.0%}" for name, s in zip(names, share) if s > most]
    if hit:
        log.warning("targets clipped to the scale %s-%s (the weights push them past it), share "
                    "of clips: %s", *TARGET_SCALE, ", ".join(hit))
