"""Interventions: replace predicted concepts by chosen values (or by true ratings) and watch the
prediction change -- the test-time intervention of concept bottlenecks (Koh et al. 2020).

The head is linear, so an intervention on concept ``k`` changes output ``e`` by
``w[e, k] * (new_k - c_k)``; no audio needs to be processed again. A binary concept (a tag) is
set on or off (probability 1 or 0, or any probability between); binary and class targets are
reported as log-odds / logits and as probabilities.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError
from midlevel.explain.head import LinearHead

log = logging.getLogger(__name__)


def _concept_frame(concepts: pd.DataFrame, head: LinearHead) -> pd.DataFrame:
    frame = concepts.set_index("clip") if "clip" in concepts.columns else concepts
    missing = [c for c in head.concepts if c not in frame.columns]
    if missing:
        raise ExplainError(f"concept column(s) {missing} missing")
    return frame[head.concepts].astype(float)


#: what an output unit's prediction and change are in, by the head's kind of unit
UNITS = {"regression": "rating", "binary": "logit", "logit": "logit"}

_SWITCH = {"on": 1.0, "off": 0.0, "yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0}


def concept_value(head: LinearHead, concept: str, value, *, scale=None) -> float:
    """A value to set ``concept`` to: a number, or for a binary concept also ``True``/``False``,
    "on"/"off", "yes"/"no" (a probability in [0, 1]); ExplainError naming a bad one (on/off or
    a bool for a rating concept, which needs a number on its scale ``(low, high)``)."""
    binary = head.concept_kinds[head.concepts.index(concept)] == "binary"
    switch = isinstance(value, (bool, np.bool_)) or (
        isinstance(value, str) and value.strip().lower() in _SWITCH)
    if switch and not binary:
        on_scale = f" ({scale[0]:g} to {scale[1]:g})" if scale else ""
        raise ExplainError(f"concept '{concept}' is a rating, not a binary concept: on/off "
                           f"(or true/false) are for binary concepts (tags); a rating needs a "
                           f"number on its scale{on_scale}, not {value!r}")
    if isinstance(value, str) and value.strip().lower() in _SWITCH:
        number = _SWITCH[value.strip().lower()]
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            what = "on, off or a probability in [0, 1]" if binary else "a number"
            raise ExplainError(f"concept '{concept}': {value!r} is not a value (expected "
                               f"{what})") from None
    if not math.isfinite(number):
        raise ExplainError(f"concept '{concept}': {value!r} is not a finite value")
    if binary and not 0.0 <= number <= 1.0:
        raise ExplainError(f"concept '{concept}' is binary: set it on (1), off (0) or to a "
                           f"probability in between, not {value!r}")
    return number


def rating_scales(run) -> dict[str, tuple[float, float]]:
    """``{concept: (low, high)}``: the rating scale of each rating concept in the data spec the
    run was trained on (as stored with the run; concepts without a scale are left out)."""
    columns = ((getattr(run, "info", None) or {}).get("data") or {}).get("columns") or {}
    out = {}
    for c in columns.get("concepts") or []:
        scale = c.get("scale")
        if scale and c.get("kind", "regression") == "regression":
            out[c["name"]] = (float(scale[0]), float(scale[1]))
    return out


def check_settings(head: LinearHead, values, *, scales=None) -> tuple[dict[str, float], list[str]]:
    """Check interventions before anything is computed or written.

    Parameters
    ----------
    head : LinearHead
    values : mapping concept -> value (see :func:`intervene`).
    scales : ``{concept: (low, high)}`` rating scales (:func:`rating_scales`), or None.

    Returns
    -------
    values : ``{concept: float}``, each checked by :func:`concept_value` (ExplainError for an
        unknown concept, a non-number, a non-finite value, a binary concept outside [0, 1],
        on/off or a bool for a rating concept).
    warnings : one line per rating concept set outside its scale (allowed: extrapolation
        may be what is wanted, but the head was fitted on ratings inside it).
    """
    unknown = [c for c in values if c not in head.concepts]
    if unknown:
        raise ExplainError(f"unknown concept(s) {unknown}; concepts are {head.concepts}")
    checked = {c: concept_value(head, c, v, scale=(scales or {}).get(c))
               for c, v in values.items()}
    warnings = []
    for c, v in checked.items():
        low, high = (scales or {}).get(c, (None, None))
        if low is not None and not low <= v <= high:
            warnings.append(f"concept '{c}' set to {v:g}, outside its rating scale {low:g} to "
                            f"{high:g}: the outputs are extrapolated beyond the ratings the "
                            f"head was fitted on")
    return checked, warnings


def intervene(head: LinearHead, concepts: pd.DataFrame, values, *, targets=None) -> pd.DataFrame:
    """Set concepts to given values and recompute the outputs.

    Parameters
    ----------
    head : LinearHead
    concepts : pd.DataFrame [index=clip (or a clip column), columns include the concepts]
        Predicted concepts (rating units).
    values : mapping concept -> value (same for every clip; a binary concept also takes
        True/False or "on"/"off"), or a DataFrame [index=clip, columns=some concepts] of
        per-clip values (e.g. true ratings or tags; NaN = keep predicted).
    targets : targets to report (default all).

    Returns
    -------
    pd.DataFrame, tidy: clip, target, units, prediction, intervened_prediction, change,
    concepts (the names set, joined by "+"), probability and intervened_probability (binary
    and class units; NaN for regression units). ``units`` says what prediction and change
    are in: "rating" for a regression target (the value ``midlevel predict`` reports),
    "logit" for a binary or class unit (the head is linear in log-odds, so the change is
    exactly the sum of ``w * (new - old)``); the probabilities ``predict`` reports for those
    are in the probability columns.
    """
    frame = _concept_frame(concepts, head)
    new = frame.copy()
    if isinstance(values, pd.DataFrame):
        cols = [c for c in values.columns if c in head.concepts]
        unknown = [c for c in values.columns if c not in head.concepts]
        if unknown:
            raise ExplainError(f"unknown concept(s) {unknown}; concepts are {head.concepts}")
        given = values.reindex(frame.index)[cols].astype(float)
        new[cols] = given.where(given.notna(), frame[cols])
    else:
        unknown = [c for c in values if c not in head.concepts]
        if unknown:
            raise ExplainError(f"unknown concept(s) {unknown}; concepts are {head.concepts}")
        cols = list(values)
        for c in cols:
            new[c] = concept_value(head, c, values[c])
    binary = [c for c in cols if head.concept_kinds[head.concepts.index(c)] == "binary"]
    outside = [c for c in binary if not new[c].dropna().between(0, 1).all()]
    if outside:
        raise ExplainError(f"binary concept(s) {outside} set outside [0, 1]")
    units = head.units(targets)
    full_before, full_after = head.predict(frame.to_numpy()), head.predict(new.to_numpy())
    before, after = full_before[:, units], full_after[:, units]
    n, m = before.shape
    return pd.DataFrame({
        "clip": np.repeat(frame.index.to_numpy(), m),
        "target": np.tile(np.asarray(head.outputs, dtype=object)[units], n),
        "units": np.tile(np.asarray([UNITS[head.kinds[j]] for j in units], dtype=object), n),
        "prediction": before.ravel(), "intervened_prediction": after.ravel(),
        "change": (after - before).ravel(), "concepts": "+".join(cols),
        "probability": head.probabilities(full_before)[:, units].ravel(),
        "intervened_probability": head.probabilities(full_after)[:, units].ravel()})


def _errors(head: LinearHead, c: np.ndarray, y: np.ndarray, units: list[int]) -> np.ndarray:
    """RMSE per unit of the head's predictions from concepts ``c`` against ``y`` (NaN
    ignored): regression units in rating points, binary units of the probability against
    the 0/1 label (the root Brier score)."""
    out = head.predict(c)
    prob = head.probabilities(out)
    pred = np.stack([prob[:, u] if head.kinds[u] == "binary" else out[:, u] for u in units],
                    axis=1)
    diff = pred - y
    return np.sqrt(np.nanmean(diff ** 2, axis=0))


def _spread(y: np.ndarray) -> np.ndarray:
    """Each target's sd (``ddof=0``) over the clips that rate it; 0 where it has no spread
    (or fewer than two ratings)."""
    out = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        col = y[:, j][np.isfinite(y[:, j])]
        out[j] = float(col.std()) if len(col) > 1 else 0.0
    return out


def _mean_relative(err: np.ndarray, spread: np.ndarray) -> float:
    """The mean of ``err / spread`` over the targets with spread (NaN if none has any)."""
    has = spread > 0
    return float(np.mean(err[has] / spread[has])) if has.any() else float("nan")


def _greedy_score(err: np.ndarray, spread: np.ndarray) -> float:
    """What a greedy step minimizes: the mean relative RMSE (the mean RMSE if no target
    varies on these clips)."""
    rel = _mean_relative(err, spread)
    return rel if np.isfinite(rel) else float(np.mean(err))


def intervention_curve(head: LinearHead, predicted: pd.DataFrame, true_concepts: pd.DataFrame,
                       true_targets: pd.DataFrame, *, order: str = "random",
                       n_repeats: int = 20, seed: int = 0,
                       scales: dict | None = None) -> pd.DataFrame:
    """Task error against the number of concepts replaced by their true ratings.

    Parameters
    ----------
    head : LinearHead
    predicted : pd.DataFrame [index=clip] predicted concepts (rating units).
    true_concepts : pd.DataFrame [index=clip] true concept ratings (NaN: keep predicted).
    true_targets : pd.DataFrame [index=clip, columns=regression or binary targets] true
        target values (binary: 0/1; their error is the root Brier score).
    order : "random" (mean over ``n_repeats`` random orders, each kept in the table) or
        "greedy" (each step replaces the concept that lowers the mean relative RMSE most).

    Targets can be in different units (ratings on 1-9 beside 0-1000, a tag's root Brier
    score in probability), so they are averaged, and the greedy order is chosen, on the
    *relative* RMSE: each target's RMSE over its sd: ``scales[target]`` where given (the
    run's training sd, :func:`run_intervention_curves`), else the sd of its true values on
    these clips (``ddof=0``; 1 is the error of predicting their mean: ``sqrt(1 - R^2)`` for
    a rating, ``sqrt(1 - Brier skill)`` for a tag). The training sd keeps a target nearly
    constant on these clips from dominating the mean (re-audit 14: one clip at 5.01 among
    5.0s read 2134). A target without an sd is left out of the mean, with a warning (if no
    target has one, the mean is NaN and the greedy order follows the mean RMSE).

    Returns
    -------
    pd.DataFrame, tidy: order, repeat, n_replaced, concept (the one replaced at that step,
    "" at 0), target (each regression or binary target, and "mean"), rmse (in the target's
    units; NaN on the "mean" rows: no mean of errors in different units), relative_rmse.
    """
    if order not in ("random", "greedy"):
        raise ExplainError(f"order must be 'random' or 'greedy', got '{order}'")
    frame = _concept_frame(predicted, head)
    truth = true_concepts.reindex(frame.index)[head.concepts].astype(float)
    names = [t for t in true_targets.columns if t in head.outputs]
    if not names:
        raise ExplainError(f"no regression or binary target of the head among "
                           f"{list(true_targets.columns)}")
    units = [head.outputs.index(t) for t in names]
    y = true_targets.reindex(frame.index)[names].to_numpy(float)
    c_pred, c_true = frame.to_numpy(), truth.to_numpy()
    c_true = np.where(np.isfinite(c_true), c_true, c_pred)
    spread = _spread(y)
    for j, name in enumerate(names):
        if scales and np.isfinite(scales.get(name, np.nan)) and scales[name] > 0:
            spread[j] = float(scales[name])
    if (spread <= 0).any():
        log.warning("intervention curve: %s vary on none of these clips: left out of the "
                    "mean relative RMSE", [n for n, sd in zip(names, spread) if sd <= 0])
    rows = []

    def record(order_name, repeat, step, concept, c):
        err = _errors(head, c, y, units)
        for t, e, sd in zip(names, err, spread):
            rows.append({"order": order_name, "repeat": repeat, "n_replaced": step,
                         "concept": concept, "target": t, "rmse": float(e),
                         "relative_rmse": float(e / sd) if sd > 0 else np.nan})
        rows.append({"order": order_name, "repeat": repeat, "n_replaced": step,
                     "concept": concept, "target": "mean", "rmse": np.nan,
                     "relative_rmse": _mean_relative(err, spread)})

    n_c = len(head.concepts)
    if order == "random":
        rng = np.random.default_rng(seed)
        for r in range(n_repeats):
            c = c_pred.copy()
            record("random", r, 0, "", c)
            for step, k in enumerate(rng.permutation(n_c), start=1):
                c[:, k] = c_true[:, k]
                record("random", r, step, head.concepts[k], c)
    else:
        c = c_pred.copy()
        record("greedy", 0, 0, "", c)
        left = list(range(n_c))
        for step in range(1, n_c + 1):
            scores = []
            for k in left:
                trial = c.copy()
                trial[:, k] = c_true[:, k]
                scores.append(_greedy_score(_errors(head, trial, y, units), spread))
            k = left.pop(int(np.argmin(scores)))
            c[:, k] = c_true[:, k]
            record("greedy", 0, step, head.concepts[k], c)
    return pd.DataFrame(rows)


def run_intervention_curves(run, *, predictions: pd.DataFrame, n_repeats: int = 20,
                            seed: int = 0) -> pd.DataFrame:
    """Random and greedy intervention curves of a run on clips predicted by
    :meth:`midlevel.run.Run.predictions` (e.g. ``run.predictions("test")``, which holds the
    true values as ``true:<name>``)."""
    head = LinearHead.from_run(run)
    reg = [t for t, k in zip(head.outputs, head.kinds) if k in ("regression", "binary")]
    true_c = predictions[[f"true:{c}" for c in head.concepts]].set_axis(head.concepts, axis=1)
    true_t = predictions[[f"true:{t}" for t in reg]].set_axis(reg, axis=1)
    pred = predictions[head.concepts]
    scales = run.info.get("scales") or {}
    sds = dict(zip(run.target_names, scales.get("target_std") or []))
    sds = {t: float(sds[t]) for t, k in zip(head.outputs, head.kinds)
           if k == "regression" and t in sds}   # the training sds of the rating targets
    return pd.concat([intervention_curve(head, pred, true_c, true_t, order="random",
                                         n_repeats=n_repeats, seed=seed, scales=sds),
                      intervention_curve(head, pred, true_c, true_t, order="greedy",
                                         scales=sds)],
                     ignore_index=True)


__all__ = ["intervene", "intervention_curve", "run_intervention_curves", "check_settings",
           "rating_scales"]
