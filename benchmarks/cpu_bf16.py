"""Is bfloat16 training on the CPU (``cpu_bf16``, ``midlevel train --bf16``) as good as float32,
and how much faster?

The option runs the training steps under bfloat16 autocast on a CPU with bf16 units (AMX /
AVX512-BF16); validation, BatchNorm re-estimation, calibration and prediction stay float32.
Judged on three synthetic worlds no development has touched (weight maps of seeds 707, 808,
909, written as ``truthful_concepts.weight_map``; 240 clips of 10 s with mid-clip changes, as
in that benchmark), joint mode, small preset, the truthful benchmark's settings. Per world
three runs: float32 with training seed s, bfloat16 with seed s, and float32 with seed s + 1
(the reference: how far two float32 runs differ by seed alone).

Criteria, fixed before the run (see RESULTS.md, "bfloat16 training on the CPU"):
(a) the mean test R^2 difference, bfloat16 minus float32 (same seed), over the concepts and
    targets whose float32 test r is >= 0.5, all worlds together: >= -0.02;
(b) concepts passing issue 9's calibration rule (r >= 0.5: R^2 >= r^2 - 0.1, slope in
    [0.8, 1.25]): bfloat16 passes at least as many as float32 minus one.
Speed: median seconds per epoch from each run's history (small preset, these runs), and the
``paper`` preset trained for two epochs in each precision on world 0 with 10-s crops.

    python benchmarks/cpu_bf16.py --workdir runs/cpu_bf16

Runs already in ``--workdir`` are loaded, not retrained. Writes the section's result part
into benchmarks/RESULTS.md and ``cpu_bf16.json`` in the workdir.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from truthful_concepts import _passes, weight_map  # noqa: E402

WORLD_SEEDS = (707, 808, 909)
RESULT_HEADING = "### The result"
SECTION = "bfloat16 training on the CPU"


def train_or_load(spec, out: Path, config: dict, cache: Path):
    """The run in ``out`` if it finished, else a fresh one (joint mode)."""
    from midlevel.training import load_run, train
    if (out / "model.pt").is_file():
        return load_run(out)
    return train(spec, out, mode="joint", config=config, cache_dir=cache, overwrite=True,
                 progress=False)


def test_rows(run, label: dict) -> list[dict]:
    """Per concept and target on the test split: r, R^2, calibration slope, the rule's pass."""
    m = run.metrics
    rows = m[(m["split"] == "test") & (m["name"] != "mean")
             & m["kind"].isin(["concept", "target"])]
    out = []
    for _, r in rows.iterrows():
        checked, ok = _passes(r["r"], r["r2"], r["cal_slope"])
        out.append({**label, "kind": r["kind"], "name": r["name"], "r": r["r"], "r2": r["r2"],
                    "slope": r["cal_slope"], "checked": checked, "passes": ok})
    return out


def epoch_seconds(run) -> float:
    """Median seconds per epoch (training steps, BatchNorm re-estimation and validation)."""
    history = pd.read_csv(Path(run.path) / "history.csv")
    return float(history["seconds"].median())


def paired(rows: pd.DataFrame, other: str) -> pd.DataFrame:
    """``other`` run against float32 seed s, per world and column, where float32 r >= 0.5."""
    base = rows[rows["run"] == "fp32"].set_index(["world", "kind", "name"])
    alt = rows[rows["run"] == other].set_index(["world", "kind", "name"])
    keep = base["r"] >= 0.5
    return pd.DataFrame({"d_r2": (alt["r2"] - base["r2"])[keep],
                         "d_r": (alt["r"] - base["r"])[keep]}).reset_index()


