"""Leakage diagnostic: what the head does with the true concepts, and how much of its output
the concepts' meaning explains.

A joint (and, less so, a sequential) bottleneck can pass target information through its
predicted concepts that the concepts' meaning does not carry ("leakage"). Two checks on held-out
clips (validation, test), from the model's predictions and the human ratings:

1. *Target accuracy with the true concepts*: the head fed the clips' concept ratings (every
   concept intervened on) against the head fed its own predicted concepts.
2. *Meaning share*: the share of the variance of the head's output (on its predicted concepts)
   that a linear function of the concept ratings explains: the adjusted R^2 of output ~ ratings
   (intercept and one weight per concept the clips tell apart), ``1 - (1 - R^2) (n - 1) / (n -
   k - 1)`` for ``k`` such concepts on ``n`` clips. 1 when the output is a linear function of
   the ratings, about 0 for an output unrelated to them. The plain R^2 (``meaning_share_raw``)
   is kept beside it with what it reaches by chance alone (``meaning_share_chance`` = ``k / (n
   - 1)``, its expectation for an unrelated output): on 7 clips and 5 concepts that is 0.83, so
   a plain R^2 of 0.94 there says almost nothing. The share needs ``2 (k + 1)`` clips.

What they cannot tell apart (audit 15c, on hand-built heads whose leakage is known and on
trained runs): neither number separates leakage from other causes, so neither is a verdict.
- Concept prediction noise lowers the meaning share as leakage does: a leak-free head on
  noisy concepts read 0.80, a head whose output was the target itself (full leakage) 0.84.
- A head fitted on predicted concepts shrunk toward their mean beyond calibration has
  inflated weights and loses much with the true ratings: on the sequential run audit 15c
  measured (its concept network was the independent run's, rating concepts only, so no target
  information could pass) valence R^2 went 0.28 -> -1.34. A scale mismatch, not leakage; on
  calibrated predictions the same kind of head gained (R^2 0.52 -> 0.80, re-audit). A head
  leaking part of the target's residual can still gain with the truth, and a tag concept
  predicted as a probability can carry target information into any head.
- On 22 held-out clips of one world the shares of independent, sequential and joint runs had
  bootstrap intervals that overlap widely (their order reversed between validation and test).
Read them as descriptions of this head on these clips: how far it depends on its own
predictions rather than on the ratings, and how much of its output the ratings explain.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.explain.head import LinearHead, require_bottleneck
from midlevel.run import load_run
from midlevel.training.metrics import MIN_CLIPS_R, regression_metrics

COLUMNS = ["split", "target", "n", "r_predicted_concepts", "r_true_concepts",
           "r2_predicted_concepts", "r2_true_concepts", "accuracy_predicted_concepts",
           "accuracy_true_concepts", "meaning_share", "meaning_share_raw",
           "meaning_share_chance"]
SHARES = ("meaning_share", "meaning_share_raw", "meaning_share_chance")


def min_clips_meaning_share(n_concepts: int) -> int:
    """Fewest clips (every concept rated, and the target) the meaning share is computed on:
    twice the parameters of the fit of the output on the ratings (intercept and one weight per
    concept), so that as many degrees of freedom are left as the fit uses."""
    return 2 * (n_concepts + 1)


def _r2_on(x: np.ndarray, y: np.ndarray) -> float:
    """Plain R^2 of the least-squares fit of ``y`` ``(n,)`` on ``x`` ``(n, k)`` with an
    intercept (NaN with fewer than :func:`min_clips_meaning_share` clips, or a constant
    ``y``)."""
    if len(y) < min_clips_meaning_share(x.shape[1]) or y.var() == 0:
        return float("nan")
    design = np.hstack([np.ones((len(x), 1)), x])
    resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return float(1 - resid.var() / y.var())


def meaning_shares(x: np.ndarray, y: np.ndarray) -> dict:
    """``SHARES`` of the output ``y`` ``(n,)`` on the ratings ``x`` ``(n, k)``: the adjusted
    R^2, the plain R^2 and the plain R^2's chance level ``k / (n - 1)`` (NaN as
    :func:`_r2_on`). ``k`` is the rank of the centred ratings on these clips, the weights the
    fit can tell apart: a tag absent from every clip, or a tag group summing to 1, adds none
    (counting columns put the chance level at 0.316 where it is 0.263, audit 15c)."""
    n = x.shape[0]
    k = int(np.linalg.matrix_rank(x - x.mean(0))) if n else x.shape[1]
    raw = _r2_on(x, y)
    if not np.isfinite(raw):
        return dict.fromkeys(SHARES, float("nan"))
    return {"meaning_share": float(1 - (1 - raw) * (n - 1) / (n - k - 1)),
            "meaning_share_raw": raw, "meaning_share_chance": k / (n - 1)}


def leakage_diagnostic(run, predictions: pd.DataFrame, *,
                       splits=("validation", "test")) -> pd.DataFrame:
    """The diagnostic per split and target (see the module docstring).

    Parameters
    ----------
    run : a bottleneck run (or its directory).
    predictions : :meth:`midlevel.run.Run.predictions` of the splits, concatenated
        (``pd.concat([run.predictions(s) for s in ("validation", "test")])``: index clip;
        predicted concepts, ``true:<name>`` columns and ``split``).

    Returns
    -------
    pd.DataFrame with ``COLUMNS``: r and R^2 (regression targets) or accuracy (class targets;
    binary targets at probability 0.5) of the head on predicted and on true concepts, and the
    meaning share (adjusted R^2; the plain R^2 and its chance level beside it), per split and
    target (a class target: the mean over its output units).
    """
    run = load_run(run)
    require_bottleneck(run)
    head = LinearHead.from_run(run)
    concepts = run.concept_names
    rows = []
    for split in splits:
        part = predictions[predictions["split"] == split]
        if part.empty:
            continue
        c_pred = part[concepts].to_numpy(float)
        c_true = part[[f"true:{c}" for c in concepts]].to_numpy(float)
        rated = np.isfinite(c_true).all(1)
        out_pred = head.predict(c_pred)
        out_true = np.full_like(out_pred, np.nan)
        out_true[rated] = head.predict(c_true[rated])
        for t in run.targets:
            name = t["name"]
            y = part[f"true:{name}"].to_numpy(float)
            ok = rated & np.isfinite(y)
            units = head.units([name])
            row = {"split": split, "target": name, "n": int(ok.sum())}
            kind = t.get("kind", "regression")
            if kind in ("class", "binary"):
                if kind == "binary":  # log-odds above 0: the tag predicted present
                    pick_pred = (out_pred[:, units[0]] > 0).astype(float)
                    pick_true = (out_true[:, units[0]] > 0).astype(float)
                else:
                    pick_pred = out_pred[:, units].argmax(1)
                    pick_true = out_true[:, units].argmax(1) if ok.any() else pick_pred
                if ok.any():  # else NaN: no label on these clips
                    row["accuracy_predicted_concepts"] = float(np.mean(pick_pred[ok] == y[ok]))
                    row["accuracy_true_concepts"] = float(np.mean(pick_true[ok] == y[ok]))
                shares = pd.DataFrame([meaning_shares(c_true[ok], out_pred[ok, u])
                                       for u in units])
                row.update(shares.mean().to_dict())  # over the output units with a share
            else:
                u = units[0]
                mp = regression_metrics(y[ok], out_pred[ok, u])
                mt = regression_metrics(y[ok], out_true[ok, u])
                row.update(r_predicted_concepts=mp["r"], r_true_concepts=mt["r"],
                           r2_predicted_concepts=mp["r2"], r2_true_concepts=mt["r2"],
                           **meaning_shares(c_true[ok], out_pred[ok, u]))
            rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    table.attrs["n_concepts"] = len(concepts)
    table.attrs["labelled"] = [t["name"] for t in run.targets
                               if t.get("kind", "regression") in ("class", "binary")]
    return table


def _no_share(g: pd.DataFrame, n_concepts: int | None) -> str:
    """Why a split's meaning share is not computed (every target's is NaN)."""
    n = int(g["n"].max()) if len(g) else 0
    if n_concepts is not None and n < min_clips_meaning_share(n_concepts):
        return (f"meaning share: not computed ({n} clips with every concept and a target "
                f"rated, needs at least {min_clips_meaning_share(n_concepts)})")
    if n_concepts is None:
        return ("meaning share: not computed (too few clips with every concept rated, or the "
                "head's output constant)")
    return "meaning share: not computed (the head's output is constant on these clips)"


def leakage_summary(table: pd.DataFrame, *, n_concepts: int | None = None) -> str:
    """One line per split: mean r with predicted vs true concepts and the mean meaning share
    (or why it is not computed). ``n_concepts``: default ``table.attrs["n_concepts"]``."""
    n_concepts = table.attrs.get("n_concepts") if n_concepts is None else n_concepts
    lines = []
    for split, g in table.groupby("split", sort=False):
        labelled = (g["target"].isin(table.attrs["labelled"]) if "labelled" in table.attrs
                    else g["accuracy_predicted_concepts"].notna())  # class and tag rows
        ratings = ~labelled
        n = int(g.loc[ratings, "n"].max() if ratings.any() else g["n"].max())
        parts = [f"{split} ({n} clip{'' if n == 1 else 's'})"]
        if g["r_predicted_concepts"].notna().any():
            parts.append(f"target r {g['r_predicted_concepts'].mean():.2f} on predicted "
                         f"concepts, {g['r_true_concepts'].mean():.2f} on the true ratings")
        elif ratings.any() and n < MIN_CLIPS_R:
            parts.append(f"target r: not computed ({n} clip{'' if n == 1 else 's'} with every "
                         f"concept and the target rated, needs at least {MIN_CLIPS_R})")
        scored = g[labelled & g["accuracy_predicted_concepts"].notna()]
        if len(scored):
            counts = scored["n"].astype(int)
            on = (f"{counts.min()}" if counts.min() == counts.max()
                  else f"{counts.min()}-{counts.max()}")
            parts.append(f"accuracy {scored['accuracy_predicted_concepts'].mean():.2f} / "
                         f"{scored['accuracy_true_concepts'].mean():.2f} (mean of "
                         f"{len(scored)} class or tag target{'s' if len(scored) > 1 else ''}"
                         f", on {on} clip{'' if on == '1' else 's'} each)")
        unlabelled = g.loc[labelled & g["accuracy_predicted_concepts"].isna(), "target"]
        if len(unlabelled):
            parts.append(f"no accuracy for {', '.join(map(str, unlabelled))} (no clip with "
                         f"every concept rated has its label here)")
        if g["meaning_share"].notna().any():
            k = "" if n_concepts is None else f" with {n_concepts} concepts"
            parts.append(f"meaning share {g['meaning_share'].mean():.2f} (adjusted R^2; plain "
                         f"R^2 {g['meaning_share_raw'].mean():.2f}, "
                         f"{g['meaning_share_chance'].mean():.2f} by chance{k} on these "
                         f"clips)")
        else:
            parts.append(_no_share(g, n_concepts))
        lines.append("; ".join(parts))
    return "\n".join(lines)
