"""Metrics per concept and target, as tidy tables.

Regression columns get Pearson r, R^2, RMSE and MAE (in rating units) and the calibration line of
the rating on the prediction (``rating ~ cal_intercept + cal_slope * prediction``: slope 1 and
intercept 0 when predictions are right in level and scale; a slope below 1 means predictions
spread too far, above 1 too little); class columns accuracy. Each (split, kind) also gets a
``mean`` row averaging its columns. r only sees order: R^2 and the calibration line see level
and scale too, and R^2 is what model selection uses.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

METRIC_COLUMNS = ["split", "kind", "name", "n", "r", "r2", "rmse", "mae", "cal_slope",
                  "cal_intercept", "accuracy"]
_VALUES = METRIC_COLUMNS[3:]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Metrics of one column over its finite entries. ``y_true``, ``y_pred``: ``(n,)``."""
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
        if p.std() > 0:
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
    return {"n": int(ok.sum()), **{k: np.nan for k in _VALUES[1:-1]},
            "accuracy": float(np.mean(y_true[ok] == y_pred[ok])) if ok.any() else np.nan}


def metrics_table(split: str, kind: str, names: list[str], y_true: np.ndarray,
                  y_pred: np.ndarray, is_class: list[bool] | None = None) -> pd.DataFrame:
    """Rows per column plus a ``mean`` row. ``y_true``, ``y_pred``: ``(n_clips, n_columns)``."""
    is_class = is_class or [False] * len(names)
    rows = []
    for j, name in enumerate(names):
        m = (class_metrics if is_class[j] else regression_metrics)(y_true[:, j], y_pred[:, j])
        rows.append({"split": split, "kind": kind, "name": name, **m})
    frame = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    if rows:
        mean = frame[_VALUES].mean(skipna=True)
        mean_row = {"split": split, "kind": kind, "name": "mean", **mean.to_dict()}
        mean_row["n"] = int(frame["n"].max())
        frame = pd.concat([frame, pd.DataFrame([mean_row], columns=METRIC_COLUMNS)],
                          ignore_index=True)
    return frame


def score(table: pd.DataFrame, kinds: tuple[str, ...], metric: str = "r2") -> float:
    """Model-selection score: mean over the listed kinds' columns of ``metric`` (accuracy for
    classes).

    R^2 by default rather than r: a prediction in the right order but wrong in level or scale
    scores low. ``metric="r"`` (the earlier rule) sees order only.
    """
    rows = table[table["kind"].isin(kinds) & (table["name"] != "mean")]
    values = rows[metric].fillna(rows["accuracy"]).dropna()
    return float(values.mean()) if len(values) else float("nan")


def format_table(table: pd.DataFrame) -> str:
    """The metrics table as aligned text for a terminal."""
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
