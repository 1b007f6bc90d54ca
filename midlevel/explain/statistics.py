"""Coefficient statistics on a design: statsmodels OLS / GLM / MNLogit, a bootstrap over clips,
multiple-comparison corrections, and the tidy table they share (columns in ``COLUMNS``:
target, concept, weight, std_weight, se, ci_low/high, std_ci_low/high, ci_level, stat,
p_value, p_adjusted, significant, method, r2, n, intercept, std_scale, data_note; see
:mod:`midlevel.explain.coefficients` for their meaning). ``method`` names the estimator of the
row ("OLS, HC3", "binomial GLM", "multinomial logit"...); the whole fit's description is the
table's ``attrs["method"]`` and heads the summary.

With a correction the p-values are adjusted over the whole table (one family), and the
intervals follow it (:mod:`midlevel.explain.multiplicity`): Bonferroni intervals for
bonferroni and holm, Benjamini & Yekutieli's false-coverage-rate intervals for fdr_bh;
``ci_level`` is their level.

A logistic or multinomial fit whose classes a linear function of the concepts separates
perfectly (complete or quasi-complete separation) has no maximum-likelihood estimate: some
weight runs off to infinity, and the fitted numbers (weights of hundreds, standard errors of
1e5, p-values near 1) are artefacts of where the optimizer stopped. Such a fit's rows carry
no estimate, interval or p-value (NaN) and say why in ``data_note`` (see :func:`separated`).
So do the rows of a least-squares fit of a target without variance on the fit's clips, or
that the concepts fit exactly (R^2 = 1 up to float rounding): their standard errors and
p-values would be rounding noise (:func:`~midlevel.explain.separation.ols_note`). Concepts in
an exact linear dependency on the fit's clips (a column read twice, tags that sum to 1) have no
unique weights: their rows carry no estimate, and the other concepts are fitted without the
repeats (:func:`~midlevel.explain.separation.dependent_concepts`).
"""
from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

from midlevel.checks import whole_number
from midlevel.errors import ExplainError
from midlevel.explain.coefficient_result import CoefficientResult
from midlevel.explain.levels import check_alpha
from midlevel.explain.multiplicity import (  # noqa: F401  (re-exported)
    CORRECTIONS, adjust_pvalues, interval_alpha, interval_lines, rebuild_intervals,
    uncorrected_note,
)
from midlevel.explain.separation import (
    dependent_concepts, dependent_text, fit_quietly, fit_summary, logistic_note, nan_fit,
    note_rows, ols_note, quiet, with_dependent,
)

COLUMNS = ["target", "concept", "weight", "std_weight", "se", "ci_low", "ci_high",
           "std_ci_low", "std_ci_high", "ci_level", "stat", "p_value", "p_adjusted",
           "significant", "method", "r2", "n", "intercept", "std_scale", "data_note", "versus"]


def check_n_boot(n_boot, least: int = 1) -> int:
    """``n_boot`` as an int of at least ``least``; ArgumentError naming it otherwise."""
    return whole_number(n_boot, "n_boot (--bootstrap)", least=least)


def _as_frame(values, names=None, what="X") -> pd.DataFrame:
    if isinstance(values, pd.Series):
        values = values.to_frame()
    if isinstance(values, pd.DataFrame):
        return values.astype(float)
    arr = np.asarray(values, dtype=float)
    arr = arr.reshape(len(arr), -1)
    names = names or [f"{what.lower()}{j}" for j in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=list(names))


