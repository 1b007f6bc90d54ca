"""The ratings estimator corrected for rater noise (midlevel.explain.reliability), checked
against a hand computation of the method-of-moments estimator and against worlds whose true
weights are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from midlevel.errors import ExplainError, SpecError
from midlevel.explain.evidence import ratings_fit
from midlevel.explain.reliability import (
    check_reliability, corrected_fit, noise_factor, smallest_root,
)


def _pair_world(n, rng, reliability=0.9, r=0.9):
    """Concepts a, b correlated r, c independent; y = a + 0.5 c + noise; every rating the
    concept plus noise at ``reliability``."""
    cov = np.array([[1, r, 0], [r, 1, 0], [0, 0, 1.0]])
    true = rng.multivariate_normal(np.zeros(3), cov, size=n)
    x = true + np.sqrt((1 - reliability) / reliability) * rng.standard_normal(true.shape)
    y = true @ [1.0, 0.0, 0.5] + 0.5 * rng.standard_normal(n)
    return pd.DataFrame(x, columns=list("abc")), pd.DataFrame({"y": y})


def test_a_rating_target_gets_the_method_of_moments_estimate():
    """(S - D)^-1 s_xy, D = diag((1 - R) var(x)), computed by hand; a concept left out of
    the declaration is taken as exact (no noise removed from it)."""
    X, Y = _pair_world(500, np.random.default_rng(0))
    rel = {"a": 0.9, "b": 0.8}
    table = corrected_fit(X, Y, rel, n_boot=60).table.set_index("concept")
    x = X.to_numpy()
    S = np.cov(x, rowvar=False)
    s_xy = np.cov(np.c_[x, Y["y"]], rowvar=False)[:3, 3]
    D = np.diag([0.1 * S[0, 0], 0.2 * S[1, 1], 0.0])
    np.testing.assert_allclose(table.loc[list("abc"), "weight"], np.linalg.solve(S - D, s_xy),
                               rtol=1e-10)
    assert (table["method"] == "corrected OLS, bootstrap").all()
    # standardized per sd of the true concept, sqrt(R) sd(x)
    expected = np.sqrt([0.9, 0.8, 1.0]) * x.std(0, ddof=1) / Y["y"].std(ddof=1)
    np.testing.assert_allclose(table.loc[list("abc"), "std_scale"], expected, rtol=1e-10)


def test_the_correction_removes_the_false_association_rater_noise_makes():
    """Audit 14b: rater noise in correlated concepts moves weight onto a concept whose true
    weight is 0, and OLS calls it significant. Over 12 worlds of 600 clips, the plain fit
    puts b's interval off 0 in most; the corrected one covers b's 0 and a's 1 in most."""
    rng = np.random.default_rng(3)
    plain_b, fixed_b, fixed_a = [], [], []
    for rep in range(12):
        X, Y = _pair_world(600, rng)
        plain = ratings_fit(X, Y).table.set_index("concept")
        fixed = ratings_fit(X, Y, reliability=dict.fromkeys("abc", 0.9), n_boot=100,
                            seed=rep).table.set_index("concept")
        plain_b.append(plain.loc["b", "ci_low"] <= 0 <= plain.loc["b", "ci_high"])
        fixed_b.append(fixed.loc["b", "ci_low"] <= 0 <= fixed.loc["b", "ci_high"])
        fixed_a.append(fixed.loc["a", "ci_low"] <= 1 <= fixed.loc["a", "ci_high"])
    assert sum(plain_b) <= 3
    assert sum(fixed_b) >= 10 and sum(fixed_a) >= 10


def test_reliabilities_of_one_give_the_plain_fit():
    X, Y = _pair_world(200, np.random.default_rng(1))
    plain = ratings_fit(X, Y).table
    same = ratings_fit(X, Y, reliability=dict.fromkeys("abc", 1.0)).table
    pd.testing.assert_frame_equal(plain, same)
    assert (same["method"] == "OLS, HC3").all()


