"""The synthetic tag world: layer families as binary concepts with known truth, moods from a
known logistic map, and nothing changed for datasets without tags."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from midlevel.data.annotations import load_annotations
from midlevel.data.spec import load_spec
from midlevel.data.validate import validate
from midlevel.errors import ArgumentError
from midlevel.synth import tags as tagging
from midlevel.synth.dataset import synthesize
from midlevel.synth.material import draw_material
from midlevel.synth.render import render_clip
from midlevel.synth.world import MIDLEVEL_CONCEPTS

SPECS = Path(__file__).resolve().parents[1] / "data_specs"

CONCEPTS = dict.fromkeys(MIDLEVEL_CONCEPTS, 0.5)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    plain = tmp_path_factory.mktemp("plain")
    tagged = tmp_path_factory.mktemp("tagged")
    synthesize(plain, n_clips=8, seed=5, duration=2.0, n_jobs=1, progress=False)
    spec = synthesize(tagged, n_clips=8, seed=5, duration=2.0, n_jobs=1, progress=False,
                      tags=True)
    return plain, tagged, spec


def _digest(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def test_tags_add_columns_and_leave_the_ratings_as_they_were(worlds):
    plain, tagged, _ = worlds
    a = pd.read_csv(plain / "annotations.csv", dtype=str)
    b = pd.read_csv(tagged / "annotations.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(a, b[a.columns])
    assert list(b.columns[len(a.columns):]) == [*tagging.TAG_COLUMNS.values(), "mood"]
    assert (plain / "segments.csv").read_text() == (tagged / "segments.csv").read_text()


def test_a_clip_holding_every_layer_sounds_as_without_tags(worlds):
    plain, tagged, _ = worlds
    truth = json.loads((tagged / "ground_truth.json").read_text())["tags"]["clips"]
    for clip, record in truth.items():
        same = _digest(plain / "audio" / f"{clip}.wav") == _digest(tagged / "audio" / f"{clip}.wav")
        assert same == (len(record["layers"]) == len(tagging.TAG_LAYERS)), clip


def test_the_tag_spec_validates_with_binary_concepts_and_a_multilabel_target(worlds):
    _, tagged, spec_path = worlds
    spec = load_spec(spec_path)
    report = validate(spec, progress=False)
    assert report.ok, report.problems
    assert [c for c in spec.concept_names if c.startswith("layer=")] == [
        f"layer={k}" for k in tagging.TAG_LAYERS]
    assert [t for t in spec.target_names if t.startswith("mood=")] == [
        f"mood={m}" for m in tagging.MOODS]
    table = load_annotations(spec)
    truth = json.loads((tagged / "ground_truth.json").read_text())["tags"]
    for clip, record in truth["clips"].items():
        for k in tagging.TAG_LAYERS:
            assert table.loc[clip, f"layer={k}"] == float(k in record["layers"])
        for m in tagging.MOODS:  # `empty: none`: a clip without moods has 0 for every mood
            assert table.loc[clip, f"mood={m}"] == float(m in record["moods"])
    assert truth["map"]["weights"]["driving"]["drums"] == 2.5
    assert "binary:" in report.summary()


def test_a_silent_family_changes_the_audio_and_only_when_asked():
    mat = draw_material(np.random.default_rng(0), 2.0, 22050)
    full = render_clip(mat, CONCEPTS, None)
    np.testing.assert_array_equal(full, render_clip(mat, CONCEPTS, None,
                                                    dict.fromkeys(tagging.TAG_LAYERS, True)))
    for layer in tagging.TAG_LAYERS:
        other = render_clip(mat, CONCEPTS, None, {layer: False})
        assert np.abs(other - full).max() > 1e-3, layer
    with pytest.raises(ArgumentError, match="unknown"):
        render_clip(mat, CONCEPTS, None, {"strings": False})


def test_moods_follow_the_known_logistic_map():
    rng = np.random.default_rng(0)
    tags = tagging.sample_tags(6000, rng)
    moods = tagging.sample_moods(tags, rng)
    assert abs(tags.mean() - tagging.PRESENCE) < 0.02
    design = sm.add_constant(tags)
    for t, mood in enumerate(tagging.MOODS):
        fit = sm.GLM(moods[:, t], design, family=sm.families.Binomial()).fit()
        ci = fit.conf_int(0.001)
        truth = np.r_[tagging.DEFAULT_TAG_INTERCEPTS[mood], tagging.DEFAULT_TAG_WEIGHTS.loc[mood]]
        assert ((ci[:, 0] <= truth) & (truth <= ci[:, 1])).all(), mood
    cells = tagging.mood_cells(np.array([[1, 0, 1, 0], [0, 0, 0, 0]]))
    assert cells == ["driving|dark", ""]


@pytest.mark.parametrize("shipped, seed, tags", [("synthetic.yaml", 0, False),
                                                 ("synthetic_tags.yaml", 7, True)])
def test_a_shipped_synthetic_spec_reads_what_synth_writes(tmp_path, shipped, seed, tags):
    """The copy in data_specs/, pointed at data from the command its header gives, reads the
    same clips, ratings, splits and segments as the spec synth writes beside the data (the tag
    spec lacked the segments table, so its per-half ratings were silently unused)."""
    written = synthesize(tmp_path, n_clips=12, seed=seed, duration=2.0, n_jobs=1,
                         progress=False, tags=tags)
    ours = load_annotations(load_spec(SPECS / shipped, root=str(tmp_path)))
    theirs = load_annotations(load_spec(written))
    pd.testing.assert_frame_equal(ours, theirs, check_like=False)
    assert len(theirs.attrs["segments"].table) > 0
    pd.testing.assert_frame_equal(ours.attrs["segments"].table, theirs.attrs["segments"].table)
