"""Re-measure some post-hoc methods on real Soundtracks, beside peers on the same fresh models.

The section "Post-hoc explanations" was measured in one long run (2026-12-02, about 2.5 h on
two cores) whose models are gone. When a method's code changes after such a run (LRP over
``predict``'s windows, audit 15a: every window was given ``f / n`` of the clip's mean, so a
window pushing the output down got positive relevance), its rows there are stale and the
others are not. This script retrains the section's two models the way
``posthoc_faithfulness.py`` does (its ``_runs``: preset small, seed 0; the models are not
bit-identical to that run's, whose feature code has changed since), runs the harness,
listen-back and cost of ``--methods`` on the same test clips and targets, and writes a
section with the new rows beside the old ones read from RESULTS.md. Peers whose code did not
change (``deeplift``, ``integrated_gradients`` by default) show how far the fresh models alone
move a row; only a method's move beyond its peers' is the code change's.

    python benchmarks/posthoc_remeasure.py --workdir runs/remeasure            # lrp + peers
    python benchmarks/posthoc_remeasure.py --methods lrp gradcam --workdir ...
    python benchmarks/posthoc_remeasure.py --quick                             # smoke run

Sanity checks are not re-run here: they explain each clip's first window alone
(``sanity_rows``), where a per-window change does not act. Runs and finished (model, target,
method) parts already in ``--workdir`` are loaded, not recomputed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from ground_truth_recovery import _fmt, publish  # noqa: E402
from posthoc_faithfulness import (  # noqa: E402
    SECTION as SOURCE_SECTION, common_arguments, cost_table, harness_table, listen_table,
    soundtracks,
)

from midlevel.explain.attribution.registry import METHODS  # noqa: E402

SECTION = "Post-hoc explanations on Soundtracks, re-measured"
KEYS = ("model", "target", "method")


def old_rows(path: Path, columns: list[str], methods) -> pd.DataFrame:
    """The rows of ``methods`` from the first Markdown table of section :data:`SOURCE_SECTION`
    in ``path`` whose header is exactly ``columns`` (empty if there is none)."""
    text = path.read_text() if path.is_file() else ""
    start = text.find(f"## {SOURCE_SECTION}\n")
    if start < 0:
        return pd.DataFrame(columns=columns)
    stop = text.find("\n## ", start + 1)
    header = "| " + " | ".join(columns) + " |"
    lines = text[start:stop if stop > 0 else None].splitlines()
    if header not in lines:
        return pd.DataFrame(columns=columns)
    rows = []
    for line in lines[lines.index(header) + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(dict(zip(columns, cells)))
    out = pd.DataFrame(rows, columns=columns)
    return out[out["method"].isin(methods)].reset_index(drop=True)


def beside(new: pd.DataFrame, old: pd.DataFrame, values: list[str]) -> pd.DataFrame:
    """``new`` with each of ``values`` followed by the old row's value (``<value>_before``),
    matched on model, target and method; ``-`` where the old table had no such row."""
    keys = [k for k in KEYS if k in new and k in old]
    old = old[keys + [v for v in values if v in old]].rename(
        columns={v: f"{v}_before" for v in values})
    merged = new.merge(old, on=keys, how="left")
    order = keys + [c for v in values for c in (v, f"{v}_before") if c in merged]
    merged = merged[order + [c for c in merged if c not in order]].astype(object)
    return merged.where(merged.notna(), "-")


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells of a table read back from Markdown as numbers where they are numbers."""
    out = frame.copy()
    for col in out:
        if col not in KEYS:
            try:
                out[col] = pd.to_numeric(out[col])
            except (ValueError, TypeError):
                pass
    return out


def summary(st: dict, methods, results: Path, header: str) -> str:
    """The section's text: harness, listen-back and cost, new beside old."""
    harness = harness_table(pd.concat(st["scores"], ignore_index=True))
    old = numeric(old_rows(results, list(harness.columns), methods))
    parts = [header, "### Harness (deletion), new beside `_before`", "",
             _fmt(beside(harness, old, ["between", "gain", "gain_ci_low", "gain_ci_high",
                                        "morf_better"]).drop(columns=["between_random"])),
             "", "`between`, `gain` (with its 95 % bootstrap interval over clips), "
             "`morf_better` and the verdict as in section \"" + SOURCE_SECTION + "\"; "
             "`_before`: that section's row, made on the models of its run.", ""]
    if st["listen"]:
        lt, n_below = listen_table(pd.concat(st["listen"], ignore_index=True))
        old_lt = numeric(old_rows(results, list(lt.columns), methods))
        parts += ["### Listen-back, new beside `_before` (median share of f(x) - f(ref))", "",
                  _fmt(beside(lt, old_lt, ["toward", "away", "complement"])), "",
                  "Share of clips below the reference: " + ", ".join(
                      f"{m} {t} {v:.2f}" for (m, t), v in n_below.items()) + ".", ""]
    cost = cost_table(st["cost"])
    old_cost = numeric(old_rows(results, list(cost.columns), methods))
    parts += ["### Cost per clip (whole clips through predict's windows)", "",
              _fmt(beside(cost, old_cost, ["median_ms_per_clip"])), ""]
    return "\n".join(parts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p, lime_samples=64)  # the source section's run: LIME 64 samples
    p.add_argument("--methods", nargs="+", default=["lrp", "deeplift", "integrated_gradients"],
                   choices=list(METHODS), help="methods to re-measure (default: lrp and two "
                   "peers whose code did not change)")
    args = p.parse_args(argv)
    args.sanity_clips = 0
    if args.quick:
        args.clips, args.epochs, args.n_steps, args.n_samples, args.lime_samples = 2, 1, 4, 4, 16
        args.no_write = True
    if not (Path(args.soundtracks) / "mean_ratings_set1.csv").is_file():
        print(f"Soundtracks not found at {args.soundtracks}: nothing to re-measure")
        return 0
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="remeasure_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    st = soundtracks(args, work, print, methods=tuple(args.methods))
    for name in ("scores", "listen"):
        if st[name]:
            pd.concat(st[name], ignore_index=True).to_csv(work / f"{name}.csv", index=False)
    pd.DataFrame(st["cost"]).to_csv(work / "cost.csv", index=False)
    results = REPO / "benchmarks" / "RESULTS.md"
    header = (f"Script: `benchmarks/posthoc_remeasure.py --methods {' '.join(args.methods)}` "
              f"({time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - t0) / 60:.0f} min, "
              f"{torch.get_num_threads()} torch threads; targets {', '.join(args.targets)}, "
              f"{args.clips} test clips, {args.epochs} epochs). Fresh models trained as in "
              f"section \"{SOURCE_SECTION}\" (preset small, seed 0), not that run's: the peers' "
              f"rows show how far the models alone move a row.\n")
    text = summary(st, args.methods, results, header)
    publish(text, SECTION, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
