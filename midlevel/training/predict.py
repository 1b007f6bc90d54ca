"""Predictions of a model over windows of whole clips, in rating units."""
from __future__ import annotations

import logging
import re

import numpy as np
import torch

from midlevel.models.bottleneck import ModelOutput
from midlevel.training import ddp
from midlevel.training.data import crop, window_starts

log = logging.getLogger("midlevel")


@torch.no_grad()
def predict_specs(model, specs: list[torch.Tensor], n_frames: int, hop: int, *,
                  device: torch.device, batch_size: int = 16, amp: bool = False,
                  per_window: bool = False):
    """Run ``model`` over windows of each spectrogram.

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
    for i in range(len(specs)):
        spec = specs[i]
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
    concepts = np.stack([c_all[rows].mean(0) for _, rows in per_clip]) if len(specs) else c_all
    outputs = np.stack([o_all[rows].mean(0) for _, rows in per_clip]) if len(specs) else o_all
    return concepts, outputs


def predict_sharded(ctx, model, specs, n_frames, hop, config):
    """:func:`predict_specs` with the clips shared out over the processes."""
    mine = list(range(ctx.rank, len(specs), ctx.world))
    own = specs.subset(mine) if hasattr(specs, "subset") else [specs[i] for i in mine]
    c, o = predict_specs(model, own, n_frames, hop, device=ctx.device,
                         batch_size=config.eval_batch_size, amp=config.amp)
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
