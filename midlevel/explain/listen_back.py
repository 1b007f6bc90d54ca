"""Listen back to an explanation, and check that the audio still carries the evidence.

From a bin attribution map ``values`` ``(n_bands, n_frames)`` relative to a reference
(positive: the bin pushes ``f`` above ``f(reference)``), :func:`evidence_masks` selects the
bins that carry most of the evidence and splits them by sign:

- ``for``: selected bins with positive attribution (they raise the output above the
  reference's);
- ``against``: selected bins with negative attribution (they lower it);
- ``both``: ``for`` + ``against`` (all selected bins);
- ``complement``: the bins left out (weak or no evidence);
- ``clip``: every bin (a control: the whole clip through the same round trip).

The selection is the smallest set of bins, taken in decreasing ``|values|`` (ties kept
together), that holds ``mass`` of the total ``|values|`` (``mass=1``: every bin with
non-zero attribution).

Each part becomes audio through :func:`midlevel.explain.listen.masked_audio` (the band mask
mapped through the front end's filterbank to a soft STFT mask on the clip's own STFT, then
inverted), and the audio is **re-run through the front end and the model**. The model's
input for part ``P`` keeps the re-analysed audio's spectrogram inside the part and the
reference outside it (removal is to the reference, never to silence)::

    x_P = reference + (frontend(audio_P) - reference) * M_P

and its **share** of the clip's deviation from the reference is::

    share_P = (f(x_P) - f(reference)) / (f(x) - f(reference))

(NaN when ``|f(x) - f(reference)|`` is below ``min_span``). A share divides by that span:
where the span is below ``MIN_SPREAD_SHARE`` (5 %) of ``spread`` (the explained quantity's sd
over the test clips, when given: its ratings' sd, or ``f``'s own for a logit) the share is kept but ``readable`` is False and ``note`` says "span
too small to read a share" (a span of 0.005 rating points was printed as "keeps -2095 %").

The reference is the one the map's values are relative to. For most methods that is one
input (the training background's mean). SHAP's explainers and GradientShap decompose
``f(x) - mean_j f(b_j)`` over a background sample ``b_1..b_n`` instead, which differs from
``f(mean_j b_j)`` wherever ``f`` is not linear (by more than a clip's whole span on a small
model: audit 8a). For them ``reference`` is that sample ``(n, 1, n_bands, n_frames)``
(:meth:`midlevel.explain.attribution.Attributor.removal_reference`), and ``f(reference)``
and ``f(x_P)`` above are means over its inputs: ``f_ref`` is then the method's own
``expected``, and removal is to the background as SHAP's interventional expectation removes.

``share_spectrogram`` is the same with the mask applied to the spectrogram directly (``x``
instead of ``frontend(audio_P)``), i.e. what the part holds before any audio round trip; the
gap between the two is what is lost in turning the part into sound. For ``f`` linear in its
input, ``share_spectrogram`` of for + against + complement is exactly 1 and ``both`` equals
for + against; ``share`` approaches that as the round trip reproduces the clip's bins.
``clip``'s share is not 1 up to float error: an unmodified STFT inverts exactly (measured
4e-17), but the all-ones band mask maps to 0 on the FFT bins that feed no filterbank band
(below the first band, 0-22 Hz with the default front end, and the top bin; see
:func:`midlevel.explain.listen.bands_to_bins`), so the round trip removes them and the
window's leakage carries that into the lowest bands (up to 0.2 in log magnitude in band 0
of a synthetic clip). That moved ``f`` by about 1e-4 rating points: a share of 1.005 over a
span of 0.02, and 1.07 over a span of 0.0013.
Signs: for a clip above the reference a faithful map gives ``share_for > 0`` and
``share_against < 0``.

LIME's components as audio are :mod:`midlevel.explain.component_audio`. Every file is
written atomically (a temporary name in the same folder, then ``os.replace``).

The parts (or components) of a clip can peak above full scale; rather than clip them, all the
wavs of one call are multiplied by one common factor (:func:`common_gain`: at most 1, so
that the largest peak, the clip's own included, is at most 1), which keeps their relative
loudness; the tables written beside them give it in a ``gain`` column.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from midlevel.checks import real_number
from midlevel.explain.listen import masked_audio
from midlevel.io import write_csv, write_wav
from midlevel.explain.attribution.components import ComponentError

__all__ = ["PARTS", "MIN_SPREAD_SHARE", "evidence_masks", "listen_back", "listen_back_parts",
           "part_audio", "write_listen_back", "listen_back_csv", "share_note", "output_spread",
           "common_gain", "gain_for_peaks"]

PARTS = ("clip", "for", "against", "both", "complement")
MIN_SPREAD_SHARE = 0.05
"""The span ``|f(x) - f(reference)|`` below which a share is not read, as a fraction of the
explained quantity's sd over the test clips: a share divides by the span, and a span of a few thousandths
of a rating point turns float error and small changes into shares of -2000 %."""


# ------------------------------------------------------------------------------ masks


def _map(values) -> np.ndarray:
    v = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    v = np.asarray(v, dtype=np.float64)
    while v.ndim > 2 and v.shape[0] == 1:
        v = v[0]
    if v.ndim != 2:
        raise ComponentError(f"need one attribution map (n_bands, n_frames), got shape "
                             f"{np.shape(values)}")
    return v


def evidence_masks(values, *, mass: float = 0.9) -> dict[str, np.ndarray]:
    """0/1 band-frame masks of the parts (see the module docstring).

    Parameters
    ----------
    values : array [shape=(n_bands, n_frames)] (or with leading singletons): attribution
        relative to the reference.
    mass : float in (0, 1]: share of the total ``|values|`` the selected bins hold.

    Returns
    -------
    dict part -> np.ndarray [shape=(n_bands, n_frames), dtype=float64] for the parts in
    ``PARTS``; for, against and complement partition the bins.
    """
    mass = real_number(mass, "mass", above=0, most=1, error=ComponentError)
    v = _map(values)
    a = np.abs(v)
    total = a.sum()
    if total > 0:
        flat = np.sort(a.ravel())[::-1]
        cum = np.cumsum(flat)
        k = int(np.searchsorted(cum, mass * total * (1 - 1e-12)))
        threshold = flat[min(k, flat.size - 1)]
        selected = (a >= threshold) & (a > 0)
    else:
        selected = np.zeros_like(a, dtype=bool)
    out = {"clip": np.ones_like(v), "for": (selected & (v > 0)).astype(np.float64),
           "against": (selected & (v < 0)).astype(np.float64),
           "both": selected.astype(np.float64),
           "complement": (~selected).astype(np.float64)}
    return out


# ------------------------------------------------------------------------------ listen back


def _frontend(frontend):
    if isinstance(frontend, dict):
        from midlevel.data.frontends import make_frontend
        return make_frontend(frontend)
    return frontend


@torch.no_grad()
def listen_back(y: np.ndarray, values, f: nn.Module, frontend, *, reference,
                mass: float = 0.9, out_dir=None, clip: str = "clip", min_span: float = 1e-6,
                parts=PARTS, gain: float | None = None, spread: float | None = None
                ) -> pd.DataFrame:
    """Audio of the for / against / both / complement parts, re-run through front end and model.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)] the clip at the front end's sample rate; the map
        must be on ``frontend(y)`` (same bands and frames).
    values : array [shape=(n_bands, n_frames)] bin attribution relative to ``reference``
        (e.g. ``MethodResult.values[i, 0]``).
    f : nn.Module ``(n, 1, n_bands, n_frames) -> (n, 1)``.
    frontend : the front end module (or its ``config()``).
    reference : ``(1, 1, n_bands, n_frames)`` or broadcastable: the removal reference; or
        ``(n, 1, n_bands, n_frames)``: ``n`` references, ``f`` averaged over them (the
        background sample of a method whose values are relative to it; module docstring).
    mass : selection of the evidence bins (:func:`evidence_masks`).
    out_dir : if given, ``{clip}_{part}.wav`` for each part and ``{clip}_listen_back.csv``
        (this table) are written there, atomically (:func:`write_listen_back`).
    gain : factor every wav is multiplied by; None: :func:`common_gain` of ``y`` and the
        parts (the largest peak becomes at most 1, so no file is clipped, and the parts keep
        their loudness relative to each other and to the clip). Shares are measured on the
        parts at the clip's level: a wav divided by the table's ``gain`` is that audio (and
        the ``clip`` part's wav predicts as the clip, since every command peak-normalizes
        what it reads).
    spread : the explained quantity's sd over the test clips in ``f``'s units (a target's or
        concept's ratings, or ``f``'s own values for a logit), or None: where the span
        ``|f(x) - f(ref)|`` is below ``MIN_SPREAD_SHARE`` of it, ``readable`` is False
        (:func:`share_note`); without one, ``readable`` is None (not checked) and ``note``
        says so.

    Returns
    -------
    pd.DataFrame, one row per part: clip, part, area (share of the bins), share,
    share_spectrogram (definitions in the module docstring), f_part (``f(x_P)``), f_x,
    f_ref (in ``f``'s units: pass ``Attributor.rating_selector`` for those ``Run.predict``
    reports), peak (of the part's audio before ``gain``), gain, path (wav, or "" when not
    written), readable (False: the span is too small to read a share; None, "not checked",
    without a ``spread``), note (why, or "").
    """
    table, audio = listen_back_parts(y, values, f, frontend, reference=reference, mass=mass,
                                     clip=clip, min_span=min_span, parts=parts, spread=spread)
    if gain is None:
        gain = common_gain([y, *audio.values()])
    if out_dir is None:
        return table.assign(gain=float(gain))
    return write_listen_back(table, audio, out_dir, gain=gain,
                             sample_rate=_frontend(frontend).sample_rate)


@torch.no_grad()
def listen_back_parts(y: np.ndarray, values, f: nn.Module, frontend, *, reference,
                      mass: float = 0.9, clip: str = "clip", min_span: float = 1e-6,
                      parts=PARTS, spread: float | None = None
                      ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """What :func:`listen_back` measures, nothing written: its table (``gain`` NaN, ``path``
    "") and each part's audio ``{part: (n_samples,)}`` at the clip's level, for a caller that
    scales the wavs of several explanations by one factor (:func:`write_listen_back`)."""
    fe = _frontend(frontend)
    y = np.asarray(y, dtype=np.float64)
    x = fe(torch.as_tensor(y, dtype=torch.float32)).reshape(1, 1, fe.n_bands, -1)
    v = _map(values)
    if v.shape != tuple(x.shape[-2:]):
        raise ComponentError(f"attribution map of shape {v.shape}, the clip's spectrogram "
                             f"{tuple(x.shape[-2:])}")
    ref = torch.as_tensor(reference, dtype=x.dtype)
    while ref.ndim < 4:
        ref = ref.unsqueeze(0)
    ref = ref.expand(ref.shape[0], *x.shape[1:])  # (n_references, 1, n_bands, n_frames)
    f_x = float(f(x)[0, 0])
    f_ref = _mean_output(f, [ref])[0]
    span = f_x - f_ref
    note = share_note(span, spread)
    checked = spread is not None and np.isfinite(spread) and spread > 0
    if not checked:  # audit 22c: written readable=True when it could not be judged
        note = "not checked: no spread of the explained quantity over the test clips"
    masks = evidence_masks(v, mass=mass)
    audio = _part_audio(y, masks, fe, parts)
    rows = []
    for part in parts:
        m = masks[part]
        xa = fe(torch.as_tensor(audio[part], dtype=torch.float32)).reshape_as(x)
        mt = torch.as_tensor(m, dtype=x.dtype)
        out = _mean_output(f, [ref + (xa - ref) * mt, ref + (x - ref) * mt])
        ok = abs(span) >= min_span
        share = (float(out[0]) - f_ref) / span if ok else np.nan
        share_spec = (float(out[1]) - f_ref) / span if ok else np.nan
        rows.append({"clip": clip, "part": part, "area": float(m.mean()), "share": share,
                     "share_spectrogram": share_spec, "f_part": float(out[0]), "f_x": f_x,
                     "f_ref": f_ref, "peak": _peak(audio[part]), "gain": np.nan, "path": "",
                     "readable": (not note) if checked else None, "note": note})
    return pd.DataFrame(rows), audio


def part_audio(y: np.ndarray, values, frontend, *, mass: float = 0.9,
               parts=PARTS) -> dict[str, np.ndarray]:
    """The audio of each part, as :func:`listen_back_parts` makes it (the same masks of
    ``values``, the same round trip), without the model: for a caller that writes the wavs
    later and keeps only the table meanwhile (``{part: (n_samples,)}``)."""
    masks = evidence_masks(_map(values), mass=mass)
    return _part_audio(np.asarray(y, dtype=np.float64), masks, _frontend(frontend), parts)


def _part_audio(y: np.ndarray, masks: dict, fe, parts) -> dict[str, np.ndarray]:
    return {part: masked_audio(y, masks[part], fe)[0] for part in parts}


def _mean_output(f: nn.Module, groups, batch_size: int = 16) -> list[float]:
    """The mean of ``f`` over each group of inputs ``(n, 1, n_bands, n_frames)`` (one value
    per group; ``n`` is the number of references), in batches of ``batch_size``."""
    xs = torch.cat(groups)
    out = torch.cat([f(xs[a:a + batch_size])[:, 0] for a in range(0, len(xs), batch_size)])
    return [float(o.double().mean()) for o in out.split([len(g) for g in groups])]


def write_listen_back(table: pd.DataFrame, audio: dict, out_dir, *, gain: float,
                      sample_rate: int, labels: dict | None = None) -> pd.DataFrame:
    """Write each part of :func:`listen_back_parts` as ``{clip}_{part}.wav`` multiplied by
    ``gain``, and the table (with ``gain`` and each ``path``) as ``{clip}_listen_back.csv``
    in ``out_dir``, atomically; returns that table, each ``path`` as written. In the CSV,
    ``path`` is the wav's name (it lies beside the CSV, wherever the folder moves) and
    ``labels`` (for example the clip's own name, the method and the output, where ``clip``
    is a file stem made of them) replace or add columns."""
    table = table.copy()
    table["gain"] = float(gain)
    wavs = [Path(out_dir) / f"{clip}_{part}.wav" for clip, part in zip(table["clip"],
                                                                       table["part"])]
    csv = listen_back_csv(out_dir, table["clip"].iloc[0] if len(table) else "clip")
    table["path"] = [str(write_wav(path, gain * audio[part], sample_rate))
                     for path, part in zip(wavs, table["part"])]
    write_csv(table.assign(**(labels or {}), path=[w.name for w in wavs]), csv)
    return table


def listen_back_csv(out_dir, clip: str) -> Path:
    """The table :func:`write_listen_back` writes beside the wavs of ``clip`` in ``out_dir``
    (for a caller that records the files it wrote)."""
    return Path(out_dir) / f"{clip}_listen_back.csv"


def common_gain(waves) -> float:
    """The one factor for a set of waveforms that keeps them within [-1, 1] without clipping
    and keeps their relative loudness: ``min(1, 1 / largest peak)``.

    Parameters
    ----------
    waves : iterable of np.ndarray [shape=(n_samples,)]

    Returns
    -------
    float in (0, 1]
    """
    return gain_for_peaks([_peak(w) for w in waves])


def gain_for_peaks(peaks) -> float:
    """:func:`common_gain` of waveforms with these peak absolute values (e.g. a listen-back
    table's ``peak`` column and the clip's own), for a caller that no longer holds them."""
    peak = max((float(p) for p in peaks), default=0.0)
    return 1.0 if peak <= 1.0 else 1.0 / peak


def _peak(y) -> float:
    y = np.asarray(y)
    return float(np.max(np.abs(y))) if y.size else 0.0


def share_note(span: float, spread: float | None) -> str:
    """"" where a share over ``span = f(x) - f(ref)`` can be read, else why not: the span is
    below ``MIN_SPREAD_SHARE`` of ``spread`` (the explained quantity's sd over the test
    clips; None or not finite: no check)."""
    if spread is None or not np.isfinite(spread) or spread <= 0:
        return ""
    if abs(span) >= MIN_SPREAD_SHARE * spread:
        return ""
    return (f"span too small to read a share: |f(x) - f(ref)| = {abs(span):.3g} is below "
            f"{MIN_SPREAD_SHARE:.0%} of its sd over the test clips ({spread:.3g})")


@torch.no_grad()
def output_spread(run, f: nn.Module, data: dict, name: str, units: str, *,
                  limit: int = 64) -> tuple[float, str]:
    """How much the explained quantity varies between clips, in ``f``'s units (the ``spread``
    of :func:`listen_back`): ``(sd, of)`` over the run's test clips (validation clips when it
    has no test clip). A rating target or concept (``units == "rating"``) with ratings
    (column ``name``): the sd of its ratings (``of = "ratings"``); else (a logit, no ratings)
    the sd of ``f`` on the first ``limit`` clips, whole (``of = "model output"``). NaN with
    fewer than two values.

    ``run`` is a :class:`~midlevel.run.Run`; ``data``: its ``spec``, ``root`` and
    ``cache_dir`` (keywords of ``Run.data``). A MidlevelError or OSError when the run's data
    cannot be read.
    """
    table = run.annotations(data.get("spec"), root=data.get("root"))
    split = next((s for s in ("test", "validation") if (table["split"] == s).any()), None)
    if split is None:
        return np.nan, "model output"
    rows = table[table["split"] == split]
    if units == "rating" and name in rows:
        ratings = pd.to_numeric(rows[name], errors="coerce").dropna()
        if len(ratings) > 1:
            return float(ratings.std(ddof=1)), "ratings"
    _, specs = run.data(split, **data)
    values = [float(f(torch.as_tensor(np.asarray(s, dtype=np.float32))[None, None]))
              for s in specs[:limit]]
    return (float(np.std(values, ddof=1)) if len(values) > 1 else np.nan), "model output"
