"""``midlevel demo``: the main job end to end on a synthetic dataset (what ``make demo`` runs).

Steps: synthesize a dataset with known concepts -> validate -> cache features -> train a joint
concept bottleneck and a black box (small preset, a few epochs) -> the bottleneck's coefficients
-> per-clip concept charts (contributions, over time) -> SHAP maps of the black box and of a
bottleneck concept -> listenable wavs -> the comparison report (Markdown, CSV, figures, one
self-contained HTML page). Every step prints its time; the end prints where each output is.

Settings are chosen to finish in a few minutes on 2 CPU cores (torch runs one intra-op thread
unless ``$MIDLEVEL_THREADS`` says otherwise); ``--quick`` shrinks everything for tests (well
under a minute).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class DemoSettings:
    """Sizes of the demo; :meth:`for_args` picks full or quick ones."""

    n_clips: int = 240
    duration: float = 6.0          # clip length in s
    crop_seconds: float = 3.0      # training crop
    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    preset: str = "small"
    methods: tuple = ("shap_deep", "shap_gradient", "integrated_gradients", "gradient_shap",
                      "deeplift", "occlusion")
    n_explain: int = 3             # test clips in the report
    n_background: int = 16
    n_steps: int = 32
    n_samples: int = 32
    bootstrap: int = 200
    n_charts: int = 2              # clips with per-clip concept charts and SHAP maps

    @classmethod
    def for_args(cls, args: argparse.Namespace) -> "DemoSettings":
        if getattr(args, "quick", False):
            return cls(n_clips=20, duration=3.0, crop_seconds=2.0, epochs=1, batch_size=8,
                       methods=("shap_deep", "integrated_gradients"), n_explain=1,
                       n_background=2, n_steps=4, n_samples=4, bootstrap=20, n_charts=1)
        n = getattr(args, "n_clips", None)
        return cls(n_clips=int(n)) if n else cls()


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(t: float) -> None:
    print(f"done in {time.perf_counter() - t:.1f} s", flush=True)


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run a ``midlevel`` sub-command in this process; (exit status, its stdout)."""
    from midlevel.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def run_demo(args: argparse.Namespace) -> int:
    """Run every step; print where each output is; 0 on success."""
    import torch

    # small models on a small machine: one intra-op thread is several times faster than two
    # as soon as anything else runs (measured: 85 s vs 427 s for this demo on a busy 2-core
    # box); $MIDLEVEL_THREADS overrides. The caller's setting is restored afterwards.
    old = torch.get_num_threads()
    threads = int(os.environ.get("MIDLEVEL_THREADS", 1))
    torch.set_num_threads(threads)
    print(f"torch threads: {threads} (set MIDLEVEL_THREADS to change)")
    try:
        return _run_demo(args)
    finally:
        torch.set_num_threads(old)


