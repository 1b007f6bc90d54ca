"""Annotation tables and audio folders as real tools export them (audit 21a): each fault is
read right or named by file, row and column, never silently misread."""
from __future__ import annotations

import os
import shutil
import textwrap
import unicodedata
from pathlib import Path

import pytest

from conftest import write_tone
from midlevel.data.annotations import load_annotations
from midlevel.data.spec import format_id, load_spec
from midlevel.data.tables import parse_rating
from midlevel.data.validate import problem_kind, validate
from midlevel.errors import SpecError, ValidationFailed

SPEC = """
name: exports
root: .
audio: {{pattern: "audio/{{id}}.wav"}}
tables:
  - path: ratings.csv
    id_column: clip
    {extra}
concepts:
  bright: {{scale: [1, 10]}}
targets:
  happy: {{scale: [1, 9]}}
  {target}
splits:
  test: {{ids: [{test}]}}
"""


def dataset(root: Path, table: str, *, ids=("c1", "c2", "c3", "c4"), extra: str = "",
            target: str = "", test: str = "c4") -> Path:
    """A folder with one short tone per id, ``table`` as ratings.csv and its spec."""
    for i, clip in enumerate(ids):
        write_tone(root / "audio" / f"{clip}.wav", freq=200.0 + 50 * i, seconds=0.5)
    (root / "ratings.csv").write_bytes(table.encode())
    (root / "spec.yaml").write_text(textwrap.dedent(SPEC.format(extra=extra, target=target,
                                                                test=test)))
    return root / "spec.yaml"


def problems(spec_path: Path) -> list:
    return validate(load_spec(spec_path), progress=False).problems


def test_rows_are_named_by_their_file_line_after_blank_lines_and_line_breaks(tmp_path):
    """A blank line and a quoted cell holding a line break (Excel's Alt+Enter) do not shift
    the row numbers of the rows below them."""
    table = ('clip,bright,happy,note\n'
             'c1,1,1,"first line\nsecond line"\n'   # lines 2-3
             '\n'                                     # line 4: blank
             'c2,2,n/a,\n'                            # line 5
             'c3,3,3,\nc4,4,4,\n')
    found = problems(dataset(tmp_path, table))
    assert [(p.row, p.column, p.clip) for p in found] == [(5, "happy", "c2")]


def test_an_unbalanced_quote_that_swallows_rows_is_a_problem(tmp_path):
    table = ('clip,bright,happy,note\n'
             'c1,1,1,"loud intro\n'                   # the quote opens here ...
             'c2,2,2,\nc3,3,3,\n'
             'c4,4,4,quiet"\n')                       # ... and closes here
    found = problems(dataset(tmp_path, table))
    swallowed = [p for p in found if "unbalanced quote" in p.message]
    assert [(p.row, p.column) for p in swallowed] == [(2, "note")]
    assert "lines 2-5" in swallowed[0].message and "clip 'c2'" in swallowed[0].message


def test_a_quote_swallowing_one_row_before_the_last_column_is_a_problem(tmp_path):
    """Re-audit 21d A1: one row taken, the quoted column not the last: the cell's second line
    holds one separator, and the first rule (a line with a row's separators) missed it."""
    table = ('clip,note,bright,happy\n'
             'c1,"loud intro,1,1\n'
             'c2,quiet",2,2\n'
             'c3,,3,3\nc4,,4,4\n')
    found = problems(dataset(tmp_path, table))
    assert [(p.row, p.column) for p in found if "unbalanced quote" in p.message] == \
        [(2, "note")]


