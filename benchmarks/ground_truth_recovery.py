"""Do the concept explanations recover the truth of the synthetic concept world?

Measured over several seeds (``midlevel.synth``: concepts drawn, ratings and targets from a
known linear map):

1. Statistics path (no audio, no CNN): statsmodels OLS of the targets on concept values --
   the noiseless concepts and the noisy 1-10 ratings (= what an independent head is fitted
   on) -- against the true weights per rating point: sign agreement on the non-zero weights,
   Pearson r of recovered and true standardized weights, coverage of the true weights by the
   95 % intervals (with Holm's correction: Bonferroni's, 1 - 0.05/56), and the share of zero
   true weights called significant (null false-positive rate; nominal 5 %, also with Holm's
   correction).
The model path (a CNN on synthesized audio) is `benchmarks/truthful_concepts.py`.

Writes the section "Concept explanations" of benchmarks/RESULTS.md (other sections are kept)
and figures under benchmarks/figures/.

    python benchmarks/ground_truth_recovery.py            # full (a few minutes)
    python benchmarks/ground_truth_recovery.py --quick    # a smoke run
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MPLBACKEND", "Agg")

from midlevel.explain.statistics import fit_ols  # noqa: E402
from midlevel.explain.truth import (  # noqa: E402
    compare_to_truth, synthetic_design,
)
from midlevel.report.markdown import markdown_table  # noqa: E402

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


def publish(text: str, heading: str, *, write: bool) -> None:
    """Print a benchmark's section and, with ``write``, replace the ``## heading`` section of
    benchmarks/RESULTS.md with it."""
    print(text)
    if write:
        replace_section(REPO / "benchmarks" / "RESULTS.md", heading, text)
        print(f"written: benchmarks/RESULTS.md (section '{heading}')")


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


def _fmt(frame: pd.DataFrame) -> str:
    """A Markdown table (the package's renderer: floats with 3 decimals)."""
    return markdown_table(frame, max_rows=len(frame) + 1, literal=False).rstrip("\n")


def script_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of a benchmark script that writes a RESULTS.md section: its
    docstring's first paragraph, ``--quick`` (tiny settings) and ``--no-write``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    return parser


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the statistics path")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = 3
    t_start = time.time()
    stats = statistics_path(range(args.seeds), [100, 200, 400] if not args.quick else [200])
    stat_table = _summary(stats, ["design", "n_clips", "correction"])
    print(_fmt(stat_table), flush=True)
    figures(stats)
    elapsed = time.time() - t_start
    body = f"""Script: `benchmarks/ground_truth_recovery.py` ({'--quick, ' if args.quick else ''}{elapsed / 60:.0f} min on this machine, CPU).
Synthetic concept world (`midlevel.synth`, default weight map: 44 non-zero and 12 zero
weights over 7 concepts x 8 targets; rating noise 0.5, target noise 0.3). Truth = weights per
rating point. Standardized = weight x sd(concept) / sd(target) on the fit's data, for the truth
and the estimate alike. Null FPR = share of the zero true weights whose (adjusted) p < 0.05.

### Statistics path: statsmodels OLS on concept values ({args.seeds} seeds each)

{_fmt(stat_table)}

"ratings" are the noisy 1-10 ratings an independent head is fitted on (and what the
coefficient table's "what the data show" columns are estimated from): the coverage is
slightly below 95 % because noisy regressors attenuate the weights (errors in variables, about
{1 - (9 ** 2 / 12) / (9 ** 2 / 12 + 0.25):.1%} here), and more so for correlated concepts.
With Holm's correction the intervals are Bonferroni's (level 1 - 0.05/56, matching the
correction), so each covers its true weight about 99.9 % of the time.
Figure: `benchmarks/figures/concepts_recovery.png` (recovered vs true standardized weights).

The model path (CNNs trained on synthesized audio: calibration, both coefficient answers,
flags, leakage, change localization) is measured by `benchmarks/truthful_concepts.py`: see the
section "Truthful concept explanations".
"""
    if not args.no_write:
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, body)
        print(f"written: {REPO / 'benchmarks' / 'RESULTS.md'} (section '{SECTION}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
