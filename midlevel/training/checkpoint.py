"""Self-describing, atomic checkpoints and run directories.

A run directory ``RUN`` holds:

- ``config.yaml``: the training configuration and where the data came from;
- ``checkpoint.pt``: the state after the last completed epoch (model, optimizer, early-stopping
  state, history), rewritten atomically after every epoch, for ``--resume``;
- ``model.pt``: the final model, written when training ends. It is self-describing: model kind
  and constructor arguments, state, concept and target names and scales, front-end config,
  training config, package and torch versions, and the design the head was fitted on;
- ``history.csv`` (per-epoch loss and validation score), ``metrics.csv``, ``train.log``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from midlevel.errors import CheckpointError

FORMAT = "midlevel-run/1"
MODEL_FILE = "model.pt"
STATE_FILE = "checkpoint.pt"


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write a text file via a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Read a ``model.pt`` or ``checkpoint.pt``; :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a midlevel checkpoint (format {FORMAT} expected)")
    return ckpt
