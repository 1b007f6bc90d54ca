"""What the data show when the concept ratings are noisy: a fit corrected for rater noise with
each concept's declared reliability.

A concept rating is the true concept plus rater noise, ``x = t + u``. The ``ratings``
estimator takes ``x`` as exact: the noise attenuates the slopes and, between correlated
concepts, moves weight from one to the other, a bias that more clips do not remove (audit 14b:
reliability 0.9, concepts correlated 0.9, a zero weight significant 16 % of the time at 360
clips, 93 % at 5000; see ``benchmarks/reliability_correction.py`` for the figures of this
correction). Where a spec declares a concept's *reliability* ``R = var(t) / var(x)`` (the
share of its rating variance raters agree on: for a mean of ``k`` ratings with intraclass
correlation ``rho``, Spearman-Brown's ``k rho / (1 + (k - 1) rho)``), the noise variance is
``(1 - R) var(x)`` and stage 1 replaces the ratings by ``E[t | x] = mu + (x - mu) S^-1 (S -
D)``, ``S`` the ratings' covariance and ``D = diag((1 - R) var(x))``: regression calibration
(Carroll, Ruppert, Stefanski & Crainiceanu, *Measurement Error in Nonlinear Models*, 2006,
ch. 4). For a rating target, stage 2's least squares then equals the method-of-moments
estimator ``(S - D)^-1 s_xy`` (Fuller, *Measurement Error Models*, 1987, ch. 2) exactly; for
class and binary targets the logit on ``E[t | x]`` is the usual approximation, which leaves a
bias that grows with the effect and does not shrink with more clips (:func:`logistic_line`). Both stages are
refitted on every bootstrap resample of the clips (:mod:`midlevel.explain.two_stage`).

What it assumes, and the summary says: the noise is independent of the true concepts, of the
other concepts' noise and of the targets' noise, and the declared reliabilities hold for these
clips (they are taken as known: their own uncertainty is not in the interval). A reliability
declared too high leaves part of the bias; one declared too low over-corrects.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError
from midlevel.explain import caveats
from midlevel.explain.coefficient_result import CoefficientResult
from midlevel.explain.separation import dependent_concepts
from midlevel.explain.two_stage import TwoStage, bootstrap_table


def check_reliability(reliability: dict, concepts: list[str], kinds: dict | None = None,
                      *, where: str = "reliability") -> dict[str, float]:
    """``{concept: R}`` with every name a rating concept of ``concepts`` (``kinds``: concept
    -> "regression" / "binary") and every ``R`` in (0, 1]; ExplainError naming the first that
    is not. ``where`` names the source in the message (an option or a spec key)."""
    out = {}
    for name, value in (reliability or {}).items():
        if name not in concepts:
            raise ExplainError(f"{where}: '{name}' is not a concept of the run; concepts are "
                               f"{concepts}")
        if (kinds or {}).get(name, "regression") != "regression":
            raise ExplainError(f"{where}: '{name}' is a binary concept (a tag); a reliability "
                               f"is for rating concepts")
        try:
            r = float(value)
        except (TypeError, ValueError):
            r = float("nan")
        if not 0 < r <= 1:
            raise ExplainError(f"{where}: '{name}' must be a reliability in (0, 1] (the share "
                               f"of its rating variance that is not rater noise), got {value!r}")
        out[name] = r
    return out


class ReliabilityStage(TwoStage):
    """Stage 1 from the declared reliabilities: ``E[t | x]`` from the ratings' own mean and
    covariance on the resample's clips with every concept rated (see the module's text).

    ``x`` ``(n_clips, K)``: the concept ratings; ``error_share`` ``(K,)``: ``1 - R`` (0 for a
    concept taken as exact)."""

    def __init__(self, x, Y, error_share, names, class_targets, binary_targets=()):
        super().__init__(x, x, Y, class_targets, binary_targets)
        self.error_share = np.asarray(error_share, float)
        self.names = names
        self.what = "the reliability correction"
        self.source = "reliability-corrected concept ratings"
        self.clips = "clips with every concept rated"

    def moments(self, idx: np.ndarray):
        """``(mu, S, D, factor)`` on the clips ``idx`` with every concept rated: the ratings'
        mean and covariance, the declared noise covariance ``D = diag((1 - R) var(x))``, and
        the share of ``D`` removed: 1, or less where ``S - D`` would not be positive definite
        (:func:`noise_factor`)."""
        cal = idx[self.calibration_rows[idx]]
        k = self.pred.shape[1]
        if len(cal) <= k + 1:
            raise ExplainError(f"the reliability correction needs more than {k + 1} clips with "
                               f"every concept rated; {len(cal)} have them")
        x = self.pred[cal]
        S = np.atleast_2d(np.cov(x, rowvar=False, ddof=1))
        D = np.diag(self.error_share * np.diag(S))
        try:
            factor = noise_factor(S, D, len(cal))
        except np.linalg.LinAlgError:
            factor = np.nan
        return x.mean(0), S, D, factor

    def calibrate(self, idx: np.ndarray) -> np.ndarray:
        mu, S, D, factor = self.moments(idx)
        dependent = ExplainError("the reliability correction: the concept ratings are "
                                 "linearly dependent on these clips")
        if not np.isfinite(factor):
            raise dependent
        try:
            return mu + (self.pred - mu) @ np.linalg.solve(S, S - factor * D)
        except np.linalg.LinAlgError:
            raise dependent from None


def smallest_root(S: np.ndarray, D: np.ndarray) -> float:
    """The smallest root ``lambda`` of ``|S - lambda D| = 0`` (``D`` diagonal, zero for the
    concepts taken as exact): ``S - c D`` is positive definite exactly for ``c < lambda``;
    inf where ``D`` is 0."""
    noisy = np.diag(D) > 0
    if not noisy.any():
        return float("inf")
    exact = ~noisy
    block = S[np.ix_(noisy, noisy)]
    if exact.any():  # the noisy concepts' covariance given the exact ones (Schur complement)
        block = block - S[np.ix_(noisy, exact)] @ np.linalg.solve(
            S[np.ix_(exact, exact)], S[np.ix_(exact, noisy)])
    d = np.sqrt(np.diag(D)[noisy])
    return float(np.linalg.eigvalsh(block / np.outer(d, d)).min())


def noise_factor(S: np.ndarray, D: np.ndarray, n: int) -> float:
    """The share of the declared noise ``D`` removed from ``S``: 1 (the method-of-moments
    correction) where the smallest root of ``|S - lambda D| = 0`` exceeds ``1 + 1 / (n -
    1)``, else that root minus ``1 / (n - 1)``: the correction limited so that the true
    concepts' covariance stays positive definite (after Fuller, *Measurement Error Models*,
    1987, section 2.5, whose modification also keeps the estimator's moments finite on few
    clips)."""
    root = smallest_root(S, D)
    step = 1 / max(n - 1, 1)
    return 1.0 if root > 1 + step else max(root - step, 0.0)


def limited_line(S: np.ndarray, D: np.ndarray, factor: float, names: list[str]) -> list[str]:
    """The summary's line when the full sample's correction was limited (``factor`` < 1),
    naming the pair of concepts whose ratings correlate more than their reliabilities allow,
    where one does."""
    if not factor < 1:
        return []
    reliab = 1 - np.diag(D) / np.diag(S)
    sd = np.sqrt(np.diag(S))
    r = S / np.outer(sd, sd)
    worst, pair = 1.0, None
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            limit = np.sqrt(reliab[i] * reliab[j])
            if abs(r[i, j]) > limit and abs(r[i, j]) / limit > worst:
                worst, pair = abs(r[i, j]) / limit, (i, j)
    why = ""
    if pair is not None:
        i, j = pair
        why = (f" (the ratings of {names[i]} and {names[j]} correlate {r[i, j]:.2f}, more than "
               f"reliabilities {reliab[i]:.2g} and {reliab[j]:.2g} allow: at most "
               f"{np.sqrt(reliab[i] * reliab[j]):.2f})")
    return [f"the declared reliabilities are too low for these clips{why}: the true concepts' "
            f"covariance would not be positive definite, so only {factor:.0%} of the declared "
            f"noise was removed (Fuller's modification); check the declared reliabilities"]


def corrected_fit(X: pd.DataFrame, Y: pd.DataFrame, reliability: dict, *, n_boot: int = 1000,
                  seed: int = 0, alpha: float = 0.05, correction: str | None = None,
                  class_targets: dict | None = None, binary_targets=(),
                  scales: dict | None = None) -> CoefficientResult:
    """The ``ratings`` estimator corrected for rater noise.

    Parameters
    ----------
    X : pd.DataFrame [shape=(n_clips, n_concepts)]
        Concept ratings (NaN where missing; stage 1 reads the clips with every concept).
    Y : pd.DataFrame [shape=(n_clips, n_targets)]
        Targets (NaN where missing; class targets as class codes).
    reliability : ``{concept: R}``, R in (0, 1] (:func:`check_reliability`); concepts not
        named are taken as exact.
    n_boot, seed : bootstrap resamples of the clips (both stages refitted on each), at least
        :data:`midlevel.explain.two_stage.MIN_BOOT`.
    scales : each column's declared rating scale, for the summary's floor and ceiling check.

    Returns
    -------
    CoefficientResult: rows as :func:`midlevel.explain.evidence.calibrated_fit`'s ("corrected
    OLS, bootstrap", "corrected [multinomial] logit, bootstrap"); ``std_scale`` divides by the
    true concept's sd, ``sqrt(R) sd(x)``. Where the declared reliabilities are too low for the
    clips, the correction is limited (:func:`noise_factor`) and the summary says so
    (``attrs["reliability_factor"]``: the share of the declared noise removed).
    """
    names = list(X.columns)
    reliability = check_reliability(reliability, names)
    x = X.to_numpy(float)
    complete = np.isfinite(x).all(1)
    kept, dependent = dependent_concepts(x[complete], names)
    share = np.array([1 - reliability.get(names[j], 1.0) for j in kept])
    stages = ReliabilityStage(x[:, kept], Y, share, [names[j] for j in kept],
                              class_targets or {}, binary_targets)
    root = np.sqrt(1 - share)
    declared = ", ".join(f"{c} {r:g}" for c, r in reliability.items())
    exact = "" if len(reliability) == len(names) else "; the other concepts taken as exact"
    logistic = bool(class_targets) or bool(binary_targets)
    fits = ("least squares (logit for class and binary targets)" if logistic else "OLS")
    label = (f"{fits} of the targets on the concept ratings corrected for rater noise "
             f"(regression calibration from the declared reliabilities: {declared}{exact}), "
             f"{int(complete.sum())} clips with every concept rated, bootstrap")
    table = bootstrap_table(
        stages, names, [names[j] for j in kept], dependent, n_boot=n_boot, seed=seed,
        alpha=alpha, correction=correction, label=label, row_label=_label,
        concept_sd=lambda values, ok: root * x[ok][:, kept].std(axis=0, ddof=1),
        few="too few clips")
    ratings = [t for t in Y.columns
               if t not in (class_targets or {}) and t not in set(binary_targets or ())]
    uncorrected = caveats.high_vif(X).drop(list(reliability), errors="ignore")
    _, S, D, factor = stages.moments(np.arange(len(x)))
    table.attrs["correlated"] = list(uncorrected.index)
    table.attrs["reliability_factor"] = factor
    table.attrs["caveats"] = (
        correction_lines(reliability) + logistic_line(class_targets, binary_targets)
        + few_line(int(complete.sum()), len(names))
        + limited_line(S, D, factor, stages.names)
        + caveats.correlated_concepts(X, uncorrected)
        + caveats.scale_ends(X, Y, ratings, scales)
        + caveats.nonlinearity(X, Y, ratings, alpha=alpha))
    return CoefficientResult(table, {})


def _label(target: str, logistic: set, *, many: bool) -> str:
    if target not in logistic:
        return "corrected OLS, bootstrap"
    return f"corrected {'multinomial ' if many else ''}logit, bootstrap"


def correction_lines(reliability: dict) -> list[str]:
    """The summary's line on what the correction assumes."""
    declared = ", ".join(f"{c} {r:g}" for c, r in reliability.items())
    return [f"corrected for rater noise with the declared reliabilities ({declared}): the noise "
            f"is taken as independent of the true concepts, of the other concepts' noise and of "
            f"the targets' noise, and the reliabilities as known for these clips; one declared "
            f"too high leaves part of the bias, too low over-corrects"]