def test_too_low_reliabilities_are_limited_and_said():
    """Ratings correlating 0.81 cannot come from concepts of reliability 0.6 (at most 0.6):
    the correction stops short of a covariance that is not positive definite, and the
    summary names the pair."""
    X, Y = _pair_world(400, np.random.default_rng(2))
    result = corrected_fit(X, Y, dict.fromkeys("abc", 0.6), n_boot=60)
    factor = result.table.attrs["reliability_factor"]
    assert 0 < factor < 1
    text = " ".join(result.table.attrs["caveats"])
    assert "too low for these clips (the ratings of a and b correlate" in text
    assert f"only {factor:.0%} of the declared noise was removed" in text
    x = X.to_numpy()
    S = np.cov(x, rowvar=False)
    D = np.diag(0.4 * np.diag(S))
    assert np.linalg.eigvalsh(S - factor * D).min() > 0
    assert factor == pytest.approx(smallest_root(S, D) - 1 / 399)


def test_the_smallest_root_sees_exact_concepts_through_the_others():
    """With a concept taken as exact, S - c D is positive definite exactly below the root."""
    rng = np.random.default_rng(4)
    A = rng.standard_normal((4, 4))
    S = A @ A.T + 0.1 * np.eye(4)
    D = np.diag([0.5, 0.0, 0.3, 0.0]) * np.diag(S)
    root = smallest_root(S, D)
    assert np.linalg.eigvalsh(S - 0.999 * root * D).min() > 0
    assert np.linalg.eigvalsh(S - 1.001 * root * D).min() < 0
    assert smallest_root(S, np.zeros((4, 4))) == np.inf
    assert noise_factor(S, D * root / 2, 100) == 1.0


def test_class_and_binary_targets_are_corrected_by_regression_calibration():
    X, Y = _pair_world(400, np.random.default_rng(5))
    Y = Y.assign(tag=(Y["y"] > 0).astype(float),
                 mood=np.digitize(Y["y"], [-0.7, 0.7]).astype(float))
    table = corrected_fit(X, Y, {"a": 0.9, "b": 0.9}, n_boot=60, binary_targets=["tag"],
                          class_targets={"mood": ["low", "mid", "high"]}).table
    text = " ".join(table.attrs["caveats"])
    assert "for the class and binary targets (mood, tag) the correction is regression " \
           "calibration's approximation of a logit" in text
    assert table.attrs["method"].startswith("least squares (logit for class and binary")
    methods = table.groupby("target")["method"].first()
    assert methods["tag"] == "corrected logit, bootstrap"
    assert methods["mood=mid"] == "corrected multinomial logit, bootstrap"
    assert methods["y"] == "corrected OLS, bootstrap"
    assert np.isfinite(table["weight"]).all()


@pytest.mark.parametrize("given, message", [
    ({"z": 0.9}, "'z' is not a concept"),
    ({"tag": 0.9}, "'tag' is a binary concept"),
    ({"a": 0}, "must be a reliability in \\(0, 1\\]"),
    ({"a": 1.5}, "must be a reliability in \\(0, 1\\]"),
    ({"a": "high"}, "got 'high'"),
])
def test_bad_reliabilities_are_refused_by_name(given, message):
    with pytest.raises(ExplainError, match=message):
        check_reliability(given, ["a", "b", "tag"], {"tag": "binary"}, where="--reliability")


def _spec(tmp_path, concept_extra="", target_extra=""):
    (tmp_path / "t.csv").write_text("id,a,b,y\n1,1,2,3\n")
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: t\nroot: .\naudio: {{pattern: 'audio/{{id}}.wav'}}\n"
                    f"tables: [{{path: t.csv, id_column: id}}]\n"
                    f"concepts:\n  a: {{scale: [1, 9]{concept_extra}}}\n  b: {{}}\n"
                    f"targets:\n  y: {{scale: [1, 9]{target_extra}}}\n")
    return path


def test_a_spec_declares_a_concepts_reliability(tmp_path):
    from midlevel.data.spec import load_spec
    spec = load_spec(_spec(tmp_path, ", reliability: 0.85"))
    assert spec.column("a").reliability == 0.85
    assert spec.column("b").reliability is None
    assert spec.summary_dict()["concepts"][0]["reliability"] == 0.85
    assert "reliability" not in spec.summary_dict()["concepts"][1]


