"""Grad-CAM on the last conv block: shapes, the layer it picks, the ReLU option, and on the
planted-event task deletion beats random. Its localization on this toy is a known failure:
the last block's receptive field (about 111 x 111 bins) is larger than the whole 32 x 48
input, so its 2 x 4 activation grid carries almost no position; an earlier block localizes."""
from __future__ import annotations

import numpy as np
import pytest

from midlevel.explain.attribution.base import OutputSelector
from midlevel.testing.events import EventTask
from midlevel.explain.attribution.gradcam import GradCAM, last_conv_block, receptive_field
from midlevel.explain.faithfulness import box_share
from midlevel.explain.harness import faithfulness
from midlevel.models import ConceptBottleneck

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def event():
    task = EventTask()
    model = task.train_model(steps=150)
    x, y = task.sample(64, seed=1)
    bg, _ = task.sample(32, seed=2)
    strong = np.argsort(-y[:, 0].numpy())[:12]
    return task, OutputSelector(model).eval(), x[strong], bg.mean(0, keepdim=True)


def test_gradcam_layer_shape_and_relu(event):
    task, f, x, ref = event
    name, layer = last_conv_block(f)
    assert name == "model.backbone.layers.30"  # the ReLU after the last Conv2d -> BatchNorm2d
    res = GradCAM().attribute(f, x, reference=ref)
    assert res.values.shape == tuple(x.shape) and res.expected is None
    assert (res.values >= 0).all()
    t = res.tables["gradcam"]
    assert (t["layer"] == name).all()
    assert (t["cam_bands"] == 2).all() and (t["cam_frames"] == 4).all()
    assert (t["field_bands"] == 111).all() and (t["field_frames"] == 111).all()
    signed = GradCAM(relu=False).attribute(f, x, reference=ref).values
    np.testing.assert_allclose(np.clip(signed, 0, None), res.values, atol=1e-6)
    # nearest upsampling gives constant blocks of (bands / 2, frames / 4) bins
    near = GradCAM(interpolate_mode="nearest").attribute(f, x[:1], reference=ref).values[0, 0]
    assert len(np.unique(near[:16, :12])) == 1


def test_gradcam_freezes_weights_only_while_it_runs(event):
    """The weights are frozen during the call (no graph for the forward pass up to the layer)
    and given back as they were, one already frozen included; the map is captum's own."""
    import torch
    from captum.attr import LayerGradCam
    _, f, x, ref = event
    params = list(f.parameters())
    params[0].requires_grad_(False)
    try:
        before = [p.requires_grad for p in params]
        ours = GradCAM().attribute(f, x[:2], reference=ref).values
        assert [p.requires_grad for p in params] == before
    finally:
        params[0].requires_grad_(True)
    coarse = LayerGradCam(f, last_conv_block(f)[1]).attribute(x[:2], target=0,
                                                           relu_attributions=True)
    direct = torch.nn.functional.interpolate(coarse.detach(), size=tuple(x.shape[-2:]),
                                             mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(ours, direct.numpy())


def test_gradcam_on_a_bottleneck_concept():
    x, _ = EventTask().sample(3, seed=0)
    cb = ConceptBottleneck(["a", "b"], [{"name": "e"}], backbone={"width": 0.125})
    f = OutputSelector(cb, "concept", 0).eval()
    assert last_conv_block(f)[0] == "model.backbone.layers.30"
    res = GradCAM().attribute(f, x, reference=x.mean(0, keepdim=True))
    assert res.values.shape == tuple(x.shape)


def test_gradcam_deletion_beats_random(event):
    _, f, x, ref = event
    values = GradCAM().attribute(f, x, reference=ref).values
    res = faithfulness(f, x, {"gradcam": values}, ref, modes=("deletion",), n_random=5)
    assert res.scores["morf_better"].mean() >= 0.9  # measured: 30 of 30 clips


@pytest.mark.xfail(strict=True, reason="last-block Grad-CAM does not localize on the 32 x 48 "
                   "toy: measured 1.5x the box's area share (1.3x on 64 x 96)")
def test_gradcam_last_block_inside_the_event(event):
    task, f, x, ref = event
    share = box_share(GradCAM().attribute(f, x, reference=ref).values, task.box)
    assert (share["ratio"] >= 3).all()


def test_gradcam_on_a_block_with_a_finer_grid_finds_the_event(event):
    """The upsampling is aligned: at the block before the second pool (8 x 12 grid) the map
    sits on the event."""
    task, f, x, ref = event
    values = GradCAM(layer="model.backbone.layers.10").attribute(f, x, reference=ref).values
    share = box_share(values, task.box)
    assert (share["ratio"] >= 3).all(), share  # measured: mean 7.2, min 5.2
    res = faithfulness(f, x, {"gradcam": values}, ref, modes=("deletion",), n_random=5)
    assert res.scores["morf_better"].mean() >= 0.9


def test_receptive_field_is_the_extent_a_unit_reads():
    """The walked field equals the input extent that moves one central unit of a linear
    conv/pool stack (positive weights, no activation: every bin in the field has a non-zero
    gradient); a layer that is not there, or an adaptive pool before it, gives None."""
    import torch
    from torch import nn
    stack = nn.Sequential(nn.Conv2d(1, 2, 5, stride=2, padding=2), nn.Conv2d(2, 2, 3, padding=1),
                          nn.AvgPool2d(2), nn.Conv2d(2, 2, (3, 5), padding=(1, 2), dilation=1),
                          nn.AvgPool2d(2), nn.Conv2d(2, 1, 3, dilation=2))
    with torch.no_grad():
        for m in stack:
            if isinstance(m, nn.Conv2d):
                m.weight.abs_()
    x = torch.ones(1, 1, 96, 96, requires_grad=True)
    out = stack(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    moved = x.grad[0, 0].abs() > 0
    extent = (int(moved.any(1).sum()), int(moved.any(0).sum()))
    assert receptive_field(stack, "5") == extent == (55, 63)
    assert receptive_field(stack, "9") is None
    assert receptive_field(nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(1, 1, 3)), "1") is None


def test_compare_report_cost_row_names_gradcams_unit_field(event):
    """The comparison report's cost table says how coarse Grad-CAM's map is (one unit of the
    last block sees 111 x 111 bins on this backbone); other methods leave the column empty."""
    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.workflows.compare_explanations import _unit_field
    _, f, x, ref = event
    model = f.model
    cam = Attributor(model, "gradcam", background=x).attribute(x[:1], clips=["c0"])
    ig = Attributor(model, "integrated_gradients", background=x, n_steps=4).attribute(
        x[:1], clips=["c0"])
    assert _unit_field(cam) == "111 x 111"
    assert _unit_field(ig) == ""
