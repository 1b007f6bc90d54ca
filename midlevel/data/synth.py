"""The synthetic concept world: audio whose mid-level concepts and emotions are known exactly.

Every clip is drawn from seven true concept values in [0, 1] (the mid-level features of
Aljanaki & Soleymani 2018). Each value sets musical parameters of an additive-synthesis
arrangement (bass, chords, melody, percussion, a beat pulse and a tonic drone) so that it is
audible in a log-frequency spectrogram; key, tempo, timbres and levels vary per clip as
nuisance.

Musical mapping (0 -> 1):

=================  ==========================================================================
concept            effect
=================  ==========================================================================
melodiousness      melody line from random leaps over up to 3 octaves, nearly silent (5 % of
                   full level), no vibrato -> stepwise within ~1.5 octaves, loud, with vocal
                   vibrato (+-2.5 %)
articulation       legato (notes fill the gap to the next onset, slow decay, soft attack) ->
                   staccato (notes sound 15 % of the gap, 50 ms decay, hard attack)
rhythm_stability   tempo wobble (+-25 %, 1.5-3 s period) and onset jitter (shared and per
                   layer), no pulse -> every onset on the metrical grid and a woodblock-like
                   click (2.4-3 kHz + its fifth, 20 ms decay) on every beat, its level
                   proportional to rhythm_stability
rhythm_complexity  kick/snare/hat on quarter notes, melody in quarter notes -> syncopated
                   melody (16ths, off-beats, tied beats), 16th hats, off-beat kicks and a
                   third percussion layer
dissonance         clean harmonic partials and triads -> chords with added minor seconds and
                   tritones, stretched (inharmonic) partials and noise in the timbre
tonal_stability    chromatic chord roots, key changes, chromatic melody notes, chords and
                   bass sliding 1-2 semitones up or down over each note (slide scaled by
                   instability) -> a diatonic progression in one key over a sustained tonic
                   pedal (tonic C2-B2 and its fifth, level proportional to tonal_stability)
minorness          share of chords (and of the melody's scale above them) that are minor;
                   a sustained pad (root C4-B4, third, fifth, third an octave up) at a
                   constant level spells each chord's quality throughout the clip
=================  ==========================================================================

All random draws of a clip are made up front, independent of the concept values ("common
random numbers"): two clips rendered from the same ``rng`` with concepts that differ in one
value differ only in that concept's effect. Per-chord probabilities (minor chord, chromatic
root, modulation) use stratified uniforms, so the share of affected chords in a clip is within
about one chord of the probability times the number of chords, rather than binomially scattered.

``synthesize`` writes a dataset: ``audio/<id>.wav``, ``annotations.csv`` (noisy 1-10
concept ratings and 1-9 emotion targets), ``segments.csv`` (the same per half of every clip
with a mid-clip change), ``ground_truth.json`` and a data spec ``spec.yaml`` (written last:
its presence marks a complete dataset). Files are written under
a temporary name and moved into place, so an interrupted run never leaves a half-written
file under a final name.

Ratings and targets, for a clip with true concept vector ``c`` (time-averaged for clips with
a mid-clip change)::

    rating_j = clip(1 + 9 * c_j + N(0, rating_noise^2), 1, 10), rounded to 2 decimals
    target_t = clip(intercept_t + sum_j W[t, j] * c_j + N(0, target_noise^2), 1, 9), 2 decimals

With ``c_j = (rating_j - 1) / 9`` the same map on the rating scale has weights ``W / 9`` and
intercepts ``intercept - sum_j W[t, j] / 9`` (written to ground_truth.json as well).

A clip with a change has two segments, ``(0, T/2)`` with the old value and ``(T/2, T)`` with
the new one; ``segments.csv`` rates each from its own true concepts with the same formulas
and fresh noise, while ``annotations.csv`` keeps the rating of the time average.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import soundfile as sf
import yaml
from scipy import signal
from scipy.special import ndtr
from tqdm.auto import tqdm

from midlevel.errors import SpecError

MIDLEVEL_CONCEPTS = ("melodiousness", "articulation", "rhythm_stability", "rhythm_complexity",
                     "dissonance", "tonal_stability", "minorness")
EMOTIONS = ("valence", "energy", "tension", "anger", "fear", "happy", "sad", "tender")

CONCEPT_QUESTIONS = {
    "melodiousness": "To which excerpt do you feel like singing along?",
    "articulation": "Which has more sounds with staccato articulation?",
    "rhythm_stability": "Imagine marching along with the music. Which is easier to march "
                        "along with?",
    "rhythm_complexity": "Is it difficult to repeat by tapping? To find the meter? Does the "
                         "rhythm have many layers?",
    "dissonance": "Which excerpt has noisier timbre? More dissonant intervals (tritones, "
                  "seconds)?",
    "tonal_stability": "Where is it easier to determine the tonic and key? Where are there "
                       "more modulations?",
    "minorness": "Imagine accompanying this song with chords. Which would have more minor "
                 "chords?",
}
EMOTION_DESCRIPTIONS = {
    "valence": "Pleasant vs unpleasant (synthetic: linear map of the true concepts)",
    "energy": "Awake vs tired (synthetic: linear map of the true concepts)",
    "tension": "Tense vs relaxed (synthetic: linear map of the true concepts)",
    "anger": "How angry (synthetic: linear map of the true concepts)",
    "fear": "How fearful (synthetic: linear map of the true concepts)",
    "happy": "How happy (synthetic: linear map of the true concepts)",
    "sad": "How sad (synthetic: linear map of the true concepts)",
    "tender": "How tender (synthetic: linear map of the true concepts)",
}

RATING_SCALE = (1, 10)
TARGET_SCALE = (1, 9)

# Rating points of each target per unit of true concept (concepts in [0, 1]); the sum of
# absolute weights of every row is at most 7, so targets span about 5 +- 3.5 before noise.
DEFAULT_WEIGHTS = pd.DataFrame(
    [[1.5, 0.0, 0.5, 0.0, -2.0, 1.0, -2.0],     # valence
     [-0.5, 2.5, 0.5, 2.0, 1.0, 0.0, 0.0],      # energy
     [-1.0, 0.5, -0.5, 1.0, 2.5, -1.0, 0.5],    # tension
     [-1.5, 1.5, 0.0, 0.5, 2.5, 0.0, 1.0],      # anger
     [-1.0, 0.0, -1.5, 0.5, 2.0, -1.5, 0.5],    # fear
     [0.0, 0.5, -0.5, 1.5, -1.5, 1.5, -1.5],    # happy (signs of the paper's row)
     [1.0, -2.0, 0.0, -1.0, 0.0, 0.5, 2.5],     # sad
     [2.0, -2.5, 0.5, -1.0, -1.0, 0.0, 0.0]],   # tender
    index=pd.Index(EMOTIONS, name="target"), columns=pd.Index(MIDLEVEL_CONCEPTS, name="concept"))


def _centering_intercepts(weights: pd.DataFrame) -> pd.Series:
    """Intercepts putting each target's mean at 5 for independent uniform concepts: (n_targets,)."""
    return (5.0 - 0.5 * weights.sum(axis=1)).rename("intercept")


