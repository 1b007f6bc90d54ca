"""notebooks/concepts_synthetic.ipynb runs from top to bottom at tiny settings."""
from __future__ import annotations

import os
from pathlib import Path

from conftest import execute_notebook

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "concepts_synthetic.ipynb"


def test_notebook_executes(tmp_path, monkeypatch):
    execute_notebook(NOTEBOOK, tmp_path, monkeypatch, {
        "MIDLEVEL_NB_CLIPS": "20", "MIDLEVEL_NB_DURATION": "3", "MIDLEVEL_NB_EPOCHS": "1",
        "MIDLEVEL_NB_WORKDIR": str(tmp_path / "work")})
    assert os.path.isfile(tmp_path / "work" / "run" / "model.pt")
