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

Where the validation clips both select the epoch and fit the line, the line can be
optimistic: the epoch that scored best on those clips is, by that choice, predicted better
there than on new clips, and a slope fitted there is then too steep for them. The textbook
correction for a model selected and calibrated on the same data (Harrell, *Regression Modeling
Strategies*, 2nd ed., sections 5.3 and 5.5; Steyerberg, *Clinical Prediction Models*, ch. 13)
is the bootstrap estimate of the optimism of the whole procedure: each of ``n_boot`` resamples
of the validation clips selects its own epoch from the per-epoch validation predictions (the
same score as training uses; training keeps those of its 20 best-scoring epochs) and fits its
own line; that line's calibration slope on the original clips, averaged over the resamples, is
the shrinkage factor ``f`` (at most 1), and the applied line becomes
``c' = mean_t + f slope (c - mean_p)`` (through the clips' means, so the level is kept). With
a separate calibration split the selection does not touch the line and the bootstrap covers
the line's own fit only. Ratings only; Platt lines are not shrunk. Measured on Soundtracks and
three synthetic worlds (benchmarks/RESULTS.md) the factors are 0.98-1.00: there the selection
costs little, and the Soundtracks test slopes below 1 have another cause.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from midlevel.training.metrics import SPREAD_TOL, negligible_spread

log = logging.getLogger("midlevel.training")

