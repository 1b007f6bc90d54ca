"""The concept-explanation workflow of a bottleneck run (``midlevel explain`` on a bottleneck).

For audio files it computes and writes, under ``out``:

- ``baseline.csv``: the concept baseline (mean predicted concept on the training split, or one
  given);
- ``contributions.csv`` and ``predictions.csv``: per clip, weight x (concept - baseline) of
  every concept for every target, and the model's own predictions;
- ``<clip>_contributions.png``: the bar chart per clip;
- ``dataset_contributions_<split>.csv`` and ``<clip>_dataset.png``: the distribution of each
  contribution over a split, the clip marked (the dataset view);
- ``timeline.csv`` and ``<clip>_timeline.png``: contributions over time under the spectrogram;
- ``interventions.csv`` (concepts set to values; a units column says what each row's
  prediction and change are in: rating, or logit for a binary or class target) and ``intervention_curve.csv/.png`` (true
  ratings substituted one concept at a time on a split).

Nothing is printed: the result lists the files, the clips that could not be read, and notes a
user should see.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.data.audio import check_inputs
from midlevel.errors import ArgumentError, ExplainError, Problem
from midlevel.explain.head import (
    LinearHead, baseline_concepts, clip_names, contributions, explain_clips,
    require_bottleneck, run_design,
)
from midlevel.explain.interventions import intervene, run_intervention_curves
from midlevel.explain.timeline import contributions_over_time
from midlevel.io import save_figure, write_csv
from midlevel.run import load_run


@dataclass
class ConceptExplanation:
    """What :func:`explain_concepts` computed and wrote.

    Attributes
    ----------
    contributions, predictions, baseline : the per-clip tables (also written as CSV).
    files : every file written, in order. errors : clip -> message for unreadable files.
    notes : messages for the user (e.g. a clip no longer than the timeline window).
    """

    contributions: pd.DataFrame
    predictions: pd.DataFrame
    baseline: pd.Series
    files: list[Path] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    run_mode: str = ""
    baseline_source: str = "mean predicted concepts on the training split"

    def summary_lines(self) -> list[str]:
        """One line for a terminal: what was explained, against which baseline."""
        return [f"explained {len(self.predictions)} clip(s) of a {self.run_mode} run; "
                f"baseline: {self.baseline_source}"]


def read_baseline(path, concepts: list[str], *, notes: list | None = None) -> pd.Series:
    """A ``baseline.csv`` (columns concept, baseline) as a Series indexed by concept.

    ExplainError naming the file, the row (1-based, the header is row 1) and the concept of a
    value that is empty, not a number or not finite, of a concept listed twice, and the
    concepts the table lacks. Rows of other concepts are ignored, each with a warning naming
    file, row and concept, appended to ``notes`` (a list, when given).
    """
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (OSError, ValueError) as exc:  # pandas' parser and empty-data errors are ValueErrors
        raise ExplainError(f"{path}: not a baseline table with columns concept, baseline "
                           f"({exc})") from None
    lacking = [c for c in ("concept", "baseline") if c not in table.columns]
    if lacking:
        raise ExplainError(f"{path}: not a baseline table with columns concept, baseline (no "
                           f"column {lacking}; columns are {list(table.columns)})")
    values: dict[str, float] = {}
    for row, (name, text) in enumerate(zip(table["concept"], table["baseline"]), start=2):
        name = str(name).strip()
        if name not in concepts:
            if notes is not None:
                notes.append(str(Problem(f"concept '{name}' is not a concept of the run: the "
                                         f"row is ignored (concepts are {concepts})",
                                         file=str(path), row=row, column="concept")))
            continue
        if name in values:
            raise ExplainError(str(Problem(f"concept '{name}' is listed twice", file=str(path),
                                           row=row, column="concept")))
        values[name] = _baseline_number(text, name, path, row)
    missing = [c for c in concepts if c not in values]
    if missing:
        raise ExplainError(f"{path}: baseline lacks concept(s) {missing}")
    return pd.Series(values, dtype=float)[concepts].rename("baseline")


def _baseline_number(text: str, concept: str, path, row: int) -> float:
    """One cell of a baseline table as a finite float; ExplainError naming where it is."""
    text = str(text).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number):
        what = "is empty" if not text else f"'{text}' is not a finite number"
        raise ExplainError(str(Problem(f"the baseline of concept '{concept}' {what}",
                                       file=str(path), row=row, column="baseline")))
    return number


def check_baseline(baseline: pd.Series, concepts: list[str]) -> pd.Series:
    """A given baseline Series restricted to ``concepts``; ExplainError naming the concepts it
    lacks or holds no finite value for."""
    missing = [c for c in concepts if c not in baseline.index]
    if missing:
        raise ExplainError(f"baseline lacks concept(s) {missing}")
    values = pd.to_numeric(baseline[concepts], errors="coerce").astype(float)
    bad = [c for c in concepts if not np.isfinite(values[c])]
    if bad:
        raise ExplainError(f"baseline of concept(s) {bad} is not a finite number")
    return values.rename("baseline")


@dataclass
class _Options:
    """The checked options of :func:`explain_concepts`."""

    drawn: list[str] | None     # output units drawn over time (None: all explained)
    settings: dict[str, float]  # checked interventions
    notes: list[str]            # warnings for the user (a rating set outside its scale)


def check_options(run, head: LinearHead, *, targets=None, dataset_split="train",
                  hop: float = 0.5, window=None, timeline_targets=None, settings=None,
                  intervention_split=None, repeats: int = 20) -> _Options:
    """Every option of :func:`explain_concepts` checked before anything is computed or
    written: targets and timeline targets (names of targets, units or groups; the drawn ones
    among the explained ones), splits, the timeline's hop and window, the interventions
    (known concepts, finite values, binary concepts in [0, 1]; a rating outside its scale is
    a note, not an error) and the repeats of the intervention curve. ExplainError or
    ArgumentError naming the option at fault."""
    from midlevel.data.spec import SPLITS
    from midlevel.explain.interventions import check_settings, rating_scales
    from midlevel.explain.timeline import timeline_frames
    from midlevel.checks import whole_number

    explained = [head.outputs[j] for j in head.units(targets)]
    drawn = None
    if timeline_targets is not None:
        try:
            drawn = [head.outputs[j] for j in head.units(list(timeline_targets))]
        except ExplainError as exc:
            raise ExplainError(f"timeline targets (--timeline-targets): {exc}") from None
        outside = [u for u in drawn if u not in explained]
        if outside:
            raise ExplainError(f"timeline targets (--timeline-targets) {outside} are not among "
                               f"the explained targets {explained}; add them to the targets "
                               f"(--targets)")
    for name, split in (("dataset split", dataset_split),
                        ("intervention split", intervention_split)):
        if split is not None and split not in SPLITS:
            raise ExplainError(f"{name} '{split}' is not a split; splits are {list(SPLITS)}")
    # checked with or without a timeline: a bad value is a mistake whether or not it is used
    timeline_frames(run, hop=hop, window=window)
    if intervention_split is not None:
        whole_number(repeats, "repeats")
    checked, notes = check_settings(head, dict(settings or {}), scales=rating_scales(run))
    return _Options(drawn, checked, notes)


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
    check_inputs(paths)  # fail before anything is written
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

    # everything computed first ...
    data = {"spec": spec, "root": root, "cache_dir": cache_dir, "progress": progress}
    train_pred = _training_concepts(run, baseline, dataset_split, data)
    if baseline is None:
        baseline = baseline_concepts(run, train_predictions=train_pred)
    names = clip_names(paths)
    table, pred = explain_clips(run, paths, baseline=baseline, names=names, targets=targets)
    result = ConceptExplanation(table, pred, baseline, [],
                                dict(pred.attrs.get("errors", {})), run_mode=run.mode)
    result.notes += baseline_notes + options.notes
    result.notes += [f"{n}: {w}" for n, w in pred.attrs.get("warnings", {}).items()]
    if source:
        result.baseline_source = source
    dataset = None
    if dataset_split:
        concepts = train_pred if dataset_split == "train" else run.predictions(dataset_split,
                                                                               **data)
        dataset = contributions(concepts[run.concept_names], head, baseline, targets=targets)
    explained = [(n, p) for n, p in zip(names, paths) if n in pred.index]
    timelines = {}
    if timeline:
        for name, path in explained:
            timelines[name] = _timeline_table(run, path, name, baseline, hop=hop,
                                              window=window, targets=targets,
                                              notes=result.notes)
    interventions = (intervene(head, pred[run.concept_names], options.settings,
                               targets=targets) if options.settings else None)
    curve = (_intervention_curve(run, intervention_split, repeats, seed, data)
             if intervention_split else None)

    # ... then written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
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
        files += _write_intervention_curve(curve, out)
    return result


def check_splits(run, *, baseline=None, dataset_split=None, intervention_split=None,
                 spec=None, root=None) -> None:
    """The splits :func:`explain_concepts` will read hold clips in the run's data (``spec``,
    ``root``): the dataset view's (--dataset-split), the intervention curve's
    (--intervention-split) and, without a given baseline, the training split; ArgumentError
    naming the option and the splits that have clips. Reads the annotations only when a
    split is read."""
    from midlevel.data.spec import SPLITS
    stored = run.mode == "sequential" and run.head_design is not None  # training concepts kept
    wanted = []
    if dataset_split and not (dataset_split == "train" and stored):
        wanted.append((dataset_split, "dataset split (--dataset-split)"))
    if intervention_split:
        wanted.append((intervention_split, "intervention split (--intervention-split)"))
    if baseline is None and not stored:
        wanted.append(("train", ("the baseline (the mean predicted concept on the training "
                                 "split; pass --baseline to give one) needs the split")))
    if not wanted:
        return
    data = run.spec(spec, root=root)
    counts = run.annotations(data)["split"].value_counts()
    for split, label in wanted:
        if counts.get(split, 0) == 0:
            have = ", ".join(f"{k} ({int(counts[k])} clips)" for k in
                             [*SPLITS, *[k for k in counts.index if k not in SPLITS]]
                             if counts.get(k, 0) > 0)
            raise ArgumentError(f"{label} '{split}' has no clip in the run's data (spec "
                                f"{data.path or data.name}); splits with clips: "
                                f"{have or 'none'}")


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
        notes.append(f"{name} is no longer than the window ({window or run.config.crop_seconds:g}"
                     f" s): one window only; pass a shorter --window for a view over time")
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


def _write_intervention_curve(curve: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import intervention_plot
    ax = intervention_plot(curve)
    files = [write_csv(curve, out / "intervention_curve.csv"),
             save_figure(ax.figure, out / "intervention_curve.png", dpi=110,
                         bbox_inches="tight")]
    plt.close(ax.figure)
    return files
