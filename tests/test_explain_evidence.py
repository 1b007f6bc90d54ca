"""What the data show, checked against known truth without audio or training: the calibrated
estimator's coverage on simulated held-out predictions, and the flags on simulated heads."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from midlevel import synth
from midlevel.explain.truth import compare_to_truth, synthetic_design
from midlevel.explain.evidence import calibrated_fit, choose_method, ratings_fit
from midlevel.explain.flags import flag_weights


def _held_out_world(seed: int, n: int = 160):
    """Concept ratings, CNN-like predictions (shrunk, offset, with errors correlated across
    concepts) and targets of ``n`` held-out clips; truth per rating point."""
    rng = np.random.default_rng(seed)
    weights, intercepts = synth.load_weights(None)
    true = synth.sample_concepts(n, rng)
    ratings = synth.concepts_to_ratings(true, rng, 0.5)
    targets = synth.concepts_to_targets(true, weights, intercepts, rng, 0.3)
    k = true.shape[1]
    mix = np.eye(k) + 0.4 * rng.normal(size=(k, k)) / np.sqrt(k)
    errors = rng.normal(size=(n, k)) @ mix.T
    pred = 2.0 + 0.75 * (1 + 9 * true) + 0.9 * errors
    names = list(weights.columns)
    ids = pd.Index([f"h{i}" for i in range(n)], name="clip")
    truth = pd.DataFrame([{"target": t, "concept": c, "true_weight": weights.loc[t, c] / 9}
                          for t in weights.index for c in names])
    return (pd.DataFrame(pred, index=ids, columns=names),
            pd.DataFrame(ratings, index=ids, columns=names),
            pd.DataFrame(targets, index=ids, columns=list(weights.index)), truth)


def test_calibrated_estimator_covers_the_truth():
    figures = []
    for seed in range(12):
        pred, rated, Y, truth = _held_out_world(300 + seed)
        table = calibrated_fit(pred, rated, Y, n_boot=300, seed=seed).table
        figures.append(compare_to_truth(table, truth))
    f = pd.DataFrame(figures)
    assert f["sign_agreement"].mean() >= 0.95
    assert f["coverage"].mean() >= 0.88
    assert (f["null_fpr"] * f["n_null"]).sum() / f["n_null"].sum() <= 0.10


def test_naive_fit_on_raw_predictions_covers_less():
    """The floor the calibrated estimator is measured against: OLS on the same held-out
    predictions treated as exact (measured: coverage 0.83 and 12 % false positives on zero
    weights against 0.94 and 7 % calibrated, 12 seeds)."""
    from midlevel.explain.statistics import fit_ols
    naive, calibrated = [], []
    for seed in range(6):
        pred, rated, Y, truth = _held_out_world(300 + seed)
        naive.append(compare_to_truth(fit_ols(pred, Y, summaries=False).table, truth))
        calibrated.append(compare_to_truth(calibrated_fit(pred, rated, Y, n_boot=300,
                                                          seed=seed).table, truth))
    naive, calibrated = pd.DataFrame(naive), pd.DataFrame(calibrated)
    assert naive["coverage"].mean() < calibrated["coverage"].mean() - 0.05


def test_ratings_are_used_when_clips_carry_both():
    X, Y, _ = synthetic_design(100, seed=1)
    assert choose_method(X, Y) == "ratings"
    X.iloc[:80, 0] = np.nan
    assert choose_method(X, Y) == "calibrated"


def _run_like_table(seed, leak=0.05):
    """A ratings fit with a simulated head: the truth on non-zero weights, ``leak`` per point on
    one zero-truth concept per target (what a compensating head does)."""
    X, Y, truth = synthetic_design(240, seed=seed)
    t = ratings_fit(X, Y).table.merge(truth, on=["target", "concept"])
    model = t["true_weight"].to_numpy().copy()
    zero = t.index[t["true_weight"] == 0]
    leaked = t.loc[zero].groupby("target").head(1).index
    model[leaked] = leak
    t["model_weight"] = model
    return flag_weights(t), set(leaked)


def test_flags_catch_leaked_weights_and_spare_faithful_ones():
    caught = alarms = n_leaked = n_faithful = 0
    for seed in range(5):
        t, leaked = _run_like_table(50 + seed)
        caught += sum(t.loc[i, "flag"] != "" for i in leaked)
        n_leaked += len(leaked)
        faithful = t[t["true_weight"] != 0]
        alarms += int((faithful["flag"] != "").sum())
        n_faithful += len(faithful)
    assert caught / n_leaked >= 0.9
    assert alarms / n_faithful <= 0.10
    t, leaked = _run_like_table(7)
    row = t.loc[sorted(leaked)[0]]
    assert row["flag"] == "unsupported" and "do not detect an association" in row["flag_reason"]
    assert "no effect" not in row["flag_reason"]


def test_flag_kinds():
    base = {"target": "y", "concept": "c", "std_scale": 1.0, "std_weight": 0.3}
    rows = pd.DataFrame([
        {**base, "model_weight": 0.2, "weight": 0.0, "ci_low": -0.05, "ci_high": 0.05},
        {**base, "model_weight": -0.3, "weight": 0.3, "ci_low": 0.2, "ci_high": 0.4},
        {**base, "model_weight": 0.9, "weight": 0.3, "ci_low": 0.2, "ci_high": 0.4},
        {**base, "model_weight": 0.43, "weight": 0.3, "ci_low": 0.2, "ci_high": 0.4},
        {**base, "model_weight": 0.3, "weight": 0.3, "ci_low": 0.2, "ci_high": 0.4},
        {**base, "model_weight": 0.06, "weight": 0.0, "ci_low": -0.05, "ci_high": 0.05},
        {**base, "model_weight": 0.04, "weight": 0.0, "ci_low": -0.01, "ci_high": 0.01},
    ])
    # the last: outside the interval but a negligible weight (below the 0.05 materiality)
    assert list(flag_weights(rows)["flag"]) == ["unsupported", "opposite sign",
                                               "compensation", "", "", "unsupported", ""]


def test_a_flag_on_a_class_or_tag_row_says_what_its_weight_changes():
    """Audit 10a D5: 'the model uses -1.02 per point of centroid' on a class row, whose
    number is the change in the log-odds of busy versus calm."""
    base = {"concept": "centroid", "std_scale": 1.0, "std_weight": 0.3, "model_weight": -1.02,
            "weight": 0.08, "ci_low": -0.05, "ci_high": 0.2}
    rows = pd.DataFrame([
        {**base, "target": "scene=busy", "versus": "calm", "method": "multinomial logit"},
        {**base, "target": "bright_tag", "versus": "", "method": "binomial GLM"},
        {**base, "target": "valence", "versus": "", "method": "OLS, HC3"}])
    reasons = list(flag_weights(rows)["flag_reason"])
    assert "uses -1.02 in the log-odds of busy versus calm per point of centroid" in reasons[0]
    assert "uses -1.02 in the log-odds of bright_tag per point of centroid" in reasons[1]
    assert "uses -1.02 per point of centroid" in reasons[2]


def test_leakage_summary_says_why_there_is_no_meaning_share():
    """Fewer clips than 2 (concepts + 1): 'not computed (6 clips ..., needs at least 16)', not
    'meaning share nan'; a share is printed with its plain R^2 and chance level."""
    from midlevel.explain.leakage import COLUMNS, _r2_on, leakage_summary
    rng = np.random.default_rng(0)
    assert np.isnan(_r2_on(rng.normal(size=(15, 7)), rng.normal(size=15)))
    assert np.isfinite(_r2_on(rng.normal(size=(16, 7)), rng.normal(size=16)))
    table = pd.DataFrame([
        {"split": "validation", "target": "valence", "n": 6, "r_predicted_concepts": 0.5,
         "r_true_concepts": 0.9, "meaning_share": np.nan},
        {"split": "test", "target": "valence", "n": 30, "r_predicted_concepts": 0.5,
         "r_true_concepts": 0.9, "meaning_share": 0.8, "meaning_share_raw": 0.84,
         "meaning_share_chance": 7 / 29}]).reindex(columns=COLUMNS)
    table.attrs["n_concepts"] = 7
    text = leakage_summary(table)
    assert ("meaning share: not computed (6 clips with every concept and a target rated, "
            "needs at least 16)") in text
    assert ("meaning share 0.80 (adjusted R^2; plain R^2 0.84, 0.24 by chance with 7 concepts "
            "on these clips)") in text and "nan" not in text


def test_leakage_summary_says_why_r_is_missing_from_two_clips():
    """Two clips give no r (+-1 by construction): the summary says so instead of dropping the
    r part without a word, and counts '1 clip', not '1 clips' (re-audit 7, N2)."""
    from midlevel.explain.leakage import COLUMNS, leakage_summary
    table = pd.DataFrame([
        {"split": "validation", "target": "valence", "n": 1},
        {"split": "test", "target": "valence", "n": 2, "r2_predicted_concepts": -5.0}]
    ).reindex(columns=COLUMNS)
    text = leakage_summary(table, n_concepts=3)
    assert "validation (1 clip);" in text and "test (2 clips);" in text
    assert "target r: not computed (2 clips with every concept and the target rated, needs " \
           "at least 3)" in text


def test_the_meaning_share_of_an_unrelated_output_is_about_zero():
    """Pure noise as the head's output (audit 7b, #1): the plain R^2 reaches its chance level
    k / (n - 1) (0.55 on 10 clips and 5 concepts), the adjusted one averages about 0; an output
    made of the ratings gets about 1."""
    from midlevel.explain.leakage import meaning_shares
    rng = np.random.default_rng(3)
    for n, k in ((12, 5), (20, 5), (36, 7)):
        draws = pd.DataFrame([meaning_shares(rng.normal(size=(n, k)), rng.normal(size=n))
                              for _ in range(2000)])
        assert abs(draws["meaning_share_raw"].mean() - k / (n - 1)) < 0.03
        assert (draws["meaning_share_chance"] == k / (n - 1)).all()
        assert abs(draws["meaning_share"].mean()) < 0.04
        x = rng.normal(size=(n, k))
        exact = meaning_shares(x, x @ rng.normal(size=k) + 1e-3 * rng.normal(size=n))
        assert exact["meaning_share"] > 0.99


def test_a_flag_grows_with_the_gap_whatever_the_sign():
    """Data interval -0.46 to -0.16 (standardized), a clear negative effect: every model weight
    more than 0.05 away from it is flagged, a weight of 0 (the strongest under-use) and a small
    weight of the other sign included; before, only the weights nearer the interval were
    (audit 7b, #3: -0.10 and -0.06 flagged, 0.0 to 0.049 not)."""
    rows = pd.DataFrame([{"target": "tender", "concept": "energy", "model_weight": m,
                          "weight": -0.31, "ci_low": -0.46, "ci_high": -0.16, "std_scale": 1.0}
                         for m in (-0.3, -0.12, -0.10, -0.06, 0.0, 0.04, 0.049, 0.06, 0.5)])
    flags = list(flag_weights(rows)["flag"])
    assert flags == ["", "", "compensation", "compensation", "compensation", "compensation",
                     "compensation", "opposite sign", "opposite sign"]
    gap = np.minimum(abs(rows["model_weight"] + 0.46), abs(rows["model_weight"] + 0.16))
    flagged = np.array([f != "" for f in flags])
    assert (flagged == ((gap >= 0.05) & ((rows["model_weight"] > -0.16)
                                         | (rows["model_weight"] < -0.46)))).all()


def test_a_class_target_with_two_classes_present_is_a_logit_on_both_paths():
    """Re-audit 8: a class target declaring 3 classes with 2 present was labelled
    "calibrated multinomial logit" while the ratings fit labels it "binomial GLM"; both
    fit a logit of the two present classes, relative to the same ``versus`` class."""
    pred, rated, Y, _ = _held_out_world(7)
    codes = (Y.iloc[:, 0] > Y.iloc[:, 0].median()).astype(float) + 1.0  # classes 1, 2 of 0-2
    Yc = pd.DataFrame({"kit": codes}, index=Y.index)
    classes = {"kit": ["none", "low", "high"]}
    cal = calibrated_fit(pred, rated, Yc, n_boot=60, seed=0, class_targets=classes).table
    rat = ratings_fit(rated, Yc, class_targets=classes).table
    assert set(cal["method"]) == {"calibrated logit, bootstrap"}
    assert set(rat["method"]) == {"binomial GLM"}
    assert set(cal["target"]) == set(rat["target"]) == {"kit=high"}
    assert set(cal["versus"]) == set(rat["versus"]) == {"low"}


# ------------------------------------------------------------- concepts the data cannot split

CLASSES = {"scene": ["calm", "bright", "busy"]}


def _dependent_world(seed: int = 1, n: int = 300):
    """Ratings where ``loud2`` repeats ``loudness`` (one column read under two names), a
    rating target and a 3-class target from a true multinomial logit (truth: loudness 0.8,
    centroid -0.6 and 0 for low; bright vs calm 1.5 per centroid point, busy 1.5 per low)."""
    rng = np.random.default_rng(seed)
    loud, cen, low = (rng.normal(4, 1, n) for _ in range(3))
    X = pd.DataFrame({"loudness": loud, "loud2": loud, "centroid": cen, "low": low})
    logits = np.c_[np.zeros(n), 1.5 * (cen - 4), 1.5 * (low - 4)]
    Y = pd.DataFrame({"mood": 2 + 0.8 * loud - 0.6 * cen + rng.normal(0, 0.3, n),
                      "scene": np.argmax(logits + rng.gumbel(size=(n, 3)), 1).astype(float)})
    return X, Y, rng


def _estimates(table, concepts):
    rows = table[table["concept"].isin(concepts)].set_index(["target", "concept"])
    return rows[["weight", "se", "ci_low", "ci_high", "p_value"]].sort_index()


def test_concepts_the_data_cannot_split_get_no_estimate_and_the_others_are_unchanged():
    """Audit 10a D1: a column read under two names split its effect in half, each half
    'significant' with an interval excluding the truth, and the multinomial fit's singular
    Hessian made the other concepts' intervals 2-5x too narrow; no data_note."""
    import warnings
    X, Y, _ = _dependent_world()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # statsmodels' SingularMatrixWarning was printed
        result = ratings_fit(X, Y, class_targets=CLASSES)
    table = result.table
    # the statsmodels summaries are the reduced fit's, and say so (re-audit 10, #3)
    assert len(result.summaries) == 2 and all(text.startswith(
        "NOTE: linearly dependent concepts; this fit leaves out loud2, so the weight of "
        "loudness below is a shared effect, not its own") for text in result.summaries.values())
    repeated = table[table["concept"].isin(["loudness", "loud2"])]
    assert len(repeated) == 2 * 3 and repeated["weight"].isna().all()
    assert repeated["p_value"].isna().all() and not repeated["significant"].any()
    assert repeated["data_note"].str.contains(r"linearly dependent concepts \(loudness, "
                                              r"loud2; e.g. one column read under two").all()
    # the concepts the data do identify: exactly the fit without the repeated column
    alone = ratings_fit(X.drop(columns="loud2"), Y, class_targets=CLASSES).table
    pd.testing.assert_frame_equal(_estimates(table, ["centroid", "low"]),
                                  _estimates(alone, ["centroid", "low"]), rtol=1e-8)
    assert (table.loc[~table["concept"].isin(["loudness", "loud2"]), "data_note"] == "").all()


def test_tags_that_sum_to_one_get_no_estimate_as_concepts():
    """Audit 10a D1(b): one-hot tags as concepts are collinear with the intercept; their
    per-tag weights were one arbitrary split, two zero-truth tags called significant."""
    rng = np.random.default_rng(2)
    n = 240
    register = rng.integers(0, 3, n)
    rating = rng.normal(4, 1, n)
    X = pd.DataFrame(np.eye(3)[register], columns=["register=low", "register=mid",
                                                   "register=high"]).assign(rating=rating)
    Y = pd.DataFrame({"t": 2 + 1.0 * (register == 2) + 0.5 * rating + rng.normal(0, 0.3, n)})
    table = ratings_fit(X, Y).table.set_index("concept")
    tags = ["register=low", "register=mid", "register=high"]
    assert table.loc[tags, "weight"].isna().all()
    assert table.loc[tags, "data_note"].str.contains("and a constant").all()
    assert table.loc["rating", "data_note"] == ""
    assert abs(table.loc["rating", "weight"] - 0.5) < 0.05


def test_the_calibrated_estimator_marks_repeated_concepts_too():
    X, Y, rng = _dependent_world(seed=3)
    pred = X + rng.normal(0, 0.3, X.shape)  # two output units: their predictions differ
    table = calibrated_fit(pred, X, Y, n_boot=200, class_targets=CLASSES).table
    repeated = table["concept"].isin(["loudness", "loud2"])
    assert table.loc[repeated, ["weight", "ci_low", "p_value"]].isna().all().all()
    assert table.loc[repeated, "data_note"].str.startswith("linearly dependent").all()
    kept = table[~repeated].set_index(["target", "concept"])
    assert np.isfinite(kept[["weight", "ci_low", "ci_high", "p_value"]]).all().all()
    assert kept.loc[("mood", "centroid"), "ci_low"] < -0.6 < kept.loc[("mood", "centroid"),
                                                                      "ci_high"]


def test_a_concept_constant_on_the_clips_gets_no_estimate():
    X, Y, _ = _dependent_world(seed=4)
    X = X.drop(columns="loud2").assign(loudness=5.0)
    table = ratings_fit(X, Y[["mood"]]).table.set_index("concept")
    assert np.isnan(table.loc["loudness", "weight"])
    assert "loudness is constant on the fit's clips" in table.loc["loudness", "data_note"]


def test_the_r2_line_says_which_values_are_pseudo_r2():
    """Audit 10a D5: a class target's McFadden pseudo-R^2 was printed as R^2."""
    X, Y, _ = _dependent_world(seed=5)
    lines = ratings_fit(X.drop(columns="loud2"), Y, class_targets=CLASSES).summary_lines()
    line = next(ln for ln in lines if "R^2 per target" in ln)
    assert re.search(r"R\^2 per target: mood 0\.\d\d, scene=bright 0\.\d\d \(pseudo\), "
                     r"scene=busy 0\.\d\d \(pseudo\);", line)
    assert line.endswith("(pseudo): McFadden's pseudo-R^2 of a logistic fit")


def test_the_bootstrap_fit_marks_repeated_concepts_too():
    from midlevel.explain.bootstrap import bootstrap_ols
    X, Y, _ = _dependent_world(seed=6)
    table = bootstrap_ols(X, Y[["mood"]], n_boot=200).table.set_index("concept")
    assert table.loc[["loudness", "loud2"], "weight"].isna().all()
    assert table.loc[["loudness", "loud2"], "data_note"].str.startswith("linearly").all()
    assert table.loc["centroid", "ci_low"] < -0.6 < table.loc["centroid", "ci_high"]


def _units_world(n: int, k: int, seed: int = 0):
    """``n`` held-out clips of ``k`` predicted and rated concepts and one target."""
    rng = np.random.default_rng(seed)
    rated = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"c{j}" for j in range(k)])
    pred = rated + rng.normal(scale=0.5, size=(n, k))
    Y = pd.DataFrame({"t": rated.to_numpy() @ np.linspace(1, -1, k) + rng.normal(size=n)})
    return pred, rated, Y


