"""notebooks/concepts_synthetic.ipynb runs from top to bottom at tiny settings."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "concepts_synthetic.ipynb"


def test_notebook_executes(tmp_path, monkeypatch):
    pytest.importorskip("ipykernel")
    settings = {"MIDLEVEL_NB_CLIPS": "20", "MIDLEVEL_NB_DURATION": "3", "MIDLEVEL_NB_EPOCHS": "1",
                "MIDLEVEL_NB_WORKDIR": str(tmp_path / "work"), "MPLBACKEND": "Agg"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert os.path.isfile(tmp_path / "work" / "run" / "model.pt")
