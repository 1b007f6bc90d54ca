"""Every random draw of a clip (its "material"), made before any concept value is looked at:
key, tempo, timbres, levels and the note-level uniforms ("common random numbers")."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal


MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
_PROGRESSIONS = np.array([[0, 7, 9, 5], [0, 5, 7, 0], [0, 9, 5, 7], [0, 5, 9, 7]])
_MODULATIONS = np.array([-7, -5, -2, -1, 1, 2, 5, 7])
LAYERS = ("melody", "chords", "bass", "kick", "snare", "hat", "perc", "pulse")
MAX_PARTIAL_HZ = 10000.0
PAD_LEVEL = 0.015       # amplitude per pad voice (chord-quality pad, see add_pad)


# --------------------------------------------------------------------------- random material

@dataclass(frozen=True)
class Timbre:
    """Partial amplitudes ``amps`` (n_partials,) of one instrument, summing to 1."""

    amps: np.ndarray


@dataclass(frozen=True)
class Material:
    """Every random draw of one clip, made before any concept value is looked at.

    Per-span arrays have shape (n_spans,) (one span = 2 beats = one chord); per-slot arrays
    (n_slots,) (one slot = a 16th note); ``jitter`` is (len(LAYERS), n_slots). ``noise``
    (n_samples,) and ``drum_noise`` (0.3 s) are band-passed (300 Hz-8 kHz) noise, peak 1.
    """

    duration: float
    sample_rate: int
    tempo: float
    key: int
    progression: np.ndarray
    timbres: dict[str, Timbre]
    levels: dict[str, float]
    wobble_period: float
    wobble_phase: float
    vibrato_rate: float
    perc_pitch: float
    pulse_pitch: float     # Hz, the beat-pulse click
    glide: np.ndarray      # (n_spans,) semitones, signed, of the tonal-instability slides
    glide: np.ndarray
    u_minor: np.ndarray
    u_chromatic: np.ndarray
    chromatic_root: np.ndarray
    u_modulate: np.ndarray
    modulation: np.ndarray
    u_second: np.ndarray
    u_tritone: np.ndarray
    timing: np.ndarray
    jitter: np.ndarray
    u_onset: np.ndarray
    u_leap: np.ndarray
    step: np.ndarray
    leap: np.ndarray
    u_chromatic_note: np.ndarray
    chromatic_sign: np.ndarray
    u_kick: np.ndarray
    u_hat: np.ndarray
    u_perc: np.ndarray
    noise: np.ndarray
    drum_noise: np.ndarray

    @property
    def step_s(self) -> float:
        """Duration of one 16th-note slot in seconds."""
        return 60.0 / self.tempo / 4.0

    @property
    def n_samples(self) -> int:
        """Length of the clip in samples."""
        return int(round(self.duration * self.sample_rate))


def _draw_timbre(rng: np.random.Generator, n_min: int, n_max: int) -> Timbre:
    """Harmonic spectrum with a random number of partials, roll-off and odd/even balance."""
    n = int(rng.integers(n_min, n_max + 1))
    rolloff, even_gain = rng.uniform(0.7, 1.8), rng.uniform(0.3, 1.0)
    k = np.arange(1, n + 1)
    amps = k ** -rolloff * np.where(k % 2 == 0, even_gain, 1.0)
    return Timbre(amps / amps.sum())


def peak_normalize(x: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """``x`` scaled to maximum absolute value ``peak``, as float32 (same shape)."""
    return (peak * x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def _band_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """White noise band-passed to 300 Hz-8 kHz, peak 1: (n,) float32."""
    sos = signal.butter(2, [300.0, min(8000.0, 0.45 * sample_rate)], btype="bandpass",
                        fs=sample_rate, output="sos")
    return peak_normalize(signal.sosfilt(sos, rng.standard_normal(n)))


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniforms in [0, 1), one in each of ``n`` equal strata, in random order: (n,).

    ``u < p`` then holds for a share of the entries within ``1 / n`` of ``p``, so a per-span
    probability becomes an almost exact per-clip proportion.
    """
    return (rng.permutation(n) + rng.random(n)) / n


def draw_material(rng: np.random.Generator, duration: float, sample_rate: int) -> Material:
    """Draw all nuisance and note-level randomness of one clip (a fixed sequence of draws)."""
    tempo = rng.uniform(80.0, 140.0)
    n_slots = int(math.ceil(duration * tempo / 15.0)) + 8
    n_spans = n_slots // 8 + 1
    n_samples = int(round(duration * sample_rate))
    timbres = {"melody": _draw_timbre(rng, 6, 10), "chords": _draw_timbre(rng, 5, 8),
               "bass": _draw_timbre(rng, 4, 6)}
    levels = dict(zip(("melody", "chords", "bass", "drums"), 10 ** (rng.uniform(-3, 3, 4) / 20)))
    return Material(
        duration=duration, sample_rate=sample_rate, tempo=tempo,
        key=int(rng.integers(12)), progression=_PROGRESSIONS[rng.integers(len(_PROGRESSIONS))],
        timbres=timbres, levels=levels,
        wobble_period=rng.uniform(1.5, 3.0), wobble_phase=rng.uniform(0, 2 * np.pi),
        vibrato_rate=rng.uniform(4.5, 6.0), perc_pitch=rng.uniform(700.0, 1800.0),
        pulse_pitch=rng.uniform(2400.0, 3000.0),
        glide=rng.uniform(1.0, 2.0, n_spans) * rng.choice([-1, 1], size=n_spans),
        u_minor=_stratified(rng, n_spans), u_chromatic=_stratified(rng, n_spans),
        chromatic_root=rng.integers(12, size=n_spans), u_modulate=_stratified(rng, n_spans),
        modulation=rng.choice(_MODULATIONS, size=n_spans),
        u_second=rng.random(n_spans), u_tritone=rng.random(n_spans),
        timing=np.clip(rng.standard_normal(n_slots), -1.5, 1.5),
        jitter=np.clip(rng.standard_normal((len(LAYERS), n_slots)), -2.0, 2.0),
        u_onset=rng.random(n_slots), u_leap=rng.random(n_slots),
        step=rng.choice([-2, -1, -1, 0, 1, 1, 2], size=n_slots),
        leap=rng.integers(3, 10, size=n_slots) * rng.choice([-1, 1], size=n_slots),
        u_chromatic_note=rng.random(n_slots), chromatic_sign=rng.choice([-1, 1], size=n_slots),
        u_kick=rng.random(n_slots), u_hat=rng.random(n_slots), u_perc=rng.random(n_slots),
        noise=_band_noise(rng, n_samples, sample_rate),
        drum_noise=_band_noise(rng, int(0.3 * sample_rate), sample_rate),
    )
