"""Metric tables' summary rows: one sort of column each, no mean calibration line; the
calibration line of nearly flat predictions; model selection unchanged by either."""
from __future__ import annotations

import numpy as np
import pytest

from midlevel.training.calibration import selection_scores
from midlevel.training.metrics import METRIC_COLUMNS, is_summary, metrics_table, score

NAMES = ["valence", "m=a", "m=b", "quadrant"]
KINDS = ["regression", "binary", "binary", "class"]


def mixed_table():
    """A rating, two tags (one a saturated sigmoid: probabilities 1 - 1e-6 * U(0, 1)) and a
    class target on 30 clips; returns ``(table, y_true, y_pred)``."""
    rng = np.random.default_rng(7)
    n = 30
    rating = rng.uniform(1, 10, n)
    label = (rng.random(n) < 0.4).astype(float)
    cls = rng.integers(0, 3, n).astype(float)
    saturated = 1 - 1e-6 * rng.random(n)
    y = np.c_[rating, label, label, cls]
    p = np.c_[rating + rng.normal(0, 1.5, n),
              np.clip(label * 0.5 + 0.25 + rng.normal(0, 0.1, n), 0, 1), saturated,
              np.where(rng.random(n) < 0.6, cls, 0)]
    t = metrics_table("validation", "target", NAMES, y, p, kinds=KINDS,
                      groups={"m=a": "m", "m=b": "m"})
    return t, y, p


def test_model_selection_score_is_pinned():
    """The selection score (mean over the column rows) on a mixed table: the values the code
    gave before the summary rows were split by sort (and the training loop's score agrees)."""
    t, y, p = mixed_table()
    assert score(t, ("target",), metric="r2") == pytest.approx(0.2742563921380642, abs=1e-12)
    assert score(t, ("target",), metric="r") == pytest.approx(0.5413882346813138, abs=1e-12)
    for metric in ("r2", "r"):
        got = selection_scores(p[None], y, KINDS, metric)
        assert got[0] == pytest.approx(score(t, ("target",), metric=metric), abs=1e-12)


def test_summary_rows_average_one_sort_of_column_each():
    t, _, _ = mixed_table()
    rows = t.set_index("name")
    assert list(t["name"]) == NAMES + ["mean:ratings", "mean:binary", "mean:classes", "mean:m"]
    assert "mean" not in rows.index          # no row averages rating points with Brier scores
    assert list(is_summary(t["name"])) == [False] * 4 + [True] * 4
    for col in ("r", "r2", "rmse", "mae"):
        assert rows.loc["mean:ratings", col] == pytest.approx(rows.loc["valence", col])
        assert rows.loc["mean:binary", col] == pytest.approx(rows.loc[["m=a", "m=b"], col].mean())
    assert rows.loc["mean:classes", "accuracy"] == pytest.approx(rows.loc["quadrant", "accuracy"])
    assert np.isnan(rows.loc["mean:ratings", "accuracy"])   # the classes' is not mixed in
    summary = t[is_summary(t["name"])]
    assert summary[["cal_slope", "cal_intercept"]].isna().all().all()
    assert "mean of 2 binary columns" in rows.loc["mean:binary", "note"]


def test_a_kind_of_one_sort_keeps_its_mean_row_and_a_group_name_does_not_collide():
    y = np.array([[0, 1, 0.0], [1, 0, 1], [1, 1, 1], [0, 0, 0]])
    p = np.array([[0.2, 0.7, 0.1], [0.8, 0.3, 0.6], [0.9, 0.6, 0.7], [0.1, 0.2, 0.4]])
    t = metrics_table("test", "target", ["binary=a", "binary=b", "c"], y, p,
                      kinds=["binary"] * 3, groups={"binary=a": "binary", "binary=b": "binary"})
    assert list(t["name"]) == ["binary=a", "binary=b", "c", "mean", "mean:binary"]
    rows = metrics_table("test", "target", ["r", "binary=a"], np.c_[[1, 2, 3, 4.0], y[:, 0]],
                         np.c_[[1, 2, 4, 3.0], p[:, 0]], kinds=["regression", "binary"],
                         groups={"binary=a": "binary"})["name"]
    assert list(rows) == ["r", "binary=a", "mean:ratings", "mean:binary (all)", "mean:binary"]


def test_nearly_flat_probabilities_get_no_calibration_line_and_say_why():
    """Probabilities 0.999999-1.000000 (sd 3e-7, above float32's resolution, so r stays)
    against 0/1 labels gave a slope of -5e5; the line needs a spread of at least
    CAL_SPREAD_TOL of the labels' sd."""
    t, _, _ = mixed_table()
    row = t.set_index("name").loc["m=b"]
    assert np.isfinite(row["r"])
    assert np.isnan(row["cal_slope"]) and np.isnan(row["cal_intercept"])
    assert "nearly constant" in row["note"] and "no calibration line" in row["note"]
    ok = t.set_index("name").loc["m=a"]
    assert np.isfinite(ok["cal_slope"]) and ok["note"] == ""


