"""Inputs of explain and compare, second audit (no training: stand-in heads and runs):
``--set`` refuses on/off for a rating, a concept set twice and a tag named without a value; an
intervention table says its units; a baseline row of an unknown concept is a warning naming
file, row and concept; compare refuses a run given twice and runs trained on different data,
and the report carries its notes."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from midlevel.errors import ArgumentError, ExplainError, ReportError
from midlevel.explain.head import LinearHead

CONCEPTS = ["melodiousness", "articulation", "layer=drums"]
KINDS = ["regression", "regression", "binary"]
SCALES = {"melodiousness": (1.0, 10.0), "articulation": (1.0, 10.0)}


def _parse(items):
    from midlevel.cli.explain import _parse_settings
    return _parse_settings(items, CONCEPTS, KINDS, SCALES)


# ------------------------------------------------------------------------------ --set


@pytest.mark.parametrize("word", ["on", "off", "yes", "False"])
def test_on_off_is_refused_for_a_rating_concept(word):
    with pytest.raises(ArgumentError) as exc:
        _parse([f"articulation={word}"])
    message = str(exc.value)
    assert "'articulation'" in message and "rating" in message
    assert "number on its rating scale" in message and "1 to 10" in message


def test_on_off_still_switches_a_binary_concept():
    assert _parse(["layer=drums=on", "melodiousness=3"]) == {"layer=drums": 1.0,
                                                             "melodiousness": 3.0}
    assert _parse(["layer=drums=off"]) == {"layer=drums": 0.0}


@pytest.mark.parametrize("items, concept", [
    (["melodiousness=3", "melodiousness=4"], "melodiousness"),
    (["layer=drums=on", "layer=drums=0.5"], "layer=drums"),
])
def test_a_concept_set_twice_is_refused_naming_it(items, concept):
    with pytest.raises(ArgumentError) as exc:
        _parse(items)
    assert f"'{concept}' is set twice" in str(exc.value)
    assert items[0] in str(exc.value) and items[1] in str(exc.value)


@pytest.mark.parametrize("item, concept, wanted", [
    ("layer=drums", "layer=drums", "on, off or 0-1"),
    ("layer=drums=", "layer=drums", "on, off or 0-1"),
    ("melodiousness", "melodiousness", "1 to 10"),
    ("melodiousness=", "melodiousness", "1 to 10"),
])
def test_a_concept_without_a_value_says_the_value_is_missing(item, concept, wanted):
    with pytest.raises(ArgumentError) as exc:
        _parse([item])
    message = str(exc.value)
    assert f"--set {item}: expected CONCEPT=VALUE" in message
    assert f"concept '{concept}' needs a value" in message and wanted in message
    assert "unknown concept" not in message


def test_an_unknown_concept_and_a_bad_number_are_still_named():
    with pytest.raises(ArgumentError, match="unknown concept 'layer=bass'"):
        _parse(["layer=bass=on"])
    with pytest.raises(ArgumentError, match="'abc' is not a value.*'articulation'"):
        _parse(["articulation=abc"])


def _head():
    return LinearHead(CONCEPTS, ["valence", "mood=up", "key=major", "key=minor"],
                      np.arange(12, dtype=float).reshape(4, 3), np.zeros(4),
                      ["regression", "binary", "logit", "logit"],
                      ["valence", "mood=up", "key", "key"], concept_kinds=KINDS,
                      groups=[None, "mood", None, None])


@pytest.mark.parametrize("value", ["on", "off", True, False])
def test_the_api_refuses_a_switch_for_a_rating(value):
    from midlevel.explain.interventions import check_settings, intervene
    with pytest.raises(ExplainError) as exc:
        check_settings(_head(), {"articulation": value}, scales=SCALES)
    assert "'articulation' is a rating" in str(exc.value) and "1 to 10" in str(exc.value)
    with pytest.raises(ExplainError, match="'articulation' is a rating"):
        intervene(_head(), pd.DataFrame([[5.0, 5.0, 0.2]], columns=CONCEPTS), {"articulation":
                                                                                value})
    values, _ = check_settings(_head(), {"layer=drums": value})
    assert values == {"layer=drums": 1.0 if value in ("on", True) else 0.0}


# ------------------------------------------------------------------------------ units


def test_interventions_say_the_units_of_each_row():
    from midlevel.explain.interventions import intervene
    concepts = pd.DataFrame([[5.0, 5.0, 0.2], [3.0, 7.0, 0.9]], columns=CONCEPTS,
                            index=pd.Index(["a", "b"], name="clip"))
    table = intervene(_head(), concepts, {"layer=drums": "on"})
    units = table.drop_duplicates("target").set_index("target")["units"]
    assert units.to_dict() == {"valence": "rating", "mood=up": "logit", "key=major": "logit",
                               "key=minor": "logit"}
    assert (table.loc[table["units"] == "rating", "probability"].isna()).all()
    logits = table[table["units"] == "logit"]
    assert logits["probability"].between(0, 1).all()
    up = table[table["target"] == "mood=up"]
    np.testing.assert_allclose(up["probability"], 1 / (1 + np.exp(-up["prediction"])))
    only = intervene(_head(), concepts, {"melodiousness": 4.0}, targets=["valence"])
    assert list(only["units"]) == ["rating", "rating"]


# ------------------------------------------------------------------------------ baseline


def test_a_baseline_row_of_an_unknown_concept_is_a_warning(tmp_path):
    from midlevel.workflows.explain_concepts import read_baseline
    path = tmp_path / "baseline.csv"
    path.write_text("concept,baseline\nmelodiousness,5\nbogus,3\narticulation,4\n"
                    "layer=drums,0.5\n")
    notes = []
    base = read_baseline(path, CONCEPTS, notes=notes)
    assert list(base.index) == CONCEPTS and base["articulation"] == 4.0
    [note] = notes
    assert str(path) in note and "row 3" in note and "'bogus'" in note and "ignored" in note
    path.write_text("concept,baseline\nmelodiousness,5\narticulation,4\nlayer=drums,0.5\n")
    notes = []
    read_baseline(path, CONCEPTS, notes=notes)
    assert notes == []


# ------------------------------------------------------------------------------ compare


def _run(path, spec="/d/a/spec.yaml", root="/d/a", n_test=6, name="synthetic", roots=None):
    metrics = pd.DataFrame({"split": ["train", "test", "test"], "kind": "target",
                            "name": ["valence", "valence", "mean"], "n": [28, n_test, n_test]})
    return SimpleNamespace(path=Path(path), frontend={"name": "mel"}, metrics=metrics,
                           info={"data": {"spec": spec, "spec_name": name, "root": root,
                                          "roots": roots}})


def test_compare_refuses_runs_trained_on_different_data(tmp_path):
    from midlevel.workflows.compare import check_runs
    check_runs([_run(tmp_path / "j1"), _run(tmp_path / "j2"), _run(tmp_path / "bb")])
    with pytest.raises(ReportError) as exc:
        check_runs([_run(tmp_path / "joint"),
                    _run(tmp_path / "tagrun", spec="/d/tags/spec.yaml", root="/d/tags")])
    message = str(exc.value)
    assert "different data" in message
    assert str(tmp_path / "joint") in message and str(tmp_path / "tagrun") in message
    assert "/d/a/spec.yaml" in message and "/d/tags/spec.yaml" in message
    with pytest.raises(ReportError, match="test_clips"):  # same spec file, other test split
        check_runs([_run(tmp_path / "j1"), _run(tmp_path / "j2", n_test=9)])
    # two specs over one dataset and its test split (Soundtracks' emotions and dimensions)
    check_runs([_run(tmp_path / "bb", spec="/d/a/emotions.yaml", name="emotions"),
                _run(tmp_path / "joint", spec="/d/a/dimensional.yaml", name="dimensional")])
    old = _run(tmp_path / "old")
    old.info = {}  # provenance not stored: not compared
    check_runs([_run(tmp_path / "j1"), old])


def test_compare_takes_runs_of_the_same_clips_and_audio_on_a_moved_copy(tmp_path):
    """Audit 22c: a run and its own resume on a moved copy of the dataset were refused as
    "trained on different data" for their roots alone; runs of the same clips that stored
    each one's audio bytes are compared by those (and their ratings), not by the folder."""
    from midlevel.training.datarecord import write_splits
    from midlevel.workflows.compare import check_runs
    table = pd.DataFrame({"split": ["train"] * 4 + ["test"] * 2},
                         index=pd.Index([f"c{i}" for i in range(6)], name="clip"))
    audio = {c: f"{i:040x}" for i, c in enumerate(table.index)}
    here, moved = _run(tmp_path / "here"), _run(tmp_path / "moved", root="/e/copy",
                                                spec="/e/copy/spec.yaml",
                                                roots={"meta": "/e/meta"})
    here.info["data"]["roots"] = {"meta": "/d/meta"}
    for run in (here, moved):
        run.path.mkdir()
        write_splits(run.path, table, audio)
    check_runs([here, moved])
    other = _run(tmp_path / "other", root="/e/copy")
    other.path.mkdir()
    write_splits(other.path, table, {**audio, "c5": "f" * 40})  # one test clip re-recorded
    with pytest.raises(ReportError, match=r"the audio of 1 clip\(s\) \(c5\)"):
        check_runs([here, other])


