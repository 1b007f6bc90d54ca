"""`midlevel validate`: a clean dataset passes; every kind of bad input is named."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import write_tone
from midlevel.cli import main
from midlevel.data.spec import load_spec
from midlevel.data.validate import validate

REPO = Path(__file__).resolve().parents[1]

SPEC = """
name: tiny
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: ratings.csv
    id_column: clip
concepts:
  bright: {scale: [1, 10]}
targets:
  happy: {scale: [1, 9]}
splits:
  test: {ids: [c4]}
"""


def tiny_dataset(root: Path, n: int = 4) -> Path:
    rows = ["clip,bright,happy"]
    for i in range(1, n + 1):
        write_tone(root / "audio" / f"c{i}.wav", freq=200.0 * i, seconds=0.5 + 0.25 * i,
                   channels=1 + i % 2)
        rows.append(f"c{i},{i},{i}")
    (root / "ratings.csv").write_text("\n".join(rows) + "\n")
    (root / "spec.yaml").write_text(textwrap.dedent(SPEC))
    return root / "spec.yaml"


def test_clean_dataset_passes_with_summary(tmp_path, capsys):
    spec_path = tiny_dataset(tmp_path)
    report = validate(load_spec(spec_path), progress=False)
    assert report.ok, report.problems
    text = report.summary()
    assert "clips: 4" in text and "splits: train 3, validation 0, test 1" in text
    assert "durations (s): min 0.75, mean 1.12, max 1.50" in text
    assert "22050 Hz x4" in text and "1 x2" in text and "2 x2" in text
    assert main(["validate", str(spec_path), "--quiet"]) == 0
    assert "OK: no problems found" in capsys.readouterr().out


def test_every_bad_file_is_named(tmp_path, capsys):
    spec_path = tiny_dataset(tmp_path, n=5)
    audio = tmp_path / "audio"
    (audio / "c1.wav").unlink()                                   # missing
    (audio / "c2.wav").write_bytes(b"")                           # zero bytes
    (audio / "c3.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)   # undecodable
    sf.write(audio / "c4.wav", np.zeros(2205), 22050)             # silent
    report = validate(load_spec(spec_path), progress=False)
    by_file = {Path(p.file).name: p.message for p in report.problems}
    assert set(by_file) == {"c1.wav", "c2.wav", "c3.wav", "c4.wav"}
    assert "not found" in by_file["c1.wav"] or "missing" in by_file["c1.wav"].lower()
    assert "silent" in by_file["c4.wav"]
    assert main(["validate", str(spec_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "4 problem(s)" in err and all(f"c{i}.wav" in err for i in range(1, 5))


def test_many_problems_go_to_a_csv_with_counts_by_kind(tmp_path, capsys, monkeypatch):
    """A misplaced audio folder is a problem per clip: more than 20 go to a CSV (every one,
    with file, row and clip), the screen gets their counts by kind and the first 10 (audit
    11b #4: 503 problems were 531 lines on stderr)."""
    import pandas as pd
    spec_path = tiny_dataset(tmp_path, n=24)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\n" + "".join(
        f"c{i},{'abc' if i == 3 else 5},5\n" for i in range(1, 25)))
    for i in range(1, 24):
        (tmp_path / "audio" / f"c{i}.wav").unlink()
    monkeypatch.chdir(tmp_path)
    assert main(["validate", str(spec_path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "24 problem(s), every one in validate_problems_" in err
    assert "23 audio file not found" in err and "1 non-numeric rating '...'" in err
    from midlevel.data.validate import problem_kind  # an id holding ': ' is one kind
    assert problem_kind("duplicate id 'x: y' in rows 2, 5") == problem_kind(
        "duplicate id '7' in rows 3, 9") == "duplicate id '...' in rows N, N"
    shown = err.split("the first 10:\n")[1].splitlines()
    assert len(shown) == 10 and all(line.startswith("  - ") for line in shown)
    table = pd.read_csv(next(tmp_path.glob("validate_problems_*.csv")))
    assert len(table) == 24 and table["clip"].astype(str).str.startswith("c").all()
    bad = table[table["kind"] == "non-numeric rating '...'"].iloc[0]
    assert (bad["clip"], bad["column"], bad["row"]) == ("c3", "bright", 4)
    assert main(["validate", str(spec_path), "--quiet", "--problems-csv", "p.csv"]) == 1
    assert len(pd.read_csv(tmp_path / "p.csv")) == 24
    # the data mended: the earlier list goes, said (audit 23a: "OK: no problems found"
    # beside the 24-problem CSV); a list asked for by path is the user's, left alone
    other = tiny_dataset(tmp_path / "other")  # another dataset of the same spec name: its
    capsys.readouterr()                      # validate leaves this one's list (re-audit 23d)
    assert main(["validate", str(other), "--quiet"]) == 0
    assert "names no file of this dataset" in capsys.readouterr().err
    assert len(list(tmp_path.glob("validate_problems_*.csv"))) == 1
    tiny_dataset(tmp_path, n=24)  # this dataset mended: its audio back, ratings in scale
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\n" + "".join(
        f"c{i},5,5\n" for i in range(1, 25)))
    assert main(["validate", str(spec_path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert not list(tmp_path.glob("validate_problems_*.csv")) and (tmp_path / "p.csv").is_file()
    assert "removed validate_problems_" in err and "now none" in err


def test_missing_ratings_are_counted_not_dropped(tmp_path):
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\nc1,1,\nc2,,2\nc3,3,3\nc4,,4\n")
    report = validate(load_spec(spec_path), progress=False)
    assert report.ok and len(report.table) == 4
    assert report.missing_ratings().to_dict() == {"bright": 2, "happy": 1}
    assert "missing ratings: bright 2, happy 1" in report.summary()
    # audit 13a D3: how many clips carry both, where an independent head and the ratings
    # estimator fit (c3 in training; c4, the test clip, lacks its concept)
    assert ("clips rated on every concept: 2; on every concept and a target: 1 per target "
            "(training split 1:") in report.summary()


def test_the_clips_rated_on_both_are_counted_per_target(tmp_path):
    """Re-audit 13 N2: the count was of clips rated on every target at once (0 where each
    target is rated on its own clips), while the head and the ratings estimator fit each
    target on its own clips."""
    spec_path = tiny_dataset(tmp_path)
    spec_path.write_text(spec_path.read_text().replace(
        "  happy: {scale: [1, 9]}", "  happy: {scale: [1, 9]}\n  sad: {scale: [1, 9]}"))
    (tmp_path / "ratings.csv").write_text("clip,bright,happy,sad\nc1,1,1,\nc2,2,,2\n"
                                          "c3,3,3,\nc4,4,,4\n")
    summary = validate(load_spec(spec_path), progress=False).summary()
    assert ("clips rated on every concept: 4; on every concept and a target: 2 per target "
            "(training split 1-2:") in summary


def test_the_warnings_csv_gives_rows_as_whole_numbers(tmp_path):
    """Short clips (no row) and missing ratings (a row) in one table: rows read 2, not 2.0."""
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\nc1,1,1\nc2,,2\nc3,3,3\nc4,4,4\n")
    table = validate(load_spec(spec_path), progress=False).warnings_table()
    assert table["row"].isna().any() and table["row"].notna().any()
    table.to_csv(tmp_path / "w.csv", index=False)
    rows = [line.split(",")[2] for line in (tmp_path / "w.csv").read_text().splitlines()[1:]]
    assert "3" in rows and not any(r.endswith(".0") for r in rows)


def test_spec_errors_exit_nonzero_with_message(tmp_path, capsys):
    spec_path = tiny_dataset(tmp_path)
    spec_path.write_text(spec_path.read_text().replace("id_column", "id_col"))
    assert main(["validate", str(spec_path)]) == 2
    assert "'id_col'" in capsys.readouterr().err


@pytest.mark.realdata
def test_soundtracks_validates(soundtracks_dir, capsys):
    code = main(["validate", str(REPO / "data_specs" / "soundtracks.yaml"),
                 "--root", str(soundtracks_dir), "--no-decode", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "clips: 360" in out and "targets (8)" in out and "test 36" in out


@pytest.mark.realdata
def test_soundtracks_copy_with_three_faults(soundtracks_dir, tmp_path, capsys):
    """A zero-byte mp3, a rating 'abc' and a duplicated row: all three named, exit non-zero."""
    copy = tmp_path / "st"
    (copy / "audio").mkdir(parents=True)
    for mp3 in sorted((soundtracks_dir / "audio").glob("*.mp3")):
        (copy / "audio" / mp3.name).symlink_to(mp3)
    (copy / "audio" / "007.mp3").unlink()
    (copy / "audio" / "007.mp3").write_bytes(b"")
    shutil.copy(soundtracks_dir / "test_ids.txt", copy)
    lines = (soundtracks_dir / "mean_ratings_set1.csv").read_text(encoding="utf-8-sig").splitlines()
    cells = lines[5].split(",")          # clip 005, file row 6
    cells[3] = "abc"                     # tension
    lines[5] = ",".join(cells)
    lines.insert(12, lines[11])          # clip 011 twice (file rows 12 and 13)
    (copy / "mean_ratings_set1.csv").write_text("\n".join(lines) + "\n")
    code = main(["validate", str(REPO / "data_specs" / "soundtracks.yaml"),
                 "--root", str(copy), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "007.mp3" in err
    assert "row 6, column 'tension', clip '005': non-numeric rating 'abc'" in err
    assert "duplicate id '011' in rows 12, 13" in err


def test_a_column_without_a_rating_in_the_training_split_is_a_problem(tmp_path, capsys):
    """Every training clip lacks 'happy' (c4, the only rated clip, is the test split): a
    model cannot learn it, so validate fails, naming the column and the split."""
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\nc1,1,\nc2,2,\nc3,3,\nc4,4,4\n")
    report = validate(load_spec(spec_path), progress=False)
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'ratings.csv'}, column 'happy': target 'happy' has no rating in the "
        f"training split (3 clips; 1 clip(s) of other splits are rated): a model cannot learn "
        f"it; rate training clips or change the splits"]
    assert main(["validate", str(spec_path), "--quiet", "--no-decode"]) == 1


def test_header_names_equal_after_stripping_fail_validate(tmp_path):
    """'happy' and 'happy ' read as one column: validate names both, not 'missing ratings'."""
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy,happy \nc1,1,2,2\nc2,2,3,3\n"
                                          "c3,3,4,4\nc4,4,5,5\n")
    report = validate(load_spec(spec_path), progress=False)
    assert not report.ok and "columns 3, 4; equal after stripping spaces" in str(
        report.problems[0])


def test_train_refuses_a_column_without_a_training_rating(tmp_path):
    from midlevel.errors import ValidationFailed
    from midlevel.training.from_spec import train
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\nc1,1,\nc2,2,\nc3,3,\nc4,4,4\n")
    with pytest.raises(ValidationFailed, match="target 'happy' has no rating in the training"):
        train(spec_path, tmp_path / "run", mode="independent", epochs=1, progress=False,
              cache_dir=tmp_path / "cache")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_a_split_without_ratings_or_with_one_value_is_warned_about_by_split_and_column(
        tmp_path, capsys):
    """c4 (the test split) has no 'happy'; every training clip has 'bright' 2: two warnings
    naming split and column, none for the columns that vary."""
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\nc1,2,1\nc2,2,2\nc3,2,3\nc4,4,\n")
    report = validate(load_spec(spec_path), progress=False, decode=False)
    assert report.ok
    found = {(w.column, w.message) for w in report.warnings
             if w.message.startswith(("unrated split", "constant ratings"))}
    assert found == {
        ("happy", "unrated split: the test split (1 clips) has no rating of happy"),
        ("bright", "constant ratings: bright is 2 on every one of the 3 rated clips of the "
                   "train split (no r, R^2 or calibration line there)")}
    assert main(["validate", str(spec_path), "--quiet", "--no-decode"]) == 0
    err = capsys.readouterr().err
    assert "unrated split: the test split" in err and "constant ratings: bright" in err


def test_an_unrated_split_says_when_its_cells_were_rejected(tmp_path):
    """Audit 9b, D4: with decimal commas every split was 'unrated' though every cell held a
    rating, rejected: the warning says so."""
    spec_path = tiny_dataset(tmp_path)
    (tmp_path / "ratings.csv").write_text('clip,bright,happy\nc1,2,1\nc2,3,2\nc3,2,3\n'
                                          'c4,4,"4,5"\n')
    report = validate(load_spec(spec_path), progress=False, decode=False)
    assert not report.ok
    assert [w.message for w in report.warnings if w.message.startswith("unrated split")] == [
        "unrated split: the test split (1 clips) has no rating of happy that could be read (1 "
        "of its cells are problems, listed as such)"]


def _columns(root: Path, concepts: str, targets: str, *, test: str) -> None:
    """Rewrite the tiny dataset's spec with ``bright`` and more ``concepts`` (YAML lines),
    the ``targets`` and the test split's ids."""
    text = SPEC.replace("targets:\n  happy: {scale: [1, 9]}", f"targets:\n  {targets}")
    text = text.replace("  bright: {scale: [1, 10]}\n",
                        "  bright: {scale: [1, 10]}\n" + (f"  {concepts}\n" if concepts else ""))
    (root / "spec.yaml").write_text(textwrap.dedent(text).replace("[c4]", test))


def test_a_binary_or_class_column_with_one_label_on_a_split_is_warned_about(tmp_path):
    """A tag that is 0 on every training clip, and a class that is the same on every test
    clip, are named by split and column; a binary column with both labels is not."""
    spec_path = tiny_dataset(tmp_path, n=6)
    _columns(tmp_path, "loud: {type: binary}\n  mixed: {type: binary}",
             "mood: {type: class}", test="[c5, c6]")
    (tmp_path / "ratings.csv").write_text(
        "clip,bright,loud,mixed,mood\nc1,1,0,0,sad\nc2,2,0,1,happy\nc3,3,0,0,sad\n"
        "c4,4,0,1,happy\nc5,5,1,0,sad\nc6,6,0,1,sad\n")
    report = validate(load_spec(spec_path), progress=False, decode=False)
    found = {(w.column, w.message) for w in report.warnings
             if w.message.startswith("one label")}
    assert found == {
        ("loud", "one label: loud is 0 on every one of the 4 rated clips of the train split "
                 "(the model can only learn that label)"),
        ("mood", "one label: mood is sad on every one of the 2 rated clips of the test split "
                 "(its accuracy there only counts how often a model picks that class)")}


def test_a_declared_class_no_clip_has_is_warned_about(tmp_path):
    """Audit 8b, item 1: 'jazz' declared first and never used passed validate silently,
    while coefficient tables must compare with the first class clips have."""
    spec_path = tiny_dataset(tmp_path, n=4)
    _columns(tmp_path, "", "scene: {type: class, classes: [jazz, club, chill]}", test="[c4]")
    (tmp_path / "ratings.csv").write_text(
        "clip,bright,scene\nc1,1,club\nc2,2,chill\nc3,3,club\nc4,4,chill\n")
    report = validate(load_spec(spec_path), progress=False, decode=False)
    found = [w for w in report.warnings if w.message.startswith("unused class")]
    assert [(w.column, w.message) for w in found] == [
        ("scene", "unused class: scene declares ['jazz'] but no clip has it (coefficient "
                  "tables compare the classes with 'club', the first class clips have)")]
    assert found[0].file and found[0].file.endswith("ratings.csv")


def test_a_column_read_twice_or_a_targets_column_read_as_a_concept_is_warned_about(tmp_path):
    """Audit 10a D1a, D3: both passed validate with 'OK: no problems found'."""
    spec_path = tiny_dataset(tmp_path, n=4)
    _columns(tmp_path, "bright2: {column: bright, scale: [1, 10]}\n  "
                       "happy_c: {column: happy, scale: [1, 9]}",
             "happy: {scale: [1, 9]}", test="[c4]")
    report = validate(load_spec(spec_path), progress=False, decode=False)
    found = sorted((w.column, w.message) for w in report.warnings
                   if w.message.startswith("shared column"))
    assert found == [
        ("bright", "shared column: concepts 'bright', 'bright2' read the same column: one set "
                   "of ratings under two names, whose effects no model or coefficient table "
                   "can tell apart"),
        ("happy", "shared column: concept 'happy_c' reads the column of target 'happy': the "
                  "bottleneck is handed the target as a concept, and its head can copy it")]
    assert all(w.file.endswith("ratings.csv") for w in report.warnings
               if w.message.startswith("shared column"))


def test_a_column_without_any_rating_is_one_warning_not_one_per_clip(tmp_path):
    """Audit 10a D4: a typo in a concept's column gave the problem (right) and one
    'missing rating' warning per clip (360), all consequences of the same typo."""
    spec_path = tiny_dataset(tmp_path, n=4)
    (tmp_path / "ratings.csv").write_text("clip,bright,happy\nc1,,1\nc2,,2\nc3,,3\nc4,,4\n")
    report = validate(load_spec(spec_path), progress=False, decode=False)
    missing = [w.message for w in report.warnings if w.message.startswith("missing rating")]
    assert missing == ["missing rating: bright has no rating on any of the 4 clips"]
    assert "missing ratings: bright 4" in report.summary()


def test_the_binary_line_does_not_name_one_column_as_both_min_and_max():
    """Audit 10a D7: three tags of equal share read 'min 0.33 (low), max 0.33 (low)'."""
    import pandas as pd

    from midlevel.data.validate import binary_summary
    table = pd.DataFrame({"r=low": [1, 0, 0], "r=mid": [0, 1, 0], "r=high": [0, 0, 1]})
    text = binary_summary(table, list(table.columns), {"r": list(table.columns)})
    assert text.endswith("positive share 0.33 in every column")
    table["r=high"] = [1, 1, 1]
    assert binary_summary(table, list(table.columns), {}).endswith(
        "min 0.33 (r=low), max 1.00 (r=high)")


def test_a_spec_name_is_made_file_safe_for_the_csvs_validate_writes():
    """Audit 12a #6: ``name: set/v2`` wrote ``validate_warnings_set/v2.csv`` into a
    sub-folder; ``../../my set`` outside the current folder."""
    from midlevel.cli.data import _file_safe
    assert _file_safe("set/v2") == "set_v2" and _file_safe("../../my set") == "x.._.._my_set"


def test_a_short_clip_is_judged_in_frames_as_the_padding_is(tmp_path):
    """Audit 13c #5: validate warned about 2.98-2.995-s clips as shorter than a 3-s window
    ('3.00 s, shorter than the 3-s window'), though their 94 frames fill it and nothing
    pads them; a clip a frame shorter is still warned about."""
    from midlevel.data.frontends import LogFilteredSpectrogram, window_frames
    spec_path = tiny_dataset(tmp_path)
    fe = LogFilteredSpectrogram()
    need = window_frames(3.0, fe.fps)
    for i, seconds in ((1, 2.995), (2, 2.98), (3, 2.9), (4, 3.5)):
        write_tone(tmp_path / "audio" / f"c{i}.wav", seconds=seconds)
    report = validate(load_spec(spec_path), progress=False, window=3.0)
    short = {w.clip for w in report.warnings if w.message.startswith("short clip")}
    assert short == {"c3"}
    assert fe.num_frames(round(2.98 * fe.sample_rate)) == need
