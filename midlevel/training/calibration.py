"""Linear recalibration of the predicted concepts on held-out clips, folded into the model.

After BatchNorm re-estimation (:mod:`midlevel.training.batchnorm`) predictions can still be off
in scale: a joint model's target loss pulls its concept outputs apart (on Soundtracks the energy
concept of a joint run had a calibration slope of 0.78 on its own training clips and 0.69 on the
validation clips, against 0.88 and 0.80 for a sequential run on the same data), and any model
spreads its predictions on new clips more than their correlation with the ratings warrants.
The textbook cure (Platt-style recalibration) fits, per concept, the line of the rating on the
prediction on held-out clips (the validation split) and maps every prediction through it, so
that ``E[rating | prediction] = prediction`` there. The held-out clips are the spec's
``calibration`` split where it has one; else the validation split, which also selected the
epoch, so its clips are predicted better than new ones and the line under-corrects on them
(on Soundtracks: validation r 0.83-0.92 against test r 0.76-0.85, test slopes 0.77-0.9).

The line is folded into the concept layer (``c' = a + b c`` in the model's scaled units). In
joint mode the head is compensated exactly (``W' = W / b``, ``beta' = beta - W a / b``), so
the targets the model predicts do not change; independent and sequential heads are fitted after
it. A concept whose slope is not clearly positive (its 95 % interval reaches 0: a concept the
network has not learned) is left as it is.

A binary concept (a tag, predicted as a logit) gets Platt scaling instead: the logistic
regression of the 0/1 label on the predicted logit, ``P(tag) = sigmoid(a + b logit)``, folded
into the concept layer the same way. In joint mode it is not applied: the head reads the
probability, a nonlinear function of the logit, so no change of the head could keep the
targets exactly as they were.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger("midlevel.training")


def calibration_lines(pred: np.ndarray, true: np.ndarray, *, min_clips: int = 10,
                      binary=None) -> list[dict]:
    """Per concept, the line of the rating on the prediction and whether it is applied.

    Parameters
    ----------
    pred, true : np.ndarray [shape=(n_clips, n_concepts)] in the same units (NaN = missing);
        binary concepts: predicted probabilities and 0/1 labels.
    binary : ``(n_concepts,)`` bool, the binary concepts (Platt scaling in logit units);
        None: none.

    Returns
    -------
    list of dicts ``slope, intercept, n, slope_se, applied`` (``applied`` False when fewer
    than ``min_clips`` clips are rated or the slope's 95 % interval does not exclude 0).
    """
    from scipy import stats
    out = []
    for k in range(pred.shape[1]):
        if binary is not None and binary[k]:
            out.append(_platt(pred[:, k], true[:, k], min_clips))
            continue
        ok = np.isfinite(pred[:, k]) & np.isfinite(true[:, k])
        p, t = pred[ok, k], true[ok, k]
        line = {"slope": 1.0, "intercept": 0.0, "n": int(ok.sum()), "slope_se": np.nan,
                "applied": False}
        if ok.sum() >= min_clips and p.std() > 0:
            fit = stats.linregress(p, t)
            crit = stats.t.ppf(0.975, ok.sum() - 2)
            line.update(slope=float(fit.slope), intercept=float(fit.intercept),
                        slope_se=float(fit.stderr),
                        applied=bool(fit.slope - crit * fit.stderr > 0))
        out.append(line)
    return out


def _platt(prob: np.ndarray, label: np.ndarray, min_clips: int) -> dict:
    """Platt scaling of one binary concept: ``label ~ sigmoid(a + b logit(prob))``."""
    import warnings

    import statsmodels.api as sm
    ok = np.isfinite(prob) & np.isfinite(label)
    line = {"slope": 1.0, "intercept": 0.0, "n": int(ok.sum()), "slope_se": np.nan,
            "applied": False, "kind": "platt"}
    y = label[ok]
    if ok.sum() < min_clips or len(np.unique(y)) < 2:
        return line
    p = np.clip(prob[ok], 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    if logit.std() == 0:
        return line
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.GLM(y, sm.add_constant(logit), family=sm.families.Binomial()).fit()
    except Exception:  # noqa: BLE001 - perfect separation and friends: leave it as it is
        return line
    a, b = (float(v) for v in res.params)
    se = float(res.bse[1])
    if np.isfinite(a) and np.isfinite(b) and np.isfinite(se):
        line.update(slope=b, intercept=a, slope_se=se, applied=bool(b - 1.96 * se > 0))
    return line


@torch.no_grad()
def fold_into_model(model, lines: list[dict], *, compensate_head: bool) -> None:
    """Apply the applied lines (scaled units) to ``model.concept_layer``; with
    ``compensate_head`` keep ``model.head_layer``'s outputs unchanged."""
    b = torch.tensor([ln["slope"] if ln["applied"] else 1.0 for ln in lines],
                     dtype=model.concept_layer.weight.dtype, device=model.concept_layer.weight.device)
    a = torch.tensor([ln["intercept"] if ln["applied"] else 0.0 for ln in lines],
                     dtype=b.dtype, device=b.device)
    layer = model.concept_layer
    layer.weight.mul_(b[:, None])
    layer.bias.copy_(a + b * layer.bias)
    if compensate_head:
        head = model.head_layer
        head.bias.sub_(head.weight @ (a / b))
        head.weight.div_(b[None, :])