DEFAULT_INTERCEPTS = _centering_intercepts(DEFAULT_WEIGHTS)

# Correlation of the latent normals of the Gaussian copula used with ``correlated=True``.
COPULA_CORRELATION = pd.DataFrame(
    [[1.0, -0.2, 0.2, 0.0, -0.4, 0.5, 0.0],
     [-0.2, 1.0, 0.0, 0.3, 0.0, 0.0, 0.0],
     [0.2, 0.0, 1.0, -0.4, 0.0, 0.2, 0.0],
     [0.0, 0.3, -0.4, 1.0, 0.0, 0.0, 0.0],
     [-0.4, 0.0, 0.0, 0.0, 1.0, -0.5, 0.2],
     [0.5, 0.0, 0.2, 0.0, -0.5, 1.0, 0.0],
     [0.0, 0.0, 0.0, 0.0, 0.2, 0.0, 1.0]],
    index=list(MIDLEVEL_CONCEPTS), columns=list(MIDLEVEL_CONCEPTS))

MIN_CHANGE = 0.5                 # smallest |new - old| of a mid-clip change
_CROSSFADE_S = 0.04              # raised-cosine crossfade at a change
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
_PROGRESSIONS = np.array([[0, 7, 9, 5], [0, 5, 7, 0], [0, 9, 5, 7], [0, 5, 9, 7]])
_MODULATIONS = np.array([-7, -5, -2, -1, 1, 2, 5, 7])
_LAYERS = ("melody", "chords", "bass", "kick", "snare", "hat", "perc", "pulse")
_MAX_PARTIAL_HZ = 10000.0
_PAD_LEVEL = 0.015       # amplitude per pad voice (chord-quality pad, see _add_pad)


# --------------------------------------------------------------------------- weights

def load_weights(weights: str | os.PathLike | pd.DataFrame | None = None,
                 ) -> tuple[pd.DataFrame, pd.Series]:
    """The concept-to-target linear map.

    Parameters
    ----------
    weights : path, DataFrame or None
        None gives ``DEFAULT_WEIGHTS`` / ``DEFAULT_INTERCEPTS``. A DataFrame or a CSV file has
        targets as rows (first CSV column = target names) and concepts as columns, plus an
        optional ``intercept`` column; a JSON file maps each target to
        ``{concept: weight, ..., "intercept": b}``. Concepts left out weigh 0; a missing
        intercept centres the target at 5 (``5 - 0.5 * sum of the row``).

    Returns
    -------
    weights : pd.DataFrame [shape=(n_targets, 7)]
        Targets in ``EMOTIONS`` order (only those given), concepts in ``MIDLEVEL_CONCEPTS``.
    intercepts : pd.Series [shape=(n_targets,)]

    Raises
    ------
    SpecError
        Unknown target or concept names (all of them named), missing or non-numeric values.
    """
    if weights is None:
        return DEFAULT_WEIGHTS.copy(), DEFAULT_INTERCEPTS.copy()
    source = "weights" if isinstance(weights, pd.DataFrame) else str(weights)
    table = weights.copy() if isinstance(weights, pd.DataFrame) else _read_weights(Path(weights))
    table.index = table.index.map(lambda s: str(s).strip())
    table.columns = table.columns.map(lambda s: str(s).strip())
    unknown_targets = [t for t in table.index if t not in EMOTIONS]
    unknown_concepts = [c for c in table.columns if c not in MIDLEVEL_CONCEPTS + ("intercept",)]
    if unknown_targets or unknown_concepts:
        raise SpecError(f"{source}: unknown targets {unknown_targets} / concepts "
                        f"{unknown_concepts}; known targets: {list(EMOTIONS)}, known "
                        f"concepts: {list(MIDLEVEL_CONCEPTS)} (+ 'intercept')")
    if table.empty:
        raise SpecError(f"{source}: no targets in the weight map")
    try:
        table = table.astype(float)
    except (TypeError, ValueError) as err:
        raise SpecError(f"{source}: non-numeric weight ({err})") from None
    bad = table.loc[:, table.columns != "intercept"].isna().stack()
    if bad.any() or not np.isfinite(table.fillna(0.0).to_numpy()).all():
        raise SpecError(f"{source}: missing or non-finite weights at "
                        f"{[f'{t}/{c}' for t, c in bad[bad].index]}")
    order = [t for t in EMOTIONS if t in table.index]
    matrix = (table.reindex(index=order, columns=list(MIDLEVEL_CONCEPTS)).fillna(0.0)
              .rename_axis(index="target", columns="concept"))
    intercepts = _centering_intercepts(matrix)
    if "intercept" in table.columns:
        given = table["intercept"].reindex(order)
        intercepts = given.fillna(intercepts).rename("intercept")
    return matrix, intercepts.rename_axis("target")


