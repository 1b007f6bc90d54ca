"""How often the coefficient summary's caveats speak when they should not, and when they should.

The summary of `midlevel coefficients` adds lines where the fit's own clips suggest its
weights are less than effects (:mod:`midlevel.explain.caveats`). Two of them are tests of the
data, and a line that fires by chance misleads as much as a missing one. On simulated
ratings whose truth is known (the package's synthetic concept world, no audio, no CNN):

- the linearity check ("not linear": the concepts' squares add to a target's fit, HC3 Wald
  test, Holm over the targets): how often it fires on worlds that are linear (its size,
  nominal 0.05 for the table), with normal and with skewed, uneven noise; and how often on a
  world where one target has a U-shape in one concept (its power), at the clip counts where
  it runs (20 clips per parameter: 300 for 7 concepts) and above;
- the VIF line (concepts correlated above VIF 2.5): how often it names a concept on the
  synthetic world's correlated concepts, whose population VIF is at most 1.51 (chance lines),
  below and above its gate of 10 clips per parameter (80 clips).

    python benchmarks/caveats_power.py              # about 2 minutes on one core
    python benchmarks/caveats_power.py --quick      # smoke run
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ground_truth_recovery import _fmt, replace_section, script_parser  # noqa: E402

from midlevel.explain import caveats  # noqa: E402
from midlevel.explain.truth import synthetic_design  # noqa: E402

SECTION = "Coefficient caveats: how often they fire by chance, and on the effect they name"


def _noisy(Y: pd.DataFrame, rng, kind: str, X: pd.DataFrame) -> pd.DataFrame:
    """``Y`` with extra noise: "normal" none; "skewed": chi-square(2) noise whose sd grows with
    the first concept (heteroscedastic and skewed, where HC3's t intervals run over)."""
    if kind == "normal":
        return Y
    scale = 0.2 + 0.1 * (X.iloc[:, 0].to_numpy() - X.iloc[:, 0].min())
    noise = (rng.chisquare(2, Y.shape) - 2) / 2 * scale[:, None]
    return Y + noise


def linearity_rates(n_clips: list[int], reps: int, seed: int = 14_100) -> pd.DataFrame:
    """Share of tables whose summary says "not linear", per world and clip count."""
    rows = []
    rng = np.random.default_rng(seed)
    for n in n_clips:
        for world in ("linear, normal noise", "linear, skewed uneven noise",
                      "U-shape in one concept"):
            fired = []
            for r in range(reps):
                # exact ratings ("true"): with noisy ones the relation to the targets is
                # itself not linear where the concepts are not normal (errors in variables)
                X, Y, _ = synthetic_design(n, seed=seed + 1000 * n + r, correlated=True,
                                           concepts="true")
                if world.startswith("linear, skewed"):
                    Y = _noisy(Y, rng, "skewed", X)
                if world.startswith("U-shape"):
                    c = X.iloc[:, 1] - X.iloc[:, 1].mean()
                    Y = Y.assign(**{Y.columns[0]: Y.iloc[:, 0] + 0.05 * c ** 2})
                lines = caveats.nonlinearity(X, Y, list(Y.columns))
                fired.append(any(line.startswith("not linear") for line in lines))
            rows.append({"world": world, "clips": str(n), "tables": str(reps),
                         "share saying not linear": float(np.mean(fired))})
    return pd.DataFrame(rows)


def vif_rates(n_clips: list[int], reps: int, seed: int = 14_200) -> pd.DataFrame:
    """Share of tables whose summary has a VIF line, on the synthetic world's correlated
    concepts (population VIF at most 1.51)."""
    rows = []
    for n in n_clips:
        hits = [bool(caveats.correlated_concepts(
            synthetic_design(n, seed=seed + 1000 * n + r, correlated=True)[0]))
            for r in range(reps)]
        rows.append({"clips": str(n), "tables": str(reps),
                     "share with a VIF line": float(np.mean(hits))})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = script_parser(__doc__)
    parser.add_argument("--reps", type=int, default=200, help="tables per setting")
    args = parser.parse_args(argv)
    reps = 10 if args.quick else args.reps
    t0 = time.time()
    linear = linearity_rates([300, 600] if not args.quick else [300], reps)
    vif = vif_rates([40, 60, 80, 160], reps)
    population = caveats.vif(synthetic_design(100_000, seed=1, correlated=True)[0])
    body = "\n".join([
        f"`python benchmarks/caveats_power.py` ({reps} tables a setting, "
        f"{time.time() - t0:.0f} s): the synthetic concept world (7 concepts, 8 targets, "
        f"correlated concepts; exact ratings for the linearity check, noisy ones for the VIF "
        f"line), no audio and no CNN. The U-shape adds 0.05 x (concept - mean)^2 to one "
        f"target.",
        "",
        "The linearity check (\"not linear\"; nominal 0.05 for the table, Holm over 8 "
        "targets; it runs from 300 clips here):",
        "",
        _fmt(linear),
        "",
        f"The VIF line (above {caveats.VIF_WARN:g}; gate: 10 clips per parameter, 80 here) on "
        f"concepts whose population VIF is at most {population.max():.2f}:",
        "",
        _fmt(vif),
        "",
        "Reading: the linearity check's size depends on the noise: about nominal or a little "
        "over with normal noise, under it with this skewed noise, where the second re-audit "
        "of audit 14 measured 0.06-0.075 (normal) and 0.09-0.11 (its skewed, uneven noise) "
        "in its own worlds; a line is a flag to look at the relation, not a verdict. Below "
        "its gate (40-79 clips) the VIF line is not judged; at and above it, chance lines "
        "are rare on this world.",
    ])
    print(body)
    if not args.no_write and not args.quick:
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
