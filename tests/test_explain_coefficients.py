"""Coefficient statistics: against a direct statsmodels fit, and against the known truth of the
synthetic concept world (no audio, no training: the statistics path on concept values)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from midlevel.errors import MidlevelError
from midlevel.explain.bootstrap import bootstrap_ols
from midlevel.explain.statistics import adjust_pvalues, fit_ols
from midlevel.explain.truth import compare_to_truth, synthetic_design


def test_fit_ols_matches_direct_statsmodels():
    X, Y, _ = synthetic_design(120, seed=3)
    result = fit_ols(X, Y, alpha=0.1)
    target = Y.columns[2]
    direct = sm.OLS(Y[target].to_numpy(), sm.add_constant(X.to_numpy())).fit()
    rows = result.table[result.table["target"] == target].set_index("concept").loc[X.columns]
    np.testing.assert_allclose(rows["weight"], direct.params[1:], rtol=1e-10)
    np.testing.assert_allclose(rows["se"], direct.bse[1:], rtol=1e-10)
    np.testing.assert_allclose(rows["p_value"], direct.pvalues[1:], rtol=1e-8)
    ci = direct.conf_int(0.1)[1:]
    np.testing.assert_allclose(rows[["ci_low", "ci_high"]].to_numpy(), ci, rtol=1e-10)
    assert np.allclose(rows["r2"], direct.rsquared)
    # standardized weight = weight * sd(x) / sd(y)
    std = direct.params[1:] * X.std(ddof=1).to_numpy() / Y[target].std(ddof=1)
    np.testing.assert_allclose(rows["std_weight"], std, rtol=1e-10)
    assert set(result.table.columns) >= {"target", "concept", "weight", "std_weight", "se",
                                         "ci_low", "ci_high", "p_value", "p_adjusted",
                                         "significant", "method", "r2"}
    assert len(result.table) == X.shape[1] * Y.shape[1]
    assert f"OLS: {target}" in result.summaries
    assert "coef" in result.summaries[f"OLS: {target}"]


def test_correction_matches_statsmodels_and_is_never_smaller():
    X, Y, _ = synthetic_design(60, seed=4)
    raw = fit_ols(X, Y, summaries=False).table
    for method in ("bonferroni", "holm", "fdr_bh"):
        t = fit_ols(X, Y, correction=method, summaries=False).table
        np.testing.assert_allclose(t["p_adjusted"], multipletests(raw["p_value"], method=method)[1])
        assert (t["p_adjusted"] >= t["p_value"] - 1e-12).all()
        assert t["significant"].sum() <= raw["significant"].sum()
    with pytest.raises(MidlevelError, match="unknown correction"):
        adjust_pvalues(np.array([0.1]), "sidak-ish")


def test_missing_values_are_left_out_per_target():
    X, Y, _ = synthetic_design(80, seed=5)
    Y.iloc[:10, 0] = np.nan
    t = fit_ols(X, Y, summaries=False).table
    n = t.groupby("target")["n"].first()
    assert n[Y.columns[0]] == 70 and n[Y.columns[1]] == 80


def test_binary_class_target_uses_glm():
    X, Y, _ = synthetic_design(300, seed=6)
    y = (Y.iloc[:, 0] > Y.iloc[:, 0].median()).astype(float).rename("mood")
    result = fit_ols(X, y.to_frame(), class_targets={"mood": ["low", "high"]})
    direct = sm.GLM(y.to_numpy(), sm.add_constant(X.to_numpy()),
                    family=sm.families.Binomial()).fit()
    t = result.table.set_index("concept").loc[X.columns]
    assert (t["target"] == "mood=high").all()
    assert t["method"].iloc[0] == "binomial GLM"
    np.testing.assert_allclose(t["weight"], direct.params[1:], rtol=1e-6)
    np.testing.assert_allclose(t["se"], direct.bse[1:], rtol=1e-6)


def test_multiclass_target_uses_multinomial_logit():
    X, Y, _ = synthetic_design(300, seed=7)
    y = pd.cut(Y.iloc[:, 0], 3, labels=False).astype(float).rename("level")
    result = fit_ols(X, y.to_frame(), class_targets={"level": ["a", "b", "c"]}, summaries=False)
    t = result.table
    assert sorted(t["target"].unique()) == ["level=b", "level=c"]
    assert t[["weight", "se", "ci_low", "ci_high", "p_value"]].notna().all().all()
    assert (t["ci_low"] <= t["weight"]).all() and (t["weight"] <= t["ci_high"]).all()


def test_bootstrap_agrees_with_ols_intervals():
    X, Y, _ = synthetic_design(200, seed=8)
    ols = fit_ols(X, Y, summaries=False).table
    boot = bootstrap_ols(X, Y, n_boot=300, seed=0).table
    np.testing.assert_allclose(boot["weight"], ols["weight"], rtol=1e-8)
    ratio = boot["se"] / ols["se"]
    assert 0.6 < ratio.median() < 1.6
    assert (boot["method"] == "OLS, bootstrap").all()
    assert boot.attrs["method"].startswith("bootstrap over clips")


@pytest.mark.parametrize("concepts", ["true", "ratings"])
def test_ground_truth_recovery(concepts):
    """Recovered weights agree with the synthetic world's true map over several seeds."""
    figures = []
    for seed in range(6):
        X, Y, truth = synthetic_design(200, seed=100 + seed, concepts=concepts)
        table = fit_ols(X, Y, summaries=False).table
        figures.append(compare_to_truth(table, truth, X=X, Y=Y))
    f = pd.DataFrame(figures)
    assert f["sign_agreement"].min() == 1.0
    assert f["correlation"].min() > 0.98
    # 6 seeds x 56 weights: the 95 % intervals cover the truth close to nominally (ratings are
    # noisy regressors, so slightly below 95 % there: errors-in-variables attenuation)
    assert 0.88 <= f["coverage"].mean() <= 0.99
    # 6 seeds x 12 zero weights: called significant at about the nominal 5 %, not more
    n_null = f["n_null"].sum()
    false_pos = (f["null_fpr"] * f["n_null"]).sum()
    assert false_pos / n_null <= 0.15


