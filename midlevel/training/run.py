"""Public entry points: ``train`` from a data spec, ``load_run``, ``Run.predict``, ``evaluate``."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from midlevel.data.segments import segments_of
from midlevel.errors import AudioError, CheckpointError, TrainingError
from midlevel.models.bottleneck import build_model
from midlevel.training.checkpoint import MODEL_FILE, STATE_FILE, load_checkpoint
from midlevel.training.data import Columns, window_frames
from midlevel.training.head import design_frame
from midlevel.training.loop import (
    TrainConfig, decode_targets, evaluate_split, fit, output_layout,
    predict_specs,
)
from midlevel.training.metrics import format_table

log = logging.getLogger("midlevel.training")


def _spec_and_table(spec, root):
    from midlevel.data.spec import DataSpec, load_annotations, load_spec
    if not isinstance(spec, DataSpec):
        spec = load_spec(spec, root=root)
    return spec, load_annotations(spec)


def _features(table: pd.DataFrame, cache_dir, frontend: dict | None, progress: bool):
    """Fill the feature cache for ``table`` and return (clip -> spectrogram, cache)."""
    from midlevel.data.cache import FeatureCache
    cache = FeatureCache(cache_dir, frontend)
    cache.fill(table["path"], jobs=1, progress=progress)
    return {clip: cache.get(path) for clip, path in table["path"].items()}, cache


def train(spec, out, *, mode: str | None = None, root=None, config=None,
          epochs: int | None = None, preset: str | None = None, seed: int | None = None,
          device: str | None = None, resume: bool = False, overwrite: bool = False,
          cache_dir=None, frontend: dict | None = None, progress: bool = True) -> "Run":
    """Train a model on the dataset of a data spec (``midlevel train``).

    Parameters
    ----------
    spec : path of a data spec, or a loaded ``DataSpec``.
    out : run directory to write.
    mode : "blackbox", "independent", "sequential" or "joint".
    root : replaces the spec's root (see ``load_spec``).
    config : TrainConfig, dict or YAML path; ``mode``, ``epochs``, ``preset``, ``seed`` and
        ``device`` given here override it.
    resume : continue ``out`` from its last completed epoch (its stored config is used;
        ``epochs`` and ``device`` may still be changed).
    overwrite : replace an existing run directory.
    cache_dir : feature cache folder (default: the cache's default).
    frontend : front-end config (default: the paper's log-filtered spectrogram).

    Returns
    -------
    Run
    """
    overrides = {k: v for k, v in dict(mode=mode, epochs=epochs, preset=preset, seed=seed,
                                       device=device).items() if v is not None}
    stored = Path(out) / "config.yaml"
    if resume and stored.is_file() and (Path(out) / STATE_FILE).is_file():
        saved = yaml.safe_load(stored.read_text())
        values = {**saved["config"], **{k: v for k, v in overrides.items()
                                        if k in ("epochs", "device")}}
        frontend = saved.get("frontend") or frontend
    else:
        values = {**_config_dict(config), **overrides}
    cfg = TrainConfig.from_dict(values)
    cfg.check()
    spec, table = _spec_and_table(spec, root)
    columns = Columns.from_spec(spec, table)
    if cfg.mode != "blackbox" and not columns.concepts:
        raise TrainingError(f"spec '{spec.name}' ({spec.path}) has no concept columns, so mode "
                            f"'{cfg.mode}' cannot train a concept bottleneck; add concepts to "
                            f"the spec or use --mode blackbox")
    features, cache = _features(table, cache_dir, frontend, progress)
    data = {"spec": str(Path(spec.path).resolve()) if spec.path else None, "spec_name": spec.name,
            "root": str(spec.root), "columns": spec.summary_dict(),
            "segment_clips": len(segments_of(table).clips)}
    return fit(table, features, columns, out, cfg, fps=float(cache.frontend.fps),
               frontend=cache.frontend.config(), data=data, resume=resume,
               overwrite=overwrite, progress=progress)


def _config_dict(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, TrainConfig):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return dict(config)
    path = Path(config)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TrainingError(f"{path}: cannot read the training config ({exc})") from exc
    if not isinstance(values, dict):
        raise TrainingError(f"{path}: a training config is a mapping of keys to values")
    TrainConfig.from_dict(values, where=str(path))
    return values


class Run:
    """A trained model with everything needed to use it (see :func:`load_run`).

    Attributes
    ----------
    path : Path of the run directory.
    model : the ``ConceptBottleneck`` or ``BlackBox`` (eval mode, CPU).
    mode : training mode. config : TrainConfig. frontend : front-end config dict. fps : float.
    concept_names, target_names : list[str]. targets : list of target dicts (kind, classes).
    info : the whole stored checkpoint minus the weights.
    """

    def __init__(self, path: Path, ckpt: dict):
        self.path = path
        self.info = {k: v for k, v in ckpt.items() if k != "state_dict"}
        args = ckpt["init_args"]
        self.model = build_model(ckpt["kind"], args["concepts"], args["targets"], args["backbone"])
        self.model.load_state_dict(ckpt["state_dict"])
        self.model.eval()
        self.mode = ckpt["mode"]
        self.config = TrainConfig.from_dict(ckpt["config"])
        if "bn_recalibrated" not in ckpt:  # written before BatchNorm re-estimation existed
            self.config.recalibrate_bn = False
            log.warning("%s was trained before BatchNorm statistics were re-estimated with "
                        "dropout off: its predictions may be right in order but off in level "
                        "and scale (see midlevel.training.batchnorm); retrain for calibrated "
                        "values", path / MODEL_FILE)
        self.frontend = ckpt["frontend"]
        self.fps = float(ckpt["fps"])
        self.concept_names = list(self.model.concept_names)
        self.targets = self.model.targets
        self.target_names = list(self.model.target_names)
        self._frontend_module = None

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, mode={self.mode!r}, concepts={self.concept_names}, "
                f"targets={self.target_names})")

    @property
    def columns(self) -> Columns:
        return Columns(self.concept_names, self.targets)

    @property
    def metrics(self) -> pd.DataFrame:
        """The metrics written at the end of training (``RUN/metrics.csv``)."""
        return pd.read_csv(self.path / "metrics.csv")

    @property
    def head_design(self) -> pd.DataFrame | None:
        """The (X, Y) the head was fitted on: index clip, concepts then targets, in the model's
        z-scored units (independent and sequential modes; None otherwise)."""
        design = self.info.get("head_design")
        return None if design is None else design_frame(design, self.concept_names, self.targets)

    def _window(self, hop: float | None):
        n_frames = window_frames(self.config.crop_seconds, self.fps)
        seconds = hop or self.config.eval_hop_seconds or self.config.crop_seconds
        return n_frames, max(1, int(round(seconds * self.fps)))

    def spectrogram(self, audio) -> torch.Tensor:
        """A path or a waveform (at the front end's sample rate) -> ``(n_bands, n_frames)``."""
        from midlevel.data.audio import load_audio
        from midlevel.data.frontends import make_frontend
        if self._frontend_module is None:
            self._frontend_module = make_frontend(self.frontend).eval()
        fe = self._frontend_module
        if isinstance(audio, (str, Path)):
            audio = load_audio(audio, sample_rate=fe.sample_rate)
        y = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        if y.ndim != 1:
            raise AudioError(f"expected a mono waveform of shape (n_samples,), got {tuple(y.shape)}")
        with torch.no_grad():
            return fe(y)

    def predict(self, audio, *, hop: float | None = None, names=None,
                batch_size: int = 16) -> pd.DataFrame:
        """Concept and target predictions in rating units.

        Parameters
        ----------
        audio : a path, a mono waveform ``(n_samples,)`` at the front end's sample rate, a
            spectrogram ``(n_bands, n_frames)`` (2-D), or a list of these.
        hop : None: one row per clip (mean over windows). Seconds: one row per window of
            ``crop_seconds`` every ``hop`` seconds (the last window ends at the clip's end),
            with ``start`` and ``end`` in seconds.
        names : clip names for the rows (default: the path, or ``clip<i>`` for arrays).

        Returns
        -------
        pd.DataFrame with columns ``clip`` [, ``start``, ``end``], the concepts, the targets
        (class targets: the predicted label) and, per class target, ``name=class``
        probabilities. Files that cannot be decoded are logged with their name and skipped;
        ``df.attrs["errors"]`` maps each to its message.
        """
        items = audio if isinstance(audio, (list, tuple)) else [audio]
        names = list(names) if names is not None else [
            str(a) if isinstance(a, (str, Path)) else f"clip{i}" for i, a in enumerate(items)]
        specs, kept, errors = [], [], {}
        for name, item in zip(names, items):
            try:
                arr = np.asarray(item) if not isinstance(item, (str, Path)) else None
                specs.append(torch.as_tensor(arr, dtype=torch.float32) if arr is not None
                             and arr.ndim == 2 else self.spectrogram(item))
                kept.append(name)
            except AudioError as exc:
                log.warning("skipping %s: %s", name, exc)
                errors[name] = str(exc)
        n_frames, hop_frames = self._window(hop)
        frames = []
        if specs:
            device = next(self.model.parameters()).device
            if hop is None:
                c, o = predict_specs(self.model, specs, n_frames, hop_frames, device=device,
                                     batch_size=batch_size)
                frames.append(self._table(c, o, pd.DataFrame({"clip": kept})))
            else:
                for name, spec, (starts, c, o) in zip(kept, specs, predict_specs(
                        self.model, specs, n_frames, hop_frames, device=device,
                        batch_size=batch_size, per_window=True)):
                    start = np.asarray(starts) / self.fps
                    end = np.minimum(start + n_frames / self.fps, spec.shape[1] / self.fps)
                    frames.append(self._table(c, o, pd.DataFrame(
                        {"clip": name, "start": start, "end": end})))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["clip", *self.concept_names, *self.target_names])
        out.attrs["errors"] = errors
        return out

    def _table(self, concepts: np.ndarray, outputs: np.ndarray, keys: pd.DataFrame) -> pd.DataFrame:
        layout = output_layout(self.targets)
        values = decode_targets(outputs, layout)
        cols = {name: concepts[:, j] for j, name in enumerate(self.concept_names)}
        for (j, kind, s), t in zip(layout, self.targets):
            if kind != "class":
                cols[t["name"]] = values[:, j]
                continue
            cols[t["name"]] = [t["classes"][int(k)] for k in values[:, j]]
            probs = torch.softmax(torch.as_tensor(outputs[:, s]), 1).numpy()
            for k, cls in enumerate(t["classes"]):
                cols[f"{t['name']}={cls}"] = probs[:, k]
        return pd.concat([keys, pd.DataFrame(cols)], axis=1)

    def evaluate(self, spec=None, *, root=None, splits=("test",), cache_dir=None,
                 progress: bool = False) -> pd.DataFrame:
        """Metrics on the spec's splits (default: the spec the run was trained on)."""
        return evaluate(self, spec, root=root, splits=splits, cache_dir=cache_dir,
                        progress=progress)


def load_run(path) -> Run:
    """Load a finished run directory (or a ``model.pt`` file)."""
    path = Path(path)
    file = path if path.suffix == ".pt" else path / MODEL_FILE
    if not file.is_file():
        hint = (" (training did not finish; continue it with --resume)"
                if (file.parent / STATE_FILE).is_file() else "")
        raise CheckpointError(f"{file}: no trained model{hint}")
    return Run(file.parent, load_checkpoint(file))


def evaluate(run, spec=None, *, root=None, splits=("test",), cache_dir=None,
             progress: bool = False) -> pd.DataFrame:
    """Metrics of a run on splits of a data spec (``midlevel evaluate``).

    ``spec`` defaults to the spec stored with the run; its concepts and targets must include
    the run's. Returns the tidy metrics table (split, kind, name, n, r, r2, rmse, mae,
    accuracy).
    """
    from midlevel.training import ddp
    run = run if isinstance(run, Run) else load_run(run)
    if spec is None:
        spec = run.info.get("data", {}).get("spec")
        if not spec:
            raise CheckpointError(f"{run.path}: no data spec stored with the run; pass --spec")
    spec, table = _spec_and_table(spec, root)
    missing = [c for c in run.concept_names + run.target_names if c not in table]
    if missing:
        raise TrainingError(f"spec '{spec.name}' lacks the run's column(s) {missing}")
    features, _ = _features(table, cache_dir, run.frontend, progress)
    n_frames, hop = run._window(None)
    ctx = ddp.Context()
    tables = []
    for split in splits:
        rows = table[table["split"] == split]
        if len(rows) == 0:
            raise TrainingError(f"split '{split}' of spec '{spec.name}' is empty")
        specs = [torch.as_tensor(np.asarray(features[c])) for c in rows.index]
        tables.append(evaluate_split(ctx, run.model, rows, specs, run.columns, split,
                                     n_frames, hop, run.config))
    return pd.concat(tables, ignore_index=True)


__all__ = ["Run", "TrainConfig", "evaluate", "format_table", "load_run", "train"]
