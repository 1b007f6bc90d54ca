"""A run's predictions of its own dataset splits, kept in the run directory so that later
commands do not compute them again.

``Run.predictions(split)`` predicts every clip of a split: ``explain`` asks for the training
split on every call (the baseline and the dataset view; 12 s for 200 training clips and 23 s
for 800 on two cores, whatever the number of files explained), ``coefficients`` and ``compare``
for the held-out splits. The table is kept as ``RUN/predictions/<split>.pt`` under a key of
everything it depends on:

- the model as it is in memory: the SHA-1 of every weight and buffer (a run trained again
  into the folder, a checkpoint replaced, or weights changed in a notebook are another model);
- the model's outputs as they are named: concept and target names, kinds and classes (not
  all of them in its state);
- each clip's id and its spectrogram: the feature cache's entry, named by the SHA-1 of the
  audio file's bytes, and the cache's contract (the front end's settings, peak
  normalization, the cache's and the decoder's versions): an edited or replaced file, a
  changed split or another spec, another front end or a new decoder give other keys;
- the windows (the crop, the hop) and the batch size.

Any difference recomputes the table and replaces the file. The table is stored as plain
columns and read without running code from the file (:mod:`midlevel.training.torch_files`:
a shared run folder's file cannot run code when opened); a file that cannot be read (damaged, or
holding other objects, as the pickled tables of versions before did) is recomputed, with a
warning; a run directory that cannot be written (a shared, read-only run) is used as it is:
the table is computed on every call and a warning says why. Written atomically
(:mod:`midlevel.io`), so two commands on one run never read a half-written table; the
temporary file of a write killed half-way is removed by a later read or write, an hour on.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd
import torch

from midlevel.errors import CheckpointError
from midlevel.io import remove_stale_temporaries, write_torch
from midlevel.training.torch_files import (UnsafeFileError, frame_from_state, frame_state,
                                          read_torch)

log = logging.getLogger("midlevel")

FOLDER = "predictions"
"""The folder of a run directory that holds its stored predictions."""


def split_label(split) -> str:
    """``"train"``, ``"validation+test"`` or ``"all"`` (None): the file's name."""
    if split is None:
        return "all"
    return split if isinstance(split, str) else "+".join(split)


def prediction_key(run, rows: pd.DataFrame, specs, *, batch_size: int) -> str:
    """The key of a run's predictions of ``rows`` (annotations rows, index clip) whose
    spectrograms are ``specs`` (a :class:`~midlevel.data.stream.CachedSpecs`)."""
    model = run.model
    kinds = list(getattr(model, "concept_kinds", None) or [])
    parts = {"model": model_digest(model), "kind": model.kind,
             "outputs": [list(model.concept_names), kinds, [dict(t) for t in model.targets]],
             "cache": specs.cache.key,  # the front end, normalization and versions
             "clips": [str(c) for c in rows.index],
             "features": [specs.cache.entry(p).name for p in specs.paths],
             "window": list(run.window()), "batch_size": batch_size}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def model_digest(model) -> str:
    """SHA-1 of a model's class and state: every weight and buffer's name, dtype, shape and
    bytes (tens of milliseconds for the paper's network)."""
    digest = hashlib.sha1(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_predictions(run, split, key: str) -> pd.DataFrame | None:
    """The stored table of ``split`` when its key is ``key``, else None."""
    path = Path(run.path) / FOLDER / f"{split_label(split)}.pt"
    if not path.is_file():
        return None
    remove_stale_temporaries(path)  # a killed write's, which no later write may come to remove
    try:
        stored = read_torch(path)
        if stored.get("key") != key:
            return None
        table = stored["table"] if isinstance(stored["table"], pd.DataFrame) \
            else frame_from_state(stored["table"])  # (a version before, read as trusted)
        table.attrs.update(errors={}, warnings=dict(stored["warnings"]))
        return table
    except UnsafeFileError as exc:  # a pickled table of a version before, or a planted object
        log.warning("%s: a table stored by an earlier version of midlevel (or not by it: it "
                    "names %s), not read; predicting the %s clips again, stored anew", path,
                    exc.listing, split_label(split))
        return None
    except Exception as exc:  # noqa: BLE001 (any unpickling failure: damaged, or written
        # by library versions this environment cannot load; the table is computed again)
        log.warning("%s: cannot read the stored predictions (%s); predicting the %s clips "
                    "again", path, exc, split_label(split))
        return None


def save_predictions(run, split, key: str, table: pd.DataFrame) -> None:
    """Store ``table`` (``Run.predict``'s, with ``attrs["warnings"]``) for ``split``; a run
    directory that cannot be written is left as it is (a warning)."""
    path = Path(run.path) / FOLDER / f"{split_label(split)}.pt"
    try:
        path.parent.mkdir(exist_ok=True)
        write_torch(path, {"key": key, "table": frame_state(table),
                           "warnings": dict(table.attrs.get("warnings", {}))})
    except OSError as exc:
        log.warning("%s: predictions not stored (%s); they are computed on each call", path,
                    exc.strerror or exc)
    except CheckpointError as exc:  # a column frame_state does not store as plain values
        log.warning("%s: predictions not stored (%s); they are computed on each call", path,
                    exc)
