"""Data specs: parsing errors name the key; tables, joins, ratings and splits behave as documented."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import write_text as write
from midlevel.data.annotations import load_annotations
from midlevel.data.spec import format_id, load_spec
from midlevel.errors import SpecError, ValidationFailed

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "data_specs"


BASIC = """
name: tiny
root: .
audio:
  pattern: "audio/{id}.wav"
tables:
  - path: ratings.csv
    id_column: number
    id_format: "{:03d}"
concepts:
  bright: {scale: [1, 10], description: "How bright?"}
targets:
  happy: {scale: [1, 9]}
"""


def basic_dataset(tmp_path: Path, rows: str, spec: str = BASIC) -> Path:
    write(tmp_path / "ratings.csv", rows)
    return write(tmp_path / "spec.yaml", spec)


def test_basic_table_and_id_format(tmp_path):
    spec = load_spec(basic_dataset(tmp_path, "number,bright,happy\n1,2.5,3\n2,,4\n10,9,\n"))
    table = load_annotations(spec)
    assert list(table.index) == ["001", "002", "010"]
    assert list(table.columns) == ["path", "split", "bright", "happy"]
    assert table.loc["001", "path"] == str(tmp_path / "audio" / "001.wav")
    # empty cells are missing ratings: the clip stays, the value is NaN
    assert np.isnan(table.loc["002", "bright"]) and table.loc["002", "happy"] == 4
    assert np.isnan(table.loc["010", "happy"])
    assert (table["split"] == "train").all()


def test_bad_cells_are_all_reported_with_file_row_column(tmp_path):
    spec = load_spec(basic_dataset(
        tmp_path, "number,bright,happy\n1,abc,3\n2,11,4\n2,5,5\n3,inf,1\n4,NaN,2\n"))
    with pytest.raises(ValidationFailed) as info:
        load_annotations(spec)
    text = str(info.value)
    ratings = str(tmp_path / "ratings.csv")
    assert f"{ratings}, row 2, column 'bright', clip '001': non-numeric rating 'abc'" in text
    assert "row 3, column 'bright', clip '002': rating 11 outside the scale [1, 10]" in text
    assert "duplicate id '002' in rows 3, 4" in text
    assert "row 5, column 'bright', clip '003': non-finite rating 'inf'" in text
    assert "row 6, column 'bright', clip '004': non-finite rating 'NaN'" in text
    assert len(info.value.problems) == 5


def test_unknown_column_is_named(tmp_path):
    spec = load_spec(basic_dataset(tmp_path, "number,brite,happy\n1,2,3\n"))
    with pytest.raises(ValidationFailed, match="column 'bright'.*unknown column for concept"):
        load_annotations(spec)


@pytest.mark.parametrize("bad, key", [
    ("tables:\n  - path: x.csv\n    id_colum: n\n", "'id_colum'"),
    ("concepts:\n  a: {scale: [5, 1]}\n", "concepts.a.scale"),
    ("splits:\n  test: {fraction: 1.5}\n", "splits.test.fraction"),
    ("audio:\n  pattern: audio/x.wav\n", "audio.pattern"),
    ("colour: red\n", "'colour'"),
])
def test_spec_errors_name_the_key(tmp_path, bad, key):
    raw = BASIC
    top = bad.split(":")[0]
    if top in ("tables", "concepts", "splits", "audio"):
        # replace that section of the basic spec
        lines, out, skip = raw.strip().splitlines(), [], False
        for line in lines:
            if line.startswith(f"{top}:"):
                skip = True
                continue
            if skip and line.startswith(" "):
                continue
            skip = False
            out.append(line)
        raw = "\n".join(out) + "\n"
    path = basic_dataset(tmp_path, "number,bright,happy\n1,2,3\n", raw + bad)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert key in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("extra, key, lines", [
    ("targets:\n  sad: {scale: [1, 9]}\n", "targets", (11, 13)),          # a second block
    ("concepts:\n  bright: {scale: [1, 5]}\n  bright: {scale: [1, 10]}\n", "bright", (13, 14)),
    ("segments:\n  - path: s.csv\n    id_column: number\n    time_column: t\n"
     "    columns: {bright: a, bright: b}\n", "bright", (17, 17)),
    ("splits:\n  test: {size: 1, size: 2}\n", "size", (14, 14)),
])
def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path, extra, key, lines):
    """YAML keeps the last of two equal keys; a spec refuses them at any depth."""
    raw = BASIC
    if extra.startswith("concepts:"):  # replace the spec's own concepts block
        raw = raw.replace('concepts:\n  bright: {scale: [1, 10], description: "How bright?"}\n',
                          "")
        extra = extra.replace("concepts:\n", "concepts:\n  dull: {}\n")
    path = basic_dataset(tmp_path, "number,bright,happy\n1,2,3\n", raw + extra)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    text = str(info.value)
    assert text.startswith(f"{path}: key '{key}' is given twice")
    assert f"lines {lines[0]} and {lines[1]}" in text


def test_yaml_merge_keys_still_work(tmp_path):
    spec = load_spec(basic_dataset(tmp_path, "number,bright,happy\n1,2,3\n", BASIC.replace(
        "targets:\n  happy: {scale: [1, 9]}",
        "targets:\n  happy: &h {scale: [1, 9]}\n  sad: {<<: *h, column: happy, scale: [1, 8]}")))
    assert spec.column("sad").scale == (1, 8)


@pytest.mark.parametrize("targets, message", [
    ("happy: {scale: [1, .nan]}", "'targets.happy.scale' must be [low, high]: two finite"),
    ("happy: {scale: [.inf, 9]}", "'targets.happy.scale' must be [low, high]: two finite"),
    ("happy: {scale: [1, 9], type: class}", "'targets.happy.scale': a class column has no scale"),
    ("happy: {scale: [0, 1], type: binary}", "'targets.happy.scale': a binary column has no"),
    ("happy: {scale: [0, 1], type: tags, column: m, tags: [a, b]}",
     "'targets.happy.scale': a tags column has no scale"),
])
def test_a_scale_that_cannot_hold_ratings_is_a_spec_error(tmp_path, targets, message):
    """A NaN bound would make every rating 'outside the scale'; a scale on a class column
    turned its ratings into one class per value: both are refused, naming the key."""
    path = basic_dataset(tmp_path, "number,bright,happy\n1,2,3\n",
                         BASIC.replace("happy: {scale: [1, 9]}", targets))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


@pytest.mark.parametrize("classes, message", [
    ("[yes, no]", "YAML reads unquoted yes/no, on/off and true/false as booleans (here True)"),
    ("[on, 'off']", "quote the names as they appear in the CSV"),
    ("[a, '', b]", "'targets.happy.classes' has an empty entry"),
    ("[a, b, a]", "'targets.happy.classes' names 'a' more than once"),
    ("[a, b]} \n  mood: {type: tags, column: m, tags: [yes, no]",
     "'targets.mood.tags': YAML reads unquoted yes/no"),
])
def test_class_names_yaml_did_not_read_as_written_are_refused(tmp_path, classes, message):
    """``classes: [yes, no]`` became ['True', 'False'] and then every CSV cell 'yes' was an
    'unknown class': the spec is refused at load, naming the key and the fix."""
    path = basic_dataset(tmp_path, "number,bright,happy\n1,2,yes\n", BASIC.replace(
        "happy: {scale: [1, 9]}", f"happy: {{type: class, classes: {classes}}}"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_quoted_yes_no_classes_load(tmp_path):
    path = basic_dataset(tmp_path, "number,bright,happy\n1,2,yes\n", BASIC.replace(
        "happy: {scale: [1, 9]}", "happy: {type: class, classes: ['yes', 'no']}"))
    assert load_spec(path).column("happy").classes == ("yes", "no")


def test_format_id():
    assert format_id("7", "{:03d}") == "007"
    assert format_id(" 12.0 ", "{:03d}") == "012"
    assert format_id("abc", None) == "abc"
    assert format_id("x", "clip_{}") == "clip_x"
    with pytest.raises(ValueError):
        format_id("1.5", "{:03d}")


def _split_dataset(tmp_path, splits: str, n=100):
    rows = "number,bright,happy,artist\n" + "".join(
        f"{i},{1 + i % 9},{1 + i % 8},a{i // 2 if i < 60 else i}\n" for i in range(1, n + 1))
    write(tmp_path / "test_ids.txt", "001\n002\n003\n")
    return load_spec(basic_dataset(tmp_path, rows, BASIC + splits))


def test_fixed_and_random_splits(tmp_path):
    spec = _split_dataset(tmp_path, "splits:\n  seed: 3\n  test: {ids_file: test_ids.txt}\n"
                                    "  validation: {size: 10}\n")
    table = load_annotations(spec)
    assert list(table.index[table.split == "test"]) == ["001", "002", "003"]
    assert (table.split == "validation").sum() == 10
    again = load_annotations(spec)
    pd.testing.assert_series_equal(table.split, again.split)  # same seed, same split
    spec.split_seed = 4
    assert not load_annotations(spec).split.equals(table.split)


def test_calibration_split_is_drawn_after_validation_and_leaves_the_others_alone(tmp_path):
    """An optional calibration split is drawn from what test and validation left, so adding
    it keeps their clips and only moves training clips."""
    base = "splits:\n  seed: 3\n  test: {ids_file: test_ids.txt}\n  validation: {size: 10}\n"
    before = load_annotations(_split_dataset(tmp_path, base)).split
    after = load_annotations(_split_dataset(tmp_path, base + "  calibration: {size: 12}\n")).split
    assert (after == "calibration").sum() == 12
    for name in ("test", "validation"):
        assert list(after.index[after == name]) == list(before.index[before == name])
    assert (before[after == "calibration"] == "train").all()


def test_group_disjoint_and_singleton_splits(tmp_path):
    spec = _split_dataset(tmp_path, "splits:\n  seed: 0\n"
                                    "  test: {fraction: 0.1, group_by: artist, singleton_groups: true}\n"
                                    "  validation: {fraction: 0.2, group_by: artist}\n")
    ann = load_annotations(spec, strict=False)
    table = ann.table
    artists = pd.read_csv(tmp_path / "ratings.csv").set_index(
        table.index)["artist"]
    by_split = {s: set(artists[table.split == s]) for s in ("train", "validation", "test")}
    assert not by_split["train"] & by_split["validation"]
    assert not by_split["test"] & (by_split["train"] | by_split["validation"])
    counts = artists.value_counts()
    assert all(counts[a] == 1 for a in by_split["test"])  # artists with a single track
    assert (table.split == "test").sum() == 10
    assert 19 <= (table.split == "validation").sum() <= 21


def test_unknown_test_id_is_a_problem(tmp_path):
    spec = _split_dataset(tmp_path, "splits:\n  test: {ids: ['001', '999']}\n", n=5)
    with pytest.raises(ValidationFailed, match="clip '999': id listed in split 'test'"):
        load_annotations(spec)


def test_an_unpadded_test_id_gets_a_hint(tmp_path):
    """Audit 9b, D7: '8' in a split's list, with clip ids written '{:03d}', was refused with no
    word about the padding."""
    spec = _split_dataset(tmp_path, "splits:\n  test: {ids: ['8', '009', '999']}\n", n=12)
    with pytest.raises(ValidationFailed) as info:
        load_annotations(spec)
    text = str(info.value)
    assert ("clip '8': id listed in split 'test' is not a clip of the dataset (clip ids are "
            "written with id_format '{:03d}': this is clip '008'") in text
    assert "clip '999': id listed in split 'test' is not a clip of the dataset\n" in text + "\n"


def _refusal(tmp_path, rows: str, spec: str = BASIC) -> str:
    """The problems' text of the basic dataset with ``rows``, refused at load."""
    with pytest.raises(ValidationFailed) as info:
        load_annotations(load_spec(basic_dataset(tmp_path, rows, spec)))
    return str(info.value)


