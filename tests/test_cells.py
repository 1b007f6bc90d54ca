"""Table cells: what an empty cell means in every column type, what a filter sees, what
counts as a missing rating."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import write_text as write, write_tone
from midlevel.data.annotations import load_annotations
from midlevel.data.spec import load_spec
from midlevel.data.validate import validate


KINDS = """
name: kinds
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: a.csv
    id_column: id
    %s
concepts:
  x: {scale: [0, 10]}
  vocal: {type: binary}
  inst: {type: tags, columns: {drums: has_drums}}
targets:
  kind: {type: class}
  given: {type: class, classes: [pos, neg]}
  mood: {type: tags, column: moods, tags: [calm, dark]%s}
"""

# c2 holds an empty cell in every column, c3 a cell of spaces, c4 the declared missing 'NA'
CELLS = ("id,x,vocal,has_drums,kind,given,moods\n"
         "c1,1,yes,1,POS,pos,calm\n"
         "c2,,,,,,\n"
         "c3,  ,  ,  ,  ,  ,  \n"
         "c4,NA,NA,NA,NA,NA,NA\n"
         "c5,2,no,0,NEG,neg,dark\n")
COLUMNS = ["x", "vocal", "has_drums", "kind", "given", "moods"]


def test_an_empty_cell_that_is_not_a_missing_value_is_a_problem_in_every_column_type(tmp_path):
    """With ``missing_values: NA`` an empty (or all-space) cell is a problem naming file, row,
    column and clip in rating, binary, 0/1 tag, class and delimited tags columns alike; it
    is never a class ``''`` or "no tag". 'NA' cells are missing."""
    write(tmp_path / "a.csv", CELLS)
    spec = load_spec(write(tmp_path / "spec.yaml", KINDS % ("missing_values: NA", "")))
    ann = load_annotations(spec, strict=False)
    found = {(p.file, p.row, p.column, p.clip) for p in ann.problems}
    a = str(tmp_path / "a.csv")
    assert found == {(a, row, col, clip) for row, clip in ((3, "c2"), (4, "c3"))
                     for col in COLUMNS}
    assert all("empty cell, which is not one of the table's missing_values ['NA']" in p.message
               for p in ann.problems)
    assert ann.table.attrs["classes"] == {"kind": ["NEG", "POS"], "given": ["pos", "neg"]}
    assert ann.table.loc[["c2", "c3", "c4"]].drop(columns=["path", "split"]).isna().all().all()


def test_an_empty_cell_is_missing_by_default_and_no_tag_with_empty_none(tmp_path):
    write(tmp_path / "a.csv", CELLS.replace("NA", ""))
    ann = load_annotations(load_spec(write(tmp_path / "spec.yaml", KINDS % ("", ""))),
                           strict=False)
    assert not ann.problems and ann.table.attrs["classes"]["kind"] == ["NEG", "POS"]
    write(tmp_path / "a.csv", CELLS)
    spec = load_spec(write(tmp_path / "spec.yaml", KINDS % ("missing_values: NA",
                                                           ", empty: none")))
    ann = load_annotations(spec, strict=False)
    assert "moods" not in {p.column for p in ann.problems}  # empty: none says what '' is
    assert (ann.table.loc[["c2", "c3"], ["mood=calm", "mood=dark"]] == 0).all().all()
    assert ann.table.loc["c4", ["mood=calm", "mood=dark"]].isna().all()  # 'NA': missing


def test_an_empty_segment_cell_that_is_not_a_missing_value_is_a_problem(tmp_path):
    write(tmp_path / "a.csv", "id,x,kind,given,vocal,has_drums,moods\nc1,1,a,pos,1,1,calm\n")
    write(tmp_path / "seg.csv", "id,start,end,x\nc1,0,1,2\nc1,1,2, \nc1,2,3,NA\n")
    text = (KINDS % ("", "")).replace("concepts:", "segments:\n  - path: seg.csv\n"
                                      "    id_column: id\n    start_column: start\n"
                                      "    end_column: end\n    missing_values: NA\n"
                                      "concepts:")
    ann = load_annotations(load_spec(write(tmp_path / "spec.yaml", text)), strict=False)
    assert [(p.row, p.column, p.clip) for p in ann.problems] == [(3, "x", "c1")]
    assert "empty cell" in ann.problems[0].message


MISSING = """
name: miss
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: a.csv
    id_column: id
    missing_values: ["", NA]
concepts:
  x: {scale: [0, 10]}
  mood: {type: tags, column: moods, tags: [calm, dark]}
targets:
  y: {scale: [0, 10]}
  kind: {type: class, classes: [pos, neg]}
