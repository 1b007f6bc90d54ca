"""Do the concept explanations recover the truth of the synthetic concept world?

Measured over several seeds (``midlevel.synth``: concepts drawn, ratings and targets from a
known linear map):

1. Statistics path (no audio, no CNN): statsmodels OLS of the targets on concept values --
   the noiseless concepts and the noisy 1-10 ratings (= what an independent head is fitted
   on) -- against the true weights per rating point: sign agreement on the non-zero weights,
   Pearson r of recovered and true standardized weights, coverage of the true weights by the
   95 % intervals, and the share of zero true weights called significant (null false-positive
   rate; nominal 5 %, also with Holm's correction).
2. Model path: audio synthesized, a small-preset CNN trained in sequential mode on 2 s crops;
   the same figures for the sequential head (OLS on predicted concepts); and the localization
   of mid-clip concept changes: the changed concept's predicted value over time (2 s windows,
   0.25 s hop) fitted with the ramp a step makes through the windows; share within 1 s of the
   true time, against the chance rate of a uniform guess over the window centres.

Writes the section "Concept explanations" of benchmarks/RESULTS.md (other sections are kept)
and figures under benchmarks/figures/.

    python benchmarks/ground_truth_recovery.py            # full (about 15-25 min on 2 cores)
    python benchmarks/ground_truth_recovery.py --quick    # a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MPLBACKEND", "Agg")

from midlevel.explain.coefficients import run_coefficients
from midlevel.explain.head import run_design
from midlevel.explain.statistics import fit_ols
from midlevel.explain.truth import compare_to_truth, ground_truth_weights, synthetic_design

SECTION = "Concept explanations"
FIGURES = REPO / "benchmarks" / "figures"


def replace_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) the ``## heading`` section of a Markdown file, keeping the rest."""
    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip() == f"## {heading}"), None)
    new = [f"## {heading}", "", *body.rstrip().splitlines(), ""]
    if start is None:
        lines = lines + ([""] if lines and lines[-1].strip() else []) + new
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        lines = lines[:start] + new + lines[end:]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines).rstrip() + "\n")
    tmp.replace(path)


def statistics_path(seeds, sizes, correlated_too=True) -> pd.DataFrame:
    rows = []
    settings = [("true", False), ("ratings", False)] + ([("ratings", True)] if correlated_too
                                                        else [])
    for concepts, correlated in settings:
        for n in sizes:
            for seed in seeds:
                X, Y, truth = synthetic_design(n, seed=seed, concepts=concepts,
                                               correlated=correlated)
                for corr in ("none", "holm"):
                    t = fit_ols(X, Y, correction=corr, summaries=False).table
                    f = compare_to_truth(t, truth, X=X, Y=Y)
                    rows.append({"design": f"{'true concepts' if concepts == 'true' else 'ratings'}"
                                           f"{', correlated' if correlated else ''}",
                                 "n_clips": n, "seed": seed, "correction": corr, **f})
    return pd.DataFrame(rows)


def _summary(frame: pd.DataFrame, keys) -> pd.DataFrame:
    g = frame.groupby(keys, sort=False)
    out = g[["sign_agreement", "correlation", "coverage"]].mean()
    out["null_fpr"] = g.apply(lambda d: (d["null_fpr"] * d["n_null"]).sum() / d["n_null"].sum(),
                              include_groups=False)
    out["seeds"] = g.size()
    return out.reset_index()