def _read_weights(path: Path) -> pd.DataFrame:
    """Read a weight table from CSV (targets as rows) or JSON ({target: {concept: w}})."""
    if not path.is_file():
        raise SpecError(f"{path}: weight file not found")
    if path.suffix.lower() == ".json":
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise SpecError(f"{path}: expected a JSON object {{target: {{concept: weight}}}}")
        return pd.DataFrame.from_dict(raw, orient="index")
    return pd.read_csv(path, index_col=0)


# --------------------------------------------------------------------------- concepts, ratings

def sample_concepts(n_clips: int, rng: np.random.Generator, *, correlated: bool = False,
                    ) -> np.ndarray:
    """Draw true concept values with uniform [0, 1] marginals.

    Independent by default; ``correlated=True`` uses a Gaussian copula with latent
    correlation ``COPULA_CORRELATION``.

    Returns
    -------
    np.ndarray [shape=(n_clips, 7)], columns in ``MIDLEVEL_CONCEPTS`` order.
    """
    if not correlated:
        return rng.random((n_clips, len(MIDLEVEL_CONCEPTS)))
    chol = np.linalg.cholesky(COPULA_CORRELATION.to_numpy())
    return ndtr(rng.standard_normal((n_clips, len(MIDLEVEL_CONCEPTS))) @ chol.T)


def _draw_changes(values: np.ndarray, fraction: float, rng: np.random.Generator,
                  ) -> dict[int, tuple[int, float]]:
    """Pick ``round(fraction * n)`` clips that change one concept halfway.

    Returns ``{clip index: (concept index, new value)}`` with ``|new - old| >= MIN_CHANGE``.
    """
    n_clips, n_concepts = values.shape
    chosen = np.sort(rng.choice(n_clips, size=int(round(fraction * n_clips)), replace=False))
    concept = rng.integers(n_concepts, size=len(chosen))
    u = rng.random(len(chosen))
    changes = {}
    for i, k, ui in zip(chosen, concept, u):
        old = values[i, k]
        new = ui * (old - MIN_CHANGE) if old >= MIN_CHANGE else old + MIN_CHANGE + ui * (
            1.0 - old - MIN_CHANGE)
        changes[int(i)] = (int(k), float(new))
    return changes


