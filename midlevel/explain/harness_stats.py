"""The harness's paired comparison with random orders, over clips
(:mod:`midlevel.explain.harness`, whose docstring defines the gains): a bootstrap interval of
the mean gain, paired Wilcoxon and t tests, and a verdict that needs the interval and the test
to agree, with the fewest clips at which the test can reach ``alpha`` (:func:`min_clips`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from midlevel.checks import real_number
from midlevel.errors import AttributionError

__all__ = ["compare_to_random", "min_clips"]


def _bootstrap_mean(d: np.ndarray, n_boot: int, level: float, rng) -> tuple[float, float]:
    if len(d) < 2:
        return np.nan, np.nan
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def min_clips(alpha: float = 0.05) -> int:
    """The fewest clips at which the exact two-sided Wilcoxon signed-rank test can give
    ``p < alpha``: its smallest p with ``n`` clips (every gain of one sign) is ``2 / 2**n``,
    so 6 at ``alpha = 0.05`` (p = 0.031; 5 clips give at best 0.0625)."""
    alpha = real_number(alpha, "alpha", above=0, below=1, error=AttributionError)
    n = 1
    while 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


def _verdict(n: int, lo: float, hi: float, p: float, alpha: float) -> str:
    """Interval and paired test together (the docstring of :mod:`midlevel.explain.harness`)."""
    need = min_clips(alpha)
    if n < need:
        return f"too few clips to test (n = {n}, at least {need} needed)"
    if p < alpha and lo > 0:
        return "better than random"
    return "worse than random" if p < alpha and hi < 0 else "not distinguishable"


def compare_to_random(scores: pd.DataFrame, *, metrics=("morf_gain", "lerf_gain",
                                                        "between_gain"),
                      n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                      alpha: float = 0.05) -> pd.DataFrame:
    """Paired comparison of each method with random orders, over clips.

    Returns
    -------
    pd.DataFrame: method, mode, metric, n_clips, mean, ci_low, ci_high (percentile bootstrap of
    the mean gain), p_wilcoxon, p_ttest (two-sided), share_positive, verdict ("better than
    random", "worse than random": the interval and ``p_wilcoxon < alpha`` agree; "not
    distinguishable"; "too few clips to test (...)" below ``clips_needed``), clips_needed
    (:func:`min_clips` of ``alpha``).
    """
    rows = []
    for (method, mode), g in scores.groupby(["method", "mode"], sort=False):
        for metric in metrics:
            d = g[metric].to_numpy(dtype=float)
            d = d[np.isfinite(d)]
            rng = np.random.default_rng(seed)
            lo, hi = _bootstrap_mean(d, n_boot, level, rng)
            if len(d) >= 2 and np.any(d != 0):
                p_w = float(stats.wilcoxon(d).pvalue)
                p_t = float(stats.ttest_1samp(d, 0.0).pvalue)
            else:
                p_w = p_t = 1.0 if len(d) else np.nan
            rows.append({"method": method, "mode": mode, "metric": metric, "n_clips": len(d),
                         "mean": float(d.mean()) if len(d) else np.nan, "ci_low": lo,
                         "ci_high": hi, "p_wilcoxon": p_w, "p_ttest": p_t,
                         "share_positive": float(np.mean(d > 0)) if len(d) else np.nan,
                         "verdict": _verdict(len(d), lo, hi, p_w, alpha),
                         "clips_needed": min_clips(alpha)})
    return pd.DataFrame(rows)
