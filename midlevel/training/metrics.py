"""Metrics per concept and target, as tidy tables.

Regression columns get Pearson r, R^2, RMSE and MAE (in rating units) and the calibration line of
the rating on the prediction (``rating ~ cal_intercept + cal_slope * prediction``: slope 1 and
intercept 0 when predictions are right in level and scale; a slope below 1 means predictions
spread too far, above 1 too little); class columns accuracy. Binary columns (tags; the
prediction is a probability) get ROC-AUC (``auc``), PR-AUC (``pr_auc``, average precision), F1
and accuracy at a chosen ``threshold``, and the regression figures of the probability against
the 0/1 label: ``r2`` is then the Brier skill score (1 - Brier / the Brier score of always
predicting the base rate), ``rmse`` the root Brier score, the calibration line that of the
label on the probability. Each (split, kind) also gets a ``mean`` row averaging its columns
(for binary figures: their macro-average over tags), and each multi-label group a
``mean:<group>`` row over its tags. r only sees order: R^2 and the calibration line see level
and scale too, and R^2 is what model selection uses.

Predictions whose spread is negligible (:func:`negligible_spread`: a standard deviation of at
most ``SPREAD_TOL`` times their scale) count as constant: r and the calibration line are NaN
(shown "-"), as for exactly constant ones. A saturated sigmoid gives such columns
(probabilities 1e-10 apart), and the r and slope of rounding noise (r 0.63, slope 8e9) are no
measure of the model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

METRIC_COLUMNS = ["split", "kind", "name", "n", "r", "r2", "rmse", "mae", "cal_slope",
                  "cal_intercept", "accuracy", "auc", "pr_auc", "f1"]
_VALUES = METRIC_COLUMNS[3:]
_BINARY = ("auc", "pr_auc", "f1")
# relative spread below which predictions count as constant: about float32's resolution
# (2^-23 = 1.2e-7, the network's output precision), so a spread at the last digits a float32
# prediction carries is never read as signal
SPREAD_TOL = 1e-7


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


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Metrics of one column over its finite entries. ``y_true``, ``y_pred``: ``(n,)``.

    r and the calibration line are NaN for constant predictions, and for predictions whose
    spread is negligible (:func:`negligible_spread`)."""
    ok = np.isfinite(y_true) & np.isfinite(y_pred)
    t, p = y_true[ok].astype(np.float64), y_pred[ok].astype(np.float64)
    out = {"n": int(ok.sum()), **{k: np.nan for k in _VALUES[1:]}}
    if len(t) == 0:
        return out
    err = p - t
    out["rmse"] = float(np.sqrt(np.mean(err ** 2)))
    out["mae"] = float(np.mean(np.abs(err)))
    if len(t) > 1 and t.std() > 0:
        out["r2"] = float(1 - np.sum(err ** 2) / np.sum((t - t.mean()) ** 2))
        if p.std() > 0 and not negligible_spread(p, t):
            out["r"] = float(np.corrcoef(t, p)[0, 1])
            slope, intercept = calibration_line(t, p)
            out["cal_slope"], out["cal_intercept"] = slope, intercept
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
    out = {"n": int(ok.sum()), **{k: np.nan for k in _VALUES[1:]}}
    out["accuracy"] = float(np.mean(y_true[ok] == y_pred[ok])) if ok.any() else np.nan
    return out


def binary_metrics(y_true: np.ndarray, y_prob: np.ndarray, threshold: float = 0.5) -> dict:
    """Metrics of one binary column: 0/1 labels ``y_true`` (NaN = missing) against predicted
    probabilities ``y_prob``: ROC-AUC, PR-AUC (average precision), F1 and accuracy of
    ``y_prob >= threshold``, and :func:`regression_metrics` of the probability (``r2`` = Brier
    skill score, ``rmse`` = root Brier score). AUCs are NaN without both labels."""
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
    out = regression_metrics(y_true, y_prob)
    ok = np.isfinite(y_true) & np.isfinite(y_prob)
    t, p = y_true[ok].astype(int), y_prob[ok].astype(np.float64)
    if not ok.any():
        return out
    pick = (p >= threshold).astype(int)
    out["accuracy"] = float(np.mean(pick == t))
    out["f1"] = float(f1_score(t, pick, zero_division=0.0))
    if len(np.unique(t)) == 2:
        out["auc"] = float(roc_auc_score(t, p))
        out["pr_auc"] = float(average_precision_score(t, p))
    return out


def metrics_table(split: str, kind: str, names: list[str], y_true: np.ndarray,
                  y_pred: np.ndarray, is_class: list[bool] | None = None, *,
                  kinds: list[str] | None = None, groups: dict[str, str] | None = None,
                  threshold: float = 0.5) -> pd.DataFrame:
    """Rows per column plus a ``mean`` row (and a ``mean:<group>`` row per multi-label group).

    ``y_true``, ``y_pred``: ``(n_clips, n_columns)`` (binary columns: 0/1 labels and predicted
    probabilities). ``kinds``: "regression", "class" or "binary" per column (default from
    ``is_class``, else all regression); ``groups``: column -> multi-label group;
    ``threshold``: of the binary columns' F1 and accuracy.
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
    if rows:
        summary = [("mean", frame)]
        groups = groups or {}
        for g in dict.fromkeys(groups[n] for n in names if n in groups):
            summary.append((f"mean:{g}", frame[[groups.get(n) == g for n in names]]))
        extra = []
        for label, part in summary:
            mean_row = {"split": split, "kind": kind, "name": label,
                        **part[_VALUES].astype(float).mean(skipna=True).to_dict()}
            mean_row["n"] = int(part["n"].max())
            extra.append(mean_row)
        frame = pd.concat([frame, pd.DataFrame(extra, columns=METRIC_COLUMNS)],
                          ignore_index=True)
    return frame


def score(table: pd.DataFrame, kinds: tuple[str, ...], metric: str = "r2") -> float:
    """Model-selection score: mean over the listed kinds' columns of ``metric`` (accuracy for
    classes).

    R^2 by default rather than r: a prediction in the right order but wrong in level or scale
    scores low. ``metric="r"`` (the earlier rule) sees order only.
    """
    names = table["name"].astype(str)
    rows = table[table["kind"].isin(kinds) & (names != "mean") & ~names.str.startswith("mean:")]
    values = rows[metric].fillna(rows["accuracy"]).dropna()
    return float(values.mean()) if len(values) else float("nan")


def format_table(table: pd.DataFrame) -> str:
    """The metrics table as aligned text for a terminal."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
