"""``midlevel compare RUN... --out DIR``: the comparison report (thin layer over
:func:`midlevel.workflows.compare.compare`)."""
from __future__ import annotations

import argparse
import sys

from midlevel.cli.common import (add_cache_option, add_root_option, folder_path, locked_output,
                                 positive_float, positive_int, show_log)


def _compare(args: argparse.Namespace) -> int:
    if not args.quiet:
        show_log()
    from midlevel.workflows.compare import compare

    options = {}
    if args.window:
        options["window"] = tuple(args.window)
    if args.stride:
        options["stride"] = tuple(args.stride)
    for key in ("n_steps", "n_samples"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    with locked_output(args.out):  # a second compare (or explain) into it is refused
        report = compare(args.runs, args.out, spec=args.spec, root=args.root,
                         cache_dir=args.cache, methods=args.methods, n_clips=args.clips,
                         n_background=args.background, target=args.target,
                         concept=args.concept, faithfulness=not args.no_faithfulness,
                         randomization=not args.no_randomization,
                         sanity_clips=args.sanity_clips,
                         sanity_networks=args.sanity_networks, listen=not args.no_audio,
                         max_seconds=args.seconds, deletion_patch=tuple(args.deletion_patch),
                         **options)
    for warning in report.warnings:
        print(f"midlevel compare: {warning}", file=sys.stderr)
    print(f"report: {report.html}")
    print(f"markdown: {report.markdown}")
    print(f"tables: {report.out / 'tables'}")
    print(f"figures: {report.out / 'figures'}")
    if report.audio:
        print(f"audio: {report.out / 'audio'}")
    return 0


def register(sub) -> None:
    """Add ``compare`` to the ``midlevel`` subparsers."""
    from midlevel.choices import COMPARE_METHODS as DEFAULT_METHODS

    p = sub.add_parser(
        "compare", help="report comparing black-box and bottleneck runs on one test split",
        description="Per-target r, R^2 and RMSE of every RUN on the test split as the data "
                    "are now (mean +- std over runs of one mode, i.e. seeds; every RUN "
                    "trained on the same data: runs of the same clips with the same ratings, "
                    "the same audio for the clips they share; each given once), completeness of each bottleneck, "
                    "attribution maps of each model with SHAP and Captum, explanation cost per "
                    "clip, faithfulness (deletion / insertion against random orders, "
                    "parameter randomization) and listenable explanations; written as "
                    "Markdown, CSV, figures and one self-contained HTML page.")
    p.add_argument("runs", metavar="RUN", nargs="+", help="run directories")
    p.add_argument("--out", required=True, metavar="DIR", type=folder_path, help="report folder")
    p.add_argument("--spec", metavar="SPEC", help="data spec (default: the first run's)")
    add_root_option(p)
    add_cache_option(p)
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), metavar="M",
                   help=f"attribution methods (default: {' '.join(DEFAULT_METHODS)})")
    p.add_argument("--clips", type=positive_int, default=6, help="test clips explained (default 6; a test split with fewer explains them all, "
                        "with a note); a faithfulness verdict (better or worse than random) "
                        "needs at least 6, where the paired Wilcoxon test can reach p < 0.05; "
                        "with fewer the verdict says too few clips to test")
    p.add_argument("--background", type=positive_int, default=16,
                   help="background crops from the training split (default 16)")
    p.add_argument("--target", metavar="NAME",
                   help="explained target, the same for every RUN (default: the first output, "
                        "in the first RUN's order, that every RUN has; when they share none, "
                        "compare refuses and lists each RUN's outputs)")
    p.add_argument("--concept", metavar="NAME",
                   help="bottleneck concept made listenable (default: the largest weight)")
    p.add_argument("--seconds", type=positive_float, metavar="SEC",
                   help="explained excerpt length, the first SEC seconds of each clip "
                        "(default: whole clips)")
    p.add_argument("--window", type=positive_int, nargs=2, metavar=("BANDS", "FRAMES"),
                   help="occlusion patch (default 16 32; a note when no method compared "
                        "uses it)")
    p.add_argument("--stride", type=positive_int, nargs=2, metavar=("BANDS", "FRAMES"),
                   help="occlusion stride (default: the window; a note when no method "
                        "compared uses it)")
    p.add_argument("--n-steps", type=positive_int, help="integrated-gradients steps (default 32)")
    p.add_argument("--n-samples", type=positive_int, help="samples of GradientExplainer / GradientShap "
                                                 "(default 32; a note when no method compared "
                                                 "uses it)")
    p.add_argument("--deletion-patch", type=positive_int, nargs=2, metavar=("BANDS", "FRAMES"),
                   default=[8, 16], help="patch removed / inserted at a time in the deletion "
                                         "and insertion curves (default 8 16; 1 1 = single "
                                         "bins; another patch with --no-faithfulness "
                                         "gives a note)")
    p.add_argument("--no-faithfulness", action="store_true", help="skip deletion / insertion")
    p.add_argument("--no-randomization", action="store_true", help="skip the sanity check")
    p.add_argument("--sanity-clips", type=positive_int, default=None, metavar="N",
                   help="clips of the sanity check, cascading randomization: the first N "
                        "of the clips explained (default and at most --clips); a verdict "
                        "needs at least 6, below that it says too few clips")
    p.add_argument("--sanity-networks", type=positive_int, default=8, metavar="K",
                   help="independent fully randomized networks of the sanity check (default "
                        "8, at least 2): with more than two its intervals cover the draw of "
                        "the random networks as well as the clips")
    p.add_argument("--no-audio", action="store_true", help="no listenable explanations")
    p.add_argument("--quiet", action="store_true", help="less output")
    p.set_defaults(func=_compare)