def test_empty_and_non_numeric_ids_are_named_as_such(tmp_path):
    """Audit 9b, D5: a spreadsheet's stray row ',,' gave "bad id: could not convert string to
    float: ''" (the "empty id" message could not appear with an integer id_format)."""
    text = _refusal(tmp_path, "number,bright,happy\n1,2,3\nabc,2,3\n,4,5\n,,\n")
    assert ("row 3, column 'number': bad id: key 'abc' is not a number (id_format '{:03d}' takes "
            "whole numbers)") in text
    assert "row 4, column 'number': empty id\n" in text + "\n"
    assert "row 5, column 'number': empty id (every cell of the row is empty" in text


def test_a_filter_on_zero_padded_ids_explains_they_are_text(tmp_path):
    """Audit 9b, D3: the message said a filter sees numbers in a column of numbers, the
    opposite of what a column of zero-padded ids is read as."""
    path = basic_dataset(tmp_path, "number,bright,happy\n001,2,3\n002,2,3\n",
                         BASIC.replace('    id_format: "{:03d}"\n',
                                       '    id_format: "{:03d}"\n    filter: "number <= 1"\n'))
    with pytest.raises(ValidationFailed, match="a column of numbers written with leading zeros "
                                               "such as ids '007'"):
        load_annotations(load_spec(path))