@pytest.mark.parametrize("concept, target, message", [
    (", reliability: 0", "", "'concepts.a.reliability' must be a number in \\(0, 1\\]"),
    (", reliability: yes", "", "got True"),
    ("", ", reliability: 0.9", "'targets.y.reliability': a target has no reliability"),
])
def test_a_spec_with_a_bad_reliability_is_refused_by_key(tmp_path, concept, target, message):
    from midlevel.data.spec import load_spec
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(tmp_path, concept, target))


def test_validate_warns_where_declared_reliabilities_are_too_low(tmp_path):
    """Ratings of a and b correlating 0.81 cannot come from concepts of reliability 0.6 each
    (at most 0.6): validate names the pair, the spec file and the bound, before coefficients
    would have to limit its correction; reliabilities that fit give no warning."""
    from midlevel.data.rating_warnings import reliability_limits
    from midlevel.data.spec import load_spec
    X, _ = _pair_world(300, np.random.default_rng(6))
    table = X[["a", "b"]]
    spec = load_spec(_spec(tmp_path, ", reliability: 0.7"))
    assert reliability_limits(spec, table) == []          # b counts as exact: limit 0.84
    path = tmp_path / "spec.yaml"
    path.write_text(path.read_text().replace("reliability: 0.7", "reliability: 0.6")
                    .replace("  b: {}", "  b: {reliability: 0.6}"))
    spec = load_spec(path)
    [warning] = reliability_limits(spec, table)
    assert warning.message.startswith("reliability too low: 'a' and 'b' correlate 0.8")
    assert "(0.6, 0.6) allow (at most 0.60)" in warning.message
    assert warning.file == str(path)
    path.write_text(path.read_text().replace("reliability: 0.6}", "reliability: 0.9}"))
    assert reliability_limits(load_spec(path), table) == []


def _nearly_separated(noise, seed=0, n=40):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    tag = (a + noise * rng.standard_normal(n) > 0).astype(float)
    return pd.DataFrame({"a": a, "b": b}), pd.DataFrame({"tag": tag})


def test_an_interval_whose_resamples_separate_the_classes_is_withheld(monkeypatch):
    """Audit 22a: on 40 clips the classes were separated in many bootstrap resamples though
    not in the whole sample; their weights (the solver's stopping point on a likelihood that
    rises for ever) entered the percentiles, giving intervals hundreds of log-odds wide with
    no note. Now such an interval is withheld with a note counting the resamples, once they
    reach its tail share; a world whose resamples do not separate keeps its interval."""
    from midlevel.explain import two_stage
    X, Y = _nearly_separated(noise=0.3)
    rows = corrected_fit(X, Y, {"a": 0.9}, n_boot=100, binary_targets=["tag"]).table
    assert rows["data_note"].str.match(r"in \d+ of 100 bootstrap resamples the reliability-"
                                       r"corrected concept ratings separate the classes").all()
    assert rows[["weight", "ci_low", "ci_high", "p_value"]].isna().all().all()
    assert not rows["significant"].any()
    with monkeypatch.context() as m:  # what the table said before: the draws taken as fits
        m.setattr(two_stage, "separated_fit", lambda *a: False)
        before = corrected_fit(X, Y, {"a": 0.9}, n_boot=100, binary_targets=["tag"]).table
    assert before["data_note"].eq("").all() and (before["ci_high"] - before["ci_low"]).max() > 20
    X, Y = _nearly_separated(noise=0.5)
    kept = corrected_fit(X, Y, {"a": 0.9}, n_boot=100, binary_targets=["tag"]).table
    assert kept["data_note"].eq("").all() and np.isfinite(kept["ci_high"]).all()


def test_separated_resamples_withhold_at_the_tail_share_of_the_interval():
    from midlevel.explain.two_stage import withheld_for_separation
    assert not withheld_for_separation(0, 1000, 0.05, None, 10)
    assert not withheld_for_separation(24, 1000, 0.05, None, 10)
    assert withheld_for_separation(25, 1000, 0.05, None, 10)  # alpha / 2 of the draws
    assert withheld_for_separation(3, 1000, 0.05, "holm", 10)  # alpha / (2 m) under a correction
    assert not withheld_for_separation(2, 1000, 0.05, "bonferroni", 10)
