"""Reading the torch files a run folder holds without running code from them.

``torch.load(weights_only=False)`` unpickles whatever a file names: a ``model.pt`` or a stored
prediction table planted in a run folder someone shares would run its code the moment
``load_run`` or ``Run.predictions`` opened it (audit 23b). :func:`read_torch` reads with
``weights_only=True``: tensors, containers, numbers, strings and numpy arrays and scalars
(the numpy random state of a ``checkpoint.pt``), nothing that calls a function to build an
object. Tables go in as plain columns (:func:`frame_state`) and come back as DataFrames
(:func:`frame_from_state`).

A file holding anything else is refused with :class:`UnsafeFileError` naming the object; a
user who trusts the file's source (a run of their own written by an older version) can set
``MIDLEVEL_TRUSTED_RUN_FILES=1`` to read it with ``torch.load``'s full unpickler.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from midlevel.errors import CheckpointError

TRUST_VARIABLE = "MIDLEVEL_TRUSTED_RUN_FILES"


class UnsafeFileError(CheckpointError):
    """A torch file holds objects that reading it would run code to build (``names``)."""

    def __init__(self, message: str, names=()):
        super().__init__(message)
        self.names = list(names)

    @property
    def listing(self) -> str:
        """The first three names, and how many more."""
        return _listing(self.names)


def _listing(names: list[str]) -> str:
    more = len(names) - 3
    return ", ".join(names[:3]) + (f" and {more} more" if more > 0 else "")


def _safe_globals() -> list:
    """What a weights-only read may build besides tensors and containers: numpy arrays,
    dtypes and scalars, torch's version string (``torch.__version__``), and the builtins
    pickle's protocol 2 names for empty bytes, sets and complex numbers (no code of the
    file's choosing runs through any of them)."""
    from torch.torch_version import TorchVersion
    core = getattr(np, "_core", None) or np.core
    dtypes = {type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGUSMm"}
    return [TorchVersion, np.ndarray, np.dtype, core.multiarray._reconstruct,
            core.multiarray.scalar, *dtypes, bytes, set, frozenset, complex]


def read_torch(path: str | Path, *, map_location="cpu"):
    """``torch.load`` of ``path`` with ``weights_only=True`` (see the module docstring).

    Raises
    ------
    UnsafeFileError : the file names an object outside the weights-only set (the message
        names it and the variable that lifts the check); other errors as ``torch.load``.
    """
    trusted = os.environ.get(TRUST_VARIABLE, "").strip().lower() in {"1", "yes", "true"}
    if trusted:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _unsafe_globals(path)
        if not names:  # damaged, not a torch file: the caller's "cannot read"
            raise
        raise UnsafeFileError(
            f"{path}: holds objects that reading it would run code to build "
            f"({_listing(names)}); "
            f"midlevel reads run files without running code from them. If the file comes "
            f"from a source you trust (a run of your own written by an older version), set "
            f"{TRUST_VARIABLE}=1 to read it anyway", names) from exc


def _unsafe_globals(path) -> list[str]:
    """The objects outside the weights-only set a torch file names (none when it is not a
    torch file, or cannot be read)."""
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in _safe_globals()}
    try:
        return [name for name in torch.serialization.get_unsafe_globals_in_checkpoint(path)
                if name not in allowed]
    except Exception:  # noqa: BLE001 (damaged or foreign: no names to give)
        return []


def frame_state(table: pd.DataFrame) -> dict:
    """A DataFrame as plain columns a weights-only read can load: numeric and boolean
    columns as tensors (exact), other columns as lists of strings and None.

    Raises
    ------
    CheckpointError : a column, index or cell of another kind (multi-level, categorical,
        dates, objects other than strings).
    """
    if table.columns.nlevels != 1 or table.index.nlevels != 1:
        raise CheckpointError("only tables with one level of columns and index are stored")
    return {"columns": [_label(c) for c in table.columns],
            "values": [_column(table[c]) for c in table.columns],
            "dtypes": [str(table[c].dtype) for c in table.columns],
            "index": _column(table.index.to_series()),
            "index_dtype": str(table.index.dtype), "index_name": _label(table.index.name)}


def frame_from_state(state: dict) -> pd.DataFrame:
    """The DataFrame :func:`frame_state` stored."""
    table = pd.DataFrame({name: _series(values, dtype) for name, values, dtype
                          in zip(state["columns"], state["values"], state["dtypes"])})
    table.index = pd.Index(_series(state["index"], state["index_dtype"]),
                           name=state["index_name"])
    return table


def _label(name):
    if name is None or isinstance(name, (str, int, float, bool)):
        return name
    raise CheckpointError(f"column name {name!r} is not a string or number")


def _column(series: pd.Series):
    kind = series.dtype.kind if isinstance(series.dtype, np.dtype) else None
    if kind in ("f", "i", "u", "b"):
        return torch.from_numpy(np.array(series.to_numpy(), copy=True))
    cells = []
    for cell in series.tolist():
        if cell is None or (isinstance(cell, float) and np.isnan(cell)):
            cells.append(None)
        elif isinstance(cell, str):
            cells.append(cell)
        else:
            raise CheckpointError(f"column {series.name!r} holds {type(cell).__name__} cells")
    return cells


def _series(values, dtype: str):
    if isinstance(values, torch.Tensor):
        return pd.Series(values.numpy())
    return pd.Series(values, dtype=dtype if dtype != "object" else object)