def test_decimal_commas_are_named_as_such(tmp_path):
    """Audit 9b, D4: '4,83' was a bare "non-numeric rating" (2,880 of them on a whole file)."""
    text = _refusal(tmp_path, 'number,bright,happy\n1,"4,83",3\n2,abc,3\n')
    assert ("non-numeric rating '4,83' (a decimal comma? ratings are read with a decimal point: "
            "save the table with '.' decimals, '4.83')") in text
    assert "non-numeric rating 'abc'\n" in text + "\n"
    assert "'1,234' (a thousands separator, or a decimal comma?" in _refusal(
        tmp_path, 'number,bright,happy\n1,"1,234",3\n')


def test_na_cells_and_a_utf16_table_get_a_hint(tmp_path):
    """Audit 9b: R's 'NA' and Excel's UTF-16 "Unicode text" were refused without the key that
    reads them (missing_values, encoding)."""
    path = basic_dataset(tmp_path, "number,bright,happy\n1,NA,3\n")
    with pytest.raises(ValidationFailed, match=r"non-numeric rating 'NA' \(a missing rating\? "
                                               r"add 'NA' to the table's missing_values\)"):
        load_annotations(load_spec(path))
    (tmp_path / "ratings.csv").write_text("number,bright,happy\n1,2,3\n", encoding="utf-16")
    with pytest.raises(ValidationFailed, match="read as utf-8-sig: save it as UTF-8, or give the "
                                               "table's encoding, e.g. 'encoding: utf-16'"):
        load_annotations(load_spec(path))