def logistic_line(class_targets, binary_targets) -> list[str]:
    """The summary's line on class and binary targets: regression calibration of a logit is
    an approximation whose bias grows with the effect (re-audit 15: a log-odds weight of 1.5
    at reliability 0.75 read 1.38, one of 2.5 read 2.03, on 2000 clips; their intervals
    covered 0.76 and 0.04; RESULTS, "Reliability correction")."""
    names = [*(class_targets or {}), *(binary_targets or ())]
    if not names:
        return []
    return [f"for the class and binary targets ({', '.join(map(str, names))}) the correction is "
            f"regression calibration's approximation of a logit: it removes part of the "
            f"bias, less the larger the effect, so their weights stay attenuated and their "
            f"intervals, where given, too narrow on many clips"]


def few_line(n_clips: int, n_concepts: int) -> list[str]:
    """The summary's line below ``caveats.FEW_PER_PARAMETER`` clips per parameter: the
    correction divides by the true concepts' estimated covariance, unstable on few clips."""
    if n_clips >= caveats.FEW_PER_PARAMETER * (n_concepts + 1):
        return []
    return [f"only {n_clips} clips for the correction of {n_concepts} concepts (fewer than "
            f"{caveats.FEW_PER_PARAMETER} per parameter): the corrected weights are unstable "
            f"and their intervals wide and uneven"]


def corrects(reliability: dict | None) -> bool:
    """Whether ``reliability`` declares rater noise: a value below 1 (1 is exact)."""
    return any(r < 1 for r in (reliability or {}).values())


def unused_line(reliability: dict) -> list[str]:
    """The summary's line when the calibrated estimator answers: it needs no reliability."""
    if not corrects(reliability):
        return []
    return ["the declared reliabilities are not used: regression calibration regresses the "
            "concept ratings on the model's predictions, where rater noise in the ratings only "
            "widens the intervals"]
