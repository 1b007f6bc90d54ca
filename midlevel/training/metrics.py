"""Metrics per concept and target, as tidy tables.

Regression columns get Pearson r, R^2, RMSE and MAE (in rating units) and the calibration line of
the rating on the prediction (``rating ~ cal_intercept + cal_slope * prediction``: slope 1 and
intercept 0 when predictions are right in level and scale; a slope below 1 means predictions
spread too far, above 1 too little); class columns accuracy. Binary columns (tags; the
prediction is a probability) get ROC-AUC (``auc``), PR-AUC (``pr_auc``, average precision), F1
and accuracy at a chosen ``threshold``, and the regression figures of the probability against
the 0/1 label: ``r2`` is then the Brier skill score (1 - Brier / the Brier score of always
predicting the base rate), ``rmse`` the root Brier score, the calibration line that of the
label on the probability. r only sees order: R^2 and the calibration line see level and scale
too, and R^2 is what model selection uses (:func:`score`, over the column rows only).

Summary rows (:func:`is_summary`) average columns of one sort only, since a mean RMSE of rating
points and root Brier scores, or a mean of R^2 and Brier skill scores, measures nothing: each
(split, kind) gets a ``mean`` row when its columns are all ratings, all binary or all classes,
and otherwise one row per sort, ``mean:ratings``, ``mean:binary`` and ``mean:classes`` (and no
``mean`` row); each multi-label group a ``mean:<group>`` row over its tags. A summary row's
``note`` says what it averages, and over how many columns a value is averaged where some columns
lack it (``r and r2 over 2 (not const)``). Summary rows carry no calibration line
(``cal_slope``, ``cal_intercept`` NaN): a line belongs to one column, and an average of slopes
is dominated by the largest (one near-constant column's slope of 1e5 makes the mean 1e4).
Nor a mean RMSE or MAE of rating columns in different units (units more than ``SCALE_RATIO``
times apart: the model's scales, its training split's sds, where known, else the split's
ratings' sds and root mean squares both: 0-1000 beside 1-9 would give the widest column's
error); r and R^2, which have no units, are still averaged.

Predictions whose spread is negligible (:func:`negligible_spread`: a standard deviation of at
most ``SPREAD_TOL`` times their scale) count as constant: r and the calibration line are NaN
(shown "-"), as for exactly constant ones. A saturated sigmoid gives such columns
(probabilities 1e-10 apart), and the r and slope of rounding noise (r 0.63, slope 8e9) are no
measure of the model. The calibration line also needs predictions that spread at least
``CAL_SPREAD_TOL`` times the truth's standard deviation (:func:`flat_predictions`): below that
its slope (up to 1 / ``CAL_SPREAD_TOL`` = 1000) says only "nearly constant", as for
probabilities 0.999998-1.000000 against 0/1 labels (slope 165930). The row's ``note`` gives
the reason whenever r or the line is left out, as it does for constant ratings (sd 0, or a
single rating: no r, R^2 or line; binary columns: a single label value).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

METRIC_COLUMNS = ["split", "kind", "name", "n", "r", "r2", "rmse", "mae", "cal_slope",
                  "cal_intercept", "accuracy", "auc", "pr_auc", "f1", "note"]
_VALUES = METRIC_COLUMNS[3:-1]
_LINE = ("cal_slope", "cal_intercept")
# the sorts of column a summary row may average, and their row names when a kind mixes them
SORTS = {"regression": "ratings", "binary": "binary", "class": "classes"}
_BINARY = ("auc", "pr_auc", "f1")
# relative spread below which predictions count as constant: about float32's resolution
# (2^-23 = 1.2e-7, the network's output precision), so a spread at the last digits a float32
# prediction carries is never read as signal
SPREAD_TOL = 1e-7
# spread of the predictions, relative to the truth's standard deviation, below which they get
# no calibration line: its slope could exceed 1 / CAL_SPREAD_TOL and only says "nearly flat"
CAL_SPREAD_TOL = 1e-3
# fewest ratings r and a calibration line are given from: with two, r is +-1 and the line
# passes through both points whatever the predictions
MIN_CLIPS_R = 3
# the note of a column without a rating (or label) among the split's clips
UNRATED = "no rating in this split: nothing to score"


def negligible_spread(y_pred: np.ndarray, y_true: np.ndarray | None = None) -> bool:
    """Whether the predictions ``(n,)`` (finite) are constant but for noise: their standard
    deviation is at most ``SPREAD_TOL`` times their scale, the larger of their mean's size and
    the truth's standard deviation (unit-free: the same verdict in any rating units)."""
    p = np.asarray(y_pred, dtype=np.float64)
    if len(p) == 0:
        return True
    scale = abs(float(p.mean()))
    if y_true is not None and len(y_true):
        scale = max(scale, float(np.std(np.asarray(y_true, dtype=np.float64))))
    return bool(p.std() <= SPREAD_TOL * scale)


