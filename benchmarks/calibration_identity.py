"""Would calibration lines shrunk toward the identity pass more often? Checked on fresh maps.

The truthful-concepts benchmark misses its calibration band mostly on the weakest learned
concepts (rhythm complexity, rhythm stability), whose 36-clip validation lines are noisy. A
candidate cure: shrink each applied line toward the identity according to its own uncertainty
(positive-part James-Stein), ``w = max(0, 1 - se^2 / (b - 1)^2)``, ``b' = 1 + w (b - 1)``,
through the validation clips' means (the level correction is kept). ``b`` and ``se`` are the
applied slope and its standard error (times the bootstrap shrinkage where there is one).

Judged on three synthetic maps that no development touched (seeds 404, 505, 606; 240 clips of
10 s, small preset, independent and joint, the truthful-concepts settings), each concept with
test r >= 0.5 passing when R^2 >= r^2 - 0.1 and the test slope lies in [0.8, 1.25], for three
versions of the same models' predictions: the line as training applied it, no line at all
(the model's own predictions) and the identity-shrunk line. With ``--seen`` the runs of
``truthful_concepts.py`` (maps 101, 202, 303 and Soundtracks, whose test splits were used to
diagnose the misses) are scored too, for contrast only.

    python benchmarks/calibration_identity.py --workdir runs/identity [--seen runs/truthful]

Runs already in ``--workdir`` are loaded, not retrained. Writes the section "Calibration
lines toward the identity: fresh maps" of benchmarks/RESULTS.md.
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
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from ground_truth_recovery import _fmt, replace_section  # noqa: E402
from truthful_concepts import _load_or_train, _passes, weight_map  # noqa: E402

from midlevel.training.metrics import regression_metrics  # noqa: E402

SECTION = "Calibration lines toward the identity: fresh maps"
FRESH_SEEDS = (404, 505, 606)
CONFIG = {"preset": "small", "epochs": 40, "patience": 12, "crop_seconds": 3.0,
          "eval_hop_seconds": 1.5}
VERSIONS = ("applied", "no line", "identity-shrunk")


def identity_weight(slope: float, se: float) -> float:
    """Positive-part James-Stein weight of a slope's departure from 1: 0 where the departure
    is within one standard error, near 1 where it is many."""
    return 1.0 if slope == 1 else max(0.0, 1.0 - se ** 2 / (slope - 1) ** 2)


def score_run(run, cache: Path, label: str, spec=None) -> list[dict]:
    """Per applied rating line: the test slope and pass of the three versions."""
    lines = run.info.get("concept_calibration") or {}
    scales = run.info["scales"]
    preds = {s: run.predictions(s, spec=spec, cache_dir=cache) for s in ("validation", "test")}
    rows = []
    for k, name in enumerate(run.concept_names):
        ln = lines.get(name) or {}
        if not ln.get("applied") or ln.get("kind") == "platt":
            continue
        mu, sd = scales["concept_mean"][k], scales["concept_std"][k]
        a, b = ln["intercept"], ln["slope"]
        raw = {s: ((p[name] - mu) / sd - a) / b for s, p in preds.items()}  # line undone
        true_val = (preds["validation"][f"true:{name}"] - mu) / sd
        ok = np.isfinite(raw["validation"]) & np.isfinite(true_val)
        m_p, m_t = raw["validation"][ok].mean(), true_val[ok].mean()
        se = ln["slope_se"] * ln.get("shrinkage", 1.0)
        w = identity_weight(b, se)
        versions = {"applied": preds["test"][name], "no line": mu + sd * raw["test"],
                    "identity-shrunk": mu + sd * (m_t + (1 + w * (b - 1))
                                                  * (raw["test"] - m_p))}
        truth = preds["test"][f"true:{name}"].to_numpy(np.float64)
        row = {"run": label, "concept": name, "slope applied": b, "se": se, "w": w}
        for v, p in versions.items():
            m = regression_metrics(truth, p.to_numpy(np.float64))
            row[f"{v}: test r"] = m["r"]
            row[f"{v}: test slope"] = m["cal_slope"]
            checked, ok = _passes(m["r"], m["r2"], m["cal_slope"])
            row[f"{v}: passes"] = bool(ok) if checked else None
        rows.append(row)
    return rows


def fresh(work: Path, log) -> list[dict]:
    from midlevel.synth import synthesize
    rows = []
    for k, seed in enumerate(FRESH_SEEDS):
        t0 = time.time()
        data = work / f"world{k}"
        spec = data / "spec.yaml"
        if not spec.is_file():
            synthesize(data, n_clips=240, seed=seed, duration=10.0, weights=weight_map(seed),
                       change_fraction=0.5, n_jobs=2, progress=False)
        for mode in ("independent", "joint"):
            run = _load_or_train(spec, work / f"world{k}_{mode}", mode,
                                 {**CONFIG, "seed": seed}, work / "cache")
            rows += score_run(run, work / "cache", f"map {seed} {mode}")
        log(f"fresh map {seed}: {time.time() - t0:.0f} s")
    return rows


def seen(work: Path, soundtracks: Path) -> list[dict]:
    from midlevel.data.spec import load_spec
    from midlevel.training import load_run
    rows = []
    for d in sorted(work.glob("world*_after")) + sorted(work.glob("soundtracks_joint_*_after")):
        spec = None
        if d.name.startswith("soundtracks"):
            spec = load_spec(REPO / "data_specs" / "soundtracks_dimensional.yaml",
                             root=soundtracks)
        rows += score_run(load_run(d), work / "cache", d.name, spec=spec)
    return rows


def summary(rows: list[dict], data: str) -> dict:
    df = pd.DataFrame(rows)
    out = {"data": data, "lines": len(df)}
    for v in VERSIONS:
        checked = df[f"{v}: passes"].dropna()
        out[f"{v}: pass"] = f"{int(checked.sum())} of {len(checked)}"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="keep data and runs here (resumable)")
    p.add_argument("--seen", help="a truthful_concepts.py workdir to score for contrast")
    p.add_argument("--soundtracks", default=str(REPO.parent / "shared" / "datasets"
                                               / "soundtracks"))
    p.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rows = fresh(work, lambda s: print(s, flush=True))
    sums = [summary(rows, "fresh maps (404, 505, 606)")]
    seen_rows = []
    if args.seen:
        seen_rows = seen(Path(args.seen), Path(args.soundtracks))
        synth = [r for r in seen_rows if r["run"].startswith("world")]
        sums += [summary(synth, "seen maps (101, 202, 303), for contrast"),
                 summary([r for r in seen_rows if r not in synth],
                         "seen Soundtracks, for contrast")]
    table = pd.DataFrame(sums)
    print(table.to_string())
    if args.no_write:
        return 0
    cols = ["run", "concept", "slope applied", "se", "w"] + [
        f"{v}: {m}" for v in VERSIONS for m in ("test slope", "passes")]
    body = [f"`python benchmarks/calibration_identity.py --workdir ... --seen ...` "
            f"({time.strftime('%Y-%m-%d %H:%M')}, {(time.time() - t0) / 60:.0f} min on 2 CPU "
            "cores; runs already in the workdir are loaded). "
            + __doc__.split("\n\n")[1].replace("\n", " "), "",
            "Passes (test r >= 0.5: R^2 >= r^2 - 0.1 and slope in [0.8, 1.25]):", "",
            _fmt(table), "", "Every line of the fresh maps:", "",
            _fmt(pd.DataFrame(rows)[cols]), ""]
    replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