def model_path(seeds, n_clips, duration, epochs, workdir: Path, log=print):
    """Train one sequential small CNN per seed; coefficient recovery and change localization."""
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    from midlevel.synth import synthesize
    from midlevel.explain.head import baseline_concepts
    from midlevel.explain.timeline import contributions_over_time, locate_change
    from midlevel.training import train

    coef_rows, loc_rows, examples = [], [], []
    for seed in seeds:
        t0 = time.time()
        data = workdir / f"data{seed}"
        spec = synthesize(data, n_clips=n_clips, seed=seed, duration=duration, n_jobs=2,
                          progress=False)
        truth = json.loads((data / "ground_truth.json").read_text())
        true_w = ground_truth_weights(truth)
        table = load_annotations(load_spec(spec))
        train_rows = table[table["split"] == "train"]
        concepts, targets = truth["concepts"], truth["targets"]
        # independent head: OLS on the training split's ratings (no CNN involved)
        t = fit_ols(train_rows[concepts], train_rows[targets], summaries=False).table
        coef_rows.append({"seed": seed, "head": "independent (ratings, training split)",
                          **compare_to_truth(t, true_w, X=train_rows[concepts],
                                             Y=train_rows[targets])})
        run = train(spec, workdir / f"run{seed}", mode="sequential",
                    config={"preset": "small", "epochs": epochs, "patience": epochs,
                            "crop_seconds": 2.0, "eval_hop_seconds": 1.0, "seed": seed},
                    cache_dir=workdir / "cache", progress=False, overwrite=True)
        metrics = run.metrics
        r_concepts = metrics[(metrics["split"] == "test") & (metrics["kind"] == "concept")]
        res = run_coefficients(run, n_boot=0)
        X, Y, _ = run_design(run)
        coef_rows.append({"seed": seed, "head": "sequential (predicted concepts, CNN)",
                          "test_concept_r": float(r_concepts.loc[r_concepts["name"] == "mean",
                                                                 "r"].iloc[0]),
                          **compare_to_truth(res.table, true_w, X=X, Y=Y)})
        baseline = baseline_concepts(run)
        per_concept_r = r_concepts.set_index("name")["r"].to_dict()
        for clip, rec in truth["clips"].items():
            change = rec.get("change")
            if not change or table.loc[clip, "split"] == "train":
                continue
            tl, spec_arr = contributions_over_time(run, table.loc[clip, "path"], baseline=baseline,
                                                   hop=0.25, window=2.0, name=clip,
                                                   targets=[targets[0]])
            curve = tl[tl["target"] == targets[0]]
            curve = curve[curve["concept"] == change["concept"]].sort_values("time")
            est = locate_change(curve["time"], curve["concept_value"], window=2.0)
            times = curve["time"].to_numpy()
            chance = float(np.mean(np.abs(np.linspace(times[0], times[-1], 10001)
                                          - change["time"]) <= 1.0))
            loc_rows.append({"seed": seed, "clip": clip, "concept": change["concept"],
                             "jump": change["new"] - change["old"], "true_time": change["time"],
                             "estimate": est, "error": abs(est - change["time"]),
                             "chance": chance, "concept_r": per_concept_r.get(change["concept"])})
            if len(examples) < 1 and abs(est - change["time"]) <= 1.0:
                examples.append((run, tl, spec_arr, change, clip))
        log(f"seed {seed}: model path {time.time() - t0:.0f} s")
    return pd.DataFrame(coef_rows), pd.DataFrame(loc_rows), examples


def figures(stats: pd.DataFrame, seed: int = 0):
    import matplotlib.pyplot as plt
    FIGURES.mkdir(parents=True, exist_ok=True)
    X, Y, truth = synthetic_design(200, seed=seed, concepts="ratings")
    t = fit_ols(X, Y, summaries=False).table.merge(truth, on=["target", "concept"])
    sd_x, sd_y = X.std(ddof=1), Y.std(ddof=1)
    t["true_std"] = [w * sd_x[c] / sd_y[g] for w, c, g in
                     zip(t["true_weight"], t["concept"], t["target"])]
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.errorbar(t["true_std"], t["std_weight"],
                yerr=[t["std_weight"] - t["std_ci_low"], t["std_ci_high"] - t["std_weight"]],
                fmt="o", ms=3, lw=0.8, color="#2e6fb5")
    lim = float(np.abs(t[["true_std", "std_weight"]]).to_numpy().max()) * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="grey", lw=0.8)
    ax.set_xlabel("true standardized weight")
    ax.set_ylabel("recovered (OLS on ratings), 95 % CI")
    ax.set_title("synthetic world, 200 clips, seed 0", fontsize=9)
    fig.tight_layout()
    fig.savefig(FIGURES / "concepts_recovery.png", dpi=120)
    plt.close(fig)


