"""Inputs of the explain and compare workflows: every option is checked before the first file
is written (a failed call leaves no folder), a baseline with empty values is refused naming
file, row and concept, unknown timeline targets are refused, a black box refuses concept
options, a rating set outside its scale gives a note, and black-box attributions are written in
the units ``predict`` reports."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import train_tiny_runs
from midlevel.errors import ExplainError, MidlevelError
from midlevel.explain.head import LinearHead
from midlevel.workflows.explain_concepts import explain_concepts, read_baseline

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A joint and a black-box run (1 epoch) on 16 synthetic 3-s clips: two windows a clip."""
    root = tmp_path_factory.mktemp("inputs_world")
    spec, cache, runs = train_tiny_runs(root, n_clips=16, seed=3, duration=3.0)
    audio = sorted((root / "data" / "audio").glob("*.wav"))[:1]
    return {"root": root, "cache": cache, "runs": runs, "audio": [str(a) for a in audio]}


def _explain(world, out, **options):
    return explain_concepts(world["runs"]["joint"], world["audio"], out,
                            cache_dir=world["cache"], dataset_split=None, **options)


# ------------------------------------------------------------------------------ baseline


def test_a_baseline_with_an_empty_value_names_file_row_and_concept(world, tmp_path):
    run = world["runs"]["joint"]
    concepts = run.concept_names
    path = tmp_path / "baseline.csv"
    cells = ["5.0"] * len(concepts)
    cells[1] = ""  # the second concept: row 3 of the file (the header is row 1)
    path.write_text("concept,baseline\n" + "".join(f"{c},{v}\n" for c, v in
                                                    zip(concepts, cells)))
    with pytest.raises(ExplainError) as exc:
        read_baseline(path, concepts)
    message = str(exc.value)
    assert str(path) in message and "row 3" in message and f"'{concepts[1]}'" in message
    out = tmp_path / "out"
    with pytest.raises(ExplainError):
        _explain(world, out, baseline=path, timeline=False)
    assert not out.exists()
    cells[1] = "inf"
    path.write_text("concept,baseline\n" + "".join(f"{c},{v}\n" for c, v in
                                                    zip(concepts, cells)))
    with pytest.raises(ExplainError, match="row 3"):
        read_baseline(path, concepts)
    cells[1] = "4.5"
    path.write_text("concept,baseline\n" + "".join(f"{c},{v}\n" for c, v in
                                                    zip(concepts, cells)))
    assert read_baseline(path, concepts)[concepts[1]] == 4.5


# ------------------------------------------------------------------------------ no partial output


def _bad_options(run):
    c = run.concept_names[0]
    return [
        {"targets": ["bogus"]},
        {"timeline_targets": ["bogus"]},
        {"targets": [run.target_names[0]], "timeline_targets": [run.target_names[1]]},
        {"settings": {"bogus": 1.0}},
        {"settings": {c: "abc"}},
        {"settings": {c: math.nan}},
        {"settings": {c: math.inf}},
        {"hop": 0},
        {"hop": -0.5},
        {"hop": math.nan},
        {"hop": 1e-4},            # shorter than one frame
        {"window": 0},
        {"window": -3},
        {"window": math.inf},
        {"intervention_split": "bogus"},
        {"intervention_split": "test", "repeats": 0},
        {"dataset_split": "bogus"},
    ]


@pytest.mark.parametrize("k", range(17))
def test_explain_fails_on_its_inputs_before_writing_anything(world, tmp_path, k):
    options = _bad_options(world["runs"]["joint"])[k]
    out = tmp_path / "out"
    with pytest.raises(MidlevelError):
        explain_concepts(world["runs"]["joint"], world["audio"], out,
                         cache_dir=world["cache"], **options)
    assert not out.exists(), options


def test_timeline_targets_are_checked_and_drawn(world, tmp_path):
    run = world["runs"]["joint"]
    with pytest.raises(ExplainError, match="bogus"):
        _explain(world, tmp_path / "bad", timeline_targets=["bogus"])
    res = _explain(world, tmp_path / "ok", window=1.0, timeline_targets=[run.target_names[1]])
    assert (tmp_path / "ok" / "timeline.csv").is_file()
    assert any(str(f).endswith("_timeline.png") for f in res.files)


