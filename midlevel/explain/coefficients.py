"""The global explanation: a bottleneck's concept -> target weights, and what the data show.

A coefficient table answers two questions, in separate columns of one row per (target, concept):

1. *What the model does* (``model_weight``, ``model_std_weight``): the weight the head actually
   uses, read from the model in rating units: exact, for every training mode (independent,
   sequential, joint, class heads). There is nothing to estimate, so it carries no interval.
2. *What the data show* (``weight``, ``se``, ``ci_low``/``ci_high``, ``p_value``...): the
   concept -> target relation among clips, estimated so that its intervals hold (see
   :mod:`midlevel.explain.evidence`): from the human ratings where clips carry both concept and
   target ratings, by regression calibration on held-out predictions where they do not. Never
   from the CNN's in-sample predictions treated as exact.

Where the two disagree beyond the data's interval, ``flag`` says how (see
:mod:`midlevel.explain.flags`). For joint and sequential runs a leakage diagnostic
(:mod:`midlevel.explain.leakage`) comes with the table.

=================  ========================================================================
column             meaning
=================  ========================================================================
target             output unit (a regression target, a binary target (tag), or
                   ``name=class`` for a class logit against the class in ``versus``)
concept            concept name
model_weight       the head's weight (target points per concept rating point, or per unit
                   of predicted probability for a binary concept; for a binary target
                   log-odds; for a class unit, its logit's weight minus that of the class
                   in ``versus``)
model_std_weight   ``model_weight * std_scale``
weight             the data's estimate, in the same units
std_weight         ``weight * std_scale``; ``std_scale = sd(concept) / sd(target)`` on the
                   fit's clips (class and binary targets: ``sd(concept)``, logit per sd)
se, ci_low/high    standard error and interval of ``weight``: level ``1 - alpha``, or with a
                   correction the level that matches it (``ci_level``; Bonferroni for
                   bonferroni and holm, Benjamini & Yekutieli's false-coverage-rate level
                   for fdr_bh: :mod:`midlevel.explain.multiplicity`)
std_ci_low/high    the same interval, standardized
ci_level           the intervals' level (0.95 at alpha 0.05 without a correction)
stat, p_value      t or z statistic (bootstrap: the z of its p-value, capped where p
                   reaches its floor 1/n_boot: 2.81 at 200 resamples, 3.29 at 1000),
                   two-sided p-value
p_adjusted         after the multiple-comparison correction (over the whole table);
                   ``significant``: < alpha
method             the row's estimator: "OLS, HC3", "binomial GLM", "multinomial logit",
                   "calibrated OLS, bootstrap"...; the fit's description is in the summary
r2, n, intercept   of the data's fit
data_note          why the data give no estimate for the row (then weight, interval and
                   p-value are NaN): the concepts separate a class or binary target's
                   classes perfectly, the fit did not converge, a rating target has no
                   variance on the fit's clips, or the concepts fit it exactly (R^2 = 1 up
                   to float rounding: p-values would be rounding noise); empty otherwise
versus             for a class unit, the class both weights are relative to: the first
                   declared class that clips of the fit have (a declared class no clip has
                   cannot be a base); empty for other targets
flag, flag_reason  where the model departs from the data (empty: it does not; a row
                   without the data's interval is not flagged), or ``no training spread``:
                   the concept's ratings do not vary among the training clips, so its
                   weight is no effect (see :mod:`midlevel.explain.flags`)
mode               the run's training mode
concept_kind       "regression" (weights per rating point) or "binary" (per unit of
                   predicted probability; the data's weight: tag absent -> present)
=================  ========================================================================
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError
from midlevel.explain import evidence
from midlevel.explain.caveats import declared_scales
from midlevel.explain.flags import MATERIALITY, check_materiality, flag_weights, mark_untrained
from midlevel.explain.head import (
    LinearHead, binary_targets_of, class_targets_of, require_bottleneck,
)
from midlevel.explain.leakage import leakage_diagnostic
from midlevel.explain.levels import check_alpha
from midlevel.explain.reliability import check_reliability, corrects, unused_line
from midlevel.explain.coefficient_result import CoefficientResult
from midlevel.explain.statistics import COLUMNS, check_n_boot
from midlevel.run import load_run
from midlevel.training.scales import columns_without_spread

RUN_COLUMNS = ["target", "concept", "model_weight", "model_std_weight"] + COLUMNS[2:] + [
    "flag", "flag_reason", "mode", "concept_kind"]


def model_weights(run, units, concepts, versus=None) -> np.ndarray:
    """The head's weight of every ``(unit, concept)`` pair, a class unit's relative to the
    class of the same row of ``versus`` (the class the data's row is relative to; see
    ``LinearHead.weight_of``)."""
    head = LinearHead.from_run(run)
    versus = [""] * len(units) if versus is None else list(versus)
    return np.array([head.weight_of(u, c, v or None) for u, c, v in zip(units, concepts, versus)],
                    dtype=float)


def run_coefficients(run, *, spec=None, root=None, cache_dir=None, alpha: float = 0.05,
                     correction: str | None = None, data: str = "auto", n_boot: int = 1000,
                     seed: int = 0, materiality: float | None = None, leakage: bool = True,
                     predictions: pd.DataFrame | None = None,
                     progress: bool = False,
                     reliability: dict | str | None = None) -> CoefficientResult:
    """Both questions for a concept-bottleneck run (``midlevel coefficients``).

    Parameters
    ----------
    run : a loaded run (:func:`midlevel.training.load_run`) or its directory.
    spec, root, cache_dir : the annotations (default: the spec and root the run was trained
        with) and the feature cache (for held-out predictions).
    alpha, correction : interval level / significance (strictly between 0 and 1) and
        multiple-comparison correction of the data's p-values, which the intervals follow
        (see :mod:`midlevel.explain.multiplicity`).
    data : how the data's answer is estimated: "ratings", "calibrated" or "auto" (ratings
        when at least :func:`midlevel.explain.evidence.min_clips` clips carry every concept
        and the target; see :mod:`midlevel.explain.evidence`).
    n_boot, seed : bootstrap of the calibrated estimator (at least 1;
        :data:`midlevel.explain.evidence.MIN_BOOT` when it is used).
    materiality : standardized margin of the flags, at least 0 (default
        :data:`midlevel.explain.flags.MATERIALITY`).
    leakage : add the leakage diagnostic (joint and sequential runs).
    predictions : reuse :meth:`midlevel.run.Run.predictions` of the
        validation and test splits (otherwise computed when needed).
    reliability : ``{concept: R}``, rating concepts' reliabilities (the share of their
        rating variance that is not rater noise, in (0, 1]), each replacing what the spec
        declares for that concept (a concept's ``reliability:``; 1: taken as exact; an empty
        mapping keeps the spec's); default None: the spec's alone; ``"none"``: no
        correction. Where one is below 1 the ratings estimator is corrected for rater noise
        (:mod:`midlevel.explain.reliability`); the calibrated estimator needs none and says
        so.

    Returns
    -------
    CoefficientResult with ``RUN_COLUMNS`` and, for joint and sequential runs, ``leakage``.

    Raises ArgumentError (naming the option) for ``alpha`` outside (0, 1), ``materiality``
    below 0 and ``n_boot`` below 1 (below ``evidence.MIN_BOOT`` for the calibrated estimator),
    before anything is computed.
    """
    alpha = check_alpha(alpha)
    materiality = MATERIALITY if materiality is None else check_materiality(materiality)
    n_boot = check_n_boot(n_boot, 1)
    run = load_run(run)
    require_bottleneck(run)
    if data not in ("auto", *evidence.METHODS):
        raise ExplainError(f"data must be 'auto', 'ratings' or 'calibrated', got '{data}'")
    concepts, targets = run.concept_names, run.target_names
    classes = class_targets_of(run)
    binary = binary_targets_of(run)
    annotations = run.annotations(spec, root=root)
    X, Y = evidence.rated_design(annotations, concepts, targets)
    reliability = run_reliability(run, spec, root, reliability)
    why = ""
    if data == "auto":
        held_out = annotations["split"].isin(["validation", "test"]).to_numpy()
        method, why = evidence.auto_method(X, Y, held_out, logistic=[*classes, *binary])
    else:
        method = data
    if method == "calibrated" or (method == "ratings" and corrects(reliability)):
        n_boot = check_n_boot(n_boot, evidence.MIN_BOOT)
    wants_leakage = leakage and run.mode in ("joint", "sequential")
    if predictions is None and (method == "calibrated" or wants_leakage):
        predictions = run.predictions(("validation", "test"), spec=spec, root=root,
                                      cache_dir=cache_dir, progress=progress)
    if method == "ratings":
        result = evidence.ratings_fit(X, Y, alpha=alpha, correction=correction,
                                      class_targets=classes, binary_targets=binary,
                                      scales=declared_scales(run, spec, root=root),
                                      reliability=reliability, n_boot=n_boot, seed=seed)
    else:
        held = predictions[predictions["split"].isin(["validation", "test"])]
        if held.empty:
            raise ExplainError(f"{run.path}: the calibrated estimator needs held-out "
                                f"(validation or test) clips; the spec has none")
        true = held[[f"true:{c}" for c in concepts]].set_axis(concepts, axis=1)
        ys = held[[f"true:{t}" for t in targets]].set_axis(targets, axis=1)
        try:
            result = evidence.calibrated_fit(held[concepts], true, ys, n_boot=n_boot,
                                             seed=seed, alpha=alpha, correction=correction,
                                             class_targets=classes, binary_targets=binary)
        except ExplainError as exc:  # auto's choice could not fit after all: the ratings
            if data != "auto" or not evidence.ratings_possible(X, Y):
                raise
            method = "ratings"
            why = (f"--data auto chose the ratings: regression calibration could not fit "
                   f"({exc}); the intervals are wide")
            result = evidence.ratings_fit(X, Y, alpha=alpha, correction=correction,
                                          class_targets=classes, binary_targets=binary,
                                          scales=declared_scales(run, spec, root=root),
                                          reliability=reliability, n_boot=n_boot,
                                          seed=seed)
        else:
            result.table.attrs["caveats"] = (result.table.attrs.get("caveats", [])
                                             + unused_line(reliability))
    table = result.table.copy()
    table.insert(2, "model_weight", model_weights(run, table["target"], table["concept"],
                                                  table["versus"]))
    table.insert(3, "model_std_weight", table["model_weight"] * table["std_scale"])
    head = LinearHead.from_run(run)
    kinds = dict(zip(head.concepts, head.concept_kinds))
    table["concept_kind"] = [kinds.get(c, "regression") for c in table["concept"]]
    # judged against the interval shown: with a correction, the corrected one
    table = flag_weights(table, materiality=materiality,
                         alpha=result.table.attrs.get("ci_alpha", alpha))
    training = annotations[annotations["split"] == "train"]
    table = mark_untrained(table, columns_without_spread(training, concepts))
    table["mode"] = run.mode
    table = table[RUN_COLUMNS].reset_index(drop=True)
    table.attrs.update(result.table.attrs, data=method, data_choice=why)
    leak = leakage_diagnostic(run, predictions) if wants_leakage else None
    return CoefficientResult(table, dict(result.summaries), leakage=leak)


def run_reliability(run, spec=None, root=None, given=None) -> dict[str, float]:
    """``{concept: R}``: the reliabilities the spec declares (``spec`` where given, else the
    run's own file), each concept in ``given`` (checked against the run's rating concepts)
    replacing the spec's value for it; ``given="none"``: none at all."""
    head = LinearHead.from_run(run)
    kinds = dict(zip(head.concepts, head.concept_kinds))
    if isinstance(given, str):
        if given != "none":
            raise ExplainError(f"reliability must be a mapping concept -> R or 'none', got "
                               f"{given!r}")
        return {}
    given = check_reliability(given or {}, run.concept_names, kinds, where="--reliability")
    declared = {c.name: c.reliability for c in run.spec(spec, root=root).concepts
                if c.reliability is not None and c.name in run.concept_names}
    declared = check_reliability(declared, run.concept_names, kinds,
                                 where="the spec's reliability")
    return {**declared, **given}