# validation predictions kept for the line's bootstrap: those of the best-scoring epochs only
# (a resample of the validation clips selects among the epochs that scored near the top), so a
# long run on a large validation split keeps a checkpoint of bounded size
KEPT_EPOCHS = 20


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
    list of dicts ``slope, intercept, n, slope_se, applied, fitted, why_not`` (``applied``
    False when fewer than ``min_clips`` clips are rated or the slope's 95 % interval does not
    exclude 0; ``fitted`` False, with the identity line and ``why_not`` saying why, when no
    line could be fitted at all).
    """
    from scipy import stats
    out = []
    for k in range(pred.shape[1]):
        if binary is not None and binary[k]:
            out.append(_platt(pred[:, k], true[:, k], min_clips))
            continue
        ok = np.isfinite(pred[:, k]) & np.isfinite(true[:, k])
        p, t = pred[ok, k], true[ok, k]
        line = _unfitted(int(ok.sum()), min_clips)
        if ok.sum() >= min_clips and negligible_spread(p, t):
            line["why_not"] = f"the predictions are constant on the {int(ok.sum())} rated clips"
        elif ok.sum() >= min_clips:
            fit = stats.linregress(p, t)
            crit = stats.t.ppf(0.975, ok.sum() - 2)
            line.update(slope=float(fit.slope), intercept=float(fit.intercept),
                        slope_se=float(fit.stderr), fitted=True, why_not="",
                        applied=bool(fit.slope - crit * fit.stderr > 0))
        out.append(line)
    return out


def _unfitted(n: int, min_clips: int, **extra) -> dict:
    """The identity line of a concept no line was fitted for, saying why (``why_not``)."""
    why = (f"{n} rated clips, needs at least {min_clips}" if n < min_clips else "")
    return {"slope": 1.0, "intercept": 0.0, "n": n, "slope_se": np.nan, "applied": False,
            "fitted": False, "why_not": why, **extra}


def _platt(prob: np.ndarray, label: np.ndarray, min_clips: int) -> dict:
    """Platt scaling of one binary concept: ``label ~ sigmoid(a + b logit(prob))``."""
    import warnings

    import statsmodels.api as sm
    ok = np.isfinite(prob) & np.isfinite(label)
    line = _unfitted(int(ok.sum()), min_clips, kind="platt")
    y = label[ok]
    if ok.sum() < min_clips:
        return line
    if len(np.unique(y)) < 2:
        line["why_not"] = f"one label only among the {int(ok.sum())} rated clips"
        return line
    p = np.clip(prob[ok], 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    if logit.std() == 0:
        line["why_not"] = f"the predictions are constant on the {int(ok.sum())} rated clips"
        return line
    line["why_not"] = (f"the fit failed on the {int(ok.sum())} rated clips (labels "
                       f"separated by the prediction?)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.GLM(y, sm.add_constant(logit), family=sm.families.Binomial()).fit()
    except Exception:  # noqa: BLE001 - perfect separation and friends: leave it as it is
        return line
    a, b = (float(v) for v in res.params)
    se = float(res.bse[1])
    if np.isfinite(a) and np.isfinite(b) and np.isfinite(se):
        line.update(slope=b, intercept=a, slope_se=se, applied=bool(b - 1.96 * se > 0),
                    fitted=True, why_not="")
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


def selection_scores(pred: np.ndarray, true: np.ndarray, kinds, metric: str = "r2",
                     ) -> np.ndarray:
    """The model-selection score of each epoch, as :func:`midlevel.training.metrics.score`
    computes it from a metrics table, vectorized over epochs.

    Parameters
    ----------
    pred : np.ndarray [shape=(n_epochs, n_clips, n_columns)], the scored columns' predictions
        (ratings, probabilities of binary columns, class codes).
    true : np.ndarray [shape=(n_clips, n_columns)], NaN = missing.
    kinds : "regression", "binary" or "class" per column.
    metric : "r2" or "r" (class columns: accuracy; a binary column whose ``metric`` is
        undefined on these clips: its accuracy at 0.5, as the table's ``fillna`` does).

    Returns
    -------
    np.ndarray [shape=(n_epochs,)], the mean over columns with a defined value (NaN if none).
    """
    n_epochs = pred.shape[0]
    cols = []
    for j, kind in enumerate(kinds):
        ok = np.isfinite(true[:, j])
        t, p = true[ok, j], pred[:, ok, j]
        value = np.full(n_epochs, np.nan)
        if kind == "class":
            if ok.any():
                value = np.mean(p == t, axis=1)
            cols.append(value)
            continue
        if len(t) > 1 and t.std() > 0:
            if metric == "r2":
                value = 1 - np.sum((p - t) ** 2, axis=1) / np.sum((t - t.mean()) ** 2)
            else:
                dp = p - p.mean(axis=1, keepdims=True)
                sd = np.sqrt(np.sum(dp ** 2, axis=1))
                # as regression_metrics: no r of constant or negligibly spread predictions
                spread = (p.std(axis=1) > SPREAD_TOL * np.maximum(np.abs(p.mean(axis=1)),
                                                                  t.std()))
                with np.errstate(invalid="ignore", divide="ignore"):
                    norm = sd * np.linalg.norm(t - t.mean())
                    value = np.where((sd > 0) & spread, dp @ (t - t.mean()) / norm, np.nan)
        if kind == "binary" and ok.any():
            value = np.where(np.isfinite(value), value, np.mean((p >= 0.5) == t, axis=1))
        cols.append(value)
    values = np.stack(cols, axis=1) if cols else np.full((n_epochs, 0), np.nan)
    defined = np.isfinite(values)
    total = np.where(defined, values, 0.0).sum(axis=1)
    count = defined.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _slopes(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``true`` (n,) on each row of ``pred`` (m, n); NaN where
    undefined."""
    dp = pred - pred.mean(axis=1, keepdims=True)
    var = np.sum(dp ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, dp @ (true - true.mean()) / var, np.nan)


def selection_shrinkage(concept_pred: np.ndarray, concept_true: np.ndarray, *,
                        scored_pred: np.ndarray | None = None,
                        scored_true: np.ndarray | None = None, scored_kinds=(),
                        metric: str = "r2", n_boot: int = 200, seed: int = 0,
                        min_clips: int = 10) -> list[dict]:
    """Bootstrap shrinkage factor of each concept's calibration slope (see the module
    docstring): the optimism of selecting an epoch and fitting a line on the same clips.

    Parameters
    ----------
    concept_pred : np.ndarray [shape=(n_epochs, n_clips, n_concepts)], the concepts predicted
        for the line's clips after each epoch (rating units). With one epoch (the line's clips
        did not select it) only the line's own fit is resampled.
    concept_true : np.ndarray [shape=(n_clips, n_concepts)], ratings (NaN = missing).
    scored_pred, scored_true, scored_kinds, metric : the selection score's columns on the same
        clips (see :func:`selection_scores`); with them each resample selects its own epoch,
        the best (first best) of its scores, as training does.
    n_boot, seed : resamples and their seed.

    Returns
    -------
    list of dicts per concept: ``factor`` (the shrinkage factor, at most 1; NaN where it was not
    estimated: fewer than ``min_clips`` rated clips), ``raw`` (before the cap), ``n_boot``
    (resamples with a usable line), ``epochs_selected`` (distinct epochs the resamples chose).
    """
    n_epochs, n_clips, n_concepts = concept_pred.shape
    select = scored_pred is not None and n_epochs > 1
    rng = np.random.default_rng([seed, 0x5A1])
    draws = rng.integers(0, n_clips, size=(n_boot, n_clips))
    chosen = np.full(n_boot, n_epochs - 1)
    if select:
        for b, idx in enumerate(draws):
            scores = selection_scores(scored_pred[:, idx], scored_true[idx], scored_kinds, metric)
            if np.isfinite(scores).any():
                chosen[b] = int(np.nanargmax(scores))
    out = []
    for k in range(n_concepts):
        ok = np.isfinite(concept_true[:, k])
        entry = {"factor": np.nan, "raw": np.nan, "n_boot": 0,
                 "epochs_selected": int(len(np.unique(chosen)))}
        if ok.sum() < min_clips:
            out.append(entry)
            continue
        original = _slopes(concept_pred[:, ok, k], concept_true[ok, k])     # (n_epochs,)
        gammas = []
        for idx, e in zip(draws, chosen):
            idx = idx[ok[idx]]
            if len(np.unique(idx)) < 3:
                continue
            fitted = _slopes(concept_pred[e, idx, k][None], concept_true[idx, k])[0]
            if np.isfinite(fitted) and fitted > 0 and np.isfinite(original[e]):
                gammas.append(original[e] / fitted)
        if gammas:
            raw = float(np.mean(gammas))
            entry.update(raw=raw, factor=min(1.0, raw), n_boot=len(gammas))
        out.append(entry)
    return out


def shrink_lines(lines: list[dict], shrinkage: list[dict] | None, pred: np.ndarray,
                 true: np.ndarray) -> None:
    """Shrink each applied rating line's slope by its factor about the clips' means, in place
    (``pred``, ``true``: ``(n_clips, n_concepts)`` in the lines' units). Each line keeps its
    fitted line (``slope_fitted``, ``intercept_fitted``) and gets ``shrinkage`` (1 where not
    shrunk; ``shrinkage_raw``: the estimate before the cap at 1): the unshrunk prediction is
    ``intercept_fitted + (c - intercept) / shrinkage``."""
    shrinkage = shrinkage or [{"factor": np.nan} for _ in lines]  # None: none shrunk
    for k, (line, shrink) in enumerate(zip(lines, shrinkage)):
        line.update(slope_fitted=line["slope"], intercept_fitted=line["intercept"],
                    shrinkage=1.0, shrinkage_raw=float(shrink.get("raw", np.nan)))
        factor = shrink["factor"]
        if not line["applied"] or line.get("kind") == "platt" or not np.isfinite(factor):
            continue
        ok = np.isfinite(pred[:, k]) & np.isfinite(true[:, k])
        slope = factor * line["slope"]
        line.update(slope=float(slope), shrinkage=float(factor),
                    intercept=float(true[ok, k].mean() - slope * pred[ok, k].mean()))


def keep_epoch(kept: list[dict], epoch: int, score: float, concepts: np.ndarray,
               targets: np.ndarray) -> None:
    """Add one epoch's validation predictions (``(n_clips, n)`` each, as
    :func:`midlevel.training.evaluation.split_predictions` returns them) to ``kept`` in place,
    keeping the :data:`KEPT_EPOCHS` best-scoring epochs (ties: the earlier)."""
    kept.append({"epoch": epoch, "score": score, "concepts": concepts.astype(np.float32),
                 "targets": targets.astype(np.float32)})
    kept.sort(key=lambda p: (-p["score"] if np.isfinite(p["score"]) else np.inf, p["epoch"]))
    del kept[KEPT_EPOCHS:]


def kept_epochs_shrinkage(kept: list[dict], rows, columns, scored: tuple[str, ...], *,
                          metric: str, n_boot: int, seed: int) -> list[dict]:
    """:func:`selection_shrinkage` over the kept epochs (:func:`keep_epoch`) of a run:
    ``rows`` the validation annotations, ``columns`` the run's
    :class:`~midlevel.training.data.Columns`, ``scored`` the kinds its selection score covers
    ("concept", "target")."""
    from midlevel.models.bottleneck import output_layout
    kept = sorted(kept, key=lambda p: p["epoch"])  # ties select the first, as training does
    concept_pred = np.stack([p["concepts"] for p in kept]).astype(np.float64)
    concept_true = rows[columns.concepts].to_numpy(np.float64)
    parts, truths, kinds = [], [], []
    if "concept" in scored:
        parts.append(concept_pred)
        truths.append(concept_true)
        kinds += columns.concept_kinds
    if "target" in scored and columns.targets:
        parts.append(np.stack([p["targets"] for p in kept]).astype(np.float64))
        truths.append(rows[columns.target_names].to_numpy(np.float64))
        kinds += [kind for _, kind, _ in output_layout(columns.targets)]
    return selection_shrinkage(concept_pred, concept_true,
                               scored_pred=np.concatenate(parts, axis=2),
                               scored_true=np.concatenate(truths, axis=1), scored_kinds=kinds,
                               metric=metric, n_boot=n_boot, seed=seed)


def describe_line(line: dict, why: str, *, mean: float | None = None,
                  sd: float | None = None) -> str:
    """One log line for a calibration line (after :func:`shrink_lines`; ``line["split"]`` set);
    ``why`` says why a line that is not applied is not. A line that was never fitted
    (``fitted`` False) is said to be so, with its own reason (``why_not``), not shown as the
    identity line it stands for.

    The line is fitted in standardized units; with the concept's training ``mean`` and ``sd``
    its intercept is given in rating points (``mean (1 - slope) + sd x intercept``), the units
    of ``cal_intercept`` in ``metrics.csv``; without them it is labelled "z units". A Platt
    line's intercept is in log-odds."""
    kind = "Platt scaling" if line.get("kind") == "platt" else "calibration"
    head = (f"{kind} (calibration split)" if line["split"] == "calibration"
            else f"{line['split']} {kind}")  # not "calibration calibration"
    if not line.get("fitted", True):
        reason = line.get("why_not") or why
        return f"{head}: no line fitted ({reason}); predictions left as they are"
    shrunk = (f" (fitted {line['slope_fitted']:.3f} x shrinkage {line['shrinkage']:.3f})"
              if line.get("shrinkage", 1.0) != 1.0 else "")
    if line.get("kind") == "platt":
        intercept = f"{line['intercept']:.3f} log-odds"
    elif mean is not None and sd is not None:
        points = float(mean) * (1 - line["slope"]) + float(sd) * line["intercept"]
        intercept = f"{points:.3f} rating points"
    else:
        intercept = f"{line['intercept']:.3f} (z units)"
    return (f"{head} slope {line['slope']:.3f}{shrunk}, intercept "
            f"{intercept} ({line['n']} clips)"
            + ("" if line["applied"] else f": not applied ({why})"))