def test_compare_refuses_runs_whose_named_roots_differ(tmp_path):
    """Ratings under a named root (--root meta=DIR) are part of the data: two runs trained
    on other folders for one name are not seeds of one model."""
    from midlevel.workflows.compare import check_runs
    with pytest.raises(ReportError, match=r"root 'meta' \(/d/meta vs /d/metaZ\)"):
        check_runs([_run(tmp_path / "j1", roots={"meta": "/d/meta"}),
                    _run(tmp_path / "j2", roots={"meta": "/d/metaZ"})])
    # a name only one spec has, or a run that stored no roots, is not compared
    check_runs([_run(tmp_path / "j1", roots={"meta": "/d/meta"}),
                _run(tmp_path / "bb", roots={"other": "/d/x"}), _run(tmp_path / "old")])


def test_compare_refuses_runs_with_other_test_clips(tmp_path):
    """Runs that stored their splits (splits.csv) must share their test clips, not only their
    count: runs tested on other clips (a spec whose splits were edited between them) are not
    seeds of one model. A run without splits.csv is compared as before."""
    from midlevel.workflows.compare import check_runs

    def stored(path, test):
        path.mkdir()
        clips = [f"s{i}" for i in range(10)]
        pd.DataFrame({"clip": clips, "split": ["test" if c in test else "train"
                                                for c in clips]}).to_csv(path / "splits.csv",
                                                                         index=False)
        return _run(path, n_test=len(test))
    a, b = stored(tmp_path / "j1", {"s0", "s1"}), stored(tmp_path / "j2", {"s0", "s1"})
    check_runs([a, b, _run(tmp_path / "old", n_test=2)])
    other = stored(tmp_path / "j3", {"s0", "s7"})
    with pytest.raises(ReportError) as exc:
        check_runs([a, other])
    message = str(exc.value)
    assert str(tmp_path / "j1") in message and str(tmp_path / "j3") in message
    assert "test clips (2 clip(s) are test clips of one run only, e.g. s1, s7)" in message