def test_null_false_positive_rate_is_nominal_with_pure_noise(rng):
    """With targets independent of every concept, about alpha of the weights are significant;
    Bonferroni keeps the family-wise rate low."""
    hits, hits_bonf, n = 0, 0, 0
    for seed in range(10):
        X, _, _ = synthetic_design(100, seed=200 + seed)
        Y = pd.DataFrame(rng.normal(size=(100, 4)), index=X.index, columns=list("abcd"))
        t = fit_ols(X, Y, summaries=False).table
        hits += int(t["significant"].sum())
        hits_bonf += int(fit_ols(X, Y, correction="bonferroni", summaries=False).table[
            "significant"].any())
        n += len(t)
    assert hits / n < 0.1
    assert hits_bonf <= 3


@pytest.mark.parametrize("n_classes", [2, 3])
def test_class_head_is_the_unpenalized_glm(n_classes, rng):
    """The closed-form class head has no hidden penalty: its logit differences are the
    maximum-likelihood GLM / multinomial logit of the same design."""
    from midlevel.training.head import fit_head
    X = rng.normal(size=(400, 3))
    logits = np.c_[np.zeros(400), X @ np.array([[1.0, -0.5], [0.5, 0.8], [-1.0, 0.2]])[:, :n_classes - 1]]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    codes = np.array([rng.choice(n_classes, p=row) for row in p]).astype(float)
    classes = ["a", "b", "c"][:n_classes]
    w, b = fit_head(X, codes[:, None], [{"name": "y", "kind": "class", "classes": classes}])
    if n_classes == 2:
        ref = sm.GLM(codes, sm.add_constant(X), family=sm.families.Binomial()).fit().params
        np.testing.assert_allclose(w[1] - w[0], ref[1:], atol=1e-4)
        assert b[1] - b[0] == pytest.approx(ref[0], abs=1e-4)
    else:
        ref = np.asarray(sm.MNLogit(codes, sm.add_constant(X)).fit(disp=False).params)
        for k in (1, 2):
            np.testing.assert_allclose(w[k] - w[0], ref[1:, k - 1], atol=1e-4)


# ------------------------------------------------------------ alpha, arguments, separation


def test_flag_reasons_name_the_interval_level_of_alpha():
    """The reason names the level the interval has (1 - alpha), not always 95 %."""
    from midlevel.explain.flags import flag_weights
    X, Y, _ = synthetic_design(120, seed=3)
    t = fit_ols(X, Y.iloc[:, :2], alpha=0.5, summaries=False).table
    t["model_weight"] = t["ci_high"] + 1.0          # every model weight far outside
    flagged = flag_weights(t, materiality=0)         # alpha from the table's attrs
    assert (flagged["flag"] != "").all()
    assert flagged["flag_reason"].str.contains("50 % CI").all()
    assert not flagged["flag_reason"].str.contains("95 %").any()
    assert flag_weights(t, materiality=0, alpha=0.1)["flag_reason"].str.contains("90 % CI").all()


@pytest.mark.parametrize("kwargs, option", [
    ({"alpha": 1.5}, "--alpha"), ({"alpha": 0}, "--alpha"), ({"alpha": float("nan")}, "--alpha"),
    ({"materiality": -0.1}, "--materiality"), ({"n_boot": 0}, "--bootstrap"),
])
def test_run_coefficients_refuses_out_of_range_options_first(kwargs, option):
    """Checked in the library, before the run is even loaded: one clean error naming the
    option (not ci_low > ci_high and every effect 'significant', or infinite intervals)."""
    from midlevel.errors import ArgumentError
    from midlevel.explain.coefficients import run_coefficients
    with pytest.raises(ArgumentError, match=option):
        run_coefficients("/nonexistent/run", **kwargs)