def test_bootstrap_intervals_do_not_depend_on_the_concepts_units():
    """Audit 12b #3: a resample with fewer distinct clips than coefficients got numpy's
    minimum-norm fit, which depends on the units: intervals and p-values moved when a
    concept was rescaled. Now such a resample is drawn again (bootstrap_ols) or not counted
    (calibrated_fit), and the fits are solved on scaled columns."""
    from midlevel.explain.bootstrap import bootstrap_ols
    pred, rated, Y = _units_world(9, 4)  # about 1 resample in 12 has under 5 distinct clips
    units = np.array([1e4, 1.0, 1e-4, 3.0])
    plain = bootstrap_ols(rated, Y, n_boot=400, seed=1).table.set_index("concept")
    scaled = bootstrap_ols(rated * units, Y, n_boot=400, seed=1).table.set_index("concept")
    names = list(rated.columns)
    for column in ("weight", "ci_low", "ci_high", "se"):
        np.testing.assert_allclose(scaled.loc[names, column] * units, plain.loc[names, column],
                                   rtol=1e-7)
    np.testing.assert_array_equal(scaled.loc[names, "p_value"], plain.loc[names, "p_value"])
    pred, rated, Y = _units_world(24, 4)
    plain = calibrated_fit(pred, rated, Y, n_boot=300, seed=1).table.set_index("concept")
    scaled = calibrated_fit(pred * units, rated * units, Y, n_boot=300,
                            seed=1).table.set_index("concept")
    for column in ("weight", "ci_low", "ci_high"):
        np.testing.assert_allclose(scaled.loc[names, column] * units, plain.loc[names, column],
                                   rtol=1e-6)
    np.testing.assert_array_equal(scaled.loc[names, "p_value"], plain.loc[names, "p_value"])