def test_compare_refuses_runs_trained_on_other_ratings_or_audio(tmp_path):
    """Audit 21b A3: a run trained before a valence correction and one trained after were
    pooled as seeds (valence r 0.12 +- 0.90); the fingerprints each run stores were never
    compared. Columns or clips only one run has are not compared."""
    from midlevel.workflows.compare import check_runs

    def run(name, ratings, audio=None, segments=None, classes=None):
        r = _run(tmp_path / name)
        r.info["data"].update(ratings=ratings, segment_ratings=segments)
        r.targets = [{"name": "scene", "kind": "class", "classes": classes or ["a", "b"]}]
        r.path.mkdir()
        audio = audio or {"s1": "x", "s2": "y"}
        pd.DataFrame({"clip": list(audio), "split": "train",
                      "audio": list(audio.values())}).to_csv(r.path / "splits.csv", index=False)
        return r
    a = run("a", {"valence": "v1", "energy": "e1", "scene": "c1"}, segments={"valence": "t1"})
    check_runs([a, run("b", {"valence": "v1", "tension": "t9"})])
    with pytest.raises(ReportError, match=r"differ in ratings of valence\)"):
        check_runs([a, run("c", {"valence": "v2", "energy": "e1"})])
    with pytest.raises(ReportError, match=r"time-varying ratings of valence"):
        check_runs([a, run("d", {"valence": "v1"}, segments={"valence": "t2"})])
    with pytest.raises(ReportError, match=r"the audio of 1 clip\(s\) \(s2\)"):
        check_runs([a, run("e", {"valence": "v1"}, {"s1": "x", "s2": "w"})])
    # re-audit 21d A4: runs of other clips (two specs over one dataset, one filtering two
    # clips out) have other fingerprints for the same ratings; classes coded in another order
    check_runs([a, run("f", {"valence": "v9"}, {"s1": "x", "s2": "y", "s3": "z"})])
    check_runs([a, run("g", {"scene": "c2"}, classes=["b", "a"])])
    with pytest.raises(ReportError, match=r"ratings of scene"):
        check_runs([a, run("h", {"scene": "c2"})])


