"""``midlevel validate``, ``midlevel features`` and ``midlevel synth``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from midlevel.cli.common import (FRONTENDS, add_cache_option, add_root_option, folder_path,
                                 positive_float, positive_int)
from midlevel.errors import ValidationFailed


def _validate(args: argparse.Namespace) -> int:
    from midlevel.data.spec import load_spec
    from midlevel.data.validate import validate

    spec = load_spec(args.spec, root=args.root)
    from midlevel.data.frontends import make_frontend
    report = validate(spec, decode=not args.no_decode, jobs=args.jobs, window=args.window,
                      progress=not args.quiet,
                      frontend=make_frontend({"name": FRONTENDS[args.frontend]}))
    print(report.summary())
    _print_warnings(report, args)
    if report.ok:
        _print_problems(report, args)  # none: an earlier run's problem list goes
        print("OK: no problems found" + (f" ({len(report.warnings)} warning(s))"
                                         if report.warnings else ""))
        return 0
    _print_problems(report, args)
    return 1


def _print_warnings(report, args) -> None:
    """Up to 20 warnings on stderr; more go to a CSV whose path is printed (their counts by
    kind are in the summary above)."""
    _print_list(report.warnings, "warning", args.warnings_csv,
                f"validate_warnings_{_file_safe(report.spec.name)}.csv", report.warnings_table,
                spec=report.spec)


def _print_problems(report, args) -> None:
    """Up to 20 problems on stderr; more go to a CSV whose path is printed, with their counts
    by kind and the first 10 (a misplaced audio folder is one problem per clip)."""
    _print_list(report.problems, "problem", args.problems_csv,
                f"validate_problems_{_file_safe(report.spec.name)}.csv", report.problems_table,
                shown=10, spec=report.spec)


def _file_safe(name: str) -> str:
    """The spec's name as part of a file name in the current folder (``set/v2`` or
    ``../x`` must not write into another folder)."""
    from midlevel.explain.names import safe_name
    return safe_name(name)


def _print_list(items, what: str, csv, default_csv: str, table, *, most: int = 20,
                shown: int = 0, spec=None) -> None:
    """``items`` (Problems) on stderr, one line each, when there are at most ``most`` and no
    ``csv`` is asked for; else ``table()`` written to ``csv`` (default ``default_csv``),
    its path printed, with the counts by kind and the first ``shown`` items when ``shown``."""
    from midlevel.io import write_csv
    if not csv and len(items) <= most and Path(default_csv).is_file():
        # an earlier validate's list, no longer the data's (audit 23a: "OK: no problems
        # found" beside a 24-problem CSV); another dataset's of the same spec name stays
        if _lists_files_of(Path(default_csv), spec):
            Path(default_csv).unlink()
            print(f"removed {default_csv}: an earlier validate's list of {what}s, now "
                  f"{len(items) or 'none'}", file=sys.stderr)
        else:
            print(f"note: {default_csv} here is an earlier list of {what}s that names no "
                  f"file of this dataset (another spec of the same name?); left as it is",
                  file=sys.stderr)
    if not items:
        return
    if len(items) <= most and not csv:
        print(f"\n{len(items)} {what}(s):", file=sys.stderr)
        for item in items:
            print(f"  - {item}", file=sys.stderr)
        return
    path = csv or default_csv
    rows = table()
    write_csv(rows, path)
    print(f"\n{len(items)} {what}(s), every one in {path}", file=sys.stderr)
    if shown:
        print("by kind: " + ", ".join(f"{n} {k}" for k, n in rows["kind"].value_counts().items())
              + f"\nthe first {min(shown, len(items))}:", file=sys.stderr)
        for item in items[:shown]:
            print(f"  - {item}", file=sys.stderr)


def _lists_files_of(csv: Path, spec) -> bool:
    """Whether a validate list ``csv`` names a file of ``spec``'s dataset (its spec file, or
    a file under its roots or the spec's folder): a list of this dataset's (re-audit 23d: a
    clean dataset's validate removed another's list of the same spec name)."""
    import pandas as pd
    try:
        files = pd.read_csv(csv, usecols=["file"])["file"].dropna().astype(str)
    except (OSError, ValueError):
        return False
    own = Path(spec.path).resolve() if spec.path else None
    folders = [Path(f).resolve() for f in (spec.root, *spec.roots.values(),
                                           own.parent if own else None) if f is not None]
    try:
        return any(Path(f).resolve() == own
                   or any(Path(f).resolve().is_relative_to(d) for d in folders) for f in files)
    except (OSError, ValueError):  # a cell no path can be (a NUL byte): not a list of ours
        return False


def _features(args: argparse.Namespace) -> int:
    from midlevel.data.cache import FeatureCache
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec

    spec = load_spec(args.spec, root=args.root)
    table = load_annotations(spec)
    cache = FeatureCache(args.cache, {"name": FRONTENDS[args.frontend]})
    start = time.perf_counter()
    stats = cache.fill(table["path"], jobs=args.jobs, progress=not args.quiet, strict=False)
    elapsed = time.perf_counter() - start
    print(f"features: {stats.computed} computed, {stats.reused} reused from {cache.folder} "
          f"in {elapsed:.1f} s"
          + (f" ({stats.seconds_of_audio / elapsed:.0f}x real time)" if stats.computed else ""))
    if stats.problems:
        raise ValidationFailed(stats.problems, "features could not be computed for some files")
    return 0


def _synth(args: argparse.Namespace) -> int:
    from midlevel.synth.dataset import synthesize

    start = time.perf_counter()
    spec_path = synthesize(args.out, n_clips=args.n_clips, seed=args.seed,
                           duration=args.duration, weights=args.weights,
                           correlated=args.correlated, tags=args.tags, n_jobs=args.jobs,
                           change_fraction=args.change_fraction,
                           change_range=tuple(args.change_range),
                           progress=not args.quiet)
    print(f"synthesized {args.n_clips} clips of {args.duration:g} s in "
          f"{time.perf_counter() - start:.1f} s; spec: {spec_path}")
    return 0


def register(sub) -> None:
    """Add ``validate``, ``features`` and ``synth`` to the ``midlevel`` subparsers."""
    p = sub.add_parser("validate", help="check a data spec, its tables and every audio file",
                       description="Load SPEC and every file; print a summary; exit 1 listing "
                                   "every problem with the file, row and column at fault. "
                                   "Doubtful input that is not an error is warned about (exit "
                                   "0): clips shorter than the training window, missing "
                                   "ratings (clip and column), a validation or test split "
                                   "with no rating of a column, a split whose ratings of a "
                                   "column are all one value (split and column), audio files "
                                   "no row refers to.")
    p.add_argument("spec", metavar="SPEC", help="data spec (YAML)")
    add_root_option(p)
    p.add_argument("--no-decode", action="store_true",
                   help="only open audio files instead of decoding them fully (a WAV/AIFF "
                        "whose header declares more than it holds is still found; silent, "
                        "NaN and truncated compressed files are not, and clips sharing audio "
                        "are found by path only, not as byte copies)")
    p.add_argument("--jobs", type=positive_int, default=2, help="parallel decoders (default 2)")
    p.add_argument("--window", type=positive_float, default=10.0, metavar="SEC",
                   help="training window; shorter clips are warned about (default 10)")
    p.add_argument("--frontend", default="logfilt", choices=sorted(FRONTENDS),
                   help="the front end whose bands a file recorded at a low rate leaves empty "
                        "(`band-limited audio`; default the paper's log-filtered spectrogram, "
                        "149 bands; logmel: 128 mel bands)")
    p.add_argument("--warnings-csv", metavar="CSV",
                   help="write every warning here (default: when there are more than 20, "
                        "validate_warnings_<spec name>.csv in the current folder)")
    p.add_argument("--problems-csv", metavar="CSV",
                   help="write every problem here (default: when there are more than 20, "
                        "validate_problems_<spec name>.csv in the current folder)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_validate)

    p = sub.add_parser("features", help="precompute and cache spectrograms of a dataset",
                       description="Compute the front end's spectrogram of every clip of SPEC "
                                   "into the feature cache (resumable; entries keyed by audio "
                                   "content and front-end parameters).")
    p.add_argument("spec", metavar="SPEC", help="data spec (YAML)")
    add_root_option(p)
    add_cache_option(p)
    p.add_argument("--frontend", default="logfilt", choices=sorted(FRONTENDS),
                   help="front end: the paper's log-filtered spectrogram (default) or log-mel "
                        "(train with the same --frontend to use these features)")
    p.add_argument("--jobs", type=positive_int, default=None,
                   help="worker processes (default: every usable core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_features)

    p = sub.add_parser("synth", help="write a synthetic dataset with known concepts",
                       description="Synthesize clips from known mid-level concept values, noisy "
                                   "ratings, emotion targets from a known linear map, a spec "
                                   "and ground_truth.json. Into a folder with an earlier "
                                   "synthetic dataset: its spec and tables are removed before "
                                   "any audio is written (spec.yaml comes last), so an "
                                   "interrupted run leaves no dataset that validate or train "
                                   "would accept; SYNTH_INCOMPLETE.txt marks it.")
    p.add_argument("--out", required=True, metavar="DIR", type=folder_path, help="output folder")
    p.add_argument("--n-clips", type=positive_int, default=200, help="number of clips (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--duration", type=positive_float, default=10.0,
                   help="clip length in s (default 10); rendering a clip takes about 128 bytes "
                        "per sample (2.8 MB per second of audio) in each worker: a duration "
                        "whose clips do not fit in this machine's memory together is refused, "
                        "as is one shorter than a sample")
    p.add_argument("--weights", metavar="FILE",
                   help="concept-to-target map replacing the default: a CSV with targets "
                        "as rows (first column their names), concepts as columns and an "
                        "optional 'intercept' column, or a JSON {target: {concept: weight, "
                        "..., 'intercept': b}}; a concept left out weighs 0, a missing "
                        "intercept centres the target at 5")
    p.add_argument("--correlated", action="store_true", help="draw correlated concepts")
    p.add_argument("--change-fraction", type=float, default=0.25, metavar="SHARE",
                   help="share of clips in which one concept changes mid-clip (default 0.25)")
    p.add_argument("--change-range", type=float, nargs=2, default=(0.5, 0.5),
                   metavar=("LOW", "HIGH"),
                   help="fractions of the clip between which each change time is drawn "
                        "uniformly (default 0.5 0.5: every change at the middle, where guessing "
                        "the middle locates every change; give a range to test localization)")
    p.add_argument("--tags", action="store_true",
                   help="the tag world: layer families present or silent per clip (binary "
                        "concepts) and mood tags from a known logistic map (a multi-label "
                        "target)")
    p.add_argument("--jobs", type=positive_int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)
