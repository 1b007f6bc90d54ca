"""Faithfulness on a controlled task whose target is decided by the energy in a known box:
SHAP and IG beat random orders in deletion / insertion, put their attribution inside the
event, and change when the model's weights are randomized."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from midlevel.explain.attribution.attributor import attribute
from midlevel.explain.faithfulness import (
    area_summary, completeness, curve_areas, deletion_curves, event_share, insertion_curves, randomization_check,
)
from midlevel.testing.events import EventTask


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained():
    """A small-preset black box trained for a few seconds on the event task."""
    task = EventTask()
    model = task.train_model(steps=150)
    x, y = task.sample(64, seed=1)
    with torch.no_grad():
        pred = model(x).targets[:, 0].numpy()
    r = np.corrcoef(pred, y[:, 0].numpy())[0, 1]
    assert r > 0.8, f"the toy model did not learn the task (r = {r:.2f})"
    bg, _ = task.sample(16, seed=2)
    # explain clips with a clearly present event (the target is its strength)
    strong = np.argsort(-y[:, 0].numpy())[:6]
    return task, model, x[strong], bg


@pytest.fixture(scope="module")
def attributions(trained):
    task, model, x, bg = trained
    return {m: attribute(model, x, method=m, background=bg, n_steps=16)
            for m in ("shap_deep", "integrated_gradients")}


@pytest.mark.parametrize("method", ["shap_deep", "integrated_gradients"])
def test_deletion_and_insertion_beat_random(trained, attributions, method):
    _, model, _, _ = trained
    attr = attributions[method]
    curves = pd.concat([deletion_curves(model, attr, steps=10, n_random=2),
                        insertion_curves(model, attr, steps=10, n_random=2)])
    d = curves[(curves["mode"] == "deletion") & (curves["order"] == "attribution")]
    # normalized curves run from 1 (nothing removed) to 0 (everything removed)
    np.testing.assert_allclose(d[d["fraction"] == 0]["normalized"], 1.0, atol=1e-6)
    np.testing.assert_allclose(d[d["fraction"] == 1]["normalized"], 0.0, atol=1e-6)
    s = area_summary(curve_areas(curves)).set_index("mode")
    assert s.loc["deletion", "attribution"] < s.loc["deletion", "random"] - 0.1
    assert s.loc["insertion", "attribution"] > s.loc["insertion", "random"] + 0.1
    assert s.loc["deletion", "better_share"] >= 5 / 6


@pytest.mark.parametrize("method", ["shap_deep", "integrated_gradients"])
def test_attribution_share_inside_the_event(trained, attributions, method):
    task, _, _, _ = trained
    share = event_share(attributions[method], task.box)
    area = share["area_share"].iloc[0]
    assert area < 0.05
    # well above the event's share of the input: at least 4 times, on every clip
    assert (share["share"] > 4 * area).all(), share
    assert share["ratio"].mean() > 5


def test_randomization_changes_the_maps(trained, attributions):
    _, model, _, bg = trained
    attr = attributions["shap_deep"]
    same = randomization_check(model, attr, background=bg, cascade=False)
    assert len(same) == len(attr.clips) and (same["stage"] == "all").all()
    assert same["spearman_abs"].mean() < 0.7
    assert same["top10_overlap"].mean() < 0.7
    # the original model is untouched by the check
    again = attribute(model, attr.inputs, method="shap_deep", background=bg)
    np.testing.assert_allclose(again.values, attr.values, atol=1e-6)


def test_cascading_randomization_reports_each_stage(trained, attributions):
    _, model, _, bg = trained
    attr = attributions["integrated_gradients"]
    sub = attribute(model, attr.inputs[:1], method="integrated_gradients", background=bg,
                    n_steps=8)
    casc = randomization_check(model, sub, background=bg, cascade=True, n_steps=8)
    assert list(casc["n_randomized"]) == sorted(casc["n_randomized"])
    assert casc["stage"].iloc[0].endswith("output")  # from the top down
    assert casc["spearman_abs"].iloc[-1] < 0.9


def test_completeness_is_the_accuracy_ratio():
    metrics = pd.DataFrame({"model": ["bottleneck", "blackbox"] * 2 + ["bottleneck"],
                            "kind": "target", "name": ["a", "a", "b", "b", "a"],
                            "r": [0.6, 0.8, 0.45, 0.9, 0.8]})
    c = completeness(metrics).set_index("name")
    assert c.loc["a", "r_bottleneck"] == pytest.approx(0.7)  # mean over seeds
    assert c.loc["a", "completeness"] == pytest.approx(0.7 / 0.8)
    assert c.loc["b", "completeness"] == pytest.approx(0.5)
    assert c.loc["mean", "completeness"] == pytest.approx(((0.7 + 0.45) / 2) / 0.85)


def test_clips_with_nothing_to_delete_are_left_out(trained, attributions):
    _, model, _, _ = trained
    attr = attributions["integrated_gradients"]
    curves = deletion_curves(model, attr, steps=4, n_random=1, min_span=1e6)
    assert curves["normalized"].isna().all() and np.isfinite(curves["value"]).all()
    assert len(area_summary(curve_areas(curves))) == 0


def test_patch_deletion_beats_random(trained, attributions):
    task, model, _, _ = trained
    attr = attributions["shap_deep"]
    curves = deletion_curves(model, attr, steps=8, n_random=2, patch=(6, 10))
    s = area_summary(curve_areas(curves)).iloc[0]
    assert s["attribution"] < s["random"] - 0.1
    # a patch is removed whole: at the first step the perturbed bins form whole patches
    from midlevel.explain.faithfulness import _patch_ids
    ids = _patch_ids((task.n_bands, task.n_frames), (6, 10))
    assert ids.max() + 1 == 6 * 5 and np.bincount(ids.ravel()).min() >= 2 * 8
