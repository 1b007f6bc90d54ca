"""What the data's answer cannot show by itself, checked on the fit's own clips and said in
the coefficient summary (audit 14b, measured on worlds whose truth is known).

The data's weight is the *best linear summary* of a target on the concept ratings among the
rated clips, other concepts held fixed: an association, not a causal effect. Its interval
covers that summary at about its nominal rate (0.948-0.953 in every misspecified world the
audit tried), but the summary is the per-point effect only when the ratings are exact, the
relation linear and the scale unbounded. Checks say where that fails, each a line of the
summary (``attrs["caveats"]`` of the table):

- :func:`correlated_concepts`: a concept's variance inflation factor (VIF) above
  ``VIF_WARN``. With exact ratings, correlation only widens the intervals; but rater noise in
  correlated concepts moves weight from one to the other, a bias that does not shrink with
  more clips (reliability 0.9, r 0.9: a zero weight significant 16 % of the time at 360
  clips, 93 % at 5000), and a model with the true weights is flagged against it.
- :func:`scale_ends`: a rating column with ``END_SHARE`` or more of its fit clips at an end
  of the scale its spec declares (a floor or ceiling): slopes are per point of the observed, bounded
  scale and flatter than the relation beneath it (coverage of the per-point effect 0.86 at
  360 clips with a fifth at the top).
- :func:`nonlinearity`: a heteroscedasticity-robust (HC3) Wald test of the concepts' squares
  added to each rating target's fit (Holm over the targets): a curved relation makes the
  linear summary depend on which clips were rated (a U-shape read as 0 among one set of
  clips, +0.60 per point among another).
- :func:`calibration_assumption`: regression calibration assumes the model's concept errors
  carry nothing about a target beyond the true concepts (non-differential error; valence's
  intervals covered 0.35 when half of its noise leaked into the errors), and is unstable on
  few calibration clips.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

VIF_WARN = 2.5        # r about 0.77 between two concepts
END_SHARE = 0.10      # of the fit clips at an end of a column's declared scale
FEW_PER_PARAMETER = 10  # calibration clips per stage-1 parameter below which it is unstable


def complete_clips(X: pd.DataFrame, y=None) -> np.ndarray:
    """Rows of ``X`` (and ``y``) without a missing value."""
    ok = np.isfinite(X.to_numpy(float)).all(1)
    return ok if y is None else ok & np.isfinite(np.asarray(y, float))


def vif(X: pd.DataFrame) -> pd.Series:
    """Variance inflation factor of each concept on the clips rated on every concept:
    ``1 / (1 - R^2)`` of the concept on the others (inf where they fit it exactly, NaN for
    a concept constant on the clips or fewer clips than concepts + 2)."""
    x = X.to_numpy(float)[complete_clips(X)]
    out = pd.Series(np.nan, index=X.columns, dtype=float)
    if x.shape[1] < 2 or len(x) < x.shape[1] + 2:
        return out
    for j, name in enumerate(X.columns):
        y, others = x[:, j], np.delete(x, j, axis=1)
        if y.std() == 0:
            continue
        design = np.column_stack([np.ones(len(y)), others])
        resid = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        r2 = 1 - resid.var() / y.var()
        out[name] = np.inf if r2 >= 1 - 1e-12 else 1 / (1 - r2)
    return out


def high_vif(X: pd.DataFrame) -> pd.Series:
    """The concepts whose VIF exceeds ``VIF_WARN``, largest first, on at least
    ``FEW_PER_PARAMETER`` clips per parameter of the fit (empty on fewer: chance alone
    inflates the sample VIF there, the synthetic world's, at most 1.5, reading above 2.5 in
    12-24 % of 40-clip tables, 0-3.5 % at 80, and the intervals are wide anyway)."""
    if int(complete_clips(X).sum()) < FEW_PER_PARAMETER * (X.shape[1] + 1):
        return pd.Series(dtype=float)
    v = vif(X)
    return v[v > VIF_WARN].sort_values(ascending=False)


def correlated_concepts(X: pd.DataFrame, high: pd.Series | None = None) -> list[str]:
    """A summary line naming the concepts of :func:`high_vif` (given as ``high``, or found
    in ``X``); none: no line."""
    high = high_vif(X) if high is None else high
    if high.empty:
        return []
    named = ", ".join(f"{c} {x:.1f}" if np.isfinite(x) else f"{c} inf" for c, x in high.items())
    return [f"correlated concepts (VIF above {VIF_WARN:g}: {named}): the ratings are taken as "
            f"exact; rater noise in correlated concepts moves weight from one to another, a "
            f"bias more clips do not remove, so their weights (and flags on them) are less "
            f"certain than the intervals say"]


def scale_ends(X: pd.DataFrame, Y: pd.DataFrame, rating_targets,
               scales: dict | None) -> list[str]:
    """A summary line naming the rating columns (concepts, and ``rating_targets`` of ``Y``)
    with ``END_SHARE`` or more of their fit clips at an end of their declared scale
    (``scales``: name -> ``(low, high)``, the spec's ``scale``); a column without one is not
    judged (the lowest or highest value seen is no floor: on 40 clips of 1-7 ratings a 6 was
    the highest in 15-99 % of tables)."""
    found = []
    rows = complete_clips(X)
    for frame in (X, Y[[t for t in rating_targets if t in Y]]):
        for name in frame.columns:
            if name not in (scales or {}):
                continue
            values = frame[name].to_numpy(float)[rows]
            values = values[np.isfinite(values)]
            if len(values) < 10:
                continue
            low, high = scales[name]
            for end, value in (("top", high), ("bottom", low)):
                share = float(np.mean(np.isclose(values, value)))
                if share >= END_SHARE:
                    found.append(f"{name} {share:.0%} at the {end} of its scale ({value:g})")
    if not found:
        return []
    return [f"ratings piled at an end of the scale ({'; '.join(found)}): a floor or ceiling "
            f"flattens the slopes, which are per point of the observed, bounded scale"]


def declared_scales(run, spec=None, *, root=None) -> dict:
    """``{column: (low, high)}``: the ``scale`` a spec gives each concept and target: ``spec``
    where given (the ratings then come from it), else the run's own (as stored with the
    run); columns without one are left out."""
    if spec is not None:
        columns = run.spec(spec, root=root).summary_dict()
    else:
        columns = ((getattr(run, "info", None) or {}).get("data") or {}).get("columns") or {}
    return {c["name"]: (float(c["scale"][0]), float(c["scale"][1]))
            for c in [*(columns.get("concepts") or []), *(columns.get("targets") or [])]
            if isinstance(c, dict) and c.get("scale")}


def _hc3_wald(y: np.ndarray, design: np.ndarray, tested: slice) -> float:
    """p-value of the HC3 Wald test (F form) that the ``tested`` columns of ``design`` are 0;
    NaN where HC3 is undefined (a clip of leverage 1, as a tag present on one clip)."""
    import statsmodels.api as sm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.OLS(y, design).fit(cov_type="HC3")
            restriction = np.eye(design.shape[1])[tested]
            return float(np.asarray(fit.wald_test(restriction, use_f=True,
                                                  scalar=True).pvalue))
        except (ValueError, np.linalg.LinAlgError):
            return float("nan")


# fewest clips per parameter of the augmented fit for the linearity check: its size (Holm,
# alpha 0.05) was 0.09 at 100 clips of 7 concepts (15 parameters); from this threshold it is
# 0.06-0.075 with normal errors and 0.09-0.11 with skewed, uneven noise (HC3's t intervals
# are known to run over there), so "not linear" is a flag to look, not a verdict
CLIPS_PER_PARAMETER = 20


def nonlinearity(X: pd.DataFrame, Y: pd.DataFrame, rating_targets, *,
                 alpha: float = 0.05) -> list[str]:
    """A summary line naming the rating targets whose fit gains from the concepts' squares
    (HC3 Wald test, Holm-adjusted over the targets tested, at ``alpha``), on targets with
    at least ``CLIPS_PER_PARAMETER`` clips per parameter of that fit (else a line saying it
    was not checked)."""
    from statsmodels.stats.multitest import multipletests
    curved = [c for c in X.columns if len(np.unique(X[c].dropna())) > 2]
    if not curved:
        return []
    tested, pvalues, short, untestable, repeated, dependent = [], [], [], [], [], []
    for target in rating_targets:
        if target not in Y:
            continue
        ok = complete_clips(X, Y[target])
        x = X.to_numpy(float)[ok]
        centred = X[curved].to_numpy(float)[ok]
        centred = centred - centred.mean(0)
        design = np.column_stack([np.ones(ok.sum()), x, centred ** 2])
        if ok.sum() < CLIPS_PER_PARAMETER * design.shape[1]:
            short.append(target)
            continue
        if np.linalg.matrix_rank(design[:, :1 + x.shape[1]]) < 1 + x.shape[1]:
            dependent.append(target)
            continue
        if np.linalg.matrix_rank(design) < design.shape[1]:
            repeated.append(target)
            continue
        p = _hc3_wald(Y[target].to_numpy(float)[ok], design,
                      slice(1 + x.shape[1], design.shape[1]))
        if np.isfinite(p):
            tested.append(target)
            pvalues.append(p)
        else:
            untestable.append(target)
    lines = []
    if short:
        lines.append(f"linearity not checked for {_count(short, 'target')}: fewer than "
                     f"{CLIPS_PER_PARAMETER} clips per parameter of the check "
                     f"({CLIPS_PER_PARAMETER * (1 + X.shape[1] + len(curved))} clips)")
    if dependent:
        lines.append(f"linearity not checked for {', '.join(dependent)}: on "
                     f"{'its' if len(dependent) == 1 else 'their'} clips the concepts are "
                     f"linearly dependent (as two tags that exclude each other), and the check "
                     f"needs concepts the fit can tell apart")
    if repeated:
        lines.append(f"linearity not checked for {', '.join(repeated)}: on "
                     f"{'its' if len(repeated) == 1 else 'their'} clips the concepts' squares "
                     f"repeat what the concepts hold (as for a concept with two values there), "
                     f"so the check has nothing to test")
    if untestable:
        lines.append(f"linearity not checked for {', '.join(untestable)}: its robust (HC3) "
                     f"errors are undefined on these clips (a clip of leverage 1, as a tag "
                     f"present on one clip)")
    if not tested:
        return lines
    adjusted = multipletests(pvalues, method="holm")[1]
    found = [f"{t}, p {p:.2g}" for t, p in zip(tested, adjusted) if p < alpha]
    over = f"Holm over {_count(tested, 'target')}"
    if not found:
        return lines + [f"linearity: the concepts' squares do not detectably add to any "
                        f"target's fit (HC3 Wald test, {over}, alpha {alpha:g})"]
    return lines + [f"not linear: {'; '.join(found)} (the concepts' squares add to the fit: "
                    f"HC3 Wald test, {over}; a flag to look at the relation, the test running "
                    f"a little over its level); a slope of a curved relation depends on which "
                    f"clips were rated: read it as this set's linear summary"]


def _count(names: list, noun: str) -> str:
    return f"{len(names)} {noun}{'s' if len(names) != 1 else ''}"


def chance_line(table: pd.DataFrame) -> list[str]:
    """Without a correction: how many of the table's tests chance alone would call
    significant if no concept were associated with any target."""
    a = table.attrs
    if a.get("correction", "none") != "none":
        return []
    m = int(a.get("n_tests") or 0)
    alpha = float(a.get("alpha", 0.05))
    if m < 2:
        return []
    return [f"each test at alpha {alpha:g}: among {m} tests, about {alpha * m:.1f} would be "
            f"significant by chance if no concept were associated with any target "
            f"(--correction holm bounds the chance of any at {alpha:g})"]


def calibration_assumption(n_calibration: int, n_concepts: int) -> list[str]:
    """Summary lines of the calibrated estimator: the assumption it rests on, and a warning
    when fewer than ``FEW_PER_PARAMETER`` clips per stage-1 parameter calibrate (20-40
    clips: its bootstrap spread 3.5-5.6x the weights' own, intervals covering 0.99-1.00).

    The assumption cannot be tested from the clips alone: the errors of predictions against
    noisy ratings also carry the ratings' noise, which a target's fit would pick up under
    the assumption too."""
    lines = ["regression calibration assumes the model's concept errors carry nothing about a "
             "target beyond the true concepts (non-differential error); a joint run's errors "
             "can, and its intervals then miss (see the leakage diagnostic)"]
    if n_calibration < FEW_PER_PARAMETER * (n_concepts + 1):
        lines.append(f"only {n_calibration} clips calibrate {n_concepts} concepts (fewer than "
                     f"{FEW_PER_PARAMETER} per parameter of its first stage): its weights "
                     f"are unstable and its intervals wide, erring on the safe side")
    return lines


__all__ = ["vif", "high_vif", "correlated_concepts", "scale_ends", "declared_scales", "nonlinearity", "chance_line",
           "calibration_assumption", "VIF_WARN", "END_SHARE", "FEW_PER_PARAMETER"]