def _finish(rows: list[dict], alpha: float, correction: str | None,
            method: str = "") -> pd.DataFrame:
    """The table of a fit's ``rows``: p-values adjusted over all of them, ``significant``,
    and intervals at the level the correction calls for (see
    :mod:`midlevel.explain.multiplicity`; rows carry ``_df``, the degrees of freedom of a
    Wald interval, or ``_draws``, bootstrap draws ``(n_draws,)``). ``method``: the fit's
    description, kept in ``attrs``."""
    df = [r.pop("_df", np.inf) for r in rows]
    draws = [r.pop("_draws", None) for r in rows]
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    for col in ("data_note", "versus"):  # "" where no row has one
        if col not in table:
            table[col] = ""
        table[col] = table[col].fillna("")
    correction = correction or "none"
    table["p_adjusted"] = adjust_pvalues(table["p_value"].to_numpy(), correction)
    table["significant"] = table["p_adjusted"] < alpha
    ci_alpha, m, selected = interval_alpha(table["p_value"], table["p_adjusted"], alpha,
                                           correction)
    if ci_alpha != alpha:
        table = rebuild_intervals(table, df, draws, ci_alpha)
    table["ci_level"] = 1 - ci_alpha
    sizes = [len(d) for d in draws if d is not None]
    table.attrs.update(alpha=alpha, correction=correction, ci_alpha=ci_alpha, n_tests=m,
                       n_selected=selected, n_draws=min(sizes) if sizes else None,
                       method=method)
    extra = [c for c in table.columns if c not in COLUMNS]
    return table[COLUMNS + extra].reset_index(drop=True)


def fit_ols(X, Y, *, alpha: float = 0.05, correction: str | None = None,
            method: str = "OLS", class_targets: dict[str, list] | None = None,
            summaries: bool = True, cov_type: str = "nonrobust",
            binary_targets=None) -> CoefficientResult:
    """Fit every target on the concepts with statsmodels (OLS; GLM/MNLogit for class targets).

    Parameters
    ----------
    X : pd.DataFrame [shape=(n_clips, n_concepts)]
        Concept values (rating units); column names are the concept names.
    Y : pd.DataFrame [shape=(n_clips, n_targets)]
        Target values; a class target holds integer class codes as float.
    alpha : float
        1 - confidence level of the intervals, and the significance level.
    correction : None or one of ``CORRECTIONS``
        Multiple-comparison correction over all (concept, target) p-values of the fit; the
        intervals follow it (:mod:`midlevel.explain.multiplicity`).
    method : str
        The fit's description (``attrs["method"]``, the summaries' keys); each row's
        ``method`` names its estimator: "OLS" (with the ``cov_type``, e.g. "OLS, HC3"),
        "binomial GLM" or "multinomial logit".
    class_targets : dict target -> list of class names
        Targets fitted as classifications: two classes with a binomial GLM (logit of the second
        class against the first, row target ``name=class1``), more with a multinomial logit
        (one row set per class against the first).
    summaries : keep the statsmodels summary text of every fit (off: faster).
    cov_type : statsmodels covariance of the OLS fits: "nonrobust" (classical) or a
        heteroscedasticity-robust one ("HC0".."HC3"), with t intervals either way.
    binary_targets : names of 0/1 targets (tags), fitted with a binomial GLM (the tag's
        log-odds; row target = the tag's name).

    Returns
    -------
    CoefficientResult

    Rows with NaN in X or in a target are left out of that target's fit.
    """
    import statsmodels.api as sm

    alpha = check_alpha(alpha)
    X, Y = _as_frame(X, what="X"), _as_frame(Y, what="Y")
    if len(X) != len(Y):
        raise ExplainError(f"X has {len(X)} rows but Y has {len(Y)}")
    class_targets = class_targets or {}
    rows, texts = [], {}
    keep = summaries
    names = list(X.columns)
    ols_label = "OLS" if cov_type == "nonrobust" else f"OLS, {cov_type}"
    for target in Y.columns:
        ok = np.isfinite(X.to_numpy()).all(1) & np.isfinite(Y[target].to_numpy())
        x, y = X.to_numpy()[ok], Y[target].to_numpy()[ok]
        if ok.sum() <= len(names) + 1:
            raise ExplainError(
                f"target '{target}': {ok.sum()} clips carry every concept and the target "
                f"({int(np.isfinite(Y[target].to_numpy()).sum())} have the target, "
                f"{int(np.isfinite(X.to_numpy()).all(1).sum())} every concept); more than "
                f"{len(names) + 1} are needed to fit {len(names)} concepts")
        # concepts the clips cannot tell apart: fitted without the repeats, no estimate
        kept, dependent = dependent_concepts(x, names)
        fitted = [names[j] for j in kept]
        design = sm.add_constant(pd.DataFrame(x[:, kept], columns=fitted), has_constant="add")
        sd_x = x[:, kept].std(axis=0, ddof=1)
        before = set(texts)
        rows += with_dependent(_target_rows(
            y, design, fitted, str(target), method, alpha, sd_x, texts, keep,
            classes=class_targets.get(target), binary=target in set(binary_targets or ()),
            ols_label=ols_label, cov_type=cov_type), names, dependent)
        for key in set(texts) - before if dependent else ():  # the summary is the reduced fit's
            texts[key] = dependent_text(names, kept, dependent) + texts[key]
    return CoefficientResult(_finish(rows, alpha, correction, method), texts)


