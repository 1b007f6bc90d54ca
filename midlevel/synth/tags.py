"""Tags of the synthetic world: which layer families a clip contains, and a multi-label mood
target drawn from them by a known logistic map.

Each clip holds each family of ``TAG_LAYERS`` with probability ``presence`` (independently; the
draws come from their own seed child, so a dataset without tags is unchanged); an absent family
is rendered silent (:func:`midlevel.synth.render.render_clip`). The mood tags follow::

    P(mood_t | tags) = sigmoid(intercept_t + sum_k W[t, k] * tag_k),   tag_k in {0, 1}

and each is drawn independently with that probability. ``W`` has zeros (a mood that does not
depend on a layer), so a recovered weight can be checked for its sign and for being null; the
intercepts put each mood's probability at 0.5 for a clip with half its weights' layers.
The mid-level concepts keep their ratings even when the layer that carries them is silent
(melodiousness without the melody, minorness partly without the pad): a network cannot hear
them there, as in real data a rater's answer need not be audible in every excerpt.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TAG_LAYERS = ("drums", "pad", "drone", "melody")   # kick/snare/hat/perc, chord pad, tonic
                                                    # drone, melody voice
TAG_COLUMNS = {name: f"has_{name}" for name in TAG_LAYERS}
MOODS = ("driving", "calm", "dark", "dreamy")
PRESENCE = 0.5

# log-odds of each mood per present layer (rows: moods, columns: layers)
DEFAULT_TAG_WEIGHTS = pd.DataFrame(
    [[2.5, -1.5, 0.0, 1.0],       # driving: drums, no pad
     [-2.5, 2.0, 1.0, 0.0],       # calm: no drums, pad, drone
     [0.0, -1.5, 2.5, -1.5],      # dark: drone, neither pad nor melody
     [-1.5, 2.5, 0.0, 1.5]],      # dreamy: pad and melody, no drums
    index=pd.Index(MOODS, name="target"), columns=pd.Index(TAG_LAYERS, name="concept"))
DEFAULT_TAG_INTERCEPTS = (-0.5 * DEFAULT_TAG_WEIGHTS.sum(axis=1)).rename("intercept")

MOOD_DESCRIPTIONS = {
    "driving": "Driving, energetic (synthetic: logistic map of the layer tags)",
    "calm": "Calm, relaxed (synthetic: logistic map of the layer tags)",
    "dark": "Dark, ominous (synthetic: logistic map of the layer tags)",
    "dreamy": "Dreamy, floating (synthetic: logistic map of the layer tags)",
}


def sample_tags(n_clips: int, rng: np.random.Generator, presence: float = PRESENCE,
                ) -> np.ndarray:
    """Which layer families each clip holds: ``(n_clips, len(TAG_LAYERS))`` of 0.0 / 1.0."""
    return (rng.random((n_clips, len(TAG_LAYERS))) < presence).astype(float)


def mood_probabilities(tags: np.ndarray, weights: pd.DataFrame = DEFAULT_TAG_WEIGHTS,
                       intercepts: pd.Series = DEFAULT_TAG_INTERCEPTS) -> np.ndarray:
    """``P(mood | tags)``: ``(n_clips, n_moods)`` from tags ``(n_clips, n_layers)``."""
    logit = intercepts.to_numpy() + tags @ weights.to_numpy().T
    return 1.0 / (1.0 + np.exp(-logit))


def sample_moods(tags: np.ndarray, rng: np.random.Generator,
                 weights: pd.DataFrame = DEFAULT_TAG_WEIGHTS,
                 intercepts: pd.Series = DEFAULT_TAG_INTERCEPTS) -> np.ndarray:
    """Mood tags drawn from :func:`mood_probabilities`: ``(n_clips, n_moods)`` of 0.0 / 1.0."""
    prob = mood_probabilities(tags, weights, intercepts)
    return (rng.random(prob.shape) < prob).astype(float)


def mood_cells(moods: np.ndarray) -> list[str]:
    """One delimited cell per clip naming its moods (``"driving|dark"``; empty for none)."""
    return ["|".join(m for m, on in zip(MOODS, row) if on) for row in moods]
