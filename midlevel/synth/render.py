"""Additive-synthesis rendering of a clip's score into audio (voices, drums, drone, pad),
and a mid-clip concept change crossfaded in."""
from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from midlevel.errors import ArgumentError
from midlevel.synth.material import (
    MAX_PARTIAL_HZ, Material, PAD_LEVEL, Timbre, draw_material, peak_normalize,
)
from midlevel.synth.score import (
    Events, Harmony, chord_events, drum_slots, layer_onsets, make_harmony, melody_events,
    midi_to_hz, slot_times,
)
from midlevel.synth.tags import TAG_LAYERS
from midlevel.synth.world import MIDLEVEL_CONCEPTS


CROSSFADE_S = 0.04              # raised-cosine crossfade at a change


# --------------------------------------------------------------------------- rendering

@dataclass(frozen=True)
class _Voice:
    """How one tonal layer sounds: timbre, level, envelope and pitch modulation."""

    timbre: Timbre
    gain: float
    attack: float          # s
    decay: float           # s, time constant of the exponential decay
    stretch: float         # inharmonicity: partial k at k * sqrt(1 + stretch * k^2) * f0
    vibrato_depth: float   # relative frequency deviation
    vibrato_rate: float    # Hz


def _add_events(out: np.ndarray, activity: np.ndarray, events: Events, voice: _Voice,
                sample_rate: int) -> None:
    """Render ``events`` with additive synthesis into ``out`` (n_samples,), in place.

    Every event sums all its voices' partials, sliding linearly by ``events.glides``
    semitones over its sounding length; its envelope (linear attack, exponential decay, 20 ms
    release after the sounding length) is also added to ``activity``.
    """
    k = np.arange(1, len(voice.timbre.amps) + 1)
    ratios = k * np.sqrt(1.0 + voice.stretch * k ** 2)
    release = int(0.02 * sample_rate)
    longest = int((voice.attack + 6 * voice.decay) * sample_rate)
    glides = events.glides if events.glides is not None else np.zeros(len(events.onsets))
    for onset, length, f0s, glide in zip(events.onsets, events.lengths, events.freqs, glides):
        start = int(onset * sample_rate)
        n_sound = int(length * sample_rate)
        n = min(n_sound + release, longest, len(out) - start)
        if n < 2:  # cut off at the clip's end: too short to sound (or for np.gradient)
            continue
        t = np.arange(n) / sample_rate
        env = np.minimum(t / voice.attack, 1.0) * np.exp(-t / voice.decay)
        env *= np.clip(1.0 - (t - n_sound / sample_rate) / 0.02, 0.0, 1.0)
        phase = 2 * np.pi * (t + voice.vibrato_depth / (2 * np.pi * voice.vibrato_rate)
                             * (1.0 - np.cos(2 * np.pi * voice.vibrato_rate * t)))
        if glide != 0.0:                       # linear pitch slide over the sounding length
            ratio = 2.0 ** (glide * np.minimum(t / max(length, 0.05), 1.0) / 12.0)
            phase = 2 * np.pi * np.cumsum(ratio * np.gradient(phase) / (2 * np.pi))
        freqs = (f0s[f0s > 0][:, None] * ratios[None, :]).ravel()
        amps = np.tile(voice.timbre.amps, int((f0s > 0).sum()))
        keep = freqs < min(MAX_PARTIAL_HZ, 0.45 * sample_rate)
        partials = np.sin(np.outer(freqs[keep], phase).astype(np.float32))
        out[start:start + n] += voice.gain * env * (amps[keep].astype(np.float32) @ partials)
        activity[start:start + n] += voice.gain * env


def _drum_sounds(mat: Material) -> dict[str, np.ndarray]:
    """One-shot waveforms of kick, snare, hat and the pitched percussion layer."""
    sr = mat.sample_rate
    noise = mat.drum_noise
    t = np.arange(len(noise)) / sr
    hat_noise = peak_normalize(np.diff(noise, n=2, prepend=0.0, append=0.0)[: len(t)])
    kick_phase = 2 * np.pi * (50.0 * t + 100.0 * 0.03 * (1.0 - np.exp(-t / 0.03)))
    return {
        "kick": 0.25 * np.sin(kick_phase) * np.exp(-t / 0.12),
        "snare": (0.15 * noise * np.exp(-t / 0.06)
                  + 0.1 * np.sin(2 * np.pi * 190.0 * t) * np.exp(-t / 0.05)),
        "hat": 0.08 * hat_noise * np.exp(-t / 0.02),
        "perc": 0.15 * np.sin(2 * np.pi * mat.perc_pitch * t) * np.exp(-t / 0.04),
        "pulse": 0.3 * (np.sin(2 * np.pi * mat.pulse_pitch * t)
                        + 0.6 * np.sin(2 * np.pi * 1.5 * mat.pulse_pitch * t)) * np.exp(-t / 0.02),
    }