def flat_predictions(y_pred: np.ndarray, y_true: np.ndarray) -> bool:
    """Whether the predictions ``(n,)`` spread too little for a calibration line: their
    standard deviation is at most ``CAL_SPREAD_TOL`` times the truth's ``(n,)`` (unit-free; for
    0/1 labels the truth's sd is sqrt(base rate x (1 - base rate)))."""
    p = np.asarray(y_pred, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.float64)
    return bool(len(p) == 0 or p.std() <= CAL_SPREAD_TOL * t.std())


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Metrics of one column over its finite entries. ``y_true``, ``y_pred``: ``(n,)``.

    A rated clip whose prediction is NaN or infinite is left out, and ``note`` counts such
    clips (the finite mask is there for missing ratings: before, it hid them).

    r and the calibration line are NaN with fewer than ``MIN_CLIPS_R`` (3) ratings (two
    points give r = +-1 and a line through both, whatever the predictions), for constant
    predictions, and for predictions whose
    spread is negligible (:func:`negligible_spread`); the calibration line also for nearly
    flat ones (:func:`flat_predictions`). ``note`` says which, with the spreads. r, R^2 and
    the line are also NaN for constant ratings (or a single one), with a note saying so."""
    return _with_nonfinite_note(_regression_metrics(y_true, y_pred), y_true, y_pred)


def _with_nonfinite_note(out: dict, y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """``out`` with its ``note`` saying how many rated clips' predictions were not finite."""
    bad = int((np.isfinite(y_true) & ~np.isfinite(y_pred)).sum())
    if bad:
        said = (f"{bad} rated clip(s) left out: their prediction is not finite (NaN or "
                f"infinite)")
        out["note"] = f"{out['note']}; {said}" if out["note"] not in ("", UNRATED) else said
    return out


def _regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """:func:`regression_metrics` without the note on non-finite predictions."""
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    t, p = y_true[ok].astype(np.float64), y_pred[ok].astype(np.float64)
    out = {"n": int(ok.sum()), **{k: np.nan for k in _VALUES[1:]}, "note": ""}
    if len(t) == 0:
        out["note"] = UNRATED
        return out
    err = p - t
    out["rmse"] = float(np.sqrt(np.mean(err ** 2)))
    out["mae"] = float(np.mean(np.abs(err)))
    if len(t) == 1 or t.std() == 0:
        out["note"] = ("constant ratings (sd 0): no r, R^2 or calibration line" if len(t) > 1
                       else "one rating: no r, R^2 or calibration line")
    else:
        out["r2"] = float(1 - np.sum(err ** 2) / np.sum((t - t.mean()) ** 2))
        if len(t) < MIN_CLIPS_R:
            out["note"] = (f"{len(t)} ratings: r would be +-1 and the calibration line exact by "
                           f"construction; no r or calibration line (needs at least "
                           f"{MIN_CLIPS_R})")
        elif p.std() == 0 or negligible_spread(p, t):
            out["note"] = (f"constant predictions (sd {p.std():.2g}): no r, no calibration "
                           f"line")
        else:
            out["r"] = float(np.corrcoef(t, p)[0, 1])
            if flat_predictions(p, t):
                out["note"] = (f"nearly constant predictions (sd {p.std():.2g}, under "
                               f"{CAL_SPREAD_TOL:g} x the truth's {t.std():.2g}): no "
                               f"calibration line")
            else:
                out["cal_slope"], out["cal_intercept"] = calibration_line(t, p)
    return out