def _run_demo(args: argparse.Namespace) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import torch

    from midlevel.data.cache import FeatureCache
    from midlevel.data.spec import load_annotations, load_spec
    from midlevel.data.synth import synthesize
    from midlevel.data.validate import validate

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    s = DemoSettings.for_args(args)
    out = Path(args.out)
    outputs: dict[str, Path] = {}
    quiet = getattr(args, "quick", False)

    # ------------------------------------------------------------------ data
    t = _step(f"synth: {s.n_clips} clips of {s.duration:g} s")
    data_dir = out / "data"
    spec_path = data_dir / "spec.yaml"
    truth_path = data_dir / "ground_truth.json"
    fresh = True
    if spec_path.is_file() and truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        settings = truth.get("settings", truth)
        fresh = not (settings.get("n_clips") == s.n_clips
                     and settings.get("duration") == s.duration
                     and settings.get("seed") == args.seed)
    if fresh:
        synthesize(data_dir, n_clips=s.n_clips, seed=args.seed, duration=s.duration,
                   n_jobs=2, progress=not quiet)
    else:
        print(f"reusing {data_dir}")
    _done(t)
    outputs["synthetic dataset"] = data_dir
    outputs["ground truth"] = truth_path

    t = _step("validate")
    spec = load_spec(spec_path)
    report = validate(spec, progress=not quiet)
    print(report.summary())
    if not report.ok:
        for problem in report.problems:
            print(f"  - {problem}")
        return 1
    _done(t)

    t = _step("features")
    cache_dir = out / "cache"
    cache = FeatureCache(cache_dir)
    table = load_annotations(spec)
    stats = cache.fill(table["path"], jobs=2, progress=not quiet)
    print(f"{stats.computed} computed, {stats.reused} reused")
    _done(t)
    outputs["feature cache"] = cache.folder

    # ------------------------------------------------------------------ training
    from midlevel.training import train
    runs = {}
    for mode in ("joint", "blackbox"):
        t = _step(f"train {mode} ({s.preset} preset, {s.epochs} epochs, "
                  f"{s.crop_seconds:g} s crops)")
        run_dir = out / "runs" / mode
        config = {"crop_seconds": s.crop_seconds, "batch_size": s.batch_size, "lr": s.lr,
                  "patience": s.epochs, "seed": args.seed}
        runs[mode] = train(spec, run_dir, mode=mode, preset=s.preset, epochs=s.epochs,
                           config=config, cache_dir=cache_dir, overwrite=True,
                           progress=not quiet)
        m = runs[mode].metrics
        test = m[(m["split"] == "test") & (m["name"] == "mean")]
        print("test mean r: " + ", ".join(f"{k} {v:.2f}" for k, v in zip(test["kind"], test["r"])))
        _done(t)
        outputs[f"{mode} run"] = run_dir
    joint, blackbox = runs["joint"], runs["blackbox"]

    # clips for the per-clip views: test clips, those with a mid-clip concept change first
    truth = json.loads(truth_path.read_text())
    records = _clip_records(truth)
    test = table[table["split"] == "test"]
    ordered = sorted(test.index, key=lambda c: records.get(str(c), {}).get("change") is None)
    chart_clips = ordered[:s.n_charts]
    chart_paths = [str(test.loc[c, "path"]) for c in chart_clips]

    # ------------------------------------------------------------------ concept explanations
    t = _step("coefficients of the joint bottleneck")
    coef_dir = out / "coefficients"
    code, text = _cli(["coefficients", str(joint.path), "--out", str(coef_dir), "--cache",
                       str(cache_dir), "--bootstrap", str(s.bootstrap), "--quiet"])
    print(text.strip())
    if code != 0:
        return code
    outputs["coefficients"] = coef_dir
    _done(t)

    t = _step(f"per-clip concept charts ({', '.join(map(str, chart_clips))})")
    charts_dir = out / "concept_charts"
    code, text = _cli(["explain", str(joint.path), *chart_paths, "--out", str(charts_dir),
                       "--cache", str(cache_dir), "--quiet",
                       "--window", f"{min(s.crop_seconds, s.duration / 2):g}"])
    print("\n".join(line for line in text.strip().splitlines() if not line.startswith("written")))
    if code != 0:
        return code
    outputs["per-clip concept charts"] = charts_dir
    _done(t)

    # ------------------------------------------------------------------ attributions
    from midlevel.explain.blackbox import explain_audio, explain_blackbox, run_background
    target = blackbox.model.output_names[0]
    t = _step(f"SHAP maps and listenable wavs of the black box (target {target})")
    shap_dir = out / "shap_blackbox"
    bg = run_background(blackbox, s.n_background, cache_dir=cache_dir)
    res = explain_blackbox(blackbox, chart_paths, shap_dir, targets=[target],
                           methods=("shap_deep",), cache_dir=cache_dir, progress=False,
                           background=bg)
    print(f"SHAP DeepExplainer: {res.summary['ms_per_clip'].mean():.0f} ms per clip; max "
          f"additivity gap {res.summary['additivity_gap'].abs().max():.1e}")
    outputs["black-box SHAP maps and wavs"] = shap_dir
    _done(t)

    concept = _changed_concept(records, chart_clips) or joint.concept_names[0]
    t = _step(f"SHAP maps and listenable wavs of a bottleneck concept ({concept})")
    concept_dir = out / "shap_concept"
    res_c = explain_audio(joint, chart_paths, concept_dir, outputs=[f"concept:{concept}"],
                          methods=("shap_deep",), cache_dir=cache_dir,
                          background=run_background(joint, s.n_background, cache_dir=cache_dir))
    print(f"{len(res_c.files)} files written")
    outputs["bottleneck concept SHAP maps and wavs"] = concept_dir
    _done(t)

    t = _step("controlled check: attribution inside a known deciding event")
    event_table = event_check(steps=60 if quiet else 150)
    print(event_table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    _done(t)

    # ------------------------------------------------------------------ report
    t = _step("comparison report")
    from midlevel.report import compare
    extra = sorted(coef_dir.glob("*.png")) + sorted(charts_dir.glob("*.png"))
    rep = compare([joint, blackbox], out / "report", cache_dir=cache_dir, methods=s.methods,
                  n_clips=s.n_explain, n_background=s.n_background, concept=concept,
                  n_steps=s.n_steps, n_samples=s.n_samples, progress=not quiet,
                  extra_figures=[(f"concept explanation: {p.stem}", p) for p in extra],
                  extra_tables={"event_check": (EVENT_TEXT, event_table)},
                  title="midlevel demo: concept bottleneck vs black box on synthetic data")
    _print_report_summary(rep)
    outputs["report (HTML, self-contained)"] = rep.html
    outputs["report (Markdown)"] = rep.markdown
    outputs["report tables (CSV)"] = rep.out / "tables"
    _done(t)

    print(f"\n== outputs (total {time.perf_counter() - start:.0f} s)")
    for name, path in outputs.items():
        print(f"{name:>38}: {path}")
    return 0


EVENT_TEXT = ("Controlled check (EventTask): a small black box learns a target decided by the "
              "energy in a known time-frequency box (with distractor events elsewhere). "
              "share: positive attribution inside the box; area_share: the box's share of the "
              "input; deletion areas: attribution order vs random (lower = more faithful).")


def event_check(*, steps: int = 150, n_clips: int = 6, seed: int = 0):
    """Train the controlled :class:`EventTask` model and measure SHAP and IG on it.

    Returns a table: method, share, area_share, ratio, deletion_area, deletion_area_random,
    ms_per_clip.
    """
    import numpy as np
    import pandas as pd
    import torch

    from midlevel.explain.attribution import attribute
    from midlevel.explain.faithfulness import (
        EventTask, area_summary, curve_areas, deletion_curves, event_share,
    )
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest
    try:
        task = EventTask()
        model = task.train_model(steps=steps, seed=seed)
        x, y = task.sample(64, seed=seed + 1)
        strong = np.argsort(-y[:, 0].numpy())[:n_clips]
        bg, _ = task.sample(16, seed=seed + 2)
        rows = []
        for method in ("shap_deep", "integrated_gradients"):
            attr = attribute(model, x[strong], method=method, background=bg)
            share = event_share(attr, task.box)
            area = area_summary(curve_areas(deletion_curves(model, attr, steps=10))).iloc[0]
            rows.append({"method": method, "share": share["share"].mean(),
                         "area_share": share["area_share"].mean(),
                         "ratio": share["ratio"].mean(), "deletion_area": area["attribution"],
                         "deletion_area_random": area["random"],
                         "ms_per_clip": attr.ms_per_clip})
        return pd.DataFrame(rows)
    finally:
        torch.set_num_threads(old)


def _clip_records(truth: dict) -> dict:
    """clip id -> ground-truth record (tolerates a list or a mapping under 'clips')."""
    clips = truth.get("clips", {})
    if isinstance(clips, list):
        return {str(c.get("id", c.get("clip", i))): c for i, c in enumerate(clips)}
    return {str(k): v for k, v in clips.items()}


def _changed_concept(records: dict, clips) -> str | None:
    for c in clips:
        change = (records.get(str(c)) or {}).get("change")
        if change:
            return change.get("concept")
    return None


def _print_report_summary(rep) -> None:
    cost = rep.tables.get("cost")
    if cost is not None and len(cost):
        print("explanation cost (ms per clip): " + "; ".join(
            f"{r.model}/{r.method} {r.ms_per_clip:.0f}" for r in cost.itertuples()))
    faith = rep.tables.get("faithfulness")
    if faith is not None and len(faith):
        d = faith[faith["mode"] == "deletion"]
        print("deletion area (attribution vs random): " + "; ".join(
            f"{r.model}/{r.method} {r.attribution:.2f} vs {r.random:.2f}" for r in d.itertuples()))
    comp = rep.tables.get("completeness")
    if comp is not None and len(comp):
        row = comp[(comp["metric"] == "r") & (comp["name"] == "mean")]
        for r in row.itertuples():
            print(f"completeness ({r.model}, mean r): {r.completeness:.2f}")