def _add_drums(out: np.ndarray, mat: Material, times: np.ndarray, c: dict[str, float],
               drums: bool = True) -> None:
    """Overlay the percussion one-shots at their (jittered) onsets, in place.

    Besides the drum layers of ``drum_slots`` (kick, snare, hat, perc; silent when not
    ``drums``), a pulse click sounds on every beat at level ``rhythm_stability`` (independent
    of the drum level).
    """
    sounds = _drum_sounds(mat)
    layers = drum_slots(mat, c["rhythm_complexity"]) if drums else {}
    layers["pulse"] = np.arange(0, len(mat.u_kick) - 4, 4)        # every beat
    for layer, slots in layers.items():
        level = c["rhythm_stability"] if layer == "pulse" else mat.levels["drums"]
        sound = (level * sounds[layer]).astype(np.float32)
        onsets = layer_onsets(mat, times, c["rhythm_stability"], layer, slots)
        for start in (onsets * mat.sample_rate).astype(int):
            n = min(len(sound), len(out) - start)
            if n > 0:
                out[start:start + n] += sound[:n]


def _add_drone(out: np.ndarray, mat: Material, harmony: Harmony, stability: float) -> None:
    """Add a sustained pedal on the tonic (C2-B2) and its fifth, level ``0.15 stability``."""
    if stability <= 0.0:
        return
    sr = mat.sample_rate
    t = np.arange(len(out)) / sr
    span = np.minimum((t / (8 * mat.step_s)).astype(int), len(harmony.tonics) - 1)
    f0 = midi_to_hz(36 + harmony.tonics[span])
    phase = 2 * np.pi * np.cumsum(f0) / sr
    amps = mat.timbres["bass"].amps
    drone = np.zeros(len(out))
    for ratio in (1.0, 1.5):
        for k, a in enumerate(amps, start=1):
            drone += a * np.sin(k * ratio * phase)
    fade = np.minimum(t / 0.05, 1.0)
    out += (0.15 * stability * fade * drone).astype(np.float32)


def _add_pad(out: np.ndarray, mat: Material, harmony: Harmony) -> None:
    """Add a sustained chord pad that spells each span's chord quality, in place.

    Voicing: root (C4-B4), third, fifth and the third doubled an octave up (up to ~1.2 kHz),
    near-sine timbre (fundamental plus a weak octave), constant level independent of all
    other concepts: a minor chord puts its thirds 3 semitones above the root, a major chord 4,
    so the share of minor chords is visible as a steady interval pattern throughout the clip.
    """
    sr = mat.sample_rate
    t = np.arange(len(out)) / sr
    span = np.minimum((t / (8 * mat.step_s)).astype(int), len(harmony.roots) - 1)
    root = 60 + harmony.roots[span]
    third = np.where(harmony.minor[span], 3, 4)
    pad = np.zeros(len(out))
    for offset, weight in ((0, 0.8), (third, 1.0), (7, 0.8), (12 + third, 1.0)):
        phase = 2 * np.pi * np.cumsum(midi_to_hz(root + offset)) / sr
        pad += weight * (np.sin(phase) + 0.25 * np.sin(2 * phase))
    fade = np.minimum(t / 0.05, 1.0)
    out += (PAD_LEVEL * fade * pad).astype(np.float32)


