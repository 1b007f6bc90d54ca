"""What the data's answer cannot show by itself (audit 14b), checked on simulated ratings
whose truth is known: correlated concepts, floors and ceilings, curved relations, the
number of tests, and the calibrated estimator's spread."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from midlevel.explain import caveats, evidence
from midlevel.explain.truth import synthetic_design


def _world(n, rng, *, r=0.0, curve=0.0, ceiling=False):
    """Three concepts on a 1-7 scale (the first two correlated ``r``), two targets linear in
    them; ``curve`` adds a U-shape of the third concept to the first target."""
    z = rng.standard_normal((n, 3))
    z[:, 1] = r * z[:, 0] + np.sqrt(1 - r ** 2) * z[:, 1]
    c = 4 + 1.2 * z
    y1 = 5 + 0.3 * (c[:, 0] - 4) - 0.2 * (c[:, 1] - 4) + curve * (c[:, 2] - 4) ** 2 \
        + rng.standard_normal(n)
    y2 = 5 + 0.25 * (c[:, 2] - 4) + rng.standard_normal(n)
    if ceiling:
        c = np.clip(np.round(c + 1.5), 1, 7)
    X = pd.DataFrame(c, columns=["melodiousness", "dissonance", "articulation"])
    return X, pd.DataFrame({"valence": y1, "energy": y2})


def test_correlated_concepts_are_named_with_their_vif(rng):
    X, _ = _world(400, rng, r=0.9)
    v = caveats.vif(X)
    assert v["melodiousness"] == pytest.approx(1 / (1 - 0.81), rel=0.25)
    assert v["articulation"] < 1.2
    line, = caveats.correlated_concepts(X)
    assert "melodiousness" in line and "dissonance" in line and "articulation" not in line
    assert not caveats.correlated_concepts(_world(400, rng)[0])
    # on fewer than 10 clips per parameter chance inflates the VIF: no line (re-audit 14)
    assert not caveats.correlated_concepts(X.iloc[:39])


def test_the_caveats_do_not_fail_on_a_tag_present_on_one_clip(rng):
    """Re-audit 14: a clip of leverage 1 (a tag on one clip of 400) made HC3 raise, and
    coefficients ended in a traceback."""
    X, Y = _world(400, rng)
    X["rare_tag"] = 0.0
    X.iloc[0, X.columns.get_loc("rare_tag")] = 1.0
    result = evidence.ratings_fit(X, Y)
    assert len(result.table) == 8
    few = caveats.nonlinearity(X.iloc[:60], Y.iloc[:60], ["valence", "energy"])
    assert few[0].startswith("linearity not checked for 2 targets")


def test_a_ceiling_of_the_declared_scale_is_named_and_a_highest_value_is_not(rng):
    """Ratings piled at the top of their declared 1-7 scale are named; the highest value
    seen, when it is not an end of the scale (a 6, or a rounded average), is not (re-audit
    14: judged on the values seen, 15-99 % of 40-clip tables called an inner value a
    ceiling); a column without a declared scale is not judged."""
    scales = {c: (1.0, 7.0) for c in ("melodiousness", "dissonance", "articulation")}
    X, Y = _world(360, rng, ceiling=True)
    line, = caveats.scale_ends(X, Y, ["valence", "energy"], scales)
    assert "at the top of its scale (7)" in line and "melodiousness" in line
    assert not caveats.scale_ends(X, Y, ["valence", "energy"], None)
    inner = np.clip(np.round(_world(40, rng)[0]), 2, 6)      # 2 to 6 on a 1-7 scale
    assert not caveats.scale_ends(inner, Y.iloc[:40], [], scales)
    assert not caveats.scale_ends(*_world(360, rng), ["valence", "energy"], scales)


def test_the_linearity_check_finds_a_u_shape_and_rarely_a_straight_line():
    """Power and size over 60 worlds each: a U-shape explaining about 15 % of the target's
    variance is found nearly always at 360 clips; linear worlds are called curved at about
    the Holm-adjusted level (family of 2 targets, alpha 0.05), not more."""
    rng = np.random.default_rng(14)
    found = [bool(caveats.nonlinearity(*_world(360, rng, curve=0.3), ["valence", "energy"])[0]
                  .startswith("not linear: valence")) for _ in range(60)]
    false = [caveats.nonlinearity(*_world(360, rng), ["valence", "energy"])[0]
             .startswith("not linear") for _ in range(60)]
    assert np.mean(found) >= 0.9
    assert np.mean(false) <= 0.15


def test_the_summary_says_what_the_weights_are_and_what_chance_alone_gives():
    X, Y, _ = synthetic_design(200, seed=1)
    lines = "\n".join(evidence.ratings_fit(X, Y).summary_lines())
    assert "associations significant" in lines and "effects significant" not in lines
    assert "linear associations among these clips" in lines and "not causal effects" in lines
    assert "about 2.8 would be significant by chance" in lines
    assert "by chance" not in "\n".join(
        evidence.ratings_fit(X, Y, correction="holm").summary_lines())
    text = evidence.ratings_fit(X, Y).summary_text()
    assert "linear associations among these clips" in text


def test_the_calibrated_estimators_se_is_a_robust_spread(rng):
    """Audit 14b #6: on 20-40 calibration clips the draws are heavy-tailed and their sd was
    3.5-5.6x the weight's own spread. The se is IQR / 1.349: the sd of normal draws, and
    unmoved by a few wild ones."""
    normal = rng.standard_normal((20000, 3))
    assert evidence.robust_spread(normal) == pytest.approx(np.ones(3), rel=0.03)
    wild = normal.copy()
    wild[:200] *= 50
    assert evidence.robust_spread(wild) == pytest.approx(np.ones(3), rel=0.05)
    assert wild.std(axis=0).min() > 4


def test_a_calibrated_table_states_its_assumption_and_few_clips(rng):
    X, Y, _ = synthetic_design(60, seed=2)
    pred = X + rng.normal(0, 0.5, X.shape)
    result = evidence.calibrated_fit(pred, X, Y.iloc[:, :2], n_boot=60, seed=0)
    lines = "\n".join(result.summary_lines())
    assert "non-differential error" in lines
    assert "only 60 clips calibrate 7 concepts" in lines


def test_a_bootstrap_rows_stat_says_what_its_p_value_says():
    """Re-audit 14: stat = weight / robust se read 'significant' on rows whose percentile
    interval held 0. stat is the z of the bootstrap p-value: |stat| > 1.96 exactly when
    p < 0.05."""
    X, Y, _ = synthetic_design(40, seed=4)
    pred = X + np.random.default_rng(4).normal(0, 0.5, X.shape)
    t = evidence.calibrated_fit(pred, X, Y.iloc[:, :3], n_boot=200, seed=0).table
    t = t[np.isfinite(t["p_value"])]
    assert len(t)
    np.testing.assert_array_equal(np.abs(t["stat"]) > 1.96, t["p_value"] < 0.05)
    assert (np.sign(t["stat"]) == np.sign(t["weight"])).all()


def test_a_target_the_linearity_check_cannot_score_is_named(rng, monkeypatch):
    """Second re-audit 14: a target whose HC3 errors are undefined was dropped from the
    check without a word (a table could have no linearity line at all)."""
    X, Y = _world(400, rng)
    monkeypatch.setattr(caveats, "_hc3_wald", lambda *a: float("nan"))
    line, = caveats.nonlinearity(X, Y, ["valence", "energy"])
    assert line.startswith("linearity not checked for valence, energy: its robust (HC3) "
                           "errors are undefined")


def test_a_target_whose_squares_repeat_the_concepts_is_named(rng):
    """A concept with many values overall but two on one target's clips: that target's design
    with the squares is rank-deficient, and it was skipped without a line."""
    X, Y = _world(800, rng)
    Y = Y[["valence", "energy"]].copy()
    c = X.columns[0]
    few = Y.index[:400]
    Y.loc[Y.index[400:], "energy"] = np.nan          # energy rated on the first 400 clips
    X.loc[few, c] = np.where(np.arange(400) % 2, 2.0, 8.0)  # where the concept has 2 values
    lines = caveats.nonlinearity(X, Y, ["valence", "energy"])
    assert any(line.startswith("linearity not checked for energy: on its clips the concepts' "
                               "squares repeat") for line in lines)


def test_the_hc3_wald_test_never_raises_on_a_clip_of_leverage_one(rng):
    """Re-audit 14: statsmodels raised ValueError on HC3 covariances a clip of leverage 1
    makes NaN, and coefficients ended in a traceback. The test gives a number or NaN."""
    x = rng.standard_normal((40, 3))
    tag = np.zeros(40)
    tag[0] = 1.0
    design = np.column_stack([np.ones(40), x, tag, x ** 2])
    y = x @ [0.3, -0.2, 0.1] + rng.standard_normal(40)
    for use in (slice(5, 8), slice(4, 5)):
        p = caveats._hc3_wald(y, design, use)
        assert isinstance(p, float) and (np.isnan(p) or 0 <= p <= 1)


def test_flag_reasons_name_a_biased_estimate_only_for_correlated_concepts(rng):
    """A flag on a concept the VIF line names says the data's estimate may be the biased
    one (rater noise in correlated concepts); on others it does not (the demo printed the
    clause on every flag, with no VIF line above it)."""
    from midlevel.explain.flags import flag_weights
    X, Y = _world(400, rng, r=0.9)
    table = evidence.ratings_fit(X, Y).table.copy()
    assert set(table.attrs["correlated"]) == {"melodiousness", "dissonance"}
    table["model_weight"] = table["weight"] + 5 * (table["ci_high"] - table["ci_low"])
    table["model_std_weight"] = table["model_weight"] * table["std_scale"]
    reasons = flag_weights(table).set_index("concept")["flag_reason"]
    assert all("rater noise may have biased" in r for r in reasons[["melodiousness",
                                                                     "dissonance"]])
    assert all(r and "rater noise" not in r for r in reasons[["articulation"]])


def test_a_target_whose_concepts_are_dependent_is_named_for_that(rng):
    """Re-audit 15: two exclusive tags (their sum constant) made the design rank-deficient
    before any square was added; the line blamed the squares."""
    X, Y = _world(800, rng)
    Y = Y[["valence"]].copy()
    tag = (np.arange(800) % 2).astype(float)
    X = X.assign(t1=tag, t2=1 - tag)
    lines = caveats.nonlinearity(X, Y, ["valence"])
    assert any(line.startswith("linearity not checked for valence: on its clips the concepts "
                               "are linearly dependent") for line in lines)
