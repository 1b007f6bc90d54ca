"""The linear concept -> target head fitted in closed form (independent and sequential modes).

Regression targets: ordinary least squares with an intercept, per target on the rows where the
concepts and that target are rated. Class targets: unpenalized (maximum-likelihood) logistic
regression, binary or multinomial, so the head is the GLM a statistician would fit on the same
design; with separable classes the likelihood has no maximum: the fit stops where its solver
does, with logits of tens or hundreds, and a warning names the target. The joint mode's
starting head (``start=True``) fits such a target with an L2 penalty instead (said in the
log): its training adapts the head, and a start with logits of hundreds gives probabilities
of 0 or 1 that its gradient cannot move. Binary targets (tags): the same unpenalized logistic
regression with one logit (the tag's log-odds). Binary concepts enter the design as 0/1 labels
(independent) or predicted probabilities (sequential). The design (X, Y) is kept with the
model.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from midlevel.errors import TrainingError
from midlevel.models.bottleneck import output_names

log = logging.getLogger("midlevel.training")


def fit_head(X: np.ndarray, Y: np.ndarray, targets: list[dict], *,
             start: bool = False, concepts: list[str] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """Fit the head on ``X`` ``(n, n_concepts)`` and ``Y`` ``(n, n_targets)`` (NaN = missing);
    ``start``: the joint mode's starting head (separable class and tag targets penalized);
    ``concepts``: the names of ``X``'s columns, for the log.

    Returns
    -------
    weight : np.ndarray [shape=(n_outputs, n_concepts)]
    bias : np.ndarray [shape=(n_outputs,)]
    """
    n_c = X.shape[1]
    weights, biases = [], []
    rated = np.isfinite(X).all(1)
    _say_clips_left_out(X, Y, targets, rated, start=start, concepts=concepts)
    for j, t in enumerate(targets):
        ok = rated & np.isfinite(Y[:, j])
        if ok.sum() <= n_c:
            raise TrainingError(f"cannot fit the head for target '{t['name']}': {ok.sum()} "
                                f"training clips have it and every concept rated, need > {n_c}")
        x, y = X[ok], Y[ok, j]
        kind = t.get("kind", "regression")
        if kind == "regression":
            design = np.hstack([x, np.ones((len(x), 1))])
            coef = np.linalg.lstsq(design, y, rcond=None)[0]
            weights.append(coef[None, :-1])
            biases.append(coef[-1:])
            continue
        if kind == "binary" and len(np.unique(y)) < 2:
            log.warning("binary target '%s': one value only among the training clips; its "
                        "head predicts that value", t["name"])
            weights.append(np.zeros((1, n_c)))
            biases.append(np.array([30.0 if y[0] == 1 else -30.0]))
            continue
        clf = _logistic(x, y.astype(int), t, start=start)
        if kind == "binary":
            weights.append(clf.coef_.reshape(1, n_c))
            biases.append(clf.intercept_.reshape(1))
            continue
        k = len(t["classes"])
        w, b = np.zeros((k, n_c)), np.full(k, -30.0)  # classes absent from training: never
        if len(clf.classes_) == 2:  # sklearn gives one logit for the second class
            coef, icpt = np.vstack([-clf.coef_ / 2, clf.coef_ / 2]), np.r_[-clf.intercept_ / 2,
                                                                            clf.intercept_ / 2]
        else:
            coef, icpt = clf.coef_, clf.intercept_
        w[clf.classes_], b[clf.classes_] = coef, icpt
        weights.append(w)
        biases.append(b)
    if not weights:
        return np.zeros((0, n_c)), np.zeros(0)
    return np.vstack(weights), np.concatenate(biases)


def _say_clips_left_out(X: np.ndarray, Y: np.ndarray, targets: list[dict], rated: np.ndarray,
                        *, start: bool, concepts: list[str] | None = None) -> None:
    """Log how many training clips the head is fitted on per target (``rated``: ``(n,)``,
    every concept rated), and warn, naming the concepts most often missing, where clips with
    a target are left out for lacking a concept rating (a complete-case fit)."""
    what = "the joint head's starting fit" if start else "the head"
    counts = [(t["name"], int((rated & np.isfinite(Y[:, j])).sum()),
               int(np.isfinite(Y[:, j]).sum())) for j, t in enumerate(targets)]
    short = [(name, used, has) for name, used, has in counts if used < has]
    if not short:
        log.info("%s is fitted on %s training clips", what,
                 ", ".join(f"{used} ('{name}')" for name, used, _ in counts))
        return
    with_target = np.isfinite(Y).any(1) if Y.shape[1] else np.zeros(len(X), bool)
    missing = np.isnan(X[with_target]).sum(0)
    worst = [(k, int(missing[k])) for k in np.argsort(-missing)[:3] if missing[k]]
    names = concepts or [str(k) for k in range(X.shape[1])]
    log.warning("%s uses only the training clips rated on every concept and the target: %s; "
                "the others lack a concept rating (missing most: %s). A sequential run fits its "
                "head on predicted concepts, every clip with the target", what,
                "; ".join(f"'{n}' {used} of the {has} clips with it" for n, used, has in short),
                ", ".join(f"'{names[k]}' {m}" for k, m in worst))


# a training logit beyond this (odds of e^30) means the classes are separable: the
# unpenalized fit's weights grow until its solver stops (sklearn may still call it converged)
SEPARATED_LOGIT = 30.0


def _logistic(x: np.ndarray, y: np.ndarray, target: dict, *, start: bool = False):
    """Unpenalized logistic regression of integer labels ``y`` on ``x`` (sklearn), with a
    warning naming the target where it does not converge or its logits on the training clips
    pass ``SEPARATED_LOGIT`` (separable classes); for a ``start`` head such a target is
    refitted with sklearn's default L2 penalty (C = 1 on the z-scored concepts)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(C=np.inf, tol=1e-8, max_iter=5000).fit(x, y)
    largest = float(np.abs(clf.decision_function(x)).max())
    if not (any(issubclass(w.category, ConvergenceWarning) for w in caught)
            or largest > SEPARATED_LOGIT):
        return clf
    what = (f"{target.get('kind', 'class')} target '{target['name']}': the concepts separate "
            f"its classes on the training clips (the unpenalized logistic head's logits reach "
            f"{largest:.0f})")
    if not start:
        log.warning("%s; its weights are large and uncertain", what)
        return clf
    log.warning("%s; the joint head starts from an L2-penalized fit for it instead", what)
    return LogisticRegression(tol=1e-8, max_iter=5000).fit(x, y)


def design_frame(design: dict, concepts: list[str], targets: list[dict]) -> pd.DataFrame:
    """The stored head design as a table: index clip, concept columns (X), target columns (Y)."""
    frame = pd.DataFrame(design["X"], columns=concepts, index=pd.Index(design["clips"], name="clip"))
    for j, name in enumerate(t["name"] for t in targets):
        frame[name] = design["Y"][:, j]
    frame.attrs["source"] = design["source"]
    frame.attrs["outputs"] = output_names(targets)
    return frame