def _render(mat: Material, c: dict[str, float], layers: dict[str, bool] | None = None,
            ) -> np.ndarray:
    """Render one clip with constant concept values ``c``: (n_samples,) float32, unnormalized.

    ``layers``: which of ``TAG_LAYERS`` sound (default all); an absent family is silent, and
    every random draw is made as before (the material is drawn up front)."""
    on = {name: True for name in TAG_LAYERS} | dict(layers or {})
    sr = mat.sample_rate
    art, diss = c["articulation"], c["dissonance"]
    attack = 0.03 + (0.004 - 0.03) * art
    decay = math.exp(math.log(1.5) + (math.log(0.05) - math.log(1.5)) * art)
    stretch = 0.004 * diss
    times = slot_times(mat, c["rhythm_stability"])
    harmony = make_harmony(mat, c)
    chords, bass = chord_events(mat, harmony, times, c)
    melody = melody_events(mat, harmony, times, c)
    mel = c["melodiousness"]
    voices = {
        "chords": _Voice(mat.timbres["chords"], 0.12 * mat.levels["chords"], attack, decay,
                         stretch, 0.0, 1.0),
        "bass": _Voice(mat.timbres["bass"], 0.35 * mat.levels["bass"], attack, decay,
                       stretch, 0.0, 1.0),
        "melody": _Voice(mat.timbres["melody"], 0.7 * (0.05 + 0.95 * mel) * mat.levels["melody"],
                         attack, decay, stretch, 0.025 * mel, mat.vibrato_rate),
    }
    out = np.zeros(mat.n_samples, dtype=np.float32)
    activity = np.zeros(mat.n_samples, dtype=np.float32)
    for name, events in (("chords", chords), ("bass", bass), ("melody", melody)):
        if name != "melody" or on["melody"]:
            _add_events(out, activity, events, voices[name], sr)
    out += 0.6 * diss * activity * mat.noise                     # noisy (breathy) timbre
    if on["drone"]:
        _add_drone(out, mat, harmony, c["tonal_stability"])
    if on["pad"]:
        _add_pad(out, mat, harmony)
    _add_drums(out, mat, times, c, drums=on["drums"])
    return out


def _check_concepts(concepts: dict[str, float]) -> dict[str, float]:
    """Concept values as floats; all seven required, each in [0, 1]."""
    missing = [k for k in MIDLEVEL_CONCEPTS if k not in concepts]
    unknown = [k for k in concepts if k not in MIDLEVEL_CONCEPTS]
    if missing or unknown:
        raise ArgumentError(f"concepts: missing {missing}, unknown {unknown}")
    values = {k: float(concepts[k]) for k in MIDLEVEL_CONCEPTS}
    outside = {k: v for k, v in values.items() if not 0.0 <= v <= 1.0}
    if outside:
        raise ArgumentError(f"concept values must lie in [0, 1], got {outside}")
    return values


def render_clip(mat: Material, concepts: dict[str, float],
                 change: tuple[str, float] | None,
                 layers: dict[str, bool] | None = None, *,
                 change_time: float | None = None) -> np.ndarray:
    """Render a clip, crossfading to the changed concept value at ``change_time`` seconds
    (default ``duration / 2``; it must lie inside the clip).

    ``layers``: which layer families of ``TAG_LAYERS`` sound (default all; unknown names are
    an ArgumentError). Returns (n_samples,) float32 peak-normalized to 0.9.
    """
    first = _check_concepts(concepts)
    unknown = sorted(set(layers or {}) - set(TAG_LAYERS))
    if unknown:
        raise ArgumentError(f"layers: unknown {unknown}; layer families are {list(TAG_LAYERS)}")
    at = mat.duration / 2 if change_time is None else float(change_time)
    if change is not None and not 0.0 < at < mat.duration:
        raise ArgumentError(f"change_time {at:g} s lies outside the clip (0 to "
                            f"{mat.duration:g} s)")
    wave = _render(mat, first, layers)
    if change is not None:
        name, value = change
        second = _check_concepts({**first, name: value})
        t = np.arange(mat.n_samples) / mat.sample_rate - at
        fade = 0.5 * (1 + np.sin(np.pi * np.clip(t / CROSSFADE_S, -0.5, 0.5)))
        wave = (1 - fade) * wave + fade * _render(mat, second, layers)
    return peak_normalize(wave, 0.9)


def synthesize_clip(concepts: dict[str, float], *, duration: float = 10.0,
                    sample_rate: int = 22050, rng: np.random.Generator,
                    change: tuple[str, float] | None = None,
                    change_time: float | None = None) -> np.ndarray:
    """Synthesize one clip from its seven concept values.

    Parameters
    ----------
    concepts : dict
        A value in [0, 1] for every name in ``MIDLEVEL_CONCEPTS``.
    duration, sample_rate : float, int
        Length in seconds and sampling rate in Hz.
    rng : np.random.Generator
        Source of all nuisance randomness (key, tempo, timbres, note-level draws). The number
        of draws does not depend on ``concepts``, so equal generators give clips that differ
        only through the concept values.
    change : (concept name, new value) or None
        Switch that concept to ``new value`` at ``change_time`` (default ``duration / 2``;
        40 ms crossfade).

    Returns
    -------
    np.ndarray [shape=(round(duration * sample_rate),)], float32 mono, peak 0.9.
    """
    return render_clip(draw_material(rng, duration, sample_rate), concepts, change,
                       change_time=change_time)
