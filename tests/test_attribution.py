"""Attribution on spectrogram inputs: SHAP additivity on our models, exactness on toy models
with known answers, shapes, marginals, plots."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from midlevel.errors import AttributionError
from midlevel.explain.attribution.attributor import Attributor, attribute
from midlevel.explain.attribution.registry import CLASSES, METHODS, resolve_method
from midlevel.explain.attribution.result import Attribution
from midlevel.models import BlackBox, ConceptBottleneck

BANDS, FRAMES = 40, 64
BACKBONE = {"width": 0.125, "dropout": 0.3, "last_kernel": 3}


def _warm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give BatchNorm non-trivial running statistics and scales, then eval mode."""
    g = torch.Generator().manual_seed(seed)
    model.set_scales(input_mean=0.5, input_std=0.3)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(8, 1, BANDS, FRAMES, generator=g) * 1.5)
    return model.eval()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    bb = _warm(BlackBox([{"name": "valence"}, {"name": "energy"}], backbone=BACKBONE))
    cb = _warm(ConceptBottleneck(["dissonance", "melodiousness"],
                                 [{"name": "valence"}, {"name": "energy"}], backbone=BACKBONE))
    return bb, cb


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, BANDS, FRAMES, generator=g) * 1.5
    bg = torch.rand(6, 1, BANDS, FRAMES, generator=g) * 1.5
    return x, bg


@pytest.mark.parametrize("output", ["energy", "concept:dissonance", "melodiousness"])
def test_deep_shap_additivity_on_bottleneck(models, data, output):
    _, cb = models
    x, bg = data
    # shap itself asserts additivity (check_additivity=True); we check it more tightly
    attr = attribute(cb, x, method="shap_deep", background=bg, output=output,
                     check_additivity=True)
    assert attr.values.shape == x.shape
    scale = np.abs(attr.predictions - attr.expected).max()
    assert np.abs(attr.additivity_gap()).max() < 1e-3 * max(scale, 1.0)
    assert attr.output_kind == ("target" if output == "energy" else "concept")


def test_deep_shap_additivity_on_blackbox_longer_input(models, data):
    bb, _ = models
    x, bg = data
    long_x = torch.cat([x, x], -1)  # the background is tiled to the input's length
    attr = attribute(bb, long_x, method="shap", background=bg, output="valence")
    assert attr.values.shape == long_x.shape
    assert np.abs(attr.additivity_gap()).max() < 1e-3
    # a model with a functional / in-place activation would have failed the check above;
    # the expected value is the mean output over the background
    with torch.no_grad():
        mean_bg = bb(torch.cat([bg, bg], -1)).targets[:, 0].mean().item()
    assert attr.expected == pytest.approx(mean_bg, abs=1e-5)


def _model_state(model: nn.Module) -> dict:
    """What a caller of an attribution method would notice changed on its model."""
    return {"parameters": [(n, p.requires_grad) for n, p in model.named_parameters()],
            "state": list(model.state_dict()),
            "values": [float(v.double().sum()) for v in model.state_dict().values()],
            "training": [m.training for m in model.modules()],
            "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks)
                         + len(m._backward_hooks) for m in model.modules())}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_shapes_and_marginals(models, data, method):
    bb, _ = models
    x, bg = data
    hz = np.geomspace(30, 10000, BANDS)
    before, x_before = _model_state(bb), x.clone()
    attr = attribute(bb, x, method=method, background=bg, output="energy", fps=31.25,
                     band_frequencies=hz, window=(8, 16), n_steps=8, n_samples=8,
                     clips=["a", "b"])
    # the caller's model and input as they were (audit 23b: SHAP's DeepExplainer left 22
    # trainable parameters on the model, and its state_dict no longer loaded into the run)
    assert _model_state(bb) == before and torch.equal(x, x_before)
    assert attr.values.shape == x.shape and np.isfinite(attr.values).all()
    assert attr.ms_per_clip > 0
    tm, fm = attr.time_marginal(), attr.frequency_marginal()
    assert list(tm["clip"].unique()) == ["a", "b"]
    assert len(tm) == 2 * FRAMES and len(fm) == 2 * BANDS
    total = attr.values.reshape(2, -1).sum(1)
    np.testing.assert_allclose(tm.groupby("clip")["attribution"].sum().to_numpy(), total,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fm.groupby("clip")["attribution"].sum().to_numpy(), total,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(tm["seconds"].iloc[:FRAMES], np.arange(FRAMES) / 31.25)
    np.testing.assert_allclose(fm["hz"].iloc[:BANDS], hz)
    np.testing.assert_allclose(tm["positive"] + tm["negative"], tm["attribution"], atol=1e-6)


class BoxSum(nn.Module):
    """Output = 2 * sum of the input inside a box: attribution is known exactly."""

    box = (10, 20, 30, 50)

    def forward(self, x):
        b0, b1, f0, f1 = self.box
        return 2.0 * x[:, :, b0:b1, f0:f1].sum((1, 2, 3))[:, None]


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "occlusion",
                                    "gradient_shap", "shap_gradient"])
