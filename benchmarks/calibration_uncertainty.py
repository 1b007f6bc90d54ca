"""How sure are the calibration misses? Bootstrap intervals of the test figures that missed.

The truthful-concepts benchmark checks, per concept with test r >= 0.5, test R^2 >= r^2 - 0.1
and a calibration slope (rating on prediction) in [0.8, 1.25], on test splits of 36-45 clips.
This script reloads that benchmark's runs (``--workdir`` of ``truthful_concepts.py``) and gives
each (run, concept) its test slope and R^2 gap with 95 % percentile-bootstrap intervals over test
clips, so a miss can be read against the sampling noise of a 36-clip test split.

It also measures the floor of the target itself: how often a *perfectly calibrated* predictor
would pass. For each (run, concept), ratings are simulated as ``y* = p + e`` on the run's own
test predictions ``p``, with Gaussian ``e`` whose variance gives the observed correlation
(slope 1, intercept 0 in the population), and the target is scored on each draw. Runs whose
concept predictions are identical (a sequential run reuses its independent run's concept
model) share their draws, as they share their test ratings. Reported: each pair's pass
probability, the expected number of passes, its 90 % range and the probability that every
pair passes. Draws are independent between pairs; the real pairs are not (the runs of one
world share their test clips and ratings), so the mean is right but the range and the two
probabilities understate the spread.

    python benchmarks/calibration_uncertainty.py --workdir /path/to/truthful   # a minute
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ground_truth_recovery import _fmt, replace_section  # noqa: E402

from midlevel.run import load_run  # noqa: E402
from midlevel.training.metrics import calibration_line  # noqa: E402

SECTION = "Calibration misses against the noise of the test split"


def figures(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """(slope, R^2, R^2 - (r^2 - 0.1)) of ratings ``y`` on predictions ``p``."""
    slope, _ = calibration_line(y, p)
    r = np.corrcoef(y, p)[0, 1]
    r2 = 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)
    return slope, r2, r2 - (r * r - 0.1)


def bootstrap(y, p, n_boot: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    return np.array([figures(y[i], p[i]) for i in idx])


def calibrated_floor(pairs: list[tuple[np.ndarray, float]], n_sim: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pass probability of a perfectly calibrated predictor, per pair, and the number of
    passes per simulation. ``pairs``: ``(p, r)`` per (run, concept), the test predictions
    ``(n,)`` and the observed correlation; pairs with identical ``p`` share their draws.
    Returns ``(per_pair (n_pairs,), passes (n_sim,))``."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[bytes, float], list[int]] = {}
    for i, (p, r) in enumerate(pairs):
        groups.setdefault((np.round(p, 6).tobytes(), round(float(r), 6)), []).append(i)
    ok = np.zeros((n_sim, len(pairs)), dtype=bool)
    for members in groups.values():
        p, r = pairs[members[0]]
        sd = p.std() * np.sqrt(max(1 - r * r, 0.0)) / max(r, 1e-9)
        y = p + rng.normal(0, sd, size=(n_sim, len(p)))
        for k in range(n_sim):
            slope, _, gap = figures(y[k], p)
            # a draw whose correlation falls below 0.5 is not checked by the target: no miss
            checked = np.corrcoef(y[k], p)[0, 1] >= 0.5
            ok[k, members] = not checked or (0.8 <= slope <= 1.25 and gap >= 0)
    return ok.mean(0), ok.sum(1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, type=Path)
    ap.add_argument("--soundtracks", default=str(REPO.parent / "shared" / "datasets"
                                                / "soundtracks"))
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--n-sim", type=int, default=2000,
                    help="simulated rating sets per pair for the calibrated floor")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    rows, pairs = [], []
    for out in sorted(args.workdir.glob("*_after")):
        if not (out / "model.pt").is_file():
            continue
        run = load_run(out)
        root = args.soundtracks if out.name.startswith("soundtracks") else None
        pred = run.predictions("test", root=root, cache_dir=args.workdir / "cache")
        for name in run.concept_names:
            if f"true:{name}" not in pred:
                continue
            ok = pred[f"true:{name}"].notna().to_numpy()
            y = pred[f"true:{name}"].to_numpy(float)[ok]
            p = pred[name].to_numpy(float)[ok]
            r = np.corrcoef(y, p)[0, 1]
            if not r >= 0.5:  # NaN (a constant column) is not checked either
                continue
            slope, r2, gap = figures(y, p)
            b = bootstrap(y, p, args.n_boot)
            lo, hi = np.percentile(b, [2.5, 97.5], axis=0)
            passed = 0.8 <= slope <= 1.25 and gap >= 0
            pairs.append((p, r))
            rows.append({"run": out.name.removesuffix("_after"), "concept": name, "n": len(y),
                         "r": r, "slope": slope, "slope_ci": f"[{lo[0]:.2f}, {hi[0]:.2f}]",
                         "r2_gap": gap, "r2_gap_ci": f"[{lo[2]:.2f}, {hi[2]:.2f}]",
                         "passed": passed,
                         "consistent_with_target": bool(lo[0] <= 1.0 <= hi[0] and hi[2] >= 0)})
    table = pd.DataFrame(rows)
    per_pair, passes = calibrated_floor(pairs, args.n_sim)
    table["p_pass_if_calibrated"] = per_pair
    misses = table[~table["passed"]]
    lo, hi = np.percentile(passes, [5, 95])
    by_run = table.assign(world=table["run"].str.replace(r"_(independent|sequential|joint).*$",
                                                         "", regex=True)).groupby(
        "world", sort=False).agg(pairs=("passed", "size"), passed=("passed", "sum"),
                                 expected_if_calibrated=("p_pass_if_calibrated", "sum")
                                 ).reset_index()
    text = (f"Script: `benchmarks/calibration_uncertainty.py` (the truthful-concepts runs reloaded; "
            f"{args.n_boot} bootstrap resamples of the test clips). `r2_gap` = R^2 - (r^2 - 0.1), "
            f"the target is >= 0; `consistent_with_target`: the slope's interval holds 1 and the "
            f"gap's interval reaches 0.\n\nThe misses:\n\n{_fmt(misses)}\n\n"
            f"Every concept with test r >= 0.5: {int(table['passed'].sum())} of {len(table)} pass; "
            f"mean width of the slope interval {np.mean([float(s.split(',')[1][:-1]) - float(s.split(',')[0][1:]) for s in table['slope_ci']]):.2f}; "
            f"{int(table['consistent_with_target'].sum())} of {len(table)} are consistent with a "
            f"calibrated model.\n\n"
            f"**The target's floor.** A perfectly calibrated predictor with these test "
            f"predictions and correlations ({args.n_sim} simulated rating sets; "
            f"`p_pass_if_calibrated` per pair) would pass {passes.mean():.1f} of {len(table)} on "
            f"average (90 % of draws: {lo:.0f}-{hi:.0f}); it would pass all {len(table)} in "
            f"{(passes == len(table)).mean():.1%} of draws. Observed: "
            f"{int(table['passed'].sum())}; a calibrated predictor passes that few or fewer in "
            f"{(passes <= table['passed'].sum()).mean():.1%} of draws. The pairs are simulated "
            f"independently, while the runs of one world share their test clips and ratings: the "
            f"mean holds, the range and both shares understate the spread.\n\nBy world:\n\n{_fmt(by_run)}\n\n"
            f"Every pair:\n\n{_fmt(table)}\n")
    print(text)
    if not args.no_write:
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