def test_a_table_missing_under_a_named_root_says_how_to_give_the_root(tmp_path):
    """Audit 9b: soundtracks_midlevel.yaml without the Mid-level data said only 'annotation
    table not found'."""
    spec = BASIC.replace("root: .\n", "root: .\nroots:\n  meta: elsewhere\n").replace(
        '    id_format: "{:03d}"\n',
        '    id_format: "{:03d}"\n  - path: extra.csv\n    root: meta\n    id_column: n\n')
    path = basic_dataset(tmp_path, "number,bright,happy\n1,2,3\n", spec)
    with pytest.raises(ValidationFailed, match=r"extra.csv: annotation table not found \(under "
                                               r"the spec's root 'meta': give it with --root "
                                               r"meta=DIR\)"):
        load_annotations(load_spec(path))


def test_a_clip_two_splits_list_is_a_problem_naming_it_and_both_splits(tmp_path):
    spec = _split_dataset(tmp_path, "splits:\n  test: {ids: ['001', '002', '003']}\n"
                                    "  validation: {ids: ['003', '004', '005']}\n", n=10)
    ann = load_annotations(spec, strict=False)
    assert [str(p) for p in ann.problems] == [
        f"{tmp_path / 'spec.yaml'}, clip '003': 1 clip(s) listed in both split 'test' and "
        f"split 'validation': 003; a clip belongs to one split (it stays in 'test')"]
    assert list(ann.table.index[ann.table.split == "test"]) == ["001", "002", "003"]
    assert list(ann.table.index[ann.table.split == "validation"]) == ["004", "005"]


