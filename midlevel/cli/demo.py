"""``midlevel demo``: the main job end to end (thin layer over :mod:`midlevel.workflows.demo`)."""
from __future__ import annotations

import argparse

from midlevel.cli.common import folder_path, positive_int


def _demo(args: argparse.Namespace) -> int:
    from midlevel.workflows.demo import run_demo
    return run_demo(args.out, n_clips=args.n_clips, seed=args.seed, quick=args.quick,
                    say=lambda line: print(line, flush=True))


def register(sub) -> None:
    """Add ``demo`` to the ``midlevel`` subparsers."""
    p = sub.add_parser("demo", help="run the main job end to end on a synthetic dataset",
                       description="Synthesize a dataset, validate it, cache features, train a "
                                   "joint concept bottleneck and a black box, write coefficients, "
                                   "per-clip contribution charts, SHAP maps, listenable wavs and "
                                   "the comparison report; print where each output is.")
    p.add_argument("--out", default="demo_out", metavar="DIR", type=folder_path,
                   help="output folder (default: demo_out in the current folder)")
    p.add_argument("--n-clips", type=positive_int, default=None,
                   help="synthetic clips (default 240; 20 with --quick)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="tiny settings (for tests)")
    p.set_defaults(func=_demo)