def _target_rows(y, design, names, target, method, alpha, sd_x, texts, keep, *, classes,
                 binary, ols_label, cov_type) -> list[dict]:
    """The rows of one target's fit on ``design`` (intercept first, then ``names``): a
    binomial GLM for a binary target, OLS for a rating, a binomial GLM or a multinomial logit
    for a class target (``classes``: its class names)."""
    if binary:
        return _binomial_rows(y, design, names, target, method, alpha, sd_x, texts, keep)
    if classes is None:
        return _ols_rows(y, design, names, target, ols_label, alpha, sd_x,
                         texts if keep else None, f"{method}: {target}", cov_type)
    classes = list(classes)
    codes = y.astype(int)
    present = np.unique(codes)
    if len(present) < 2:
        raise ExplainError(f"class target '{target}': only one class in the data")
    if len(classes) == 2 or len(present) == 2:
        base, other = present[0], present[1]
        yy = (codes == other).astype(float)
        label = f"{target}={classes[other]}" if other < len(classes) else f"{target}={other}"
        return versus(_binomial_rows(yy, design, names, label, method, alpha, sd_x, texts,
                                     keep, key=f"{method} (GLM binomial, vs "
                                               f"{classes[base]}): {label}"),
                      classes[base])
    return _multinomial_rows(codes, design, names, target, classes, present, method, alpha,
                             sd_x, texts, keep)


def _ols_rows(y, design, names, target, label, alpha, sd_x, texts, key, cov_type) -> list[dict]:
    """Rows of the OLS fit of ``y`` ``(n,)`` on the design (``data_note`` set and no estimate
    where the target has no variance or the concepts fit it exactly: :func:`ols_note`);
    ``texts[key]``: its statsmodels summary (``texts`` None: none kept)."""
    import statsmodels.api as sm
    sd_y = float(y.std(ddof=1))
    note = ols_note(y)
    if note:
        if texts is not None:
            texts[key] = f"NOTE: {note}; not fitted.\n"
        return note_rows(_rows(*nan_fit(len(names)), names, target, label, np.nan, len(y),
                                sd_x, sd_y), note)
    res = sm.OLS(y, design).fit(cov_type=cov_type, use_t=True)
    note = ols_note(y, res.resid)
    with quiet() if note else contextlib.nullcontext():  # rounding noise's warnings: said
        if texts is not None:
            texts[key] = fit_summary(res, alpha, note)
        return note_rows(_rows(res.params, res.bse, res.conf_int(alpha), res.tvalues,
                                res.pvalues, names, target, label, float(res.rsquared), len(y),
                                sd_x, sd_y, df=float(res.df_resid)), note)