def test_a_drawn_split_passes_over_the_clips_a_later_split_lists(tmp_path):
    """test is drawn before validation's listed clips are assigned: it never takes one of
    them (which validation would then have taken away silently) and keeps its size."""
    listed = [f"{i:03d}" for i in range(1, 9)]
    spec = _split_dataset(tmp_path, f"splits:\n  seed: 1\n  test: {{size: 5}}\n"
                                    f"  validation: {{ids: {listed}}}\n", n=20)
    table = load_annotations(spec)
    assert (table.split == "test").sum() == 5
    assert list(table.index[table.split == "validation"]) == listed
    assert not set(table.index[table.split == "test"]) & set(listed)


def test_splits_that_leave_no_training_clip_are_a_problem(tmp_path):
    spec = _split_dataset(tmp_path, "splits:\n  test: {size: 30}\n  validation: {size: 30}\n",
                          n=40)
    with pytest.raises(ValidationFailed) as info:
        load_annotations(spec)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'spec.yaml'}: no clip left for training: the dataset has 40 clip(s) and "
        f"the splits take them all (test (size 30) takes 30; validation (size 30) takes 10 of "
        f"the 30 it asks for); make the held-out splits smaller"]


def test_an_ids_file_with_a_byte_order_mark_and_spaces_is_read(tmp_path):
    spec = _split_dataset(tmp_path, "splits:\n  test: {ids_file: bom_ids.txt}\n", n=5)
    (tmp_path / "bom_ids.txt").write_bytes("\ufeff001 \r\n 002\r\n\r\n".encode("utf-8"))
    table = load_annotations(spec)
    assert list(table.index[table.split == "test"]) == ["001", "002"]


# ----------------------------------------------------------------------- joins


JOINED = """
name: joined
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: a.csv
    id_column: id
  - path: b.csv
    id_column: key
    how: %s
concepts:
  x: {scale: [0, 10]}
targets:
  y: {scale: [0, 10]}
"""


@pytest.mark.parametrize("how, clips, n_problems", [
    ("exact", ["c1", "c2"], 2), ("inner", ["c1", "c2"], 0),
    ("left", ["c1", "c2", "c3"], 0), ("outer", ["c1", "c2", "c3", "c4"], 0)])
def test_join_modes(tmp_path, how, clips, n_problems):
    write(tmp_path / "a.csv", "id,x\nc1,1\nc2,2\nc3,3\n")
    write(tmp_path / "b.csv", "key,y\nc1,5\nc2,6\nc4,7\n")
    spec = load_spec(write(tmp_path / "spec.yaml", JOINED % how))
    ann = load_annotations(spec, strict=False)
    assert sorted(ann.table.index) == clips
    assert len(ann.problems) == n_problems
    if how == "exact":
        text = "\n".join(map(str, ann.problems))
        assert "a.csv, row 4, clip 'c3': id present in" in text
        assert "b.csv, row 4, column 'key', clip 'c4': id present in this table only" in text
    else:
        assert ann.notes  # unmatched rows are reported, never dropped silently
    t = ann.table
    assert t.loc["c1", "x"] == 1 and t.loc["c1", "y"] == 5
    if "c3" in clips:
        assert np.isnan(t.loc["c3", "y"]) and t.loc["c3", "x"] == 3
    if "c4" in clips:
        assert np.isnan(t.loc["c4", "x"]) and t.loc["c4", "y"] == 7


REVERSED = """
name: reversed
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: a.csv
    id_column: id
  - path: b.csv
    id_column: key
concepts:
  x: {scale: [0, 10]}
  mood: {type: tags, column: moods, tags: [calm, dark]}
targets:
  y: {scale: [1, 9]}
  kind: {type: class, classes: [pos, neg]}
  vocal: {type: binary}
"""


