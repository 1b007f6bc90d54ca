"""Acceptance benchmark of issue 3: the joint bottleneck on a 300-clip synthetic concept world.

Synthesizes the dataset (``midlevel.synth``), caches its features, trains the joint
bottleneck and checks the test split's mean concept r and mean target r against 0.85.

    python benchmarks/synthetic_joint.py [--n-clips 300] [--epochs 25] [--crop 5] [--lr 1e-3]

Writes WORKDIR/data (the dataset), WORKDIR/cache (features) and WORKDIR/run (the run); exits 1
when a threshold is missed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from midlevel.synth import synthesize
from midlevel.training import format_table, train


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-clips", type=int, default=300)
    p.add_argument("--duration", type=float, default=10.0, help="clip length in s")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--crop", type=float, default=5.0, help="training crop / eval window in s")
    p.add_argument("--preset", default="small")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="runs/synthetic_joint")
    args = p.parse_args()
    work = Path(args.workdir)
    spec = work / "data" / "spec.yaml"
    t0 = time.time()
    if not spec.is_file():
        synthesize(work / "data", n_clips=args.n_clips, seed=args.seed, duration=args.duration)
    t1 = time.time()
    run = train(spec, work / "run", mode="joint", cache_dir=work / "cache", overwrite=True,
                config={"preset": args.preset, "epochs": args.epochs, "patience": args.patience,
                        "crop_seconds": args.crop, "seed": args.seed, "lr": args.lr})
    t2 = time.time()
    test = run.metrics.query("split == 'test'")
    print(format_table(test))
    means = test[test["name"] == "mean"].set_index("kind")["r"]
    print(f"synthesis {t1 - t0:.0f} s, features + training {t2 - t1:.0f} s, "
          f"{run.info['epochs']} epochs (best {run.info['best_epoch']})")
    print(f"test mean concept r {means['concept']:.3f}, mean target r {means['target']:.3f} "
          f"(acceptance: both >= 0.85)")
    return 0 if means["concept"] >= 0.85 and means["target"] >= 0.85 else 1


if __name__ == "__main__":
    raise SystemExit(main())