def calibration_line(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float]:
    """Least-squares line of the rating on the prediction: ``(slope, intercept)``.

    ``y_true``, ``y_pred``: ``(n,)`` finite. A calibrated prediction (``E[rating | prediction]
    = prediction``) has slope 1 and intercept 0.
    """
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    dp = p - p.mean()
    slope = float((dp * (t - t.mean())).sum() / (dp * dp).sum())
    return slope, float(t.mean() - slope * p.mean())


def class_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy of integer codes ``y_pred`` against ``y_true`` (float codes, NaN = missing)."""
    ok = np.isfinite(y_true)
    out = {"n": int(ok.sum()), **{k: np.nan for k in _VALUES[1:]},
           "note": "" if ok.any() else UNRATED}
    out["accuracy"] = float(np.mean(y_true[ok] == y_pred[ok])) if ok.any() else np.nan
    return out


def binary_metrics(y_true: np.ndarray, y_prob: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics of one binary column: 0/1 labels ``y_true`` (NaN = missing) against predicted
    probabilities ``y_prob``: ROC-AUC, PR-AUC (average precision), F1 and accuracy of
    ``y_prob >= threshold``, and :func:`regression_metrics` of the probability (``r2`` = Brier
    skill score, ``rmse`` = root Brier score). AUCs are NaN without both labels; F1 is NaN
    (0/0) where no label and no prediction is positive, and 0 where only one side has
    positives."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    out = _regression_metrics(y_true, y_prob)
    ok = np.isfinite(y_true) & np.isfinite(y_prob)
    t, p = y_true[ok].astype(int), y_prob[ok].astype(np.float64)
    if not ok.any():
        return _with_nonfinite_note(out, y_true, y_prob)
    pick = (p >= threshold).astype(int)
    # F1 is 0/0 without a positive label or a positive pick: undefined, not the worst score
    no_positive = not t.any() and not pick.any()
    if out["note"].startswith(("constant ratings", "one rating")):
        out["note"] = (f"{'one label' if len(t) == 1 else f'every label {t[0]}'}: no r, "
                       f"Brier skill score (r2), calibration line{', F1' if no_positive else ''}"
                       f" or AUC")
    out["accuracy"] = float(np.mean(pick == t))
    out["f1"] = np.nan if no_positive else float(f1_score(t, pick, zero_division=0.0))
    if len(np.unique(t)) == 2:
        out["auc"] = float(roc_auc_score(t, p))
        out["pr_auc"] = float(average_precision_score(t, p))
    return _with_nonfinite_note(out, y_true, y_prob)


def metrics_table(split: str, kind: str, names: list[str], y_true: np.ndarray,
                  y_pred: np.ndarray, is_class: list[bool] | None = None, *,
                  kinds: list[str] | None = None, groups: dict[str, str] | None = None,
                  threshold: float = 0.5, units: dict[str, float] | None = None
                  ) -> pd.DataFrame:
    """Rows per column plus summary rows (see the module docstring): ``mean`` (or, when the
    columns mix sorts, ``mean:ratings`` / ``mean:binary`` / ``mean:classes``) and a
    ``mean:<group>`` row per multi-label group.

    ``y_true``, ``y_pred``: ``(n_clips, n_columns)`` (binary columns: 0/1 labels and predicted
    probabilities). ``kinds``: "regression", "class" or "binary" per column (default from
    ``is_class``, else all regression); ``groups``: column -> multi-label group;
    ``threshold``: of the binary columns' F1 and accuracy; ``units``: each rating column's
    unit size (a model's scales: its training split's sd), which tells columns in different
    units apart (else judged from these ratings' sd and root mean square).
    """
    if kinds is None:
        kinds = ["class" if c else "regression" for c in (is_class or [False] * len(names))]
    rows = []
    for j, name in enumerate(names):
        if kinds[j] == "binary":
            m = binary_metrics(y_true[:, j], y_pred[:, j], threshold)
        else:
            m = (class_metrics if kinds[j] == "class" else regression_metrics)(
                y_true[:, j], y_pred[:, j])
        rows.append({"split": split, "kind": kind, "name": name, **m})
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    if not rows:
        return frame
    ratings = [(j, name) for j, name in enumerate(names) if kinds[j] == "regression"]
    if units is not None:
        spread = {name: (float(units[name]),) * 2 for _, name in ratings if name in units}
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an unrated column: sd NaN
            spread = {name: (float(np.nanstd(y)), float(np.sqrt(np.nanmean(y ** 2))))
                      for j, name in ratings for y in [np.asarray(y_true[:, j], float)]}
    extra = [{"split": split, "kind": kind, "name": label, **_average(part, what, spread)}
             for label, part, what in _summaries(frame, names, kinds, groups or {})]
    return pd.concat([frame, pd.DataFrame(extra, columns=METRIC_COLUMNS)], ignore_index=True)


def _summaries(frame: pd.DataFrame, names: list[str], kinds: list[str],
               groups: dict[str, str]) -> list[tuple[str, pd.DataFrame, str]]:
    """``(row name, column rows, what they are)`` of each summary row of ``frame``'s column
    rows: one per sort when ``kinds`` mix sorts (else ``mean``), one per group of ``groups``."""
    group_names = list(dict.fromkeys(groups[n] for n in names if n in groups))
    sorts = list(dict.fromkeys(SORTS[k] for k in kinds))
    out = []
    for sort in sorts:
        label = "mean" if len(sorts) == 1 else f"mean:{sort}"
        if label[5:] in group_names:   # a group of that name: keep both rows apart
            label = f"{label} (all)"
        out.append((label, frame[[SORTS[k] == sort for k in kinds]], sort))
    for g in group_names:
        out.append((f"mean:{g}", frame[[groups.get(n) == g for n in names]], f"group {g}"))
    return out


def _average(part: pd.DataFrame, what: str, spread: dict | None = None) -> dict:
    """A summary row's values: the mean of ``part``'s columns (NaN skipped), the largest
    ``n``, no calibration line, and a note on what was averaged. Rating columns in different
    units (0-1000 beside 1-9) get no mean RMSE or MAE, their mean being the widest column's:
    both their ratings' standard deviations and their root mean squares (``spread``: column
    -> (sd, rms)) differ more than ``SCALE_RATIO`` times (the sd alone would take a column
    rated 5.0-5.2 on a few clips for another unit)."""
    values = part[_VALUES].astype(float).mean(skipna=True).to_dict()
    values.update({k: np.nan for k in _LINE}, n=int(part["n"].max()))
    sort = what if what in SORTS.values() else "binary"
    noun = {"ratings": "rating", "binary": "binary", "classes": "class"}[sort]
    columns = f"{len(part)} {noun} column{'s' if len(part) != 1 else ''}"
    group = f" ({what})" if what.startswith("group") else ""
    unrated = part["n"].fillna(0).astype(int) == 0
    if unrated.all():
        values["note"] = f"none of the {columns}{group} has a rating in this split"
        return values
    values["note"] = (f"mean of {columns}{group}" + _fewer(part, _AVERAGED[sort])
                      + "; no calibration line")
    units = np.array([(spread or {}).get(n, (np.nan, np.nan)) for n in part["name"]], float)
    units = units[np.isfinite(units).all(1) & (units > 0).all(1)].reshape(-1, 2)
    ratio = units.max(0) / units.min(0) if len(units) > 1 else np.ones(2)
    if sort == "ratings" and (ratio > SCALE_RATIO).all():
        values.update(rmse=np.nan, mae=np.nan)
        values["note"] += (f"; no mean rmse or mae: the columns' ratings differ "
                           f"{ratio.min():.3g}x in size and spread (different units)")
    return values


# rating columns whose sds differ more than this many times are in different units: their
# RMSE and MAE are not averaged
SCALE_RATIO = 10.0


# the values a summary row of each sort averages (the others are NaN in every column of it)
_AVERAGED = {"ratings": ("r", "r2", "rmse", "mae"),
             "binary": ("r", "r2", "rmse", "mae", "accuracy", "auc", "pr_auc", "f1"),
             "classes": ("accuracy",)}


def _fewer(part: pd.DataFrame, values: tuple[str, ...]) -> str:
    """``; r and r2 over 2 (not const)``: the values of ``values`` that fewer than all of
    ``part``'s columns have, so a summary's note says over how many columns each mean is;
    empty when every column has every one of them."""
    groups: dict[tuple, list[str]] = {}
    for value in values:
        missing = tuple(part.loc[part[value].isna(), "name"].astype(str))
        if missing and len(missing) < len(part):
            groups.setdefault(missing, []).append(value)
    return "".join(f"; {_listed(names)} over {len(part) - len(missing)} (not "
                   f"{', '.join(missing)})" for missing, names in groups.items())


def _listed(names: list[str]) -> str:
    """``r``, ``r and r2``, ``r, r2 and auc``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def is_summary(names) -> np.ndarray:
    """Which of the metric table's ``name`` values ``(n,)`` are summary rows (``mean``,
    ``mean:...``), not columns; a bool array ``(n,)``."""
    names = pd.Series(list(names), dtype=object).astype(str)
    return ((names == "mean") | names.str.startswith("mean:")).to_numpy()