def _multinomial_rows(codes, design, names, target, classes, present, method, alpha, sd_x,
                      texts, keep) -> list[dict]:
    """Rows of the multinomial logit of class codes on the design, one row set per present
    class but the first (``data_note`` set and no estimate where the concepts separate the
    classes)."""
    import statsmodels.api as sm
    res, warned = fit_quietly(sm.MNLogit(codes, design), disp=False, maxiter=500)
    note = logistic_note(res, np.asarray(design, dtype=float), codes, warned)
    label = "multinomial logit"
    rows = []
    with quiet():  # statsmodels' overflow warnings on a separated fit: said by ``note``
        if keep:
            texts[f"{method} (multinomial logit, vs {classes[present[0]]}): {target}"] = \
                fit_summary(res, alpha, note)
        ci = res.conf_int(alpha) if res is not None else None
        for j, code in enumerate(present[1:]):
            unit = f"{target}={classes[code]}"
            if res is None:
                rows += note_rows(_rows(*nan_fit(len(names)), names, unit, label, np.nan,
                                         len(codes), sd_x, np.nan), note)
                continue
            cij = ci.xs(ci.index.get_level_values(0).unique()[j], level=0).to_numpy() \
                if isinstance(ci.index, pd.MultiIndex) else np.asarray(ci)[j]
            rows += note_rows(_rows(np.asarray(res.params)[:, j], np.asarray(res.bse)[:, j],
                                     cij, np.asarray(res.tvalues)[:, j],
                                     np.asarray(res.pvalues)[:, j], names, unit, label,
                                     float(res.prsquared), len(codes), sd_x, np.nan), note)
    return versus(rows, classes[present[0]])


def versus(rows: list[dict], base: str) -> list[dict]:
    """``rows`` of a class target's units, each marked with the class its weights are
    relative to (the ``versus`` column: the first declared class present in the fit's data,
    which need not be the first declared class)."""
    for row in rows:
        row["versus"] = str(base)
    return rows


def _binomial_rows(y, design, names, target, method, alpha, sd_x, texts, keep, *,
                   key: str | None = None) -> list[dict]:
    """Rows of the binomial GLM (logit link) of a 0/1 target on the design (``data_note``
    set and no estimate where the concepts separate the two values)."""
    import statsmodels.api as sm
    if len(np.unique(y)) < 2:
        raise ExplainError(f"binary target '{target}': one value only in the data")
    res, warned = fit_quietly(sm.GLM(y, design, family=sm.families.Binomial()))
    note = logistic_note(res, np.asarray(design, dtype=float), y, warned)
    label = "binomial GLM"
    if res is None:
        return note_rows(_rows(*nan_fit(len(names)), names, target, label, np.nan, len(y),
                                sd_x, np.nan), note)
    with quiet():  # statsmodels' overflow warnings on a separated fit: said by ``note``
        if keep:
            texts[key or f"{method} (GLM binomial): {target}"] = fit_summary(res, alpha, note)
        r2 = float(1 - res.deviance / res.null_deviance) if res.null_deviance > 0 else np.nan
        return note_rows(_rows(res.params, res.bse, res.conf_int(alpha), res.tvalues,
                                res.pvalues, names, target, label, r2, len(y), sd_x, np.nan),
                          note)


def _rows(params, bse, ci, stat, p, names, target, method, r2, n, sd_x, sd_y, *,
          df: float = np.inf, draws: np.ndarray | None = None) -> list[dict]:
    """Rows of one fit; index 0 of the arrays is the intercept. ``method``: the rows'
    estimator. ``df``: degrees of freedom of the Wald intervals' t (inf: normal), or
    ``draws`` ``(n_draws, 1 + n_concepts)``: the bootstrap's, for intervals at another level
    (see :func:`_finish`)."""
    params, bse, stat, p = (np.asarray(a, dtype=float) for a in (params, bse, stat, p))
    ci = np.asarray(ci, dtype=float)
    # a class fit has no target sd: standardize by the concept's sd only (logit per sd)
    scale = sd_x / (sd_y if np.isfinite(sd_y) and sd_y > 0 else 1.0)
    out = []
    for k, name in enumerate(names):
        out.append({"target": target, "concept": name, "weight": params[k + 1],
                    "std_weight": params[k + 1] * scale[k], "se": bse[k + 1],
                    "ci_low": ci[k + 1, 0], "ci_high": ci[k + 1, 1],
                    "std_ci_low": ci[k + 1, 0] * scale[k], "std_ci_high": ci[k + 1, 1] * scale[k],
                    "stat": stat[k + 1], "p_value": p[k + 1], "method": method, "r2": r2,
                    "n": n, "intercept": params[0], "std_scale": scale[k], "data_note": "",
                    "_df": df, "_draws": None if draws is None else draws[:, k + 1]})
    return out
