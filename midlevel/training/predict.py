"""Predictions of a model over windows of whole clips, in rating units."""
from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from midlevel.data.audio import audio_info
from midlevel.data.frontends import band_limit_note
from midlevel.data.inputs import as_array, is_path, item_spectrogram
from midlevel.errors import AudioError
from midlevel.models.bottleneck import ModelOutput, decode_targets, output_layout
from midlevel.training import ddp
from midlevel.training.data import crop, window_starts

log = logging.getLogger("midlevel")


@torch.no_grad()
def predict_specs(model, specs, n_frames: int, hop: int, *,
                  device: torch.device, batch_size: int = 16, amp: bool = False,
                  per_window: bool = False, progress: str | None = None):
    """Run ``model`` over windows of each spectrogram.

    ``specs`` : an iterable of ``(n_bands, n_frames)`` tensors or arrays, read once, in order
    (a list, a lazy :class:`~midlevel.data.stream.CachedSpecs` or a generator): one clip is
    held at a time. ``progress``: the label of a progress bar over the clips (None: none).

    Returns ``(concepts, outputs)`` in rating units, each ``(n_clips, n)`` (concepts
    ``(n_clips, 0)`` for a black box), the mean over a clip's windows; with ``per_window`` a
    list per clip of ``(starts, concepts (n_windows, n), outputs (n_windows, n))``.
    """
    model.eval()
    n_c, n_o = len(model.concept_names), len(model.output_names)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")
    c_parts, o_parts = [], []  # outputs per batch

    def run(batch: list[torch.Tensor]) -> None:
        x = torch.stack(batch).to(device)
        with autocast:
            out = model(x)
        out = model.unscale(ModelOutput(None if out.concepts is None else out.concepts.float(),
                                        out.targets.float()))
        c_parts.append(out.concepts.cpu().numpy() if out.concepts is not None
                       else np.zeros((len(x), n_c)))
        o_parts.append(out.targets.cpu().numpy())

    # clips are read one at a time and their windows cut one batch at a time (a clip's
    # windows are views of it until a batch stacks them), so memory holds a clip and a batch
    # of windows whatever the hop; batches run over the windows of consecutive clips
    pending: list[torch.Tensor] = []
    per_clip: list[tuple[list[int], slice]] = []  # each clip's starts and rows in the outputs
    n_windows = 0
    bar = tqdm(specs, desc=progress, unit="clip", leave=False, disable=progress is None,
               total=len(specs) if hasattr(specs, "__len__") else None)
    for spec in bar:
        spec = torch.as_tensor(spec)
        starts = window_starts(spec.shape[1], n_frames, hop)
        per_clip.append((starts, slice(n_windows, n_windows + len(starts))))
        n_windows += len(starts)
        for st in starts:
            pending.append(crop(spec, st, n_frames).unsqueeze(0))
            if len(pending) == batch_size:
                run(pending)
                pending = []
    if pending:
        run(pending)
    c_all = np.concatenate(c_parts).astype(np.float64) if c_parts else np.zeros((0, n_c))
    o_all = np.concatenate(o_parts).astype(np.float64) if o_parts else np.zeros((0, n_o))
    if per_window:
        return [(starts, c_all[rows], o_all[rows]) for starts, rows in per_clip]
    concepts = np.stack([c_all[rows].mean(0) for _, rows in per_clip]) if per_clip else c_all
    outputs = np.stack([o_all[rows].mean(0) for _, rows in per_clip]) if per_clip else o_all
    return concepts, outputs


def short_note(seconds: float, window: float) -> str:
    """The note of a clip of ``seconds`` shorter than the ``window`` (seconds)."""
    return f"{seconds:.2f} s, shorter than the {window:g}-s window: padded with silence"