def test_too_few_distinct_clips_to_bootstrap_is_said():
    """10 clips and 8 coefficients: most resamples cannot fit them; an error says so instead
    of intervals from minimum-norm fits."""
    import pytest

    from midlevel.errors import ExplainError
    from midlevel.explain.bootstrap import bootstrap_ols
    pred, rated, Y = _units_world(10, 7)
    with pytest.raises(ExplainError, match="too few clips to bootstrap"):
        bootstrap_ols(rated, Y, n_boot=200)
    with pytest.raises(ExplainError, match="resamples could be fitted"):
        calibrated_fit(pred, rated, Y, n_boot=200)


def test_a_warning_statsmodels_gives_while_summarizing_stays_with_its_fit():
    """Audit 12b #4: "covariance of constraints does not have full rank" was printed on the
    terminal naming no target; now it is written under the fit's summary."""
    import warnings

    import statsmodels.api as sm

    from midlevel.explain.separation import fit_summary
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    x[:, 2] = 2 * x[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fit's own warning: not the summary's
        res = sm.OLS(x[:, 0] + rng.normal(size=30), sm.add_constant(x)).fit(cov_type="HC3")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = fit_summary(res, 0.05, "")
    assert "statsmodels, summarizing this fit: covariance of constraints" in text


def _partial_design(rng, n=120, k=3, both=16):
    """Concept ratings on clips 0..n/2+both/2, targets on n/2-both/2..n: ``both`` clips carry
    both."""
    X = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"c{i}" for i in range(k)])
    Y = pd.DataFrame({"valence": X.to_numpy() @ np.arange(1, k + 1) + rng.normal(size=n)})
    lo, hi = n // 2 - both // 2, n // 2 + both // 2
    X.iloc[hi:] = np.nan
    Y.iloc[:lo] = np.nan
    return X, Y


