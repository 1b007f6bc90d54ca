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
