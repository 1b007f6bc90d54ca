"""notebooks/concepts_synthetic.ipynb runs from top to bottom at tiny settings."""
from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "concepts_synthetic.ipynb"


def test_notebook_executes(tmp_path, monkeypatch):
    nb = execute_notebook(NOTEBOOK, tmp_path, monkeypatch, {
        "MIDLEVEL_NB_CLIPS": "20", "MIDLEVEL_NB_DURATION": "3", "MIDLEVEL_NB_EPOCHS": "1",
        "MIDLEVEL_NB_WORKDIR": str(tmp_path / "work")})
    assert os.path.isfile(tmp_path / "work" / "run" / "model.pt")
    # the intervention section says which way this run's error went, from its own numbers
    # (audit 10b #1: the text promised it would fall; on a sequential head it rose)
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []))
    assert re.search(r"mean test RMSE / sd: \d+\.\d\d on the predicted concepts, \d+\.\d\d with "
                     r"every concept replaced by its true rating: the error (falls|rises)", text)