def test_the_ratings_fit_counts_the_clips_it_fits_on(rng):
    """Audit 13a D1: the description said '120 clips' (clips with every concept rated) for a
    fit on the 16 that also carry the target; now each target's count, a range when they
    differ."""
    X, Y = _partial_design(rng)
    result = ratings_fit(X, Y)
    assert result.table["n"].iloc[0] == 16
    assert result.description().endswith(", 16 clips")
    Y["energy"] = Y["valence"]
    Y.loc[Y.index[52:58], "energy"] = np.nan   # 6 of the 16 clips rated on both
    text = ratings_fit(X, Y).description()
    assert text.endswith(", 10-16 clips with every concept and the target (per target: "
                         "column n)")


def test_auto_says_why_and_takes_the_estimator_that_can_answer(rng):
    """Audit 13a D5: --data auto chose without a word, and chose the calibrated estimator
    where too few held-out clips carry every concept (an error) while the ratings could
    answer; and with no clip rated on both, --data ratings failed tersely (D8)."""
    from midlevel.errors import ExplainError
    from midlevel.explain.evidence import auto_method
    X, Y = _partial_design(rng)
    held = np.zeros(len(X), bool)
    held[30:40] = held[70:80] = True   # 10 held-out clips with every concept, 10 with the target
    method, why = auto_method(X, Y, held)
    assert method == "calibrated" and "only 16 clips carry every concept and 'valence'" in why
    held[:] = False
    held[-40:] = True                  # none of them has every concept
    method, why = auto_method(X, Y, held)
    assert method == "ratings" and "0 have them" in why and "wide" in why
    X2, Y2 = _partial_design(rng, both=0)
    with pytest.raises(ExplainError, match="cannot answer what the concepts do"):
        auto_method(X2, Y2, held)
    with pytest.raises(ExplainError, match=r"0 clips carry every concept and the target "
                                           r"\(60 have the target, 60 every concept\).*"
                                           r"--data calibrated"):
        ratings_fit(X2, Y2)
    # re-audit 13 N1: held-out clips rated on every concept but on no target: stage 2 of the
    # calibration cannot fit ('rank-deficient least squares: ... 0 distinct rows')
    X4, Y4 = _partial_design(rng)
    held = np.zeros(len(X4), bool)
    held[:40] = True
    Y4.iloc[:40] = np.nan
    method, why = auto_method(X4, Y4, held)
    assert method == "ratings" and "with each rating target, and 0 have 'valence'" in why
    # re-audit 13 R2: a class or tag target is fitted by logistic regression in stage 2,
    # without the least-squares need: few held-out labels do not rule the calibration out
    Y5 = Y.assign(mood=np.where(np.arange(len(Y)) % 2, 1.0, 0.0))
    Y5.loc[70:, "mood"] = np.nan
    Y5.loc[33:39, "mood"] = np.nan             # 3 held-out clips labelled
    held[:] = False
    held[30:40] = held[70:80] = True
    assert auto_method(X, Y5, held, logistic=["mood"])[0] == "calibrated"
    assert auto_method(X, Y5, held)[0] == "ratings"
    X3 = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    method, why = auto_method(X3, pd.DataFrame({"t": X3["a"] + rng.normal(size=60)}))
    assert method == "ratings" and why.startswith("--data auto chose the ratings: 60 clips")