def test_the_timeline_plot_refuses_a_target_its_table_lacks():
    from midlevel.plots.concepts import timeline_plot
    table = pd.DataFrame({"clip": "a", "time": [0.5, 1.0], "target": "valence",
                          "concept": "c", "concept_value": [1.0, 2.0], "contribution": [0.1, 0.2]})
    with pytest.raises(ExplainError, match="bogus"):
        timeline_plot(np.zeros((4, 40)), table, fps=20.0, targets=["bogus"])


# ------------------------------------------------------------------------------ interventions


def test_a_binary_concept_set_outside_zero_one_is_refused_before_anything():
    from midlevel.explain.interventions import check_settings
    head = LinearHead(["layer=drums", "bright"], ["valence"], np.ones((1, 2)), np.zeros(1),
                      ["regression"], ["valence"], concept_kinds=["binary", "regression"])
    with pytest.raises(ExplainError, match="binary"):
        check_settings(head, {"layer=drums": 2.0})
    with pytest.raises(ExplainError, match="finite"):
        check_settings(head, {"bright": math.nan})
    values, notes = check_settings(head, {"layer=drums": "on", "bright": 3.0},
                                   scales={"bright": (1.0, 10.0)})
    assert values == {"layer=drums": 1.0, "bright": 3.0} and notes == []


def test_a_rating_set_outside_its_scale_is_a_note_not_an_error(world, tmp_path):
    run = world["runs"]["joint"]
    c = run.concept_names[0]
    res = _explain(world, tmp_path / "far", timeline=False, settings={c: 99.0})
    [note] = [n for n in res.notes if c in n]
    assert "99" in note and "1 to 10" in note
    table = pd.read_csv(tmp_path / "far" / "interventions.csv")
    assert (table["concepts"] == c).all() and len(table) == len(run.target_names)
    res = _explain(world, tmp_path / "near", timeline=False, settings={c: 7.0})
    assert not [n for n in res.notes if c in n]


# ------------------------------------------------------------------------------ black box


def test_a_black_box_refuses_concept_options_before_writing(world, tmp_path):
    from midlevel.workflows.explain_attributions import explain_blackbox
    out = tmp_path / "bb"
    with pytest.raises(ExplainError) as exc:
        explain_blackbox(world["runs"]["blackbox"], world["audio"], out,
                         settings={"bogus": "abc"}, targets=["valence"],
                         methods=["integrated_gradients"], progress=False)
    assert "black-box" in str(exc.value) and "--set bogus=abc" in str(exc.value)
    assert not out.exists()
    with pytest.raises(MidlevelError):
        explain_blackbox(world["runs"]["blackbox"], world["audio"], out, targets=["valence"],
                         methods=["integrated_gradients"], progress=False, max_seconds=0)
    assert not out.exists()
    with pytest.raises(MidlevelError, match="bogus"):  # not silently dropped beside a good one
        explain_blackbox(world["runs"]["blackbox"], world["audio"], out,
                         targets=["bogus", "valence"], methods=["integrated_gradients"],
                         progress=False)
    assert not out.exists()


