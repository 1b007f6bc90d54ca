"""Sanity checks with statistical power: cascading randomization on 30 clips and 2 targets.

`posthoc_faithfulness.py` runs the cascading-randomization check on its first few clips of the
first target only (the rest of its budget goes to the deletion harness), so its pass / fail
verdicts rest on a bootstrap over 3 clips. This script runs the same check
(:func:`midlevel.explain.sanity.sanity_check`, same pass rule, same two floors, fixed before
measuring) on the same two Soundtracks models (black box, joint bottleneck; trained or loaded
from ``--workdir`` exactly as `posthoc_faithfulness.py` does) for every registered method, on
``--clips`` test clips (one 10-s window each: the window ``predict`` reads first) and each of
``--targets``.

Per (model, target, method): the three similarities of the floors (Spearman of ``|map|``, mean
over clips), the two differences the pass rule tests with their 95 % bootstrap intervals over
clips, and the verdict; the per-stage cascade curve (mean similarity of the trained map to the
map after randomizing the top k stages) goes to ``sanity_cascade.csv`` in the workdir and into a
figure.

    python benchmarks/posthoc_sanity.py --workdir runs/posthoc          # 30 clips, fear + happy
    python benchmarks/posthoc_sanity.py --quick                         # smoke run

Interrupted runs resume: each (model, target, method) is kept in ``workdir/sanity_parts``.
Writes the section "Post-hoc sanity with power" of benchmarks/RESULTS.md.

With ``--n-random K`` (K > 2) the check makes K full randomizations (seeds 1 .. K) and its
intervals cover the draw of clips and networks (the module docstring of
``midlevel.explain.sanity``);
the same networks' seeds 1 and 2 alone give the two-network check as a comparison row. Such a
run (parts in ``workdir/sanity_parts_k{K}``) writes the section "Post-hoc sanity over many
random networks" instead, e.g.

    python benchmarks/posthoc_sanity.py --workdir /tmp/sanity18/work --models blackbox \
        --n-random 8 --no-cascade --threads 1 \
        --methods integrated_gradients deeplift shap_deep shap_gradient
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from ground_truth_recovery import _fmt, replace_section  # noqa: E402
from posthoc_faithfulness import (  # noqa: E402
    _options, _runs, common_arguments, sanity_result, sanity_rows,
)

from midlevel.explain.attribution.registry import METHODS  # noqa: E402

SECTION = "Post-hoc sanity with power"
NETWORKS_SECTION = "Post-hoc sanity over many random networks"


def run_all(args, work: Path, log) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    runs = _runs(args, work, log)
    if getattr(args, "models", None):
        runs = {label: run for label, run in runs.items() if label in args.models}
    data = {}
    for label, run in runs.items():
        _, specs = run.data("test", cache_dir=work / "cache")
        data[label] = specs[:args.clips], run.background(16, cache_dir=work / "cache")
    methods = args.methods or list(METHODS)
    # the gradient and perturbation methods on every target first, then LIME (each of its
    # maps costs 2 x lime_samples forward passes) on --lime-targets
    jobs = [(label, target, m) for phase in (False, True) for label in runs
            for target in args.targets for m in methods if m.startswith("lime") == phase
            and (not phase or not args.lime_targets or target in args.lime_targets)]
    verdicts, cascades, cost = [], [], []
    for label, target, method in jobs:
        run, (specs, bg) = runs[label], data[label]
        k = getattr(args, "n_random", 2)
        parts = "sanity_parts" if k == 2 else f"sanity_parts_k{k}"
        part = work / parts / f"{label}_{target}_{method}.pkl"
        if args.report_only and not part.is_file():
            continue
        if part.is_file():  # an interrupted run resumes here
            stored = pd.read_pickle(part)
            v, c, s = stored[:3]
            if len(stored) > 3:  # the similarities kept: judged again by the current rule
                v = _k_and_two(stored[3])
            log(f"{label} {target} {method}: loaded from {part}")
        else:
            t0 = time.time()
            if k == 2:
                v, c = sanity_rows(run, method, target, specs, bg, _options(args),
                                   cascade=not getattr(args, "no_cascade", False))
            else:  # the K-network verdict and, from its seeds 1 and 2, the two-network one
                res = sanity_result(run, method, target, specs, bg, _options(args),
                                    n_random=k, cascade=not args.no_cascade)
                v, c = _k_and_two(res), res.cascade
            s = time.time() - t0
            log(f"{label} {target} {method}: {s:.0f} s, verdict "
                f"{v['verdict'].iloc[0]}")  # passed is NaN without a verdict
            part.parent.mkdir(parents=True, exist_ok=True)
            tmp = part.with_suffix(".tmp")
            # with K networks the result itself too: its similarities can be judged again
            pd.to_pickle((v, c, s) if k == 2 else (v, c, s, res), tmp)
            os.replace(tmp, part)
        keys = {"model": label, "target": target}
        verdicts.append(v.assign(**keys))
        cascades.append(c.assign(**keys))
        cost.append({**keys, "method": method, "seconds": s, "clips": len(specs),
                     "stages": int(c["n_stages"].max()) if len(c) else np.nan})
    models = {label: _test_r(run, args.targets) for label, run in runs.items()}
    return (pd.concat(verdicts, ignore_index=True), pd.concat(cascades, ignore_index=True),
            pd.DataFrame(cost), models)


def earlier_verdicts(path: Path) -> dict:
    """(model, target, method) -> (passed, minus_random_ci_high) as printed in the first table
    of the section :data:`SECTION` of ``path`` (empty if there is none)."""
    text = path.read_text() if path.is_file() else ""
    start = text.find(f"## {SECTION}\n")
    if start < 0:
        return {}
    stop = text.find("\n## ", start + 1)
    lines = text[start:stop if stop > 0 else None].splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith("| model | target |")),
                  None)
    if header is None:
        return {}
    names = [c.strip() for c in lines[header].strip("|").split("|")]
    out = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        row = dict(zip(names, (c.strip() for c in line.strip("|").split("|"))))
        out[(row["model"], row["target"], row["method"])] = (row.get("passed"),
                                                             row.get("minus_random_ci_high"))
    return out


def _model_dirs(args, models: dict) -> list[str]:
    """The run directories the workdir's models are read from (links followed)."""
    work = Path(args.workdir) if getattr(args, "workdir", None) else None
    return [str((work / f"soundtracks_{m}").resolve()) if work else f"soundtracks_{m}"
            for m in models]