def score(table: pd.DataFrame, kinds: tuple[str, ...], metric: str = "r2") -> float:
    """Model-selection score: mean over the listed kinds' columns of ``metric`` (accuracy for
    classes).

    R^2 by default rather than r: a prediction in the right order but wrong in level or scale
    scores low. ``metric="r"`` (the earlier rule) sees order only.
    """
    rows = table[table["kind"].isin(kinds).to_numpy() & ~is_summary(table["name"])]
    values = rows[metric].fillna(rows["accuracy"]).dropna()
    return float(values.mean()) if len(values) else float("nan")


def unscored(y_true: np.ndarray, kind: str, metric: str = "r2") -> str:
    """Why the ratings ``y_true`` ``(n,)`` (NaN = missing) of a column of ``kind``
    ("regression", "binary" or "class") give :func:`score` on ``metric`` ("r2" or "r") no value
    whatever the predictions are, or "" when they give one: no rating; for a rating column also
    a single rating or constant ratings (no r or R^2; binary and class columns fall back on
    their accuracy), and for r fewer than ``MIN_CLIPS_R`` ratings."""
    t = np.asarray(y_true, dtype=np.float64)
    t = t[np.isfinite(t)]
    if len(t) == 0:
        return "no rating"
    if kind == "regression" and (len(t) == 1 or t.std() == 0):
        return "one rating" if len(t) == 1 else f"constant ratings (every one {t[0]:g})"
    if kind == "regression" and metric == "r" and len(t) < MIN_CLIPS_R:
        return f"{len(t)} ratings (r needs at least {MIN_CLIPS_R})"
    return ""


def format_table(table: pd.DataFrame) -> str:
    """The metrics table as aligned text for a terminal: 3 decimals, or 3 significant digits
    for values below 0.001 or from a million up (an RMSE of 2e-4 on a column rated in small
    units read 0.000)."""
    return table.to_string(index=False, na_rep="-", float_format=lambda v: (
        f"{v:.3f}" if v == 0 or 1e-3 <= abs(v) < 1e6 else f"{v:.3g}"))