def timeline_figure(example):
    import matplotlib.pyplot as plt
    from midlevel.plots.concepts import timeline_plot
    run, tl, spec, change, clip = example
    fig = timeline_plot(spec, tl, fps=run.fps, change_time=change["time"])
    fig.suptitle(f"{clip}: {change['concept']} {change['old']:.2f} -> {change['new']:.2f} "
                 f"at {change['time']:g} s (dashed)", fontsize=9, y=1.02)
    fig.savefig(FIGURES / "concepts_change_timeline.png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _fmt(frame: pd.DataFrame) -> str:
    """A Markdown table (floats with 3 decimals)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if not np.isfinite(v) else f"{v:.3f}"
        return str(v)
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the statistics path")
    parser.add_argument("--model-seeds", type=int, default=3, help="seeds of the model path")
    parser.add_argument("--n-clips", type=int, default=200, help="clips per synthetic dataset")
    parser.add_argument("--duration", type=float, default=10.0, help="clip length (s)")
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (model path)")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    parser.add_argument("--workdir", help="keep the synthetic data and runs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.model_seeds, args.n_clips, args.epochs = 3, 1, 40, 2
    t_start = time.time()
    stats = statistics_path(range(args.seeds), [100, 200, 400] if not args.quick else [200])
    stat_table = _summary(stats, ["design", "n_clips", "correction"])
    print(_fmt(stat_table), flush=True)
    figures(stats)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gt_recovery_"))
    coef, loc, examples = model_path(range(args.model_seeds), args.n_clips, args.duration,
                                     args.epochs, workdir)
    coef_table = _summary(coef.assign(test_concept_r=coef.get("test_concept_r")), ["head"])
    if "test_concept_r" in coef:
        coef_table["test_concept_r"] = coef.groupby("head", sort=False)["test_concept_r"].mean().to_numpy()
    print(_fmt(coef_table), flush=True)
    if examples:
        timeline_figure(examples[0])
    if len(loc):
        loc_summary = pd.DataFrame([{
            "changes": len(loc), "within_1s": float((loc["error"] <= 1.0).mean()),
            "median_error_s": float(loc["error"].median()),
            "chance_within_1s": float(loc["chance"].mean())}])
        per_concept = loc.groupby("concept").agg(
            changes=("error", "size"), within_1s=("error", lambda e: float((e <= 1.0).mean())),
            median_error_s=("error", "median"), test_r=("concept_r", "mean")).reset_index()
        good = loc[loc["concept_r"] >= 0.5]
        good_line = (f"Changes of concepts the CNN predicts with test r >= 0.5: {len(good)}, "
                     f"{(good['error'] <= 1.0).mean():.0%} within 1 s." if len(good) else "")
    else:
        loc_summary = per_concept = pd.DataFrame()
        good_line = ""
    print(_fmt(loc_summary) if len(loc_summary) else "no changes", flush=True)
    elapsed = time.time() - t_start
    body = f"""Script: `benchmarks/ground_truth_recovery.py` ({'--quick, ' if args.quick else ''}{elapsed / 60:.0f} min on this machine, CPU).
Synthetic concept world (`midlevel.synth`, default weight map: 44 non-zero and 12 zero
weights over 7 concepts x 8 targets; rating noise 0.5, target noise 0.3). Truth = weights per
rating point. Standardized = weight x sd(concept) / sd(target) on the fit's data, for the truth
and the estimate alike. Null FPR = share of the zero true weights whose (adjusted) p < 0.05.

### 1. Statistics path: statsmodels OLS on concept values ({args.seeds} seeds each)

{_fmt(stat_table)}

"ratings" are the noisy 1-10 ratings an independent head is fitted on: the coverage is
slightly below 95 % because noisy regressors attenuate the weights (errors in variables, about
{1 - (9 ** 2 / 12) / (9 ** 2 / 12 + 0.25):.1%} here), and more so for correlated concepts.
Figure: `benchmarks/figures/concepts_recovery.png` (recovered vs true standardized weights).

### 2. Model path: sequential small CNN ({args.model_seeds} seeds, {args.n_clips} clips of {args.duration:g} s, {args.epochs} epochs, 2 s crops)

{_fmt(coef_table)}

`test_concept_r`: mean Pearson r of the CNN's predicted concepts on the test split. The
sequential head is fitted on predicted concepts, which are shrunk towards their mean, so its raw
weights are larger than the truth and the OLS intervals (which treat the predicted concepts as
fixed) cover the truth less often; signs and standardized pattern are what carries over.

### 3. Localization of mid-clip concept changes over time

Clips of the validation and test splits with a concept change at {args.duration / 2:g} s; the
changed concept's predicted value over 2 s windows every 0.25 s, fitted with the ramp a step
makes through the windows (`locate_change(..., window=2)`).

{_fmt(loc_summary) if len(loc_summary) else 'no changes'}

{_fmt(per_concept) if len(per_concept) else ''}

{good_line}
`chance_within_1s`: share of a uniform guess over the window centres that falls within 1 s.
Figure: `benchmarks/figures/concepts_change_timeline.png`. The timing itself (windows,
contributions, `locate_change`) is exact to about 0.2 s when the concept is read without error:
`tests/test_explain_timeline.py` (an oracle concept reader on synthesized audio) checks it;
misses above come from concepts the small CNN has not learned (low test r).
"""
    if not args.no_write:
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, body)
        print(f"written: {REPO / 'benchmarks' / 'RESULTS.md'} (section '{SECTION}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
