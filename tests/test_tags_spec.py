"""Binary and multi-label (tag) columns in data specs: parsing, expansion, cell checks."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from midlevel.data.annotations import load_annotations
from midlevel.data.spec import load_spec
from midlevel.errors import SpecError, ValidationFailed

HEAD = """
name: tags
root: .
audio:
  pattern: "audio/{id}.wav"
tables:
  - path: ratings.csv
    id_column: id
"""

SPEC = HEAD + """
concepts:
  bright: {scale: [1, 10]}
  vocals: {type: binary}
  instrument:
    type: tags
    columns: {drums: has_drums, piano: has_piano}
targets:
  mood:
    type: tags
    column: moods
    sep: "|"
    tags: [happy, sad, calm]
"""


def dataset(tmp_path: Path, rows: str, spec: str = SPEC) -> Path:
    (tmp_path / "ratings.csv").write_text(textwrap.dedent(rows).lstrip())
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(spec).lstrip())
    return path


ROWS = """
id,bright,vocals,has_drums,has_piano,moods
a,5,yes,1,0,happy|sad
b,3,no,0,1,
c,4,TRUE,1,1,calm
d,2,false,0,0, sad | calm
"""


def test_groups_expand_into_binary_columns_named_group_eq_tag(tmp_path):
    spec = load_spec(dataset(tmp_path, ROWS))
    assert spec.concept_names == ["bright", "vocals", "instrument=drums", "instrument=piano"]
    assert spec.target_names == ["mood=happy", "mood=sad", "mood=calm"]
    assert [c.kind for c in spec.concepts] == ["regression", "binary", "binary", "binary"]
    assert spec.groups == {"instrument": ["instrument=drums", "instrument=piano"],
                           "mood": ["mood=happy", "mood=sad", "mood=calm"]}
    assert spec.column("mood=sad").to_dict()["group"] == "mood"


def test_binary_cells_and_delimited_tags_become_zero_one(tmp_path):
    table = load_annotations(load_spec(dataset(tmp_path, ROWS)))
    assert table["vocals"].tolist() == [1, 0, 1, 0]
    assert table["instrument=piano"].tolist() == [0, 1, 1, 0]
    assert table.loc["a", ["mood=happy", "mood=sad", "mood=calm"]].tolist() == [1, 1, 0]
    assert table.loc["d", ["mood=happy", "mood=sad", "mood=calm"]].tolist() == [0, 1, 1]
    # an empty tag cell is missing by default: every tag of the group unlabelled
    assert table.loc["b", ["mood=happy", "mood=sad", "mood=calm"]].isna().all()


def test_empty_none_means_no_tag_applies(tmp_path):
    spec = load_spec(dataset(tmp_path, ROWS, SPEC.replace('sep: "|"', 'sep: "|"\n    empty: none')))
    table = load_annotations(spec)
    assert table.loc["b", ["mood=happy", "mood=sad", "mood=calm"]].tolist() == [0, 0, 0]


def test_bad_binary_cells_and_unknown_tags_name_file_row_column(tmp_path):
    rows = ROWS.replace("c,4,TRUE,1,1,calm", "c,4,maybe,2,1,calm|angry")
    with pytest.raises(ValidationFailed) as err:
        load_annotations(load_spec(dataset(tmp_path, rows)))
    text = str(err.value)
    assert "row 4, column 'vocals'" in text and "'maybe'" in text
    assert "column 'has_drums'" in text and "'2'" in text
    assert "column 'moods'" in text and "angry" in text
    assert text.count("angry") == 1  # one problem for the group, not one per tag


@pytest.mark.parametrize("concepts, message", [
    ("  x: {type: binary, scale: [0, 1]}", "no scale"),
    ("  x: {type: tags}", "needs either"),
    ("  x: {type: tags, column: c}", "must list the group's tags"),
    ("  x: {type: tags, columns: [a], sep: ','}", "delimited column only"),
    ("  x: {type: tags, column: c, tags: [a], empty: zero}", "x.empty' must be"),
    ("  x: {type: tagz}", "must be one of"),
    ("  x: {type: tags, columns: [a, b], colour: red}", "unknown key"),
])
def test_spec_errors_name_the_key(tmp_path, concepts, message):
    path = dataset(tmp_path, ROWS, HEAD + "concepts:\n" + concepts + "\n")
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_binary_columns_cannot_be_segment_ratings(tmp_path):
    spec = SPEC + textwrap.dedent("""
    segments:
      - path: seg.csv
        id_column: id
        start_column: start
        end_column: end
        columns: [vocals]
    """)
    with pytest.raises(SpecError, match="binary column"):
        load_spec(dataset(tmp_path, ROWS, spec))


def test_validate_summarizes_the_binary_columns(tmp_path):
    from midlevel.data.validate import binary_summary
    spec = load_spec(dataset(tmp_path, ROWS))
    table = load_annotations(spec)
    line = binary_summary(table, [c.name for c in spec.concepts + spec.targets if c.is_binary],
                          spec.groups)
    assert line.startswith("binary: 6 column(s) (groups: instrument 2 tags, mood 3 tags)")
    assert "max 0.67 (mood=sad)" in line or "max 0.67" in line
    assert np.isfinite(table["bright"]).all()


def test_a_concept_tag_group_on_a_target_groups_cell_is_a_shared_column(
        tmp_path):
    """Re-audit 10, #2: the `shared column` check passed over every delimited cell, so a
    concept tag group reading the target group's cell was not named; the tags of one group
    reading one cell are one reader, not a warning."""
    from midlevel.data.rating_warnings import shared_columns
    spec = load_spec(dataset(tmp_path, ROWS))
    ann = load_annotations(spec, strict=False)
    assert shared_columns(spec, ann.table, ann.source) == []
    leaking = SPEC.replace("  vocals: {type: binary}\n", "  vocals: {type: binary}\n"
                           "  moodc:\n    type: tags\n    column: moods\n    sep: \"|\"\n"
                           "    tags: [happy, sad, calm]\n")
    spec = load_spec(dataset(tmp_path, ROWS, leaking))
    ann = load_annotations(spec, strict=False)
    found = shared_columns(spec, ann.table, ann.source)
    assert [(w.column, w.message) for w in found] == [
        ("moods", "shared column: concept 'moodc' reads the column of target 'mood': the "
                  "bottleneck is handed the target as a concept, and its head can copy it")]
