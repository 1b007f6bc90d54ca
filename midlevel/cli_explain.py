"""``midlevel coefficients`` and ``midlevel explain`` (thin layer over :mod:`midlevel.explain`)."""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from midlevel.cli import add_cache_option, add_root_option


def _blackbox_message(run, command: str) -> str:
    return (f"midlevel {command}: {run.path} is a black-box run (mode '{run.mode}'): it has no "
            f"concepts, so there are no coefficients or concept contributions to show. Explain "
            f"it with the attribution commands instead (see `midlevel compare --help`).")


def _coefficients(args: argparse.Namespace) -> int:
    from midlevel.explain.coefficients import run_coefficients
    from midlevel.explain.flags import flag_summary
    from midlevel.explain.leakage import leakage_summary
    from midlevel.training import load_run

    run = load_run(args.run)
    if run.model.kind != "bottleneck":
        print(_blackbox_message(run, "coefficients"), file=sys.stderr)
        return 1
    result = run_coefficients(run, spec=args.spec, root=args.root, cache_dir=args.cache,
                              alpha=args.alpha, correction=args.correction, data=args.data,
                              n_boot=args.bootstrap, seed=args.seed,
                              materiality=args.materiality, progress=not args.quiet)
    out = Path(args.out) if args.out else run.path / "explanations"
    paths = result.write(out)
    t = result.table
    print(f"{run.mode} run, {t['concept'].nunique()} concepts x {t['target'].nunique()} "
          f"targets")
    print("what the model does: model_weight, the head's own weights (exact)")
    print(f"what the data show: {t['method'].iloc[0]}")
    print(f"  {int(t['significant'].sum())} of {len(t)} effects significant at "
          f"alpha={args.alpha} (correction: {args.correction})")
    r2 = t.groupby("target", sort=False)["r2"].first()
    print("  R^2 per target: " + ", ".join(f"{k} {v:.2f}" for k, v in r2.items()))
    print(flag_summary(t, most=8))
    if result.leakage is not None and len(result.leakage):
        print("leakage diagnostic (head on predicted vs true concepts):")
        print("  " + leakage_summary(result.leakage).replace("\n", "\n  "))
    for kind, path in paths.items():
        print(f"written: {path}")
    return 0


def _parse_settings(items: list[str] | None, concepts: list[str]) -> dict[str, float]:
    from midlevel.errors import MidlevelError
    values = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise MidlevelError(f"--set expects CONCEPT=VALUE, got '{item}'")
        if name not in concepts:
            raise MidlevelError(f"--set: unknown concept '{name}'; concepts are {concepts}")
        try:
            values[name] = float(value)
        except ValueError:
            raise MidlevelError(f"--set {item}: '{value}' is not a number") from None
    return values


def _read_baseline(path: str, concepts: list[str]):
    """A baseline.csv (columns concept, baseline) as a Series indexed by concept."""
    import pandas as pd
    from midlevel.errors import MidlevelError
    try:
        table = pd.read_csv(path)
        series = table.set_index("concept")["baseline"].astype(float)
    except (OSError, KeyError, ValueError) as exc:
        raise MidlevelError(f"{path}: not a baseline table with columns concept, baseline "
                            f"({exc})") from None
    missing = [c for c in concepts if c not in series.index]
    if missing:
        raise MidlevelError(f"{path}: baseline lacks concept(s) {missing}")
    return series[concepts].rename("baseline")


def _call_blackbox(run, args) -> int:
    try:
        from midlevel.explain.blackbox import explain_blackbox
    except ModuleNotFoundError as exc:
        if exc.name not in ("midlevel.explain.blackbox",):
            raise
        print(_blackbox_message(run, "explain"), file=sys.stderr)
        return 1
    options = {"targets": args.targets, "spec": args.spec, "root": args.root,
               "cache_dir": args.cache, "progress": not args.quiet}
    if args.methods:
        options["methods"] = tuple(args.methods)
    params = inspect.signature(explain_blackbox).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        options = {k: v for k, v in options.items() if k in params}
    result = explain_blackbox(run, list(args.audio), args.out, **options)
    try:
        return int(result)
    except (TypeError, ValueError):
        return 0


