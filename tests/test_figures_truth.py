"""Figures show what their numbers say (audit 21c): sums labelled as what they are, no value
drawn off the axes, a sparse map's colour scale from its values, error bars only where a
spread is known, stars with their key."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from midlevel.explain.attribution.result import Attribution  # noqa: E402
from midlevel.plots.attribution import (  # noqa: E402
    attribution_map, frequency_profile, sanity_plot, time_curve,
)
from midlevel.plots.concepts import contribution_distribution, intervention_plot  # noqa: E402


def attribution(method: str, values: np.ndarray, *, rating=(5.0, 2.0, "rating")) -> Attribution:
    """A one-clip Attribution of ``values`` ``(n_bands, n_frames)``, its rating units known."""
    v = values[None, None].astype(np.float32)
    return Attribution(values=v, inputs=np.zeros_like(v), predictions=np.array([0.3]),
                       expected=None if method in ("occlusion", "gradcam") else 0.1,
                       method=method, output="valence", output_kind="regression", seconds=0.1,
                       fps=31.25, units="standardized", rating=rating).in_rating_units()


def test_sums_of_a_map_that_is_not_additive_are_not_labelled_as_shares_of_the_output():
    """Occlusion copies each patch's removal effect into every bin of the patch: its sums
    over bands and frames (and 'total') counted a patch once per bin, 500x the patch effects,
    labelled 'rating points'. Grad-CAM's values are in no output unit."""
    patch = np.kron(np.array([[0.1, -0.2], [0.05, 0.0]]), np.ones((4, 8)))
    occ = attribution("occlusion", patch)
    assert not occ.additive and np.isnan(occ.summary()["total"]).all()
    assert occ.summary()["additive"].tolist() == [False]
    _, (a, b, c) = plt.subplots(1, 3)
    attribution_map(occ, ax=a)
    assert "patch's removal effect (rating points)" in a.figure.axes[-1].get_ylabel()
    time_curve(occ, ax=b)
    frequency_profile(occ, ax=c)
    assert b.get_ylabel() == "sum over bands (not additive)"
    assert c.get_xlabel() == "sum over frames (not additive)"
    cam = attribution("gradcam", patch)
    assert cam.units == "relative" and not cam.additive
    ig = attribution("integrated_gradients", patch)
    assert ig.additive and ig.summary()["total"].iloc[0] == np.float32(2.0 * patch.sum())
    _, ax = plt.subplots()
    time_curve(ig, ax=ax)
    assert ax.get_ylabel() == "attribution (rating points)"
    plt.close("all")


def test_a_sparse_map_takes_its_colour_scale_from_its_values():
    values = np.zeros((40, 120))
    values[3, 5], values[30, 100] = 1.0, -0.5   # 2 of 4800 cells: the 99.5th percentile is 0
    _, ax = plt.subplots()
    mesh = attribution_map(values, ax=ax, colorbar=False)
    assert mesh.norm.vmax == 1.0 and mesh.norm.vmin == -1.0
    plt.close("all")


def test_the_sanity_figure_shows_every_value_and_stays_readable():
    """Spearman below -0.2 was drawn off the fixed axes; the full layer names, rotated,
    squeezed each panel to a fifth of the figure."""
    stages = [f"model.backbone.layers.{k}+model.backbone.layers.{k + 1}" for k in range(6)]
    cascade = pd.DataFrame({"method": "ig", "stage": stages,
                            "spearman_abs": [0.9, 0.5, 0.1, -0.25, -0.3, 0.0]})
    floors = pd.DataFrame({"method": ["ig"], "similarity": ["spearman_abs"],
                           "trained_vs_input": [0.2], "random_vs_random": [0.1]})
    fig = sanity_plot(cascade, floors)
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low < -0.3 and high >= 1.0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4", "5", "6"]
    fig.canvas.draw()
    assert ax.get_position().height * fig.get_figheight() > 1.5  # inches of plot area
    plt.close("all")


