"""End to end on the synthetic tag world: a spec of binary concept tags and a multi-label
target validates, trains in every mode (in memory and streaming) and gives coefficients,
contributions and interventions; the commands take tags."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from midlevel.data.spec import load_spec
from midlevel.data.validate import validate
from midlevel.explain.coefficients import run_coefficients
from midlevel.explain.head import LinearHead
from midlevel.synth import tags as tagging
from midlevel.synth.dataset import synthesize
from midlevel.training.from_spec import train

CONFIG = dict(preset="small", width=0.125, crop_seconds=1.0, batch_size=8, eval_batch_size=64,
              lr=3e-3, patience=5)
LAYERS = [f"layer={k}" for k in tagging.TAG_LAYERS]
MOODS = [f"mood={m}" for m in tagging.MOODS]


@pytest.fixture(scope="module")
def tag_world(tmp_path_factory):
    """80 clips of 2 s; a spec of the layer tags and the moods only (what a user would write
    for a tag dataset), with the synthesized one's columns."""
    import torch
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tagworld")
    full = synthesize(root / "data", n_clips=80, seed=11, duration=2.0, n_jobs=1,
                      progress=False, tags=True)
    raw = yaml.safe_load(full.read_text())
    raw.pop("segments")
    raw["concepts"] = {"layer": raw["concepts"]["layer"]}
    raw["targets"] = {"mood": raw["targets"]["mood"]}
    spec = root / "data" / "tags_only.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    return root, spec, full


def _train(world, mode, **extra):
    root, spec, _ = world
    return train(spec, root / f"{mode}{'_stream' if extra else ''}", mode=mode,
                 config={**CONFIG, **extra}, epochs=2, cache_dir=root / "cache",
                 progress=False, overwrite=True)


def test_the_tag_spec_validates(tag_world):
    _, spec, full = tag_world
    for path in (spec, full):
        report = validate(load_spec(path), progress=False)
        assert report.ok, report.problems
    assert load_spec(spec).concept_names == LAYERS
    assert load_spec(spec).target_names == MOODS


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["blackbox", "independent", "sequential", "joint"])
def test_every_mode_trains_and_explains_with_tags(tag_world, mode, tmp_path):
    run = _train(tag_world, mode)
    m = run.metrics
    assert m[m["name"].isin(MOODS)]["auc"].notna().any()
    assert "mean:mood" in set(m["name"])
    if mode == "blackbox":
        return
    assert "mean:layer" in set(m["name"])
    coefs = run_coefficients(run, leakage=mode != "independent")
    t = coefs.table
    assert set(t["target"]) == set(MOODS) and set(t["concept"]) == set(LAYERS)
    assert (t["method"] == "binomial GLM").all()
    head = LinearHead.from_run(run)
    for row in t.head(4).itertuples():  # what the model does is the head
        assert row.model_weight == pytest.approx(head.weight_of(row.target, row.concept))
    assert t[["ci_low", "ci_high", "p_value"]].notna().all(axis=None)
    from midlevel.workflows.explain_concepts import explain_concepts
    audio = sorted((tag_world[0] / "data" / "audio").glob("*.wav"))[:2]
    result = explain_concepts(run, audio, tmp_path / "explain", timeline=False,
                              dataset_split=None, settings={"layer=drums": "on"})
    c = result.contributions
    assert set(c["concept_kind"]) == {"binary"} and set(c["output_kind"]) == {"binary"}
    inter = pd.read_csv(tmp_path / "explain" / "interventions.csv")
    assert inter["intervened_probability"].between(0, 1).all()
    assert (tmp_path / "explain" / f"{result.predictions.index[0]}_contributions.png").is_file()


@pytest.mark.slow
def test_streaming_trains_the_same_run_as_in_memory(tag_world):
    a = _train(tag_world, "joint")
    b = _train(tag_world, "joint", max_memory=0, workers=1)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    log = (b.path / "train.log").read_text()
    assert "streamed from the feature cache" in log
    assert "held in memory" in (a.path / "train.log").read_text()


def test_the_data_recover_the_signs_of_the_known_logistic_map(tag_world):
    """What the data show on the tag world (the binomial GLM of each mood on the tags) against
    the truth in ground_truth.json: 1200 clips' labels (no audio needed)."""
    from midlevel.explain.evidence import ratings_fit
    rng = np.random.default_rng(3)
    tags = tagging.sample_tags(1200, rng)
    moods = tagging.sample_moods(tags, rng)
    X = pd.DataFrame(tags, columns=LAYERS)
    Y = pd.DataFrame(moods, columns=MOODS)
    table = ratings_fit(X, Y, binary_targets=MOODS).table
    truth = json.loads((tag_world[2].parent / "ground_truth.json").read_text())["tags"]["map"]
    true = np.array([truth["weights"][t.split("=")[1]][c.split("=")[1]]
                     for t, c in zip(table["target"], table["concept"])])
    nonzero = true != 0
    assert (np.sign(table["weight"][nonzero]) == np.sign(true[nonzero])).mean() >= 0.95
    covered = (table["ci_low"] <= true) & (true <= table["ci_high"])
    assert covered.mean() >= 0.8


def test_cli_synth_tags_and_evaluate_threshold(tmp_path, capsys):
    from midlevel.cli import main
    assert main(["synth", "--out", str(tmp_path / "d"), "--n-clips", "4", "--duration", "1",
                 "--tags", "--jobs", "1", "--quiet"]) == 0
    spec = load_spec(tmp_path / "d" / "spec.yaml")
    assert [c for c in spec.concept_names if c.startswith("layer=")] == LAYERS
    assert main(["validate", str(tmp_path / "d" / "spec.yaml"), "--quiet"]) == 0
    assert "binary: 8 column(s)" in capsys.readouterr().out
