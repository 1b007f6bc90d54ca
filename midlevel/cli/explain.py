"""``midlevel coefficients`` and ``midlevel explain`` (thin layer over
:mod:`midlevel.explain.coefficients` and :mod:`midlevel.workflows`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from midlevel.cli.common import (add_cache_option, add_root_option, check_output, folder_path,
                                 locked_output, nonnegative_float, open_unit, positive_float,
                                 positive_int)
from midlevel.checks import article
from midlevel.data.spec import SPLITS
from midlevel.errors import ArgumentError


def _blackbox_message(run, command: str) -> str:
    return (f"midlevel {command}: {run.path} is a black-box run (mode '{run.mode}'): it has no "
            f"concepts, so there are no coefficients or concept contributions to show. Explain "
            f"it post hoc instead: `midlevel explain {run.path} AUDIO...` (attribution maps "
            f"and listen-back audio), or `midlevel compare` beside a bottleneck.")


def _coefficients(args: argparse.Namespace) -> int:
    from midlevel.explain.coefficients import run_coefficients
    from midlevel.run import load_run

    run = load_run(args.run)
    if run.model.kind != "bottleneck":
        print(_blackbox_message(run, "coefficients"), file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else run.path / "explanations"
    check_output(str(out), folder=True)  # before the work (an explicit --out is checked already)
    with locked_output(str(out)):  # a second coefficients (or explain) into it is refused
        result = run_coefficients(run, spec=args.spec, root=args.root, cache_dir=args.cache,
                                  alpha=args.alpha, correction=args.correction, data=args.data,
                                  n_boot=args.bootstrap, seed=args.seed,
                                  materiality=args.materiality, progress=not args.quiet,
                                  reliability=_reliability(args.reliability))
        paths = result.write(out)
    print("\n".join(result.summary_lines()))
    for path in paths.values():
        print(f"written: {path}")
    return 0


def _reliability(items: list[str] | None) -> dict[str, str] | str | None:
    """``--reliability`` items as ``{concept: value}`` (values checked against the run's
    concepts by the library; each replaces the spec's for its concept); None: the spec's;
    ``"none"``: no correction."""
    if not items:
        return None
    if items == ["none"]:
        return "none"
    out = {}
    for item in items:
        name, sep, value = item.rpartition("=")
        if not sep or not name or item == "none":
            raise ArgumentError(f"--reliability {item}: expected CONCEPT=R (R in (0, 1]), or "
                                f"'none' alone")
        if name in out:
            raise ArgumentError(f"--reliability: concept '{name}' is given twice")
        out[name] = value
    return out


_SWITCH = {"on": 1.0, "off": 0.0, "yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0}


def _parse_settings(items: list[str] | None, concepts: list[str],
                    kinds: list[str] | None = None, scales: dict | None = None
                    ) -> dict[str, float]:
    """``CONCEPT=VALUE`` items as ``{concept: value}`` (a tag: ``group=tag=on`` / ``off``);
    ArgumentError naming a bad one: no value (also for a tag named without one, such as
    ``layer=drums``), an unknown concept, a concept set twice, a value that is not a number,
    and, when ``kinds`` (the concept kinds) are given, on/off for a rating concept
    (``scales``: ``{concept: (low, high)}`` rating scales, named in the messages)."""
    kind_of = dict(zip(concepts, kinds or []))

    def wanted(name: str) -> str:
        if kind_of.get(name) == "binary":
            return "on, off or 0-1"
        if name not in kind_of:
            return "a number, or on/off for a tag"
        low, high = (scales or {}).get(name, (None, None))
        return "a number on its rating scale" + (f", {low:g} to {high:g}" if low is not None
                                                 else "")

    values, given = {}, {}
    for item in items or []:
        name, sep, value = item.rpartition("=")  # concepts of a tag group hold '=' themselves
        if item in concepts or (sep and not value.strip() and name in concepts):
            concept = item if item in concepts else name
            raise ArgumentError(f"--set {item}: expected CONCEPT=VALUE; concept '{concept}' "
                                f"needs a value ({wanted(concept)})")
        if not sep:
            raise ArgumentError(f"--set {item}: expected CONCEPT=VALUE")
        if name not in concepts:
            raise ArgumentError(f"--set: unknown concept '{name}'; concepts are {concepts}")
        if name in given:
            raise ArgumentError(f"--set: concept '{name}' is set twice ({given[name]}, "
                                f"{item}); set each concept once")
        given[name] = item
        word = value.strip().lower()
        if word in _SWITCH and name in kind_of and kind_of[name] != "binary":
            raise ArgumentError(f"--set {item}: concept '{name}' is a rating, not a binary "
                                f"concept: on/off are for binary concepts (tags); a rating "
                                f"needs {wanted(name)}")
        try:
            values[name] = _SWITCH[word] if word in _SWITCH else float(value)
        except ValueError:
            raise ArgumentError(f"--set {item}: '{value}' is not a value; concept '{name}' "
                                f"needs {wanted(name)}") from None
    return values


#: Options of ``midlevel explain`` that act on a bottleneck's timeline, dataset view or
#: intervention curve only, with their defaults there (None on the command line, so that a
#: black box can refuse the ones given: a silently ignored option would look as if it had acted).
_BOTTLENECK_DEFAULTS = {"hop": 0.5, "dataset_split": "train", "repeats": 20, "seed": 0}
_FLAGS = {"hop": "--hop", "window": "--window", "no_timeline": "--no-timeline",
          "dataset_split": "--dataset-split", "repeats": "--repeats", "seed": "--seed"}


def _bottleneck_option(args, key: str):
    """The value of a bottleneck-only option: as given, else its default."""
    value = getattr(args, key)
    return _BOTTLENECK_DEFAULTS[key] if value is None else value


def _explain_blackbox(run, args) -> int:
    from midlevel.workflows.explain_attributions import check_no_concept_options, explain_blackbox
    values = {flag: getattr(args, key) for key, flag in _FLAGS.items()}
    given = {flag: v for flag, v in values.items() if v is not None and v is not False}
    options = {"targets": args.targets, "spec": args.spec, "root": args.root,
               "cache_dir": args.cache, "progress": not args.quiet,
               # concept options: refused by name on a black box, before anything is written
               "settings": args.set, "baseline": args.baseline,
               "timeline_targets": args.timeline_targets,
               "intervention_split": args.intervention_split}
    check_no_concept_options(run, flags=given, **{k: options[k] for k in (
        "settings", "baseline", "timeline_targets", "intervention_split")})
    if args.methods:
        options["methods"] = tuple(args.methods)
    with locked_output(args.out):
        result = explain_blackbox(run, list(args.audio), args.out, **options)
    if not args.quiet and len(result.summary):
        cost = result.summary.groupby("method")["ms_per_clip"].mean()
        print("attribution cost per clip and output: " +
              ", ".join(f"{m} {v:.0f} ms" for m, v in cost.items()))
    n = result.summary["clip"].nunique() if len(result.summary) else 0
    if n and not args.quiet:
        print(f"explained {n} clip(s) of {article(run.mode)} {run.mode} run; outputs under "
              f"{args.out}")
        for path in result.files:
            if str(path).endswith(".csv"):
                print(f"written: {path}")
    return _skipped(result.errors, n)


def _skipped(errors: dict, n_explained: int) -> int:
    """Exit status of an explain that skipped the files of ``errors`` (each named on stderr by
    the log as it was skipped): a line saying how many; 1 when any was skipped."""
    if errors:
        what = ("no file could be explained; nothing written" if not n_explained else
                f"{len(errors)} file(s) could not be read and were skipped (named above); "
                f"the other {n_explained} were explained")
        print(f"midlevel explain: {what}", file=sys.stderr)
    return 1 if errors else 0


def _explain(args: argparse.Namespace) -> int:
    from midlevel.explain.interventions import rating_scales
    from midlevel.run import load_run
    from midlevel.workflows.explain_concepts import explain_concepts

    run = load_run(args.run)
    if args.methods and run.mode != "blackbox":
        raise ArgumentError(f"--methods chooses the attribution methods of a black-box run; "
                            f"{args.run} is a {run.mode} concept bottleneck, explained by its "
                            f"concepts: drop --methods (or use `midlevel compare` for post-hoc "
                            f"maps of it)")
    if run.model.kind != "bottleneck":
        return _explain_blackbox(run, args)
    split = _bottleneck_option(args, "dataset_split")
    settings = _parse_settings(args.set, run.concept_names,
                               getattr(run.model, "concept_kinds", None), rating_scales(run))
    with locked_output(args.out):
        result = explain_concepts(
            run, list(args.audio), args.out, targets=args.targets, spec=args.spec,
            root=args.root, cache_dir=args.cache, baseline=args.baseline,
            dataset_split=None if split == "none" else split,
            timeline=not args.no_timeline, hop=_bottleneck_option(args, "hop"),
            window=args.window, timeline_targets=args.timeline_targets, settings=settings,
            intervention_split=args.intervention_split,
            repeats=_bottleneck_option(args, "repeats"), seed=_bottleneck_option(args, "seed"),
            progress=not args.quiet)
    for note in result.notes:
        print(f"midlevel explain: {note}", file=sys.stderr)
    if len(result.predictions):
        print("\n".join(result.summary_lines()))
    for path in result.files:
        print(f"written: {path}")
    return _skipped(result.errors, len(result.predictions))


def register(sub) -> None:
    """Add ``coefficients`` and ``explain`` to the ``midlevel`` subparsers."""
    from midlevel.choices import CORRECTIONS

    p = sub.add_parser(
        "coefficients", help="the concept -> target weights of a bottleneck, with statistics",
        description="Write coefficients.csv: one row per concept and target with two "
                    "answers. What the model does: model_weight, the head's own weight "
                    "(exact, every mode). What the data show: the concept -> target association "
                    "(a linear summary among the clips, not a causal effect) with its "
                    "interval and p-value, from the human ratings (OLS, HC3 errors; "
                    "corrected for rater noise where concepts' reliabilities are declared) "
                    "where clips carry both concept and target ratings, else by regression "
                    "calibration on held-out predictions; never from the CNN's in-sample "
                    "predictions. A flag marks model weights that depart from what the data "
                    "show, or rest on a concept that does not vary among the training clips "
                    "(no training spread). Also a two-panel heatmap, leakage.csv (joint and sequential runs: "
                    "the head on predicted vs true concepts) and a text summary.")
    p.add_argument("run", metavar="RUN", help="run directory (from `midlevel train`)")
    p.add_argument("--out", metavar="DIR", type=folder_path,
                   help="output folder (default: RUN/explanations)")
    p.add_argument("--spec", metavar="SPEC",
                   help="data spec with the ratings (default: the run's)")
    add_root_option(p)
    add_cache_option(p)
    p.add_argument("--alpha", type=open_unit, default=0.05,
                   help="significance level; intervals are 1 - alpha without a correction "
                        "(default 0.05)")
    p.add_argument("--correction", choices=CORRECTIONS, default="none",
                   help="multiple-comparison correction over the table's m weights (default "
                        "none: each test at alpha, and the summary says how many of the m "
                        "chance alone would call significant); the intervals, and the flags judged against them, follow it "
                        "(level in column ci_level): bonferroni and holm 1 - alpha/m "
                        "(Bonferroni; a Holm-significant weight may keep an interval reaching "
                        "0), fdr_bh 1 - R*alpha/m for the R weights selected (Benjamini & "
                        "Yekutieli's false-coverage-rate intervals)")
    p.add_argument("--data", choices=["auto", "ratings", "calibrated"], default="auto",
                   help="how the data's answer is estimated (default auto: ratings when "
                        "enough clips carry concept and target ratings)")
    p.add_argument("--reliability", action="append", metavar="CONCEPT=R",
                   help="a rating concept's reliability R in (0, 1]: the share of its rating "
                        "variance that is not rater noise (repeat for several; each replaces "
                        "the spec's 'reliability:' for that concept, the others keep the "
                        "spec's; R 1 takes it as exact; 'none': no correction at all). Where one "
                        "is below 1 the ratings estimator is corrected for rater noise "
                        "(regression calibration, bootstrapped), which otherwise biases the "
                        "weights of correlated concepts; approximate for class and binary "
                        "targets")
    p.add_argument("--bootstrap", type=positive_int, default=1000, metavar="N",
                   help="bootstrap resamples of the calibrated estimator and of the "
                        "reliability correction (default 1000)")
    p.add_argument("--materiality", type=nonnegative_float, default=None, metavar="S",
                   help="standardized margin before a departure is flagged (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_coefficients)

    p = sub.add_parser(
        "explain", help="per-clip concept contributions, over time, and interventions",
        description="For each AUDIO file, write the contribution of every concept to every "
                    "target (weight x (concept - its baseline, the mean predicted concept on "
                    "the training split)), as contributions.csv and a "
                    "bar chart per clip; the dataset view (the distribution of each "
                    "contribution over a split, the clip marked); contributions over time "
                    "under the spectrogram (timeline.csv); optional interventions. A black-box "
                    "run is handed to the attribution workflow (attribution maps, arrays and "
                    "listenable wavs per clip); the options of the concept views (--set, "
                    "--baseline, --hop, --window, --no-timeline, --dataset-split, --repeats, "
                    "--seed, ...) are refused by name there. predictions.csv names each clip "
                    "(its file's stem, made unique) and its path, on which it joins `midlevel "
                    "predict`'s table. Files that cannot be read (missing, empty, not audio, "
                    "silent, NaN) are named and skipped and the others explained (exit status "
                    "1); when none can be, nothing is written. A rerun into the same folder "
                    "removes the earlier explanation's files it does not write again "
                    "(explain_files.json lists them); while it runs, the folder is locked "
                    "against another explain or compare writing into it.")
    p.add_argument("run", metavar="RUN", help="run directory (from `midlevel train`)")
    p.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files to explain")
    p.add_argument("--out", required=True, metavar="DIR", type=folder_path, help="output folder")
    p.add_argument("--targets", nargs="+", metavar="T", help="targets to explain (default all)")
    p.add_argument("--spec", metavar="SPEC",
                   help="data spec for the baseline and the dataset view (default: the run's)")
    add_root_option(p)
    add_cache_option(p)
    p.add_argument("--baseline", metavar="CSV",
                   help="concept baseline to use (a baseline.csv written by an earlier explain) "
                        "instead of predicting the training split")
    p.add_argument("--dataset-split", default=None,
                   choices=[*SPLITS, "none"],
                   help="split for the dataset view (default train; none = skip)")
    p.add_argument("--hop", type=positive_float, default=None, metavar="SEC",
                   help="hop between windows over time (default 0.5 s)")
    p.add_argument("--window", type=positive_float, default=None, metavar="SEC",
                   help="window length over time (default: the run's training crop; one "
                        "shorter than the model's shortest input is refused, naming it)")
    p.add_argument("--timeline-targets", nargs="+", metavar="T",
                   help="targets drawn over time (default: all explained)")
    p.add_argument("--no-timeline", action="store_true", help="skip the view over time")
    p.add_argument("--set", nargs="+", metavar="CONCEPT=VALUE",
                   help="intervene: set concepts to values, write interventions.csv (a "
                        "rating concept takes a number, a value outside its scale with a "
                        "warning, a binary concept on, off or a probability; each concept "
                        "once)")
    p.add_argument("--intervention-split", choices=list(SPLITS),
                   help="write intervention curves (random and greedy order) on this split: "
                        "each target's RMSE, and their mean relative to each target's sd "
                        "(RMSE / sd; targets can differ in units), which the greedy order "
                        "lowers step by step; binary targets by their root Brier score; class "
                        "targets are left out, with a note")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="random orders for the intervention curve (default 20)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the random orders (default 0)")
    p.add_argument("--methods", nargs="+", metavar="M",
                   help="black-box runs only: attribution methods (default: shap_deep alone; "
                        "an unknown name is refused with the list of methods, LIME, LRP "
                        "and Grad-CAM included)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_explain)
