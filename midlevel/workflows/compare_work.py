"""The finished parts of a comparison report, kept until the report is written.

A report's long work is explaining each model with each method (maps, faithfulness curves,
sanity checks): minutes per method on real runs. Each (model, method) result is written to
``<out>/.compare_work/`` as soon as it is done, under a key of everything it reads: the run's
weights (their digest, not the checkpoint file's size and time), the bytes of the explained
clips' spectrograms and of the background crops, the method, output and options, and the
faithfulness and sanity settings. A compare that is interrupted (a kill -9 included) and
started again into the same folder with the same runs, data and options reuses them; a
different weight, audio file (its spectrogram), background or setting gives another key, so
nothing stale is reused. The folder is removed once the report is written.
"""
from __future__ import annotations

import hashlib
import json
import logging
import pickle
import shutil
from pathlib import Path

from midlevel.io import write_torch

log = logging.getLogger("midlevel.compare")

WORK_DIR = ".compare_work"


def run_fingerprint(run) -> dict:
    """The run's folder and the digest of its model's weights and buffers (a run trained
    again into the same folder, or a checkpoint copied over it, is another run)."""
    from midlevel.training.stored_predictions import model_digest
    return {"run": str(Path(run.path).resolve()), "model": model_digest(run.model)}


def array_digest(arrays) -> str:
    """SHA-1 of arrays' shapes, dtypes and bytes, in order (the clips or background a unit
    of work reads)."""
    import numpy as np
    digest = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        digest.update(f"{a.dtype}:{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


class WorkStore:
    """Results of finished units of work under ``<out>/.compare_work``, keyed by
    ``settings`` (what every unit shares) plus each unit's own key."""

    def __init__(self, out, settings: dict):
        self.dir = Path(out) / WORK_DIR
        self.settings = settings
        self.reused = 0
        self.computed = 0

    def _path(self, key: dict) -> Path:
        text = json.dumps({**self.settings, **key}, sort_keys=True, default=repr)
        return self.dir / f"{hashlib.sha256(text.encode()).hexdigest()[:24]}.pt"

    def load(self, key: dict):
        """The stored result of ``key``, or None (never computed, or unreadable: a damaged
        file is recomputed, with a warning)."""
        import torch
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            result = torch.load(path, weights_only=False)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            log.warning("%s: cannot read a stored result of an earlier compare (%s); "
                        "computing it again", path, exc)
            return None
        self.reused += 1
        return result

    def save(self, key: dict, result) -> None:
        """Store ``result`` (picklable: arrays, tables, plain objects) atomically."""
        write_torch(self._path(key), result)
        self.computed += 1

    def clear(self) -> None:
        """Remove the stored results (the report they served is written)."""
        shutil.rmtree(self.dir, ignore_errors=True)
