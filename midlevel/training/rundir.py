"""The run directory while ``fit`` writes it: made (or replaced with permission), logged to
(``train.log``), and removed again when training fails before its first completed epoch, so
that a failed start leaves nothing half-made behind."""
from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from midlevel.errors import CheckpointError
from midlevel.io import log_handler
from midlevel.run import CONFIG_FILE, STATE_FILE
from midlevel.training import ddp


@contextlib.contextmanager
def run_directory(ctx, out: Path, *, resume: bool, overwrite: bool):
    """Make ``out`` (see :func:`prepare`) and log to ``out/train.log`` inside the block.

    A directory this call made that holds no checkpoint when the block fails (or is
    interrupted) is removed: no epoch was completed, so nothing is lost, and the next call
    needs no ``--overwrite``.
    """
    created = not out.exists()
    prepare(ctx, out, resume, overwrite)
    handler = log_to_file(ctx, out / "train.log")
    try:
        yield out
    except BaseException:
        _detach(handler)
        handler = None
        if ctx.main and created and out.is_dir() and not (out / STATE_FILE).exists():
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        _detach(handler)


def prepare(ctx, out: Path, resume: bool, overwrite: bool) -> None:
    """Make ``out``; an existing non-empty one only with ``resume`` or ``overwrite`` (and
    replaced only when it is a run directory)."""
    if ctx.main:
        if out.exists() and any(out.iterdir()) and not resume:
            if not overwrite:
                raise CheckpointError(f"{out}: run directory exists; pass --overwrite to replace "
                                      f"it or --resume to continue it")
            if not (out / CONFIG_FILE).is_file():
                raise CheckpointError(f"{out}: not a run directory (no {CONFIG_FILE}); refusing "
                                      f"to delete it")
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    ddp.barrier(ctx)


def log_to_file(ctx, path: Path):
    """Log to ``RUN/train.log`` on rank 0; other ranks only log warnings."""
    if not ctx.main:
        logging.getLogger("midlevel").setLevel(logging.WARNING)
        return None
    handler = log_handler(path)
    logger = logging.getLogger("midlevel")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def _detach(handler) -> None:
    if handler is not None:
        logging.getLogger("midlevel").removeHandler(handler)
        handler.close()
