"""Time-varying ratings: the ``segments`` key of a data spec, its checks, crop labels, synth."""
from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_tone
from midlevel.cli import main
from midlevel.data.segments import Segments, segments_of
from midlevel.data.annotations import load_annotations
from midlevel.data.spec import load_spec
from midlevel.synth import DEFAULT_INTERCEPTS, DEFAULT_WEIGHTS, MIDLEVEL_CONCEPTS, synthesize
from midlevel.data.validate import validate
from midlevel.errors import SpecError, ValidationFailed
from midlevel.training import fit
from midlevel.training.data import ClipSet, Columns, frame_labels
from midlevel.training.scales import Scales

SPEC = """
name: dyn
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: ratings.csv
    id_column: clip
segments:
  - path: segments.csv
    id_column: clip
    start_column: start
    end_column: end
concepts:
  bright: {scale: [1, 10]}
  rough: {column: roughness, scale: [1, 10]}
targets:
  happy: {scale: [1, 9]}
  mood: {type: class}
"""

RATINGS = "clip,bright,roughness,happy,mood\nc1,5,5,5,a\nc2,6,6,6,b\nc3,7,7,7,a\n"


def dataset(root: Path, segments: str, spec: str = SPEC, seconds: float = 4.0) -> Path:
    for i in (1, 2, 3):
        write_tone(root / "audio" / f"c{i}.wav", freq=200.0 * i, seconds=seconds)
    (root / "ratings.csv").write_text(RATINGS)
    (root / "segments.csv").write_text(textwrap.dedent(segments).lstrip())
    (root / "spec.yaml").write_text(textwrap.dedent(spec))
    return root / "spec.yaml"


def problems_of(spec_path: Path):
    with pytest.raises(ValidationFailed) as info:
        load_annotations(load_spec(spec_path))
    return info.value.problems


# ----------------------------------------------------------------------------- spec and loading


def test_start_end_table_loads_as_tidy_segments(tmp_path):
    spec = load_spec(dataset(tmp_path, """
        clip,start,end,bright,roughness,happy
        c1,0,2,2,,3
        c1,2,4,8,9,7
        c2,1.5,3,4,4,
        """))
    assert spec.segments[0].start_column == "start" and spec.segments[0].columns is None
    table = load_annotations(spec)
    seg = segments_of(table)
    # class targets are never rated over time; every other column whose name is in the header is
    assert list(seg.table.columns) == ["clip", "start", "end", "bright", "rough", "happy"]
    assert seg.clips == ["c1", "c2"] and len(seg) == 3
    c1 = seg.for_clip("c1")
    assert c1["start"].tolist() == [0, 2] and c1["end"].tolist() == [2, 4]
    assert c1["bright"].tolist() == [2, 8] and np.isnan(c1["rough"].iloc[0])
    assert seg.for_clip("c3").empty
    # the clip table is unchanged, and the segments travel with its subsets and concatenations
    assert table.loc["c1", "bright"] == 5
    part = table[table.index != "c2"]
    assert segments_of(part) is seg
    assert segments_of(pd.concat([part, table.iloc[:1]])) is seg


def test_time_column_ratings_hold_until_the_next_instant(tmp_path):
    spec = SPEC.replace("start_column: start\n    end_column: end", "time_column: t")
    spec = load_spec(dataset(tmp_path, """
        clip,t,bright
        c1,1.0,3
        c1,0.0,2
        c1,2.5,9
        """, spec=spec))
    seg = segments_of(load_annotations(spec)).for_clip("c1")
    assert seg["start"].tolist() == [0.0, 1.0, 2.5]
    assert seg["end"].tolist() == [1.0, 2.5, np.inf]       # the last holds until the clip's end
    assert seg["bright"].tolist() == [2, 3, 9]


def test_explicit_columns_list_and_mapping(tmp_path):
    listed = SPEC.replace("end_column: end", "end_column: end\n    columns: [happy]")
    seg = segments_of(load_annotations(load_spec(dataset(
        tmp_path, "clip,start,end,bright,happy\nc1,0,2,2,3\n", spec=listed))))
    assert seg.columns == ["happy"]
    mapped = SPEC.replace("end_column: end", "end_column: end\n    columns: {bright: b_mean}")
    seg = segments_of(load_annotations(load_spec(dataset(
        tmp_path, "clip,start,end,b_mean,bright\nc1,0,2,2.5,9\n", spec=mapped))))
    assert seg.columns == ["bright"] and seg.table["bright"].tolist() == [2.5]


