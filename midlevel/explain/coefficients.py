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
target             output unit (a regression target, or ``name=class`` for a class logit
                   against the first class)
concept            concept name
model_weight       the head's weight (target points per concept rating point; for a class
                   unit, its logit's weight minus the first class's)
model_std_weight   ``model_weight * std_scale``
weight             the data's estimate, in the same units
std_weight         ``weight * std_scale``; ``std_scale = sd(concept) / sd(target)`` on the
                   fit's clips (class targets: ``sd(concept)``, logit per sd)
se, ci_low/high    standard error and interval (level ``1 - alpha``) of ``weight``
std_ci_low/high    the same interval, standardized
stat, p_value      t or z statistic (bootstrap: ``weight / se``), two-sided p-value
p_adjusted         after the multiple-comparison correction; ``significant``: < alpha
method             how the data's estimate was obtained
r2, n, intercept   of the data's fit
flag, flag_reason  where the model departs from the data (empty: it does not)
mode               the run's training mode
=================  ========================================================================
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


from midlevel.errors import MidlevelError

CORRECTIONS = ("none", "bonferroni", "holm", "fdr_bh")
COLUMNS = ["target", "concept", "weight", "std_weight", "se", "ci_low", "ci_high",
           "std_ci_low", "std_ci_high", "stat", "p_value", "p_adjusted", "significant",
           "method", "r2", "n", "intercept", "std_scale"]
RUN_COLUMNS = ["target", "concept", "model_weight", "model_std_weight"] + COLUMNS[2:] + [
    "flag", "flag_reason", "mode"]


@dataclass
class CoefficientResult:
    """Coefficients of one fit, or of a run (both questions, see the module docstring).

    Attributes
    ----------
    table : pd.DataFrame
        Tidy, one row per (target, concept); ``COLUMNS`` for a fit, ``RUN_COLUMNS`` for a run.
    summaries : dict[str, str]
        statsmodels summary text per ``"method: target"``.
    leakage : pd.DataFrame or None
        The leakage diagnostic of a joint or sequential run (:mod:`midlevel.explain.leakage`).
    """

    table: pd.DataFrame
    summaries: dict[str, str] = field(default_factory=dict)
    leakage: pd.DataFrame | None = None

    def summary_text(self) -> str:
        """The flags, the leakage diagnostic and every statsmodels summary, with headings."""
        parts = []
        if "flag" in self.table:
            from midlevel.explain.flags import flag_summary
            parts.append(f"{'=' * 78}\nwhere the model departs from what the data show\n"
                         f"{'=' * 78}\n{flag_summary(self.table)}\n")
        if self.leakage is not None and len(self.leakage):
            from midlevel.explain.leakage import leakage_summary
            parts.append(f"{'=' * 78}\nleakage diagnostic (held-out clips)\n{'=' * 78}\n"
                         f"{leakage_summary(self.leakage)}\n")
        for key, text in self.summaries.items():
            parts.append(f"{'=' * 78}\n{key}\n{'=' * 78}\n{text}\n")
        return "\n".join(parts)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.table["method"]))

    def primary(self) -> pd.DataFrame:
        """The rows of the first method (a run's table has one method)."""
        return self.table[self.table["method"] == self.methods()[0]]

    def flagged(self) -> pd.DataFrame:
        """The rows whose model weight departs from what the data show."""
        return self.table[self.table["flag"] != ""] if "flag" in self.table else \
            self.table.iloc[:0]

    def write(self, out_dir: str | Path, *, heatmap: bool = True) -> dict[str, Path]:
        """Write ``coefficients.csv``, ``coefficients_summary.txt``, ``coefficients.png`` and,
        for a run with a leakage diagnostic, ``leakage.csv``."""
        from midlevel.atomic import atomic_open
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "coefficients.csv", "summary": out / "coefficients_summary.txt"}
        with atomic_open(paths["csv"], "w") as fh:
            self.table.to_csv(fh, index=False)
        with atomic_open(paths["summary"], "w") as fh:
            fh.write(self.summary_text())
        if self.leakage is not None and len(self.leakage):
            paths["leakage"] = out / "leakage.csv"
            with atomic_open(paths["leakage"], "w") as fh:
                self.leakage.to_csv(fh, index=False)
        if heatmap:
            import matplotlib.pyplot as plt
            from midlevel.plots.concepts import coefficient_figure, coefficient_heatmap
            fig = (coefficient_figure(self.table) if "model_weight" in self.table
                   else coefficient_heatmap(self.primary()).figure)
            paths["heatmap"] = out / "coefficients.png"
            with atomic_open(paths["heatmap"]) as fh:
                fig.savefig(fh, format="png", dpi=120, bbox_inches="tight")
            plt.close(fig)
        return paths