def test_leakage_summary_counts_tag_accuracy_by_its_own_clips():
    """Audit 13a D6, D7: a tag labelled on 4 clips was averaged under the rating targets'
    '20 clips'; a tag without a label was dropped without a word (and numpy warned of an
    empty mean); 'N clips with every concept rated' counted clips with a target too."""
    from midlevel.explain.leakage import COLUMNS, leakage_summary
    table = pd.DataFrame([
        {"split": "validation", "target": "valence", "n": 20, "r_predicted_concepts": 0.5,
         "r_true_concepts": 0.7},
        {"split": "validation", "target": "mood=sad", "n": 4,
         "accuracy_predicted_concepts": 0.5, "accuracy_true_concepts": 0.75},
        {"split": "validation", "target": "mood=happy", "n": 0}]).reindex(columns=COLUMNS)
    table.attrs.update(n_concepts=3, labelled=["mood=sad", "mood=happy"])
    text = leakage_summary(table)
    assert text.startswith("validation (20 clips); target r 0.50")
    assert "accuracy 0.50 / 0.75 (mean of 1 class or tag target, on 4 clips each)" in text
    assert "no accuracy for mood=happy" in text


def test_the_meaning_share_counts_the_weights_the_clips_tell_apart():
    """Audit 15c: a concept constant on the clips (a tag absent from all of them) adds no
    weight to the fit; counted as one, an unrelated output's share averaged -0.078 and its
    chance level read 0.316 where the plain R^2 averages 0.263."""
    from midlevel.explain.leakage import meaning_shares
    rng = np.random.default_rng(0)
    shares, raws = [], []
    for _ in range(2000):
        x = np.hstack([rng.normal(size=(20, 5)), np.zeros((20, 1))])   # rank 5 of 6
        s = meaning_shares(x, rng.normal(size=20))
        shares.append(s["meaning_share"])
        raws.append(s["meaning_share_raw"])
    assert s["meaning_share_chance"] == pytest.approx(5 / 19)
    assert np.mean(raws) == pytest.approx(5 / 19, abs=0.01)
    assert abs(np.mean(shares)) < 0.01
