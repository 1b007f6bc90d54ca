"""Ground truth of the synthetic concept world, and how well a coefficient table recovers it."""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError


def ground_truth_weights(truth: dict, *, units: str = "rating") -> pd.DataFrame:
    """The true map of a synthetic dataset (``ground_truth.json`` loaded) as a tidy table.

    ``units="rating"``: target points per concept rating point (what a fit on 1-10 ratings
    estimates); ``"true"``: per unit of the true [0, 1] concept value.

    Returns pd.DataFrame with columns target, concept, true_weight.
    """
    key = "weights_per_rating_point" if units == "rating" else "weights"
    weights = truth["target_map"][key]
    return pd.DataFrame([{"target": t, "concept": c, "true_weight": float(w)}
                         for t, row in weights.items() for c, w in row.items()])


def compare_to_truth(table: pd.DataFrame, truth: pd.DataFrame, *, X: pd.DataFrame | None = None,
                     Y: pd.DataFrame | None = None) -> dict:
    """Recovery figures of a coefficient table against a true weight table.

    Parameters
    ----------
    table : coefficient table (one method).
    truth : ``target, concept, true_weight`` in the units of ``table['weight']``.
    X, Y : the fit's data, to standardize the true weights like the estimates
        (``true * sd(x) / sd(y)``); without them the raw weights are compared.

    Returns
    -------
    dict with sign_agreement (over true non-zero weights), correlation (Pearson r of
    standardized estimates and truth), coverage (share of true weights inside the interval),
    null_fpr (share of zero true weights called significant), n_nonzero, n_null, and
    n_no_estimate: the rows left out because the data give no estimate (NaN weight, e.g. a
    ``data_note`` saying the concepts separate a class target's classes).
    """
    from scipy import stats as sstats
    merged = table.merge(truth, on=["target", "concept"], how="inner")
    if merged.empty:
        raise ExplainError("no (target, concept) pair in common with the truth")
    estimated = np.isfinite(merged["weight"].to_numpy(float))
    n_no_estimate = int((~estimated).sum())
    merged = merged[estimated]
    if merged.empty:
        raise ExplainError("the data give no estimate for any (target, concept) pair in "
                           "common with the truth")
    if X is not None and Y is not None:
        sd_x = X.std(ddof=1)
        sd_y = Y.std(ddof=1)
        merged["true_std"] = [w * sd_x[c] / sd_y[t] for w, c, t in
                              zip(merged["true_weight"], merged["concept"], merged["target"])]
        est, tru = merged["std_weight"], merged["true_std"]
    else:
        est, tru = merged["weight"], merged["true_weight"]
    nonzero = merged["true_weight"] != 0
    covered = (merged["ci_low"] <= merged["true_weight"]) & (merged["true_weight"] <= merged["ci_high"])
    return {
        "sign_agreement": float((np.sign(merged.loc[nonzero, "weight"])
                                 == np.sign(merged.loc[nonzero, "true_weight"])).mean()),
        "correlation": float(sstats.pearsonr(est, tru)[0]),
        "coverage": float(covered.mean()),
        "null_fpr": float(merged.loc[~nonzero, "significant"].mean()) if (~nonzero).any()
        else float("nan"),
        "n_nonzero": int(nonzero.sum()), "n_null": int((~nonzero).sum()),
        "n_no_estimate": n_no_estimate,
    }


def synthetic_design(n_clips: int = 200, seed: int = 0, *, weights=None, correlated: bool = False,
                     rating_noise: float = 0.5, target_noise: float = 0.3,
                     concepts: str = "ratings") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The synthetic concept world without audio: concept values, targets and the true map.

    Draws concepts, ratings and targets exactly as :func:`midlevel.synth.synthesize` does
    (same generative formulas, no rendering), so the statistics can be checked against the truth
    in milliseconds.

    Parameters
    ----------
    concepts : "ratings" (noisy 1-10 ratings, what an independent head is fitted on) or
        "true" (the noiseless concept values mapped to the rating scale, ``1 + 9 c``).

    Returns
    -------
    X : pd.DataFrame [shape=(n_clips, n_concepts)] concept values on the rating scale.
    Y : pd.DataFrame [shape=(n_clips, n_targets)] targets.
    truth : pd.DataFrame with target, concept, true_weight (per rating point).
    """
    from midlevel.synth import world as synth
    matrix, intercepts = synth.load_weights(weights)
    rng = np.random.default_rng(seed)
    true = synth.sample_concepts(n_clips, rng, correlated=correlated)
    ratings = synth.concepts_to_ratings(true, rng, rating_noise)
    targets = synth.concepts_to_targets(true, matrix, intercepts, rng, target_noise)
    lo, hi = synth.RATING_SCALE
    values = ratings if concepts == "ratings" else lo + (hi - lo) * true
    ids = pd.Index([f"c{i:04d}" for i in range(n_clips)], name="clip")
    X = pd.DataFrame(values, index=ids, columns=list(matrix.columns))
    Y = pd.DataFrame(targets, index=ids, columns=list(matrix.index))
    per_point = matrix / (hi - lo)
    truth = pd.DataFrame([{"target": t, "concept": c, "true_weight": float(per_point.loc[t, c])}
                          for t in per_point.index for c in per_point.columns])
    return X, Y, truth
