"""The inputs of the concept-explanation workflow (:mod:`.explain_concepts`), checked before
anything is computed or written: a given concept baseline (a table or a Series), the options
(targets, splits, the timeline's hop and window, interventions, repeats) and the splits the
workflow will read."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from midlevel.errors import ArgumentError, ExplainError, Problem
from midlevel.explain.head import LinearHead


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
    curve_notes = []
    if intervention_split is not None:
        whole_number(repeats, "repeats")
        classes = list(dict.fromkeys(t for t, k in zip(head.targets, head.kinds)
                                     if k == "logit"))
        if all(k == "logit" for k in head.kinds):
            raise ExplainError(f"intervention split (--intervention-split): the curve scores "
                               f"rating targets (RMSE) and binary ones (root Brier score); "
                               f"this run's targets are all class targets ({', '.join(classes)}); "
                               f"leave the option out")
        if classes:
            curve_notes.append(f"the intervention curve leaves out the class target(s) "
                               f"{', '.join(classes)}: it scores rating targets by RMSE and "
                               f"binary ones by root Brier score")
    checked, notes = check_settings(head, dict(settings or {}), scales=rating_scales(run))
    return _Options(drawn, checked, notes + curve_notes)


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
