"""``train``: a run from a data spec, its audio and the feature cache (``midlevel train``)."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from midlevel.data.segments import segments_of
from midlevel.data.yamlfile import read_yaml
from midlevel.errors import SpecError, TrainingError
from midlevel.data.audio import DECODE_VERSION
from midlevel.training.checkpoint import decoder_of
from midlevel.training.config import TrainConfig, legacy_settings, stored_config
from midlevel.training.data import Columns
from midlevel.training.datarecord import trained_roots
from midlevel.training.ddp import first_process
from midlevel.training.loop import fit
from midlevel.training.segment_check import (
    check_segment_times, scored_clip_level_note, spectrogram_frames,
)
from midlevel.training.rundir import (
    RESUMABLE, check_resume, check_settings, early_log, epochs_done, stored_record,
)

log = logging.getLogger("midlevel.training")


def _spec_and_table(spec, root):
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import DataSpec, load_spec
    if not isinstance(spec, DataSpec):
        spec = load_spec(spec, root=root)
    return spec, load_annotations(spec)


def _features(table, cache_dir, frontend: dict | None, progress: bool):
    """Fill the feature cache for ``table`` and return (clip -> spectrogram, cache); the
    spectrograms are the cache's files (:class:`~midlevel.data.stream.MappedFeatures`), read
    into memory by training only when they fit its budget."""
    from midlevel.data.cache import FeatureCache
    from midlevel.data.stream import MappedFeatures
    cache = FeatureCache(cache_dir, frontend)
    # under torchrun every process fills (and waits for) the cache; one says its warnings
    cache.fill(table["path"], progress=progress, warn=first_process())
    return MappedFeatures.from_cache(cache, table["path"]), cache


def train(spec, out, *, mode: str | None = None, root=None, config=None,
          epochs: int | None = None, preset: str | None = None, seed: int | None = None,
          device: str | None = None, resume: bool = False, overwrite: bool = False,
          cache_dir=None, frontend: dict | None = None, progress: bool = True,
          max_memory=None, workers: int | None = None, cpu_bf16: bool | None = None):
    """Train a model on the dataset of a data spec (``midlevel train``).

    Parameters
    ----------
    spec : path of a data spec, or a loaded ``DataSpec``.
    out : run directory to write.
    mode : "blackbox", "independent", "sequential" or "joint".
    root : replaces the spec's root (see ``load_spec``).
    config : TrainConfig, dict or YAML path; ``mode``, ``epochs``, ``preset``, ``seed`` and
        ``device`` given here override it.
    resume : continue ``out`` from its last completed epoch with its stored config and, when
        ``spec`` is the spec file it was trained on, its roots (``root`` replaces those it
        names). The data's concepts and targets, its clips and their splits
        (``RUN/splits.csv``), its ratings and time-varying ratings (their fingerprints in
        ``config.yaml``) and its audio (each clip's bytes, in ``splits.csv``) must be
        the run's (CheckpointError naming what differs; the same data elsewhere is fine), and
        a setting given here or in ``config`` may differ from the run's only if it is
        ``epochs`` (not below the epochs done), ``device``, ``cpu_bf16`` or a data-handling
        one (``max_memory``, ``workers``): TrainingError naming the others, before anything
        is written. The run's data record (``config.yaml`` and ``model.pt``) becomes the
        resume's: the spec file and roots it was given, holding the same data.
    overwrite : replace an existing run directory.
    cache_dir : feature cache folder (default: the cache's default).
    frontend : front-end config (default: the paper's log-filtered spectrogram).
    max_memory, workers : the memory budget for holding every spectrogram in memory (bytes or
        "2GB"; larger datasets stream from the feature cache) and the streaming DataLoader's
        worker processes (see :mod:`midlevel.training.stream`); they never change results.
    cpu_bf16 : bfloat16 autocast for the training steps on a CPU with bf16 units (see
        :class:`TrainConfig`); may be changed on ``resume``.

    Returns
    -------
    Run
    """
    with early_log():  # the warnings said before RUN/train.log exists are written there too
        return _train(spec, out, mode=mode, root=root, config=config, epochs=epochs,
                      preset=preset, seed=seed, device=device, resume=resume,
                      overwrite=overwrite, cache_dir=cache_dir, frontend=frontend,
                      progress=progress, max_memory=max_memory, workers=workers,
                      cpu_bf16=cpu_bf16)


def _train(spec, out, *, mode, root, config, epochs, preset, seed, device, resume, overwrite,
           cache_dir, frontend, progress, max_memory, workers, cpu_bf16):
    overrides = {k: v for k, v in dict(mode=mode, epochs=epochs, preset=preset, seed=seed,
                                       device=device, max_memory=max_memory,
                                       workers=workers, cpu_bf16=cpu_bf16).items()
                 if v is not None}
    saved = stored_record(Path(out)) if resume else None
    values = {**_config_dict(config), **overrides}
    version = {"decode_version": DECODE_VERSION}  # what the weights saw, for model.pt
    if saved is not None:  # the run's settings, where only RESUMABLE ones may change
        said = {k: v for k, v in legacy_settings(saved["config"]).items()
                if k != "bn_batch_size"}
        before = saved.get("data") or {}
        decoded = decoder_of(saved["config"], before)
        version = {"decode_version": None if decoded is None else min(decoded, DECODE_VERSION),
                   **({"legacy_settings": {**(before.get("legacy_settings") or {}), **said}}
                      if said or before.get("legacy_settings") else {})}
        if said and first_process():
            log.warning("%s was written by an earlier version that had no %s: it continues "
                        "with what that version did (%s)", out, ", ".join(said),
                        ", ".join(f"{k} {v!r}" for k, v in said.items()))
        saved["config"] = stored_config(saved["config"])
        given = TrainConfig.from_dict({**saved["config"], **values})
        given.check()
        check_settings(Path(out), saved["config"],
                       {k: getattr(given, k) for k in values})
        _check_epochs(Path(out), given.epochs if "epochs" in values else None)
        values = {**saved["config"], **{k: v for k, v in values.items() if k in RESUMABLE}}
        stored_frontend = saved.get("frontend") or {}
        if frontend and stored_frontend and frontend.get("name") != stored_frontend.get("name"):
            raise TrainingError(f"{out}: --resume continues the run on its front end "
                                f"{stored_frontend.get('name')!r}, not --frontend "
                                f"{frontend.get('name')!r}; leave --frontend out to resume, or "
                                f"train a new run with another --out")
        frontend = stored_frontend or frontend
        root = _trained_roots(spec, saved.get("data") or {}, root, out)
    cfg = TrainConfig.from_dict(values)
    cfg.check()
    spec, table = _spec_and_table(spec, root)
    columns = Columns.from_spec(spec, table)
    if cfg.mode != "blackbox" and not columns.concepts:
        raise TrainingError(f"spec '{spec.name}' ({spec.path}) has no concept columns, so mode "
                            f"'{cfg.mode}' cannot train a concept bottleneck; add concepts to "
                            f"the spec or use --mode blackbox")
    if saved is not None:  # before the feature cache is filled
        check_resume(Path(out), cfg, columns, table)
    features, cache = _features(table, cache_dir, frontend, progress)
    check_segment_times(table, spectrogram_frames(table, features), float(cache.frontend.fps))
    note = scored_clip_level_note(table)
    if note and first_process():
        log.info("%s", note)
    data = {"spec": str(Path(spec.path).resolve()) if spec.path else None, "spec_name": spec.name,
            "root": str(spec.root), "roots": {k: str(v) for k, v in spec.roots.items()},
            "columns": spec.summary_dict(),
            "segment_clips": len(segments_of(table).clips), **version}
    return fit(table, features, columns, out, cfg, fps=float(cache.frontend.fps),
               frontend=cache.frontend.config(), data=data, resume=resume,
               overwrite=overwrite, progress=progress)


def _trained_roots(spec, stored: dict, root, out):
    """On resume with the spec file the run was trained on: the roots it was trained with,
    save those ``root`` replaces (see :func:`midlevel.training.datarecord.trained_roots`)."""
    if not isinstance(spec, (str, Path)) or not stored.get("spec") or \
            Path(spec).resolve() != Path(stored["spec"]):
        return root
    return trained_roots(stored, root, where=out)


def _check_epochs(out: Path, epochs) -> None:
    """On resume, an ``epochs`` given (option or config file) below the epochs the run has
    done would train nothing while seeming to set the run's length: TrainingError naming
    both."""
    if epochs is None:
        return
    done = epochs_done(out)
    if int(epochs) < done:
        raise TrainingError(f"{out}: --epochs {epochs} is lower than the {done} epochs the run "
                            f"has already done; --resume continues a run up to a higher "
                            f"maximum (--epochs {done + 1} or more), it does not shorten it "
                            f"(leave --epochs out to finish the run as it is)")


def _config_dict(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, TrainConfig):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return dict(config)
    path = Path(config)
    try:  # a key given twice is named, not silently the second
        values = read_yaml(path, what="training config") or {}
    except SpecError as exc:
        raise TrainingError(str(exc)) from None
    if not isinstance(values, dict):
        raise TrainingError(f"{path}: a training config is a mapping of keys to values")
    # every value error names the file it came from; cpu_bf16: true is a valid value whose
    # hardware check needs the device, which the command line may still set
    probe = {**values, "cpu_bf16": False} if values.get("cpu_bf16") is True else values
    try:
        TrainConfig.from_dict(probe, where=str(path)).check()
    except TrainingError as exc:
        message = str(exc)
        raise TrainingError(message if message.startswith(f"{path}:") else
                            f"{path}: {message}") from None
    return values


def evaluate(run, spec=None, *, root=None, splits=("test",), cache_dir=None,
             progress: bool = False, threshold: float = 0.5):
    """Metrics of a run on splits of a data spec (``midlevel evaluate``): see
    :meth:`midlevel.run.Run.evaluate`; ``run`` may be a run directory."""
    from midlevel.run import load_run
    return load_run(run).evaluate(spec, root=root, splits=splits, cache_dir=cache_dir,
                                  progress=progress, threshold=threshold)