def test_evaluate_help_names_every_column(capsys):
    from midlevel.cli import main
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for col in METRIC_COLUMNS + ["mean:ratings", "mean:<group>"]:
        assert col in text, col


def test_constant_ratings_say_why_r_is_missing_and_the_mean_says_over_how_many():
    """A target constant on the split (sd 0): no r, R^2 or line, and a note saying so (not
    the constant-predictions note: the predictions spread); the summary row's r is the mean
    of the 2 other columns while its rmse is over all 3, and its note says so."""
    rng = np.random.default_rng(3)
    y = np.c_[rng.normal(5, 1, 20), rng.normal(5, 1, 20), np.full(20, 5.0)]
    p = y + rng.normal(0, 0.5, y.shape)
    t = metrics_table("test", "target", ["a", "b", "const"], y, p).set_index("name")
    assert np.isnan(t.loc["const", ["r", "r2", "cal_slope"]].astype(float)).all()
    assert t.loc["const", "note"] == "constant ratings (sd 0): no r, R^2 or calibration line"
    assert t.loc["mean", "r"] == pytest.approx(t.loc[["a", "b"], "r"].mean())
    assert t.loc["mean", "rmse"] == pytest.approx(t.loc[["a", "b", "const"], "rmse"].mean())
    assert t.loc["mean", "note"] == ("mean of 3 rating columns; r and r2 over 2 (not const); "
                                     "no calibration line")
    # normal data: the note as before
    plain = metrics_table("test", "target", ["a", "b"], y[:, :2], p[:, :2]).set_index("name")
    assert plain.loc["mean", "note"] == "mean of 2 rating columns; no calibration line"
    # a binary column with one label value says so in its own words
    labels = np.c_[np.zeros(20), (rng.random(20) < 0.5).astype(float)]
    b = metrics_table("test", "target", ["x", "y"], labels, rng.random((20, 2)),
                      kinds=["binary", "binary"]).set_index("name")
    assert b.loc["x", "note"].startswith("every label 0: no r, Brier skill score (r2)")
    assert "r, r2, auc and pr_auc over 1 (not x)" in b.loc["mean", "note"]

def test_two_ratings_give_no_r_and_no_calibration_line():
    """Two points give r = +-1 and a line through both whatever the predictions (audit 7b, #2:
    a 2-clip test split printed r -1.0 and a line of slope -20); R^2 and the errors stay."""
    from midlevel.training.metrics import MIN_CLIPS_R, regression_metrics
    m = regression_metrics(np.array([3.0, 5.0]), np.array([4.1, 4.0]))
    assert np.isnan(m["r"]) and np.isnan(m["cal_slope"]) and np.isnan(m["cal_intercept"])
    assert np.isfinite(m["r2"]) and np.isfinite(m["rmse"])
    assert "2 ratings" in m["note"] and f"at least {MIN_CLIPS_R}" in m["note"]
    m3 = regression_metrics(np.array([3.0, 5.0, 4.0]), np.array([4.1, 4.0, 4.3]))
    assert np.isfinite(m3["r"]) and np.isfinite(m3["cal_slope"]) and m3["note"] == ""


def test_small_values_keep_their_digits_on_screen_and_in_labels():
    """Audit 12b #6: an RMSE of 2.1e-4 printed 0.000; a concept rated in small units read
    "0.00 vs 0.00" on its bar."""
    import pandas as pd

    from midlevel.plots.common import number
    from midlevel.training.metrics import format_table
    text = format_table(pd.DataFrame({"name": ["a", "b"], "rmse": [2.1e-4, 0.25]}))
    assert "0.00021" in text and "0.250" in text
    assert number(2.1e-4) == "0.00021" and number(0.25) == "0.25" and number(0) == "0.00"
    assert number(123456.0) == "1.23e+05"