"""


def test_a_rejected_cell_is_a_problem_and_not_counted_as_a_missing_rating(tmp_path):
    """Only empty and declared missing cells are missing ratings (summary and warnings);
    'abc', 12, 'maybe' and 'loud' are problems, counted once, as problems."""
    for i in range(1, 6):
        write_tone(tmp_path / "audio" / f"c{i}.wav", freq=200.0 * i, seconds=1.0)
    write(tmp_path / "a.csv", "id,x,y,kind,moods\n"
                              "c1,1,abc,pos,calm\n"     # y rejected
                              "c2,,12,maybe,loud\n"     # x missing; y, kind, moods rejected
                              "c3,NA,NA,NA,NA\n"        # all missing
                              "c4,4,4,neg,dark\n"
                              "c5,5,5,pos,\n")          # moods missing
    report = validate(load_spec(write(tmp_path / "spec.yaml", MISSING)), progress=False)
    assert {(p.column, p.clip) for p in report.problems} == {
        ("y", "c1"), ("y", "c2"), ("kind", "c2"), ("moods", "c2")}
    assert report.missing_ratings().to_dict() == {"x": 2, "mood=calm": 2, "mood=dark": 2,
                                                  "y": 1, "kind": 1}
    assert "missing ratings: x 2, mood=calm 2, mood=dark 2, y 1, kind 1" in report.summary()
    warned = {(w.column, w.clip) for w in report.warnings if w.message.startswith("missing")}
    assert warned == {("x", "c2"), ("x", "c3"), ("moods", "c3"), ("moods", "c5"),
                      ("y", "c3"), ("kind", "c3")}
    assert np.isnan(report.table.loc["c1", "y"])  # a rejected cell is still no rating


FILTERED = """
name: filtered
root: .
audio: {pattern: "audio/{id}.wav"}
tables:
  - path: a.csv
    id_column: id
    missing_values: ["", NA]
    filter: %s
segments:
  - path: seg.csv
    id_column: id
    start_column: start
    end_column: end
    filter: %s
concepts:
  x: {scale: [0, 10]}
targets:
  y: {scale: [0, 10]}
"""

TABLE = ("id,x,y,source,code\n"
         "007,6,1,st,01\n"
         "008,2,2,st,02\n"
         "009,,3,mp,03\n"
         "010,NA,4,st,04\n"
         "011,7.5,abc,st,x5\n")
SEGMENTS = "id,start,end,x\n007,0,1,1\n007,1,2,2\n011,0,2,3\n"


@pytest.mark.parametrize("table_filter, clips", [
    ('"x > 5"', ["007", "011"]),                         # numbers; empty and NA cells are NaN
    ('"x > 5 and source == \'st\'"', ["007", "011"]),
    ('"source == \'st\'"', ["007", "008", "010", "011"]),  # text columns stay text
    ('"code == \'01\' or id == \'008\'"', ["007", "008"]),  # 'code' has text: all of it is text
    ('"id == \'007\'"', ["007"]),                          # ids with leading zeros stay text
])
def test_a_filter_compares_numeric_columns_as_numbers(tmp_path, table_filter, clips):
    write(tmp_path / "a.csv", TABLE)
    write(tmp_path / "seg.csv", SEGMENTS)
    spec = load_spec(write(tmp_path / "spec.yaml", FILTERED % (table_filter, '"start >= 1"')))
    ann = load_annotations(spec, strict=False)
    assert list(ann.table.index) == clips
    seg = ann.segments.table
    assert seg[["clip", "start"]].values.tolist() == [["007", 1.0]]
    if "011" in clips:  # the rows kept are the raw rows: the bad cell is named at its line
        assert [(p.row, p.column, p.clip) for p in ann.problems] == [(6, "y", "011")]


@pytest.mark.parametrize("table_filter, segment_filter, key, file, text", [
    ('"source > 5"', '"start >= 0"', "tables[0]", "a.csv", "source > 5"),
    ('"x < 5"', '"clip == 1"', "segments[0]", "seg.csv", "clip == 1"),
])
def test_a_filter_that_fails_names_the_spec_key_the_file_and_the_filter(
        tmp_path, table_filter, segment_filter, key, file, text):
    write(tmp_path / "a.csv", TABLE)
    write(tmp_path / "seg.csv", SEGMENTS)
    spec = load_spec(write(tmp_path / "spec.yaml", FILTERED % (table_filter, segment_filter)))
    problems = load_annotations(spec, strict=False).problems
    assert len(problems) == 1 and problems[0].file == str(tmp_path / file)
    assert problems[0].message.startswith(f"'{key}.filter' {text!r} failed on this table: ")


@pytest.mark.parametrize("table_filter, why", [
    ('"x == \'6\'"', "column 'x' holds numbers and is compared with text ['6']"),
    ('"x in [\'6\', \'2\'] or source == \'st\'"',
     "column 'x' holds numbers and is compared with text"),
    ('"source == 1"', "column 'source' holds text and is compared with a number [1]"),
    ('"x > 100"', "it keeps none of the table's 5 rows"),
])
def test_a_filter_that_can_match_nothing_is_a_problem_naming_it(tmp_path, table_filter, why):
    """Equality between a column of numbers and text (or the reverse) matches no row whatever
    the data, and a filter that keeps no row leaves an empty dataset: both are named."""
    write(tmp_path / "a.csv", TABLE)
    write(tmp_path / "seg.csv", SEGMENTS)
    spec = load_spec(write(tmp_path / "spec.yaml", FILTERED % (table_filter, '"start >= 0"')))
    problems = load_annotations(spec, strict=False).problems
    text = table_filter.strip('"')
    assert [p.file for p in problems] == [str(tmp_path / "a.csv")]
    assert problems[0].message.startswith(f"'tables[0].filter' {text!r}: ")
    assert why in problems[0].message


def test_declared_missing_values_are_read_without_their_spaces(tmp_path):
    """`missing_values: [" NA "]` declares NA: cells are compared stripped, so the declared
    value is stripped too (it matched nothing before)."""
    spec_text = KINDS % ('missing_values: ["", " NA "]', "")
    spec = load_spec(write(tmp_path / "spec.yaml", spec_text))
    assert spec.tables[0].missing_values == ("", "NA")
    write(tmp_path / "a.csv", CELLS)
    ann = load_annotations(spec, strict=False)
    assert not [p for p in ann.problems if p.clip == "c4"]