def test_black_box_files_are_in_the_units_predict_reports(world, tmp_path):
    """prediction = what ``Run.predict`` reports (1e-4); expected + total = prediction (SHAP is
    additive); the listen-back outputs and the saved arrays are in the same units."""
    from midlevel.explain.attribution.result import Attribution
    from midlevel.workflows.explain_attributions import explain_blackbox
    run = world["runs"]["blackbox"]
    unit = run.model.output_names.index("valence")
    assert abs(float(run.model.target_std[unit]) - 1) > 0.05  # z-scored units would differ
    out = tmp_path / "bb"
    res = explain_blackbox(run, world["audio"], out, targets=["valence"],
                           methods=["shap_deep"], progress=False, cache_dir=world["cache"],
                           faithfulness=True)
    predicted = run.predict(world["audio"][0])["valence"].iloc[0]
    summary = pd.read_csv(out / "attribution_summary.csv")
    row = summary.iloc[0]
    assert row["units"] == "rating"
    assert row["prediction"] == pytest.approx(predicted, abs=1e-4)
    assert row["expected"] + row["total"] == pytest.approx(row["prediction"], abs=1e-3)
    shares = pd.read_csv(out / "listen_back.csv")
    assert np.allclose(shares["f_x"], predicted, atol=1e-4)
    # SHAP's shares are read against its own baseline, the mean output over the background
    # (audit 8a, item 1: they were read against f(background mean))
    assert np.allclose(shares["f_ref"], row["expected"], atol=1e-4)
    assert (shares["output"] == "valence").all() and (shares["units"] == "rating").all()
    clip = out / pd.Series(world["audio"]).map(lambda p: p.rsplit("/", 1)[1][:-4]).iloc[0]
    attr = Attribution.load(clip / "shap_deep__valence.npz")
    assert attr.units == "rating" and attr.predictions[0] == pytest.approx(predicted, abs=1e-4)
    marg = pd.read_csv(out / "time_marginals.csv")
    assert marg["attribution"].sum() == pytest.approx(row["total"], rel=1e-3, abs=1e-4)
    assert res.attributions[0].units == "rating"


def test_attribution_units_of_a_scaled_model():
    """``in_rating_units`` maps a z-scored output by ``mean + std * z`` and its attributions by
    ``std``, exactly; a logit output is left as it is."""
    import torch

    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.models import BlackBox
    torch.manual_seed(0)
    model = BlackBox([{"name": "y"}, {"name": "tag", "kind": "binary"}],
                     backbone={"width": 0.125, "dropout": 0.0}).eval()
    model.set_scales(input_mean=0.0, input_std=1.0, target_mean=[5.0, 0.0],
                     target_std=[2.0, 1.0])
    x, bg = torch.randn(1, 1, 40, 32), torch.randn(4, 1, 40, 32)
    raw = Attributor(model, "shap_deep", output="y", background=bg).attribute(x)
    assert raw.units == "standardized"
    rated = raw.in_rating_units()
    assert rated.units == "rating"
    assert rated.predictions[0] == pytest.approx(5.0 + 2.0 * raw.predictions[0], abs=1e-5)
    assert rated.expected == pytest.approx(5.0 + 2.0 * raw.expected, abs=1e-5)
    np.testing.assert_allclose(rated.values, 2.0 * raw.values, rtol=1e-6)
    assert abs(rated.additivity_gap()[0]) < 1e-3
    logit = Attributor(model, "shap_deep", output="tag", background=bg).attribute(x)
    assert logit.units == "logit" and logit.in_rating_units() is logit


# ------------------------------------------------------------------------------ compare


@pytest.mark.parametrize("options", [{"n_clips": 0}, {"n_clips": -1}, {"n_clips": 1.5},
                                     {"n_background": 0}, {"target": "bogus"},
                                     {"concept": "bogus"}, {"max_seconds": math.nan},
                                     {"max_seconds": 0}, {"deletion_patch": (0, 4)},
                                     {"n_steps": 0}, {"methods": []}])
def test_compare_fails_on_its_inputs_before_writing_anything(world, tmp_path, options):
    from midlevel.workflows.compare import compare
    out = tmp_path / "report"
    options = {"methods": ["integrated_gradients"], **options}
    with pytest.raises(MidlevelError):
        compare([world["runs"]["joint"], world["runs"]["blackbox"]], out,
                cache_dir=world["cache"], **options)
    assert not out.exists()


def test_compare_refuses_a_concept_without_a_bottleneck(world, tmp_path):
    from midlevel.errors import ReportError
    from midlevel.workflows.compare import compare
    with pytest.raises(ReportError, match="bottleneck"):
        compare([world["runs"]["blackbox"]], tmp_path / "r", cache_dir=world["cache"],
                methods=["integrated_gradients"], concept="dissonance")
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------ second audit


