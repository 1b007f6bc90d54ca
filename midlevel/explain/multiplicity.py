"""Intervals that match a multiple-comparison correction of a coefficient table.

A correction changes which weights are called significant; the intervals shown beside them
must change with it, or a row shows an interval excluding 0 next to ``significant = False``
(and the flags, judged against the interval, disagree with the stars). The family is every
weight of one fit (one table) with a p-value, ``m`` of them. With a correction the intervals
have level ``1 - ci_alpha``:

``bonferroni``
    ``ci_alpha = alpha / m``: simultaneous intervals, all covering their true weights with
    probability at least ``1 - alpha``. A weight is significant exactly when its interval
    excludes 0 (Wald intervals; the bootstrap's up to its resolution, below).
``holm``
    The same Bonferroni intervals. Holm's step-down test rejects whatever Bonferroni's does
    and possibly more (its k-th smallest p-value is compared with ``alpha / (m - k + 1)``,
    not ``alpha / m``), and no informative intervals match it, so a weight can be significant
    under Holm while its Bonferroni interval still reaches 0 (the summary counts them).
``fdr_bh``
    The false-coverage-rate intervals of Benjamini & Yekutieli (2005, JASA 100:71-81) for the
    ``R`` weights the Benjamini-Hochberg procedure selects: level ``1 - R * alpha / m``, so
    that on average at most ``alpha`` of the selected weights' intervals miss their true
    weight. The paper builds intervals for the selected weights only; the unselected ones are
    shown at the same level (each contains 0, as the selection implies) without that
    guarantee. With nothing selected, ``R = 1`` (the Bonferroni level) is used.

A Wald interval is rebuilt from the weight, its standard error and the degrees of freedom of
its t (OLS; infinite for a z: GLM, multinomial logit); a percentile interval from the
bootstrap draws. A bootstrap of ``N`` resamples cannot resolve a tail of ``ci_alpha / 2``
below ``1 / N`` (the interval is then the extreme draws, and p-values stop at ``1 / N``), so
the summary says how many resamples the level needs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.choices import CORRECTIONS
from midlevel.errors import ExplainError
from midlevel.explain.levels import ci_label


def adjust_pvalues(p: np.ndarray, correction: str | None) -> np.ndarray:
    """Multiple-comparison correction of ``p`` (any shape; NaN kept): none, bonferroni, holm,
    fdr_bh (Benjamini-Hochberg)."""
    correction = correction or "none"
    if correction not in CORRECTIONS:
        raise ExplainError(f"unknown correction '{correction}'; choose one of {list(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out = p.copy()
    ok = np.isfinite(p)
    if correction != "none" and ok.any():
        from statsmodels.stats.multitest import multipletests
        out[ok] = multipletests(p[ok], method=correction)[1]
    return out


def interval_alpha(p_value: np.ndarray, p_adjusted: np.ndarray, alpha: float,
                   correction: str) -> tuple[float, int, int]:
    """``(ci_alpha, m, R)``: 1 - the intervals' level under ``correction`` (see the module
    docstring), the number of tests ``m`` (finite p-values of ``p_value`` ``(n,)``) and of
    weights called significant ``R`` (``p_adjusted`` ``(n,)`` below ``alpha``)."""
    ok = np.isfinite(np.asarray(p_value, dtype=float))
    m = int(ok.sum())
    selected = int((np.asarray(p_adjusted, dtype=float)[ok] < alpha).sum())
    if correction in (None, "none") or m == 0:
        return float(alpha), m, selected
    if correction in ("bonferroni", "holm"):
        return float(alpha) / m, m, selected
    return max(selected, 1) * float(alpha) / m, m, selected


def wald_interval(weight: np.ndarray, se: np.ndarray, df: np.ndarray,
                  ci_alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` ``(n,)``: ``weight +- q * se`` with ``q`` the ``1 - ci_alpha / 2``
    quantile of a t with ``df`` ``(n,)`` degrees of freedom (a normal where ``df`` is
    infinite)."""
    from scipy import stats
    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df) & (df > 0)
    q = np.where(finite, stats.t.ppf(1 - ci_alpha / 2, np.where(finite, df, 1.0)),
                 stats.norm.ppf(1 - ci_alpha / 2))
    w, s = np.asarray(weight, dtype=float), np.asarray(se, dtype=float)
    return w - q * s, w + q * s


