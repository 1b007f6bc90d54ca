"""Intervals that follow the multiple-comparison correction (simulated regressions whose
truth is known), each row's estimator in ``method``, and the heatmap's cells without an
estimate."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from midlevel.explain.flags import flag_weights
from midlevel.explain.levels import ci_label
from midlevel.explain.bootstrap import bootstrap_ols
from midlevel.explain.coefficient_result import CoefficientResult
from midlevel.explain.statistics import fit_ols
from midlevel.explain.truth import synthetic_design


def excludes_zero(t: pd.DataFrame) -> np.ndarray:
    return ((t["ci_low"] > 0) | (t["ci_high"] < 0)).to_numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bonferroni_intervals_exclude_zero_exactly_when_significant(seed):
    """OLS of the synthetic world (44 non-zero, 12 zero weights): with bonferroni, every row's
    interval excludes 0 exactly when the row is significant, and the interval is statsmodels'
    own at level 1 - alpha/m."""
    X, Y, truth = synthetic_design(80, seed=seed)
    t = fit_ols(X, Y, correction="bonferroni", summaries=False).table
    m = len(t)
    assert (excludes_zero(t) == t["significant"].to_numpy()).all()
    assert 0 < t["significant"].sum() < m            # the example decides both ways
    assert t.attrs["ci_alpha"] == pytest.approx(0.05 / m) and t.attrs["n_tests"] == m
    assert np.allclose(t["ci_level"], 1 - 0.05 / m)
    target = Y.columns[3]
    direct = sm.OLS(Y[target].to_numpy(), sm.add_constant(X.to_numpy())).fit()
    rows = t[t["target"] == target]
    np.testing.assert_allclose(rows[["ci_low", "ci_high"]], direct.conf_int(0.05 / m)[1:],
                               rtol=1e-9)
    np.testing.assert_allclose(rows["std_ci_low"], rows["ci_low"] * rows["std_scale"])
    # simultaneous intervals: the true weights are inside (nearly) all of them
    merged = t.merge(truth, on=["target", "concept"])
    true = merged["true_weight"]
    inside = (merged["ci_low"] <= true) & (true <= merged["ci_high"])
    assert inside.mean() >= 0.95


def test_no_correction_keeps_the_uncorrected_intervals():
    X, Y, _ = synthetic_design(80, seed=0)
    t = fit_ols(X, Y, summaries=False).table
    direct = sm.OLS(Y.iloc[:, 0].to_numpy(), sm.add_constant(X.to_numpy())).fit()
    np.testing.assert_allclose(t[t["target"] == Y.columns[0]][["ci_low", "ci_high"]],
                               direct.conf_int(0.05)[1:], rtol=1e-12)
    assert np.allclose(t["ci_level"], 0.95) and t.attrs["ci_alpha"] == 0.05


def test_holm_shows_bonferroni_intervals_and_says_where_they_disagree():
    """Holm rejects at least what Bonferroni does; its intervals are Bonferroni's, so a
    Holm-significant weight may keep an interval reaching 0, which the summary counts."""
    X, Y, _ = synthetic_design(60, seed=4)
    bonf = fit_ols(X, Y, correction="bonferroni", summaries=False).table
    result = fit_ols(X, Y, correction="holm", summaries=False)
    holm = result.table
    np.testing.assert_allclose(holm[["ci_low", "ci_high"]], bonf[["ci_low", "ci_high"]])
    assert (holm["significant"] >= bonf["significant"]).all()
    assert (holm["significant"] | ~excludes_zero(holm)).all()  # an interval off 0 is significant
    loose = int((holm["significant"] & ~excludes_zero(holm)).sum())
    assert loose > 0                                           # the example has such rows
    text = "\n".join(result.summary_lines())
    assert "Holm's step-down test" in text and f"({loose} such rows here)" in text
    assert ci_label(0.05 / len(holm)) in text


def test_fdr_intervals_have_the_false_coverage_rate_level():
    """Benjamini & Yekutieli (2005): level 1 - R alpha / m for the R weights BH selects;
    with Wald intervals, selected exactly when the interval excludes 0."""
    X, Y, _ = synthetic_design(60, seed=5)
    t = fit_ols(X, Y, correction="fdr_bh", summaries=False).table
    m, r = len(t), int(t["significant"].sum())
    assert 0 < r < m and t.attrs["n_selected"] == r
    assert t.attrs["ci_alpha"] == pytest.approx(r * 0.05 / m)
    assert (excludes_zero(t) == t["significant"].to_numpy()).all()
    assert "false-coverage-rate" in "\n".join(CoefficientResult(t).summary_lines())


def test_logistic_and_bootstrap_rows_follow_the_correction(rng):
    """GLM rows: z intervals at 1 - alpha/m, as statsmodels gives them; bootstrap rows: the
    percentiles of the same draws at that level (wider than the uncorrected ones)."""
    X, Y, _ = synthetic_design(200, seed=2)
    tag = (Y.iloc[:, 0] + rng.normal(size=len(Y)) > Y.iloc[:, 0].median()).astype(float)
    Yb = pd.DataFrame({"valence": Y.iloc[:, 1], "tag": tag})
    t = fit_ols(X, Yb, binary_targets=["tag"], correction="bonferroni", summaries=False).table
    m = len(t)                                   # one family: OLS and GLM rows together
    glm = sm.GLM(tag.to_numpy(), sm.add_constant(X.to_numpy()),
                 family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(t[t["target"] == "tag"][["ci_low", "ci_high"]],
                               glm.conf_int(0.05 / m)[1:], rtol=1e-6)
    assert (excludes_zero(t) == t["significant"].to_numpy()).all()
    plain = bootstrap_ols(X, Y.iloc[:, :2], n_boot=400, seed=1).table
    wide = bootstrap_ols(X, Y.iloc[:, :2], n_boot=400, seed=1, correction="bonferroni")
    w = wide.table
    np.testing.assert_allclose(w["weight"], plain["weight"])
    assert ((w["ci_low"] <= plain["ci_low"]) & (w["ci_high"] >= plain["ci_high"])).all()
    assert (w["ci_high"] - w["ci_low"] > plain["ci_high"] - plain["ci_low"]).mean() > 0.9
    assert "cannot resolve" in "\n".join(wide.summary_lines())   # 400 draws, tails of 1.8e-4


def test_flags_are_judged_against_the_corrected_interval():
    """A model weight just outside the uncorrected interval but inside the Bonferroni one is
    not flagged; the reason names the level of the interval shown."""
    X, Y, _ = synthetic_design(80, seed=0)
    t = fit_ols(X, Y, correction="bonferroni", summaries=False).table
    raw = fit_ols(X, Y, summaries=False).table
    t["model_weight"] = raw["ci_high"] + 0.5 * (t["ci_high"] - raw["ci_high"])
    assert (flag_weights(t)["flag"] == "").all()
    t["model_weight"] = t["ci_high"] + 10 / t["std_scale"]
    flagged = flag_weights(t)
    assert (flagged["flag"] != "").all()
    assert flagged["flag_reason"].str.contains(ci_label(0.05 / len(t)), regex=False).all()


def test_each_row_names_its_estimator_and_the_summary_the_fit(rng):
    X, Y, _ = synthetic_design(150, seed=3)
    level = pd.qcut(Y.iloc[:, 0], 3, labels=False).astype(float)
    Yc = pd.DataFrame({"valence": Y.iloc[:, 1], "tag": (level > 0).astype(float),
                       "level": level})
    result = fit_ols(X, Yc, binary_targets=["tag"], class_targets={"level": ["l", "m", "h"]},
                     cov_type="HC3", method="OLS of the targets on the ratings, 150 clips")
    by = result.table.groupby("target")["method"].agg(set)
    assert by["valence"] == {"OLS, HC3"} and by["tag"] == {"binomial GLM"}
    assert by["level=m"] == by["level=h"] == {"multinomial logit"}
    assert "OLS of the targets on the ratings, 150 clips" in result.summary_text()
    assert "what the data show: OLS of the targets on the ratings" in result.summary_lines()[0]


def test_heatmap_marks_cells_without_an_estimate():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from midlevel.plots.concepts import coefficient_figure
    X, Y, _ = synthetic_design(80, seed=0)
    t = fit_ols(X, Y.iloc[:, :3], summaries=False).table
    t["model_weight"], t["model_std_weight"], t["flag"], t["mode"] = 1.0, 0.1, "", "joint"
    gone = t["target"] == Y.columns[1]
    t.loc[gone, ["weight", "std_weight", "ci_low", "ci_high", "p_value", "p_adjusted"]] = np.nan
    fig = coefficient_figure(t)
    left, right = fig.axes[0], fig.axes[1]      # axes 2 and 3: the colour bars
    hatched = [p for p in right.patches if isinstance(p, Rectangle) and p.get_hatch()]
    marks = [x for x in right.texts if x.get_text() == "no\nestimate"]
    assert len(hatched) == len(marks) == int(gone.sum())
    assert not [x for x in left.texts if "estimate" in x.get_text()]
    plt.close(fig)


def test_the_two_panels_share_one_colour_scale():
    """Audit 9b, D11: each panel scaled to its own largest value, so one colour meant 1.01 on
    the model's side and 0.71 on the data's."""
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import coefficient_figure
    X, Y, _ = synthetic_design(80, seed=0)
    t = fit_ols(X, Y.iloc[:, :3], summaries=False).table
    t["model_weight"], t["flag"], t["mode"] = 1.0, "", "joint"
    t["model_std_weight"] = 1.5 * t["std_weight"]
    fig = coefficient_figure(t)
    limits = [ax.images[0].get_clim() for ax in fig.axes[:2]]
    largest = float(np.abs(t[["model_std_weight", "std_weight"]]).to_numpy().max())
    assert limits[0] == limits[1] == pytest.approx((-largest, largest))
    plt.close(fig)


def test_the_two_panel_figure_keeps_the_key_of_its_stars():
    """Audit 21c: the figure replaced the heatmap's title, so its stars had no key; with
    --alpha 0.1 they meant p < 0.1, 0.02, 0.002."""
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import coefficient_figure
    X, Y, _ = synthetic_design(80, seed=0)
    t = fit_ols(X, Y.iloc[:, :3], summaries=False).table
    t["model_weight"], t["model_std_weight"], t["flag"], t["mode"] = 1.0, 0.1, "", "joint"
    t.attrs.update(alpha=0.1, correction="holm")
    fig = coefficient_figure(t)
    assert "stars: p_adjusted, holm < 0.1, 0.02, 0.002" in fig.axes[1].get_title()
    plt.close(fig)


def test_statsmodels_summaries_say_they_are_uncorrected_when_a_correction_is_on():
    """The summary file ends with statsmodels' own fit summaries (95 % intervals, raw p): with a
    correction on, a line before them says so; without one, no such line."""
    X, Y, _ = synthetic_design(60, seed=0)
    note = "statsmodels' own fit summary: its intervals are at the uncorrected level"
    assert note in fit_ols(X, Y, correction="holm").summary_text()
    assert note not in fit_ols(X, Y).summary_text()


@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_heatmap_stars_follow_the_tables_alpha(alpha):
    """A star is where ``significant`` is True (p_adjusted < alpha); at 0.05 the cut-offs are
    the usual .05 / .01 / .001 (with --alpha 0.01, a p of 0.03 used to get a star although
    the table called it not significant)."""
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import coefficient_heatmap
    X, Y, _ = synthetic_design(80, seed=0)
    t = fit_ols(X, Y.iloc[:, :3], alpha=alpha, summaries=False).table
    t["p_adjusted"] = np.resize([0.0004, 0.004, 0.03, 0.2], len(t))
    t["significant"] = t["p_adjusted"] < alpha
    ax = coefficient_heatmap(t, value="std_weight")
    concepts, targets = list(dict.fromkeys(t["concept"])), list(dict.fromkeys(t["target"]))
    cell = {(concepts[round(x.get_position()[1])], targets[round(x.get_position()[0])]):
            x.get_text() for x in ax.texts}
    want = {0.05: {0.0004: "***", 0.004: "**", 0.03: "*"}, 0.01: {0.0004: "**", 0.004: "*"}}
    for row in t.itertuples():
        text, stars = cell[(row.concept, row.target)], want[alpha].get(row.p_adjusted, "")
        assert text.endswith("*") == bool(row.significant), (text, row.p_adjusted)
        assert text.endswith(stars) and not text.endswith(stars + "*"), (text, row.p_adjusted)
    assert f"< {alpha:g}," in ax.get_title()
    plt.close(ax.figure)


def test_summaries_hold_no_wall_clock(monkeypatch):
    """Audit 13b, #9: statsmodels' summaries carry ``Date:`` and ``Time:``, so the same fit
    wrote a different coefficients_summary.txt every second. Every fit kind (OLS, binomial
    GLM, multinomial logit) is written without them, and two writes at different clock
    times are identical."""
    import time as time_module

    X, Y, _ = synthetic_design(150, seed=3)
    level = pd.qcut(Y.iloc[:, 0], 3, labels=False).astype(float)
    Yc = pd.DataFrame({"valence": Y.iloc[:, 1], "tag": (level > 0).astype(float),
                       "level": level})

    def text():
        return fit_ols(X, Yc, binary_targets=["tag"],
                       class_targets={"level": ["l", "m", "h"]}).summary_text()

    first = text()
    later = time_module.time() + 3 * 86400 + 3723
    monkeypatch.setattr(time_module, "time", lambda: later)
    monkeypatch.setattr(time_module, "localtime", lambda *a: time_module.gmtime(later))
    monkeypatch.setattr(time_module, "strftime",
                        lambda f, t=None: time_module.asctime(time_module.gmtime(later)))
    assert text() == first
    for label in ("Date:", "Time:"):
        assert label not in first
    assert "OLS Regression Results" in first and "MNLogit Regression Results" in first
    assert "Generalized Linear Model Regression Results" in first
