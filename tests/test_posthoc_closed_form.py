"""Post-hoc machinery on models whose right answer is known in closed form (audit 15a): LRP
over predict's windows, LRP's bias-free magnification, LIME's stability on an exact fit, the
sanity rule's blind spot, and caches keyed by the data they were built from."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Linear(nn.Module):
    """f(x) = sum(W * x) + b over a ``(1, n_bands, n_frames)`` spectrogram."""

    def __init__(self, W, b=0.0):
        super().__init__()
        self.flat, self.lin = nn.Flatten(), nn.Linear(W.size, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.as_tensor(W, dtype=torch.float32).reshape(1, -1))
            self.lin.bias.fill_(b)

    def forward(self, x):
        return self.lin(self.flat(x))


def test_lrp_gives_each_window_its_own_share_of_the_mean():
    """Two windows with outputs +10 and -8 (mean 1): relevance +5 and -4, each bin of the
    second window negative; the gradient of the mean gave both +0.5."""
    pytest.importorskip("zennit")
    from midlevel.explain.attribution.base import WindowedOutput
    from midlevel.explain.attribution.lrp import LRP
    f = WindowedOutput(Linear(np.ones((4, 8), np.float32)).eval(), 8, 8)
    x = torch.zeros(1, 1, 4, 16)
    x[..., :8] = 10 / 32
    x[..., 8:] = -8 / 32
    res = LRP().attribute(f, x, reference=torch.zeros_like(x))
    r = res.values[0, 0]
    assert r[:, :8].sum() == pytest.approx(5.0, abs=1e-5)
    assert r[:, 8:].sum() == pytest.approx(-4.0, abs=1e-5)
    assert (r[:, 8:] < 0).all()
    assert res.tables["conservation"]["absolute_error"].max() < 1e-5


def test_lrp_overlapping_windows_add_up_to_the_mean():
    """Windows of 8 frames every 4 over 16 frames (3 windows): the map sums to the mean and
    equals each bin's W * x times its number of windows / 3 (z-rule on a linear map)."""
    pytest.importorskip("zennit")
    from midlevel.explain.attribution.base import WindowedOutput
    from midlevel.explain.attribution.lrp import LRP
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 8)).astype(np.float32)
    f = WindowedOutput(Linear(W).eval(), 8, 4)
    x = torch.as_tensor(rng.random((2, 1, 4, 16)), dtype=torch.float32)
    res = LRP().attribute(f, x, reference=torch.zeros(1, 1, 4, 16))
    with torch.no_grad():
        out = f(x)[:, 0].numpy()
    np.testing.assert_allclose(res.values.reshape(2, -1).sum(1), out, rtol=1e-4, atol=1e-5)
    expected = np.zeros((2, 4, 16), np.float32)
    for s in (0, 4, 8):
        expected[:, :, s:s + 8] += W * x[:, 0, :, s:s + 8].numpy() / 3
    np.testing.assert_allclose(res.values[:, 0], expected, rtol=1e-4, atol=1e-5)


def test_lrp_says_where_bias_free_denominators_magnify_the_map(caplog):
    """f = W x + b with W x near 0: the bias-free rule spreads f(x) as W x * f / (W x)."""
    pytest.importorskip("zennit")
    from midlevel.explain.attribution.lrp import LRP
    rng = np.random.default_rng(1)
    W = rng.normal(size=(4, 6)).astype(np.float32)
    x = torch.as_tensor(rng.random((1, 1, 4, 6)), dtype=torch.float32)
    W[0, 0] -= float((W * x[0, 0].numpy()).sum()) / float(x[0, 0, 0, 0]) - 1e-3 / float(
        x[0, 0, 0, 0])  # W x = 0.001
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        table = LRP().attribute(Linear(W, 0.7).eval(), x, reference=torch.zeros_like(x),
                                clips=["intro.wav"]).tables["conservation"]
    assert table["amplification"].iloc[0] > 100 and table["clip"].iloc[0] == "intro.wav"
    assert "bias-free sum is near zero" in caplog.text and "(intro.wav)" in caplog.text
    caplog.clear()

    class Named(torch.nn.Module):  # a model whose one output is called 'fear'
        output_names = ["fear"]

        def __init__(self):
            super().__init__()
            self.head = Linear(W, 0.7)

        def forward(self, x):
            return self.head(x)

    from midlevel.explain.attribution.base import (
        OutputSelector, RatingOutput, WindowedOutput, output_description,
    )
    selected = OutputSelector(Named().eval(), "target", 0)
    assert output_description(RatingOutput(WindowedOutput(selected, 6, 6), 1.0, 2.0)) == (
        "target 'fear'")
    assert output_description(Linear(W, 0.7)) is None
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        LRP().attribute(selected, x, reference=torch.zeros_like(x), clips=["intro.wav"])
    assert "LRP of target 'fear': on 1 clip(s) (intro.wav)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        kept = LRP(zero_bias=False).attribute(Linear(W, 0.7).eval(), x,
                                              reference=torch.zeros_like(x))
    # the exact map W x: its parts of both signs cancel, shown as they are, no warning
    assert kept.tables["conservation"]["amplification"].iloc[0] > 10
    assert "bias-free" not in caplog.text


