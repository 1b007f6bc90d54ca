"""What the data show: the concept -> target association among clips, with intervals that
hold for it.

A bottleneck's head answers "what does the model do" exactly; this module answers the other
question, "how do the concepts relate to the targets in the data", as an estimate whose 95 %
interval covers the linear association at about its nominal rate where its assumptions hold
(see shared/STATISTICS.md in the project notes, Carroll et al., *Measurement Error in
Nonlinear Models*, 2006, and :mod:`midlevel.explain.caveats`). Two estimators:

``ratings``
    Clips that carry human ratings of every concept *and* of the target: statsmodels OLS of the
    target on the concept ratings with heteroscedasticity-robust (HC3) standard errors and t
    intervals (ratings are bounded and their noise is uneven near the ends); a binomial GLM or
    a multinomial logit for class targets, a binomial GLM (the tag's log-odds) for binary
    targets. Binary concepts enter as their 0/1 labels, so a weight is the change of the
    target when the tag goes from absent to present (the head's "per unit probability"). No
    model is involved, so nothing the CNN did (in sample or not) enters the estimate. It is
    the best linear summary of the target on the ratings among these clips, an association
    (:mod:`midlevel.explain.caveats` says where it is not the per-point effect): the ratings
    are taken as exact, and rater noise attenuates the slopes (about 4 % for the synthetic
    world's noise on nearly unrelated concepts) and, between correlated concepts, moves
    weight from one to another (reliability 0.9, r 0.9: a zero weight significant 16 % of the
    time at 360 clips). That bias does not shrink with more clips while the interval does,
    so coverage falls below nominal on large sets of noisy ratings (audit 13a: 0.96 at 40 and
    80 clips, 0.915 at 400 on the synthetic world's noise; audit 14b: 0.47 at 5000 clips of
    correlated concepts at reliability 0.9). Floors, ceilings and curved relations change
    what the slope means, not whether its interval covers it.
    Where the spec declares concepts' reliabilities (``reliability:``), the fit is corrected
    for that noise instead (:mod:`midlevel.explain.reliability`: regression calibration from
    the reliabilities, bootstrapped; "corrected OLS, bootstrap").

``calibrated``
    For datasets whose target clips lack concept ratings: regression calibration on
    *held-out* predictions. Stage 1 estimates ``E[rating | predicted concepts]`` (a linear map,
    every concept rating on all predicted concepts) on held-out clips that have concept
    ratings; stage 2 regresses the target on the calibrated predictions of held-out clips that
    have the target. Both stages are bootstrapped together over clips, so the interval carries
    the calibration's uncertainty. Held-out (validation and test) clips only: the CNN's
    predictions on its own training clips fit their ratings too well, and their errors differ
    from those on new clips.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError
from midlevel.explain import caveats
from midlevel.explain.levels import check_alpha
from midlevel.explain.reliability import corrected_fit, corrects
from midlevel.explain.separation import dependent_concepts
from midlevel.explain.coefficient_result import CoefficientResult
from midlevel.explain.statistics import check_n_boot, fit_ols
from midlevel.explain.two_stage import (  # noqa: F401  (p_to_z, robust_spread: public here)
    MIN_BOOT, TwoStage, bootstrap_table, logit_coef as _logit_coef, p_to_z, robust_spread,
)

METHODS = ("ratings", "calibrated")


def min_clips(n_concepts: int) -> int:
    """Fewest clips with every concept and the target rated for the ``ratings`` estimator."""
    return max(30, 5 * (n_concepts + 1))


def rated_design(table: pd.DataFrame, concepts: list[str], targets: list[str]):
    """``(X, Y)``: concept ratings and targets of the clips of ``table`` (NaN = missing).

    Returns
    -------
    X : pd.DataFrame [index=clip, columns=concepts]
    Y : pd.DataFrame [index=clip, columns=targets]
    """
    missing = [c for c in concepts + targets if c not in table.columns]
    if missing:
        raise ExplainError(f"annotations lack the run's column(s) {missing}")
    return (table[concepts].astype(float), table[targets].astype(float))


def choose_method(X: pd.DataFrame, Y: pd.DataFrame, held_out=None) -> str:
    """The estimator ``--data auto`` takes (:func:`auto_method`, without its reason)."""
    return auto_method(X, Y, held_out)[0]


def auto_method(X: pd.DataFrame, Y: pd.DataFrame, held_out=None,
                logistic=()) -> tuple[str, str]:
    """``(estimator, why)`` for ``--data auto``: ``ratings`` when, for every target, enough
    clips carry every concept and the target (:func:`min_clips`), or every clip with the
    target also carries every concept (a small dataset: wide intervals, but the right
    estimator); else ``calibrated``, unless it cannot fit: fewer than
    :func:`min_calibration_clips` clips of ``held_out`` (a boolean mask ``(n_clips,)`` of the
    validation and test clips) carry every concept, or carry a rating target (``logistic``:
    the class and binary targets, fitted by logistic regression, exempt), while the ratings
    can (:func:`ratings_possible`): then ``ratings``, with its wide intervals. ``why`` says it
    in a sentence. Raises ExplainError, saying why, when neither can answer."""
    k = X.shape[1]
    complete = np.isfinite(X.to_numpy()).all(1)
    both = {t: int((complete & np.isfinite(Y[t].to_numpy())).sum()) for t in Y.columns}
    rated = {t: int(np.isfinite(Y[t].to_numpy()).sum()) for t in Y.columns}
    short = [t for t in Y.columns
             if both[t] < min_clips(k) and not (both[t] == rated[t] and both[t] > k + 2)]
    counts = _range(list(both.values()))
    if not short:
        return "ratings", (f"--data auto chose the ratings: {counts} clips carry every concept "
                           f"and the target (at least {min_clips(k)} needed, or every clip "
                           f"with the target)")
    t = min(short, key=both.get)
    few = (f"only {both[t]} clips carry every concept and '{t}' (fewer than "
           f"{min_clips(k)}, and {rated[t]} have '{t}')")
    chose = f"--data auto chose regression calibration on held-out predictions: {few}"
    if held_out is None:
        return "calibrated", chose
    held, need = np.asarray(held_out, bool), min_calibration_clips(k)
    cal = int((complete & held).sum())        # stage 1: every concept rated
    target_held = {t: int((held & np.isfinite(Y[t].to_numpy())).sum()) for t in Y.columns
                   if t not in set(logistic)}  # stage 2 of a rating target: least squares
    worst = min(target_held, key=target_held.get) if target_held else None
    if cal >= need and (worst is None or target_held[worst] >= need):
        return "calibrated", chose
    what = (f"with every concept rated, and {cal} have them" if cal < need else
            f"with each rating target, and {target_held[worst]} have '{worst}'")
    why = (f"regression calibration needs at least {need} held-out (validation or test) clips "
           f"{what}")
    if ratings_possible(X, Y):
        return "ratings", f"--data auto chose the ratings although {few}: {why}; the " \
                          f"intervals are wide"
    raise ExplainError(f"the data cannot answer what the concepts do: {few}, too few for "
                       f"the ratings estimator (more than {k + 2} needed), and {why}. "
                       f"Rate every concept on more clips that have the targets, or on more "
                       f"validation and test clips")


def min_calibration_clips(n_concepts: int) -> int:
    """Fewest held-out clips ``--data auto`` takes regression calibration from (with every
    concept, and with each rating target): twice a fit's parameters, so that most bootstrap
    resamples (about 63 % distinct clips) still hold more distinct clips than parameters."""
    return 2 * (n_concepts + 1)


def ratings_possible(X: pd.DataFrame, Y: pd.DataFrame) -> bool:
    """Whether every target has more than ``K + 2`` clips with every concept and it rated."""
    complete = np.isfinite(X.to_numpy()).all(1)
    return all(int((complete & np.isfinite(Y[t].to_numpy())).sum()) > X.shape[1] + 2
               for t in Y.columns)


def _range(values: list[int]) -> str:
    """``"40"`` or ``"40-120"``."""
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def ratings_fit(X: pd.DataFrame, Y: pd.DataFrame, *, alpha: float = 0.05,
                correction: str | None = None, class_targets: dict | None = None,
                binary_targets=None, scales: dict | None = None,
                reliability: dict | None = None, n_boot: int = 1000, seed: int = 0):
    """The ``ratings`` estimator: OLS with HC3 errors (GLM / MNLogit for class targets, a
    binomial GLM for binary targets); ``scales``: each column's declared rating scale
    (:func:`midlevel.explain.caveats.declared_scales`), for the summary's floor and ceiling
    check. ``reliability`` (``{concept: R}``, a rating concept's declared reliability): where
    one is below 1, the fit corrected for rater noise instead
    (:func:`midlevel.explain.reliability.corrected_fit`, bootstrapped ``n_boot`` times from
    ``seed``).

    Returns a :class:`midlevel.explain.coefficients.CoefficientResult`.
    """
    if corrects(reliability):
        return corrected_fit(X, Y, reliability, n_boot=check_n_boot(n_boot, MIN_BOOT),
                             seed=seed, alpha=alpha, correction=correction,
                             class_targets=class_targets, binary_targets=binary_targets or (),
                             scales=scales)
    complete = np.isfinite(X.to_numpy()).all(1)
    n = [int((complete & np.isfinite(Y[t].to_numpy())).sum()) for t in Y.columns] or [0]
    clips = (f"{n[0]} clips" if min(n) == max(n) else
             f"{_range(n)} clips with every concept and the target (per target: column n)")
    tags = "; binomial GLM for binary targets" if binary_targets else ""
    if class_targets:
        tags += "; binomial GLM or multinomial logit for class targets"
    try:
        result = fit_ols(X, Y, alpha=alpha, correction=correction,
                         class_targets=class_targets, cov_type="HC3",
                         binary_targets=binary_targets,
                         method=f"OLS of the targets on the concept ratings (HC3 errors{tags}), "
                                f"{clips}")
    except ExplainError as exc:
        if "clips carry every concept" not in str(exc):
            raise
        raise ExplainError(f"{exc}; the ratings estimator needs clips rated on both. "
                           f"--data calibrated estimates the associations from the model's "
                           f"held-out predictions instead") from None
    ratings = [t for t in Y.columns
               if t not in (class_targets or {}) and t not in set(binary_targets or ())]
    high = caveats.high_vif(X)
    result.table.attrs["correlated"] = list(high.index)   # for the flags' reasons
    result.table.attrs["caveats"] = (
        caveats.correlated_concepts(X, high) + caveats.scale_ends(X, Y, ratings, scales)
        + caveats.nonlinearity(X, Y, ratings, alpha=alpha))
    return result


# ----------------------------------------------------------------------------- calibrated


def calibrated_fit(pred: pd.DataFrame, rated: pd.DataFrame, Y: pd.DataFrame, *,
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                   correction: str | None = None, class_targets: dict | None = None,
                   method: str | None = None, binary_targets=()):
    """The ``calibrated`` estimator: regression calibration with a two-stage bootstrap
    (stage 2 logistic for class and binary targets; :mod:`midlevel.explain.two_stage`).

    Parameters
    ----------
    pred : pd.DataFrame [shape=(n_clips, n_concepts)]
        The model's predicted concepts on held-out clips (rating units).
    rated : pd.DataFrame [shape=(n_clips, n_concepts)]
        Concept ratings of the same clips (NaN where a clip has none).
    Y : pd.DataFrame [shape=(n_clips, n_targets)]
        Targets of the same clips (NaN where missing; class targets as class codes).
    n_boot : bootstrap resamples of the clips (both stages refitted on each), at least
        ``MIN_BOOT``.

    Returns
    -------
    CoefficientResult (rows' ``method``: "calibrated OLS, bootstrap" or "calibrated
    [multinomial] logit, bootstrap"; the fit's description in ``attrs["method"]``): the
    full-sample two-stage estimate as ``weight``, the bootstrap draws' robust spread
    (:func:`robust_spread`) as ``se`` (a scale: on few clips the draws are heavy-tailed and
    the interval is wider than 1.96 se), ``stat`` the z of the p-value (:func:`p_to_z`),
    percentile intervals, two-sided bootstrap p-values
    ``2 min(P(b <= 0), P(b >= 0))`` (at least ``1 / n_boot``). A class or binary target whose
    classes the calibrated concepts separate (:func:`~midlevel.explain.separation.separated`)
    has no estimate: NaN, and a ``data_note`` saying so; so has a rating target without
    variance, or that the calibrated concepts fit exactly
    (:func:`~midlevel.explain.separation.ols_note`).
    """
    alpha = check_alpha(alpha)
    n_boot = check_n_boot(n_boot, MIN_BOOT)
    names = list(pred.columns)
    if list(rated.columns) != names:
        raise ExplainError(f"rated concepts {list(rated.columns)} do not match the predicted "
                            f"ones {names}")
    p, r = pred.to_numpy(float), rated.to_numpy(float)
    stages = TwoStage(p, r, Y, class_targets or {}, binary_targets)
    # concepts the calibrated values cannot tell apart (their ratings repeat one another):
    # stage 2 fits without the repeats, and they get no estimate
    calibrated = stages.calibrate(np.arange(len(p)))
    kept, dependent = dependent_concepts(calibrated[np.isfinite(p).all(1)], names)
    stages.kept = np.asarray(kept, dtype=int)
    n_cal = int(stages.calibration_rows.sum())
    label = method or (f"regression calibration on held-out predictions ({n_cal} clips with "
                       f"concept ratings), two-stage bootstrap")
    table = bootstrap_table(
        stages, names, [names[j] for j in kept], dependent, n_boot=n_boot, seed=seed,
        alpha=alpha, correction=correction, label=label, row_label=_calibrated_label,
        concept_sd=lambda values, ok: values[ok].std(axis=0, ddof=1),
        few="too few held-out clips")
    table.attrs["caveats"] = caveats.calibration_assumption(n_cal, len(names))
    return CoefficientResult(table, {})


def _calibrated_label(target: str, logistic: set, *, many: bool) -> str:
    """The ``method`` of a calibrated row: its stage-2 estimator (``many``: more than two
    classes present; two are a logit whatever the number declared, as the ratings fit
    labels them)."""
    if target not in logistic:
        return "calibrated OLS, bootstrap"
    return f"calibrated {'multinomial ' if many else ''}logit, bootstrap"