def test_a_split_without_clips_names_its_option_and_the_splits_with_clips(world, tmp_path):
    from midlevel.data.spec import SPLITS
    from midlevel.errors import ArgumentError
    run = world["runs"]["joint"]
    counts = run.annotations()["split"].value_counts()
    empty = next(s for s in SPLITS if counts.get(s, 0) == 0)
    out = tmp_path / "out"
    for option, flag in (("dataset_split", "--dataset-split"),
                         ("intervention_split", "--intervention-split")):
        with pytest.raises(ArgumentError) as exc:
            explain_concepts(run, world["audio"], out, cache_dir=world["cache"],
                             timeline=False, **{option: empty})
        message = str(exc.value)
        assert flag in message and f"'{empty}'" in message
        assert f"train ({counts['train']} clips)" in message
        assert not out.exists()


def test_a_baseline_row_of_another_concept_is_warned_about(world, tmp_path):
    run = world["runs"]["joint"]
    path = tmp_path / "baseline.csv"
    path.write_text("concept,baseline\n" + "".join(f"{c},5\n" for c in run.concept_names)
                    + "bogus,3\n")
    res = _explain(world, tmp_path / "out", baseline=path, timeline=False)
    [note] = [n for n in res.notes if "bogus" in n]
    assert str(path) in note and f"row {len(run.concept_names) + 2}" in note


def test_the_cli_refuses_bad_settings_before_writing(world, tmp_path, capsys):
    from midlevel.cli import main
    run = world["runs"]["joint"]
    c = run.concept_names[1]
    out = tmp_path / "out"
    for items, words in (([f"{c}=on"], [f"'{c}'", "rating", "number on its rating scale"]),
                         ([f"{c}=off"], [f"'{c}'", "rating"]),
                         ([f"{c}=3", f"{c}=4"], [f"'{c}' is set twice"])):
        rc = main(["explain", str(run.path), world["audio"][0], "--out", str(out), "--cache",
                   str(world["cache"]), "--no-timeline", "--dataset-split", "none", "--set",
                   *items])
        err = capsys.readouterr().err
        assert rc == 2 and all(w in err for w in words), err
        assert not out.exists()


def test_interventions_of_a_rating_run_are_in_rating_units(world, tmp_path):
    run = world["runs"]["joint"]
    _explain(world, tmp_path / "out", timeline=False, settings={run.concept_names[0]: 5.0})
    table = pd.read_csv(tmp_path / "out" / "interventions.csv")
    assert (table["units"] == "rating").all()


def _moved_copy(run, tmp_path, **data):
    """A copy of ``run`` whose stored provenance says it was trained on other data."""
    import shutil

    from midlevel.run import load_run
    copy = load_run(shutil.copytree(run.path, tmp_path / "copy"))
    copy.info = {**copy.info, "data": {**copy.info["data"], **data}}
    return copy


def test_compare_refuses_runs_of_different_data_and_a_run_given_twice(world, tmp_path):
    from midlevel.errors import ReportError
    from midlevel.workflows.compare import compare
    joint = world["runs"]["joint"]
    out = tmp_path / "report"
    other = _moved_copy(joint, tmp_path, spec="/elsewhere/tags/spec.yaml",
                        root="/elsewhere/tags")
    # other data: its clips' audio is other (a copy elsewhere of the same clips and audio is
    # the same data, audit 22c)
    splits = pd.read_csv(other.path / "splits.csv")
    splits["audio"] = [f"{i:040x}" for i in range(len(splits))]
    splits.to_csv(other.path / "splits.csv", index=False)
    with pytest.raises(ReportError) as exc:
        compare([joint, other], out, cache_dir=world["cache"], methods=["integrated_gradients"])
    assert str(joint.path) in str(exc.value) and str(other.path) in str(exc.value)
    assert "/elsewhere/tags/spec.yaml" in str(exc.value)
    assert not out.exists()
    with pytest.raises(ReportError, match="given twice"):
        compare([str(joint.path), world["runs"]["blackbox"], str(joint.path)], out,
                cache_dir=world["cache"], methods=["integrated_gradients"])
    assert not out.exists()