def test_known_answer_on_linear_box_model(data, method):
    x, bg = data
    # occlusion with 1x1 patches is exact for a linear model (larger patches spread the
    # patch's effect over the whole patch)
    attr = attribute(BoxSum(), x, method=method, background=bg, baseline="zero",
                     window=(1, 1), n_steps=4, n_samples=16, batch_size=512)
    b0, b1, f0, f1 = BoxSum.box
    inside = np.zeros(x.shape[-2:], bool)
    inside[b0:b1, f0:f1] = True
    v = attr.maps
    assert np.abs(v[:, ~inside]).max() < 1e-6
    if method in ("integrated_gradients", "deeplift", "occlusion"):  # exact from a zero baseline
        np.testing.assert_allclose(v[:, inside], 2.0 * x[:, 0].numpy()[:, inside], atol=1e-4)
    else:  # expected gradients of a linear model: 2 * (x - a mean of background samples)
        xin = x[:, 0].numpy()[:, inside]
        bgin = bg[:, 0].numpy()[:, inside]
        lo, hi = 2 * (xin - bgin.max(0)), 2 * (xin - bgin.min(0))
        assert ((v[:, inside] >= lo - 1e-4) & (v[:, inside] <= hi + 1e-4)).all()


def test_batch_consistency(models, data):
    bb, _ = models
    x, bg = data
    a = Attributor(bb, "integrated_gradients", background=bg, n_steps=8)
    both = a.attribute(x).values
    one = np.concatenate([a.attribute(x[i:i + 1]).values for i in range(len(x))])
    np.testing.assert_allclose(both, one, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness(models, data):
    bb, _ = models
    x, bg = data
    attr = attribute(bb, x, method="ig", background=bg, n_steps=64)
    gap = np.abs(attr.additivity_gap())
    assert (gap < 0.05 * np.abs(attr.predictions - attr.expected) + 1e-3).all()


def test_errors_name_what_exists(models, data):
    bb, cb = models
    x, bg = data
    with pytest.raises(AttributionError, match="concepts are none"):
        attribute(bb, x, output="dissonance")
    with pytest.raises(AttributionError, match="targets are"):
        attribute(cb, x, output="nope")
    with pytest.raises(AttributionError, match="methods are"):
        resolve_method("anchors")
    with pytest.raises(AttributionError, match="shape"):
        attribute(bb, torch.zeros(2, 2, BANDS, FRAMES), method="ig")


def test_save_load_roundtrip(models, data, tmp_path):
    bb, _ = models
    x, bg = data
    attr = attribute(bb, x, method="deeplift", background=bg, fps=31.25, clips=["a", "b"])
    attr.save(tmp_path / "a.npz")
    back = Attribution.load(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.values, attr.values)
    assert back.clips == ["a", "b"] and back.method == "deeplift" and back.fps == 31.25


def test_plots_centre_zero_and_label_axes(models, data):
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    from midlevel.plots.attribution import (
        attribution_figure, attribution_label, attribution_map, frequency_profile, time_curve,
    )
    bb, _ = models
    x, bg = data
    attr = attribute(bb, x, method="deeplift", background=bg, fps=31.25,
                     band_frequencies=np.geomspace(30, 10000, BANDS))
    mesh = attribution_map(attr, 1)
    assert isinstance(mesh.norm, TwoSlopeNorm) and mesh.norm.vcenter == 0
    assert mesh.norm.vmin == -mesh.norm.vmax
    assert mesh.axes.get_xlabel() == "time (s)" and "Hz" in mesh.axes.get_ylabel()
    assert mesh.axes.get_xlim()[1] == pytest.approx(FRAMES / 31.25, abs=0.05)
    lines = time_curve(attr, 0)
    np.testing.assert_allclose(lines[0].get_ydata(), attr.maps[0].sum(0), rtol=1e-5)
    lines = frequency_profile(attr, 0)
    np.testing.assert_allclose(lines[0].get_xdata(), attr.maps[0].sum(1), rtol=1e-5)
    fig = attribution_figure(attr, 0)
    assert len(fig.axes) == 4  # map, frequency profile, time curve, colour bar
    assert fig.axes[-1].get_ylabel() == attribution_label(attr) != "attribution"  # units
    fig.canvas.draw()  # the frequency profile's tick labels do not overlap
    boxes = [t.get_window_extent() for t in fig.axes[1].get_xticklabels() if t.get_text()]
    assert len(boxes) <= 4 and all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))
    plt.close("all")