def _explain(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from midlevel.explain.contributions import (
        LinearHead, baseline_concepts, clip_names, contributions, explain_clips,
        split_predictions, write_csv,
    )
    from midlevel.explain.interventions import intervene, run_intervention_curves
    from midlevel.explain.timeline import contributions_over_time
    from midlevel.plots.concepts import (
        contribution_bars, contribution_distribution, intervention_plot, timeline_plot,
    )
    from midlevel.training import load_run

    run = load_run(args.run)
    if run.model.kind != "bottleneck":
        return _call_blackbox(run, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head = LinearHead.from_run(run)
    settings = _parse_settings(args.set, run.concept_names)
    written = []

    # predicted training concepts: the baseline and the default dataset view (a sequential
    # run stores them with the model; others are predicted through the feature cache)
    train_pred = None
    if run.mode == "sequential" and run.head_design is not None:
        from midlevel.explain.coefficients import run_design
        train_pred = run_design(run)[0]
    elif not args.baseline or args.dataset_split == "train":
        train_pred = split_predictions(run, spec=args.spec, root=args.root, cache_dir=args.cache,
                                       split="train", progress=not args.quiet)
    if args.baseline:
        baseline = _read_baseline(args.baseline, run.concept_names)
    else:
        baseline = baseline_concepts(run, train_predictions=train_pred)
    write_csv(baseline.rename_axis("concept").reset_index(), out / "baseline.csv")
    written.append(out / "baseline.csv")

    names = clip_names(args.audio)
    table, pred = explain_clips(run, list(args.audio), baseline=baseline, names=names,
                                targets=args.targets)
    errors = pred.attrs.get("errors", {})
    write_csv(table, out / "contributions.csv")
    write_csv(pred.reset_index(), out / "predictions.csv")
    written += [out / "contributions.csv", out / "predictions.csv"]

    dataset = None
    if args.dataset_split != "none":
        if args.dataset_split == "train":
            dataset_concepts = train_pred
        else:
            dataset_concepts = split_predictions(run, spec=args.spec, root=args.root,
                                                 cache_dir=args.cache, split=args.dataset_split,
                                                 progress=not args.quiet)
        dataset = contributions(dataset_concepts[run.concept_names], head, baseline,
                                targets=args.targets)
        write_csv(dataset, out / f"dataset_contributions_{args.dataset_split}.csv")
        written.append(out / f"dataset_contributions_{args.dataset_split}.csv")

    timelines = []
    for name, path in zip(names, args.audio):
        if name not in pred.index:
            continue
        fig = contribution_bars(table, name, targets=None)
        fig.savefig(out / f"{name}_contributions.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(out / f"{name}_contributions.png")
        if dataset is not None:
            targets = list(dict.fromkeys(table["target"]))
            ncols = min(4, len(targets))
            nrows = int(np.ceil(len(targets) / ncols))
            n_c = len(run.concept_names)
            fig = plt.figure(figsize=((1.2 + 0.6 * n_c) * ncols, 3.6 * nrows))
            axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
            for ax, target in zip(axes, targets):
                contribution_distribution(dataset, target, clip_table=table, clip=name, ax=ax)
            for ax in axes[len(targets):]:
                ax.set_visible(False)
            fig.tight_layout()
            fig.savefig(out / f"{name}_dataset.png", dpi=110)
            plt.close(fig)
            written.append(out / f"{name}_dataset.png")
        if not args.no_timeline:
            tl, spec = contributions_over_time(run, path, baseline=baseline, hop=args.hop,
                                               window=args.window, name=name,
                                               targets=args.targets)
            if tl["time"].nunique() < 2:
                print(f"midlevel explain: {name} is no longer than the window "
                      f"({args.window or run.config.crop_seconds:g} s): one window only; pass "
                      f"a shorter --window for a view over time", file=sys.stderr)
            timelines.append(tl)
            from midlevel.data.frontends import make_frontend
            bands = getattr(make_frontend(run.frontend), "band_frequencies", None)
            fig = timeline_plot(spec, tl, fps=run.fps, band_frequencies=bands,
                                targets=args.timeline_targets)
            fig.savefig(out / f"{name}_timeline.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
            written.append(out / f"{name}_timeline.png")
    if timelines:
        import pandas as pd
        write_csv(pd.concat(timelines, ignore_index=True), out / "timeline.csv")
        written.append(out / "timeline.csv")

    if settings:
        inter = intervene(head, pred[run.concept_names], settings, targets=args.targets)
        write_csv(inter, out / "interventions.csv")
        written.append(out / "interventions.csv")
    if args.intervention_split:
        preds = split_predictions(run, spec=args.spec, root=args.root, cache_dir=args.cache,
                                  split=args.intervention_split, progress=not args.quiet)
        curve = run_intervention_curves(run, predictions=preds, n_repeats=args.repeats,
                                        seed=args.seed)
        write_csv(curve, out / "intervention_curve.csv")
        ax = intervention_plot(curve)
        ax.figure.savefig(out / "intervention_curve.png", dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
        written += [out / "intervention_curve.csv", out / "intervention_curve.png"]

    for name, message in errors.items():
        print(f"midlevel explain: skipped {name}: {message}", file=sys.stderr)
    print(f"explained {len(pred)} clip(s) of a {run.mode} run; baseline: "
          + (args.baseline if args.baseline else "mean predicted concepts on the training split"))
    for path in written:
        print(f"written: {path}")
    return 1 if errors else 0


def register(sub) -> None:
    """Add ``coefficients`` and ``explain`` to the ``midlevel`` subparsers."""
    from midlevel.explain.coefficients import CORRECTIONS

    p = sub.add_parser(
        "coefficients", help="the concept -> target weights of a bottleneck, with statistics",
        description="Write coefficients.csv: one row per concept and target with two "
                    "answers. What the model does: model_weight, the head's own weight "
                    "(exact, every mode). What the data show: the concept -> target effect "
                    "with its interval and p-value, from the human ratings (OLS, HC3 errors) "
                    "where clips carry both concept and target ratings, else by regression "
                    "calibration on held-out predictions; never from the CNN's in-sample "
                    "predictions. A flag marks model weights that depart from what the data "
                    "show. Also a two-panel heatmap, leakage.csv (joint and sequential runs: "
                    "the head on predicted vs true concepts) and a text summary.")
    p.add_argument("run", metavar="RUN", help="run directory (from `midlevel train`)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/explanations)")
    p.add_argument("--spec", metavar="SPEC",
                   help="data spec with the ratings (default: the run's)")
    add_root_option(p)
    add_cache_option(p)
    p.add_argument("--alpha", type=float, default=0.05,
                   help="significance level; intervals are 1 - alpha (default 0.05)")
    p.add_argument("--correction", choices=CORRECTIONS, default="none",
                   help="multiple-comparison correction of the p-values (default none)")
    p.add_argument("--data", choices=["auto", "ratings", "calibrated"], default="auto",
                   help="how the data's answer is estimated (default auto: ratings when "
                        "enough clips carry concept and target ratings)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples of the calibrated estimator (default 1000)")
    p.add_argument("--materiality", type=float, default=None, metavar="S",
                   help="standardized margin before a departure is flagged (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_coefficients)

    p = sub.add_parser(
        "explain", help="per-clip concept contributions, over time, and interventions",
        description="For each AUDIO file, write the contribution of every concept to every "
                    "target (weight x (concept - training mean)), as contributions.csv and a "
                    "bar chart per clip; the dataset view (the distribution of each "
                    "contribution over a split, the clip marked); contributions over time "
                    "under the spectrogram (timeline.csv); optional interventions. A black-box "
                    "run is handed to the attribution explainer when installed.")
    p.add_argument("run", metavar="RUN", help="run directory (from `midlevel train`)")
    p.add_argument("audio", metavar="AUDIO", nargs="+", help="audio files to explain")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--targets", nargs="+", metavar="T", help="targets to explain (default all)")
    p.add_argument("--spec", metavar="SPEC",
                   help="data spec for the baseline and the dataset view (default: the run's)")
    add_root_option(p)
    add_cache_option(p)
    p.add_argument("--baseline", metavar="CSV",
                   help="concept baseline to use (a baseline.csv written by an earlier explain) "
                        "instead of predicting the training split")
    p.add_argument("--dataset-split", default="train",
                   choices=["train", "validation", "test", "none"],
                   help="split for the dataset view (default train; none = skip)")
    p.add_argument("--hop", type=float, default=0.5, metavar="SEC",
                   help="hop between windows over time (default 0.5 s)")
    p.add_argument("--window", type=float, default=None, metavar="SEC",
                   help="window length over time (default: the run's training crop)")
    p.add_argument("--timeline-targets", nargs="+", metavar="T",
                   help="targets drawn over time (default: all explained)")
    p.add_argument("--no-timeline", action="store_true", help="skip the view over time")
    p.add_argument("--set", nargs="+", metavar="CONCEPT=VALUE",
                   help="intervene: set concepts to values, write interventions.csv")
    p.add_argument("--intervention-split", choices=["train", "validation", "test"],
                   help="write intervention curves (random and greedy order) on this split")
    p.add_argument("--repeats", type=int, default=20,
                   help="random orders for the intervention curve (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random orders (default 0)")
    p.add_argument("--methods", nargs="+", metavar="M",
                   help="black-box runs only: attribution methods (default: the attribution "
                        "explainer's; see `midlevel compare --help`)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_explain)
