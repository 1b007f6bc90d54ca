"""The attribution workflow: explain a run's outputs on audio files with spectrogram
attributions (``midlevel explain`` on a black-box run).

For each clip, method and explained output this writes, under ``out_dir``:

- ``<clip>/<method>__<output>.npz``: the attribution (``Attribution.save``; values, inputs,
  prediction, reference, axes);
- ``<clip>/<method>__<output>.png``: map over the spectrogram (seconds, Hz), time curve and
  frequency profile;
- ``<clip>/<method>__<output>_for.wav``, ``_against.wav``, ``_complement.wav`` (and ``_both``,
  ``_clip``): the listenable explanation, by the sign of the evidence relative to the
  reference, and ``_listen_back.csv``: the share of ``f(x) - f(reference)`` each part keeps
  when its audio is re-run through front end and model (:mod:`midlevel.explain.listen_back`;
  ``readable`` is False, with a ``note``, where that span is below 5 % of the output's sd over
  the run's test clips, ``spread_sd``, as in ``compare``);
- ``attribution_summary.csv`` (clip, method, output, units, prediction, expected (the
  reference's output), total (on the map), padding (LRP's relevance on the silence a clip
  shorter than the window is padded with), additivity gap, ms per clip), ``time_marginals.csv``,
  ``frequency_marginals.csv``, ``listen_back.csv`` (wav paths relative to ``out_dir``), and
  with ``faithfulness=True`` ``faithfulness.csv`` (the harness's per-clip scores: MoRF / LeRF
  deletion and insertion against random orders, :mod:`midlevel.explain.harness`).

The explained number is the one ``midlevel predict`` reports: the mean over the run's
windows of the clip (:class:`~midlevel.explain.attribution.base.WindowedOutput`), in its
units. Every number written (the arrays of the ``.npz`` files, the maps, the tables, the
listen-back outputs ``f_x``, ``f_ref``, ``output`` and the faithfulness curves) is in those
units, named by the ``units`` column: "rating" for a regression target or a rating concept
(``mean + std * z`` of the model's z-scored output; attributions multiplied by ``std``, which
is exact since they are linear in the output's scale), "logit" for a binary target and a
binary concept, "centred logit" for a class (its logit minus its classes' mean; ``predict``
reports their probabilities). So ``expected + total =
prediction`` up to the additivity gap of the method.

Also ``predictions.csv``: ``midlevel predict``'s row of each explained clip (of the part
explained, with ``max_seconds``) with its name and its source ``path`` (the key of
``predict``'s table), and ``explain_files.json``, the files written, so that a later
explanation into the same folder removes the earlier one's files it does not write again.
Clips are named by their file's stem, file-safe and unique (:mod:`midlevel.explain.names`;
never a name of the files above: ``predictions.csv.wav`` is written to ``predictions.csv_1/``).

Every option is checked, and the background read, before the first file is written. A file
that cannot be read (missing, empty, not audio, silent, NaN) is named in a warning and skipped,
as ``predict`` does; the others are explained (``ExplainResult.errors``); when none can be
read, nothing is written. Any run; a bottleneck's outputs may name concepts (``"concept:x"``).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from midlevel.data.frontends import file_band_note
from midlevel.errors import AttributionError, ExplainError, MidlevelError
from midlevel.explain.attribution.attributor import Attributor
from midlevel.explain.attribution.base import resolve_output
from midlevel.explain.attribution.registry import resolve_method
from midlevel.explain.names import clip_names, safe_name, unique_names
from midlevel.explain.harness import clip_scores, curve_areas, perturbation_curves
from midlevel.explain.listen_back import (
    gain_for_peaks, listen_back_csv, listen_back_parts, output_spread, part_audio,
    write_listen_back,
)
from midlevel.io import LOCK_FILE, recording, replace_manifest, save_figure, write_csv
from midlevel.run import load_run
from midlevel.training.predict import short_note

log = logging.getLogger("midlevel.explain")

__all__ = ["explain_blackbox", "explain_audio", "ExplainResult", "safe_name", "run_background"]

MANIFEST = "explain_files.json"
"""The files an explanation wrote into its folder (relative paths): a later ``explain`` into
the same folder removes them before it writes (:func:`midlevel.io.replace_manifest`)."""

SUMMARY, TIME, FREQUENCY = ("attribution_summary.csv", "time_marginals.csv",
                            "frequency_marginals.csv")
HELD_AUDIO = 64 * 2 ** 20
"""Bytes of listen-back audio ``explain`` holds per clip until the clip's one factor is known;
the parts beyond it are made again when written (3.8 s per explanation of a 177-s clip)."""
LISTEN_BACK, FAITHFULNESS, PREDICTIONS = "listen_back.csv", "faithfulness.csv", "predictions.csv"
OUTPUT_NAMES = (SUMMARY, TIME, FREQUENCY, LISTEN_BACK, FAITHFULNESS, PREDICTIONS, MANIFEST,
                LOCK_FILE)
"""Every name the black-box workflow (and the command's lock) writes at the top of its folder,
beside the clips' folders: no clip is given one (:func:`unique_names`'s ``reserved``)."""


@dataclass
class ExplainResult:
    """What :func:`explain_audio` computed and wrote.

    attributions : list of Attribution (one per clip, method and output).
    summary, time_marginals, frequency_marginals : tidy tables (also written as CSV).
    faithfulness : curve areas (empty unless requested). listen_back : its shares.
    predictions : ``midlevel predict``'s table of the explained clips (clip, path, the
        outputs; also written as ``predictions.csv``). files : every file written.
    errors : path -> message for files that could not be read (skipped).
    warnings : clip -> message (a clip shorter than the window, padded with silence).
    """

    attributions: list = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    time_marginals: pd.DataFrame = field(default_factory=pd.DataFrame)
    frequency_marginals: pd.DataFrame = field(default_factory=pd.DataFrame)
    faithfulness: pd.DataFrame = field(default_factory=pd.DataFrame)
    listen_back: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: list = field(default_factory=list)
    errors: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)


def run_background(run, n: int = 16, *, spec=None, root=None, cache_dir=None,
                   seed: int = 0) -> torch.Tensor | None:
    """Training-split background of a run, or None (with a warning) if its data is unknown."""
    try:
        return run.background(n, spec=spec, root=root, cache_dir=cache_dir, seed=seed)
    except (MidlevelError, OSError) as exc:  # no spec stored, data moved: silence
        log.warning("no training background for %s (%s); using a silent reference", run.path, exc)
    return None


def explain_audio(run, audio_paths, out_dir, *, outputs=None, methods=("shap_deep",),
                  background: torch.Tensor | None = None, n_background: int = 16,
                  spec=None, root=None, cache_dir=None, names=None, listen: bool = True,
                  mass: float = 0.9, figures: bool = True, faithfulness: bool = False,
                  n_random: int = 5, max_seconds: float | None = None,
                  progress: bool = False, **options) -> ExplainResult:
    """Attributions of a run's outputs for audio files, with figures, arrays and wavs.

    Parameters
    ----------
    run : a ``Run`` or a run directory.
    audio_paths : audio files (any format ``load_audio`` reads).
    outputs : outputs to explain (names as in :func:`resolve_output`); default every output
        unit of the run.
    methods : attribution methods (see ``midlevel.explain.attribution.METHODS``).
    background : reference spectrograms; default ``n_background`` crops of the training split
        (silence if the run's data cannot be found).
    listen : write the for / against / complement wavs and their listen-back shares
        (``mass``: the share of the total |attribution| the selected bins hold).
    faithfulness : also run the faithfulness harness (deletion and insertion, MoRF and LeRF,
        against ``n_random`` random orders).
    max_seconds : explain only the first ``max_seconds`` of each clip.
    options : passed to :class:`Attributor` (n_steps, n_samples, window, stride, ...).
    """
    import matplotlib.pyplot as plt

    from midlevel.data.audio import load_audio
    from midlevel.data.frontends import make_frontend
    from midlevel.plots.attribution import attribution_figure
    from midlevel.checks import real_number, whole_number

    run = load_run(run)
    paths = [str(p) for p in audio_paths]
    methods = [resolve_method(m) for m in methods]
    if not methods:
        raise AttributionError("no attribution method given")
    outputs = list(outputs) if outputs else list(run.model.output_names)
    for o in outputs:
        resolve_output(run.model, o)  # fail early on a bad name
    max_seconds = real_number(max_seconds, "max_seconds", above=0, unit="seconds",
                              allow_none=True)
    mass = real_number(mass, "mass", above=0, most=1)
    if faithfulness:
        whole_number(n_random, "n_random", least=5)
    # unique as folder names after the file-safe mapping, never a file beside the folders
    names = unique_names(names, safe=True, reserved=OUTPUT_NAMES) if names is not None \
        else clip_names(paths, safe=True, reserved=OUTPUT_NAMES)
    if len(names) != len(paths):
        raise AttributionError(f"{len(names)} names for {len(paths)} audio files")
    fe = make_frontend(run.frontend)
    if background is None:
        background = run_background(run, whole_number(n_background, "n_background"), spec=spec,
                                    root=root, cache_dir=cache_dir)
    attributors = {(m, o): Attributor(run.model, m, output=o, background=background,
                                      fps=fe.fps, band_frequencies=fe.band_frequencies,
                                      windows=run.window(), frontend=fe, **options)
                   for m in methods for o in outputs}
    out = Path(out_dir)  # created with the first clip's folder (none if no file can be read)
    with recording(out, MANIFEST):  # each file listed before it is written (a kill too)
        result = ExplainResult()
        items = tqdm(list(zip(names, paths)), desc="explaining", unit="clip",
                     disable=not progress)
        summaries, times, freqs, faith, shares, predictions = [], [], [], [], [], []
        spreads = {}  # output -> its spread (sd over the test clips), measured once
        for name, path in items:
            try:
                y = load_audio(path, sample_rate=fe.sample_rate)
            except Exception as exc:  # named and skipped, as `midlevel predict` does
                result.errors[path] = str(exc)   # its file named once in the warning
                log.warning("skipping %s: %s", path, str(exc).removeprefix(f"{path}: "))
                continue
            if max_seconds:
                y = y[: int(max_seconds * fe.sample_rate)]
            with torch.no_grad():  # y is prepared already (run.spectrogram would normalize again)
                spec_x = run.frontend_module(torch.as_tensor(y))[None, None]
            predictions.append(_predictions(run, spec_x[0, 0], name, path, result.warnings,
                                            seconds=len(y) / fe.sample_rate))
            position = len(predictions) - 1  # among the clips explained: its random orders
            if position == 0 and out.is_dir():  # an earlier explanation's files go first (a
                replace_manifest(out, paths, MANIFEST)  # rerun stopped left a mix), not inputs
            clip_dir = out / name  # a safe, unique name: one folder per clip
            clip_dir.mkdir(parents=True, exist_ok=True)
            # (listen-back table, audio or None, map, stem, columns) per method and output
            heard, held = [], 0
            for (method, output), attributor in attributors.items():  # predict's units:
                attr = attributor.attribute(spec_x, clips=[name]).in_rating_units()
                f = attributor.rating_selector
                result.attributions.append(attr)
                label = attr.output if attr.output_kind == "target" else f"concept_{attr.output}"
                stem = f"{method}__{safe_name(label)}"
                attr.save(clip_dir / f"{stem}.npz")
                result.files.append(clip_dir / f"{stem}.npz")
                summaries.append(attr.summary())
                times.append(attr.time_marginal())
                freqs.append(attr.frequency_marginal())
                if figures:
                    fig = attribution_figure(attr)
                    save_figure(fig, clip_dir / f"{stem}.png", dpi=100)
                    plt.close(fig)
                    result.files.append(clip_dir / f"{stem}.png")
                reference = attributor.reference_for(spec_x.to(attributor.device))
                if listen:
                    if output not in spreads:
                        spreads[output] = _spread(run, f, attr, dict(spec=spec, root=root,
                                                                     cache_dir=cache_dir))
                    spread, spread_of = spreads[output]
                    table, audio = listen_back_parts(
                        np.asarray(y), attr.maps[0], f, fe, mass=mass, clip=stem,
                        reference=attributor.removal_reference(spec_x.to(attributor.device)),
                        spread=spread)
                    # the wavs wait for the clip's one factor; past HELD_AUDIO bytes their
                    # audio is dropped (the table keeps the peaks) and made again to be
                    # written: holding it grows with clip length x methods x outputs
                    size = sum(a.nbytes for a in audio.values())
                    keep = held + size <= HELD_AUDIO
                    held += size if keep else 0
                    heard.append((table, audio if keep else None, attr.maps[0], stem, dict(
                        method=method, output=attr.output, units=attr.units,
                        spread_sd=spread, spread_of=spread_of)))
                    del audio
                if faithfulness:
                    curves = perturbation_curves(f, spec_x, attr.values,
                                                 reference, method=method, clips=[name],
                                                 n_random=n_random, first=position)
                    faith.append(clip_scores(curve_areas(curves)).assign(output=attr.output))
            # one factor for every wav of the clip, over its methods and outputs: none is
            # clipped, and their loudness stays comparable (as compare does)
            gain = gain_for_peaks([np.max(np.abs(y), initial=0.0),
                                   *(p for entry in heard for p in entry[0]["peak"])])
            while heard:
                table, audio, values, stem, about = heard.pop(0)
                if audio is None:
                    audio = part_audio(np.asarray(y), values, fe, mass=mass,
                                       parts=tuple(table["part"]))
                table = write_listen_back(table, audio, clip_dir, gain=gain,
                                          sample_rate=fe.sample_rate,
                                          labels={"clip": name, **about})
                shares.append(table.assign(clip=name, **about))
                result.files += [clip_dir / f"{stem}_{p}.wav" for p in table["part"]]
                result.files.append(listen_back_csv(clip_dir, stem))
        if summaries:
            result.summary = pd.concat(summaries, ignore_index=True)
            result.time_marginals = pd.concat(times, ignore_index=True)
            result.frequency_marginals = pd.concat(freqs, ignore_index=True)
            for table, fname in [(result.summary, SUMMARY), (result.time_marginals, TIME),
                                 (result.frequency_marginals, FREQUENCY)]:
                result.files.append(write_csv(table, out / fname))
        if shares:
            lb = result.listen_back = pd.concat(shares, ignore_index=True)
            rel = [os.path.relpath(p, out) for p in lb["path"]]  # paths from the folder
            result.files.append(write_csv(lb.assign(path=rel), out / LISTEN_BACK))
        if faith:
            result.faithfulness = pd.concat(faith, ignore_index=True)
            result.files.append(write_csv(result.faithfulness, out / FAITHFULNESS))
        if predictions:
            result.predictions = pd.concat(predictions, ignore_index=True)
            result.files.append(write_csv(result.predictions, out / PREDICTIONS))
            replace_manifest(out, result.files, MANIFEST)
    return result


def _spread(run, f, attr, data: dict) -> tuple[float, str]:
    """The explained output's spread over the test clips (:func:`output_spread`: its ratings'
    sd, or ``f``'s own for a logit), against which a listen-back share's span is judged;
    ``(nan, "unknown")`` with a warning when the run's data cannot be read (the shares are then
    not checked)."""
    name = attr.output
    try:
        return output_spread(run, f, data, name, attr.units)
    except (MidlevelError, OSError) as exc:  # no spec stored, data moved
        log.warning("no test clips of %s to judge the listen-back shares of %s by (%s); "
                    "their 'readable' column is not checked", run.path, name, exc)
        return np.nan, "unknown"


def _predictions(run, spectrogram, name: str, path: str, warnings: dict, *,
                 seconds: float) -> pd.DataFrame:
    """``Run.predict``'s row of one clip (spectrogram [shape=(n_bands, n_frames)] of audio
    lasting ``seconds``: a short clip's note gives these, not frames / fps, 3.01 s for 3.00)
    with its name and source path first; a clip shorter than the window, or recorded at a
    rate that leaves bands empty, is logged once and its note put in ``warnings[name]``."""
    row = run.predict(spectrogram, names=[path], log_notes=False)  # its one note: too short
    short = (short_note(seconds, run.config.crop_seconds)
             if row.attrs.get("warnings", {}).get(path) else "")
    notes = "; ".join(filter(None, [short, file_band_note(path, run.frontend_module)]))
    if notes:
        log.warning("%s: %s", path, notes)
        warnings[name] = notes
    return pd.concat([pd.DataFrame({"clip": [name], "path": [path]}),
                      row.drop(columns="clip").reset_index(drop=True)], axis=1)


#: Options of ``midlevel explain`` that only a bottleneck's concepts give a meaning to.
CONCEPT_OPTIONS = {"settings": "--set", "baseline": "--baseline",
                   "timeline_targets": "--timeline-targets",
                   "intervention_split": "--intervention-split"}


def check_no_concept_options(run, *, flags: dict | None = None, **given) -> None:
    """ExplainError if any concept option (``CONCEPT_OPTIONS``) is given: a black-box run has
    no concepts to set, no concept baseline, timeline, dataset view or intervention curve (and
    a bottleneck's are the concept workflow's); a silently ignored option would look as if it
    had acted. ``flags``: further options, already named as on the command line (``{"--hop":
    2.0, "--no-timeline": True}``), given to a command and refused alike."""
    asked = [f"{flag} {_shown(given[key])}" for key, flag in CONCEPT_OPTIONS.items()
             if _given(given.get(key))]
    asked += [flag if value is True else f"{flag} {_shown(value)}"
              for flag, value in (flags or {}).items() if _given(value) and value is not False]
    if asked and getattr(run, "is_bottleneck", False):
        raise ExplainError(f"{'; '.join(asked)}: concept options are for the concept workflow "
                           f"(midlevel.workflows.explain_concepts), not for attributions")
    if asked:
        raise ExplainError(
            f"{run.path} is a black-box run (mode '{run.mode}'): it has no concepts, so there "
            f"are none to set and no concept baseline, timeline, dataset view or intervention "
            f"curve; drop {'; '.join(asked)} (bottleneck runs only). A black box is explained "
            f"with attributions: choose them with --targets and --methods.")


def _given(value) -> bool:
    """Whether an option was given: not None, not an empty string or collection."""
    if value is None:
        return False
    return len(value) > 0 if isinstance(value, (str, list, tuple, dict, set)) else True


def _shown(value) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def explain_blackbox(run, audio_paths, out_dir, *, targets=None, methods=("shap_deep",),
                     spec=None, root=None, cache_dir=None, progress: bool = True,
                     settings=None, baseline=None, timeline_targets=None,
                     intervention_split=None, **options) -> ExplainResult:
    """``midlevel explain`` for a black-box run: attribution maps, arrays and wavs per clip.

    Parameters
    ----------
    run : a ``Run`` or its directory; audio_paths : files to explain; out_dir : output folder.
    targets : target names to explain (default all; a class target explains each class unit).
    methods : attribution methods (default SHAP DeepExplainer).
    spec, root, cache_dir : where the training split (the background) is found.
    progress : progress bar.
    settings, baseline, timeline_targets, intervention_split : the concept options of
        ``midlevel explain``; given for a black box (no concepts), an ExplainError before
        anything is written (:func:`check_no_concept_options`).
    options : see :func:`explain_audio`.

    Returns
    -------
    ExplainResult (``errors`` names the files that could not be explained).
    """
    run = load_run(run)
    check_no_concept_options(run, settings=settings, baseline=baseline,
                             timeline_targets=timeline_targets,
                             intervention_split=intervention_split)
    outputs = None
    if targets:
        names = run.model.output_names
        matched = {t: [u for u in names if u == t or u.startswith(f"{t}=")] for t in targets}
        unknown = [t for t, units in matched.items() if not units]
        if unknown:  # every target named must be explained, not only some of them
            raise AttributionError(f"no output of {run.path} matches target(s) {unknown}; "
                                   f"outputs are {names}")
        outputs = list(dict.fromkeys(u for units in matched.values() for u in units))
    result = explain_audio(run, audio_paths, out_dir, outputs=outputs, methods=methods,
                           spec=spec, root=root, cache_dir=cache_dir, progress=progress,
                           **options)
    return result
