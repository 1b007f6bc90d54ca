"""Contributions, interventions and change localization on a hand-built bottleneck (no training)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from midlevel.errors import MidlevelError
from midlevel.explain.head import LinearHead, check_additivity, contributions
from midlevel.explain.interventions import intervene, intervention_curve
from midlevel.explain.timeline import locate_change
from midlevel.models.bottleneck import ConceptBottleneck, ModelOutput

CONCEPTS = ["alpha", "beta", "gamma"]  # any concept set works: nothing is hard-coded


@pytest.fixture
def model(rng):
    torch.manual_seed(0)
    m = ConceptBottleneck(CONCEPTS, [{"name": "t1"}, {"name": "t2"},
                                     {"name": "mood", "kind": "class", "classes": ["x", "y"]}],
                          backbone={"width": 0.1, "dropout": 0.0})
    m.set_scales(input_mean=0.0, input_std=1.0, concept_mean=rng.uniform(3, 6, 3),
                 concept_std=rng.uniform(0.5, 2, 3), target_mean=[5.0, 2.0, 0.0, 0.0],
                 target_std=[2.0, 0.5, 1.0, 1.0])
    return m.eval()


def test_head_in_rating_units_matches_the_model(model, rng):
    head = LinearHead.from_model(model)
    assert head.outputs == ["t1", "t2", "mood=x", "mood=y"]
    assert head.kinds == ["regression", "regression", "logit", "logit"]
    c = rng.uniform(1, 10, (5, 3))
    with torch.no_grad():
        z = (torch.as_tensor(c, dtype=torch.float32) - model.concept_mean) / model.concept_std
        out = model.unscale(ModelOutput(None, model.head(z))).targets.numpy()
    np.testing.assert_allclose(head.predict(c), out, rtol=1e-5, atol=1e-5)


def test_contributions_add_up_exactly(model, rng):
    head = LinearHead.from_model(model)
    frame = pd.DataFrame(rng.uniform(1, 10, (6, 3)), columns=CONCEPTS,
                         index=pd.Index([f"c{i}" for i in range(6)], name="clip"))
    baseline = pd.Series(rng.uniform(1, 10, 3), index=CONCEPTS)
    table = contributions(frame, head, baseline)
    assert len(table) == 6 * 4 * 3
    assert list(table.columns[:3]) == ["clip", "target", "concept"]
    assert check_additivity(table, atol=1e-10) <= 1e-10
    # the prediction is the head's output, the baseline prediction the head at the baseline
    pred = table.groupby(["clip", "target"], sort=False)["prediction"].first().unstack()
    np.testing.assert_allclose(pred.loc[frame.index, head.outputs], head.predict(frame), atol=1e-12)
    base = table.groupby("target")["baseline_prediction"].first()[head.outputs]
    np.testing.assert_allclose(base, head.predict(baseline.to_numpy())[0], atol=1e-12)
    # a clip at the baseline has no contributions; each contribution is w * (c - c0)
    at_base = contributions(baseline.to_frame().T.assign(clip="b"), head, baseline)
    assert np.abs(at_base["contribution"]).max() == 0
    row = table.iloc[7]
    assert row["contribution"] == pytest.approx(
        head.weight[head.outputs.index(row["target"]), CONCEPTS.index(row["concept"])]
        * (row["concept_value"] - row["concept_baseline"]))
    assert row["target"] == "mood=x" and row["weight"] == head.weight[2, 1]
    only = contributions(frame, head, baseline, targets=["mood"])
    assert set(only["target"]) == {"mood=x", "mood=y"}
    with pytest.raises(MidlevelError, match="unknown target"):
        contributions(frame, head, baseline, targets=["nope"])
    with pytest.raises(MidlevelError, match="missing"):
        contributions(frame.drop(columns="beta"), head, baseline)


def test_intervention_changes_prediction_by_weight_times_shift(model, rng):
    head = LinearHead.from_model(model)
    frame = pd.DataFrame(rng.uniform(1, 10, (4, 3)), columns=CONCEPTS,
                         index=pd.Index(list("abcd"), name="clip"))
    out = intervene(head, frame, {"beta": 7.5}, targets=["t1"])
    expected = head.weight[0, 1] * (7.5 - frame["beta"].to_numpy())
    np.testing.assert_allclose(out["change"], expected, atol=1e-12)
    # setting a concept to its baseline removes exactly its contribution
    baseline = frame.mean()
    contrib = contributions(frame, head, baseline, targets=["t2"])
    gamma = contrib[contrib["concept"] == "gamma"].set_index("clip")["contribution"]
    out = intervene(head, frame, {"gamma": baseline["gamma"]}, targets=["t2"]).set_index("clip")
    np.testing.assert_allclose(out["change"], -gamma.loc[out.index], atol=1e-12)
    # per-clip values (true ratings), NaN keeps the prediction
    true = frame.copy() + 1.0
    true.loc["a", "alpha"] = np.nan
    out = intervene(head, frame, true[["alpha"]], targets=["t1"]).set_index("clip")
    assert out.loc["a", "change"] == 0
    assert out.loc["b", "change"] == pytest.approx(head.weight[0, 0])


def test_intervention_curves(model, rng):
    head = LinearHead.from_model(model)
    n = 50
    true_c = pd.DataFrame(rng.uniform(1, 10, (n, 3)), columns=CONCEPTS)
    pred_c = true_c + rng.normal(0, [0.2, 2.0, 1.0], (n, 3))
    y = pd.DataFrame(head.predict(true_c)[:, :2], columns=["t1", "t2"])
    rand = intervention_curve(head, pred_c, true_c, y, order="random", n_repeats=5)
    greedy = intervention_curve(head, pred_c, true_c, y, order="greedy")
    for curve in (rand, greedy):
        mean = curve[curve["target"] == "mean"]
        # all concepts replaced by the truth -> the targets are reproduced exactly
        assert mean[mean["n_replaced"] == 3]["relative_rmse"].max() < 1e-9
        assert mean[mean["n_replaced"] == 0]["relative_rmse"].min() > 0.01
        assert mean["rmse"].isna().all()   # no mean of errors in the targets' units
        each = curve[curve["target"] != "mean"]
        sd = y.std(ddof=0)
        np.testing.assert_allclose(each["relative_rmse"],
                                   each["rmse"] / each["target"].map(sd))
        by_step = each.groupby(["repeat", "n_replaced"])["relative_rmse"].mean()
        np.testing.assert_allclose(
            mean.set_index(["repeat", "n_replaced"])["relative_rmse"].loc[by_step.index],
            by_step)
    g = greedy[greedy["target"] == "mean"].sort_values("n_replaced")
    assert (np.diff(g["relative_rmse"]) <= 1e-12).all()   # each greedy step lowers the error
    r = rand[rand["target"] == "mean"].groupby("n_replaced")["relative_rmse"].mean()
    assert (g["relative_rmse"].to_numpy() <= r.to_numpy() + 1e-12).all()
    assert set(rand["repeat"]) == set(range(5))


def test_the_greedy_order_is_not_set_by_the_widest_target(model, rng):
    """A target on a scale 1000x wider set the greedy order and the mean of every step (the
    mean RMSE averaged rating points of both): the relative RMSE (RMSE / sd) weighs each
    target alike, so scaling one target's units leaves the order and the mean unchanged."""
    head = LinearHead.from_model(model)
    n = 60
    true_c = pd.DataFrame(rng.uniform(1, 10, (n, 3)), columns=CONCEPTS)
    pred_c = true_c + rng.normal(0, [0.2, 2.0, 1.0], (n, 3))
    y = pd.DataFrame(head.predict(true_c)[:, :2], columns=["t1", "t2"])
    curves = []
    for factor in (1.0, 1000.0):
        scaled = LinearHead.from_model(model)
        scaled.weight = head.weight.copy()
        scaled.bias = head.bias.copy()
        scaled.weight[1] *= factor
        scaled.bias[1] *= factor
        ys = y.assign(t2=y["t2"] * factor)
        curves.append(intervention_curve(scaled, pred_c, true_c, ys, order="greedy"))
    a, b = (c[c["target"] == "mean"].sort_values("n_replaced") for c in curves)
    assert list(a["concept"]) == list(b["concept"])
    np.testing.assert_allclose(a["relative_rmse"], b["relative_rmse"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("t0", [2.0, 3.3, 6.1])
def test_locate_change_on_a_windowed_step(rng, t0):
    """A step seen through 2 s windows is a ramp; its centre is the change time."""
    times = np.arange(1.0, 9.0 + 1e-9, 0.25)
    frac = np.clip((times + 1.0 - t0) / 2.0, 0, 1)       # share of the window after t0
    curve = 3.0 + 4.0 * frac + rng.normal(0, 0.3, len(times))
    assert abs(locate_change(times, curve, window=2.0) - t0) <= 0.3
    assert abs(locate_change(times, curve) - t0) <= 1.0   # a plain step fit, biased at edges


def test_a_target_nearly_constant_on_the_clips_does_not_set_the_mean(model, rng, caplog):
    """Re-audit 14: one clip at 5.01 among 5.0s gave that target a relative RMSE of about
    2000, which set the mean and the greedy order. Scaled by the run's training sd (as
    run_intervention_curves passes), it weighs like the others; a target with no sd at all
    is left out of the mean with a warning."""
    head = LinearHead.from_model(model)
    n = 60
    true_c = pd.DataFrame(rng.uniform(1, 10, (n, 3)), columns=CONCEPTS)
    pred_c = true_c + rng.normal(0, [0.2, 2.0, 1.0], (n, 3))
    y = pd.DataFrame(head.predict(true_c)[:, :2], columns=["t1", "t2"])
    y["t2"] = 5.0
    y.loc[0, "t2"] = 5.01
    loose = intervention_curve(head, pred_c, true_c, y, order="greedy")
    scaled = intervention_curve(head, pred_c, true_c, y, order="greedy",
                                scales={"t1": 2.0, "t2": 0.5})
    first = lambda c: c[(c["target"] == "mean") & (c["n_replaced"] == 0)]["relative_rmse"]
    assert float(first(loose).iloc[0]) > 100
    assert float(first(scaled).iloc[0]) < 20
    y["t2"] = 5.0
    with caplog.at_level("WARNING", logger="midlevel"):
        flat = intervention_curve(head, pred_c, true_c, y, order="greedy")
    assert "['t2'] vary on none of these clips" in caplog.text
    t1 = flat[flat["target"] == "t1"].set_index("n_replaced")["relative_rmse"]
    np.testing.assert_allclose(flat[flat["target"] == "mean"].set_index("n_replaced")[
        "relative_rmse"], t1)


def test_locate_change_says_when_every_window_spans_the_change(caplog):
    """10-s windows on a 15-s clip (centres 5-10 s): a change at 7.3 s makes a straight line
    through every window, which any centre from 5 to 10 s fits: NaN and a warning, not the
    first grid point (5.02 s before); a change at 3 s or 12 s is seen whole and located; a
    flat curve has no change."""
    import logging
    times = np.arange(5.0, 10.01, 0.5)

    def seen(t0):  # the share of each 10-s window after a step at t0
        return np.clip((times - t0 + 5.0) / 10.0, 0.0, 1.0)

    with caplog.at_level(logging.WARNING, logger="midlevel"):
        assert np.isnan(locate_change(times, 2.0 + 3.0 * seen(7.3), window=10.0))
    assert "every window spans the change" in caplog.text and "5." in caplog.text
    for t0 in (3.0, 12.0):
        assert locate_change(times, 2.0 + 3.0 * seen(t0), window=10.0) == pytest.approx(
            t0, abs=0.06)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        assert np.isnan(locate_change(times, np.full(len(times), 4.0), window=10.0))
        assert np.isnan(locate_change(times, np.full(len(times), 4.0)))
    assert caplog.text.count("the curve is flat") == 2


def test_locate_change_does_not_depend_on_the_curves_units(caplog):
    """Re-audit 16: an absolute tolerance made a clear change at 6.3 s NaN at 1e-5 x its
    amplitude; two separate equal minima (a rise at 3 s, a fall at 7 s) are named as such,
    not as a span of equally good times."""
    import logging
    times = np.arange(1.0, 9.01, 0.25)
    seen = np.clip((times - 6.3 + 1.0) / 2.0, 0.0, 1.0)
    found = [locate_change(times, a * (1.0 + seen), window=2.0) for a in (1.0, 1e-3, 1e-6)]
    assert np.allclose(found, found[0]) and abs(found[0] - 6.3) < 0.1
    step = ((times > 3.0) & (times < 7.0)).astype(float)  # symmetric: two equal minima
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        assert np.isnan(locate_change(times, step))
    assert "several separate times fit it equally well" in caplog.text


def test_a_baseline_that_is_not_a_finite_number_is_refused_by_concept(model, rng):
    """Audit 23b: a NaN in the baseline made every prediction and baseline prediction NaN
    without a word; None read as "baseline has 1 values"."""
    from midlevel.errors import ExplainError
    head = LinearHead.from_model(model)
    frame = pd.DataFrame(rng.uniform(1, 10, (2, 3)), columns=CONCEPTS,
                         index=pd.Index(["a", "b"], name="clip"))
    nan = pd.Series([4.0, np.nan, 5.0], index=CONCEPTS)
    with pytest.raises(ExplainError, match="baseline value of beta is not a finite number"):
        contributions(frame, head, nan)
    with pytest.raises(ExplainError, match="gamma is not a finite"):
        contributions(frame, head, [1.0, 2.0, np.inf])
    with pytest.raises(ExplainError, match="baseline is None"):
        contributions(frame, head, None)


def test_one_target_may_be_named_by_a_string(model, rng):
    """Audit 23b: ``targets="t1"`` was read letter by letter ("unknown target 't'")."""
    from midlevel.plots.concepts import contribution_bars
    head = LinearHead.from_model(model)
    assert head.units("t1") == head.units(["t1"]) == [0]
    frame = pd.DataFrame(rng.uniform(1, 10, (1, 3)), columns=CONCEPTS,
                         index=pd.Index(["a"], name="clip"))
    table = contributions(frame, head, pd.Series([5.0, 5.0, 5.0], index=CONCEPTS))
    fig = contribution_bars(table, "a", targets="t2")
    assert len([ax for ax in fig.axes if ax.has_data()]) == 1
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_a_head_certain_of_its_classes_is_named(model, rng, caplog):
    """Audit 23c: an unpenalized class head on separable classes gave contributions of
    75,038 logits in explain with no note (training warned once)."""
    import logging

    from midlevel.explain.head import warn_separated
    head = LinearHead.from_model(model)
    frame = pd.DataFrame(rng.uniform(1, 10, (2, 3)), columns=CONCEPTS,
                         index=pd.Index(["a", "b"], name="clip"))
    table = contributions(frame, head, pd.Series([5.0, 5.0, 5.0], index=CONCEPTS))
    assert warn_separated(table) == []
    head.weight[2] *= 1e4  # mood=x: logits of tens of thousands
    table = contributions(frame, head, pd.Series([5.0, 5.0, 5.0], index=CONCEPTS))
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        assert warn_separated(table) == ["mood=x"]
    assert "separate the classes" in caplog.text


def test_class_and_tag_rows_carry_the_probabilities_predict_reports(model, rng):
    """Audit 23c: a class panel of the contribution chart gave its logit only, which nothing
    tied to the probability predict reports; the table now has each unit's probability (the
    softmax over its class's every class, whatever units were asked for)."""
    from scipy.special import softmax
    head = LinearHead.from_model(model)
    c = rng.uniform(1, 10, (2, 3))
    frame = pd.DataFrame(c, columns=CONCEPTS, index=pd.Index(["a", "b"], name="clip"))
    base = pd.Series([5.0, 5.0, 5.0], index=CONCEPTS)
    one = contributions(frame, head, base, targets=["mood=y"])  # one class asked for
    expected = softmax(head.predict(c)[:, 2:4], axis=1)[:, 1]
    got = one.groupby("clip", sort=False)["probability"].first().to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert "probability" not in contributions(frame, head, base, targets=["t1"])
    from midlevel.plots.concepts import contribution_bars
    fig = contribution_bars(contributions(frame, head, base), "a", targets=["mood=y"])
    title = [ax.get_title() for ax in fig.axes if ax.get_visible()][0]
    assert title.startswith("mood=y: logit") and f"{expected[0]:.2f})" in title
    import matplotlib.pyplot as plt
    plt.close(fig)