def test_a_class_column_in_a_segment_table_is_named_not_silently_left_out(tmp_path, caplog,
                                                                          monkeypatch):
    """Audit 22a: a segment table rating the class target 'mood' beside 'happy' loaded
    without a word, its class cells ignored; a warning names the file and the column, in
    validate's list (re-audit 22d) and, once, in every other command's log."""
    from midlevel.data import annotations
    monkeypatch.setattr(annotations, "_SAID", set())
    path = dataset(tmp_path, "clip,start,end,happy,mood\nc1,0,2,3,b\nc1,2,4,7,a\n")
    with caplog.at_level("WARNING", logger="midlevel"):
        seg = segments_of(load_annotations(load_spec(path)))
        load_annotations(load_spec(path))  # said once
    assert seg.columns == ["happy"]
    said = [r.getMessage() for r in caplog.records if "segments hold numeric" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith(
        f"{tmp_path / 'segments.csv'}, column 'mood': unread segment column: it holds the "
        f"target 'mood', a class column")
    report = validate(load_spec(path), progress=False)
    assert [w.message.split(":")[0] for w in report.warnings].count("unread segment column") == 1


@pytest.mark.parametrize("bad, key", [
    ("    colour: red\n", "colour"),
    ("    time_column: t\n", "time_column"),
    ("    columns: [shiny]\n", "shiny"),
    ("    columns: [mood]\n", "mood"),
    ("    root: elsewhere\n", "elsewhere"),
])
def test_segment_spec_errors_name_the_key(tmp_path, bad, key):
    path = dataset(tmp_path, "clip,start,end\n", spec=SPEC.replace(
        "    end_column: end\n", "    end_column: end\n" + bad))
    with pytest.raises(SpecError, match=key):
        load_spec(path)


def test_segment_spec_needs_both_span_columns(tmp_path):
    path = dataset(tmp_path, "clip,start\n", spec=SPEC.replace("    end_column: end\n", ""))
    with pytest.raises(SpecError, match=r"segments\[0\].*start_column and end_column"):
        load_spec(path)


def test_every_segment_problem_names_file_row_and_column(tmp_path):
    problems = problems_of(dataset(tmp_path, """
        clip,start,end,bright,roughness
        c1,0,2,2,3
        c9,0,1,2,2
        c1,3,3,2,2
        c1,1.5,3,4,4
        c2,0,1,abc,4
        c2,1,2,4,11
        c2,x,2,4,4
        c3,-1,2,4,4
        """))
    found = {(Path(p.file).name, p.row, p.column): p.message for p in problems}
    assert len(problems) == len(found) == 7, [str(p) for p in problems]
    assert "not in the annotations" in found[("segments.csv", 3, "clip")]
    assert "not after its start" in found[("segments.csv", 4, "end")]
    assert "overlaps the segment 0-2 s of row 2" in found[("segments.csv", 5, "start")]
    assert "non-numeric rating 'abc'" in found[("segments.csv", 6, "bright")]
    assert "outside the scale [1, 10]" in found[("segments.csv", 7, "roughness")]
    assert "non-numeric time 'x'" in found[("segments.csv", 8, "start")]
    assert ">= 0" in found[("segments.csv", 9, "start")]


def test_table_level_segment_problems(tmp_path):
    # a table that rates nothing, a mapped column that is absent, a missing file, time duplicates
    (p,) = problems_of(dataset(tmp_path, "clip,start,end,other\nc1,0,1,3\n"))
    assert p.file.endswith("segments.csv") and "rates none" in p.message
    mapped = SPEC.replace("end_column: end", "end_column: end\n    columns: {bright: b_mean}")
    (p,) = problems_of(dataset(tmp_path, "clip,start,end,bright\nc1,0,1,3\n", spec=mapped))
    assert p.column == "b_mean" and "not found" in p.message
    (tmp_path / "segments.csv").unlink()
    (p,) = problems_of(tmp_path / "spec.yaml")
    assert "segments table not found" in p.message
    timed = SPEC.replace("start_column: start\n    end_column: end", "time_column: t")
    (p,) = problems_of(dataset(tmp_path, "clip,t,bright\nc1,0,2\nc1,1,3\nc1,1,4\n", spec=timed))
    assert (p.row, p.column) == (4, "t") and "second rating" in p.message


def test_overlap_across_tables_rating_the_same_column(tmp_path):
    two = SPEC.replace("concepts:", "  - path: more.csv\n    id_column: clip\n"
                                    "    start_column: start\n    end_column: end\nconcepts:")
    path = dataset(tmp_path, "clip,start,end,bright\nc1,0,2,3\n", spec=two)
    (tmp_path / "more.csv").write_text("clip,start,end,happy\nc1,1,3,4\n")
    assert len(segments_of(load_annotations(load_spec(path)))) == 2  # different columns: fine
    (tmp_path / "more.csv").write_text("clip,start,end,bright\nc1,1,3,4\n")
    (p,) = problems_of(path)
    assert p.file.endswith("more.csv") and p.row == 2 and "segments.csv row 2" in p.message


def test_overlapping_segments_that_rate_different_columns_of_one_table_are_fine(tmp_path):
    """Audit 10c, #2: an empty cell counted as a rating, so two segments rating different
    columns were 'overlapping' on the spec's first concept (and train refused the spec);
    a real overlap on the second column named the first."""
    path = dataset(tmp_path, "clip,start,end,bright,roughness\nc1,0,2,3,\nc1,1,3,,4\n")
    assert len(segments_of(load_annotations(load_spec(path)))) == 2
    (tmp_path / "segments.csv").write_text(
        "clip,start,end,bright,roughness\nc1,0,2,,3\nc1,1,3,,4\n")
    (p,) = problems_of(path)
    assert p.row == 3 and "(both rate 'rough')" in p.message


def test_validate_checks_segment_ends_against_the_audio(tmp_path, capsys):
    path = dataset(tmp_path, """
        clip,start,end,bright
        c1,0,2,2
        c1,2,4.05,8
        c2,2,4.5,3
        """)
    report = validate(load_spec(path), progress=False)
    (p,) = report.problems                      # 4.05 s is within the 0.1 s tolerance
    assert (Path(p.file).name, p.row, p.column, p.clip) == ("segments.csv", 4, "end", "c2")
    assert "after the end of the clip's audio (4.00 s)" in p.message
    assert "segments: 2 of 3 clips, 3 segments, rating bright" in report.summary()
    (tmp_path / "segments.csv").write_text("clip,start,end,bright\nc1,0,2,2\n")
    assert main(["validate", str(path), "--quiet"]) == 0
    assert "segments: 1 of 3 clips, 1 segments" in capsys.readouterr().out


def test_train_checks_segment_times_against_the_spectrograms(tmp_path, caplog,
                                                             monkeypatch):
    """Audit 13c #1, #3: segment times in milliseconds ([0, 4000) on a 4-s clip) failed
    validate but trained silently, every crop taking the first segment's rating; a segment
    shorter than a frame (1.01-1.02 s) reached no crop without a word."""
    from midlevel.errors import TrainingError
    from midlevel.training.from_spec import train
    path = dataset(tmp_path, """
        clip,start,end,bright
        c1,0,2000,2
        c1,2000,4000,8
        """)
    config = {"preset": "small", "width": 0.125, "epochs": 1, "crop_seconds": 1.0,
              "batch_size": 2}
    with pytest.raises(TrainingError, match=r"2 time-varying rating\(s\) lie past the end.*"
                                             r"segments.csv, row 2, column 'end', clip 'c1'"):
        train(path, tmp_path / "ms", mode="joint", config=config, cache_dir=tmp_path / "cache",
              progress=False)
    assert not (tmp_path / "ms").exists()
    (tmp_path / "segments.csv").write_text("clip,start,end,bright\nc1,1.01,1.02,9\n"
                                           "c1,2,4,8\n")
    with caplog.at_level("INFO", logger="midlevel"):
        train(path, tmp_path / "short", mode="joint", config=config,
              cache_dir=tmp_path / "cache", progress=False)
    assert "1 segment(s) without a frame: " in caplog.text
    assert "segments.csv, row 2, column 'end', clip 'c1': segment holds no frame: " \
        "1.01-1.02 s" in caplog.text
    report = validate(load_spec(path), progress=False)   # re-audit 13: validate says so too
    assert "segment holds no frame" in [w.message.split(":")[0] for w in report.warnings
                                        if w.clip == "c1"]
    # audit 13c #2: the scores compare clip-level ratings, and training and evaluate say so
    said = "1 clip(s) have time-varying ratings (segments): training crops take them, but"
    assert said in caplog.text
    caplog.clear()
    from midlevel.run import load_run
    with caplog.at_level("INFO", logger="midlevel"):
        load_run(tmp_path / "short").evaluate(splits=("train",))
    assert said in caplog.text and "clip-level rating" in caplog.text
    # re-audit 13 N3, N6: an instant at the clip's very end holds no frame and is not
    # warned about; the end is the audio's duration (4.00 s), as validate judges it, not
    # the last frame's time (4.016 s)
    from midlevel.training.segment_check import check_segment_times
    timed = path.read_text().replace("start_column: start\n    end_column: end",
                                     "time_column: t")
    (tmp_path / "timed.yaml").write_text(timed)
    (tmp_path / "segments.csv").write_text("clip,t,bright\nc1,0,2\nc1,3.99,8\n")
    table = load_annotations(load_spec(tmp_path / "timed.yaml"))
    caplog.clear()
    with caplog.at_level("WARNING", logger="midlevel"):
        check_segment_times(table, {"c1": 126}, 31.25)
    assert "without a frame" not in caplog.text
    # audit 20c: an instant whose next instant follows within a frame holds none: said
    (tmp_path / "segments.csv").write_text("clip,t,bright\nc1,0,2\nc1,1.505,5\nc1,1.52,8\n")
    table = load_annotations(load_spec(tmp_path / "timed.yaml"))
    with caplog.at_level("WARNING", logger="midlevel"):
        check_segment_times(table, {"c1": 126}, 31.25)
    assert "1 segment(s) without a frame: " in caplog.text
    assert "row 3, column 't', clip 'c1': segment holds no frame: 1.505-1.52 s" in caplog.text
    caplog.clear()
    monkeypatch.setenv("RANK", "1")  # under torchrun only the first process says it
    with caplog.at_level("WARNING", logger="midlevel"):
        check_segment_times(table, {"c1": 126}, 31.25)
    assert "without a frame" not in caplog.text
    monkeypatch.delenv("RANK")
    (tmp_path / "segments.csv").write_text("clip,t,bright\nc1,0,2\nc1,4.11,8\n")
    table = load_annotations(load_spec(tmp_path / "timed.yaml"))
    with pytest.raises(TrainingError, match=r"rating at 4.11 s lies after the end of the "
                                             r"clip's audio \(4.00 s\)"):
        check_segment_times(table, {"c1": 126}, 31.25)


def test_spec_without_segments_has_no_segment_line(tmp_path):
    path = dataset(tmp_path, "", spec=SPEC.replace(SPEC[SPEC.index("segments:"):
                                                        SPEC.index("concepts:")], ""))
    table = load_annotations(load_spec(path))
    assert "segments" not in table.attrs and len(segments_of(table)) == 0
    assert "\nsegments:" not in validate(load_spec(path), progress=False).summary()


# ----------------------------------------------------------------------------- crop labels

FPS = 10.0


def labelled_set(seg_rows=None, n_frames=(40, 40, 30)):
    """A ClipSet of 3 clips (concept k, target y) whose first clip has the given segments."""
    clips = ["a", "b", "c"]
    table = pd.DataFrame({"split": "train", "k": [5.0, 3.0, 1.0], "y": [2.0, 4.0, np.nan]},
                         index=pd.Index(clips, name="clip"))
    rng = np.random.default_rng(0)
    features = {c: rng.normal(size=(6, n)).astype(np.float32) for c, n in zip(clips, n_frames)}
    columns = Columns(["k"], [{"name": "y", "kind": "regression"}])
    scales = Scales.fit(table, features, columns)
    if seg_rows is not None:
        table.attrs["segments"] = Segments(pd.DataFrame(seg_rows, columns=["clip", "start",
                                                                           "end", "k", "y"]))
    return ClipSet(table, features, columns, scales, fps=FPS), scales, table, features, columns


def unscale(value, mean, std):
    return float(value) * float(std[0]) + float(mean[0])


def test_crop_label_is_the_time_weighted_mean_of_its_segments():
    a, b = 2.0, 8.0
    clips, s, *_ = labelled_set([("a", 0.0, 2.0, a, np.nan), ("a", 2.0, 4.0, b, 6.0)])
    # frames 18..25: 18, 19 lie in A (0-2 s), 20..25 in B: 1/4 of A, 3/4 of B
    offsets = np.array([18, 0, 0])
    _, c, y = clips.batch(np.array([0]), offsets, 8)
    assert unscale(c[0, 0], s.concept_mean, s.concept_std) == pytest.approx(0.25 * a + 0.75 * b,
                                                                             rel=1e-6)
    # y: A does not rate it (NaN cell), so those frames keep the clip's rating 2
    assert unscale(y[0, 0], s.target_mean, s.target_std) == pytest.approx(0.25 * 2 + 0.75 * 6,
                                                                          rel=1e-6)
    c_w, y_w = clips.window_labels("a", 18, 8)
    assert c_w[0] == pytest.approx(0.25 * a + 0.75 * b) and y_w[0] == pytest.approx(5.0)
    # a crop inside one segment takes its value; one half past the clip's end counts real frames
    assert clips.window_labels(0, 0, 20)[0][0] == pytest.approx(a)
    assert clips.window_labels(0, 30, 20)[0][0] == pytest.approx(b)


def test_frames_outside_segments_fall_back_to_the_clip_rating():
    clips, s, *_ = labelled_set([("a", 0.0, 1.0, 9.0, np.nan), ("c", 0.0, 1.0, np.nan, 7.0)])
    # clip a, frames 5..14: half in the 0-1 s segment (9), half outside (clip rating 5)
    assert clips.window_labels("a", 5, 10)[0][0] == pytest.approx(7.0)
    assert clips.window_labels("a", 20, 10)[0][0] == pytest.approx(5.0)
    # clip c has no clip-level y: frames its segment rates give the label, others nothing
    assert clips.window_labels("c", 5, 10)[1][0] == pytest.approx(7.0)
    assert np.isnan(clips.window_labels("c", 10, 10)[1][0])
    _, _, y = clips.batch(np.array([2]), np.array([0, 0, 12]), 10)
    assert torch.isnan(y[0, 0])


def test_frame_labels_follow_frame_centres():
    seg = pd.DataFrame({"start": [0.0, 0.32], "end": [0.32, np.inf], "k": [1.0, 2.0]})
    out = frame_labels(seg, [0.0], ["k"], n_frames=20, fps=31.25)
    # frame 10 is centred at 0.32 s exactly: it starts the second segment
    assert out[:10, 0].tolist() == [1.0] * 10 and out[10:, 0].tolist() == [2.0] * 10


def test_clips_without_segments_give_the_same_batches_as_before():
    rows = [("a", 0.0, 2.0, 2.0, 1.0), ("a", 2.0, 4.0, 8.0, 3.0)]
    with_seg, _, table, features, columns = labelled_set(rows)
    plain, scales, *_ = labelled_set(None)
    offsets = np.array([5, 7, 3])
    idx = np.array([2, 1])
    for got, want in zip(with_seg.batch(idx, offsets, 12), plain.batch(idx, offsets, 12)):
        assert torch.equal(torch.nan_to_num(got, 99.0), torch.nan_to_num(want, 99.0))
    # ...also beside a segmented clip in one batch, and equal to the clip-level labels
    x, c, y = with_seg.batch(np.array([1, 0, 2]), offsets, 12)
    _, c0, y0 = plain.batch(np.array([1, 0, 2]), offsets, 12)
    assert torch.equal(c[[0, 2]], c0[[0, 2]]) and torch.equal(c[[0, 2]], plain.concepts[[1, 2]])
    assert torch.equal(y[0], y0[0]) and not torch.equal(c[1], c0[1])
    # the clip-level tensors themselves (what the heads are fitted on) do not change
    assert torch.equal(with_seg.concepts, plain.concepts)


def test_fit_trains_crops_on_segment_labels(tmp_path, monkeypatch, one_torch_thread):
    from midlevel.testing.toy import FPS as TOY_FPS, toy_config, toy_data
    table, features, columns = toy_data(n_clips=12)
    train = table.index[table["split"] == "train"]
    rows = [(train[0], 0.0, 10.0, 9.0, np.nan, np.nan, np.nan, np.nan)]
    table.attrs["segments"] = Segments(pd.DataFrame(
        rows, columns=["clip", "start", "end", "k0", "k1", "k2", "t0", "t1"]))
    seen = []
    original = ClipSet.batch

    def spy(self, idx, offsets, n_frames):
        out = original(self, idx, offsets, n_frames)
        seen.extend((self.clips[i], float(out[1][k, 0]) * self.scales.concept_std[0]
                     + self.scales.concept_mean[0]) for k, i in enumerate(idx))
        return out

    monkeypatch.setattr(ClipSet, "batch", spy)
    fit(table, features, columns, tmp_path / "run", toy_config(epochs=1, mode="independent"),
        fps=TOY_FPS, progress=False)
    labels = dict(seen)
    assert labels[train[0]] == pytest.approx(9.0, rel=1e-5)          # the segment's rating
    assert labels[train[1]] == pytest.approx(table.loc[train[1], "k0"], rel=1e-5)


# ----------------------------------------------------------------------------- synthetic world

# sha256 of annotations.csv written before segments existed (same seeds): clip-level ratings
# must not change when segment ratings are added.
BEFORE = {3: "239f5d21df091910a2b625b0c30a790f21743f514357e5a9adebc6026b80dfd7",
          7: "72a76072cbb901d6d4219d69cea44b9dba7a3dbc6c4428dae7b52084bc508f48"}


def test_synth_clip_annotations_unchanged_by_segments(tmp_path):
    out = synthesize(tmp_path / "a", n_clips=12, seed=3, duration=0.5, change_fraction=0.5,
                     n_jobs=1, progress=False).parent
    csv = (out / "annotations.csv").read_bytes()
    assert hashlib.sha256(csv).hexdigest() == BEFORE[3]
    assert csv.decode().splitlines()[1].startswith("s0000,4.98,4.81,8.69,7.22,2.97,5.20,3.30")
    out = synthesize(tmp_path / "b", n_clips=10, seed=7, duration=0.5, correlated=True,
                     n_jobs=1, progress=False).parent
    assert hashlib.sha256((out / "annotations.csv").read_bytes()).hexdigest() == BEFORE[7]


def test_synth_segments_match_the_ground_truth(tmp_path):
    out = synthesize(tmp_path / "d", n_clips=16, seed=5, duration=1.0, change_fraction=0.5,
                     rating_noise=0.0, target_noise=0.0, n_jobs=1, progress=False).parent
    truth = json.loads((out / "ground_truth.json").read_text())
    seg = pd.read_csv(out / "segments.csv", dtype={"clip_id": str})
    changed = [c for c, r in truth["clips"].items() if r["change"]]
    assert len(changed) == 8 and sorted(set(seg["clip_id"])) == sorted(changed)
    for clip in changed:
        rec = truth["clips"][clip]
        rows = seg[seg["clip_id"] == clip]
        assert rows[["start", "end"]].to_numpy().tolist() == [[0.0, 0.5], [0.5, 1.0]]
        first, second = (np.array([s["concepts"][k] for k in MIDLEVEL_CONCEPTS])
                         for s in rec["segments"])
        k = MIDLEVEL_CONCEPTS.index(rec["change"]["concept"])
        assert first[k] == pytest.approx(rec["change"]["old"], abs=1e-6)     # old, then new
        assert second[k] == pytest.approx(rec["change"]["new"], abs=1e-6)
        assert np.delete(first, k) == pytest.approx(np.delete(second, k))
        clip_true = np.array([rec["concepts"][c] for c in MIDLEVEL_CONCEPTS])
        assert (first + second) / 2 == pytest.approx(clip_true, abs=2e-6)
        # noise-free ratings and targets of each half from its own true concepts
        for (_, row), c in zip(rows.iterrows(), (first, second)):
            assert row[list(MIDLEVEL_CONCEPTS)].to_numpy(float) == pytest.approx(
                1 + 9 * c, abs=0.0051)                   # 2 decimals of the exact value
            target = np.clip(DEFAULT_INTERCEPTS.to_numpy() + DEFAULT_WEIGHTS.to_numpy() @ c, 1, 9)
            assert row[list(DEFAULT_WEIGHTS.index)].to_numpy(float) == pytest.approx(
                target, abs=0.0051)
    for clip, rec in truth["clips"].items():
        assert (rec["segments"] is None) == (clip not in changed)


def test_synth_then_validate_reports_segments(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["synth", "--out", str(out), "--n-clips", "8", "--seed", "2", "--duration",
                 "1.0", "--jobs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["validate", str(out / "spec.yaml"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "segments: 2 of 8 clips, 4 segments, rating 7 concepts, 8 targets" in text
    assert "OK: no problems found" in text


def test_a_clip_rated_by_its_segments_is_not_a_missing_rating(tmp_path):
    """A clip whose cell is empty but whose segments rate the column over time has that
    rating: validate neither counts nor warns about it (it did: left from audit 13a)."""
    path = dataset(tmp_path, """
        clip,start,end,bright
        c1,0,2,2
        c1,2,4,8
        """)
    (tmp_path / "ratings.csv").write_text(
        "clip,bright,roughness,happy,mood\nc1,,5,5,a\nc2,,6,6,b\nc3,7,7,7,a\n")
    report = validate(load_spec(path), progress=False)
    missing = [w for w in report.warnings if w.message.startswith("missing rating")]
    assert [(w.clip, w.message) for w in missing] == [("c2", "missing rating: bright")]
    assert report.missing_ratings()["bright"] == 1
    assert "missing ratings: bright 1" in report.summary()


def test_segment_times_in_another_unit_are_warned_about(tmp_path):
    """Audit 16a: segments in tenths of a second (0-0.3 and 0.3-0.6 on 4-s clips) passed
    validate with no word while 90 % of each clip fell back to its clip rating; now a warning
    names the table. Segments reaching past the first quarter on some clips, or one clip's
    intro alone, are not warned about."""
    path = dataset(tmp_path, """
        clip,start,end,bright
        c1,0,0.3,2
        c1,0.3,0.6,8
        c2,0,0.35,3
        c3,0,0.2,4
        """)
    report = validate(load_spec(path), progress=False)
    (w,) = [w for w in report.warnings if w.message.startswith("segments end early")]
    assert Path(w.file).name == "segments.csv"
    assert "on 3 of 3 clips" in w.message and "another unit than seconds" in w.message
    for fine in ("clip,start,end,bright\nc1,0,0.3,2\nc2,0,2.5,3\nc3,0,2,4\n",
                 "clip,start,end,bright\nc1,0,0.5,2\n"):
        (tmp_path / "segments.csv").write_text(fine)
        report = validate(load_spec(path), progress=False)
        assert not [w for w in report.warnings if w.message.startswith("segments end early")]


def test_a_table_of_instants_is_not_said_to_end_early(tmp_path):
    """Re-audit 16: instants at 0 and 1.5 s on 4-s clips hold to each clip's end; they were
    said to end early."""
    spec = SPEC.replace("    start_column: start\n    end_column: end\n",
                        "    time_column: time\n")
    path = dataset(tmp_path, """
        clip,time,bright
        c1,0,2
        c1,0.5,8
        c2,0,3
        c3,0,4
        """, spec=spec)
    report = validate(load_spec(path), progress=False)
    assert report.ok
    assert not [w for w in report.warnings if w.message.startswith("segments end early")]