def test_rating_columns_in_different_units_get_no_mean_rmse():
    """Audit 12b #5: the summary row averaged RMSE and MAE over concepts on scales 1e8
    apart (3002.4 from 21005.7 and 0.0003): the widest column's error, in no unit. Columns
    whose ratings' sds are within 10x keep their mean RMSE."""
    from midlevel.training.metrics import metrics_table
    rng = np.random.default_rng(0)
    truth = rng.normal(5, 2, (60, 3))
    pred = truth + rng.normal(0, 0.5, truth.shape)
    same = metrics_table("test", "concept", ["a", "b", "c"], truth, pred)
    mean = same.set_index("name").loc["mean"]
    assert mean["rmse"] == pytest.approx(same["rmse"][:3].mean())
    assert "different units" not in mean["note"]
    scaled = np.array([1.0, 1e4, 1e-4])
    mixed = metrics_table("test", "concept", ["a", "b", "c"], truth * scaled, pred * scaled)
    row = mixed.set_index("name").loc["mean"]
    assert np.isnan(row["rmse"]) and np.isnan(row["mae"])
    assert row["r"] == pytest.approx(mean["r"]) and row["r2"] == pytest.approx(mean["r2"])
    assert "no mean rmse or mae" in row["note"] and "different units" in row["note"]
    # re-audit 13 N4: a column rated 5.0-5.2 on three clips is not in other units
    narrow = truth.copy()
    narrow[3:, 2] = np.nan
    narrow[:3, 2] = [5.0, 5.2, 5.1]
    row = metrics_table("test", "concept", ["a", "b", "c"], narrow, pred).set_index(
        "name").loc["mean"]
    assert np.isfinite(row["rmse"]) and "different units" not in row["note"]
    # re-audit 13 R1: on a scale centred on 0 a near-neutral column is small in size and
    # spread alike; a model's scales (its training sds) tell the units apart
    bipolar = (narrow - 5.5) / 4.5
    bipolar[:3, 2] = [0.0, 0.02, -0.02]
    same = {"a": 0.4, "b": 0.45, "c": 0.3}
    row = metrics_table("test", "concept", ["a", "b", "c"], bipolar, (pred - 5.5) / 4.5,
                        units=same).set_index("name").loc["mean"]
    assert np.isfinite(row["rmse"]) and "different units" not in row["note"]
    row = metrics_table("test", "concept", ["a", "b", "c"], truth * scaled, pred * scaled,
                        units={"a": 2.0, "b": 2e4, "c": 2e-4}).set_index("name").loc["mean"]
    assert np.isnan(row["rmse"]) and "different units" in row["note"]


def test_a_column_without_a_rating_in_the_split_says_so():
    """Audit 13a D4: a column with no rating in the split showed n 0 and '-' with an empty
    note, and the summary row claimed to be the 'mean of 8 rating columns' of none."""
    from midlevel.training.metrics import UNRATED
    truth = np.full((10, 3), np.nan)
    truth[:, 2] = np.arange(10.0)
    pred = np.arange(30.0).reshape(10, 3)
    t = metrics_table("test", "target", ["a", "b", "c"], truth, pred,
                      kinds=["regression", "class", "regression"]).set_index("name")
    assert t.loc["a", "note"] == UNRATED and t.loc["b", "note"] == UNRATED
    assert t.loc["c", "note"] == ""
    assert "none of the 1 class column has a rating" in t.loc["mean:classes", "note"]
    assert t.loc["mean:ratings", "note"].startswith("mean of 2 rating columns")
    none = metrics_table("test", "target", ["a", "b"], truth[:, :2], pred[:, :2])
    assert none.set_index("name").loc["mean", "note"] == \
        "none of the 2 rating columns has a rating in this split"


def test_a_non_finite_prediction_of_a_rated_clip_is_counted_in_the_note():
    """Audit 14a #3: the finite mask meant for missing ratings also hid NaN predictions:
    n 3 of 4 with an empty note, in model selection, validation and ``evaluate``."""
    from midlevel.training.metrics import binary_metrics, regression_metrics
    t = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    p = np.array([1.1, 2.2, np.nan, 3.9, np.nan])   # the last clip is unrated: not counted
    out = regression_metrics(t, p)
    assert out["n"] == 3
    assert out["note"] == ("1 rated clip(s) left out: their prediction is not finite (NaN "
                           "or infinite)")
    assert regression_metrics(t, np.array([1.1, 2.2, 3.1, 3.9, np.nan]))["note"] == ""
    # every rated clip's prediction NaN: not also "no rating in this split" (re-audit 14)
    assert regression_metrics(t, np.full(5, np.nan))["note"] == (
        "4 rated clip(s) left out: their prediction is not finite (NaN or infinite)")
    labels = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    prob = np.array([0.2, 0.8, np.inf, 0.7, 0.6])
    assert binary_metrics(labels, prob)["note"].endswith("their prediction is not finite "
                                                         "(NaN or infinite)")
    constant = binary_metrics(np.ones(4), np.array([0.9, np.nan, 0.8, 0.7]))
    assert constant["note"].startswith("every label 1") and "1 rated clip(s) left out" in \
        constant["note"]