def concepts_to_ratings(true: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Noisy 1-10 ratings of true concepts: ``clip(1 + 9 c + N(0, noise^2), 1, 10)``, 2 decimals.

    ``true``: (n_clips, n_concepts) in [0, 1]; returns the same shape.
    """
    lo, hi = RATING_SCALE
    raw = lo + (hi - lo) * true + noise * rng.standard_normal(true.shape)
    return np.round(np.clip(raw, lo, hi), 2)


def concepts_to_targets(true: np.ndarray, weights: pd.DataFrame, intercepts: pd.Series,
                        rng: np.random.Generator, noise: float) -> np.ndarray:
    """Targets ``clip(intercept + true @ W.T + N(0, noise^2), 1, 9)``, 2 decimals.

    ``true``: (n_clips, 7) in [0, 1]; ``weights``: (n_targets, 7); returns (n_clips, n_targets).
    """
    raw = intercepts.to_numpy() + true @ weights.to_numpy().T
    raw = raw + noise * rng.standard_normal(raw.shape)
    return np.round(np.clip(raw, *TARGET_SCALE), 2)


# --------------------------------------------------------------------------- random material

@dataclass(frozen=True)
class _Timbre:
    """Partial amplitudes ``amps`` (n_partials,) of one instrument, summing to 1."""

    amps: np.ndarray


@dataclass(frozen=True)
class _Material:
    """Every random draw of one clip, made before any concept value is looked at.

    Per-span arrays have shape (n_spans,) (one span = 2 beats = one chord); per-slot arrays
    (n_slots,) (one slot = a 16th note); ``jitter`` is (len(_LAYERS), n_slots). ``noise``
    (n_samples,) and ``drum_noise`` (0.3 s) are band-passed (300 Hz-8 kHz) noise, peak 1.
    """

    duration: float
    sample_rate: int
    tempo: float
    key: int
    progression: np.ndarray
    timbres: dict[str, _Timbre]
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


def _draw_timbre(rng: np.random.Generator, n_min: int, n_max: int) -> _Timbre:
    """Harmonic spectrum with a random number of partials, roll-off and odd/even balance."""
    n = int(rng.integers(n_min, n_max + 1))
    rolloff, even_gain = rng.uniform(0.7, 1.8), rng.uniform(0.3, 1.0)
    k = np.arange(1, n + 1)
    amps = k ** -rolloff * np.where(k % 2 == 0, even_gain, 1.0)
    return _Timbre(amps / amps.sum())


def _peak_normalize(x: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """``x`` scaled to maximum absolute value ``peak``, as float32 (same shape)."""
    return (peak * x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def _band_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """White noise band-passed to 300 Hz-8 kHz, peak 1: (n,) float32."""
    sos = signal.butter(2, [300.0, min(8000.0, 0.45 * sample_rate)], btype="bandpass",
                        fs=sample_rate, output="sos")
    return _peak_normalize(signal.sosfilt(sos, rng.standard_normal(n)))


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniforms in [0, 1), one in each of ``n`` equal strata, in random order: (n,).

    ``u < p`` then holds for a share of the entries within ``1 / n`` of ``p``, so a per-span
    probability becomes an almost exact per-clip proportion.
    """
    return (rng.permutation(n) + rng.random(n)) / n


def _draw_material(rng: np.random.Generator, duration: float, sample_rate: int) -> _Material:
    """Draw all nuisance and note-level randomness of one clip (a fixed sequence of draws)."""
    tempo = rng.uniform(80.0, 140.0)
    n_slots = int(math.ceil(duration * tempo / 15.0)) + 8
    n_spans = n_slots // 8 + 1
    n_samples = int(round(duration * sample_rate))
    timbres = {"melody": _draw_timbre(rng, 6, 10), "chords": _draw_timbre(rng, 5, 8),
               "bass": _draw_timbre(rng, 4, 6)}
    levels = dict(zip(("melody", "chords", "bass", "drums"), 10 ** (rng.uniform(-3, 3, 4) / 20)))
    return _Material(
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
        jitter=np.clip(rng.standard_normal((len(_LAYERS), n_slots)), -2.0, 2.0),
        u_onset=rng.random(n_slots), u_leap=rng.random(n_slots),
        step=rng.choice([-2, -1, -1, 0, 1, 1, 2], size=n_slots),
        leap=rng.integers(3, 10, size=n_slots) * rng.choice([-1, 1], size=n_slots),
        u_chromatic_note=rng.random(n_slots), chromatic_sign=rng.choice([-1, 1], size=n_slots),
        u_kick=rng.random(n_slots), u_hat=rng.random(n_slots), u_perc=rng.random(n_slots),
        noise=_band_noise(rng, n_samples, sample_rate),
        drum_noise=_band_noise(rng, int(0.3 * sample_rate), sample_rate),
    )



# --------------------------------------------------------------------------- score

@dataclass
class _Events:
    """Note events of one layer: onsets and lengths in s (n,), frequencies (n, n_voices) Hz.

    A frequency of 0 marks a silent voice.
    """

    onsets: np.ndarray
    lengths: np.ndarray
    freqs: np.ndarray
    glides: np.ndarray | None = None     # (n,) semitones slid over the sounding length


@dataclass(frozen=True)
class _Harmony:
    """Per-span chord roots and tonic pitch classes, minor flags and added dissonant tones."""

    roots: np.ndarray
    tonics: np.ndarray
    minor: np.ndarray
    second: np.ndarray
    tritone: np.ndarray


def _midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """Equal-tempered frequency (Hz, A4 = 440) of MIDI note numbers, same shape."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def _slot_times(mat: _Material, stability: float) -> np.ndarray:
    """Onset time (s) of every 16th slot: (n_slots,), warped and jittered by instability.

    The time warp ``t + A sin(w t + phase) / w`` (A = 0.25 * instability) swings the local
    tempo by up to +-25 %; the jitter shared by all layers is up to +-0.375 slot.
    """
    instability = 1.0 - stability
    nominal = np.arange(len(mat.timing)) * mat.step_s
    w = 2 * np.pi / mat.wobble_period
    amp = 0.25 * instability
    warp = nominal + amp * (np.sin(w * nominal + mat.wobble_phase) - np.sin(mat.wobble_phase)) / w
    return 0.02 + warp + 0.25 * instability * mat.step_s * mat.timing


def _layer_onsets(mat: _Material, times: np.ndarray, stability: float, layer: str,
                  slots: np.ndarray) -> np.ndarray:
    """Onsets (s) of ``slots`` (n,) for one layer, adding its own jitter (up to +-0.3 slot)."""
    own = mat.jitter[_LAYERS.index(layer), slots]
    return np.maximum(times[slots] + 0.15 * (1.0 - stability) * mat.step_s * own, 0.0)


def _harmony(mat: _Material, c: dict[str, float]) -> _Harmony:
    """Chord roots, keys and qualities of every span.

    Tonal instability ``u = 1 - tonal_stability`` makes a span's root chromatic with
    probability ``u`` (else the clip's diatonic progression) and modulates the key with
    probability ``u / 2`` (stratified draws: near-exact shares); a chord is minor with
    probability ``minorness`` (stratified as well) and gets an added
    minor second (tritone) with probability ``dissonance`` (``0.8 dissonance``).
    """
    instability = 1.0 - c["tonal_stability"]
    n_spans = len(mat.u_minor)
    modulates = mat.u_modulate < 0.5 * instability
    modulates[0] = False
    tonics = (mat.key + np.cumsum(np.where(modulates, mat.modulation, 0))) % 12
    diatonic = mat.progression[np.arange(n_spans) % len(mat.progression)]
    degree = np.where(mat.u_chromatic < instability, mat.chromatic_root, diatonic)
    return _Harmony(roots=(tonics + degree) % 12, tonics=tonics,
                    minor=mat.u_minor < c["minorness"],
                    second=mat.u_second < c["dissonance"],
                    tritone=mat.u_tritone < 0.8 * c["dissonance"])


def _note_lengths(onsets: np.ndarray, ends: np.ndarray, articulation: float) -> np.ndarray:
    """Sounding lengths (s): a fraction ``1 - 0.85 a`` of the time to the next onset."""
    return np.maximum((1.0 - 0.85 * articulation) * (ends - onsets), 0.02)


def _chord_events(mat: _Material, harmony: _Harmony, times: np.ndarray,
                  c: dict[str, float]) -> tuple[_Events, _Events]:
    """Chords and bass struck on every beat.

    Chords: root, third, fifth and the third an octave up, G4-F#5, plus the added minor
    second and tritone of dissonant spans. Bass: the root (C2-B2), the fifth below it on the
    2nd and 4th beat. Both slide ``(1 - tonal_stability) * glide`` semitones (glide: +-1-2 per
    span) over each note's sounding length.
    """
    beats = np.arange(0, len(times) - 4, 4)
    span = beats // 8
    roots = harmony.roots[span]
    base = 67 + (roots - 7) % 12                                  # G4 .. F#5
    third = np.where(harmony.minor[span], 3, 4)
    voices = np.stack([base, base + third, base + 7, base + 12 + third, base + 1, base + 6],
                      axis=1)                                     # triad, 3rd, m2, tritone
    sounding = np.ones(voices.shape, dtype=bool)
    sounding[:, 4], sounding[:, 5] = harmony.second[span], harmony.tritone[span]
    freqs = np.where(sounding, _midi_to_hz(voices), 0.0)
    stab, art = c["rhythm_stability"], c["articulation"]
    onsets = _layer_onsets(mat, times, stab, "chords", beats)
    ends = _layer_onsets(mat, times, stab, "chords", beats + 4)
    glides = (1.0 - c["tonal_stability"]) * mat.glide[span]
    chords = _Events(onsets, _note_lengths(onsets, ends, art), freqs, glides)
    bass_midi = 36 + roots + np.where((beats // 4) % 2 == 1, -5, 0)
    onsets = _layer_onsets(mat, times, stab, "bass", beats)
    ends = _layer_onsets(mat, times, stab, "bass", beats + 4)
    bass = _Events(onsets, _note_lengths(onsets, ends, art), _midi_to_hz(bass_midi)[:, None],
                   glides)
    return chords, bass


def _melody_slots(mat: _Material, complexity: float) -> np.ndarray:
    """Slots with a melody onset: quarter notes at complexity 0; syncopated 16ths at 1."""
    pos = np.arange(len(mat.u_onset)) % 4
    p_onset = np.select([pos == 0, pos == 2], [1.0 - 0.45 * complexity, 0.6 * complexity],
                        0.45 * complexity)
    onset = mat.u_onset < p_onset
    onset[0] = True
    return np.flatnonzero(onset[:-4])


def _melody_pitches(mat: _Material, harmony: _Harmony, slots: np.ndarray,
                    c: dict[str, float]) -> np.ndarray:
    """MIDI pitch of each melody note: (n_notes,).

    A walk over scale degrees: steps, or with probability ``0.85 (1 - melodiousness)`` leaps of
    3-9 degrees, reflected into a range of 10 degrees (melodious) to 22 degrees (3 octaves).
    Degrees map onto the major or minor scale of the span's key (minor when the chord is
    minor), degree 0 = the tonic in G4-F#5; with
    probability ``0.6 (1 - tonal_stability)`` a note is moved a semitone off the scale.
    """
    unmelodious = 1.0 - c["melodiousness"]
    lo, hi = -round(7 * unmelodious), 9 + round(5 * unmelodious)
    degree, degrees = 4, np.empty(len(slots), dtype=int)
    for i, j in enumerate(slots):
        degree += mat.leap[j] if mat.u_leap[j] < 0.85 * unmelodious else mat.step[j]
        degree = 2 * hi - degree if degree > hi else degree
        degree = 2 * lo - degree if degree < lo else degree
        degree = min(max(degree, lo), hi)
        degrees[i] = degree
    span = slots // 8
    scale = np.where(harmony.minor[span][:, None], _MINOR, _MAJOR)
    semis = 12 * (degrees // 7) + scale[np.arange(len(slots)), degrees % 7]
    chromatic = mat.u_chromatic_note[slots] < 0.6 * (1.0 - c["tonal_stability"])
    tonic = 67 + (harmony.tonics[span] - 7) % 12                  # G4 .. F#5
    return tonic + semis + np.where(chromatic, mat.chromatic_sign[slots], 0)


def _melody_events(mat: _Material, harmony: _Harmony, times: np.ndarray,
                   c: dict[str, float]) -> _Events:
    """Melody notes; each lasts up to the next melody onset (scaled by articulation)."""
    slots = _melody_slots(mat, c["rhythm_complexity"])
    onsets = _layer_onsets(mat, times, c["rhythm_stability"], "melody", slots)
    next_slots = np.append(slots[1:], slots[-1] + 4)
    ends = _layer_onsets(mat, times, c["rhythm_stability"], "melody", next_slots)
    return _Events(onsets, _note_lengths(onsets, ends, c["articulation"]),
                   _midi_to_hz(_melody_pitches(mat, harmony, slots, c))[:, None])


def _drum_slots(mat: _Material, complexity: float) -> dict[str, np.ndarray]:
    """Slots of each percussion layer.

    Kick on beats 1 and 3, snare on 2 and 4, hat on every beat; with complexity: hats on
    off-beat 8ths (p = c) and 16ths (p = 0.6 c), off-beat kicks (p = 0.25 c) and a third,
    pitched layer anywhere (p = 0.3 c).
    """
    j = np.arange(len(mat.u_kick) - 4)
    pos = j % 4
    return {
        "kick": np.flatnonzero((j % 16 == 0) | (j % 16 == 8)
                               | ((pos != 0) & (mat.u_kick[j] < 0.25 * complexity))),
        "snare": np.flatnonzero((j % 16 == 4) | (j % 16 == 12)),
        "hat": np.flatnonzero((pos == 0) | ((pos == 2) & (mat.u_hat[j] < complexity))
                              | ((pos % 2 == 1) & (mat.u_hat[j] < 0.6 * complexity))),
        "perc": np.flatnonzero(mat.u_perc[j] < 0.3 * complexity),
    }


# --------------------------------------------------------------------------- rendering

@dataclass(frozen=True)
class _Voice:
    """How one tonal layer sounds: timbre, level, envelope and pitch modulation."""

    timbre: _Timbre
    gain: float
    attack: float          # s
    decay: float           # s, time constant of the exponential decay
    stretch: float         # inharmonicity: partial k at k * sqrt(1 + stretch * k^2) * f0
    vibrato_depth: float   # relative frequency deviation
    vibrato_rate: float    # Hz


def _add_events(out: np.ndarray, activity: np.ndarray, events: _Events, voice: _Voice,
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
        if n <= 0:
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
        keep = freqs < min(_MAX_PARTIAL_HZ, 0.45 * sample_rate)
        partials = np.sin(np.outer(freqs[keep], phase).astype(np.float32))
        out[start:start + n] += voice.gain * env * (amps[keep].astype(np.float32) @ partials)
        activity[start:start + n] += voice.gain * env


def _drum_sounds(mat: _Material) -> dict[str, np.ndarray]:
    """One-shot waveforms of kick, snare, hat and the pitched percussion layer."""
    sr = mat.sample_rate
    noise = mat.drum_noise
    t = np.arange(len(noise)) / sr
    hat_noise = _peak_normalize(np.diff(noise, n=2, prepend=0.0, append=0.0)[: len(t)])
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


def _add_drums(out: np.ndarray, mat: _Material, times: np.ndarray, c: dict[str, float]) -> None:
    """Overlay the percussion one-shots at their (jittered) onsets, in place.

    Besides the drum layers of ``_drum_slots``, a pulse click sounds on every beat at level
    ``rhythm_stability`` (independent of the drum level).
    """
    sounds = _drum_sounds(mat)
    layers = _drum_slots(mat, c["rhythm_complexity"])
    layers["pulse"] = np.arange(0, len(mat.u_kick) - 4, 4)        # every beat
    for layer, slots in layers.items():
        level = c["rhythm_stability"] if layer == "pulse" else mat.levels["drums"]
        sound = (level * sounds[layer]).astype(np.float32)
        onsets = _layer_onsets(mat, times, c["rhythm_stability"], layer, slots)
        for start in (onsets * mat.sample_rate).astype(int):
            n = min(len(sound), len(out) - start)
            if n > 0:
                out[start:start + n] += sound[:n]


def _add_drone(out: np.ndarray, mat: _Material, harmony: _Harmony, stability: float) -> None:
    """Add a sustained pedal on the tonic (C2-B2) and its fifth, level ``0.15 stability``."""
    if stability <= 0.0:
        return
    sr = mat.sample_rate
    t = np.arange(len(out)) / sr
    span = np.minimum((t / (8 * mat.step_s)).astype(int), len(harmony.tonics) - 1)
    f0 = _midi_to_hz(36 + harmony.tonics[span])
    phase = 2 * np.pi * np.cumsum(f0) / sr
    amps = mat.timbres["bass"].amps
    drone = np.zeros(len(out))
    for ratio in (1.0, 1.5):
        for k, a in enumerate(amps, start=1):
            drone += a * np.sin(k * ratio * phase)
    fade = np.minimum(t / 0.05, 1.0)
    out += (0.15 * stability * fade * drone).astype(np.float32)


def _add_pad(out: np.ndarray, mat: _Material, harmony: _Harmony) -> None:
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
        phase = 2 * np.pi * np.cumsum(_midi_to_hz(root + offset)) / sr
        pad += weight * (np.sin(phase) + 0.25 * np.sin(2 * phase))
    fade = np.minimum(t / 0.05, 1.0)
    out += (_PAD_LEVEL * fade * pad).astype(np.float32)


def _render(mat: _Material, c: dict[str, float]) -> np.ndarray:
    """Render one clip with constant concept values ``c``: (n_samples,) float32, unnormalized."""
    sr = mat.sample_rate
    art, diss = c["articulation"], c["dissonance"]
    attack = 0.03 + (0.004 - 0.03) * art
    decay = math.exp(math.log(1.5) + (math.log(0.05) - math.log(1.5)) * art)
    stretch = 0.004 * diss
    times = _slot_times(mat, c["rhythm_stability"])
    harmony = _harmony(mat, c)
    chords, bass = _chord_events(mat, harmony, times, c)
    melody = _melody_events(mat, harmony, times, c)
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
        _add_events(out, activity, events, voices[name], sr)
    out += 0.6 * diss * activity * mat.noise                     # noisy (breathy) timbre
    _add_drone(out, mat, harmony, c["tonal_stability"])
    _add_pad(out, mat, harmony)
    _add_drums(out, mat, times, c)
    return out


def _check_concepts(concepts: dict[str, float]) -> dict[str, float]:
    """Concept values as floats; all seven required, each in [0, 1]."""
    missing = [k for k in MIDLEVEL_CONCEPTS if k not in concepts]
    unknown = [k for k in concepts if k not in MIDLEVEL_CONCEPTS]
    if missing or unknown:
        raise ValueError(f"concepts: missing {missing}, unknown {unknown}")
    values = {k: float(concepts[k]) for k in MIDLEVEL_CONCEPTS}
    outside = {k: v for k, v in values.items() if not 0.0 <= v <= 1.0}
    if outside:
        raise ValueError(f"concept values must lie in [0, 1], got {outside}")
    return values


def _render_clip(mat: _Material, concepts: dict[str, float],
                 change: tuple[str, float] | None) -> np.ndarray:
    """Render a clip, crossfading to the changed concept value at ``duration / 2``.

    Returns (n_samples,) float32 peak-normalized to 0.9.
    """
    first = _check_concepts(concepts)
    wave = _render(mat, first)
    if change is not None:
        name, value = change
        second = _check_concepts({**first, name: value})
        t = np.arange(mat.n_samples) / mat.sample_rate - mat.duration / 2
        fade = 0.5 * (1 + np.sin(np.pi * np.clip(t / _CROSSFADE_S, -0.5, 0.5)))
        wave = (1 - fade) * wave + fade * _render(mat, second)
    return _peak_normalize(wave, 0.9)


def synthesize_clip(concepts: dict[str, float], *, duration: float = 10.0,
                    sample_rate: int = 22050, rng: np.random.Generator,
                    change: tuple[str, float] | None = None) -> np.ndarray:
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
        Switch that concept to ``new value`` at ``duration / 2`` (40 ms crossfade).

    Returns
    -------
    np.ndarray [shape=(round(duration * sample_rate),)], float32 mono, peak 0.9.
    """
    return _render_clip(_draw_material(rng, duration, sample_rate), concepts, change)


# --------------------------------------------------------------------------- dataset

@dataclass(frozen=True)
class _ClipJob:
    """Everything a worker needs to render and write one clip."""

    clip_id: str
    concepts: dict[str, float]
    change: tuple[str, float] | None
    seed: np.random.SeedSequence
    duration: float
    sample_rate: int
    path: Path


def _run_job(job: _ClipJob) -> tuple[str, dict[str, float]]:
    """Render one clip and write it atomically; returns its id and nuisance parameters."""
    mat = _draw_material(np.random.default_rng(job.seed), job.duration, job.sample_rate)
    wave = _render_clip(mat, job.concepts, job.change)
    tmp = job.path.with_name(f".{job.path.stem}.tmp{os.getpid()}.wav")
    sf.write(tmp, wave, job.sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, job.path)
    return job.clip_id, {"tempo_bpm": round(mat.tempo, 2), "key": int(mat.key)}


def _usable_cores() -> int:
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _run_jobs(jobs: list[_ClipJob], n_jobs: int | None) -> Iterator[tuple[str, dict]]:
    """Run ``jobs`` in this process (n_jobs == 1) or a process pool (None = all cores)."""
    n_workers = min(n_jobs or _usable_cores(), len(jobs))
    if n_workers <= 1:
        yield from map(_run_job, jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(n_workers) as pool:
        yield from pool.imap_unordered(_run_job, jobs, chunksize=2)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a hidden temporary file beside ``path``, then move it into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _segment_table(ids: list[str], first: np.ndarray, changes: dict[int, tuple[int, float]],
                   duration: float, weights: pd.DataFrame, intercepts: pd.Series,
                   rng: np.random.Generator, rating_noise: float,
                   target_noise: float) -> pd.DataFrame:
    """Ratings of both halves of every changed clip: ``clip_id, start, end``, concepts, targets.

    Each half is rated from its own true concepts (the first half's ``first``, the second's
    with the changed value) with the clip ratings' formulas and independent noise from ``rng``.
    """
    rows, values = [], []
    for i in sorted(changes):
        k, new = changes[i]
        second = first[i].copy()
        second[k] = new
        rows += [(ids[i], 0.0, duration / 2), (ids[i], duration / 2, float(duration))]
        values += [first[i], second]
    true = np.array(values).reshape(len(values), len(MIDLEVEL_CONCEPTS))
    table = pd.DataFrame(rows, columns=["clip_id", "start", "end"])
    for key in ("start", "end"):  # full precision, not the ratings' 2 decimals
        table[key] = [f"{t:.6g}" for t in table[key]]
    table[list(MIDLEVEL_CONCEPTS)] = concepts_to_ratings(true, rng, rating_noise)
    table[list(weights.index)] = concepts_to_targets(true, weights, intercepts, rng, target_noise)
    return table


def _spec_dict(seed: int, targets: list[str]) -> dict:
    """The data spec of a synthetic dataset (format of data_specs/README.md)."""
    return {
        "name": "synthetic",
        "description": "Synthetic concept world (midlevel.data.synth): noisy 1-10 ratings of "
                       "known concepts, 1-9 targets from a known linear map; see "
                       "ground_truth.json.",
        "root": ".",
        "audio": {"pattern": "audio/{id}.wav"},
        "tables": [{"path": "annotations.csv", "id_column": "clip_id"}],
        "segments": [{"path": "segments.csv", "id_column": "clip_id", "start_column": "start",
                      "end_column": "end"}],
        "concepts": {k: {"column": k, "scale": list(RATING_SCALE),
                         "description": CONCEPT_QUESTIONS[k]} for k in MIDLEVEL_CONCEPTS},
        "targets": {t: {"column": t, "scale": list(TARGET_SCALE),
                        "description": EMOTION_DESCRIPTIONS[t]} for t in targets},
        "splits": {"seed": int(seed), "test": {"fraction": 0.15},
                   "validation": {"fraction": 0.15}},
    }


def _ground_truth(ids: list[str], true: np.ndarray, first: np.ndarray,
                  changes: dict[int, tuple[int, float]], nuisance: dict[str, dict],
                  weights: pd.DataFrame, intercepts: pd.Series, settings: dict) -> dict:
    """The JSON-ready record of everything that generated the dataset."""
    lo, hi = RATING_SCALE
    per_point = weights / (hi - lo)
    clips = {}
    half = settings["duration"] / 2
    for i, clip_id in enumerate(ids):
        record = {"concepts": dict(zip(MIDLEVEL_CONCEPTS, np.round(true[i], 6).tolist())),
                  "change": None, "segments": None, **nuisance[clip_id]}
        if i in changes:
            k, new = changes[i]
            record["change"] = {"concept": MIDLEVEL_CONCEPTS[k],
                                "old": round(float(first[i, k]), 6), "new": round(new, 6),
                                "time": half}
            second = first[i].copy()
            second[k] = new
            record["segments"] = [
                {"start": 0.0, "end": half,
                 "concepts": dict(zip(MIDLEVEL_CONCEPTS, np.round(first[i], 6).tolist()))},
                {"start": half, "end": settings["duration"],
                 "concepts": dict(zip(MIDLEVEL_CONCEPTS, np.round(second, 6).tolist()))}]
        clips[clip_id] = record
    return {
        **settings,
        "concepts": list(MIDLEVEL_CONCEPTS),
        "targets": list(weights.index),
        "copula_correlation": COPULA_CORRELATION.to_numpy().tolist()
        if settings["correlated"] else None,
        "concept_to_rating": {
            "formula": "rating = clip(offset + scale * true + N(0, rating_noise^2), 1, 10), "
                       "rounded to 2 decimals; true = time average over the clip "
                       "(annotations.csv) or the segment's value (segments.csv)",
            "offset": lo, "scale": hi - lo, "range": list(RATING_SCALE)},
        "target_map": {
            "formula": "target = clip(intercept + sum_j weights[target][j] * true_j "
                       "+ N(0, target_noise^2), 1, 9), rounded to 2 decimals",
            "weights": weights.to_dict(orient="index"),
            "intercept": intercepts.to_dict(),
            "weights_per_rating_point": per_point.to_dict(orient="index"),
            "intercept_rating_scale": (intercepts - lo * per_point.sum(axis=1)).to_dict(),
            "range": list(TARGET_SCALE)},
        "clips": clips,
    }


def synthesize(out_dir: str | os.PathLike, *, n_clips: int = 200, seed: int = 0,
               duration: float = 10.0, sample_rate: int = 22050,
               weights: str | os.PathLike | pd.DataFrame | None = None,
               correlated: bool = False, change_fraction: float = 0.25,
               rating_noise: float = 0.5, target_noise: float = 0.3,
               n_jobs: int | None = None, progress: bool = True) -> Path:
    """Write a synthetic concept dataset to ``out_dir`` and return the path of its spec.yaml.

    Writes ``audio/<id>.wav`` (16-bit mono, ids ``s0000``...), ``annotations.csv``
    (``clip_id``, 7 concept ratings on 1-10, targets on 1-9), ``ground_truth.json`` and
    ``segments.csv`` (``clip_id``, ``start``, ``end``, then the same columns, two rows per
    clip with a change: its halves), ``spec.yaml`` (last); files of the same names are
    replaced, other files in ``out_dir`` are left alone. Results depend only on ``seed`` (not
    on ``n_jobs``): concepts, changes and clip rating noise come from the first child of
    ``SeedSequence(seed)``, clip ``i``'s audio from child ``i + 1``, segment rating noise from
    child ``n_clips + 1``.

    Parameters
    ----------
    weights : path, DataFrame or None
        Concept-to-target map, see ``load_weights``; rows give the targets written.
    correlated : bool
        Draw concepts through the Gaussian copula ``COPULA_CORRELATION``.
    change_fraction : float
        Share of clips in which one concept jumps by at least 0.5 at ``duration / 2``.
    rating_noise, target_noise : float
        Standard deviations of the rating noise (1-10 points) and target noise (1-9 points).
    n_jobs : int or None
        Worker processes (None: all cores, 1: this process).
    """
    if n_clips < 1 or duration <= 0 or sample_rate <= 0:
        raise ValueError("n_clips, duration and sample_rate must be positive")
    if not 0.0 <= change_fraction <= 1.0 or rating_noise < 0 or target_noise < 0:
        raise ValueError("change_fraction must lie in [0, 1] and noise levels be >= 0")
    weight_matrix, intercepts = load_weights(weights)
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(seed).spawn(n_clips + 2)  # the last: segment noise
    rng = np.random.default_rng(children[0])
    first = sample_concepts(n_clips, rng, correlated=correlated)
    changes = _draw_changes(first, change_fraction, rng)
    true = first.copy()
    for i, (k, new) in changes.items():
        true[i, k] = (first[i, k] + new) / 2
    width = max(4, len(str(n_clips - 1)))
    ids = [f"s{i:0{width}d}" for i in range(n_clips)]
    jobs = [_ClipJob(clip_id, dict(zip(MIDLEVEL_CONCEPTS, first[i].tolist())),
                     (MIDLEVEL_CONCEPTS[changes[i][0]], changes[i][1]) if i in changes else None,
                     children[i + 1], float(duration), int(sample_rate),
                     out / "audio" / f"{clip_id}.wav")
            for i, clip_id in enumerate(ids)]
    nuisance = dict(tqdm(_run_jobs(jobs, n_jobs), total=n_clips, desc="synthesizing clips",
                         disable=not progress))

    table = pd.DataFrame(concepts_to_ratings(true, rng, rating_noise), columns=MIDLEVEL_CONCEPTS)
    targets = concepts_to_targets(true, weight_matrix, intercepts, rng, target_noise)
    table[list(weight_matrix.index)] = targets
    table.insert(0, "clip_id", ids)
    _atomic_write_text(out / "annotations.csv", table.to_csv(index=False, float_format="%.2f"))
    segments = _segment_table(ids, first, changes, duration, weight_matrix, intercepts,
                              np.random.default_rng(children[n_clips + 1]), rating_noise,
                              target_noise)
    _atomic_write_text(out / "segments.csv", segments.to_csv(index=False, float_format="%.2f"))
    settings = {"seed": int(seed), "n_clips": int(n_clips), "duration": float(duration),
                "sample_rate": int(sample_rate), "correlated": bool(correlated),
                "change_fraction": float(change_fraction),
                "noise": {"rating_noise": float(rating_noise), "target_noise": float(target_noise)}}
    truth = _ground_truth(ids, true, first, changes, nuisance, weight_matrix, intercepts, settings)
    _atomic_write_text(out / "ground_truth.json", json.dumps(truth, indent=1))
    spec_path = out / "spec.yaml"
    _atomic_write_text(spec_path, yaml.safe_dump(_spec_dict(seed, list(weight_matrix.index)),
                                                 sort_keys=False, width=100,
                                                 default_flow_style=None))
    return spec_path
