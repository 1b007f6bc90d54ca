"""The calibration line's bootstrap shrinkage, checked where the truth is known: a simulated
model whose epochs differ only by noise, so the epoch the validation clips select is, by that
choice, predicted better there than anywhere else, and the population slope of new clips is
known in closed form."""
from __future__ import annotations

import numpy as np
import pytest

from midlevel.training.calibration import (
    _slopes, selection_scores, selection_shrinkage, shrink_lines,
)
from midlevel.training.metrics import metrics_table, score


@pytest.mark.parametrize("metric", ["r2", "r"])
def test_selection_scores_are_the_training_loops_score(metric):
    """Vectorized over epochs, the same number as ``score`` of the metrics table: regression,
    binary (a column with one label falls back to accuracy) and class columns, with gaps."""
    rng = np.random.default_rng(1)
    n, epochs = 25, 4
    true = np.column_stack([rng.normal(size=n), (rng.random(n) < 0.5).astype(float),
                            np.ones(n), rng.integers(0, 3, n).astype(float)])
    true[[2, 7], 0] = np.nan
    true[5, 3] = np.nan
    kinds = ["regression", "binary", "binary", "class"]
    pred = np.stack([np.column_stack([true[:, 0] + rng.normal(size=n), rng.random(n),
                                      rng.random(n), rng.integers(0, 3, n)])
                     for _ in range(epochs)])
    got = selection_scores(pred, true, kinds, metric)
    for e in range(epochs):
        table = metrics_table("validation", "concept", list("abcd"), true, pred[e], kinds=kinds)
        assert got[e] == pytest.approx(score(table, ("concept",), metric=metric))


