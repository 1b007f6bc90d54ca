"""The concept-explanation workflow of a bottleneck run (``midlevel explain`` on a bottleneck).

For audio files it computes and writes, under ``out``:

- ``baseline.csv``: the concept baseline (mean predicted concept on the training split, or one
  given);
- ``contributions.csv`` and ``predictions.csv``: per clip, weight x (concept - baseline) of
  every concept for every target, and the model's own predictions (with each clip's source
  ``path``, on which it joins ``midlevel predict``'s table);
- ``<clip>_contributions.png``: the bar chart per clip;
- ``dataset_contributions_<split>.csv`` and ``<clip>_dataset.png``: the distribution of each
  contribution over a split, the clip marked (the dataset view);
- ``timeline.csv`` and ``<clip>_timeline.png``: contributions over time under the spectrogram
  (windows of ``window`` s every ``hop`` s; their mean is not the clip's prediction in
  ``contributions.csv``, which averages ``predict``'s windows, the training crop every
  ``eval_hop_seconds``: a 15-s clip read by 10-s windows counts its middle twice there);
- ``interventions.csv`` (concepts set to values, the ``set`` column says which and to what;
  a units column says what each row's prediction and change are in: rating, or logit for a
  binary or class target) and ``intervention_curve.csv/.png`` (true ratings substituted one
  concept at a time on a split; each target's RMSE in its units, and the mean over the
  targets, which also orders the greedy curve, of their RMSE / sd: targets can differ in
  units);
- ``explain_files.json``: the files above; a later explanation into the same folder removes
  the files of this one it does not write again (other files are left alone).

Clips are named by their file's stem, made unique (:mod:`midlevel.explain.names`). A file that
cannot be read (missing, empty, not audio, silent, NaN) is named in a warning and skipped, as
``midlevel predict`` does; the others are explained. When none can be read, nothing is written.
Nothing is printed: the result lists the files, the files that could not be read, and notes a
user should see.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.checks import article
from midlevel.explain.head import (
    LinearHead, baseline_concepts, binary_targets_of, contributions, require_bottleneck,
    run_design, warn_separated,
)
from midlevel.explain.interventions import intervene, run_intervention_curves
from midlevel.explain.names import clip_names
from midlevel.explain.timeline import contributions_over_time, timeline_frames
from midlevel.io import recording, replace_manifest, save_figure, write_csv
from midlevel.run import load_run
from midlevel.workflows.explain_attributions import MANIFEST
from midlevel.workflows.explain_inputs import (  # noqa: F401 (read_baseline: public here too)
    check_baseline, check_options, check_splits, read_baseline,
)


@dataclass
class ConceptExplanation:
    """What :func:`explain_concepts` computed and wrote.

    Attributes
    ----------
    contributions, predictions, baseline : the per-clip tables (also written as CSV;
        predictions: index clip, then the file's ``path``).
    files : every file written, in order. errors : path -> message for the files that could
        not be read (skipped). warnings : clip -> note of a clip shorter than the window
        (padded; logged when it was found).
    notes : messages for the user (e.g. a clip no longer than the timeline window).
    """

    contributions: pd.DataFrame
    predictions: pd.DataFrame
    baseline: pd.Series
    files: list[Path] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: dict[str, str] = field(default_factory=dict)
    run_mode: str = ""
    baseline_source: str = "mean predicted concepts on the training split"

    def summary_lines(self) -> list[str]:
        """One line for a terminal: what was explained, against which baseline."""
        mode = self.run_mode
        return [f"explained {len(self.predictions)} clip(s) of {article(mode)} {mode} run; "
                f"baseline: {self.baseline_source}"]


def explain_concepts(run, audio, out, *, targets=None, spec=None, root=None, cache_dir=None,
                     baseline=None, dataset_split: str | None = "train", timeline: bool = True,
                     hop: float = 0.5, window: float | None = None, timeline_targets=None,
                     settings: dict[str, float] | None = None,
                     intervention_split: str | None = None, repeats: int = 20, seed: int = 0,
                     progress: bool = False) -> ConceptExplanation:
    """Explain ``audio`` with a bottleneck run's concepts and write every file (see above).

    Every input is checked, and everything that reads data or runs the model is computed,
    before the first file is written (:func:`check_options`): a call that fails on its inputs
    leaves no partial output (and no new folder).

    Parameters
    ----------
    run : a ``Run`` or run directory (a bottleneck).
    audio : audio file paths. targets : targets to explain (default all).
    spec, root, cache_dir : the run's data (default: the spec and root it was trained on).
    baseline : a concept baseline (Series or path of a baseline.csv); default the mean
        predicted concept on the training split.
    dataset_split : split of the dataset view, or None to skip it.
    timeline, hop, window, timeline_targets : the view over time (window default: the run's
        training crop; hop and window finite seconds > 0; timeline targets among the
        explained ones).
    settings : ``{concept: value}`` interventions (a rating set outside its spec scale gives
        a note). intervention_split, repeats, seed: the intervention curve (None: skip).
    """
    run = load_run(run)
    require_bottleneck(run)
    paths = [str(p) for p in audio]
    head = LinearHead.from_run(run)
    options = check_options(run, head, targets=targets, dataset_split=dataset_split, hop=hop,
                            window=window, timeline_targets=timeline_targets,
                            settings=settings, intervention_split=intervention_split,
                            repeats=repeats)
    source = str(baseline) if baseline is not None and not isinstance(baseline, pd.Series) \
        else "given" if baseline is not None else None
    baseline_notes: list[str] = []
    if isinstance(baseline, pd.Series):
        baseline = check_baseline(baseline, run.concept_names)
    elif baseline is not None:
        baseline = read_baseline(baseline, run.concept_names, notes=baseline_notes)
    check_splits(run, baseline=baseline, dataset_split=dataset_split,
                 intervention_split=intervention_split, spec=spec, root=root)

    # everything computed first (the clips first: when none can be read, nothing else is) ...
    pred = clip_predictions(run, paths)
    result = ConceptExplanation(pd.DataFrame(), pred, baseline, [],
                                dict(pred.attrs["errors"]), run_mode=run.mode,
                                warnings=dict(pred.attrs["warnings"]))
    result.notes += baseline_notes + options.notes
    if source:
        result.baseline_source = source
    if not len(pred):
        return result  # every file skipped: nothing written (an earlier explanation stays)
    data = {"spec": spec, "root": root, "cache_dir": cache_dir, "progress": progress}
    train_pred = _training_concepts(run, baseline, dataset_split, data)
    if baseline is None:
        baseline = result.baseline = baseline_concepts(run, train_predictions=train_pred)
    table = result.contributions = contributions(pred[run.concept_names], head, baseline,
                                                 targets=targets)
    warn_separated(table)
    dataset = None
    if dataset_split:
        concepts = train_pred if dataset_split == "train" else run.predictions(dataset_split,
                                                                               **data)
        dataset = contributions(concepts[run.concept_names], head, baseline, targets=targets)
    explained = list(zip(pred.index, pred["path"]))
    timelines = {}
    if timeline:
        for name, path in explained:
            timelines[name] = _timeline_table(run, path, name, baseline, hop=hop,
                                              window=window, targets=targets,
                                              notes=result.notes)
    interventions = (_interventions(head, pred[run.concept_names], options.settings, targets)
                     if options.settings else None)
    curve = (_intervention_curve(run, intervention_split, repeats, seed, data)
             if intervention_split else None)

    # ... then written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # an earlier explanation's files go first: a rerun stopped part-way left its tables beside
    # the earlier run's timeline and figures, every name present (audit 23a)
    replace_manifest(out, [], MANIFEST)
    with recording(out, MANIFEST):  # each file listed before it is written (a kill too)
        files = result.files
        files += [write_csv(baseline.rename_axis("concept").reset_index(), out / "baseline.csv"),
                  write_csv(table, out / "contributions.csv"),
                  write_csv(pred.reset_index(), out / "predictions.csv")]
        if dataset is not None:
            files.append(write_csv(dataset, out / f"dataset_contributions_{dataset_split}.csv"))
        for name, _ in explained:
            files += _clip_figures(run, table, dataset, name, out)
            if name in timelines:
                tl, spec_ = timelines[name]
                files.append(_timeline_figure(run, tl, spec_, name, out, drawn=options.drawn))
        if timelines:
            files.append(write_csv(pd.concat([tl for tl, _ in timelines.values()],
                                             ignore_index=True), out / "timeline.csv"))
        if interventions is not None:
            files.append(write_csv(interventions, out / "interventions.csv"))
        if curve is not None:
            files += _write_intervention_curve(curve, out, tags=bool(binary_targets_of(run)))
        replace_manifest(out, files, MANIFEST)  # an earlier explanation's other files go
    return result


def clip_predictions(run, paths: list[str]) -> pd.DataFrame:
    """``Run.predict``'s table of the files (index ``clip``: unique names from the stems,
    :func:`~midlevel.explain.names.clip_names`; then ``path``, the file as given, on which it
    joins ``midlevel predict``'s table). Files that cannot be read are logged by path and
    skipped: ``attrs["errors"]`` maps each path to its message; ``attrs["warnings"]`` maps a
    clip shorter than the window to its note (logged once, by ``Run.predict``)."""
    names = clip_names(paths)
    pred = run.predict(paths)  # clip = path, so the log names each skipped or short file
    errors, short = pred.attrs["errors"], pred.attrs["warnings"]
    kept = [(n, p) for n, p in zip(names, paths) if p not in errors]
    pred = pred.rename(columns={"clip": "path"})
    pred.insert(0, "clip", [n for n, _ in kept])
    pred = pred.set_index("clip")
    pred.attrs["errors"] = dict(errors)
    pred.attrs["warnings"] = {n: short[p] for n, p in kept if p in short}
    return pred


def _interventions(head, concepts, settings: dict[str, float], targets) -> pd.DataFrame:
    """:func:`intervene`'s table with a ``set`` column after ``concepts`` saying the values set
    (``"melodiousness=10; dissonance=1"``)."""
    table = intervene(head, concepts, settings, targets=targets)
    where = list(table.columns).index("concepts") + 1
    table.insert(where, "set", "; ".join(f"{c}={float(v):g}" for c, v in settings.items()))
    return table


def _training_concepts(run, baseline, dataset_split, data) -> pd.DataFrame | None:
    """Predicted training concepts when the baseline or the dataset view needs them (a
    sequential run stores them with the model)."""
    if run.mode == "sequential" and run.head_design is not None:
        return run_design(run)[0]
    if baseline is None or dataset_split == "train":
        return run.predictions("train", **data)
    return None


def _clip_figures(run, table, dataset, name: str, out: Path) -> list[Path]:
    """The bar chart of one clip and, with a dataset view, its distribution figure."""
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import contribution_bars, contribution_distribution
    fig = contribution_bars(table, name, targets=None)
    files = [save_figure(fig, out / f"{name}_contributions.png", dpi=110, bbox_inches="tight")]
    plt.close(fig)
    if dataset is None:
        return files
    targets = list(dict.fromkeys(table["target"]))
    ncols = min(4, len(targets))
    nrows = int(np.ceil(len(targets) / ncols))
    fig = plt.figure(figsize=((1.2 + 0.6 * len(run.concept_names)) * ncols, 3.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, target in zip(axes, targets):
        contribution_distribution(dataset, target, clip_table=table, clip=name, ax=ax)
    for ax in axes[len(targets):]:
        ax.set_visible(False)
    fig.tight_layout()
    files.append(save_figure(fig, out / f"{name}_dataset.png", dpi=110))
    plt.close(fig)
    return files


def _timeline_table(run, path, name, baseline, *, hop, window, targets, notes):
    """Contributions over time of one clip: the table and the spectrogram it was cut from."""
    tl, spec = contributions_over_time(run, path, baseline=baseline, hop=hop, window=window,
                                       name=name, targets=targets)
    if tl["time"].nunique() < 2:
        n_frames, _ = timeline_frames(run, hop=hop, window=window)
        notes.append(f"{name} ({tl['end'].max():.3g} s) fits in one window of "
                     f"{n_frames / run.fps:.4g} s ({n_frames} frames): one window only; pass a "
                     f"shorter --window for a view over time")
    return tl, spec


def _timeline_figure(run, tl, spec, name, out: Path, *, drawn) -> Path:
    """The figure of one clip's contributions over time (``drawn``: output units)."""
    import matplotlib.pyplot as plt

    from midlevel.data.frontends import make_frontend
    from midlevel.plots.concepts import timeline_plot
    bands = getattr(make_frontend(run.frontend), "band_frequencies", None)
    fig = timeline_plot(spec, tl, fps=run.fps, band_frequencies=bands, targets=drawn)
    figure = save_figure(fig, out / f"{name}_timeline.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return figure


def _intervention_curve(run, split, repeats, seed, data) -> pd.DataFrame:
    """Random and greedy intervention curves on ``split`` (true ratings substituted)."""
    preds = run.predictions(split, **data)
    return run_intervention_curves(run, predictions=preds, n_repeats=repeats, seed=seed)


def _write_intervention_curve(curve: pd.DataFrame, out: Path, *, tags: bool) -> list[Path]:
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import intervention_plot
    ax = intervention_plot(curve, units="rating points; a tag's: root Brier score" if tags
                           else "rating points")
    files = [write_csv(curve, out / "intervention_curve.csv"),
             save_figure(ax.figure, out / "intervention_curve.png", dpi=110,
                         bbox_inches="tight")]
    plt.close(ax.figure)
    return files