def test_compare_says_when_the_split_has_fewer_clips_than_asked(world, tmp_path, capsys):
    from midlevel.cli import main
    joint, bb = world["runs"]["joint"], world["runs"]["blackbox"]
    n_test = int((joint.annotations()["split"] == "test").sum())
    out = tmp_path / "report"
    rc = main(["compare", str(joint.path), str(bb.path), "--out", str(out), "--cache",
               str(world["cache"]), "--clips", "1000", "--methods", "integrated_gradients",
               "--n-steps", "2", "--no-faithfulness", "--no-randomization", "--no-audio",
               "--quiet"])
    assert rc == 0
    note = f"asked for 1000 clips (--clips); the test split has {n_test}"
    assert note in capsys.readouterr().err
    assert note in (out / "report.md").read_text()
    assert note in (out / "report.html").read_text()


# ------------------------------------------------------------------------------ third audit


def test_a_rerun_of_compare_removes_the_tables_it_no_longer_writes(world, tmp_path):
    """A rerun without faithfulness into the same folder kept the old faithfulness tables,
    which report.md no longer mentioned; a file of the user's is left alone."""
    from midlevel.workflows.compare import compare
    out = tmp_path / "report"
    small = dict(cache_dir=world["cache"], methods=["integrated_gradients"], n_clips=1,
                 n_background=2, n_steps=2, randomization=False, listen=False)
    compare([world["runs"]["blackbox"]], out, faithfulness=True, n_random=5, **small)
    first = set(json.loads((out / "report_files.json").read_text())["files"])
    assert "tables/faithfulness.csv" in first and (out / "tables" / "faithfulness.csv").is_file()
    (out / "tables" / "mine.csv").write_text("a\n1\n")
    compare([world["runs"]["blackbox"]], out, faithfulness=False, **small)
    assert not (out / "tables" / "faithfulness.csv").exists()
    assert (out / "tables" / "mine.csv").is_file() and (out / "tables" / "cost.csv").is_file()
    now = set(json.loads((out / "report_files.json").read_text())["files"])
    assert now < first and all((out / f).is_file() for f in now)


