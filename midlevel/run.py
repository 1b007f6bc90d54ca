"""A trained run: its data, its predictions. Its checkpoint files are written and read by
:mod:`midlevel.training.checkpoint`.

A run directory ``RUN`` holds:

- ``config.yaml``: the training configuration and where the data came from;
- ``checkpoint.pt``: the state after the last completed epoch (model, optimizer, early-stopping
  state, history), rewritten atomically after every epoch, for ``--resume``;
- ``model.pt``: the final model, written when training ends. It is self-describing: model kind
  and constructor arguments, state, concept and target names and scales, front-end config,
  training config, package and torch versions, the data spec and roots (the main one and
  each named one) it was trained on, the design a closed-form head was fitted on, and its
  final metrics (``Run.metrics``: the numbers of these weights, whatever ``metrics.csv``
  beside it holds while a retraining of the folder writes it);
- ``splits.csv`` (each clip's split at training, :mod:`midlevel.training.datarecord`),
  ``history.csv``, ``metrics.csv``, ``train.log``; ``predictions/`` (kept for later commands).

:class:`Run` is what every later step uses: ``run.data(split)`` (the run's own clips, from the
spec and roots it was trained with, in the splits it was trained on), ``run.background(n)``,
``run.predict(audio, hop=...)``, ``run.predictions(split)``, ``run.evaluate()``.
"""
from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from midlevel.checks import real_number
from midlevel.data.inputs import batch_items, item_names, item_spectrogram, item_waveform
from midlevel.data.stream import CachedSpecs
from midlevel.errors import ArgumentError, AudioError, CheckpointError, TrainingError
from midlevel.models.bottleneck import build_model
from midlevel.models.layout import place
from midlevel.training.checkpoint import (  # noqa: F401  (re-exported: the run's files)
    CONFIG_FILE, FORMAT, MODEL_FILE, RUN_FILES, STATE_FILE, cpu_state, mend_metrics_file,
    read_checkpoint, warn_if_older, write_model, write_state)
from midlevel.data.frontends import window_frames
from midlevel.training.config import TrainConfig
from midlevel.training.data import Columns, fit_crop
from midlevel.training.audio_splits import own_clips, splits_by_audio, splits_by_id
from midlevel.training.datarecord import in_run_class_order, trained_spec
from midlevel.training.predict import (InputSpectrograms, log_split_notes, predict_specs,
                                       prediction_table, short_note)
from midlevel.training.stored_predictions import (load_predictions, prediction_key,
                                                  save_predictions)

log = logging.getLogger("midlevel")

# ----------------------------------------------------------------------------- the run


