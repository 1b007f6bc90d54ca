"""Explanations with binary concepts and tag targets: the head in probability units,
contributions in log-odds, interventions that switch a tag, GLM coefficients, leakage."""
from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from midlevel.errors import ArgumentError, ExplainError
from midlevel.explain import evidence
from midlevel.explain.head import LinearHead, check_additivity, contributions
from midlevel.explain.interventions import intervene, intervention_curve
from midlevel.explain.leakage import leakage_diagnostic
from midlevel.training import fit
from midlevel.testing.toy import FPS, toy_config, toy_tag_data


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    import torch
    torch.set_num_threads(1)
    table, features, columns = toy_tag_data(n_clips=80)
    run = fit(table, features, columns, tmp_path_factory.mktemp("tags") / "joint",
              toy_config(mode="joint", epochs=2), fps=FPS, progress=False)
    clips = list(table.index)
    pred = run.predict([features[c] for c in clips], names=clips).set_index("clip")
    return run, table, pred


def test_the_head_is_stated_per_unit_of_probability(tagged):
    run, _, pred = tagged
    head = LinearHead.from_run(run)
    assert head.concept_kinds == ["regression", "binary", "binary"]
    assert head.kinds == ["regression", "binary", "binary"]
    assert head.units(["mood"]) == [1, 2]  # a multi-label group selects its tags
    # the head's outputs from the predicted probabilities are the model's own log-odds
    logits = head.predict(pred[run.concept_names].to_numpy())[:, 1:]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), pred[["mood=up", "mood=down"]],
                               rtol=1e-4, atol=1e-5)
    # one unit of probability of b0 moves every output by its weight
    c = pred[run.concept_names].to_numpy()[:1].copy()
    moved = c.copy()
    moved[0, 1] += 1.0
    np.testing.assert_allclose(head.predict(moved) - head.predict(c), head.weight[:, [1]].T)


def test_contributions_add_up_in_log_odds_and_say_their_kinds(tagged):
    run, _, pred = tagged
    head = LinearHead.from_run(run)
    base = pred[run.concept_names].mean()
    table = contributions(pred[run.concept_names], head, base)
    check_additivity(table)
    row = table[(table["target"] == "mood=up") & (table["concept"] == "b0")].iloc[0]
    assert row["concept_kind"] == "binary" and row["output_kind"] == "binary"
    assert row["contribution"] == pytest.approx(row["weight"] * (row["concept_value"] - base["b0"]))


def test_interventions_switch_a_tag_on_and_off(tagged):
    run, _, pred = tagged
    head = LinearHead.from_run(run)
    on = intervene(head, pred[run.concept_names], {"b0": "on"}, targets=["mood"])
    off = intervene(head, pred[run.concept_names], {"b0": False}, targets=["mood"])
    w = head.weight[head.outputs.index("mood=up"), 1]
    up_on, up_off = on[on["target"] == "mood=up"], off[off["target"] == "mood=up"]
    np.testing.assert_allclose(up_on["intervened_prediction"] - up_off["intervened_prediction"],
                               w)
    assert on["intervened_probability"].between(0, 1).all()
    np.testing.assert_allclose(on["probability"], 1 / (1 + np.exp(-on["prediction"])))
    with pytest.raises(ExplainError, match="binary"):
        intervene(head, pred[run.concept_names], {"b1": 2.0})


def test_intervention_curve_scores_tags_by_root_brier(tagged):
    run, table, pred = tagged
    head = LinearHead.from_run(run)
    truth = table.loc[pred.index]
    curve = intervention_curve(head, pred[run.concept_names], truth[run.concept_names],
                               truth[["t0", "mood=up", "mood=down"]], n_repeats=2)
    last = curve[(curve["n_replaced"] == 3) & (curve["target"] == "mood=up")]
    prob = head.probabilities(head.predict(truth[run.concept_names].to_numpy()))
    expected = np.sqrt(np.mean((prob[:, 1] - truth["mood=up"].to_numpy()) ** 2))
    np.testing.assert_allclose(last["rmse"], expected)


def test_binary_targets_get_the_binomial_glm_of_the_data(tagged):
    _, table, _ = tagged
    X, Y = evidence.rated_design(table, ["k0", "b0", "b1"], ["t0", "mood=up", "mood=down"])
    result = evidence.ratings_fit(X, Y, binary_targets=["mood=up", "mood=down"])
    t = result.table.set_index(["target", "concept"])
    glm = sm.GLM(Y["mood=up"], sm.add_constant(X), family=sm.families.Binomial()).fit()
    for c in ("k0", "b0", "b1"):
        assert t.loc[("mood=up", c), "weight"] == pytest.approx(glm.params[c])
        assert t.loc[("mood=up", c), "ci_low"] == pytest.approx(glm.conf_int().loc[c, 0])
    assert t.loc[("mood=up", "b0"), "method"] == "binomial GLM"
    assert t.loc[("t0", "b0"), "method"] == "OLS, HC3"
    # the toy map's signs: up rises with b0, falls with b1; down the other way round
    assert t.loc[("mood=up", "b0"), "weight"] > 0 > t.loc[("mood=up", "b1"), "weight"]


def test_calibrated_estimator_fits_binary_targets_with_a_logit(tagged):
    run, table, pred = tagged
    held = table.index[table["split"] != "train"]
    result = evidence.calibrated_fit(pred.loc[held, run.concept_names],
                                     table.loc[held, run.concept_names],
                                     table.loc[held, ["mood=up"]], n_boot=60,
                                     binary_targets=["mood=up"])
    assert list(result.table["target"].unique()) == ["mood=up"]
    assert result.table["std_scale"].notna().all() and result.table["r2"].isna().all()


def test_leakage_diagnostic_scores_tags_by_accuracy(tagged):
    run, table, pred = tagged
    frame = pred.copy()
    for name in run.concept_names + run.target_names:
        frame[f"true:{name}"] = table.loc[frame.index, name]
    frame["split"] = table.loc[frame.index, "split"]
    leak = leakage_diagnostic(run, frame)
    tags = leak[leak["target"] == "mood=up"]
    assert tags["accuracy_predicted_concepts"].between(0, 1).all()
    assert tags["accuracy_true_concepts"].between(0, 1).all()


def test_cli_settings_take_tag_names_and_on_off():
    from midlevel.cli.explain import _parse_settings
    concepts = ["k0", "layer=drums"]
    assert _parse_settings(["layer=drums=on", "k0=3"], concepts) == {"layer=drums": 1.0,
                                                                     "k0": 3.0}
    assert _parse_settings(["layer=drums=off"], concepts) == {"layer=drums": 0.0}
    with pytest.raises(ArgumentError, match="unknown concept"):
        _parse_settings(["layer=bass=on"], concepts)