def test_a_bad_cell_of_a_later_table_names_that_table_and_its_row(tmp_path):
    """Every problem of a joined table's column names that table's file and row, not the
    first table's (here b.csv lists the clips in reverse order)."""
    write(tmp_path / "a.csv", "id,x\nc1,1\nc2,2\nc3,3\nc4,4\n")
    write(tmp_path / "b.csv", "key,y,kind,vocal,moods\nc4,5,pos,yes,calm\nc3,12,pos,no,\n"
                              "c2,5,maybe,no,calm\nc1,,neg,perhaps,dark|loud\n")
    spec = load_spec(write(tmp_path / "spec.yaml", REVERSED))
    ann = load_annotations(spec, strict=False)
    b = str(tmp_path / "b.csv")
    found = sorted(str(p) for p in ann.problems)
    assert found == sorted([
        f"{b}, row 3, column 'y', clip 'c3': rating 12 outside the scale [1, 9]",
        f"{b}, row 4, column 'kind', clip 'c2': unknown class 'maybe'; classes are ['pos', 'neg']",
        f"{b}, row 5, column 'vocal', clip 'c1': binary cell 'perhaps' is not 0/1, yes/no or "
        f"true/false",
        f"{b}, row 5, column 'moods', clip 'c1': unknown tag(s) ['loud'] of group 'mood'; its "
        f"tags are ['calm', 'dark']"])
    assert ann.source("c1", "y") == (b, 5) and ann.source("c1", "x") == (
        str(tmp_path / "a.csv"), 2)


def test_a_missing_rating_of_a_later_table_names_that_table(tmp_path):
    from midlevel.data.validate import missing_ratings
    write(tmp_path / "a.csv", "id,x\nc1,1\nc2,2\nc3,\n")
    write(tmp_path / "b.csv", "key,y\nc2,5\nc1,\n")
    spec = load_spec(write(tmp_path / "spec.yaml", JOINED % "left"))
    ann = load_annotations(spec, strict=False)
    where = {(w.clip, w.column): (Path(w.file).name, w.row)
             for w in missing_ratings(spec, ann.table, ann.source)}
    assert where == {("c1", "y"): ("b.csv", 3), ("c3", "y"): ("b.csv", None),
                     ("c3", "x"): ("a.csv", 4)}


# ----------------------------------------------------------------------- shipped specs


def midlevel_fixture(root: Path, soundtracks: Path | None = None) -> None:
    """A few rows in the exact format of the Mid-level Perceptual Features dataset."""
    write(root / "metadata_annotations" / "metadata.csv",
          "song id;Source;ID at file source;Artist\n"
          "1;soundtracks;1;John Williams\n2;soundtracks;2;Hans Zimmer\n"
          "3;jamendo;123;Someone\n4;soundtracks;3;Hans Zimmer\n5;magnatagatune;77;Band\n")
    write(root / "metadata_annotations" / "annotations.csv",
          "song_id, melodiousness, articulation, rhythm_stability, rhythm_complexity, "
          "dissonance, tonal_stability, minorness\n"
          "1,7.1,3.2,6.0,4.1,2.2,7.5,3.3\n2,4.4,5.5,5.0,5.1,6.2,4.5,6.3\n"
          "3,5.0,5.0,5.0,5.0,5.0,5.0,5.0\n4,6.0,2.0,3.0,4.0,5.0,6.0,7.0\n"
          "5,1.5,2.5,3.5,4.5,5.5,6.5,7.5\n")
    if soundtracks is not None:
        write(soundtracks / "mean_ratings_set1.csv",
              "\ufeffnumber,valence,energy,tension,anger,fear,happy,sad,tender,TARGET\n"
              "001,4.83,6.83,3.17,1.00,1.00,7.33,1.00,1.00,HAPPY\n"
              "002,2.00,6.17,7.83,5.00,6.00,1.17,2.00,1.00,FEAR\n"
              "003,6.60,3.20,2.00,1.00,1.00,4.17,2.00,6.00,TENDER\n")
        write(soundtracks / "test_ids.txt", "002\n")


def test_midlevel_features_spec_on_fixture(tmp_path):
    midlevel_fixture(tmp_path)
    spec = load_spec(SPECS / "midlevel_features.yaml", root=str(tmp_path))
    assert len(spec.concepts) == 7 and not spec.targets
    ann = load_annotations(spec, strict=False)
    assert not ann.problems, ann.problems
    table = ann.table
    assert list(table.index) == ["1", "2", "3", "4", "5"]
    # header names carry spaces in the file; they are stripped
    assert table.loc["2", "dissonance"] == pytest.approx(6.2)
    assert table.loc["5", "path"].endswith("audio/5.mp3")
    assert set(table.split) <= {"train", "validation", "test"}