class InputSpectrograms:
    """The spectrograms of a call's inputs (paths, waveform or spectrogram arrays: see
    ``Run.predict``), made one at a time as they are iterated, so that memory holds one input
    whatever their number. An input that cannot be used is logged by name and skipped
    (``errors``: name -> message); ``kept`` and ``seconds`` list the others as they are made;
    :meth:`warnings` gives each input's notes (shorter than the ``window`` of ``n_frames``
    frames; a sample rate that leaves bands of the front end empty)."""

    def __init__(self, items, names, *, frontend, fps: float, sample_rate, n_frames: int,
                 window: float, progress: bool = False):
        self.items, self.names, self.frontend, self.fps = items, names, frontend, fps
        self.sample_rate, self.n_frames, self.window = sample_rate, n_frames, window
        self.progress = progress
        self.kept, self.seconds, self.errors, self.notes = [], [], {}, {}

    def __iter__(self):
        bar = tqdm(self.items, desc="predict", unit="clip", leave=False,
                   disable=not self.progress)
        for name, item in zip(self.names, bar):
            try:
                spec, sec = item_spectrogram(item, str(name), frontend=self.frontend,
                                             fps=self.fps, sample_rate=self.sample_rate)
                rate = (audio_info(item).sample_rate if is_path(item) else  # a waveform's:
                        self.sample_rate if np.ndim(as_array(item, str(name))) == 1 else None)
            except AudioError as exc:
                # an error of the file starts with its name: said once
                log.warning("skipping %s: %s", name, str(exc).removeprefix(f"{name}: "))
                self.errors[name] = str(exc)
                continue
            self.kept.append(name)
            self.seconds.append(sec)
            if spec.shape[1] < self.n_frames:
                self.notes[name] = [short_note(sec, self.window)]
            note = (band_limit_note(rate, self.frontend)
                    if rate and self.frontend is not None else None)
            if note:
                self.notes.setdefault(name, []).append(note)
            yield spec

    def warnings(self) -> dict[str, str]:
        """name -> its notes joined by ``"; "``, for the inputs that have any."""
        return {name: "; ".join(self.notes[name]) for name in self.kept if name in self.notes}


def prediction_table(model, concepts: np.ndarray, outputs: np.ndarray,
                     keys: pd.DataFrame) -> pd.DataFrame:
    """``keys`` (one row per prediction) joined to the predictions of ``model`` as a user reads
    them: each concept; each target (class targets: the predicted label) and, per class
    target, ``name=class`` probabilities. ``concepts`` ``(n, n_concepts)`` and ``outputs``
    ``(n, n_outputs)`` as :func:`predict_specs` returns them."""
    layout = output_layout(model.targets)
    values = decode_targets(outputs, layout)
    cols = {name: concepts[:, j] for j, name in enumerate(model.concept_names)}
    for (j, kind, s), t in zip(layout, model.targets):
        if kind != "class":  # regression: the value; binary: the probability
            cols[t["name"]] = values[:, j]
            continue
        cols[t["name"]] = [t["classes"][int(k)] for k in values[:, j]]
        probs = torch.softmax(torch.as_tensor(outputs[:, s]), 1).numpy()
        for k, cls in enumerate(t["classes"]):
            cols[f"{t['name']}={cls}"] = probs[:, k]
    return pd.concat([keys, pd.DataFrame(cols)], axis=1)


def predict_sharded(ctx, model, specs, n_frames, hop, config, *, progress: str | None = None):
    """:func:`predict_specs` with the clips shared out over the processes (``progress``: a
    progress bar's label, shown by the main process)."""
    mine = list(range(ctx.rank, len(specs), ctx.world))
    own = specs.subset(mine) if hasattr(specs, "subset") else [specs[i] for i in mine]
    c, o = predict_specs(model, own, n_frames, hop, device=ctx.device,
                         batch_size=config.eval_batch_size, amp=config.amp,
                         progress=progress if ctx.main else None)
    n_c, n_o = len(model.concept_names), len(model.output_names)
    concepts, outputs = np.zeros((len(specs), n_c)), np.zeros((len(specs), n_o))
    for idx, cc, oo in ddp.gather(ctx, (mine, c.reshape(len(mine), n_c), o.reshape(len(mine), n_o))):
        concepts[idx], outputs[idx] = cc, oo
    return concepts, outputs


def log_split_notes(notes: dict[str, str], n_clips: int, split, where, warned: set, *,
                    window: float) -> None:
    """One warning for the notes of a dataset split's clips (``notes``: clip -> its note, as
    ``Run.predict`` lists them in ``df.attrs["warnings"]``; ``split``: a split, several, or
    None for all), instead of a line per clip: ``validate`` and ``train`` named those clips
    already, and a command explaining one file should not print one line per training clip
    (audit 11b #3). Once per ``split`` and ``warned`` set (a Run's); ``window``: the run's
    training window in seconds, which ``validate --window`` needs to list the same clips."""
    splits = ("all",) if split is None else (split,) if isinstance(split, str) else split
    if not notes or ("notes", tuple(splits)) in warned:
        return
    warned.add(("notes", tuple(splits)))
    first = ", ".join(list(notes)[:3]) + (", ..." if len(notes) > 3 else "")
    kinds = sorted({re.sub(r"^[\d.]+ s, ", "", part).split(":")[0]  # "shorter than ..."
                    for note in notes.values() for part in note.split("; ")})
    log.warning("%s: %d of %d %s clips have a note (%s): %s; `midlevel validate --window %g` "
                "lists them all", where, len(notes), n_clips, " and ".join(splits),
                "; ".join(kinds), first, window)