def test_statistics_refuse_alpha_and_bootstrap_out_of_range():
    from midlevel.errors import ArgumentError
    from midlevel.explain.evidence import calibrated_fit
    from midlevel.explain.flags import flag_weights
    X, Y, _ = synthetic_design(60, seed=4)
    for alpha in (1.5, 0.0, 1.0, -0.2):
        with pytest.raises(ArgumentError, match="alpha"):
            fit_ols(X, Y, alpha=alpha, summaries=False)
    with pytest.raises(ArgumentError, match="--bootstrap"):
        bootstrap_ols(X, Y, n_boot=0)
    # the calibrated estimator: "--bootstrap", not "too few held-out clips"
    with pytest.raises(ArgumentError, match="--bootstrap"):
        calibrated_fit(X, X, Y, n_boot=0)
    with pytest.raises(ArgumentError, match="--materiality"):
        flag_weights(pd.DataFrame(columns=["model_weight", "weight", "ci_low", "ci_high",
                                           "std_scale"]), materiality=-1)


def _separable(rng, n=80):
    """Concept ratings whose first concept separates a 0/1 target exactly."""
    X = pd.DataFrame(rng.uniform(1, 10, size=(n, 4)), columns=list("abcd"))
    y = (X["a"] + 0.5 * X["b"] > 8.0).astype(float).rename("tag")
    return X, y


def _assert_no_evidence(rows):
    assert len(rows)
    assert rows["data_note"].str.contains("separate the classes perfectly").all()
    assert rows[["weight", "se", "ci_low", "ci_high", "p_value", "p_adjusted"]].isna().all().all()
    assert not rows["significant"].any()


def test_separated_binary_and_class_targets_are_marked_not_reported(rng):
    """Perfect separation: no weight of +-1000, SE of 1e5 and p ~ 1 presented as evidence,
    but the rows marked, without estimate, interval or p-value, and the summary saying so."""
    X, y = _separable(rng)
    Y = pd.DataFrame({"tag": y, "mood": y, "other": X["c"] + rng.normal(size=len(X))})
    result = fit_ols(X, Y, binary_targets=["tag"], class_targets={"mood": ["lo", "hi"]})
    t = result.table
    _assert_no_evidence(t[t["target"] == "tag"])
    _assert_no_evidence(t[t["target"] == "mood=hi"])
    other = t[t["target"] == "other"]
    assert (other["data_note"] == "").all() and other["p_value"].notna().all()
    text = "\n".join(result.summary_lines())
    assert "tag: the ratings separate the classes perfectly" in text
    assert "without an estimate" in text
    assert "NOTE: the ratings separate" in result.summary_text()


def test_quasi_separation_and_multinomial_separation_are_caught(rng):
    """Quasi-complete separation (ties on the boundary) and a multinomial target sorted by a
    concept: statsmodels warns about neither (the MNLogit even 'converges'), the linear
    program finds both; an overlapping target is left alone."""
    from midlevel.explain.separation import separated
    X, y = _separable(rng)
    Xq = pd.concat([X, pd.DataFrame({"a": [6.0, 6.0], "b": [4.0, 4.0], "c": [2.0, 9.0],
                                     "d": [5.0, 1.0]})], ignore_index=True)
    yq = np.r_[y.to_numpy(), 0.0, 1.0]              # on the boundary a + b/2 = 8, both labels
    design = np.c_[np.ones(len(Xq)), Xq.to_numpy()]
    assert separated(design, yq.astype(int))
    level = pd.cut(X["a"], [0, 4, 7, 11], labels=False).astype(float).rename("level")
    t = fit_ols(X, level.to_frame(), class_targets={"level": ["l", "m", "h"]},
                summaries=False).table
    _assert_no_evidence(t)
    noisy = ((X["a"] + rng.normal(scale=3, size=len(X))) > 5.5).astype(int).to_numpy()
    assert not separated(np.c_[np.ones(len(X)), X.to_numpy()], noisy)
    t = fit_ols(X, pd.DataFrame({"tag": noisy.astype(float)}), binary_targets=["tag"],
                summaries=False).table
    assert (t["data_note"] == "").all() and t["p_value"].notna().all()


def test_calibrated_estimator_marks_separated_targets(rng):
    """The calibrated estimator's logistic stage: a tag the calibrated concepts separate
    has no estimate either."""
    from midlevel.explain.evidence import calibrated_fit
    X, y = _separable(rng, n=120)
    pred = X + rng.normal(scale=0.05, size=X.shape)
    table = calibrated_fit(pred, X, y.to_frame(), n_boot=60, binary_targets=["tag"]).table
    _assert_no_evidence(table)
    assert table["data_note"].str.startswith("the calibrated predicted concepts").all()


