"""The accuracy sections of the comparison report (:mod:`midlevel.workflows.compare`): test
metrics per run and over seeds, completeness of each bottleneck against the black box, the
metrics figure and the leakage diagnostic, each filling tables and figures of a
:class:`~midlevel.report.document.Report`."""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.explain.faithfulness import completeness
from midlevel.explain.leakage import leakage_diagnostic
from midlevel.plots.common import as_written
from midlevel.report.document import Report, model_label

__all__ = ["run_metrics", "summarize_metrics", "target_kinds", "accuracy_tables",
           "leakage_tables"]


def run_metrics(runs, *, spec=None, root=None, cache_dir=None) -> pd.DataFrame:
    """Test-split metrics of every run on the data as it is now (``spec``, default the run's
    own), with columns model (mode; "blackbox" for black boxes), run, seed first: the
    ratings and audio the report's other sections read (audit 21b: the metrics stored at
    training were shown after the test ratings had been corrected, beside a leakage table of
    the new ones; before training and evaluation agreed to the last digit on unchanged
    data). A forward pass over each run's test clips: seconds, beside the explanations'
    minutes."""
    frames = []
    for run in runs:
        m = run.evaluate(spec, root=root, splits=("test",), cache_dir=cache_dir)
        m = m[m["split"] == "test"]
        m = m.copy()
        m.insert(0, "seed", run.config.seed)
        m.insert(0, "run", str(run.path))
        m.insert(0, "model", model_label(run))
        frames.append(m)
    return pd.concat(frames, ignore_index=True)


def summarize_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over runs (seeds) per model, kind and name of r, R^2 and RMSE, and of
    accuracy (class and binary targets) and ROC-AUC (binary) when the table has any."""
    g = metrics.groupby(["model", "kind", "name"], sort=False)
    extra = {}
    for col in ("accuracy", "auc"):
        if col in metrics and metrics[col].notna().any():
            extra.update({col: (col, "mean"), f"{col}_std": (col, "std")})
    return g.agg(n_runs=("run", "nunique"), r=("r", "mean"), r_std=("r", "std"),
                 r2=("r2", "mean"), r2_std=("r2", "std"), rmse=("rmse", "mean"),
                 rmse_std=("rmse", "std"), **extra).reset_index()


def target_kinds(runs) -> dict[str, str]:
    """Target name -> "regression", "binary" or "class" over every run's targets (runs
    trained on one dataset agree on the kind of a target they share)."""
    return {t["name"]: t.get("kind", "regression") for run in runs for t in run.targets}


def accuracy_tables(report: Report, runs, **data) -> None:
    """Metrics per run and over seeds, completeness against the black box (its summary rows
    averaging one sort of target each, as ``evaluate``'s), and a figure."""
    metrics = run_metrics(runs, **data)
    kinds = target_kinds(runs)
    summary = summarize_metrics(metrics)
    report.tables["metrics_runs"] = metrics
    report.tables["metrics"] = summary
    models = list(dict.fromkeys(metrics["model"]))
    if "blackbox" in models and len(models) > 1:
        rows = []
        for m in models:
            if m == "blackbox":
                continue
            sub = metrics[metrics["model"].isin([m, "blackbox"])].copy()
            sub["model"] = np.where(sub["model"] == "blackbox", "blackbox", "bottleneck")
            sub = sub[(sub["name"] != "mean") & ~sub["name"].astype(str).str.startswith("mean:")]
            # r, not R^2: a ratio of R^2 values is meaningless below 0
            c = completeness(sub, metric="r", kinds=kinds)
            c.insert(0, "metric", "r")
            c.insert(0, "model", m)
            c = c.rename(columns={"r_bottleneck": "bottleneck", "r_blackbox": "blackbox"})
            rows.append(c)
        report.tables["completeness"] = pd.concat(rows, ignore_index=True)
    _metrics_figure(report, summary, models, kinds)


def _metrics_figure(report: Report, summary: pd.DataFrame, models: list,
                    kinds: dict[str, str] | None = None) -> None:
    """Bars per target and model (mean +- std over runs; error bars only where a spread is
    known): Pearson r of the targets that have one (the others, class targets apart, named)
    and, beside it, the accuracy of class and binary targets when there are any. ``kinds``:
    target -> kind (:func:`target_kinds`; without it no target is known as a class one)."""
    import matplotlib.pyplot as plt
    tgt = summary[summary["kind"] == "target"]
    panels = [(col, label) for col, label in (("r", "Pearson r (test)"),
                                              ("accuracy", "accuracy (test)"))
              if col in tgt and tgt[col].notna().any()] or [("r", "Pearson r (test)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 3.2),
                             constrained_layout=True, squeeze=False)
    width = 0.8 / max(1, len(models))
    for ax, (col, label) in zip(axes[0], panels):
        names = list(dict.fromkeys(tgt.loc[tgt[col].notna(), "name"])) or \
            list(dict.fromkeys(tgt["name"]))
        for k, m in enumerate(models):
            d = tgt[tgt["model"] == m].set_index("name").reindex(names)
            x = np.arange(len(names)) + k * width
            ax.bar(x, d[col], width, label=f"{m} ({int(d['n_runs'].max())} run(s))"
                   if d["n_runs"].notna().any() else m)
            spread = d[f"{col}_std"].notna().to_numpy()  # one run: no spread is known
            if spread.any():
                ax.errorbar(x[spread], d[col].to_numpy()[spread],
                            yerr=d[f"{col}_std"].to_numpy()[spread], fmt="none", ecolor="k",
                            capsize=2, lw=0.8)
        classes = {n for n, kind in (kinds or {}).items() if kind == "class"}  # (no r)
        left_out = sorted(set(tgt["name"]) - set(names) - classes) if col == "r" else []
        if left_out:  # a target without this score (a constant test split): said, not hidden
            ax.text(0.01, 0.98, f"no {col}: " + ", ".join(left_out), transform=ax.transAxes,
                    fontsize=6, va="top")
        ax.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2, names,
                      rotation=30)
        as_written(*ax.get_xticklabels())  # target names, from users
        ax.set_ylabel(label)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.legend(fontsize=8)
    report.figures["Test accuracy per target (mean +- std over runs; no error bar for a "
                   "model of one run)"] = report.save_figure(
        fig, "metrics.png")


def leakage_tables(report: Report, runs, **data) -> None:
    """The leakage diagnostic of every joint and sequential bottleneck (held-out clips)."""
    leaks = []
    for run in runs:
        if run.model.kind == "bottleneck" and run.mode in ("joint", "sequential"):
            leak = leakage_diagnostic(run, run.predictions(("validation", "test"), **data))
            leak.insert(0, "seed", run.config.seed)
            leak.insert(0, "model", model_label(run))
            leaks.append(leak)
    if leaks:
        report.tables["leakage"] = pd.concat(leaks, ignore_index=True)