def test_an_interrupted_compare_resumes_from_the_explanations_it_finished(world, tmp_path,
                                                                          monkeypatch):
    """The first method's maps, curves and cost survive a failure in the second; the rerun
    computes only the second, says so in the report, and removes the stored results."""
    from midlevel.workflows import compare_explanations
    from midlevel.workflows.compare import compare
    from midlevel.workflows.compare_work import WORK_DIR
    real, calls = compare_explanations._explain_with, []

    def failing_second(run, label, method, *args, **kwargs):
        calls.append(method)
        if method == "occlusion":
            raise KeyboardInterrupt  # what a user's Ctrl-C (or a kill) leaves behind
        return real(run, label, method, *args, **kwargs)

    out = tmp_path / "report"
    small = dict(cache_dir=world["cache"], methods=["integrated_gradients", "occlusion"],
                 n_clips=1, n_background=2, n_steps=2, randomization=False,
                 listen=False, faithfulness=True, n_random=5)
    monkeypatch.setattr(compare_explanations, "_explain_with", failing_second)
    with pytest.raises(KeyboardInterrupt):
        compare([world["runs"]["blackbox"]], out, **small)
    assert len(list((out / WORK_DIR).glob("*.pt"))) == 1 and not (out / "report.md").exists()
    calls.clear()
    monkeypatch.setattr(compare_explanations, "_explain_with",
                        lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    report = compare([world["runs"]["blackbox"]], out, **small)
    assert calls == ["occlusion"]
    assert any("1 of 2" in w for w in report.warnings)
    assert set(report.tables["faithfulness"]["method"]) == {"integrated_gradients", "occlusion"}
    assert not (out / WORK_DIR).exists()
    calls.clear()
    compare([world["runs"]["blackbox"]], out, **{**small, "n_random": 6})  # nothing reused
    assert calls == ["integrated_gradients", "occlusion"]


def test_an_interrupted_compare_reuses_nothing_of_other_audio_or_weights(world, tmp_path,
                                                                        monkeypatch):
    """Audit 21b A1: the stored results were keyed by clip names and frame counts and the
    checkpoint's size and time, so a compare re-run after the explained clips' audio was
    replaced (same length) reused maps of the old audio, beside a leakage table of the new."""
    import torch

    from midlevel.training import load_run
    from midlevel.workflows import compare as compare_module
    from midlevel.workflows import compare_explanations
    real, calls = compare_explanations._explain_with, []

    def failing_second(run, label, method, *args, **kwargs):
        calls.append(method)
        if method == "occlusion":
            raise KeyboardInterrupt
        return real(run, label, method, *args, **kwargs)

    out = tmp_path / "report"
    run = load_run(world["runs"]["blackbox"].path)
    small = dict(cache_dir=world["cache"], methods=["integrated_gradients", "occlusion"],
                 n_clips=1, n_background=2, n_steps=2, randomization=False, listen=False,
                 faithfulness=False)
    monkeypatch.setattr(compare_explanations, "_explain_with", failing_second)

    def interrupted(runs):
        with pytest.raises(KeyboardInterrupt):
            compare_module.compare(runs, out, **small)
        calls.clear()

    interrupted([run])
    real_clips = compare_module.test_clips

    def other_audio(*args, **kwargs):  # the explained clip's audio replaced, same length
        clips = real_clips(*args, **kwargs)
        clips.specs[0] = clips.specs[0][:, ::-1].copy()
        return clips

    monkeypatch.setattr(compare_module, "test_clips", other_audio)
    with pytest.raises(KeyboardInterrupt):
        compare_module.compare([run], out, **small)
    assert calls == ["integrated_gradients", "occlusion"]  # computed again, not reused
    monkeypatch.setattr(compare_module, "test_clips", real_clips)
    calls.clear()
    interrupted([run])
    with torch.no_grad():  # other weights in the same folder (a checkpoint copied over it)
        next(run.model.parameters()).add_(0.01)
    with pytest.raises(KeyboardInterrupt):
        compare_module.compare([run], out, **small)
    assert calls == ["integrated_gradients", "occlusion"]


def test_compare_scores_each_run_on_the_data_as_it_is_now(world):
    """Audit 21b A4: compare showed the metrics stored at training (valence r 0.761) after the
    test ratings had been corrected (now -0.761), beside a leakage table of the new ones."""
    from midlevel.training import load_run
    from midlevel.workflows.compare_accuracy import run_metrics
    run = load_run(world["runs"]["joint"].path)
    run.info["metrics_csv"] = run.metrics.assign(r=0.123).to_csv(index=False)  # made stale
    got = run_metrics([run], cache_dir=world["cache"])
    fresh = run.evaluate(splits=("test",), cache_dir=world["cache"])
    assert not (got["r"] == 0.123).any()
    assert got["r"].to_numpy() == pytest.approx(fresh["r"].to_numpy(), nan_ok=True)


def test_an_intervention_curve_of_class_targets_only_is_refused_up_front(world):
    """Audit 15c: a run whose targets are all class targets predicted everything, then
    stopped on 'no regression or binary target of the head among []'; with mixed targets
    the class ones were left out of the curve without a word."""
    from midlevel.workflows.explain_inputs import check_options
    run = world["runs"]["joint"]
    k = len(run.concept_names)
    classes = LinearHead(run.concept_names, ["scene=a", "scene=b"], np.zeros((2, k)),
                         np.zeros(2), ["logit", "logit"], ["scene", "scene"])
    with pytest.raises(ExplainError, match=r"--intervention-split.*all class targets \(scene\)"):
        check_options(run, classes, intervention_split="test")
    check_options(run, classes)  # without the curve: nothing to refuse
    mixed = LinearHead(run.concept_names, ["valence", "scene=a", "scene=b"], np.zeros((3, k)),
                       np.zeros(3), ["regression", "logit", "logit"],
                       ["valence", "scene", "scene"])
    notes = check_options(run, mixed, intervention_split="test").notes
    assert any("leaves out the class target(s) scene" in n for n in notes)