def summarize(rows: pd.DataFrame, speed: list[dict], paper: dict) -> tuple[str, dict]:
    lines, fig = [], {}
    for other, what in (("bf16", "bfloat16, seed s"), ("fp32_seed2", "float32, seed s + 1")):
        d = paired(rows, other)
        fig[other] = {"mean_d_r2": float(d["d_r2"].mean()), "mean_d_r": float(d["d_r"].mean()),
                      "mean_abs_d_r2": float(d["d_r2"].abs().mean()), "columns": len(d),
                      "per_world_d_r2": d.groupby("world")["d_r2"].mean().round(4).to_dict()}
    conc = rows[(rows["kind"] == "concept") & rows["checked"]]
    passes = conc.groupby("run")["passes"].agg(["sum", "count"])
    fig["calibration_passes"] = {k: [int(v["sum"]), int(v["count"])] for k, v in passes.iterrows()}
    a = fig["bf16"]["mean_d_r2"] >= -0.02
    b = fig["calibration_passes"]["bf16"][0] >= fig["calibration_passes"]["fp32"][0] - 1
    fig["criterion_a"], fig["criterion_b"] = bool(a), bool(b)
    lines += ["| against float32, seed s | columns (float32 r >= 0.5) | mean d R^2 | mean abs d R^2 "
              "| mean d r | mean d R^2 per world |", "|---|---|---|---|---|---|"]
    for other, what in (("bf16", "bfloat16, seed s"), ("fp32_seed2", "float32, seed s + 1 "
                                                                      "(reference)")):
        f = fig[other]
        per = ", ".join(f"{w}: {v:+.3f}" for w, v in f["per_world_d_r2"].items())
        lines.append(f"| {what} | {f['columns']} | {f['mean_d_r2']:+.4f} | "
                     f"{f['mean_abs_d_r2']:.4f} | {f['mean_d_r']:+.4f} | {per} |")
    lines += ["", "Issue 9's calibration rule on the concepts (r >= 0.5), passing / checked: "
              + ", ".join(f"{k} {v[0]} / {v[1]}" for k, v in fig["calibration_passes"].items())
              + ".", "",
              f"Criterion (a), mean d R^2 >= -0.02: **{'met' if a else 'missed'}**. "
              f"Criterion (b), bfloat16 passes >= float32 passes - 1: "
              f"**{'met' if b else 'missed'}**.", ""]
    sp = pd.DataFrame(speed)
    lines += ["Seconds per epoch (median of each run's history; small preset, 3-s crops):", "",
              "| world | float32 | bfloat16 | float32 / bfloat16 |", "|---|---|---|---|"]
    for w, g in sp.groupby("world"):
        f32, b16 = (float(g.loc[g["run"] == k, "epoch_s"].iloc[0]) for k in ("fp32", "bf16"))
        lines.append(f"| {w} | {f32:.1f} | {b16:.1f} | {f32 / b16:.2f}x |")
    fig["speed_small"] = speed
    if paper:
        lines += ["", f"`paper` preset, 10-s crops, world 0, {paper['epochs']} epochs each: "
                  f"float32 {paper['fp32']:.1f} s per epoch, bfloat16 {paper['bf16']:.1f} s "
                  f"({paper['fp32'] / paper['bf16']:.2f}x; median epoch, training steps plus "
                  f"float32 validation)."]
        fig["paper"] = paper
    per = rows.pivot_table(index=["world", "kind", "name"], columns="run",
                           values=["r", "r2", "slope"]).round(3)
    per.columns = [f"{v} {k}" for v, k in per.columns]
    lines += ["", "Per column (test split):", "", _markdown(per.reset_index())]
    return "\n".join(lines), fig


def _markdown(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join("" if pd.isna(v) else (f"{v:.3f}" if isinstance(v, float)
                                                     else str(v)) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def write_result(text: str) -> None:
    """Put ``text`` under the section's result heading (the plan above it stays as written)."""
    path = REPO / "benchmarks" / "RESULTS.md"
    doc = path.read_text()
    start = doc.index(f"## {SECTION}")
    end = doc.find("\n## ", start + 1)
    end = len(doc) if end < 0 else end
    section = doc[start:end]
    cut = section.find(RESULT_HEADING)
    section = (section if cut < 0 else section[:cut]).rstrip() + "\n\n"
    section += f"{RESULT_HEADING} (written by the script, {time.strftime('%Y-%m-%d %H:%M')})\n\n"
    section += text.rstrip() + "\n"
    tmp = path.with_name(".RESULTS.md.tmp")
    tmp.write_text(doc[:start] + section + doc[end:])
    tmp.replace(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/cpu_bf16")
    p.add_argument("--worlds", type=int, default=3)
    p.add_argument("--n-clips", type=int, default=240)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--paper-epochs", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke run, no write)")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    import torch

    from midlevel.synth import synthesize
    from midlevel.training.config import cpu_has_bf16
    if not cpu_has_bf16():
        print("this CPU has no bfloat16 units: nothing to measure")
        return 1
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    n_clips, duration, epochs, patience = args.n_clips, 10.0, args.epochs, 12
    if args.quick:
        args.worlds, n_clips, duration, epochs, patience = 1, 30, 4.0, 2, 3
        args.paper_epochs, args.no_write = 1, True
    work = Path(args.workdir)
    cache = work / "cache"
    config = {"preset": "small", "epochs": epochs, "patience": patience, "crop_seconds": 3.0,
              "eval_hop_seconds": 1.5}
    rows, speed, paper = [], [], {}
    for k, seed in enumerate(WORLD_SEEDS[:args.worlds]):
        data = work / f"world{k}"
        if not (data / "spec.yaml").is_file():
            synthesize(data, n_clips=n_clips, seed=seed, duration=duration,
                       weights=weight_map(seed), change_fraction=0.5, n_jobs=2, progress=False)
        for name, extra in (("fp32", {"seed": seed}), ("bf16", {"seed": seed, "cpu_bf16": True}),
                            ("fp32_seed2", {"seed": seed + 1})):
            t0 = time.time()
            run = train_or_load(data / "spec.yaml", work / f"world{k}_{name}",
                                {**config, **extra}, cache)
            label = {"world": f"map {k} (seed {seed})", "run": name}
            rows += test_rows(run, label)
            speed.append({**label, "epoch_s": epoch_seconds(run)})
            print(f"{label}: {time.time() - t0:.0f} s", flush=True)
    if args.paper_epochs:
        for name, extra in (("fp32", {}), ("bf16", {"cpu_bf16": True})):
            run = train_or_load(work / "world0" / "spec.yaml", work / f"paper_{name}",
                                {"preset": "paper", "epochs": args.paper_epochs,
                                 "crop_seconds": 10.0, "seed": 0, **extra}, cache)
            paper[name] = epoch_seconds(run)
        paper["epochs"] = args.paper_epochs
    text, fig = summarize(pd.DataFrame(rows), speed, paper)
    print(text)
    (work / "cpu_bf16.json").write_text(json.dumps({"figures": fig, "rows": rows}, indent=1,
                                                   default=float))
    if not args.no_write:
        write_result(text)
        print(f"written: benchmarks/RESULTS.md (section '{SECTION}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
