"""The global explanation: the linear concept -> target weights, with honest statistics.

A concept bottleneck's head is linear, so its weights *are* the model's explanation. Read as
such, each weight needs its uncertainty. This module gives one tidy table per fit:

=============  ============================================================================
column         meaning
=============  ============================================================================
target         output unit (a regression target, or ``name=class`` for a class logit)
concept        concept name
weight         change of the target per unit of the concept (rating units)
std_weight     standardized weight: ``weight * sd(concept) / sd(target)`` on the fit's data
se             standard error of ``weight``
ci_low/high    confidence interval of ``weight`` (level ``1 - alpha``)
std_ci_low/hi  the same interval, standardized
stat           t (OLS) or z (GLM) statistic; for the bootstrap ``weight / se``
p_value        two-sided p-value; ``p_adjusted`` after the multiple-comparison correction
significant    ``p_adjusted < alpha``
method         how the statistics were obtained (OLS, GLM, bootstrap, refit...)
r2             R^2 of the target's fit (pseudo R^2 for a GLM)
n              clips in the fit
intercept      the fit's intercept
model_weight   the weight the model actually uses (rating units; from a run only)
=============  ============================================================================

Heads fitted by least squares (independent, sequential) are refitted with statsmodels OLS on
the exact design the model was fitted on, so ``weight == model_weight``. A joint head is learned
by gradient descent; its uncertainty comes from refitting the targets on the model's predicted
training concepts (OLS) and from a bootstrap over clips of that refit, labelled as such.
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
           "method", "r2", "n", "intercept"]


@dataclass
class CoefficientResult:
    """Coefficients of one or more fits.

    Attributes
    ----------
    table : pd.DataFrame
        Tidy, one row per (method, target, concept); columns in the module docstring.
    summaries : dict[str, str]
        statsmodels summary text per ``"method: target"``.
    """

    table: pd.DataFrame
    summaries: dict[str, str] = field(default_factory=dict)

    def summary_text(self) -> str:
        """Every statsmodels summary, one after the other, with a heading each."""
        parts = []
        for key, text in self.summaries.items():
            parts.append(f"{'=' * 78}\n{key}\n{'=' * 78}\n{text}\n")
        return "\n".join(parts)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.table["method"]))

    def primary(self) -> pd.DataFrame:
        """The rows of the first method (the one the heatmap shows)."""
        return self.table[self.table["method"] == self.methods()[0]]

    def write(self, out_dir: str | Path, *, heatmap: bool = True) -> dict[str, Path]:
        """Write ``coefficients.csv``, ``coefficients_summary.txt`` and ``coefficients.png``."""
        from midlevel.explain.contributions import write_csv
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"csv": out / "coefficients.csv", "summary": out / "coefficients_summary.txt"}
        write_csv(self.table, paths["csv"])
        _write_text(paths["summary"], self.summary_text())
        if heatmap:
            import matplotlib.pyplot as plt
            from midlevel.plots.concepts import coefficient_heatmap
            ax = coefficient_heatmap(self.primary())
            paths["heatmap"] = out / "coefficients.png"
            ax.figure.savefig(paths["heatmap"], dpi=120, bbox_inches="tight")
            plt.close(ax.figure)
        return paths


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


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
            summaries: bool = True) -> CoefficientResult:
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
            res = sm.OLS(y, design).fit()
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
                    "n": n, "intercept": params[0]})
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


def run_design(run, *, spec=None, root=None, cache_dir=None, progress: bool = False,
               train_predictions: pd.DataFrame | None = None):
    """The concept/target design a run's head is explained on, in rating units.

    Independent and sequential runs: the design stored with the model (true concept ratings,
    or the model's predicted training concepts) -- exactly what the head was fitted on. Joint
    runs: the model's predicted concepts on the training split against the true targets
    (predicted from the spec's audio through the feature cache, or taken from
    ``train_predictions``).

    Returns
    -------
    X : pd.DataFrame [index=clip, columns=concepts]
    Y : pd.DataFrame [index=clip, columns=targets] (class targets: class codes)
    source : str (what X is)
    """
    scales = run.info.get("scales") or {}
    concepts, targets = run.concept_names, run.target_names
    design = run.head_design
    if design is not None:
        c_mean = np.asarray(scales.get("concept_mean", np.zeros(len(concepts))))
        c_std = np.asarray(scales.get("concept_std", np.ones(len(concepts))))
        t_mean = np.asarray(scales.get("target_mean", np.zeros(len(targets))))
        t_std = np.asarray(scales.get("target_std", np.ones(len(targets))))
        X = design[concepts] * c_std + c_mean
        Y = design[targets] * t_std + t_mean
        return X, Y, design.attrs.get("source", "stored head design")
    from midlevel.explain.contributions import split_predictions
    if train_predictions is None:
        train_predictions = split_predictions(run, spec=spec, root=root, cache_dir=cache_dir,
                                              split="train", progress=progress)
    X = train_predictions[concepts]
    Y = train_predictions[[f"true:{t}" for t in targets]].set_axis(targets, axis=1)
    return X, Y, "predicted concepts on the training split"


def run_coefficients(run, *, spec=None, root=None, cache_dir=None, alpha: float = 0.05,
                     correction: str | None = None, n_boot: int | None = None, seed: int = 0,
                     progress: bool = False, train_predictions: pd.DataFrame | None = None,
                     ) -> CoefficientResult:
    """Coefficients of a concept-bottleneck run (``midlevel coefficients``).

    Parameters
    ----------
    run : a loaded run (:func:`midlevel.training.load_run`) or its directory.
    spec, root, cache_dir : where the training audio is (joint runs only; default: the spec
        stored with the run).
    alpha, correction : see :func:`fit_ols`.
    n_boot : bootstrap resamples over clips added as a second method (default: 1000 for a
        joint run, none for least-squares heads; 0 = none).
    train_predictions : reuse predictions from :func:`split_predictions` (joint runs).

    Returns
    -------
    CoefficientResult whose table also has ``model_weight`` (the head's weight in rating
    units) and ``mode``.
    """
    from midlevel.explain.contributions import LinearHead, as_run, class_targets_of
    run = as_run(run)
    head = LinearHead.from_run(run)
    X, Y, source = run_design(run, spec=spec, root=root, cache_dir=cache_dir,
                              progress=progress, train_predictions=train_predictions)
    classes = class_targets_of(run)
    mode = run.mode
    if mode == "joint":
        method = "OLS refit of the targets on predicted concepts (joint head: gradient descent)"
        n_boot = 1000 if n_boot is None else n_boot
    elif mode == "sequential":
        method = "OLS on predicted concepts (sequential head, least squares)"
    else:
        method = "OLS on concept ratings (independent head, least squares)"
    result = fit_ols(X, Y, alpha=alpha, correction=correction, method=method,
                     class_targets=classes)
    tables, summaries = [result.table], dict(result.summaries)
    regression = [t for t in Y.columns if t not in classes]
    if n_boot and regression:
        boot = bootstrap_ols(X, Y[regression], n_boot=n_boot, seed=seed, alpha=alpha,
                             correction=correction)
        tables.append(boot.table)
    table = pd.concat(tables, ignore_index=True)
    table["model_weight"] = [head.weight_of(t, c) for t, c in zip(table["target"],
                                                                  table["concept"])]
    table["mode"] = mode
    table["design"] = source
    table.attrs.update(result.table.attrs)
    return CoefficientResult(table, summaries)


def ground_truth_weights(truth: dict, *, units: str = "rating") -> pd.DataFrame:
    """The true map of a synthetic dataset (``ground_truth.json`` loaded) as a tidy table.

    ``units="rating"``: target points per concept rating point (what a fit on 1-10 ratings
    estimates); ``"true"``: per unit of the true [0, 1] concept value.

    Returns pd.DataFrame with columns target, concept, true_weight.
    """
    key = "weights_per_rating_point" if units == "rating" else "weights"
    weights = truth["target_map"][key]
    return pd.DataFrame([{"target": t, "concept": c, "true_weight": float(w)}
                         for t, row in weights.items() for c, w in row.items()])


def compare_to_truth(table: pd.DataFrame, truth: pd.DataFrame, *, X: pd.DataFrame | None = None,
                     Y: pd.DataFrame | None = None) -> dict:
    """Recovery figures of a coefficient table against a true weight table.

    Parameters
    ----------
    table : coefficient table (one method).
    truth : ``target, concept, true_weight`` in the units of ``table['weight']``.
    X, Y : the fit's data, to standardize the true weights like the estimates
        (``true * sd(x) / sd(y)``); without them the raw weights are compared.

    Returns
    -------
    dict with sign_agreement (over true non-zero weights), correlation (Pearson r of
    standardized estimates and truth), coverage (share of true weights inside the interval),
    null_fpr (share of zero true weights called significant), n_nonzero, n_null.
    """
    from scipy import stats as sstats
    merged = table.merge(truth, on=["target", "concept"], how="inner")
    if merged.empty:
        raise MidlevelError("no (target, concept) pair in common with the truth")
    if X is not None and Y is not None:
        sd_x = X.std(ddof=1)
        sd_y = Y.std(ddof=1)
        merged["true_std"] = [w * sd_x[c] / sd_y[t] for w, c, t in
                              zip(merged["true_weight"], merged["concept"], merged["target"])]
        est, tru = merged["std_weight"], merged["true_std"]
    else:
        est, tru = merged["weight"], merged["true_weight"]
    nonzero = merged["true_weight"] != 0
    covered = (merged["ci_low"] <= merged["true_weight"]) & (merged["true_weight"] <= merged["ci_high"])
    return {
        "sign_agreement": float((np.sign(merged.loc[nonzero, "weight"])
                                 == np.sign(merged.loc[nonzero, "true_weight"])).mean()),
        "correlation": float(sstats.pearsonr(est, tru)[0]),
        "coverage": float(covered.mean()),
        "null_fpr": float(merged.loc[~nonzero, "significant"].mean()) if (~nonzero).any()
        else float("nan"),
        "n_nonzero": int(nonzero.sum()), "n_null": int((~nonzero).sum()),
    }


def synthetic_design(n_clips: int = 200, seed: int = 0, *, weights=None, correlated: bool = False,
                     rating_noise: float = 0.5, target_noise: float = 0.3,
                     concepts: str = "ratings") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The synthetic concept world without audio: concept values, targets and the true map.

    Draws concepts, ratings and targets exactly as :func:`midlevel.data.synth.synthesize` does
    (same generative formulas, no rendering), so the statistics can be checked against the truth
    in milliseconds.

    Parameters
    ----------
    concepts : "ratings" (noisy 1-10 ratings, what an independent head is fitted on) or
        "true" (the noiseless concept values mapped to the rating scale, ``1 + 9 c``).

    Returns
    -------
    X : pd.DataFrame [shape=(n_clips, n_concepts)] concept values on the rating scale.
    Y : pd.DataFrame [shape=(n_clips, n_targets)] targets.
    truth : pd.DataFrame with target, concept, true_weight (per rating point).
    """
    from midlevel.data import synth
    matrix, intercepts = synth.load_weights(weights)
    rng = np.random.default_rng(seed)
    true = synth.sample_concepts(n_clips, rng, correlated=correlated)
    ratings = synth.concepts_to_ratings(true, rng, rating_noise)
    targets = synth.concepts_to_targets(true, matrix, intercepts, rng, target_noise)
    lo, hi = synth.RATING_SCALE
    values = ratings if concepts == "ratings" else lo + (hi - lo) * true
    ids = pd.Index([f"c{i:04d}" for i in range(n_clips)], name="clip")
    X = pd.DataFrame(values, index=ids, columns=list(matrix.columns))
    Y = pd.DataFrame(targets, index=ids, columns=list(matrix.index))
    per_point = matrix / (hi - lo)
    truth = pd.DataFrame([{"target": t, "concept": c, "true_weight": float(per_point.loc[t, c])}
                          for t in per_point.index for c in per_point.columns])
    return X, Y, truth