def rebuild_intervals(table: pd.DataFrame, df: list, draws: list,
                      ci_alpha: float) -> pd.DataFrame:
    """``table`` with ``ci_low``/``ci_high`` (and the standardized pair, ``* std_scale``) at
    level ``1 - ci_alpha``, on the rows that have an interval: from the bootstrap draws
    ``draws[i]`` ``(n_draws,)`` where given, else Wald with ``df[i]``. A copy."""
    out = table.copy()
    has = np.isfinite(out["ci_low"].to_numpy(float)) & np.isfinite(out["ci_high"].to_numpy(float))
    lo, hi = out["ci_low"].to_numpy(float).copy(), out["ci_high"].to_numpy(float).copy()
    boot = np.array([d is not None for d in draws], dtype=bool)
    wald = has & ~boot
    if wald.any():
        lo[wald], hi[wald] = wald_interval(out["weight"].to_numpy(float)[wald],
                                           out["se"].to_numpy(float)[wald],
                                           np.asarray(df, dtype=float)[wald], ci_alpha)
    for i in np.flatnonzero(has & boot):
        lo[i], hi[i] = np.quantile(draws[i], [ci_alpha / 2, 1 - ci_alpha / 2])
    scale = out["std_scale"].to_numpy(float)
    out["ci_low"], out["ci_high"] = lo, hi
    out["std_ci_low"], out["std_ci_high"] = lo * scale, hi * scale
    return out


def interval_lines(table: pd.DataFrame) -> list[str]:
    """Sentences on the level of ``table``'s intervals and how they relate to ``significant``
    (from its ``attrs``: alpha, correction, ci_alpha, n_tests, n_selected, n_draws)."""
    a = table.attrs
    alpha, corr = a.get("alpha", 0.05), a.get("correction", "none")
    ci_alpha, m, r = a.get("ci_alpha", alpha), a.get("n_tests", 0), a.get("n_selected", 0)
    label = ci_label(ci_alpha)
    if corr == "none":
        return [f"intervals: {label} (1 - alpha), uncorrected"]
    if corr in ("bonferroni", "holm"):
        lines = [(f"intervals: {label}, Bonferroni (1 - alpha/m, m = {m} weights), so that "
                  f"all cover their true weights with probability >= {1 - alpha:g}")]
        if corr == "holm":
            loose = _significant_reaching_zero(table)
            lines.append(f"  Holm's step-down test is sharper than Bonferroni's and no "
                         f"interval matches it: it may call a weight significant whose "
                         f"interval still reaches 0 ({loose} such row"
                         f"{'s' if loose != 1 else ''} here)")
    else:
        lines = [f"intervals: {label}, false-coverage-rate intervals of Benjamini & Yekutieli "
                 f"(2005): 1 - R*alpha/m, R = {r} of m = {m} weights selected"
                 + (" (none: R = 1 used)" if r == 0 else "")
                 + f"; on average at most {alpha:g} of the selected weights' intervals miss; "
                   f"the unselected weights' intervals, at the same level, carry no such "
                   f"guarantee"]
    n_draws = a.get("n_draws")
    if n_draws and n_draws * ci_alpha / 2 < 1:
        lines.append(f"  the bootstrap's {n_draws} resamples cannot resolve a {label} "
                     f"(tails of {ci_alpha / 2:.2g}): the intervals are the extreme resamples "
                     f"and p-values stop at 1/{n_draws}; use at least "
                     f"{int(np.ceil(20 / ci_alpha))} resamples (--bootstrap)")
    return lines


def uncorrected_note(correction: str | None) -> str:
    """The line that heads statsmodels' own fit summaries in a corrected table's summary
    file (they print the uncorrected level and raw p-values); "" without a correction."""
    if correction in (None, "none"):
        return ""
    return ("(statsmodels' own fit summary: its intervals are at the uncorrected level and "
            "its p-values raw; the corrected ones are in the table and above)\n")


def _significant_reaching_zero(table: pd.DataFrame) -> int:
    """Rows called significant whose interval contains 0."""
    lo, hi = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    return int((table["significant"].to_numpy(bool) & (lo <= 0) & (hi >= 0)).sum())
