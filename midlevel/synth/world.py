"""The synthetic concept world without sound: concepts, their ratings, the emotion map.

Seven true concept values in [0, 1] per clip (the mid-level features), noisy 1-10 ratings of
them, and 1-9 emotion targets from a known linear map (see :mod:`midlevel.synth`).
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

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
        Unknown target or concept names (all of them named), missing or non-numeric values,
        weights so large that the targets overflow.
    """
    if weights is None:
        return DEFAULT_WEIGHTS.copy(), DEFAULT_INTERCEPTS.copy()
    source = "weights" if isinstance(weights, pd.DataFrame) else str(weights)
    table = weights.copy() if isinstance(weights, pd.DataFrame) else _read_weights(Path(weights))
    table.index = table.index.map(lambda s: str(s).strip())
    table.columns = table.columns.map(lambda s: str(s).strip())
    for axis, names in (("target", table.index), ("column", table.columns)):
        twice = sorted(set(names[names.duplicated()]))
        if twice:
            raise SpecError(f"{source}: {axis}(s) {twice} given more than once")
    unknown_targets = [t for t in table.index if t not in EMOTIONS]
    unknown_concepts = [c for c in table.columns if c not in MIDLEVEL_CONCEPTS + ("intercept",)]
    if unknown_targets or unknown_concepts:
        raise SpecError(f"{source}: unknown targets {unknown_targets} / concepts "
                        f"{unknown_concepts}; known targets: {list(EMOTIONS)}, known "
                        f"concepts: {list(MIDLEVEL_CONCEPTS)} (+ 'intercept')")
    if table.empty:
        raise SpecError(f"{source}: no targets in the weight map")
    table = _numeric(table, source)
    weights_only = table.loc[:, table.columns != "intercept"]
    missing = [f"{t}/{c}" for (t, c), v in weights_only.isna().stack().items() if v]
    if missing:
        raise SpecError(f"{source}: missing weights at {missing}")
    infinite = [f"{t}/{c}" for (t, c), v in table.stack().items() if np.isinf(v)]
    if infinite:  # audit 22a: an infinite weight was reported at an empty list
        raise SpecError(f"{source}: infinite weights at {infinite}")
    order = [t for t in EMOTIONS if t in table.index]
    matrix = (table.reindex(index=order, columns=list(MIDLEVEL_CONCEPTS)).fillna(0.0)
              .rename_axis(index="target", columns="concept"))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused below
        intercepts = _centering_intercepts(matrix)
        if "intercept" in table.columns:
            given = table["intercept"].reindex(order)
            intercepts = given.fillna(intercepts).rename("intercept")
        ends = np.c_[intercepts, intercepts + matrix.clip(lower=0).sum(axis=1),
                     intercepts + matrix.clip(upper=0).sum(axis=1)]
    overflow = [t for t, ok in zip(order, np.isfinite(ends).all(axis=1)) if not ok]
    if overflow:
        raise SpecError(f"{source}: weights too large for targets {overflow}: their values "
                        f"overflow (not finite numbers)")
    return matrix, intercepts.rename_axis("target")


def _numeric(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """``table`` as floats; SpecError naming each cell (target/concept) that is not a
    number: a text, a JSON true/false or a list (audit 22a: a JSON ``true`` or ``"1.5"``
    was taken as 1.0 and 1.5, and a non-numeric cell was named without its place). CSV
    cells are text, read as numbers where they are ones."""
    from_csv = table.attrs.get("csv", False)
    bad, out = [], pd.DataFrame(np.nan, index=table.index, columns=table.columns)
    shown = {np.True_: "true", np.False_: "false", True: "true", False: "false"}
    for t in table.index:
        for c in table.columns:
            v = table.at[t, c]
            if np.ndim(v) == 0 and pd.isna(v):  # None, NaN, pd.NA: missing (re-audit 22d)
                continue
            if isinstance(v, (bool, np.bool_)) or not (
                    isinstance(v, (int, float, np.integer, np.floating)) or
                    (from_csv and isinstance(v, str))):
                bad.append(f"{t}/{c} = " + (repr(v) if isinstance(v, str) else
                                            shown.get(v, str(v)) if np.ndim(v) == 0 else str(v)))
                continue
            try:
                out.at[t, c] = float(v)
            except OverflowError:  # a JSON integer of hundreds of digits: no float
                out.at[t, c] = np.inf if v > 0 else -np.inf
            except ValueError:
                bad.append(f"{t}/{c} = {v!r}")
    if bad:
        raise SpecError(f"{source}: non-numeric weights at {bad} (numbers expected)")
    return out


def _read_weights(path: Path) -> pd.DataFrame:
    """Read a weight table from CSV (targets as rows) or JSON ({target: {concept: w}});
    SpecError naming the file for a file that cannot be parsed or names a key twice."""
    if not path.is_file():
        raise SpecError(f"{path}: weight file not found")
    if path.suffix.lower() in (".yaml", ".yml"):
        raise SpecError(f"{path}: a weight file is CSV (targets as rows, concepts as "
                        f"columns) or JSON ({{target: {{concept: weight}}}}), not YAML")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(), object_pairs_hook=_unique_keys(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SpecError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise SpecError(f"{path}: expected a JSON object {{target: {{concept: weight}}}}")
        # a concept one target leaves out weighs 0 there (an explicit null stays missing)
        named = {k for v in raw.values() for k in v} - {"intercept"}
        return pd.DataFrame.from_dict({t: {**dict.fromkeys(named, 0.0), **v}
                                       for t, v in raw.items()}, orient="index")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        table = pd.read_csv(path, index_col=0, encoding="utf-8-sig", dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not a CSV weight table ({err})") from None
    names = [h.strip() for h in header[1:]]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # pandas would rename the second one ('name.1')
        raise SpecError(f"{path}: column(s) {twice} given more than once")
    table.attrs["csv"] = True  # its cells are text: numbers where they read as ones
    return table


def _unique_keys(path: Path):
    """``json.loads`` hook: a dict from key/value pairs, SpecError on a key given twice (json
    keeps the last one silently)."""
    def build(pairs):
        keys = [k for k, _ in pairs]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise SpecError(f"{path}: key(s) {twice} given more than once")
        return dict(pairs)
    return build


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


def draw_changes(values: np.ndarray, fraction: float, rng: np.random.Generator,
                  ) -> dict[int, tuple[int, float]]:
    """Pick ``round(fraction * n)`` clips that change one concept mid-clip (the time is
    drawn by :func:`midlevel.synth.dataset.synthesize`).

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