def failed_floors(row) -> str:
    """The floors a verdict row fails, each with its own interval's upper end: "floor (a),
    upper end +0.015" (``minus_input_ci_high``), "floor (b), upper end +0.002"
    (``minus_random_ci_high``), or both; "no verdict" where neither end is known."""
    said = [f"floor ({name}), upper end {row[column]:+.3f}"
            for name, column in (("a", "minus_input_ci_high"), ("b", "minus_random_ci_high"))
            if not row[column] < 0 and np.isfinite(row[column])]
    return " and ".join(said) if said else "no verdict"


def summarize_networks(verdicts: pd.DataFrame, cost: pd.DataFrame, args, models: dict,
                       command: str) -> str:
    """The section of a K-network run: per (model, target, method) the two-network check
    (seeds 1, 2: intervals over clips) beside the K-network one (intervals over clips and
    networks), the margin's spread over networks and over pairs, and a reading."""
    v = verdicts[verdicts["similarity"] == "spearman_abs"].copy()
    v["margin"] = v["trained_vs_random"] - v["random_vs_random"]
    cols = ["model", "target", "method", "n_random", "n_defined", "trained_vs_random",
            "trained_vs_input", "random_vs_random", "margin", "minus_input_ci_high",
            "minus_random_ci_low", "minus_random_ci_high", "minus_random_network_min",
            "minus_random_network_max", "minus_random_pair_min", "minus_random_pair_max",
            "passed"]
    table = v[cols].sort_values(["model", "target", "method", "n_random"], kind="stable")
    table = table.round({c: 3 for c in cols if table[c].dtype.kind == "f"})
    table = table.rename(columns={"minus_random_network_min": "network_min",
                                  "minus_random_network_max": "network_max",
                                  "minus_random_pair_min": "pair_min",
                                  "minus_random_pair_max": "pair_max"})
    k = int(v["n_random"].max())
    before = earlier_verdicts(REPO / "benchmarks" / "RESULTS.md")
    reading = []
    for (model, target, method), g in v.groupby(["model", "target", "method"], sort=False):
        two = g[g["n_random"] == 2].iloc[0]
        many = g[g["n_random"] == k].iloc[0]
        if bool(two["passed"] == True) and bool(many["passed"] == True):  # noqa: E712
            word = "passes with two networks and still passes with the draw in the interval"
        elif bool(two["passed"] == True):  # noqa: E712
            word = (f"passes with two networks but not once the draw is in the interval "
                    f"(K = {k}: {failed_floors(many)})")
        elif bool(many["passed"] == True):  # noqa: E712
            word = "fails with two networks but passes with K networks"
        else:
            word = f"fails either way (K = {k}: {failed_floors(many)})"
        if bool(many["passed"] == True) and many["minus_random_pair_max"] >= 0:  # noqa: E712
            word += (f"; some seed pairs alone give a margin >= 0 (`pair_max` "
                     f"{many['minus_random_pair_max']:+.3f}): a two-network check with those "
                     f"seeds would have failed")
        old = before.get((model, target, method))
        if old is not None:
            word += (f" [the model of \"{SECTION}\": {'passed' if old[0] == 'True' else 'failed'}"
                     f", `minus_random_ci_high` {old[1]}]")
        reading.append(f"- {model} {target} {method}: {word}.")
    minutes = cost["seconds"].sum() / 60
    return f"""Script: `benchmarks/posthoc_sanity.py` (CPU, {args.threads or 2} torch thread(s), {minutes:.0f} min of checks;
{args.clips} test clips, one 10-s window each, as in "Post-hoc sanity with power"; targets
{', '.join(args.targets)}). Reproduce with

    {command}

The workdir must hold the trained runs (here links `soundtracks_<model>` to the run directories
below; without a `model.pt` there the script trains new models, `posthoc_faithfulness._runs`).
Models: the Soundtracks runs in the workdir ({"; ".join(f"{m} test {r}" for m, r in models.items())};
run directories {", ".join(f"`{p}`" for p in _model_dirs(args, models))}),
trained with the same settings as "Post-hoc sanity with power" (preset small, seed 0, 20
epochs) but **not the models of that section** (they were deleted): same recipe, other
weights. Check: `sanity_check` with K = {k} independent full randomizations (seeds 1 .. {k});
the rows with `n_random` 2 are the two-network check of that section from the same networks'
seeds 1 and 2 (intervals over clips only). With K = {k} the intervals cover the draw of the
random networks as well as the clips: the margin's variance is a clip part plus a jackknife
over networks, with a t quantile at Welch-Satterthwaite degrees of freedom
(`midlevel.explain.sanity_verdict.two_way_interval`; `random_vs_random` over pairs of
distinct networks). Pass rule, similarity (Spearman of |map|), floors and 95 % level
unchanged. K = {k} was chosen from the toy measurement (`benchmarks/sanity_networks_toy.py`,
IG on three toy event models, 48 networks each, judged on disjoint seed sets of K; the
module docstring of `midlevel.explain.sanity` gives its figures).

{_fmt(table)}

`margin`: `trained_vs_random - random_vs_random` (floor (b); negative is what a pass needs);
`minus_random_ci_low` / `_high`: its 95 % interval; `minus_input_ci_high`: upper end for floor
(a); `network_min` / `network_max`: the margin of each network on its own (sim(T, R_k) minus
the mean of sim(R_k, R_j) over the other networks), lowest and highest of the K;
`pair_min` / `pair_max`: the two-network check's margin over all K(K-1)/2 seed pairs, lowest
and highest (what that section's check would have measured with each pair).

Reading (written by the script from the table):

{chr(10).join(reading)}

{_closing(v, k)}
"""