class Run:
    """A trained model with everything needed to use it (see :func:`load_run`).

    Attributes
    ----------
    path : Path of the run directory.
    model : the ``ConceptBottleneck`` or ``BlackBox`` (eval mode, CPU, conv weights
        channels-last: :func:`midlevel.models.place`).
    mode : training mode. config : TrainConfig. frontend : front-end config dict. fps : float.
    concept_names, target_names : list[str]. targets : list of target dicts (kind, classes).
    info : the whole stored checkpoint minus the weights.
    """

    def __init__(self, path: Path, ckpt: dict):
        self.path = path
        self.info = {k: v for k, v in ckpt.items() if k != "state_dict"}
        args = ckpt["init_args"]
        with torch.random.fork_rng(devices=[]):  # the initial weights, replaced below, draw
            self.model = build_model(                # from a generator of their own
                ckpt["kind"], args["concepts"], args["targets"], args["backbone"],
                concept_kinds=args.get("concept_kinds"),
                concept_groups=args.get("concept_groups"))
        self.model.load_state_dict(ckpt["state_dict"])
        place(self.model, "cpu").eval()
        self.mode = ckpt["mode"]
        self.config = TrainConfig.from_stored(ckpt["config"])
        if not warn_if_older(path / MODEL_FILE, ckpt):  # no BatchNorm re-estimation
            self.config.recalibrate_bn = False
        self.frontend = ckpt["frontend"]
        self.fps = float(ckpt["fps"])
        self.concept_names = list(self.model.concept_names)
        self.targets = self.model.targets
        self.target_names = list(self.model.target_names)
        self._frontend_module, self._warned, self._own_table = None, set(), None

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, mode={self.mode!r}, concepts={self.concept_names}, "
                f"targets={self.target_names})")

    @property
    def columns(self) -> Columns:
        return Columns(self.concept_names, self.targets, self.model.concept_kinds,
                       self.model.concept_groups)

    @property
    def is_bottleneck(self) -> bool:
        return self.model.kind == "bottleneck" and bool(self.concept_names)

    @property
    def metrics(self) -> pd.DataFrame:
        """The metrics of the model loaded, from the end of its training: those stored with
        its weights in ``model.pt`` (``RUN/metrics.csv`` for a run written before they
        were; a later retraining of the folder does not change a loaded Run's numbers)."""
        stored = self.info.get("metrics_csv")  # the text metrics.csv was written with
        path = self.path / "metrics.csv"
        if stored is None and not path.is_file():
            raise CheckpointError(f"{path}: missing; this run's model.pt was written before runs "
                                  f"kept their metrics in it. `midlevel evaluate {self.path}` "
                                  f"(or Run.evaluate()) computes them again")
        return pd.read_csv(io.StringIO(stored) if stored is not None else path)

    @property
    def head_design(self) -> pd.DataFrame | None:
        """The (X, Y) a closed-form head was fitted on: index clip, concepts then targets, in
        the model's z-scored units (independent and sequential modes; None otherwise)."""
        from midlevel.training.head import design_frame
        design = self.info.get("head_design")
        return None if design is None else design_frame(design, self.concept_names, self.targets)

    def window(self, hop: float | None = None) -> tuple[int, int]:
        """``(n_frames, hop_frames)`` of the run's windows (the training crop), one every
        ``hop`` seconds (default: the run's evaluation hop); a hop that is not a finite number
        of seconds > 0, or that rounds to no frame, is refused (ArgumentError)."""
        n_frames = window_frames(self.config.crop_seconds, self.fps)
        hop = real_number(hop, "hop", above=0, unit="seconds", allow_none=True)
        if hop is not None and int(round(hop * self.fps)) < 1:  # would silently be one frame
            raise ArgumentError(f"hop (--hop) {hop!r} s is shorter than one frame "
                                f"({1 / self.fps:.3g} s at {self.fps:g} frames per second)")
        seconds = hop or self.config.eval_hop_seconds or self.config.crop_seconds
        return n_frames, max(1, int(round(seconds * self.fps)))

    # ------------------------------------------------------------------------- data

    def spec(self, spec=None, *, root=None):
        """The data spec: ``spec`` (path or DataSpec) or the one the run was trained on, with
        the roots it was trained with (the main root and every named one) except those that
        ``root`` (``"DIR"`` / ``"NAME=DIR"``, or a list) replaces."""
        from midlevel.data.spec import DataSpec, load_spec
        if spec is not None:
            return spec if isinstance(spec, DataSpec) else load_spec(spec, root=root)
        stored = self.info.get("data") or {}
        if not stored.get("spec"):
            raise CheckpointError(f"{self.path}: no data spec stored with the run; pass "
                                  f"the spec (--spec)")
        return trained_spec(stored, root, where=self.path)

    def annotations(self, spec=None, *, root=None) -> pd.DataFrame:
        """The annotations table of :meth:`spec`; every clip in the split its audio had at
        training (:func:`midlevel.training.audio_splits.splits_by_audio`: the bytes' SHA-1 in
        ``RUN/splits.csv``, on any spec). A run that stored no audio keys matches by id
        (:func:`midlevel.training.datarecord.use_stored_splits`): on the run's own spec file,
        every clip the run stored; on another spec, those with the id and the audio file of
        a clip of the run's own spec."""
        from midlevel.data.annotations import load_annotations
        loaded = self.spec(spec, root=root)
        own = (self.info.get("data") or {}).get("spec")
        table = in_run_class_order(load_annotations(loaded), self.targets, where=loaded.path)
        mine = own and loaded.path and Path(loaded.path).resolve() == Path(own).resolve()
        where = self.path if mine else f"{self.path} ({loaded.path})"
        if splits_by_audio(table, self.path, where=where, warned=self._warned) is not None \
                or not own:
            return table
        if self._own_table is None and not mine:  # read once per Run (several splits)
            self._own_table = own_clips(self)
        return splits_by_id(table, self.path, mine=bool(mine), own=self._own_table,
                            where=where, warned=self._warned)

    def data(self, split=None, *, spec=None, root=None, cache_dir=None,
             progress: bool = False) -> tuple[pd.DataFrame, CachedSpecs]:
        """The clips of ``split`` (a split's name, several, or None = all) with their
        spectrograms from the feature cache (filled as needed, this run's front end).

        Returns
        -------
        rows : annotations rows (index clip)
        specs : :class:`~midlevel.data.stream.CachedSpecs`, a list-like of np.ndarray
            [shape=(n_bands, n_frames)] in the order of ``rows``, each read from the cache when
            indexed (a split of any size costs one clip's memory; ``list(specs)`` loads all)
        """
        from midlevel.data.cache import FeatureCache
        from midlevel.data.spec import SPLITS
        wanted = [split] if split is None or isinstance(split, str) or \
            np.ndim(split) == 0 else [str(s) for s in split]  # a list, an array, an Index
        unknown = [] if split is None else [s for s in wanted if s not in SPLITS]
        if unknown:
            raise ArgumentError(f"unknown split {', '.join(map(repr, unknown))}: a split is "
                                f"one of {', '.join(SPLITS)}")
        table = self.annotations(spec, root=root)
        rows = table if split is None else table[table["split"].isin(wanted)]
        if len(rows) == 0:
            raise TrainingError(f"split {split!r} of the run's data is empty")
        cache = FeatureCache(cache_dir, self.frontend)
        cache.fill(rows["path"], progress=progress)
        return rows, CachedSpecs(cache, rows["path"])

    def background(self, n: int = 16, *, n_frames: int | None = None, seed: int = 0,
                   spec=None, root=None, cache_dir=None) -> torch.Tensor:
        """Random crops of ``n_frames`` (default the training crop) from ``n`` random training
        clips: ``(n, 1, n_bands, n_frames)`` raw front-end output (the attribution reference).
        A clip shorter than the crop is padded with silence (zeros), as training and
        ``predict`` pad it (it was looped: a reference of audio the model never heard)."""
        rows, _ = self.data("train", spec=spec, root=root, cache_dir=cache_dir)
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
        from midlevel.data.cache import FeatureCache
        cache = FeatureCache(cache_dir, self.frontend)
        n_frames = n_frames or self.window()[0]
        out = []
        for k in range(n):
            s = torch.as_tensor(np.asarray(cache.get(rows["path"].iloc[picks[k % len(picks)]])),
                                dtype=torch.float32)
            start = int(rng.integers(0, max(0, s.shape[-1] - n_frames) + 1))
            out.append(fit_crop(s[:, start:start + n_frames], n_frames))
        return torch.stack(out).unsqueeze(1)

    def predictions(self, split="train", *, spec=None, root=None, cache_dir=None,
                    progress: bool = False) -> pd.DataFrame:
        """Whole-clip predictions on ``split`` with the true values, computed once per model
        and clips and kept in ``RUN/predictions/`` (:mod:`midlevel.training.stored_predictions`).

        Returns
        -------
        pd.DataFrame [index=clip]: predicted concepts and targets under their names (see
        :meth:`predict`), the true values as ``true:<name>``, and ``split``.
        """
        rows, specs = self.data(split, spec=spec, root=root, cache_dir=cache_dir,
                                progress=progress)
        batch = 16  # Run.predict's default, part of the stored table's key
        key = prediction_key(self, rows, specs, batch_size=batch)
        pred = load_predictions(self, split, key)  # computed once per model and clips
        if pred is None:
            pred = self.predict(specs, names=list(rows.index), log_notes=False,
                                batch_size=batch, progress=progress)
            save_predictions(self, split, key, pred)
        log_split_notes(pred.attrs["warnings"], len(rows), split, self.path, self._warned,
                        window=self.config.crop_seconds)
        pred = pred.set_index("clip")
        for name in self.concept_names + self.target_names:
            if name in rows:
                pred[f"true:{name}"] = rows[name].to_numpy(np.float64)
        pred["split"] = rows["split"].to_numpy()
        return pred

    # ------------------------------------------------------------------------- prediction

    @property
    def frontend_module(self):
        """The run's front end (built once); None when the run stores none (trained by
        ``fit`` on features given directly: it takes spectrograms only)."""
        from midlevel.data.frontends import make_frontend
        if self._frontend_module is None and self.frontend is not None:
            self._frontend_module = make_frontend(self.frontend).eval()
        return self._frontend_module

    def waveform(self, audio, *, sample_rate: float | None = None,
                 name: str = "waveform") -> np.ndarray:
        """A path (decoded at its own rate) or a mono waveform array ``(n_samples,)`` at
        ``sample_rate`` Hz (default: the front end's) of floats or PCM integers (``int16 /
        32768``; see :mod:`midlevel.data.inputs`), prepared as commands prepare a file: at the
        front end's rate, DC offset removed, peak-normalized; ``(n_samples,)`` float32.
        :class:`AudioError` naming it (``name``) when empty, NaN, silent or not mono."""
        return item_waveform(audio, name, frontend=self.frontend_module,
                             sample_rate=sample_rate)

    def spectrogram(self, audio, *, sample_rate: float | None = None,
                    name: str = "audio") -> torch.Tensor:
        """A path, a waveform (see :meth:`waveform`) or a spectrogram array ``(n_bands,
        n_frames)`` (checked against the front end) -> ``(n_bands, n_frames)``."""
        return item_spectrogram(audio, name, frontend=self.frontend_module, fps=self.fps,
                                sample_rate=sample_rate)[0]

    def predict(self, audio, *, hop: float | None = None, names=None, log_notes: bool = True,
                sample_rate: float | None = None, batch_size: int = 16,
                progress: bool = False) -> pd.DataFrame:
        """Concept and target predictions in rating units.

        Parameters
        ----------
        audio : a path, a mono waveform array ``(n_samples,)`` (floats, or PCM integers
            scaled by their full range: ``int16 / 32768``), a spectrogram ``(n_bands,
            n_frames)`` with the front end's ``n_bands``, or a list of these. A waveform goes
            through what a file does (DC removal, peak normalization, silence and NaN
            refused); any other 2-D array (a stereo waveform: mix it down first) is refused.
        hop : None: one row per clip (mean over windows). Seconds: one row per window of
            ``crop_seconds`` every ``hop`` seconds (the last window ends at the clip's end),
            with ``start`` and ``end`` in seconds (``end`` at most the audio's duration); a hop
            that is not a finite number > 0 is refused (ArgumentError), before any audio is read.
        names : one clip name per input, all different (ArgumentError otherwise; default:
            the path, or ``clip<i>`` for arrays).
        sample_rate : the waveform arrays' rate in Hz (default: the front end's), resampled
            as files are; files are read at their own rate.
        progress : a progress bar over the inputs. They are read, cut into windows and
            predicted one at a time (memory holds one clip, not the batch of inputs).

        Returns
        -------
        pd.DataFrame with columns ``clip`` [, ``start``, ``end``], the concepts, the targets
        (class targets: the predicted label) and, per class target, ``name=class``
        probabilities. Inputs that cannot be used (an undecodable or silent file; an empty,
        silent, NaN or mis-shaped array) are logged with their name and skipped;
        ``df.attrs["errors"]`` maps each to its message; clips shorter than the window and
        files recorded at a rate that leaves bands of the front end empty are logged as
        warnings (a line per clip; with ``log_notes=False`` not logged) and listed in
        ``df.attrs["warnings"]``.
        """
        items = batch_items(audio)
        names = item_names(items, names)
        n_frames, hop_frames = self.window(hop)  # a hop that cannot be used is refused first
        sample_rate = real_number(sample_rate, "sample_rate", above=0, unit="Hz",
                                  allow_none=True)
        inputs = InputSpectrograms(items, names, frontend=self.frontend_module, fps=self.fps,
                                   sample_rate=sample_rate, n_frames=n_frames,
                                   window=self.config.crop_seconds, progress=progress)
        device = next(self.model.parameters()).device
        result = predict_specs(self.model, inputs, n_frames, hop_frames, device=device,
                               batch_size=batch_size, per_window=hop is not None)
        kept, frames = inputs.kept, []
        if hop is None and kept:
            frames.append(prediction_table(self.model, *result, pd.DataFrame({"clip": kept})))
        for name, sec, (starts, c, o) in zip(kept, inputs.seconds,
                                             result if hop is not None else ()):
            start = np.asarray(starts) / self.fps
            end = np.minimum(start + n_frames / self.fps, round(sec, 6))  # the audio's end
            keys = pd.DataFrame({"clip": name, "start": start.round(6), "end": end.round(6)})
            frames.append(prediction_table(self.model, c, o, keys))
        errors, warnings = inputs.errors, inputs.warnings()
        for name, note in warnings.items() if log_notes else ():
            log.warning("%s: %s", name, note)
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            columns=["clip", *self.concept_names, *self.target_names])
        out.attrs["errors"] = errors
        out.attrs["warnings"] = warnings
        return out

    def evaluate(self, spec=None, *, root=None, splits=("test",), cache_dir=None,
                 progress: bool = False, threshold: float = 0.5) -> pd.DataFrame:
        """Metrics on the spec's splits (default: the spec and root the run was trained on);
        the tidy table of :func:`midlevel.training.metrics.metrics_table` (``threshold``: of
        the binary columns' F1 and accuracy)."""
        from midlevel.training.ddp import Context
        from midlevel.training.evaluation import evaluate_split, say_unrated
        table = self.annotations(spec, root=root)
        missing = [c for c in self.concept_names + self.target_names if c not in table]
        if missing:
            raise TrainingError(f"the data spec lacks the run's column(s) {missing}")
        n_frames, hop = self.window()
        from midlevel.training.segment_check import scored_clip_level_note
        note = scored_clip_level_note(table)
        if note and ("segments", "evaluate") not in self._warned:
            self._warned.add(("segments", "evaluate"))
            log.info("%s: %s", self.path, note)
        tables = []
        for split in splits:
            rows, specs = self.data(split, spec=spec, root=root, cache_dir=cache_dir,
                                    progress=progress)
            short = {clip: short_note(n / self.fps, self.config.crop_seconds)
                     for clip, n in zip(rows.index, specs.n_frames()) if n < n_frames}
            log_split_notes(short, len(rows), split, self.path, self._warned,
                            window=self.config.crop_seconds)
            tables.append(evaluate_split(Context(), self.model, rows, specs, self.columns,
                                         split, n_frames, hop, self.config,
                                         threshold=threshold, progress=progress))
            say_unrated(tables[-1], f"{self.path}: the {split} split ({len(rows)} clips)")
        return pd.concat(tables, ignore_index=True)


