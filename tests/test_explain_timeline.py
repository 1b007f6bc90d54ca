"""Contributions over time on real synthesized audio: a mid-clip concept change is placed within
1 s of its true time. The concept network is an 'oracle' reading the spectrogram feature the
synthesizer changes (high-band noise for dissonance), so the test checks the time alignment of
windows, predictions, contributions and localization, not how well a CNN learned."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from midlevel.data.frontends import LogFilteredSpectrogram
from midlevel.synth import MIDLEVEL_CONCEPTS, synthesize_clip
from midlevel.explain.head import check_additivity
from midlevel.explain.timeline import contributions_over_time, locate_change
from midlevel.models.bottleneck import ConceptBottleneck


class HighBands(nn.Module):
    """``(batch, 1, n_bands, n_frames)`` -> mean of the top 30 bands ``(batch, 1)``."""

    out_features = 1

    def forward(self, x):
        return x[:, 0, -30:, :].mean(dim=(1, 2)).unsqueeze(1)


def oracle_run(concepts, fps):
    model = ConceptBottleneck(list(concepts), [{"name": "t1"}, {"name": "t2"}],
                              backbone={"width": 0.1, "dropout": 0.0})
    model.backbone = HighBands()
    model.concept_layer = nn.Linear(1, len(concepts))
    with torch.no_grad():
        model.concept_layer.weight.fill_(1.0)
        model.concept_layer.bias.zero_()
        model.head_layer.weight.copy_(torch.linspace(-1, 1, 2 * len(concepts)).reshape(2, -1))
    return SimpleNamespace(model=model.eval(), fps=fps, concept_names=list(concepts),
                           config=SimpleNamespace(crop_seconds=2.0), mode="sequential",
                           path="oracle")


@pytest.mark.parametrize("seed, at", [(0, 4.0), (1, 4.0), (0, 2.3), (1, 5.9)])
def test_mid_clip_change_is_located_within_a_second(seed, at):
    """Changes at the middle and off it (audit 16a: at the middle only, a guess of the
    middle passed too)."""
    rng = np.random.default_rng(seed)
    concepts = {c: 0.5 for c in MIDLEVEL_CONCEPTS}
    concepts["dissonance"] = 0.0
    duration = 8.0
    wave = synthesize_clip(concepts, duration=duration, rng=rng, change=("dissonance", 1.0),
                           change_time=at)
    frontend = LogFilteredSpectrogram()
    with torch.no_grad():
        spec = frontend(torch.as_tensor(wave)).numpy()
    run = oracle_run(MIDLEVEL_CONCEPTS, frontend.fps)
    baseline = np.zeros(len(MIDLEVEL_CONCEPTS))
    table, spec_out = contributions_over_time(run, spec, baseline=baseline, hop=0.25, window=2.0)
    assert spec_out.shape == spec.shape
    assert check_additivity(table) < 1e-9
    curve = table[(table["target"] == "t1") & (table["concept"] == "dissonance")].sort_values("time")
    assert curve["time"].min() == pytest.approx(1.0, abs=0.05)
    assert curve["time"].max() == pytest.approx(duration - 1.0, abs=0.05)
    # the contribution curve itself steps at the change: locate it from the contributions
    estimate = locate_change(curve["time"], curve["contribution"], window=2.0)
    assert abs(estimate - at) <= 0.5   # the issue asks for 1 s; measured ~0.2 s
    late = curve[curve["time"] > at + 1.0]["concept_value"].mean()  # windows wholly after
    early = curve[curve["time"] < at - 1.0]["concept_value"].mean()
    assert late > early   # more dissonance -> more high-band energy