def test_a_quoted_cell_with_line_breaks_and_commas_is_read(tmp_path):
    """Re-audit 21d A2: a correctly quoted two-line comment whose second line held a row's
    count of commas was refused as an unbalanced quote."""
    table = ('clip,bright,happy,note\n'
             'c1,1,1,"intro: soft, slow\nchorus: loud, fast, dense, busy"\n'
             'c2,2,2,\nc3,3,3,\nc4,4,4,\n')
    spec = dataset(tmp_path, table)
    assert problems(spec) == []
    assert load_annotations(load_spec(spec))["happy"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_quoted_header_after_a_byte_order_mark_and_a_bad_quote(tmp_path):
    """Re-audit 21d A5, B2: a BOM before a quoted header under `encoding: utf-8` kept the
    header's quotes; text after a closing quote ("c2"x) was read as c2x."""
    table = '\ufeff"clip","bright","happy"\nc1,1,1\nc2,2,2\nc3,3,3\nc4,4,4\n'
    spec = dataset(tmp_path, table, extra="encoding: utf-8")
    assert list(load_annotations(load_spec(spec)).index) == ["c1", "c2", "c3", "c4"]
    bad = dataset(tmp_path / "bad", 'clip,bright,happy\nc1,1,1\n"c2"x,2,2\nc3,3,3\nc4,4,4\n')
    found = problems(bad)
    assert len(found) == 1 and found[0].row == 3 and "quote" in found[0].message


def test_a_trailing_separator_on_every_row_reads_the_columns_right(tmp_path):
    table = "clip,bright,happy\nc1,1,2,\nc2,2,3,\nc3,3,4,\nc4,4,5,\n"
    spec = load_spec(dataset(tmp_path, table))
    ratings = load_annotations(spec)
    assert list(ratings.index) == ["c1", "c2", "c3", "c4"]
    assert ratings["happy"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_a_row_with_more_fields_than_the_header_is_named(tmp_path):
    """An unquoted decimal comma in a comma-separated table: before, pandas moved the ids to
    the index and every column read its neighbour ('rating 89 outside the scale')."""
    table = "clip,bright,happy\nc1,1,2,5\nc2,2,3,25\nc3,3,4\nc4,4,5\n"
    found = problems(dataset(tmp_path, table))
    assert [p.row for p in found] == [2, 3]
    assert all("4 fields, the header 3" in p.message and "decimal comma" in p.message
               for p in found)


@pytest.mark.parametrize("sep, names", [(",", ["1", "2", "3", "4"]), (" ", ["3", "7", "12", "15"]),
                                         (",", ["c1", "c2", "c3", "c4"])])
def test_r_row_names_without_a_header_field_are_dropped(tmp_path, sep, names):
    """R's write.table: a quoted header without the row names' field, each row beginning with
    its quoted row name (1..n, a subset's, or text: re-audit 21d found 1..n alone accepted)."""
    rows = [sep.join(['"clip"', '"bright"', '"happy"'])] + [
        sep.join([f'"{name}"', f'"c{i}"', str(i), str(i + 1)])
        for i, name in enumerate(names, start=1)]
    spec = dataset(tmp_path, "\n".join(rows) + "\n", extra=f"sep: {sep!r}")
    ratings = load_annotations(load_spec(spec))
    assert list(ratings.index) == ["c1", "c2", "c3", "c4"]
    assert ratings["happy"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_integer_ids_with_a_trailing_separator_are_not_taken_for_row_names(tmp_path):
    """Re-audit 21d B1: ids 1..n and a separator ending each row were read as R's row names,
    every column shifted."""
    table = "clip,bright,happy\n1,1,2,\n2,2,3,\n3,3,4,\n4,4,5,\n"
    spec = dataset(tmp_path, table, ids=("1", "2", "3", "4"), test="4")
    ratings = load_annotations(load_spec(spec))
    assert list(ratings.index) == ["1", "2", "3", "4"]
    assert ratings["happy"].tolist() == [2.0, 3.0, 4.0, 5.0]
    decimal = "clip,bright,happy\n1,1,2,5\n2,2,3,25\n3,3,4,5\n4,4,5,75\n"  # happy 2,5 ...
    found = problems(dataset(tmp_path / "decimal", decimal, ids=("1", "2", "3", "4"), test="4"))
    assert [p.row for p in found] == [2, 3, 4, 5]


def test_a_short_row_is_read_as_empty_cells_under_the_missing_values_rule(tmp_path):
    """Absent fields are empty cells: missing by default, a problem where the table's
    missing_values do not hold ''."""
    table = "clip,bright,happy\nc1,1,2\nc2,2\nc3,3,4\nc4,4,5\n"
    spec = load_spec(dataset(tmp_path, table))
    assert load_annotations(spec, strict=False).table["happy"].isna().sum() == 1
    strict = dataset(tmp_path / "strict", table, extra="missing_values: [NA]")
    assert [(p.row, p.column) for p in problems(strict)] == [(3, "happy")]


def test_ratings_written_with_underscores_or_other_digits_are_problems():
    assert parse_rating("1_0", None)[1] == "non-numeric rating '1_0'"
    assert parse_rating("\u0665", None)[1] is not None   # an Arabic-Indic five
    assert parse_rating("1E+2", None) == (100.0, None)
    assert parse_rating(".5", None) == (0.5, None)


def test_integer_id_formats_take_whole_numbers_written_in_digits():
    assert format_id("7", "{:03d}") == "007" and format_id("7.0", "{:03d}") == "007"
    assert format_id("12345678901234567891", "{:d}") == "12345678901234567891"
    for bad in ("1e3", "1_000", "7.5", "seven"):
        with pytest.raises(ValueError):
            format_id(bad, "{:03d}")


def test_unquoted_split_ids_are_the_clips_written(tmp_path):
    """YAML 1.1 reads 010 as the octal number 8: a split listing 010 held out clip 8."""
    ids = [f"{i:03d}" for i in range(1, 13)]
    table = "clip,bright,happy\n" + "".join(f"{c},{i % 9 + 1},{i % 8 + 1}\n"
                                            for i, c in enumerate(ids))
    spec = load_spec(dataset(tmp_path, table, ids=ids, test="010, 011"))
    assert spec.splits["test"].ids == ("010", "011")
    ratings = load_annotations(spec)
    assert sorted(ratings.index[ratings["split"] == "test"]) == ["010", "011"]
    (tmp_path / "spec.yaml").write_text((tmp_path / "spec.yaml").read_text()
                                        .replace("ids: [010, 011]", "ids: 10"))
    with pytest.raises(SpecError, match="must be a list of clip ids"):
        load_spec(tmp_path / "spec.yaml")


def test_an_undeclared_class_list_refuses_missing_markers_and_case_variants(tmp_path):
    """Without `classes`, a class column's cells are its classes: 'n/a' and 'Calm' beside
    'calm' became classes of their own (a 5-way softmax on 2 classes)."""
    table = ("clip,bright,happy,scene\n"
             "c1,1,2,calm\nc2,2,3,busy\nc3,3,4,calm\nc4,4,5,busy\n"
             "c5,5,5,n/a\nc6,6,6,Calm\nc7,7,7,-\n")
    ids = [f"c{i}" for i in range(1, 8)]
    spec_path = dataset(tmp_path, table, ids=ids, target="scene: {type: class}")
    report = validate(load_spec(spec_path), progress=False)
    assert [(p.row, p.clip) for p in report.problems] == [(6, "c5"), (7, "c6"), (8, "c7")]
    assert "missing rating" in report.problems[0].message
    assert "only in case" in report.problems[1].message
    assert "classes of scene: busy 2, calm 2 (read from the cells" in report.summary()
    with pytest.raises(ValidationFailed):
        load_annotations(load_spec(spec_path))


def test_clips_sharing_their_audio_are_warned_about(tmp_path):
    """The same file given twice, a link to another clip's file and a byte copy: clips of
    one audio in different splits score the model on audio it trained on."""
    table = "clip,bright,happy,file\nc1,1,2,audio/c1.wav\nc2,2,3,audio/c2.wav\n" \
            "c3,3,4,audio/c3.wav\nc4,4,5,audio/c1.wav\nc5,5,5,audio/c5.wav\n" \
            "c6,6,6,audio/c6.wav\n"
    spec_path = dataset(tmp_path, table, ids=("c1", "c2", "c3"))
    spec_path.write_text(spec_path.read_text().replace('audio: {pattern: "audio/{id}.wav"}',
                                                       "audio: {path_column: file}"))
    os.symlink(tmp_path / "audio" / "c2.wav", tmp_path / "audio" / "c5.wav")
    shutil.copy(tmp_path / "audio" / "c3.wav", tmp_path / "audio" / "c6.wav")
    report = validate(load_spec(spec_path), progress=False)
    shared = {w.clip: w.message for w in report.warnings if w.message.startswith("shared audio")}
    assert set(shared) == {"c1", "c4", "c2", "c5", "c3", "c6"}
    assert "'c1' (train" in shared["c4"] and "different splits" in shared["c4"]  # c4: test
    assert "different splits" not in shared["c5"]
    clean = dataset(tmp_path / "clean", "clip,bright,happy\nc1,1,1\nc2,2,2\nc3,3,3\nc4,4,4\n")
    assert not [w for w in validate(load_spec(clean), progress=False).warnings
                if w.message.startswith("shared audio")]


@pytest.mark.parametrize("table_id, file_name, words", [
    ("1", "0001.wav", 'id_format such as "{:04d}"'),
    ("c1", "C1.wav", "other upper and lower case"),
    (unicodedata.normalize("NFC", "caf\u00e9"), unicodedata.normalize("NFD", "caf\u00e9.wav"),
     "another Unicode form"),
])
def test_a_missing_file_names_its_near_namesake(tmp_path, table_id, file_name, words):
    spec_path = dataset(tmp_path, f"clip,bright,happy\n{table_id},1,1\nc2,2,2\n", ids=["c2"],
                        test="c2")
    write_tone(tmp_path / "audio" / file_name, freq=300.0, seconds=0.5)
    if (tmp_path / "audio" / f"{table_id}.wav").exists():  # a file system ignoring case
        pytest.skip("this file system does not tell the two names apart")
    found = [p for p in problems(spec_path) if p.clip == table_id]
    assert len(found) == 1 and f"the folder holds '{file_name}'" in found[0].message
    assert words in found[0].message


def test_a_problems_kind_keeps_its_hint_whole():
    kind = problem_kind("non-numeric rating '6,49' (a decimal comma? ratings are read with a "
                        "decimal point: save the table with '.' decimals, '6.49')")
    assert kind.count("(") == kind.count(")") and kind.endswith("'...')")
    assert problem_kind("duplicate id 'a: b' in rows 3, 7: fix it") == \
        "duplicate id '...' in rows N, N"


def test_none_and_na_may_be_classes_of_an_undeclared_list(tmp_path):
    """Re-audit 21d A6: a class column whose real class is `none` (no vocals) was refused."""
    table = "clip,bright,happy,vocals\nc1,1,2,none\nc2,2,3,male\nc3,3,4,female\nc4,4,5,none\n"
    spec = dataset(tmp_path, table, target="vocals: {type: class}")
    report = validate(load_spec(spec), progress=False)
    assert report.problems == []
    assert "classes of vocals: female 1, male 1, none 2" in report.summary()


def test_a_resume_keeps_the_versions_the_run_was_trained_with(caplog):
    from midlevel.training.datarecord import recorded_only
    before = {"ratings": {"a": "x"}, "versions": {"torch": "2.14.1", "numpy": "2.3.0"}}
    now = {"ratings": {"a": "x"}, "segment_ratings": {}, "versions": {"torch": "2.15.0",
                                                                       "numpy": "2.3.0"}}
    with caplog.at_level("WARNING", logger="midlevel"):
        kept = recorded_only(now, before)
    assert kept["versions"] == before["versions"] and kept["resumed_with"] == now["versions"]
    assert "segment_ratings" not in kept  # an older run's record: not known
    assert "torch 2.14.1 -> 2.15.0" in caplog.text
