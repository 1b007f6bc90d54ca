"""``midlevel demo``: the main job end to end on a synthetic dataset (what ``make demo`` runs)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run_demo(args: argparse.Namespace) -> int:
    """Synthesize, validate and cache features; print where each output is."""
    from midlevel.data.cache import FeatureCache
    from midlevel.data.spec import load_annotations, load_spec
    from midlevel.data.synth import synthesize
    from midlevel.data.validate import validate

    out = Path(args.out)
    n_clips = 24 if args.quick else args.n_clips
    duration = 4.0 if args.quick else 10.0
    outputs: dict[str, Path] = {}

    t = _step(f"synth: {n_clips} clips of {duration:g} s")
    data_dir = out / "data"
    spec_path = data_dir / "spec.yaml"
    if spec_path.is_file() and (data_dir / "ground_truth.json").is_file():
        print(f"reusing {data_dir}")
    else:
        synthesize(data_dir, n_clips=n_clips, seed=args.seed, duration=duration)
    print(f"done in {time.perf_counter() - t:.1f} s")
    outputs["synthetic dataset"] = data_dir
    outputs["ground truth"] = data_dir / "ground_truth.json"

    t = _step("validate")
    spec = load_spec(spec_path)
    report = validate(spec)
    print(report.summary())
    if not report.ok:
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    print(f"done in {time.perf_counter() - t:.1f} s")

    t = _step("features")
    cache = FeatureCache(out / "cache")
    stats = cache.fill(load_annotations(spec)["path"], jobs=2)
    print(f"{stats.computed} computed, {stats.reused} reused in {time.perf_counter() - t:.1f} s")
    outputs["feature cache"] = cache.folder

    print("\n== outputs")
    for name, path in outputs.items():
        print(f"{name:>20}: {path}")
    return 0
