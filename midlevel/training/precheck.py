"""Checks of a training run's ratings before its run directory is made.

Model selection (:func:`midlevel.training.metrics.score`) averages R^2 (or r, ``select_on``)
over the validation split's columns of the kinds the mode trains. A column whose validation
ratings cannot give that value whatever the model predicts (none, a single one, or all equal:
:func:`~midlevel.training.metrics.unscored`) is left out of the mean; when every such column
is, each epoch's score would be NaN, never an improvement, and the run would stop after
``patience`` epochs at "best epoch 0". :func:`check_ratings` refuses that before training and
warns about the columns left out otherwise, and about training columns with one value only.
:func:`check_before_start` runs it with the other checks a run needs before it starts.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from midlevel.data.spec import SPLITS
from midlevel.errors import TrainingError
from midlevel.training.metrics import unscored
from midlevel.training.strategies import strategy

log = logging.getLogger("midlevel.training")


def scored_columns(columns, scored: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(name, kind)`` of every column of the metric kinds ``scored`` ("concept",
    "target"); kind as the metrics tables have it ("regression", "binary", "class")."""
    out = []
    if "concept" in scored:
        out += list(zip(columns.concepts, columns.concept_kinds))
    if "target" in scored:
        out += list(zip(columns.target_names, columns.target_kinds()))
    return out


def check_ratings(splits: dict[str, pd.DataFrame], columns, *, mode: str, scored,
                  select_on: str, warn: bool = True) -> None:
    """Before training (see the module docstring).

    Parameters
    ----------
    splits : split name -> its annotation rows.
    columns : the :class:`~midlevel.training.data.Columns` trained.
    mode, scored : the mode and the metric kinds its validation score averages.
    select_on : "r2" or "r".
    warn : log the warnings (the main process under DDP).

    TrainingError naming the split, each column and why, and the ways out when the
    (non-empty) validation split gives no score; warnings naming the columns left out of the
    score when some do, and each rating column with a single value on the training split.
    """
    if warn:
        for name, kind in zip([*columns.concepts, *columns.target_names],
                              [*columns.concept_kinds, *columns.target_kinds()]):
            why = unscored(splits["train"][name].to_numpy(np.float64), kind)
            if kind == "regression" and why.startswith("constant"):
                log.warning("training split: '%s' has %s: the model can only learn that "
                            "value", name, why)
    rows = splits["validation"]
    if not len(rows):
        return  # no validation split: the last epoch is the best (see Trainer._validate)
    why = {name: unscored(rows[name].to_numpy(np.float64), kind, select_on)
           for name, kind in scored_columns(columns, scored)}
    left = {name: reason for name, reason in why.items() if reason}
    if not left:
        return
    listed = "; ".join(f"'{n}': {r}" for n, r in left.items())
    if len(left) == len(why):
        raise TrainingError(
            f"the validation split ({len(rows)} clips) gives no model-selection score "
            f"(select_on {select_on}) for any column the {mode} mode is selected on ({listed}): "
            f"every epoch would score NaN and the run would stop early with no best epoch. "
            f"Selection needs validation clips with at least two different ratings of a rating "
            f"column (three ratings for select_on r; one rating of a class or binary column): rate more validation clips, or "
            f"assign rated clips to the validation split (the spec's splits), or train a mode "
            f"selected on other columns")
    if warn:
        log.warning("the validation split (%d clips) gives no %s for %d of the %d columns the "
                    "%s mode is selected on (%s): the validation score is the mean over the "
                    "other %d", len(rows), select_on, len(left), len(why), mode, listed,
                    len(why) - len(left))


def check_before_start(ctx, table, features, columns, config, fps: float) -> None:
    """What can be known to fail or mislead before the run directory is made: the global
    batch against the process count, the backbone against the spectrograms' bands and the
    crop (:meth:`~midlevel.training.config.TrainConfig.check_input`), the ratings against
    model selection (:func:`check_ratings`); and a warning naming the settings this mode
    ignores."""
    if ctx.world > config.batch_size:
        raise TrainingError(f"batch_size {config.batch_size} is the global batch, shared out "
                            f"over the {ctx.world} processes: each needs a clip of every "
                            f"batch; use batch_size >= {ctx.world} or fewer processes")
    first = next((clip for clip in table.index if clip in features), None)
    if first is not None:  # a clip without features is named where it is used
        config.check_input(int(features[first].shape[0]), fps)
    check_ratings({s: table[table["split"] == s] for s in SPLITS}, columns, mode=config.mode,
                  scored=strategy(config.mode).scored, select_on=config.select_on,
                  warn=ctx.main)
    check_head_clips(table[table["split"] == "train"], columns, config.mode)
    if ctx.main and config.ignored():
        log.warning("the %s mode ignores %s", config.mode, "; ".join(config.ignored()))


def check_head_clips(train: pd.DataFrame, columns, mode: str) -> None:
    """A closed-form head (:func:`midlevel.training.head.fit_head`) needs more training clips
    than concepts with each target rated: on every concept too in the independent mode (its
    head reads the true ratings), the target alone in the sequential mode (predicted
    concepts). TrainingError naming each target short of them, before any epoch is trained
    (the head is fitted after the last one)."""
    if mode not in ("independent", "sequential") or not columns.concepts:
        return
    k = len(columns.concepts)
    every = (train[columns.concepts].notna().all(axis=1) if mode == "independent"
             else pd.Series(True, index=train.index))
    short = {}
    for name in columns.target_names:
        rated = train[name].notna()
        if int((every & rated).sum()) <= k:
            short[name] = (int((every & rated).sum()), int(rated.sum()))
    if not short:
        return
    listed = "; ".join(f"'{n}' {both} (of {has} with it)" for n, (both, has) in short.items())
    if mode == "independent":
        raise TrainingError(
            f"the independent mode fits its head on training clips rated on every concept "
            f"and the target, and more than {k} are needed per target: {listed} "
            f"({int(every.sum())} of the {len(train)} training clips carry every concept). "
            f"Train --mode sequential (its head reads predicted concepts, so every clip with "
            f"the target counts) or joint, or rate the concepts on more clips with the targets")
    raise TrainingError(
        f"the sequential mode fits its head on the training clips with the target rated, "
        f"and more than {k} are needed per target: {listed}. Rate the targets on more "
        f"training clips, or assign rated clips to the training split")