def test_lime_stability_does_not_rank_rounding_noise():
    """A model linear in 4 band components, 3 of them ignored: every repeat recovers the
    weights to float rounding, so the stability is 1 and the three zero weights tie."""
    from midlevel.explain.attribution.attributor import Attributor
    rng = np.random.default_rng(0)
    W = np.zeros((16, 24), np.float32)
    W[:4] = rng.normal(1, 0.3, size=(4, 24))
    x = torch.as_tensor(rng.random((2, 1, 16, 24)) * 2, dtype=torch.float32)
    bg = torch.as_tensor(rng.random((10, 1, 16, 24)) * 2, dtype=torch.float32)
    result = Attributor(Linear(W, 0.2).eval(), "lime_bands", background=bg,
                        component_options={"n": 4}, lime_samples=64, n_repeats=3).attribute(x)
    fit, comps = result.tables["fit"], result.tables["components"]
    assert (fit["r2"] > 0.999999).all()
    assert (fit["stability"] == 1.0).all()
    for _, clip in comps.groupby("clip"):
        zero = clip[clip["component"] > 0]
        assert zero["rank"].nunique() == 1


def test_the_sanity_verdict_names_its_blind_spot():
    """The exact map of a model whose evidence sits in 15 of 96 bins is unlike the input's
    picture and unlike the randomized maps: floor (a) fails at zero, and the verdict says
    that is no evidence of model independence; a map of half the bands passes."""
    from midlevel.explain.sanity import sanity_check
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.random((20, 1, 8, 12)) * 2, dtype=torch.float32)
    ref = torch.full((1, 1, 8, 12), 1.0)

    def exact(m, x, reference):
        return (m.lin.weight.detach().reshape(1, 1, 8, 12) * (x - reference)).numpy()

    box = np.zeros((8, 12), np.float32)
    box[2:5, 4:9] = rng.normal(1.0, 0.2, size=(3, 5))
    half = np.zeros((8, 12), np.float32)
    half[:4] = 1.0
    verdicts = {}
    for name, W in (("box", box), ("half", half)):
        v = sanity_check(Linear(W, 0.1).eval(), exact, x, ref, name=name, cascade=False).verdict
        verdicts[name] = v[v["similarity"] == "spearman_abs"].iloc[0]
    assert not verdicts["box"]["passed"]
    assert verdicts["box"]["verdict"].startswith("failed on floor (a) only, at zero")
    assert verdicts["half"]["verdict"] == "passed"


def test_cached_outputs_and_explainers_follow_the_reference_and_background():
    """A second call with another reference (integrated gradients) or background (SHAP
    GradientExplainer) of the same shape: completeness against the new one."""
    from midlevel.explain.attribution.captum import IntegratedGradients
    from midlevel.explain.attribution.shap import ShapGradient
    rng = np.random.default_rng(0)
    f = Linear(rng.normal(size=(8, 12)).astype(np.float32), 0.7).eval()
    x = torch.as_tensor(rng.random((3, 1, 8, 12)) * 2, dtype=torch.float32)
    zeros, ones = torch.zeros(1, 1, 8, 12), torch.ones(1, 1, 8, 12)
    ig = IntegratedGradients()
    ig.attribute(f, x, reference=zeros)
    again = ig.attribute(f, x, reference=ones)
    with torch.no_grad():
        fx, f_ones = f(x)[:, 0].numpy(), float(f(ones))
    assert again.expected == pytest.approx(f_ones, rel=1e-6)
    np.testing.assert_allclose(fx - again.expected, again.values.reshape(3, -1).sum(1),
                               rtol=1e-4, atol=1e-4)
    shap = ShapGradient(n_samples=8)
    shap.attribute(f, x, reference=zeros, background=zeros.expand(4, -1, -1, -1))
    other = shap.attribute(f, x, reference=ones, background=ones.expand(4, -1, -1, -1))
    assert other.expected == pytest.approx(f_ones, rel=1e-6)


def test_a_cache_key_follows_edits_of_every_kind():
    """Re-audit 15: a key remembered per tensor object missed an edit through a numpy view
    (no version bump); the key is the values' digest, every call."""
    from midlevel.explain.attribution.base import fingerprint
    t = torch.zeros(2, 3)
    first = fingerprint(t)
    t.numpy()[0, 0] = 1.0                             # no version bump
    assert fingerprint(t) != first
    assert fingerprint(torch.zeros(2, 3)) == first    # equal values, equal key
    assert fingerprint(np.zeros((2, 3), np.float32)) == first


def test_lime_ties_are_chains_of_close_neighbours():
    """Second re-audit 15: values each within the tolerance of their neighbour are one tie,
    wherever they fall (compared with the run's first value, a + 1.8 tol split off)."""
    from midlevel.explain.attribution.lime import TIE_RTOL, _snapped
    tol = TIE_RTOL * 1.0
    W = np.array([1.0, 0.5, 0.5 + 0.9 * tol, 0.5 + 1.8 * tol, 0.2])
    np.testing.assert_array_equal(_snapped(W, W), [1.0, 0.5, 0.5, 0.5, 0.2])
    apart = np.array([1.0, 0.5, 0.5 + 3 * tol])
    assert len(set(_snapped(apart, apart))) == 3


def test_a_remembered_key_is_checked_against_a_copy():
    """The memo of data_key: the same object unchanged gives the remembered key; an edit
    through a numpy view (no version bump) or in place gives the new values' key."""
    from midlevel.explain.attribution.base import fingerprint
    from midlevel.explain.attribution.captum import IntegratedGradients
    m = IntegratedGradients()
    t = torch.zeros(2, 3)
    first = m.data_key(t)
    assert m.data_key(t) is first
    t.numpy()[0, 0] = 1.0
    assert m.data_key(t) == fingerprint(t) != first
    t += 1
    assert m.data_key(t) == fingerprint(t)

