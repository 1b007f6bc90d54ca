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

from pathlib import Path

import torch

from midlevel.atomic import atomic_open
from midlevel.errors import CheckpointError

FORMAT = "midlevel-run/1"
MODEL_FILE = "model.pt"
STATE_FILE = "checkpoint.pt"


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` to ``path`` atomically (see :func:`midlevel.atomic.atomic_open`)."""
    with atomic_open(path) as fh:
        torch.save(obj, fh)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


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
