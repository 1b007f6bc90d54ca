"""LRP through zennit on the real backbone: relevance is conserved (sum of the map = f(x)) for
random and trained models, black box and bottleneck alike; the model is left as it was; and on
the planted-event task the map sits inside the event and deleting it first beats random."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import OutputSelector
from midlevel.testing.events import EventTask
from midlevel.explain.faithfulness import box_share
from midlevel.explain.harness import faithfulness
from midlevel.explain.attribution.lrp import LRP
from midlevel.models import BlackBox, ConceptBottleneck

pytest.importorskip("zennit")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def event():
    """A small black box trained on the event task, a background, its mean as the reference,
    and 12 clips with a clearly present event."""
    task = EventTask()
    model = task.train_model(steps=150)
    x, y = task.sample(64, seed=1)
    bg, _ = task.sample(32, seed=2)
    strong = np.argsort(-y[:, 0].numpy())[:12]
    return task, OutputSelector(model).eval(), x[strong], bg, bg.mean(0, keepdim=True)


def _random_models(x):
    torch.manual_seed(0)
    bb = BlackBox([{"name": "e"}], backbone={"width": 0.125, "dropout": 0.3})
    cb = ConceptBottleneck(["a", "b"], [{"name": "e"}], backbone={"width": 0.125})
    for m in (bb, cb):
        m.set_scales(input_mean=float(x.mean()), input_std=float(x.std()))
    return {"blackbox": OutputSelector(bb).eval(),
            "concept": OutputSelector(cb, "concept", 1).eval(),
            "bottleneck_target": OutputSelector(cb, "target", 0).eval()}


@pytest.mark.parametrize("composite", ["epsilon_plus", "epsilon_plus_flat",
                                       "epsilon_alpha2_beta1"])
def test_relevance_is_conserved_on_random_backbones(composite):
    x, _ = EventTask().sample(8, seed=3)
    for name, f in _random_models(x).items():
        res = LRP(composite=composite).attribute(f, x, reference=x.mean(0, keepdim=True))
        t = res.tables["conservation"]
        assert res.values.shape == tuple(x.shape) and res.expected == 0.0
        np.testing.assert_allclose(res.values.reshape(8, -1).sum(1), t["relevance_sum"],
                                   rtol=1e-4, atol=1e-6)
        # the map sums to f(x): float32 rounding of the BatchNorm merge, ~1e-4 relative
        assert t["relative_error"].max() < 2e-3, (name, t)


def test_relevance_is_conserved_on_the_trained_model_and_the_model_is_untouched(event):
    _, f, x, bg, ref = event
    before = {k: v.clone() for k, v in f.state_dict().items()}
    with torch.no_grad():
        out = f(x)[:, 0].numpy()
    t = LRP().attribute(f, x, reference=ref, background=bg).tables["conservation"]
    np.testing.assert_allclose(t["output"], out, rtol=1e-6)
    assert t["relative_error"].max() < 2e-3, t
    after = f.state_dict()
    assert set(after) == set(before)  # the canonizer's merged biases are gone again
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert all(m.bias is None for m in f.modules() if isinstance(m, nn.Conv2d))


def test_biases_absorb_relevance_when_kept(event):
    _, f, x, bg, ref = event
    kept = LRP(zero_bias=False).attribute(f, x, reference=ref).tables["conservation"]
    assert kept["relative_error"].median() > 0.05  # the merged BatchNorm shifts take a share


def test_unknown_modules_are_refused():
    class Square(nn.Module):
        def forward(self, x):
            return x * x

    f = nn.Sequential(nn.Conv2d(1, 2, 3), Square(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(2, 1))
    with pytest.raises(AttributionError, match="Square"):
        LRP().attribute(f, torch.rand(2, 1, 8, 8), reference=torch.zeros(1, 1, 8, 8))
    with pytest.raises(AttributionError, match="composite"):
        LRP(composite="nope")


def test_lrp_finds_the_event_and_deletion_beats_random(event):
    task, f, x, bg, ref = event
    values = LRP().attribute(f, x, reference=ref, background=bg).values
    share = box_share(values, task.box)
    assert (share["ratio"] >= 3).all(), share  # measured: mean 13.7, min 8.4 on 30 clips
    res = faithfulness(f, x, {"lrp": values}, ref, modes=("deletion",), n_random=5)
    assert res.scores["morf_better"].mean() >= 0.9
    c = res.comparison.set_index("metric")
    assert c.loc["between_gain", "verdict"] == "better than random"


def test_a_clip_shorter_than_the_window_keeps_the_relevance_of_its_padding(event):
    """Audit 8a, item 2: a clip shorter than the window is zero-padded inside WindowedOutput,
    and the relevance reaching the padding was dropped, which read as a conservation error
    of 0.66-0.90. LRP pads before propagating: the map covers the clip's frames, the padding's
    relevance is reported beside it, and together they conserve f(x)."""
    from midlevel.explain.attribution.base import WindowedOutput
    _, f, x, _, ref = event
    n = x.shape[-1]
    short = x[:4, ..., : n // 2]
    windowed = WindowedOutput(f, n, n // 4).eval()
    res = LRP().attribute(windowed, short, reference=ref[..., : n // 2])
    t = res.tables["conservation"]
    assert res.values.shape == tuple(short.shape)
    assert (t["padding_relevance"].abs() > 1e-3 * t["output"].abs()).all()  # the model reads it
    assert t["relative_error"].max() < 2e-3, t
    np.testing.assert_allclose(res.values.reshape(4, -1).sum(1), t["relevance_sum"], rtol=1e-4,
                               atol=1e-6)
    # the same as propagating the padded clip through f itself
    padded = nn.functional.pad(short, (0, n - n // 2))
    full = LRP().attribute(f, padded, reference=ref)
    np.testing.assert_allclose(res.values, full.values[..., : n // 2], rtol=1e-4, atol=1e-6)
    # a clip as long as the window has no padding
    whole = LRP().attribute(windowed, x[:2], reference=ref).tables["conservation"]
    assert (whole["padding_relevance"] == 0).all()
    # re-audit 8, N3: what explain and compare write counts the padding, in rating units
    # too: the additivity gap is conservation's, not the padding's share
    from midlevel.explain.attribution.result import Attribution
    attr = Attribution(values=res.values, inputs=short.numpy(), predictions=t["output"],
                       expected=0.0, method="lrp", output="e", output_kind="target",
                       seconds=0.0, padding=res.padding, rating=(3.0, 2.0, "rating"))
    summary = attr.in_rating_units().summary()
    np.testing.assert_allclose(summary["padding"], 2.0 * t["padding_relevance"], rtol=1e-6)
    assert (summary["additivity_gap"].abs() < 2e-3 * summary["prediction"].abs() + 1e-6).all()
    assert (summary["padding"].abs() > 1e-3).all()