def load_run(path) -> Run:
    """Load a finished run directory (or a ``model.pt`` file); a loaded run (anything that is
    not a path) is returned as it is."""
    if not isinstance(path, (str, os.PathLike)):
        return path
    path = Path(path)
    what = ("a run directory (the folder `midlevel train ... --out RUN` writes) or its "
            f"{MODEL_FILE}")
    if path.is_file() and path.suffix != ".pt":
        raise CheckpointError(f"{path} is a file, not {what}")
    file = path if path.suffix == ".pt" and not path.is_dir() else path / MODEL_FILE
    if not file.is_file():
        from midlevel.io import LOCK_FILE, lock_held
        if lock_held(file.parent):
            hint = f" yet: a training holds {file.parent / LOCK_FILE}; wait for it to end"
        elif (file.parent / STATE_FILE).is_file():
            hint = " (training did not finish; continue it with --resume)"
        elif (file.parent / ".midlevel_replaced" / MODEL_FILE).is_file():  # audit 22d F4
            hint = (f": an --overwrite stopped here before its first epoch; the run it was "
                    f"replacing is in {file.parent / '.midlevel_replaced'} and comes back "
                    f"with the next `midlevel train ... --out {file.parent}`")
        elif path.is_dir():
            hint = f": {path} is not {what}"
        else:
            hint = ""
        raise CheckpointError(f"{file}: no trained model{hint}")
    mend_metrics_file(file.parent, ckpt := read_checkpoint(file))
    return Run(file.parent, ckpt)
