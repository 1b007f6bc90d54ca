"""The linear concept -> target head fitted in closed form (independent and sequential modes).

Regression targets: ordinary least squares with an intercept, per target on the rows where the
concepts and that target are rated. Class targets: unpenalized (maximum-likelihood) logistic
regression, binary or multinomial, so the head is the GLM a statistician would fit on the same
design; with separable classes the likelihood has no maximum and the fit stops at its iteration
limit with a warning naming the target. Binary targets (tags): the same unpenalized logistic
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


def fit_head(X: np.ndarray, Y: np.ndarray, targets: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Fit the head on ``X`` ``(n, n_concepts)`` and ``Y`` ``(n, n_targets)`` (NaN = missing).

    Returns
    -------
    weight : np.ndarray [shape=(n_outputs, n_concepts)]
    bias : np.ndarray [shape=(n_outputs,)]
    """
    n_c = X.shape[1]
    weights, biases = [], []
    rated = np.isfinite(X).all(1)
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
        clf = _logistic(x, y.astype(int), t)
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


def _logistic(x: np.ndarray, y: np.ndarray, target: dict):
    """Unpenalized logistic regression of integer labels ``y`` on ``x`` (sklearn), with a
    warning naming the target when it does not converge (separable classes)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf = LogisticRegression(penalty=None, tol=1e-8, max_iter=5000).fit(x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("%s target '%s': the unpenalized logistic head did not converge "
                    "(classes separable by the concepts?); its weights are large and "
                    "uncertain", target.get("kind", "class"), target["name"])
    return clf


def design_frame(design: dict, concepts: list[str], targets: list[dict]) -> pd.DataFrame:
    """The stored head design as a table: index clip, concept columns (X), target columns (Y)."""
    frame = pd.DataFrame(design["X"], columns=concepts, index=pd.Index(design["clips"], name="clip"))
    for j, name in enumerate(t["name"] for t in targets):
        frame[name] = design["Y"][:, j]
    frame.attrs["source"] = design["source"]
    frame.attrs["outputs"] = output_names(targets)
    return frame
