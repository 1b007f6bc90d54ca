"""Percentile bootstrap over clips of the least-squares fit of every regression target: a
coefficient table whose intervals need no normal approximation (the table's columns and the
correction's intervals as in :mod:`midlevel.explain.statistics`)."""
from __future__ import annotations

import numpy as np

from midlevel.errors import ExplainError
from midlevel.explain.coefficient_result import CoefficientResult
from midlevel.explain.levels import check_alpha
from midlevel.explain.separation import (
    RankDeficient, dependent_concepts, least_squares, note_rows, ols_note, with_dependent,
)
from midlevel.explain.statistics import _as_frame, _finish, _rows, check_n_boot

__all__ = ["bootstrap_ols"]


def bootstrap_ols(X, Y, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                  correction: str | None = None,
                  method: str = "bootstrap over clips (OLS refit)") -> CoefficientResult:
    """Percentile bootstrap over clips of the least-squares fit of every (regression) target.

    Clips are drawn with replacement ``n_boot`` times and the OLS fit repeated. ``se`` is the
    bootstrap standard deviation, the interval the percentile interval, ``p_value`` the
    two-sided bootstrap p-value ``2 * min(P(b <= 0), P(b >= 0))`` (at least ``1 / n_boot``),
    ``weight`` the fit on all clips. A resample whose clips cannot fit every coefficient
    (fewer distinct clips than coefficients) is drawn again, and counted in the description;
    more of them than ``n_boot`` is an ExplainError (too few clips to bootstrap). Each row's
    ``method`` is "OLS, bootstrap"; ``method`` is the fit's description
    (``attrs["method"]``). A target without variance, or that the
    concepts fit exactly, has no estimate (NaN, and a ``data_note``:
    :func:`~midlevel.explain.separation.ols_note`); nor have concepts in an exact linear
    dependency (:func:`~midlevel.explain.separation.dependent_concepts`).
    """
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot, 1)
    X, Y = _as_frame(X, what="X"), _as_frame(Y, what="Y")
    rng = np.random.default_rng(seed)
    names = list(X.columns)
    rows, redrawn = [], 0
    for target in Y.columns:
        ok = np.isfinite(X.to_numpy()).all(1) & np.isfinite(Y[target].to_numpy())
        x, y = X.to_numpy()[ok], Y[target].to_numpy()[ok]
        n = len(y)
        if n <= len(names) + 1:
            raise ExplainError(f"target '{target}': {n} complete rows, too few to bootstrap")
        kept, dependent = dependent_concepts(x, names)  # no estimate: see fit_ols
        x = x[:, kept]
        design = np.hstack([np.ones((n, 1)), x])
        full = least_squares(x, y)
        boots, tries = np.empty((n_boot, design.shape[1])), 0
        for b in range(n_boot):  # a rank-deficient resample (too few distinct clips) is
            while True:          # drawn again: its minimum-norm fit depends on the units
                tries += 1
                if tries > 2 * n_boot:
                    raise ExplainError(f"target '{target}': more than half of the bootstrap "
                                       f"resamples of its {n} clips cannot fit the "
                                       f"{design.shape[1]} coefficients (too few distinct "
                                       f"clips); too few clips to bootstrap")
                idx = rng.integers(n, size=n)
                try:
                    boots[b] = least_squares(x[idx], y[idx])
                    break
                except RankDeficient:
                    continue
        redrawn += tries - n_boot
        lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
        se = boots.std(axis=0, ddof=1)
        p = np.maximum(2 * np.minimum((boots <= 0).mean(0), (boots >= 0).mean(0)), 1 / n_boot)
        resid = y - design @ full
        r2 = float(1 - resid.var() / y.var()) if y.var() > 0 else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = full / se
        rows += with_dependent(note_rows(_rows(
            full, se, np.stack([lo, hi], 1), stat, np.minimum(p, 1.0), [names[j] for j in kept],
            str(target), "OLS, bootstrap", r2, n, x.std(axis=0, ddof=1),
            float(y.std(ddof=1)), draws=boots), ols_note(y, resid)), names, dependent)
    again = f" ({redrawn} rank-deficient ones drawn again)" if redrawn else ""
    return CoefficientResult(_finish(rows, alpha, correction,
                                     f"{method}, {n_boot} resamples{again}"), {})