@pytest.mark.parametrize("method", ["shap_deep", "shap_gradient"])
def test_explainers_are_built_once_per_input_length(models, data, method):
    bb, _ = models
    x, bg = data
    seen = [0]
    hook = bb.backbone.register_forward_hook(
        lambda m, i, o: seen.__setitem__(0, seen[0] + len(i[0])))
    try:
        a = Attributor(bb, method, background=bg, n_samples=4)
        first = a.attribute(x[:1])
        n_first, seen[0] = seen[0], 0
        second = a.attribute(x[:1])
        n_second = seen[0]
    finally:
        hook.remove()
    assert n_second == n_first - (len(bg) if method == "shap_deep" else 2 * len(bg))
    assert second.expected == first.expected
    if method == "shap_deep":
        np.testing.assert_allclose(second.values, first.values, atol=1e-6)


def test_windowed_attributions_explain_the_number_predict_reports():
    """With ``windows``, the explained output is the mean over predict's windows: the
    prediction of the Attribution equals what predict_specs reports for the whole clip, and
    SHAP's attributions add up to it."""
    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.models.bottleneck import BlackBox
    from midlevel.training.predict import predict_specs
    torch.manual_seed(0)
    model = BlackBox([{"name": "y"}], backbone={"width": 0.125, "dropout": 0.0}).eval()
    spec = torch.randn(40, 75)          # 75 frames, windows of 32 every 32: starts 0, 32, 43
    bg = torch.randn(4, 1, 40, 32)
    attr = Attributor(model, "shap_deep", background=bg, windows=(32, 32)).attribute(spec)
    _, out = predict_specs(model, [spec], 32, 32, device=torch.device("cpu"))
    assert attr.predictions[0] == pytest.approx(float(out[0, 0]), abs=1e-5)
    assert abs(attr.additivity_gap()[0]) < 1e-3
    whole = Attributor(model, "integrated_gradients", background=bg).attribute(spec)
    assert whole.predictions[0] != pytest.approx(float(out[0, 0]), abs=1e-4)