def _closing(v: pd.DataFrame, k: int) -> str:
    """The passes with K networks and how close their upper ends come to 0."""
    many = v[(v["n_random"] == k) & v["passed"].eq(True)]
    if many.empty:
        return f"No method passes with K = {k}."
    ends = ", ".join(f"{r.model} {r.target} {r.method} {r.minus_random_ci_high:+.3f}"
                     for r in many.itertuples())
    return (f"With the draw of the networks in the interval, {len(many)} of "
            f"{int((v['n_random'] == k).sum())} checks pass (upper ends of floor (b): {ends}). "
            f"These are verdicts on the models named above; the models of \"{SECTION}\" are "
            f"gone, so its passes are not re-judged on their own weights (the bracketed "
            f"verdicts are theirs, for comparison only).")


def _k_and_two(res) -> pd.DataFrame:
    """The K-network verdict of ``res`` and, from its seeds 1 and 2, the two-network one, both
    derived by the current rule from the similarities ``res`` holds."""
    return pd.concat([res.with_networks(list(res.seeds)).verdict,
                      res.with_networks([1, 2]).verdict], ignore_index=True)


def _test_r(run, targets) -> str:
    """``fear r 0.80, happy r 0.71``: the model's test-split accuracy on the explained targets."""
    m = run.metrics
    m = m[(m["split"] == "test") & (m["kind"] == "target") & m["name"].isin(targets)]
    return ", ".join(f"{row['name']} r {row['r']:.2f}" for _, row in m.iterrows())