def _world(seed, n=36, epochs=20, sigma=0.8):
    """Clips' true ratings t and epochs' predictions t + fresh clip noise (sd sigma): every
    epoch is equally good on new clips, where the slope of t on a prediction is
    1 / (1 + sigma^2)."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    pred = (t + sigma * rng.normal(size=(epochs, n)))[:, :, None]
    return pred, t[:, None], 1.0 / (1.0 + sigma ** 2)


def test_shrinkage_removes_most_of_the_selection_optimism():
    """Without shrinkage the line fitted on the selecting clips leaves new clips a slope well
    below 1; the bootstrap factor removes at least half of that gap (mean over 60 worlds)."""
    plain, shrunk, single = [], [], []
    for seed in range(60):
        pred, true, population = _world(seed)
        scores = selection_scores(pred, true, ["regression"])
        e = int(np.argmax(scores))
        fitted = _slopes(pred[e, :, 0][None], true[:, 0])[0]
        [s] = selection_shrinkage(pred, true, scored_pred=pred, scored_true=true,
                                  scored_kinds=["regression"], n_boot=100, seed=seed)
        assert 0 < s["factor"] <= 1.0 and s["epochs_selected"] > 1
        plain.append(population / fitted)
        shrunk.append(population / (fitted * s["factor"]))
        # the line alone (one epoch, no selection): little to shrink
        [one] = selection_shrinkage(pred[e][None], true, n_boot=100, seed=seed)
        single.append(one["raw"])
    gap_plain, gap_shrunk = 1 - np.mean(plain), 1 - np.mean(shrunk)
    assert gap_plain > 0.08                      # the optimism is there to remove
    assert abs(gap_shrunk) < 0.5 * gap_plain     # and most of it is gone
    assert np.mean(single) > 0.95                # a line fitted once hardly overfits


def test_shrunk_line_keeps_the_level_and_records_the_fitted_line():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(30, 2))
    true = 2 + 0.5 * pred + rng.normal(scale=0.3, size=(30, 2))
    lines = [{"slope": 0.5, "intercept": 2.0, "applied": True},
             {"slope": 0.4, "intercept": 1.0, "applied": False}]
    shrink_lines(lines, [{"factor": 0.8}, {"factor": 0.7}], pred, true)
    assert lines[0]["slope"] == pytest.approx(0.4) and lines[0]["shrinkage"] == 0.8
    assert lines[0]["intercept"] + 0.4 * pred[:, 0].mean() == pytest.approx(true[:, 0].mean())
    assert lines[0]["slope_fitted"] == 0.5 and lines[0]["intercept_fitted"] == 2.0
    assert lines[1]["slope"] == 0.4 and lines[1]["shrinkage"] == 1.0   # not applied: as is


def test_training_keeps_the_best_epochs_predictions_and_shrinks_only_with_them(
        tmp_path, monkeypatch, one_torch_thread):
    """The checkpoint keeps the validation predictions of the best-scoring epochs only (at
    most KEPT_EPOCHS); a run resumed from a checkpoint that has none (an older version) is not
    shrunk and says so rather than bootstrapping over a partial record."""
    import pandas as pd
    import torch

    from midlevel.testing.toy import FPS, toy_config, toy_data
    from midlevel.training import calibration, fit
    monkeypatch.setattr(calibration, "KEPT_EPOCHS", 2)
    data = toy_data(n_clips=60, seed=2)
    run = fit(*data, tmp_path / "a", toy_config(mode="independent", epochs=4), fps=FPS,
              progress=False)
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["state"]
    history = pd.read_csv(tmp_path / "a" / "history.csv")
    best_two = history.sort_values(["val_score", "epoch"], ascending=[False, True])["epoch"][:2]
    assert sorted(p["epoch"] for p in state["validation_predictions"]) == sorted(best_two)
    assert any(ln["shrinkage"] < 1.0 for ln in run.info["concept_calibration"].values())

    old = tmp_path / "b"
    fit(*data, old, toy_config(mode="independent", epochs=2), fps=FPS, progress=False)
    ckpt = torch.load(old / "checkpoint.pt", weights_only=False)
    del ckpt["state"]["validation_predictions"]
    torch.save(ckpt, old / "checkpoint.pt")
    resumed = fit(*data, old, toy_config(mode="independent", epochs=3), fps=FPS, resume=True,
                  progress=False)
    assert all(ln["shrinkage"] == 1.0 for ln in resumed.info["concept_calibration"].values())
    assert "calibration lines not shrunk" in (old / "train.log").read_text()


def test_near_constant_predictions_get_no_r_or_calibration_line():
    """Probabilities 1e-11 apart (a saturated sigmoid) are constant but for rounding: no r
    of 0.6 and slope of 1e10 from that noise, in the column or in the mean rows; real
    predictions, even on a tiny scale, keep theirs."""
    from midlevel.training.metrics import binary_metrics, regression_metrics
    rng = np.random.default_rng(3)
    label = np.r_[np.zeros(10), np.ones(10)]
    noise = 1e-10 + 4e-11 * (label + rng.random(20))        # sd ~ 2e-11, tracks the label
    m = binary_metrics(label, noise)
    assert np.isnan(m["r"]) and np.isnan(m["cal_slope"]) and np.isnan(m["cal_intercept"])
    ratings = rng.uniform(1, 10, 30)
    m = regression_metrics(ratings, 5.0 + 1e-9 * ratings)    # float32 cannot hold that spread
    assert np.isnan(m["r"]) and np.isnan(m["cal_slope"])
    table = metrics_table("test", "target", ["a", "b"], np.c_[label, label],
                          np.c_[label * 0.6 + 0.2, noise], kinds=["binary", "binary"])
    mean = table.set_index("name").loc["mean"]
    assert np.isnan(mean["cal_slope"]) and mean["r"] == pytest.approx(1.0)  # no mean line
    tiny = 1e-9 * ratings                                     # tiny units, real spread
    m = regression_metrics(tiny, tiny + 1e-10 * rng.normal(size=30))
    assert m["r"] > 0.9 and m["cal_slope"] == pytest.approx(1.0, abs=0.1)
    # the training loop's vectorized score agrees (metric "r": no r, accuracy instead)
    pred = np.stack([np.c_[noise], np.c_[label * 0.6 + 0.2]])
    got = selection_scores(pred, label[:, None], ["binary"], "r")
    for e in range(2):
        t = metrics_table("validation", "target", ["a"], label[:, None], pred[e],
                          kinds=["binary"])
        assert got[e] == pytest.approx(score(t, ("target",), metric="r"))
    assert got[0] == pytest.approx(0.5)                      # accuracy at 0.5, not r 0.6


def test_a_line_that_was_not_fitted_is_not_logged_as_one():
    """Fewer than ``min_clips`` rated clips: the log says no line was fitted and why, not
    'slope 1.000, intercept 0.000 ... not applied'."""
    from midlevel.training.calibration import calibration_lines, describe_line
    rng = np.random.default_rng(0)
    true = rng.uniform(1, 10, size=(6, 2))
    pred = true + rng.normal(size=(6, 2))
    prob = np.c_[pred[:, 0], np.linspace(0.1, 0.9, 6)]
    label = np.c_[true[:, 0], [0, 1, 0, 1, 0, 1]]
    for line in calibration_lines(prob, label, binary=[False, True]):
        line["split"] = "validation"
        assert not line["fitted"] and not line["applied"]
        text = describe_line(line, "slope not clearly positive or too few clips")
        assert "no line fitted (6 rated clips, needs at least 10)" in text
        assert "slope 1.000" not in text and "not applied" not in text
    true = rng.uniform(1, 10, size=(40, 1))
    line = calibration_lines(true + rng.normal(size=(40, 1)), true)[0]
    line.update(split="validation", shrinkage=1.0)
    assert line["fitted"] and line["applied"]
    assert describe_line(line, "x").startswith("validation calibration slope")


def test_the_logged_intercept_is_in_rating_points_like_metrics_csv():
    """The line is fitted on standardized predictions and ratings; the log gives its intercept
    in rating points (the line of the rating on the prediction, as ``cal_intercept``), or says
    "z units" where the scales are not given."""
    from midlevel.training.calibration import calibration_lines, describe_line
    from midlevel.training.metrics import calibration_line
    rng = np.random.default_rng(1)
    mean, sd = 5.0, 1.8
    pred = rng.normal(mean, sd, size=200)
    true = 1.5 + 0.6 * pred + rng.normal(0, 0.5, size=200)
    z = lambda v: (v - mean) / sd  # noqa: E731
    line = calibration_lines(z(pred)[:, None], z(true)[:, None])[0]
    line.update(split="validation", shrinkage=1.0)
    slope, intercept = calibration_line(true, pred)
    text = describe_line(line, "x", mean=mean, sd=sd)
    assert f"slope {slope:.3f}" in text
    assert f"intercept {intercept:.3f} rating points" in text
    assert "(z units)" in describe_line(line, "x")