def test_attribution_is_seeded_without_touching_the_callers_random_state(models, data):
    """Sampling methods give the same maps on repeated calls, and the caller's global torch
    random states (torch and numpy) are the same after the call as before it."""
    x, bg = data
    bb, _ = models
    at = Attributor(bb, "gradient_shap", background=bg, n_samples=4)
    torch.manual_seed(123)
    np.random.seed(7)
    before, before_np = torch.get_rng_state(), np.random.get_state()[1].copy()
    first = at.attribute(x[:1]).values
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(np.random.get_state()[1], before_np)
    np.testing.assert_array_equal(at.attribute(x[:1]).values, first)


@pytest.mark.parametrize("method", [m for m in METHODS if CLASSES[m].deterministic])
def test_methods_marked_deterministic_draw_no_random_numbers(models, data, method):
    """``deterministic`` lets ``Attributor`` skip seeding: a method with the flag must give the
    same map under different global seeds and leave both global generators untouched (a
    sampling method wrongly marked would fail here)."""
    x, bg = data
    bb, _ = models
    at = Attributor(bb, method, background=bg, n_steps=4, window=(8, 8))
    maps = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        before, before_np = torch.get_rng_state(), np.random.get_state()[1].copy()
        maps.append(at.attribute(x[:1]).values)
        assert torch.equal(torch.get_rng_state(), before), f"{method} drew from torch"
        np.testing.assert_array_equal(np.random.get_state()[1], before_np,
                                      err_msg=f"{method} drew from numpy")
    np.testing.assert_array_equal(maps[0], maps[1])


def test_sampling_methods_are_not_marked_deterministic():
    """The methods that sample (SHAP's expected gradients, GradientShap, every LIME) keep the
    seeded path."""
    sampling = {m for m in METHODS if m in ("shap_gradient", "gradient_shap")
                or m.startswith("lime")}
    assert sampling and not any(CLASSES[m].deterministic for m in sampling)


def test_an_option_no_method_takes_is_refused_by_name():
    """A misspelled setting, or a dict passed as ``options=`` (as two tests of compare did),
    was silently dropped: the method ran at its defaults as if the setting had acted."""
    import pytest
    import torch
    from midlevel.errors import AttributionError
    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.explain.attribution.registry import known_options, make_method
    from midlevel.models.bottleneck import BlackBox
    assert {"n_steps", "n_samples", "window", "stride", "batch_size", "seed",
            "lime_samples", "component_options", "layer", "composite"} <= known_options()
    assert make_method("ig", n_steps=4).n_steps == 4
    assert make_method("occlusion", n_steps=4).window == (16, 32)  # taken by another method
    with pytest.raises(AttributionError, match=r"unknown attribution option\(s\) \['n_step'\]"):
        make_method("ig", n_step=4)
    model = BlackBox([{"name": "y"}], backbone={"width": 0.125})
    with pytest.raises(AttributionError, match=r"\['options'\]"):
        Attributor(model, "integrated_gradients", options={"n_steps": 2},
                   background=torch.zeros(2, 1, 40, 64))


@pytest.mark.parametrize("method", ["shap_deep", "shap_gradient", "gradient_shap",
                                    "integrated_gradients", "occlusion"])