def cascade_figure(cascade: pd.DataFrame, path: Path) -> None:
    """Trained-vs-randomized similarity (Spearman of |map|) after each cascade stage."""
    import matplotlib.pyplot as plt
    groups = list(cascade.groupby(["model", "target"], sort=False))
    methods = list(dict.fromkeys(cascade["method"]))
    colors = dict(zip(methods, plt.get_cmap("tab20")(np.linspace(0, 1, 20))[::max(
        1, 20 // max(len(methods), 1))]))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.9), squeeze=False,
                             sharey=True)
    lines = {}
    for ax, ((model, target), g) in zip(axes[0], groups):
        for method, m in g.groupby("method", sort=False):
            curve = m.groupby("n_stages", sort=True)["spearman_abs"].mean()
            lines[method], = ax.plot(curve.index, curve.values, marker=".", label=method,
                                     color=colors[method],
                                     ls="--" if method.startswith("lime") else "-")
        ax.set_title(f"{model}, {target}")
        ax.set_xlabel("stages randomized (top down)")
        ax.axhline(0, color="0.6", lw=0.8)
    axes[0][0].set_ylabel("similarity to trained map\n(Spearman of |map|)")
    fig.legend([lines[m] for m in methods], methods, loc="lower center", fontsize=7,
               ncol=min(len(methods), 7), frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _lime_note(cost: pd.DataFrame, args) -> str:
    """Which LIME checks were made, when not every variant on every model and target."""
    lime = cost[cost["method"].str.startswith("lime")]
    if lime.empty:
        return ""
    pairs = cost[["model", "target"]].drop_duplicates()
    variants = sorted(set(lime["method"]))
    done = lime.groupby(["model", "target"], sort=False)["method"].apply(list)
    if len(done) == len(pairs) and all(len(v) == len(variants) for v in done):
        return ""
    made = "; ".join(f"{m} {t}: {'all' if len(v) == len(variants) else ', '.join(v)}"
                     for (m, t), v in done.items())
    return (f" LIME checks made: {made} (each LIME map costs 2 x "
            f"{getattr(args, 'lime_samples', '?')} forward passes, and a check makes "
            f"{int(cost['stages'].max()) + 2} maps per clip: the trained one, one per cascade "
            f"stage, a second randomization; the others were not run for time).")


def summarize(verdicts: pd.DataFrame, cost: pd.DataFrame, args, models: dict) -> str:
    v = verdicts[verdicts["similarity"] == "spearman_abs"]
    cols = ["model", "target", "method", "n_clips", "n_defined", "trained_vs_random",
            "trained_vs_input", "random_vs_random", "minus_input_ci_high",
            "minus_random_ci_high", "passed"]
    table = v[[c for c in cols if c in v]]
    wide = table.pivot_table(index="method", columns=["model", "target"], values="passed",
                             aggfunc="first", sort=False)
    wide.columns = [f"{m} {t}" for m, t in wide.columns]
    checked = wide.notna().sum(axis=1)
    wide = wide.astype(object).where(wide.notna(), "-")
    wide["passes in"] = [f"{int((row == True).sum())} of {n}"  # noqa: E712
                         for (_, row), n in zip(wide.iterrows(), checked)]
    wide = wide.reset_index()
    per_clip = cost.assign(ms=cost["seconds"] / cost["clips"] * 1000).groupby(
        "method", sort=False)["ms"].median().round(0)
    lime_note = _lime_note(cost, args)
    minutes = cost["seconds"].sum() / 60  # the checks' own time (parts reloaded on a resume)
    return f"""Script: `benchmarks/posthoc_sanity.py` (CPU, 2 torch threads, {minutes:.0f} min of checks; {args.clips} test clips, one
10-s window each; targets {', '.join(args.targets)}; the models of `posthoc_faithfulness.py`,
same workdir; models as trained there: {"; ".join(f"{k} test {v}" for k, v in models.items())}).
Supersedes table 3 of "Post-hoc explanations", which ran the same check on 3 clips of one
target (its models were trained on one torch thread, these on two: same settings and seed,
not the same weights). Check: `midlevel.explain.sanity.sanity_check`, cascading randomization
from the top stage down (BatchNorm included, its statistics re-estimated through the randomized
network), two independent full randomizations (seeds 1 and 2); similarity = Spearman of
|map| per clip. Pass rule (fixed in the module before measuring): the upper ends of the 95 %
bootstrap intervals (over clips) of `trained_vs_random - trained_vs_input` and of
`trained_vs_random - random_vs_random` are both below 0.{lime_note}

{_fmt(table)}

Verdicts at a glance:

{_fmt(wide)}

`n_defined`: clips whose similarities are defined (a constant map, e.g. a Grad-CAM map with
no positive evidence, has none; those clips are left out of the bootstrap);
`trained_vs_random`: the trained map against the two fully randomized ones (mean);
`trained_vs_input`: floor (a), the trained map against `|x - reference|` (no model);
`random_vs_random`: floor (b), the two randomized maps against each other;
`minus_input_ci_high` / `minus_random_ci_high`: upper 95 % bounds of the two differences.
Cascade curves (mean similarity to the trained map after each stage):
`benchmarks/figures/sanity_cascade.png`; per stage and clip in `sanity_cascade.csv` in the
workdir. Cost of the whole check per clip (all stages, both randomizations), median over
models and targets: {", ".join(f"{m} {ms:.0f} ms" for m, ms in per_clip.items())}.
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p, lime_samples=64)
    p.add_argument("--methods", nargs="+", default=None, help="default: every registered one")
    p.add_argument("--report-only", action="store_true",
                   help="report the checks already in --workdir; compute nothing new")
    p.add_argument("--lime-targets", nargs="+", default=None,
                   help="targets the LIME variants are checked on (default: all of --targets)")
    p.add_argument("--models", nargs="+", default=None, choices=["blackbox", "joint"],
                   help="default: both")
    p.add_argument("--n-random", type=int, default=2,
                   help="full randomizations (seeds 1 .. K); K > 2 writes the section "
                        f"'{NETWORKS_SECTION}' with the two-network check beside it")
    p.add_argument("--no-cascade", action="store_true",
                   help="only the full randomizations, not the cascade's stages")
    args = p.parse_args(argv)
    if args.n_random < 2:
        p.error("--n-random needs at least 2")
    if args.quick:
        args.clips, args.epochs, args.n_steps, args.n_samples, args.lime_samples = 3, 1, 4, 4, 16
        args.no_write = True
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    if not (Path(args.soundtracks) / "mean_ratings_set1.csv").is_file():
        print(f"Soundtracks not found at {args.soundtracks}: nothing to do")
        return 0
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="sanity_"))
    work.mkdir(parents=True, exist_ok=True)
    verdicts, cascades, cost, models = run_all(args, work, print)
    if args.n_random > 2:
        verdicts.to_csv(work / f"sanity_verdicts_k{args.n_random}.csv", index=False)
        command = "python benchmarks/posthoc_sanity.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
            if a not in ("--no-write", "--report-only"))
        text = summarize_networks(verdicts, cost, args, models, command)
        print(text)
        if not args.no_write:
            replace_section(REPO / "benchmarks" / "RESULTS.md", NETWORKS_SECTION, text)
            print(f"written: benchmarks/RESULTS.md (section '{NETWORKS_SECTION}')")
        return 0
    verdicts.to_csv(work / "sanity_verdicts.csv", index=False)
    cascades.to_csv(work / "sanity_cascade.csv", index=False)
    text = summarize(verdicts, cost, args, models)
    print(text)
    if not args.no_write:
        cascade_figure(cascades, REPO / "benchmarks" / "figures" / "sanity_cascade.png")
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, text)
        print(f"written: benchmarks/RESULTS.md (section '{SECTION}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