def _as_frame(values, names=None, what="X") -> pd.DataFrame:
    if isinstance(values, pd.Series):
        values = values.to_frame()
    if isinstance(values, pd.DataFrame):
        return values.astype(float)
    arr = np.asarray(values, dtype=float)
    arr = arr.reshape(len(arr), -1)
    names = names or [f"{what.lower()}{j}" for j in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=list(names))


def adjust_pvalues(p: np.ndarray, correction: str | None) -> np.ndarray:
    """Multiple-comparison correction of ``p`` (any shape; NaN kept): none, bonferroni, holm,
    fdr_bh (Benjamini-Hochberg)."""
    correction = correction or "none"
    if correction not in CORRECTIONS:
        raise MidlevelError(f"unknown correction '{correction}'; choose one of {list(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out = p.copy()
    ok = np.isfinite(p)
    if correction != "none" and ok.any():
        from statsmodels.stats.multitest import multipletests
        out[ok] = multipletests(p[ok], method=correction)[1]
    return out


def _finish(rows: list[dict], alpha: float, correction: str | None) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    table["p_adjusted"] = np.nan
    for method, idx in table.groupby("method", sort=False).groups.items():
        table.loc[idx, "p_adjusted"] = adjust_pvalues(table.loc[idx, "p_value"].to_numpy(),
                                                      correction)
    table["significant"] = table["p_adjusted"] < alpha
    table.attrs.update(alpha=alpha, correction=correction or "none")
    extra = [c for c in table.columns if c not in COLUMNS]
    return table[COLUMNS + extra].reset_index(drop=True)


def fit_ols(X, Y, *, alpha: float = 0.05, correction: str | None = None,
            method: str = "OLS", class_targets: dict[str, list] | None = None,
            summaries: bool = True, cov_type: str = "nonrobust") -> CoefficientResult:
    """Fit every target on the concepts with statsmodels (OLS; GLM/MNLogit for class targets).

    Parameters
    ----------
    X : pd.DataFrame [shape=(n_clips, n_concepts)]
        Concept values (rating units); column names are the concept names.
    Y : pd.DataFrame [shape=(n_clips, n_targets)]
        Target values; a class target holds integer class codes as float.
    alpha : float
        1 - confidence level of the intervals, and the significance level.
    correction : None or one of ``CORRECTIONS``
        Multiple-comparison correction over all (concept, target) p-values of the method.
    method : str
        Label written into the ``method`` column.
    class_targets : dict target -> list of class names
        Targets fitted as classifications: two classes with a binomial GLM (logit of the second
        class against the first, row target ``name=class1``), more with a multinomial logit
        (one row set per class against the first).
    summaries : keep the statsmodels summary text of every fit (off: faster).
    cov_type : statsmodels covariance of the OLS fits: "nonrobust" (classical) or a
        heteroscedasticity-robust one ("HC0".."HC3"), with t intervals either way.

    Returns
    -------
    CoefficientResult

    Rows with NaN in X or in a target are left out of that target's fit.
    """
    import statsmodels.api as sm

    X, Y = _as_frame(X, what="X"), _as_frame(Y, what="Y")
    if len(X) != len(Y):
        raise MidlevelError(f"X has {len(X)} rows but Y has {len(Y)}")
    class_targets = class_targets or {}
    rows, texts = [], {}
    keep = summaries
    names = list(X.columns)
    for target in Y.columns:
        ok = np.isfinite(X.to_numpy()).all(1) & np.isfinite(Y[target].to_numpy())
        x, y = X.to_numpy()[ok], Y[target].to_numpy()[ok]
        if ok.sum() <= len(names) + 1:
            raise MidlevelError(f"target '{target}': {ok.sum()} complete rows, need more than "
                                f"{len(names) + 1} to fit {len(names)} concepts")
        design = sm.add_constant(pd.DataFrame(x, columns=names), has_constant="add")
        sd_x = x.std(axis=0, ddof=1)
        if target not in class_targets:
            res = sm.OLS(y, design).fit(cov_type=cov_type, use_t=True)
            if keep:
                texts[f"{method}: {target}"] = str(res.summary(alpha=alpha))
            rows += _rows(res.params, res.bse, res.conf_int(alpha), res.tvalues, res.pvalues,
                          names, str(target), method, float(res.rsquared), int(ok.sum()),
                          sd_x, float(y.std(ddof=1)))
            continue
        classes = list(class_targets[target])
        codes = y.astype(int)
        present = np.unique(codes)
        if len(present) < 2:
            raise MidlevelError(f"class target '{target}': only one class in the data")
        if len(classes) == 2 or len(present) == 2:
            base, other = present[0], present[1]
            yy = (codes == other).astype(float)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = sm.GLM(yy, design, family=sm.families.Binomial()).fit()
            label = f"{target}={classes[other]}" if other < len(classes) else f"{target}={other}"
            if keep:
                texts[f"{method} (GLM binomial, vs {classes[base]}): {label}"] = str(
                    res.summary(alpha=alpha))
            r2 = float(1 - res.deviance / res.null_deviance) if res.null_deviance > 0 else np.nan
            rows += _rows(res.params, res.bse, res.conf_int(alpha), res.tvalues, res.pvalues,
                          names, label, f"{method} (GLM binomial)", r2, int(ok.sum()), sd_x,
                          np.nan)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.MNLogit(codes, design).fit(disp=False, maxiter=500)
        if keep:
            texts[f"{method} (multinomial logit, vs {classes[present[0]]}): {target}"] = str(
                res.summary(alpha=alpha))
        ci = res.conf_int(alpha)
        for j, code in enumerate(present[1:]):
            label = f"{target}={classes[code]}"
            cij = ci.xs(ci.index.get_level_values(0).unique()[j], level=0).to_numpy() \
                if isinstance(ci.index, pd.MultiIndex) else np.asarray(ci)[j]
            rows += _rows(np.asarray(res.params)[:, j], np.asarray(res.bse)[:, j], cij,
                          np.asarray(res.tvalues)[:, j], np.asarray(res.pvalues)[:, j],
                          names, label, f"{method} (multinomial logit)",
                          float(res.prsquared), int(ok.sum()), sd_x, np.nan)
    return CoefficientResult(_finish(rows, alpha, correction), texts)


def _rows(params, bse, ci, stat, p, names, target, method, r2, n, sd_x, sd_y) -> list[dict]:
    """Rows of one fit; index 0 of the arrays is the intercept."""
    params, bse, stat, p = (np.asarray(a, dtype=float) for a in (params, bse, stat, p))
    ci = np.asarray(ci, dtype=float)
    # a class fit has no target sd: standardize by the concept's sd only (logit per sd)
    scale = sd_x / (sd_y if np.isfinite(sd_y) and sd_y > 0 else 1.0)
    out = []
    for k, name in enumerate(names):
        out.append({"target": target, "concept": name, "weight": params[k + 1],
                    "std_weight": params[k + 1] * scale[k], "se": bse[k + 1],
                    "ci_low": ci[k + 1, 0], "ci_high": ci[k + 1, 1],
                    "std_ci_low": ci[k + 1, 0] * scale[k], "std_ci_high": ci[k + 1, 1] * scale[k],
                    "stat": stat[k + 1], "p_value": p[k + 1], "method": method, "r2": r2,
                    "n": n, "intercept": params[0], "std_scale": scale[k]})
    return out


def bootstrap_ols(X, Y, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                  correction: str | None = None,
                  method: str = "bootstrap over clips (OLS refit)") -> CoefficientResult:
    """Percentile bootstrap over clips of the least-squares fit of every (regression) target.

    Clips are drawn with replacement ``n_boot`` times and the OLS fit repeated. ``se`` is the
    bootstrap standard deviation, the interval the percentile interval, ``p_value`` the
    two-sided bootstrap p-value ``2 * min(P(b <= 0), P(b >= 0))`` (at least ``1 / n_boot``),
    ``weight`` the fit on all clips.
    """
    X, Y = _as_frame(X, what="X"), _as_frame(Y, what="Y")
    rng = np.random.default_rng(seed)
    names = list(X.columns)
    rows = []
    for target in Y.columns:
        ok = np.isfinite(X.to_numpy()).all(1) & np.isfinite(Y[target].to_numpy())
        x, y = X.to_numpy()[ok], Y[target].to_numpy()[ok]
        n = len(y)
        if n <= len(names) + 1:
            raise MidlevelError(f"target '{target}': {n} complete rows, too few to bootstrap")
        design = np.hstack([np.ones((n, 1)), x])
        full = np.linalg.lstsq(design, y, rcond=None)[0]
        boots = np.empty((n_boot, design.shape[1]))
        for b in range(n_boot):
            idx = rng.integers(n, size=n)
            boots[b] = np.linalg.lstsq(design[idx], y[idx], rcond=None)[0]
        lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
        se = boots.std(axis=0, ddof=1)
        p = np.maximum(2 * np.minimum((boots <= 0).mean(0), (boots >= 0).mean(0)), 1 / n_boot)
        resid = y - design @ full
        r2 = float(1 - resid.var() / y.var()) if y.var() > 0 else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = full / se
        rows += _rows(full, se, np.stack([lo, hi], 1), stat, np.minimum(p, 1.0), names,
                      str(target), f"{method}, {n_boot} resamples", r2, n,
                      x.std(axis=0, ddof=1), float(y.std(ddof=1)))
    return CoefficientResult(_finish(rows, alpha, correction), {})


# --------------------------------------------------------------------------- from a run


def run_design(run):
    """The design an independent or sequential head was fitted on, in rating units.

    Returns ``(X, Y, source)``: X the concepts (true ratings for an independent head, the
    model's predicted training concepts for a sequential one), Y the targets (class targets:
    codes), both indexed by clip; None for a joint run (its head is learned by gradient
    descent, on no stored design).
    """
    design = run.head_design
    if design is None:
        return None
    scales = run.info.get("scales") or {}
    concepts, targets = run.concept_names, run.target_names
    c_mean = np.asarray(scales.get("concept_mean", np.zeros(len(concepts))))
    c_std = np.asarray(scales.get("concept_std", np.ones(len(concepts))))
    t_mean = np.asarray(scales.get("target_mean", np.zeros(len(targets))))
    t_std = np.asarray(scales.get("target_std", np.ones(len(targets))))
    X = design[concepts] * c_std + c_mean
    Y = design[targets] * t_std + t_mean
    return X, Y, design.attrs.get("source", "stored head design")


def model_weights(run, units, concepts) -> np.ndarray:
    """The head's weight of every ``(unit, concept)`` pair (see ``LinearHead.weight_of``)."""
    from midlevel.explain.contributions import LinearHead
    head = LinearHead.from_run(run)
    return np.array([head.weight_of(u, c) for u, c in zip(units, concepts)], dtype=float)


def run_coefficients(run, *, spec=None, root=None, cache_dir=None, alpha: float = 0.05,
                     correction: str | None = None, data: str = "auto", n_boot: int = 1000,
                     seed: int = 0, materiality: float | None = None, leakage: bool = True,
                     predictions: pd.DataFrame | None = None,
                     progress: bool = False) -> CoefficientResult:
    """Both questions for a concept-bottleneck run (``midlevel coefficients``).

    Parameters
    ----------
    run : a loaded run (:func:`midlevel.training.load_run`) or its directory.
    spec, root, cache_dir : the annotations (default: the spec and root the run was trained
        with) and the feature cache (for held-out predictions).
    alpha, correction : interval level / significance and multiple-comparison correction of
        the data's p-values (see :func:`fit_ols`).
    data : how the data's answer is estimated: "ratings", "calibrated" or "auto" (ratings
        when at least :func:`midlevel.explain.evidence.min_clips` clips carry every concept
        and the target; see :mod:`midlevel.explain.evidence`).
    n_boot, seed : bootstrap of the calibrated estimator.
    materiality : standardized margin of the flags (default
        :data:`midlevel.explain.flags.MATERIALITY`).
    leakage : add the leakage diagnostic (joint and sequential runs).
    predictions : reuse :func:`midlevel.explain.contributions.split_predictions` of the
        validation and test splits (otherwise computed when needed).

    Returns
    -------
    CoefficientResult with ``RUN_COLUMNS`` and, for joint and sequential runs, ``leakage``.
    """
    from midlevel.explain import evidence
    from midlevel.explain.contributions import (
        as_run, class_targets_of, require_bottleneck, run_annotations, split_predictions,
    )
    from midlevel.explain.flags import MATERIALITY, flag_weights
    from midlevel.explain.leakage import leakage_diagnostic
    run = as_run(run)
    require_bottleneck(run)
    if data not in ("auto", *evidence.METHODS):
        raise MidlevelError(f"data must be 'auto', 'ratings' or 'calibrated', got '{data}'")
    concepts, targets = run.concept_names, run.target_names
    classes = class_targets_of(run)
    X, Y = evidence.rated_design(run_annotations(run, spec=spec, root=root), concepts, targets)
    method = evidence.choose_method(X, Y) if data == "auto" else data
    wants_leakage = leakage and run.mode in ("joint", "sequential")
    if predictions is None and (method == "calibrated" or wants_leakage):
        predictions = split_predictions(run, spec=spec, root=root, cache_dir=cache_dir,
                                        split=("validation", "test"), progress=progress)
    if method == "ratings":
        result = evidence.ratings_fit(X, Y, alpha=alpha, correction=correction,
                                      class_targets=classes)
    else:
        held = predictions[predictions["split"].isin(["validation", "test"])]
        if held.empty:
            raise MidlevelError(f"{run.path}: the calibrated estimator needs held-out "
                                f"(validation or test) clips; the spec has none")
        true = held[[f"true:{c}" for c in concepts]].set_axis(concepts, axis=1)
        ys = held[[f"true:{t}" for t in targets]].set_axis(targets, axis=1)
        result = evidence.calibrated_fit(held[concepts], true, ys, n_boot=n_boot, seed=seed,
                                         alpha=alpha, correction=correction,
                                         class_targets=classes)
    table = result.table.copy()
    table.insert(2, "model_weight", model_weights(run, table["target"], table["concept"]))
    table.insert(3, "model_std_weight", table["model_weight"] * table["std_scale"])
    table = flag_weights(table, materiality=MATERIALITY if materiality is None else materiality)
    table["mode"] = run.mode
    table = table[RUN_COLUMNS].reset_index(drop=True)
    table.attrs.update(result.table.attrs, data=method)
    leak = leakage_diagnostic(run, predictions) if wants_leakage else None
    return CoefficientResult(table, dict(result.summaries), leakage=leak)


from midlevel.explain.truth import (  # noqa: E402,F401  (kept importable from here)
    compare_to_truth, ground_truth_weights, synthetic_design,
)