def test_flags_skip_rows_without_an_estimate_and_say_so(rng):
    from midlevel.explain.flags import flag_summary, flag_weights
    X, y = _separable(rng)
    t = fit_ols(X, y.to_frame(), binary_targets=["tag"], summaries=False).table
    t["model_weight"] = 5.0
    flagged = flag_weights(t)
    assert (flagged["flag"] == "").all()
    text = flag_summary(flagged)
    assert "could not be compared" in text and "data_note" in text


def test_compare_to_truth_leaves_out_rows_without_an_estimate():
    X, Y, truth = synthetic_design(200, seed=9)
    table = fit_ols(X, Y, summaries=False).table
    full = compare_to_truth(table, truth)
    first = table["target"] == table["target"].iloc[0]
    table.loc[first, ["weight", "std_weight", "ci_low", "ci_high", "p_value"]] = np.nan
    part = compare_to_truth(table, truth, X=X, Y=Y)
    assert part["n_no_estimate"] == int(first.sum()) and full["n_no_estimate"] == 0
    assert np.isfinite(part["correlation"]) and part["coverage"] > 0.8


def test_constant_target_and_exact_fit_give_no_estimate(rng):
    """A target with no variance, or one equal to a concept (R^2 = 1 up to rounding): no
    weight, interval or p-value made of rounding noise, a data_note, nothing counted as
    significant or flagged; the other targets' rows are those of a fit without them."""
    from midlevel.explain.flags import flag_weights
    X = pd.DataFrame(rng.uniform(1, 10, size=(60, 3)), columns=["mel", "rhy", "dis"])
    other = X["rhy"] - 0.5 * X["dis"] + rng.normal(size=len(X))
    Y = pd.DataFrame({"const": 5.0, "copy": X["mel"], "scaled": 3.0 + 2.0 * X["mel"] - X["dis"],
                      "other": other})
    for estimator in ("ols", "bootstrap"):
        for alpha in (0.05, 0.1):
            result = (fit_ols(X, Y, alpha=alpha) if estimator == "ols"
                      else bootstrap_ols(X, Y, n_boot=200, alpha=alpha))
            t = result.table
            dead = t[t["target"] != "other"]
            assert dead[["weight", "se", "ci_low", "ci_high", "p_value", "p_adjusted",
                         "r2"]].isna().all().all(), estimator
            assert not dead["significant"].any()
            notes = dead.groupby("target")["data_note"].first()
            assert notes["const"].startswith("the target has no variance")
            assert notes["copy"].startswith("the concepts fit the target exactly")
            assert notes["scaled"].startswith("the concepts fit the target exactly")
            live = t[t["target"] == "other"]
            assert (live["data_note"] == "").all() and live["p_value"].notna().all()
            text = "\n".join(result.summary_lines())
            assert f"{int(live['significant'].sum())} of 3 associations significant" in text
            assert "9 without an estimate" in text
            t["model_weight"] = 5.0
            assert (flag_weights(t)["flag"][t["target"] != "other"] == "").all()
    alone = fit_ols(X, Y[["other"]]).table
    pd.testing.assert_frame_equal(
        fit_ols(X, Y).table.query("target == 'other'").reset_index(drop=True), alone)
    assert "NOTE: the concepts fit the target exactly" in fit_ols(X, Y).summaries["OLS: copy"]


def test_calibrated_estimator_marks_a_constant_target(rng):
    from midlevel.explain.evidence import calibrated_fit
    X = pd.DataFrame(rng.uniform(1, 10, size=(80, 3)), columns=list("abc"))
    pred = X + rng.normal(scale=0.3, size=X.shape)
    Y = pd.DataFrame({"const": np.full(len(X), 5.0), "y": X["a"] + rng.normal(size=len(X))})
    t = calibrated_fit(pred, X, Y, n_boot=60).table
    const = t[t["target"] == "const"]
    assert const["data_note"].str.startswith("the target has no variance").all()
    assert const[["weight", "p_value"]].isna().all().all() and not const["significant"].any()
    assert (t.loc[t["target"] == "y", "data_note"] == "").all()


def test_a_tiny_but_real_target_spread_is_kept(rng):
    """The tolerance is relative: a target of small scale with real variance is fitted."""
    X = pd.DataFrame(rng.uniform(1, 10, size=(60, 2)), columns=["a", "b"])
    y = 1e-9 * (X["a"] + rng.normal(size=len(X)))
    t = fit_ols(X, y.rename("small").to_frame()).table
    assert (t["data_note"] == "").all() and t["p_value"].notna().all()
