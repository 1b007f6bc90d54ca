"""Run checkpoints, written and read only here: the resumable training state
``RUN/checkpoint.pt`` and the final, self-describing ``RUN/model.pt`` (contents:
:mod:`midlevel.run`). Both go through :func:`midlevel.io.write_torch` (atomic)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from midlevel.data.audio import DECODE_VERSION
from midlevel.errors import CheckpointError
from midlevel.io import write_csv, write_torch
from midlevel.training.torch_files import UnsafeFileError, read_torch
from midlevel.training.config import TrainConfig

FORMAT = "midlevel-run/1"
MODEL_FILE = "model.pt"
STATE_FILE = "checkpoint.pt"
CONFIG_FILE = "config.yaml"
RUN_FILES = (MODEL_FILE, STATE_FILE, CONFIG_FILE, "splits.csv", "history.csv", "metrics.csv",
             "train.log")
"""The files of a run directory (see the module docstring): no command's ``--out`` may be one."""


def read_checkpoint(path: str | Path) -> dict:
    """Read a ``model.pt`` or ``checkpoint.pt`` without running code from it
    (:func:`midlevel.training.torch_files.read_torch`); :class:`CheckpointError` naming the
    file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = read_torch(path)
    except UnsafeFileError:  # a CheckpointError naming the file and the object
        raise
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a midlevel checkpoint (format {FORMAT} expected)")
    return ckpt


def mend_metrics_file(folder: Path, ckpt: dict) -> None:
    """Rewrite ``folder/metrics.csv`` from the metrics ``model.pt`` keeps where the two
    differ: a training stopped between writing the model and the table left the table of
    the model before (audit 23a: ``model.pt`` at 4 epochs, ``metrics.csv`` at 2, no word).
    Left alone while a training holds the folder, or where it cannot be written."""
    from midlevel.io import lock_held, write_text
    stored, path = ckpt.get("metrics_csv"), folder / "metrics.csv"
    try:
        if stored is None or (path.is_file() and path.read_text() == stored) or \
                lock_held(folder):
            return
        write_text(path, stored)
    except OSError:
        return
    logging.getLogger("midlevel").warning(
        "%s: brought in line with the model.pt beside it (a training stopped between the "
        "two had left the metrics of the model before)", path)


def write_history(out: Path, history: list[dict]) -> Path:
    """``RUN/history.csv``: one row per epoch of the training state's ``history`` (written
    after every epoch, and again when training ends: a kill between an epoch's checkpoint and
    its row would otherwise lose the row for good, a resume finding nothing to train)."""
    import pandas as pd
    table = pd.DataFrame(history)
    kinds = {"processes": "Int64", "threads": "Int64", "bf16": "boolean"}
    for column, kind in kinds.items():  # blank in an epoch of an older version
        if column in table:
            table = table.astype({column: kind})
    return write_csv(table, out / "history.csv")


def cpu_state(model) -> dict:
    """A detached CPU copy of ``model.state_dict()``."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def write_state(out: Path, *, model, optimizer, state: dict) -> Path:
    """The resumable training state ``RUN/checkpoint.pt``."""
    return write_torch(out / STATE_FILE, {"format": FORMAT, "model": cpu_state(model),
                                          "optimizer": optimizer.state_dict(), "state": state})


def write_model(out: Path, model, *, config: TrainConfig, data: dict, frontend: dict | None,
                fps: float, scales: dict, head_design: dict | None, calibration: dict | None,
                epochs: int, best_epoch: int, metrics=None) -> Path:
    """The final, self-describing ``RUN/model.pt`` (see the module docstring); ``metrics``:
    the final metrics table, kept with the weights it scores (``metrics.csv`` is written
    after this file: a reader between the two, or a kill, would pair other numbers)."""
    import midlevel
    return write_torch(out / MODEL_FILE, {
        "metrics_csv": None if metrics is None else metrics.to_csv(index=False),
        "format": FORMAT, "version": midlevel.__version__, "torch": str(torch.__version__),
        "kind": model.kind, "mode": config.mode, "init_args": model.init_args,
        "state_dict": cpu_state(model), "config": dataclasses.asdict(config), "data": data,
        "frontend": frontend, "fps": fps, "scales": scales, "head_design": head_design,
        "bn_recalibrated": bool(config.recalibrate_bn), "concept_calibration": calibration,
        "decode_version": data.get("decode_version", DECODE_VERSION), "epochs": epochs,
        "best_epoch": best_epoch})


def software_versions() -> dict[str, str]:
    """The versions of the package and of the libraries a run's numbers depend on (its
    network, its audio decoding and resampling), in the data record of ``model.pt`` and
    ``config.yaml`` (``versions``): what to install to reproduce a run later (None: not
    installed)."""
    from importlib import metadata
    out = {}
    for name in ("midlevel", "torch", "numpy", "soundfile", "soxr", "scipy", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    import soundfile
    out["libsndfile"] = getattr(soundfile, "__libsndfile_version__", None)
    return out


def decoder_of(config: dict, data: dict) -> int | None:
    """The decoder version (``midlevel.data.audio.DECODE_VERSION``) whose audio a run was
    trained on: as recorded in its data record, else 2 for a run whose config has
    ``bn_batch_size`` (first stored after the DC offset removal of decoder 2), else None:
    unknown, 1 or 2 (runs recorded no decoder before; audit 14c)."""
    if "decode_version" in data:
        return data["decode_version"]
    return 2 if "bn_batch_size" in config else None


def warn_if_older(path: Path, ckpt: dict) -> bool:
    """Warn (naming ``path``) when the model ``ckpt`` holds was trained without BatchNorm
    re-estimation because its version had none (before the key existed, or a resume of such
    a run, ``data["legacy_settings"]``; a run trained with it off on purpose is not warned
    about), or on audio an earlier decoder prepared (:func:`decoder_of`); returns whether
    its BatchNorm statistics were re-estimated."""
    log = logging.getLogger("midlevel.run")
    data = ckpt.get("data") or {}
    recalibrated = bool(ckpt.get("bn_recalibrated"))
    if "bn_recalibrated" not in ckpt or "recalibrate_bn" in (data.get("legacy_settings") or {}):
        log.warning("%s was trained before versions had BatchNorm statistics re-estimated "
                    "with dropout off: its predictions may be right in order but off in level "
                    "and scale (see midlevel.training.batchnorm); retrain for calibrated "
                    "values", path)
    decoded = ckpt.get("decode_version") if "decode_version" in ckpt else \
        decoder_of(ckpt.get("config") or {}, data)
    if decoded is None:
        log.warning("%s does not record the audio decoder it was trained with: if it was "
                    "trained before 2026-12-06 10:17 UTC (decoder 1), its audio kept its DC "
                    "offset, which every command now removes, and on clips with an offset its "
                    "predictions differ from what it was trained with (0.33 rating points at "
                    "an offset of 0.2); retrain to be sure", path)
    elif decoded < DECODE_VERSION:
        log.warning("%s was trained on audio decoded by an earlier version (decoder %s, now %s: "
                    "the DC offset is now removed before peak normalization): on clips with a "
                    "DC offset its predictions differ from what it was trained with (0.33 "
                    "rating points at an offset of 0.2); retrain to match", path, decoded,
                    DECODE_VERSION)
    return recalibrated