def test_a_nan_contribution_leaves_the_box_of_the_others_and_is_counted():
    rows = pd.DataFrame({"clip": [f"c{i}" for i in range(8)] * 2, "target": "valence",
                         "concept": ["a"] * 8 + ["b"] * 8,
                         "contribution": [*np.linspace(-1, 1, 8), np.nan, *np.linspace(0, 2, 7)]})
    _, ax = plt.subplots()
    contribution_distribution(rows, "valence", ax=ax)
    boxes = [line for line in ax.lines if len(line.get_ydata()) >= 2]  # boxes, whiskers, caps
    assert boxes and all(np.isfinite(np.asarray(line.get_ydata(), float)).all() for line in boxes)
    assert any(np.asarray(line.get_xdata(), float).mean() > 0.5 for line in boxes)  # b's box
    assert any(t.get_text() == "1 NaN" for t in ax.texts)
    plt.close("all")


def test_the_intervention_curve_read_back_from_its_csv_names_no_nan(tmp_path):
    curve = pd.DataFrame({"order": ["greedy"] * 3, "n_replaced": [0, 1, 2], "target": "mean",
                          "concept": ["", "melodiousness", "dissonance"],
                          "rmse": [1.0, 0.8, 0.7], "relative_rmse": [1.0, 0.8, 0.7]})
    curve.to_csv(tmp_path / "curve.csv", index=False)
    _, ax = plt.subplots()
    intervention_plot(pd.read_csv(tmp_path / "curve.csv"), ax=ax)
    assert [t.get_text() for t in ax.texts] == ["melodiousness", "dissonance"]
    plt.close("all")


def test_the_metrics_figure_draws_a_spread_only_where_one_is_known(tmp_path, monkeypatch):
    """A one-run model's std is empty: it got a +-0 error bar with caps, alike to 'no spread
    over seeds'; a target without an r (a constant test split) was dropped without a word."""
    from midlevel.report.document import Report
    from midlevel.workflows import compare_accuracy
    summary = pd.DataFrame({
        "model": ["joint", "joint", "joint", "blackbox", "blackbox", "blackbox"],
        "kind": "target", "name": ["valence", "mood=x", "scene"] * 2,
        "n_runs": [2, 2, 2, 1, 1, 1], "r": [0.8, np.nan, np.nan, 0.7, np.nan, np.nan],
        "r_std": [0.05, np.nan, np.nan, np.nan, np.nan, np.nan],
        "accuracy": [np.nan, 0.9, 0.6, np.nan, 0.8, 0.5],
        "accuracy_std": [np.nan, 0.02, 0.1, np.nan, np.nan, np.nan]})
    drawn = {}
    monkeypatch.setattr(Report, "save_figure", lambda self, fig, name: drawn.setdefault(name, fig))
    compare_accuracy._metrics_figure(Report(out=tmp_path), summary, ["joint", "blackbox"],
                                     {"valence": "regression", "mood=x": "binary",
                                      "scene": "class"})
    r_panel, acc_panel = drawn["metrics.png"].axes[:2]
    bars = [c for c in r_panel.containers if hasattr(c, "has_yerr")]
    assert [c.has_yerr for c in bars] == [True]  # the joint model's r only
    assert [t.get_text() for t in r_panel.texts] == ["no r: mood=x"]  # the class target apart
    assert [t.get_text() for t in r_panel.get_legend().get_texts()] == \
        ["joint (2 run(s))", "blackbox (1 run(s))"]
    assert sum(c.has_yerr for c in acc_panel.containers if hasattr(c, "has_yerr")) == 1
    plt.close("all")


def test_the_cost_figure_keeps_the_models_in_the_runs_order(tmp_path, monkeypatch):
    """Audit 21c: the cost figure sorted the models by name, so each model took the other's
    colour from the metrics figure (which keeps the runs' order)."""
    from midlevel.report.document import Report
    from midlevel.workflows import compare_explanations
    drawn = {}
    monkeypatch.setattr(Report, "save_figure", lambda self, fig, name: drawn.setdefault(name, fig))
    costs = [{"model": m, "method": k, "ms_per_clip": v, "timed_in": "this run"}
             for m, k, v in [("joint", "ig", 20.0), ("joint", "occlusion", 50.0),
                             ("blackbox", "ig", 30.0), ("blackbox", "occlusion", 40.0)]]
    compare_explanations._cost_tables(Report(out=tmp_path), costs, ["ig", "occlusion"])
    ax = drawn["cost.png"].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["joint", "blackbox"]
    assert [[p.get_height() for p in c] for c in ax.containers] == [[20.0, 50.0], [30.0, 40.0]]
    plt.close("all")