def test_joint_spec_on_fixture(tmp_path):
    midlevel_fixture(tmp_path / "ml", tmp_path / "st")
    spec = load_spec(SPECS / "soundtracks_midlevel.yaml",
                     root=[str(tmp_path / "st"), f"midlevel={tmp_path / 'ml'}"])
    ann = load_annotations(spec, strict=False)
    # the spec's validation split (36 clips) takes the fixture's two clips the test split left
    assert [p.message.split(":")[0] for p in ann.problems] == ["no clip left for training"]
    t = ann.table
    assert list(t.index) == ["001", "002", "003"]
    # clip 003 is mid-level song 4: joined through "ID at file source" and "song id"
    assert t.loc["003", "minorness"] == 7.0 and t.loc["003", "tender"] == 6.0
    assert t.loc["002", "dissonance"] == pytest.approx(6.2) and t.loc["002", "fear"] == 6.0
    assert t.loc["002", "split"] == "test"
    assert t.loc["001", "path"] == str(tmp_path / "st" / "audio" / "001.mp3")


def test_unknown_named_root_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="no root named 'nope'"):
        load_spec(SPECS / "soundtracks_midlevel.yaml", root=[f"nope={tmp_path}"])


def test_soundtracks_spec_on_real_tables(soundtracks_dir):
    spec = load_spec(SPECS / "soundtracks.yaml", root=str(soundtracks_dir))
    table = load_annotations(spec)
    assert len(table) == 360 and spec.target_names == [
        "valence", "energy", "tension", "anger", "fear", "happy", "sad", "tender"]
    assert table.split.value_counts().to_dict() == {"train": 288, "validation": 36, "test": 36}
    assert table[spec.target_names].notna().all().all()


# ----------------------------------------------------------------------- table settings

SOURCE = """
name: src
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: a.csv
    id_column: id
    %s
concepts:
  x: {scale: [0, 10]}
targets:
  y: {scale: [0, 10]}
"""


def test_a_single_missing_value_is_one_cell_value_not_its_characters(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SOURCE % "missing_values: NA")
    assert load_spec(path).tables[0].missing_values == ("NA",)  # not ("N", "A")
    path.write_text(SOURCE % 'missing_values: ["", -1]')
    assert load_spec(path).tables[0].missing_values == ("", "-1")


@pytest.mark.parametrize("setting, where", [("sep: ''", "tables[0].sep"),
                                            ("encoding: utf-9", "tables[0].encoding"),
                                            ("strip_headers: 'no'", "tables[0].strip_headers"),
                                            ("missing_values: {a: 1}",
                                             "tables[0].missing_values")])
def test_a_table_setting_of_the_wrong_kind_is_named(tmp_path, setting, where):
    path = tmp_path / "spec.yaml"
    path.write_text(SOURCE % setting)
    with pytest.raises(SpecError, match=re.escape(f"'{where}'")):
        load_spec(path)


@pytest.mark.parametrize("header, strip, columns", [
    ("number,bright,happy,happy ", True, "columns 3, 4; equal after stripping spaces)"),
    ("number,bright,happy,happy", True, "columns 3, 4)"),
    ("number,happy,bright,happy", False, "columns 2, 4)"),
])
def test_a_column_name_given_twice_is_a_problem_naming_the_columns(tmp_path, header, strip,
                                                                     columns):
    """Two columns that read as one name (pandas would rename an exact repeat 'happy.1',
    stripping would make the first win): neither is silently dropped."""
    spec_text = BASIC.replace("    id_format", f"    strip_headers: {str(strip).lower()}\n"
                                            f"    id_format")
    spec = load_spec(basic_dataset(tmp_path, f"{header}\n1,2,3,4\n2,3,,5\n", spec_text))
    ann = load_annotations(spec, strict=False)
    assert [str(p) for p in ann.problems] == [
        f"{tmp_path / 'ratings.csv'}, row 1, column 'happy': column name 'happy' appears 2 "
        f"times in the header ({columns}: rename or remove all but one"]
    first = 2 if header.startswith("number,happy") else 3
    assert ann.table["happy"].tolist()[0] == first  # the first is read, the other kept apart


