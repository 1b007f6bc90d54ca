"""Coefficient statistics: against a direct statsmodels fit, and against the known truth of the
synthetic concept world (no audio, no training: the statistics path on concept values)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from midlevel.errors import MidlevelError
from midlevel.explain.statistics import adjust_pvalues, bootstrap_ols, fit_ols
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
    assert t["method"].iloc[0].endswith("(GLM binomial)")
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
    assert boot["method"].iloc[0].startswith("bootstrap over clips")


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
