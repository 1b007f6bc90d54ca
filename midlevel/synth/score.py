"""The score of a clip: harmony, onsets and note events, set by the concept values."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from midlevel.synth.material import LAYERS, MAJOR, MINOR, Material


# --------------------------------------------------------------------------- score

@dataclass
class Events:
    """Note events of one layer: onsets and lengths in s (n,), frequencies (n, n_voices) Hz.

    A frequency of 0 marks a silent voice.
    """

    onsets: np.ndarray
    lengths: np.ndarray
    freqs: np.ndarray
    glides: np.ndarray | None = None     # (n,) semitones slid over the sounding length


@dataclass(frozen=True)
class Harmony:
    """Per-span chord roots and tonic pitch classes, minor flags and added dissonant tones."""

    roots: np.ndarray
    tonics: np.ndarray
    minor: np.ndarray
    second: np.ndarray
    tritone: np.ndarray


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """Equal-tempered frequency (Hz, A4 = 440) of MIDI note numbers, same shape."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)


def slot_times(mat: Material, stability: float) -> np.ndarray:
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


def layer_onsets(mat: Material, times: np.ndarray, stability: float, layer: str,
                  slots: np.ndarray) -> np.ndarray:
    """Onsets (s) of ``slots`` (n,) for one layer, adding its own jitter (up to +-0.3 slot)."""
    own = mat.jitter[LAYERS.index(layer), slots]
    return np.maximum(times[slots] + 0.15 * (1.0 - stability) * mat.step_s * own, 0.0)


def make_harmony(mat: Material, c: dict[str, float]) -> Harmony:
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
    return Harmony(roots=(tonics + degree) % 12, tonics=tonics,
                    minor=mat.u_minor < c["minorness"],
                    second=mat.u_second < c["dissonance"],
                    tritone=mat.u_tritone < 0.8 * c["dissonance"])


def _note_lengths(onsets: np.ndarray, ends: np.ndarray, articulation: float) -> np.ndarray:
    """Sounding lengths (s): a fraction ``1 - 0.85 a`` of the time to the next onset."""
    return np.maximum((1.0 - 0.85 * articulation) * (ends - onsets), 0.02)


def chord_events(mat: Material, harmony: Harmony, times: np.ndarray,
                  c: dict[str, float]) -> tuple[Events, Events]:
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
    freqs = np.where(sounding, midi_to_hz(voices), 0.0)
    stab, art = c["rhythm_stability"], c["articulation"]
    onsets = layer_onsets(mat, times, stab, "chords", beats)
    ends = layer_onsets(mat, times, stab, "chords", beats + 4)
    glides = (1.0 - c["tonal_stability"]) * mat.glide[span]
    chords = Events(onsets, _note_lengths(onsets, ends, art), freqs, glides)
    bass_midi = 36 + roots + np.where((beats // 4) % 2 == 1, -5, 0)
    onsets = layer_onsets(mat, times, stab, "bass", beats)
    ends = layer_onsets(mat, times, stab, "bass", beats + 4)
    bass = Events(onsets, _note_lengths(onsets, ends, art), midi_to_hz(bass_midi)[:, None],
                   glides)
    return chords, bass


def _melody_slots(mat: Material, complexity: float) -> np.ndarray:
    """Slots with a melody onset: quarter notes at complexity 0; syncopated 16ths at 1."""
    pos = np.arange(len(mat.u_onset)) % 4
    p_onset = np.select([pos == 0, pos == 2], [1.0 - 0.45 * complexity, 0.6 * complexity],
                        0.45 * complexity)
    onset = mat.u_onset < p_onset
    onset[0] = True
    return np.flatnonzero(onset[:-4])


def _melody_pitches(mat: Material, harmony: Harmony, slots: np.ndarray,
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
    scale = np.where(harmony.minor[span][:, None], MINOR, MAJOR)
    semis = 12 * (degrees // 7) + scale[np.arange(len(slots)), degrees % 7]
    chromatic = mat.u_chromatic_note[slots] < 0.6 * (1.0 - c["tonal_stability"])
    tonic = 67 + (harmony.tonics[span] - 7) % 12                  # G4 .. F#5
    return tonic + semis + np.where(chromatic, mat.chromatic_sign[slots], 0)


def melody_events(mat: Material, harmony: Harmony, times: np.ndarray,
                   c: dict[str, float]) -> Events:
    """Melody notes; each lasts up to the next melody onset (scaled by articulation)."""
    slots = _melody_slots(mat, c["rhythm_complexity"])
    onsets = layer_onsets(mat, times, c["rhythm_stability"], "melody", slots)
    next_slots = np.append(slots[1:], slots[-1] + 4)
    ends = layer_onsets(mat, times, c["rhythm_stability"], "melody", next_slots)
    return Events(onsets, _note_lengths(onsets, ends, c["articulation"]),
                   midi_to_hz(_melody_pitches(mat, harmony, slots, c))[:, None])


def drum_slots(mat: Material, complexity: float) -> dict[str, np.ndarray]:
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
