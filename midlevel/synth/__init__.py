"""The synthetic concept world: audio whose mid-level concepts and emotions are known exactly.

Modules: :mod:`~.world` (concepts, ratings, the emotion map), :mod:`~.material` (every random
draw of a clip), :mod:`~.score` (harmony, onsets, notes), :mod:`~.render` (additive synthesis),
:mod:`~.dataset` (``synthesize``: a dataset on disk).

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
concept ratings and 1-9 emotion targets), ``segments.csv`` (the same before and after the change
of every clip with a mid-clip change), ``ground_truth.json`` and a data spec ``spec.yaml`` (written last:
its presence marks a complete dataset). Files are written under
a temporary name and moved into place, so an interrupted run never leaves a half-written
file under a final name.

With ``tags=True`` (:mod:`~.tags`) each clip also holds or lacks four layer families
(drums, pad, drone, melody voice: binary concepts with known truth) and carries mood tags
drawn from them by a known logistic map (a multi-label target).

Ratings and targets, for a clip with true concept vector ``c`` (time-averaged for clips with
a mid-clip change)::

    rating_j = clip(1 + 9 * c_j + N(0, rating_noise^2), 1, 10), rounded to 2 decimals
    target_t = clip(intercept_t + sum_j W[t, j] * c_j + N(0, target_noise^2), 1, 9), 2 decimals

With ``c_j = (rating_j - 1) / 9`` the same map on the rating scale has weights ``W / 9`` and
intercepts ``intercept - sum_j W[t, j] / 9`` (written to ground_truth.json as well).

A clip with a change at ``t`` has two segments, ``(0, t)`` with the old value and ``(t, T)``
with the new one (``t = T/2`` by default; ``change_range`` draws it over a range of the clip); ``segments.csv`` rates each from its own true concepts with the same formulas
and fresh noise, while ``annotations.csv`` keeps the rating of the time average.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "synthesize": "dataset", "synthesize_clip": "render", "load_weights": "world",
    "sample_concepts": "world", "concepts_to_ratings": "world", "concepts_to_targets": "world",
    "MIDLEVEL_CONCEPTS": "world", "EMOTIONS": "world", "CONCEPT_QUESTIONS": "world",
    "EMOTION_DESCRIPTIONS": "world", "RATING_SCALE": "world", "TARGET_SCALE": "world",
    "DEFAULT_WEIGHTS": "world", "DEFAULT_INTERCEPTS": "world", "COPULA_CORRELATION": "world",
    "MIN_CHANGE": "world", "TAG_LAYERS": "tags", "MOODS": "tags",
    "DEFAULT_TAG_WEIGHTS": "tags", "DEFAULT_TAG_INTERCEPTS": "tags",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"midlevel.synth.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'midlevel.synth' has no attribute '{name}'")