def test_listen_back_reads_shares_against_the_baseline_the_values_decompose(models, data,
                                                                           method):
    """Audit 8a, item 1: SHAP's explainers and GradientShap decompose f(x) - mean f(background),
    which differs from f(mean background) on a network: listen-back removes to each background
    input and averages, so its f_ref is the method's own expected value; the other methods
    keep the single mean reference, f(reference)."""
    from midlevel.data.frontends import LogFilteredSpectrogram
    from midlevel.explain.listen_back import evidence_masks, listen_back_parts
    bb, _ = models
    _, bg = data
    fe = LogFilteredSpectrogram()
    y = np.random.default_rng(0).normal(size=fe.sample_rate * 2).astype(np.float32)
    y /= np.abs(y).max()
    x = fe(torch.as_tensor(y))[None, None]
    bgx = torch.rand(6, 1, *x.shape[-2:], generator=torch.Generator().manual_seed(2)) * 1.5
    at = Attributor(bb, method, output="valence", background=bgx)
    attr = at.attribute(x)
    refs = at.removal_reference(x)
    f = at.selector
    with torch.no_grad():
        f_mean_ref = float(f(bgx.mean(0, keepdim=True))[0, 0])
        f_bg = f(bgx)[:, 0]
    assert abs(f_bg.mean().item() - f_mean_ref) > 1e-3  # the two baselines differ here
    table, _ = listen_back_parts(y, attr.values[0, 0], f, fe, reference=refs,
                                 parts=("for", "complement"))
    row = table.set_index("part").loc["for"]
    if at.impl.baseline_is_background:
        assert refs.shape[0] == len(bgx)
        assert row["f_ref"] == pytest.approx(attr.expected, abs=1e-4)
        # a part's output: the mean over the references of the part placed in each
        m = torch.as_tensor(evidence_masks(attr.values[0, 0], mass=0.9)["for"],
                            dtype=x.dtype)
        with torch.no_grad():
            spec_part = f(bgx + (x - bgx) * m)[:, 0].mean().item()
        assert (row["share_spectrogram"] * (row["f_x"] - row["f_ref"]) + row["f_ref"]
                ) == pytest.approx(spec_part, abs=1e-4)
    else:
        assert refs.shape[0] == 1 and row["f_ref"] == pytest.approx(f_mean_ref, abs=1e-5)


@pytest.mark.parametrize("method", ["integrated_gradients", "shap_deep", "occlusion"])
def test_a_class_is_explained_by_what_its_probabilities_fix(data, method):
    """Audit 23c: a class's raw logit was explained, which a shift shared by every class's
    logit changes while no probability moves: two models predicting alike got maps r = 0.01
    and totals of opposite sign. The explained unit is the logit minus the class group's
    mean, and the maps of the two models agree."""
    from midlevel.explain.attribution.base import OutputSelector, output_units
    x, bg = data
    torch.manual_seed(3)
    targets = [{"name": "valence"},
               {"name": "scene", "kind": "class", "classes": ["calm", "sad", "tense"]}]
    model = _warm(BlackBox(targets, backbone=BACKBONE))
    shifted = _warm(BlackBox(targets, backbone=BACKBONE))
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():  # the same vector added to each class's row: no probability moves
        shift = torch.randn(shifted.output.in_features) * 2.0
        shifted.output.weight[1:4] += shift
        shifted.output.bias[1:4] += 1.5
        probs = [torch.softmax(_outputs(m, x)[:, 1:4], 1) for m in (model, shifted)]
    torch.testing.assert_close(probs[0], probs[1])
    f = OutputSelector(model, "target", 2)  # scene=sad
    assert output_units(model, "target", 2) == ("centred logit", None)
    assert output_units(model, "target", 0)[0] == "standardized"
    with torch.no_grad():
        z = _outputs(model, x)
        torch.testing.assert_close(f(x)[:, 0], z[:, 2] - z[:, 1:4].mean(1))
    maps = [attribute(m, x, method=method, background=bg, output="scene=sad", n_steps=16)
            for m in (model, shifted)]
    np.testing.assert_allclose(maps[0].values, maps[1].values, rtol=1e-3, atol=1e-5)
    assert maps[0].units == "centred logit"


def _outputs(model, x):
    out = model(x)
    return out.targets if hasattr(out, "targets") else out


def test_clip_names_are_one_per_input(models, data):
    """Audit 23b: a wrong number of names failed later in a marginal (IndexError), and
    repeated names merged the clips' rows without a word."""
    bb, _ = models
    x, bg = data
    with pytest.raises(AttributionError, match=r"1 name\(s\) for 2 input"):
        attribute(bb, x, method="integrated_gradients", background=bg, clips=["a"])
    with pytest.raises(AttributionError, match=r"repeated \(a\)"):
        attribute(bb, x, method="integrated_gradients", background=bg, clips=["a", "a"])
    attr = attribute(bb, x[:1], method="integrated_gradients", background=bg, clips="one")
    assert attr.clips == ["one"]
