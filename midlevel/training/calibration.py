"""Linear recalibration of the predicted concepts on held-out clips, folded into the model.

After BatchNorm re-estimation (:mod:`midlevel.training.batchnorm`) predictions can still be off
in scale: a joint model's target loss pulls its concept outputs apart (on Soundtracks the energy
concept of a joint run had a calibration slope of 0.78 on its own training clips and 0.69 on the
validation clips, against 0.88 and 0.80 for a sequential run on the same data), and any model
spreads its predictions on new clips more than their correlation with the ratings warrants.
The textbook cure (Platt-style recalibration) fits, per concept, the line of the rating on the
prediction on held-out clips (the validation split) and maps every prediction through it, so
that ``E[rating | prediction] = prediction`` there.

The line is folded into the concept layer (``c' = a + b c`` in the model's scaled units). In
joint mode the head is compensated exactly (``W' = W / b``, ``beta' = beta - W a / b``), so
the targets the model predicts do not change; independent and sequential heads are fitted after
it. A concept whose slope is not clearly positive (its 95 % interval reaches 0: a concept the
network has not learned) is left as it is.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger("midlevel.training")


def calibration_lines(pred: np.ndarray, true: np.ndarray, *, min_clips: int = 10) -> list[dict]:
    """Per concept, the line of the rating on the prediction and whether it is applied.

    Parameters
    ----------
    pred, true : np.ndarray [shape=(n_clips, n_concepts)] in the same units (NaN = missing).

    Returns
    -------
    list of dicts ``slope, intercept, n, slope_se, applied`` (``applied`` False when fewer
    than ``min_clips`` clips are rated or the slope's 95 % interval does not exclude 0).
    """
    from scipy import stats
    out = []
    for k in range(pred.shape[1]):
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