def test_a_drawn_split_of_another_size_than_asked_is_noted(tmp_path, caplog):
    """Group draws take whole groups (more than asked) and a pool can run out (fewer): each is a
    note naming the split and both counts, listed by validate and logged by every other
    command."""
    spec = _split_dataset(tmp_path, "splits:\n  seed: 0\n  test: {size: 16}\n"
                                    "  validation: {size: 7, group_by: artist}\n", n=20)
    ann = load_annotations(spec, strict=False)
    took = (ann.table.split == "validation").sum()
    assert (ann.table.split == "test").sum() == 16 and took == 4
    assert ann.notes == ["split 'validation' (size 7) takes 4 clip(s) where it asks for 7: only "
                         "4 clip(s) were left to draw from in groups of 'artist'"]
    spec = _split_dataset(tmp_path, "splits:\n  seed: 0\n  validation: {size: 5, group_by: "
                                    "artist}\n", n=40)
    ann = load_annotations(spec, strict=False)
    took = int((ann.table.split == "validation").sum())
    assert took == 6  # three artists of two clips each
    assert ann.notes == [f"split 'validation' (size 5) takes {took} clip(s) where it asks for 5: "
                         f"whole groups of 'artist'"]
    with caplog.at_level("INFO", logger="midlevel.data"):
        load_annotations(spec)
    assert ann.notes[0] in caplog.text


def test_the_id_column_two_tables_share_is_not_noted_as_a_repeated_column(tmp_path):
    """Audit 8b, item 3: every command printed that the id column of a second table with the
    same id column name was "also in an earlier table"; a repeated rating column still is."""
    write(tmp_path / "a.csv", "id,x,y\nc1,1,2\nc2,2,3\n")
    write(tmp_path / "b.csv", "id,y\nc1,5\nc2,6\n")
    spec = load_spec(write(tmp_path / "spec.yaml", (JOINED % "exact").replace(
        "id_column: key", "id_column: id")))
    ann = load_annotations(spec, strict=False)
    notes = [n for n in ann.notes if "also in an earlier table" in n]
    assert len(notes) == 1 and notes[0].startswith("column(s) ['y'] of ")


def test_ids_padded_in_one_joined_table_only_are_named_once_with_the_fix(tmp_path):
    """Audit 10a D2: '1' in one table and '001' in the other gave 208 unmatched-id problems,
    none saying why (a split's list already had this hint)."""
    write(tmp_path / "ratings.csv", "number,bright\n1,2.5\n2,3\n10,4\n")
    write(tmp_path / "targets.csv", "track,happy\n001,3\n002,4\n010,5\n")
    spec_text = BASIC.replace('    id_format: "{:03d}"\n', "").replace(
        "concepts:", "  - path: targets.csv\n    id_column: track\nconcepts:")
    spec = load_spec(write(tmp_path / "spec.yaml", spec_text))
    with pytest.raises(ValidationFailed) as info:
        load_annotations(spec)
    text = str(info.value)
    assert (f"{tmp_path / 'targets.csv'}, column 'track': ids are written differently in "
            f"{tmp_path / 'ratings.csv'} and {tmp_path / 'targets.csv'}: 3 match once leading "
            f"zeros are ignored (clip '1' in the first is '001' in the second); give the first, "
            f"whose ids have fewer digits, id_format: \"{{:03d}}\"") in text
    # with the format given, the tables join
    fixed = spec_text.replace("    id_column: number\n",
                              "    id_column: number\n    id_format: \"{:03d}\"\n")
    table = load_annotations(load_spec(write(tmp_path / "spec.yaml", fixed)))
    assert list(table.index) == ["001", "002", "010"] and table.loc["010", "happy"] == 5


def test_a_root_written_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    """Audit 12a #6: ``root: ~/x`` in a spec became ``<spec folder>/~/x`` while ``--root
    '~/x'`` was expanded."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "x").mkdir(parents=True)
    write(tmp_path / "home" / "x" / "ratings.csv", "number,bright,happy\n1,2.5,3\n")
    spec = load_spec(write(tmp_path / "spec.yaml", BASIC.replace("root: .", "root: ~/x")))
    assert spec.root == (tmp_path / "home" / "x").resolve()
    assert load_annotations(spec).loc["001", "path"] == str(
        (tmp_path / "home" / "x" / "audio" / "001.wav").resolve())
