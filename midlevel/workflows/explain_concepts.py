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
- ``interventions.csv`` (concepts set to values) and ``intervention_curve.csv/.png`` (true
  ratings substituted one concept at a time on a split).

Nothing is printed: the result lists the files, the clips that could not be read, and notes a
user should see.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.data.audio import check_inputs
from midlevel.errors import ExplainError
from midlevel.explain.head import (
    LinearHead, baseline_concepts, clip_names, contributions, explain_clips, run_design,
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


def read_baseline(path, concepts: list[str]) -> pd.Series:
    """A ``baseline.csv`` (columns concept, baseline) as a Series indexed by concept."""
    try:
        table = pd.read_csv(path)
        series = table.set_index("concept")["baseline"].astype(float)
    except (OSError, KeyError, ValueError) as exc:
        raise ExplainError(f"{path}: not a baseline table with columns concept, baseline "
                           f"({exc})") from None
    missing = [c for c in concepts if c not in series.index]
    if missing:
        raise ExplainError(f"{path}: baseline lacks concept(s) {missing}")
    return series[concepts].rename("baseline")


def explain_concepts(run, audio, out, *, targets=None, spec=None, root=None, cache_dir=None,
                     baseline=None, dataset_split: str | None = "train", timeline: bool = True,
                     hop: float = 0.5, window: float | None = None, timeline_targets=None,
                     settings: dict[str, float] | None = None,
                     intervention_split: str | None = None, repeats: int = 20, seed: int = 0,
                     progress: bool = False) -> ConceptExplanation:
    """Explain ``audio`` with a bottleneck run's concepts and write every file (see above).

    Parameters
    ----------
    run : a ``Run`` or run directory (a bottleneck).
    audio : audio file paths. targets : targets to explain (default all).
    spec, root, cache_dir : the run's data (default: the spec and root it was trained on).
    baseline : a concept baseline (Series or path of a baseline.csv); default the mean
        predicted concept on the training split.
    dataset_split : split of the dataset view, or None to skip it.
    timeline, hop, window, timeline_targets : the view over time (window default: the run's
        training crop).
    settings : ``{concept: value}`` interventions. intervention_split, repeats, seed: the
        intervention curve (None: skip).
    """
    run = load_run(run)
    paths = [str(p) for p in audio]
    check_inputs(paths)  # fail before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    head = LinearHead.from_run(run)
    data = {"spec": spec, "root": root, "cache_dir": cache_dir, "progress": progress}
    train_pred = _training_concepts(run, baseline, dataset_split, data)
    source = str(baseline) if baseline is not None and not isinstance(baseline, pd.Series) \
        else "given" if baseline is not None else None
    if baseline is None:
        baseline = baseline_concepts(run, train_predictions=train_pred)
    elif not isinstance(baseline, pd.Series):
        baseline = read_baseline(baseline, run.concept_names)
    files = [write_csv(baseline.rename_axis("concept").reset_index(), out / "baseline.csv")]

    names = clip_names(paths)
    table, pred = explain_clips(run, paths, baseline=baseline, names=names, targets=targets)
    result = ConceptExplanation(table, pred, baseline, files,
                                dict(pred.attrs.get("errors", {})), run_mode=run.mode)
    result.notes += [f"{n}: {w}" for n, w in pred.attrs.get("warnings", {}).items()]
    if source:
        result.baseline_source = source
    files += [write_csv(table, out / "contributions.csv"),
              write_csv(pred.reset_index(), out / "predictions.csv")]
    dataset = None
    if dataset_split:
        concepts = train_pred if dataset_split == "train" else run.predictions(dataset_split,
                                                                               **data)
        dataset = contributions(concepts[run.concept_names], head, baseline, targets=targets)
        files.append(write_csv(dataset, out / f"dataset_contributions_{dataset_split}.csv"))
    timelines = []
    for name, path in zip(names, paths):
        if name not in pred.index:
            continue
        files += _clip_figures(run, table, dataset, name, out)
        if timeline:
            tl, figure = _timeline(run, path, name, baseline, out, hop=hop, window=window,
                                   targets=targets, drawn=timeline_targets, notes=result.notes)
            timelines.append(tl)
            files.append(figure)
    if timelines:
        files.append(write_csv(pd.concat(timelines, ignore_index=True), out / "timeline.csv"))
    if settings:
        files.append(write_csv(intervene(head, pred[run.concept_names], settings,
                                         targets=targets), out / "interventions.csv"))
    if intervention_split:
        files += _intervention_curve(run, intervention_split, repeats, seed, out, data)
    return result


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


def _timeline(run, path, name, baseline, out: Path, *, hop, window, targets, drawn, notes):
    """Contributions over time of one clip: the table and its figure's path."""
    import matplotlib.pyplot as plt

    from midlevel.data.frontends import make_frontend
    from midlevel.plots.concepts import timeline_plot
    tl, spec = contributions_over_time(run, path, baseline=baseline, hop=hop, window=window,
                                       name=name, targets=targets)
    if tl["time"].nunique() < 2:
        notes.append(f"{name} is no longer than the window ({window or run.config.crop_seconds:g}"
                     f" s): one window only; pass a shorter --window for a view over time")
    bands = getattr(make_frontend(run.frontend), "band_frequencies", None)
    fig = timeline_plot(spec, tl, fps=run.fps, band_frequencies=bands, targets=drawn)
    figure = save_figure(fig, out / f"{name}_timeline.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return tl, figure


def _intervention_curve(run, split, repeats, seed, out: Path, data) -> list[Path]:
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import intervention_plot
    preds = run.predictions(split, **data)
    curve = run_intervention_curves(run, predictions=preds, n_repeats=repeats, seed=seed)
    ax = intervention_plot(curve)
    files = [write_csv(curve, out / "intervention_curve.csv"),
             save_figure(ax.figure, out / "intervention_curve.png", dpi=110,
                         bbox_inches="tight")]
    plt.close(ax.figure)
    return files
