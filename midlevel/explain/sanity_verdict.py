"""The sanity check's verdict from its per-clip similarities (the rule of
:mod:`midlevel.explain.sanity`'s docstring): bootstrap intervals over clips of the two
differences, the pass rule, and the words of a verdict without one or with a blind spot."""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.explain.harness_stats import min_clips


def verdict_table(floors: pd.DataFrame, name: str, *, n_boot: int, level: float) -> pd.DataFrame:
    """One row per similarity of ``floors`` (per clip: trained_vs_random, trained_vs_input,
    random_vs_random, random_vs_input): means, the intervals of ``trained_vs_random`` minus
    each floor, ``passed`` (True, False, or NaN below :func:`min_clips` defined clips),
    ``clips_needed`` and ``verdict`` in words."""
    need = min_clips(1 - level)
    verdict = []
    for sim, g in floors.groupby("similarity", sort=False):
        d_in = (g["trained_vs_random"] - g["trained_vs_input"]).to_numpy()
        d_rr = (g["trained_vs_random"] - g["random_vs_random"]).to_numpy()
        lo_in, hi_in = _boot_ci(d_in, n_boot, level, 0)
        lo_rr, hi_rr = _boot_ci(d_rr, n_boot, level, 1)
        defined = int((np.isfinite(d_in) & np.isfinite(d_rr)).sum())
        rule = bool(hi_in < 0 and hi_rr < 0)
        enough = defined >= need
        verdict.append({"method": name, "similarity": sim, "n_clips": len(g),
                        "n_defined": defined,
                        "trained_vs_random": g["trained_vs_random"].mean(),
                        "trained_vs_input": g["trained_vs_input"].mean(),
                        "random_vs_random": g["random_vs_random"].mean(),
                        "random_vs_input": g["random_vs_input"].mean(),
                        "minus_input_ci_low": lo_in, "minus_input_ci_high": hi_in,
                        "minus_random_ci_low": lo_rr, "minus_random_ci_high": hi_rr,
                        # no verdict below `need` clips: empty, not a failure
                        "passed": rule if enough else np.nan, "clips_needed": need,
                        "verdict": (("passed" if rule else _failed(g, hi_rr, n_boot, level))
                                    if enough else _too_few(defined, len(g), need))})
    return pd.DataFrame(verdict)


def _too_few(defined: int, n_clips: int, need: int) -> str:
    """The verdict without enough clips: too few explained, or too few with a defined
    similarity (the others' maps constant, where more clips would not help)."""
    if defined < n_clips:
        why = ("every map is constant (no rank correlation with a constant map): more clips "
               "of the same kind will not help" if defined == 0 else
               f"the other {n_clips - defined} maps are constant (no rank correlation with a "
               f"constant map): explain more clips")
        return (f"too few clips for a verdict: {defined} of {n_clips} with a defined "
                f"similarity, at least {need} needed ({why})")
    return f"too few clips for a verdict (n = {defined}, at least {need} needed)"


def _failed(g: pd.DataFrame, hi_rr: float, n_boot: int, level: float) -> str:
    """"failed", with why where only floor (a) failed and both of its similarities are
    indistinguishable from 0 (their intervals hold 0): the trained map shares nothing with
    the input's picture nor with the randomized maps, and the rule would need the trained map
    to be anti-correlated with the randomized ones (audit 15a: the exact map of a model whose
    evidence sits in 15 of 96 bins, trained_vs_random 0.021, trained_vs_input 0.012)."""
    if not hi_rr < 0:
        return "failed"
    at_zero = [lo <= 0 <= hi for lo, hi in (
        _boot_ci(g[col].to_numpy(), n_boot, level, 2) for col in
        ("trained_vs_input", "trained_vs_random"))]
    if not all(at_zero):
        return "failed"
    return ("failed on floor (a) only, at zero: the trained map is unlike both the input's "
            "picture and the randomized maps (both similarities' intervals hold 0), which "
            "the rule cannot tell from model independence; not evidence that the map ignores "
            "the model")


def _boot_ci(d, n_boot, level, seed):
    """Percentile interval of the mean of the finite ``d`` over ``n_boot`` resamples."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