def test_compare_refuses_a_run_given_twice(tmp_path):
    from midlevel.workflows.compare import check_runs
    (tmp_path / "joint").mkdir()
    with pytest.raises(ReportError) as exc:
        check_runs([_run(tmp_path / "joint"), _run(tmp_path / "bb"),
                    _run(tmp_path / "joint" / ".." / "joint")])
    assert "given twice" in str(exc.value) and "joint" in str(exc.value)


def test_report_notes_reach_markdown_and_html(tmp_path):
    from midlevel.report.document import Report, write_report
    run = SimpleNamespace(path=tmp_path / "r", mode="joint", info={"epochs": 1},
                          config=SimpleNamespace(seed=0, preset="small"),
                          model=SimpleNamespace(kind="bottleneck"))
    (tmp_path / "tables").mkdir()
    note = "asked for 1000 clips (--clips); the test split has 6: all 6 are explained"
    report = write_report(Report(out=tmp_path, warnings=[note]), [run], "T", ["m"], ["c1"])
    assert f"**Note:** {note}" in report.markdown.read_text()
    assert note in report.html.read_text()


def test_compare_refuses_seeds_of_one_model_with_other_targets(tmp_path):
    """Audit 15b: two black boxes of one dataset, one of 'tension' and one of the class
    target 'scene', were pooled as seeds of one model."""
    from midlevel.workflows.compare import check_seeds

    def run(path, targets, mode="blackbox", concepts=()):
        return SimpleNamespace(path=Path(path), mode=mode, target_names=list(targets),
                               concept_names=list(concepts),
                               model=SimpleNamespace(kind="blackbox" if mode == "blackbox"
                                                     else "bottleneck"))
    check_seeds([run(tmp_path / "a", ["tension"]), run(tmp_path / "b", ["tension"]),
                 run(tmp_path / "j", ["scene"], mode="joint", concepts=["m"])])
    with pytest.raises(ReportError) as exc:
        check_seeds([run(tmp_path / "a", ["tension"]), run(tmp_path / "b", ["scene"])])
    message = str(exc.value)
    assert "blackbox runs" in message
    assert "different targets (tension only in the first, scene only in the second)" in message
    assert str(tmp_path / "a") in message and str(tmp_path / "b") in message
    with pytest.raises(ReportError, match=r"different concepts \(none only in the first, k "
                                          r"only in the second\)"):
        check_seeds([run(tmp_path / "j1", ["v"], "joint", ["m"]),
                     run(tmp_path / "j2", ["v"], "joint", ["m", "k"])])
    # the same names in another order: one model (re-audit 15)
    check_seeds([run(tmp_path / "j1", ["v", "e"], "joint", ["m", "k"]),
                 run(tmp_path / "j2", ["e", "v"], "joint", ["k", "m"])])
