"""The last step of a bottleneck's training: concept calibration lines fitted on held-out clips
and folded into the model.

After the best epoch's weights are back, each predicted concept is regressed on its rating over
the calibration split (the validation split where the spec has none), the line is shrunk by the
bootstrap optimism of what those clips already decided (the epoch's selection, where they are
the validation clips, and the line itself), and folded into the concept layer (for a joint run
the head is compensated so that its output does not move). The statistics of the lines are in
:mod:`midlevel.training.calibration`; this module decides which clips and which shrinkage.
"""
from __future__ import annotations

import logging

import numpy as np

from midlevel.training.calibration import (
    calibration_lines, describe_line, fold_into_model, kept_epochs_shrinkage,
    selection_shrinkage, shrink_lines,
)
from midlevel.training.predict import predict_sharded

log = logging.getLogger("midlevel.training")


def calibrate_concepts(ctx, model, sets: dict, columns, scales, config, n_frames: int,
                       hop: int, *, kept: list[dict] | None, validation_rows,
                       scored: tuple[str, ...], progress: bool = False) -> dict | None:
    """Fit, shrink and fold the concept lines of a trained bottleneck.

    Parameters
    ----------
    ctx, model : the process context and the model (best weights, eval mode).
    sets : ``{split: ClipSet}``; the lines are fitted on ``sets["calibration"]``, or on
        ``sets["validation"]`` when the former is empty.
    columns, scales : the run's columns and scales (predictions are standardized with
        ``scales.concept_mean`` / ``concept_std`` before the lines are fitted).
    config : the TrainConfig (``calibrate_concepts``, ``shrink_calibration``,
        ``calibration_bootstrap``, ``seed``, ``mode``, ``select_on``).
    n_frames, hop : the evaluation windows.
    kept : the validation predictions of every epoch (for the selection's bootstrap), or None
        where the checkpoint has none.
    validation_rows : the validation split's annotation rows; scored: what the mode's
        validation score averages. progress : a bar over the calibration clips' pass.

    Returns
    -------
    ``{concept: line}`` (scaled units, each with the ``split`` it was fitted on), or None when
    no line was fitted (a black box, calibration off, or no held-out clip).
    """
    split = "calibration" if len(sets["calibration"]) else "validation"
    clips = sets[split]
    if model.kind != "bottleneck" or not config.calibrate_concepts or not len(clips):
        return None
    if split == "validation":
        log.info("concept calibration on the validation clips, which also selected the "
                 "epoch: each line is shrunk by the bootstrap optimism of that selection")
    pred, _ = predict_sharded(ctx, model, clips.specs, n_frames, hop, config,
                              progress="concept lines (calibration clips)" if progress else None)
    binary = columns.binary_concepts
    scaled = (pred - scales.concept_mean) / scales.concept_std
    true = clips.concepts.numpy().astype(np.float64)
    lines = calibration_lines(scaled, true, binary=binary)
    shrinkage = line_shrinkage(split, scaled, true, config=config, kept=kept,
                               validation_rows=validation_rows, columns=columns, scored=scored)
    shrink_lines(lines, shrinkage, scaled, true)
    joint = config.mode == "joint"
    means = np.asarray(scales.concept_mean, dtype=np.float64).reshape(-1)
    sds = np.asarray(scales.concept_std, dtype=np.float64).reshape(-1)
    for k, (name, ln, is_binary) in enumerate(zip(columns.concepts, lines, binary)):
        why = "the slope's 95 % interval reaches 0"
        if is_binary and joint and ln["applied"]:
            ln["applied"], why = False, "the joint head reads its probability"
        ln["split"] = split
        log.info("concept %s: %s", name, describe_line(ln, why, mean=means[k], sd=sds[k]))
    fold_into_model(model, lines, compensate_head=joint)
    return dict(zip(columns.concepts, lines))


def line_shrinkage(split: str, pred: np.ndarray, true: np.ndarray, *, config, kept,
                   validation_rows, columns, scored: tuple[str, ...]):
    """Bootstrap shrinkage factors of the calibration lines (see
    :func:`midlevel.training.calibration.selection_shrinkage`): over the epoch selection and the
    line when the validation clips did both, over the line alone on a calibration split; None
    when not shrunk. ``pred``, ``true``: the line's clips, ``(n_clips, n_concepts)``."""
    if not config.shrink_calibration or config.calibration_bootstrap <= 0:
        return None
    boot = {"n_boot": config.calibration_bootstrap, "seed": config.seed}
    if split != "validation":
        return selection_shrinkage(pred[None], true, **boot)
    if not kept:
        log.info("calibration lines not shrunk: this run's checkpoint lacks the validation "
                 "predictions of its epochs (it was resumed from an older version)")
        return None
    return kept_epochs_shrinkage(kept, validation_rows, columns, scored,
                                 metric=config.select_on, **boot)
