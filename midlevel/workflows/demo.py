"""The demo workflow: the main job end to end on a synthetic dataset (what ``make demo`` runs).

Steps: synthesize a dataset with known concepts -> validate -> cache features -> train a joint
concept bottleneck and a black box (small preset, a few epochs) -> the bottleneck's coefficients
-> per-clip concept charts (contributions, over time) -> SHAP maps of the black box and of a
bottleneck concept -> listenable wavs -> the comparison report (Markdown, CSV, figures, one
self-contained HTML page). Every step prints its time; the end prints where each output is.

Settings are chosen to finish in a few minutes on 2 CPU cores (torch runs one intra-op thread
unless ``$MIDLEVEL_THREADS`` says otherwise); ``quick`` shrinks everything for tests (well
under a minute). Progress and results go to the ``say`` callable (the CLI passes ``print``;
the default logs them on the ``midlevel.demo`` logger), never to stdout directly.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


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
                      "deeplift", "occlusion", "lrp", "gradcam", "lime_segments", "lime_nmf")
    n_explain: int = 6             # test clips in the report (a faithfulness verdict needs 6)
    n_background: int = 16
    n_steps: int = 32
    n_samples: int = 32
    bootstrap: int = 200
    n_charts: int = 2              # clips with per-clip concept charts and SHAP maps
    sanity_clips: int = 6          # clips of the cascading-randomization check (a verdict needs 6)
    lime_samples: int = 128

    @classmethod
    def pick(cls, *, quick: bool = False, n_clips: int | None = None) -> "DemoSettings":
        """Quick sizes (for tests; 20 clips) or the full ones, with ``n_clips`` if given."""
        if quick:
            return cls(n_clips=int(n_clips or 20), duration=3.0, crop_seconds=2.0, epochs=1, batch_size=8,
                       methods=("shap_deep", "integrated_gradients", "lime_patches"),
                       n_explain=1,
                       n_background=2, n_steps=4, n_samples=4, bootstrap=20, n_charts=1,
                       sanity_clips=1, lime_samples=16)
        return cls(n_clips=int(n_clips)) if n_clips else cls()


log = logging.getLogger("midlevel.demo")


class _Steps:
    """Step headings and timings through ``say``."""

    def __init__(self, say: Callable[[str], None]):
        self.say = say

    def start(self, title: str) -> float:
        self.say(f"\n== {title}")
        return time.perf_counter()

    def done(self, t: float) -> None:
        self.say(f"done in {time.perf_counter() - t:.1f} s")


def run_demo(out="demo_out", *, n_clips: int | None = None, seed: int = 0,
             quick: bool = False, say: Callable[[str], None] | None = None) -> int:
    """Run every step; report where each output is through ``say``; 0 on success, 1 when the
    synthetic dataset does not validate."""
    import torch

    say = say or log.info
    # small models on a small machine: one intra-op thread is several times faster than two
    # as soon as anything else runs (measured: 85 s vs 427 s for this demo on a busy 2-core
    # box); $MIDLEVEL_THREADS overrides. The caller's setting is restored afterwards.
    old = torch.get_num_threads()
    threads = int(os.environ.get("MIDLEVEL_THREADS", 1))
    torch.set_num_threads(threads)
    say(f"torch threads: {threads} (set MIDLEVEL_THREADS to change)")
    try:
        return _run_demo(Path(out), DemoSettings.pick(quick=quick, n_clips=n_clips), seed,
                         quick, say)
    finally:
        torch.set_num_threads(old)


def _run_demo(out: Path, s: DemoSettings, seed: int, quick: bool, say) -> int:
    import torch

    start = time.perf_counter()
    torch.manual_seed(seed)
    steps = _Steps(say)
    outputs: dict[str, Path] = {}
    spec, table, cache_dir = _data(out, s, seed, quick, steps, outputs)
    if spec is None:
        return 1
    runs = _train(out, s, seed, quick, spec, cache_dir, steps, outputs)
    joint, blackbox = runs["joint"], runs["blackbox"]
    # clips for the per-clip views: test clips, those with a mid-clip concept change first
    records = _clip_records(json.loads((out / "data" / "ground_truth.json").read_text()))
    test = table[table["split"] == "test"]
    ordered = sorted(test.index, key=lambda c: records.get(str(c), {}).get("change") is None)
    chart_clips = ordered[:s.n_charts]
    chart_paths = [str(test.loc[c, "path"]) for c in chart_clips]
    concept = _changed_concept(records, chart_clips) or joint.concept_names[0]
    coef_dir, charts_dir = _concepts(out, s, joint, chart_clips, chart_paths, cache_dir,
                                     steps, outputs)
    _attributions(out, s, joint, blackbox, chart_paths, concept, cache_dir, steps, outputs)

    t = steps.start("controlled check: attribution inside a known deciding event")
    event_table = event_check(steps=60 if quick else 150)
    say(event_table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    steps.done(t)

    t = steps.start("comparison report")
    from midlevel.workflows.compare import compare
    from midlevel.workflows.compare_checks import ignored_options
    extra = sorted(coef_dir.glob("*.png")) + sorted(charts_dir.glob("*.png"))
    # the demo's method settings, each only where a compared method takes it (compare notes
    # a given option that nothing uses)
    settings = {k: v for k, v in (("n_steps", s.n_steps), ("n_samples", s.n_samples))
                if not ignored_options(s.methods, {k: v}, faithfulness=True,
                                       deletion_patch=None)}
    rep = compare([joint, blackbox], out / "report", cache_dir=cache_dir, methods=s.methods,
                  n_clips=s.n_explain, n_background=s.n_background, concept=concept,
                  **settings, lime_samples=s.lime_samples,
                  sanity_clips=s.sanity_clips, n_repeats=2,
                  extra_figures=[(f"concept explanation: {p.stem}", p) for p in extra],
                  extra_tables={"event_check": (EVENT_TEXT, event_table)},
                  title="midlevel demo: concept bottleneck vs black box on synthetic data")
    for line in _report_summary(rep):
        say(line)
    outputs["report (HTML, self-contained)"] = rep.html
    outputs["report (Markdown)"] = rep.markdown
    outputs["report tables (CSV)"] = rep.out / "tables"
    steps.done(t)

    say(f"\n== outputs (total {time.perf_counter() - start:.0f} s)")
    for name, path in outputs.items():
        say(f"{name:>38}: {path}")
    return 0


def _demo_world(truth: dict, n_clips: int, duration: float, seed: int) -> bool:
    """Whether the ground truth of a dataset found in the demo's folder is of the world the
    demo synthesizes: its clips, duration and seed, and every other setting at
    ``synthesize``'s default (audit 21b: a world made with ``synth --correlated
    --change-fraction 0.9`` there was reused by the demo)."""
    import inspect

    from midlevel.synth.dataset import synthesize
    from midlevel.synth.world import load_weights
    default = {k: p.default for k, p in inspect.signature(synthesize).parameters.items()}
    settings = truth.get("settings", truth)
    wanted = {"n_clips": n_clips, "duration": float(duration), "seed": seed,
              "sample_rate": default["sample_rate"], "correlated": default["correlated"],
              "change_fraction": default["change_fraction"],
              "change_range": [float(v) for v in default["change_range"]],
              "noise": {"rating_noise": default["rating_noise"],
                        "target_noise": default["target_noise"]}}
    weights, intercepts = load_weights(None)
    target_map = truth.get("target_map") or {}
    return (all(settings.get(k) == v for k, v in wanted.items()) and "tags" not in truth
            and target_map.get("weights") == weights.to_dict(orient="index")
            and target_map.get("intercept") == intercepts.to_dict())


def _data(out, s, seed, quick, steps, outputs):
    """Synthesize (or reuse), validate and cache features: (spec, table, cache dir)."""
    from midlevel.data.annotations import load_annotations
    from midlevel.data.cache import FeatureCache
    from midlevel.data.spec import load_spec
    from midlevel.data.validate import validate
    from midlevel.synth.dataset import synthesize
    say = steps.say
    t = steps.start(f"synth: {s.n_clips} clips of {s.duration:g} s")
    data_dir = out / "data"
    spec_path, truth_path = data_dir / "spec.yaml", data_dir / "ground_truth.json"
    fresh = True
    if spec_path.is_file() and truth_path.is_file():
        fresh = not _demo_world(json.loads(truth_path.read_text()), s.n_clips, s.duration, seed)
    if fresh:
        synthesize(data_dir, n_clips=s.n_clips, seed=seed, duration=s.duration, n_jobs=2,
                   progress=not quick)
    else:
        say(f"reusing {data_dir}")
    steps.done(t)
    outputs["synthetic dataset"] = data_dir
    outputs["ground truth"] = truth_path

    t = steps.start("validate")
    spec = load_spec(spec_path)
    report = validate(spec, window=s.crop_seconds, progress=not quick)
    say(report.summary())
    if not report.ok:
        for problem in report.problems:
            say(f"  - {problem}")
        return None, None, None
    steps.done(t)

    t = steps.start("features")
    cache_dir = out / "cache"
    cache = FeatureCache(cache_dir)
    table = load_annotations(spec)
    stats = cache.fill(table["path"], jobs=2, progress=not quick)
    say(f"{stats.computed} computed, {stats.reused} reused")
    steps.done(t)
    outputs["feature cache"] = cache.folder
    return spec, table, cache_dir


def _train(out, s, seed, quick, spec, cache_dir, steps, outputs) -> dict:
    from midlevel.training.from_spec import train
    runs = {}
    for mode in ("joint", "blackbox"):
        t = steps.start(f"train {mode} ({s.preset} preset, {s.epochs} epochs, "
                        f"{s.crop_seconds:g} s crops)")
        run_dir = out / "runs" / mode
        config = {"crop_seconds": s.crop_seconds, "batch_size": s.batch_size, "lr": s.lr,
                  "patience": s.epochs, "seed": seed}
        runs[mode] = train(spec, run_dir, mode=mode, preset=s.preset, epochs=s.epochs,
                           config=config, cache_dir=cache_dir, overwrite=True,
                           progress=not quick)
        m = runs[mode].metrics
        test = m[(m["split"] == "test") & (m["name"] == "mean")]
        steps.say("test mean r: " + ", ".join(f"{k} {v:.2f}"
                                              for k, v in zip(test["kind"], test["r"])))
        steps.done(t)
        outputs[f"{mode} run"] = run_dir
    return runs


def _concepts(out, s, joint, chart_clips, chart_paths, cache_dir, steps, outputs):
    """Coefficients of the joint bottleneck and per-clip concept charts."""
    from midlevel.explain.coefficients import run_coefficients
    from midlevel.workflows.explain_concepts import explain_concepts
    t = steps.start("coefficients of the joint bottleneck")
    coef_dir = out / "coefficients"
    result = run_coefficients(joint, cache_dir=cache_dir, n_boot=s.bootstrap)
    result.write(coef_dir)
    for line in result.summary_lines():
        steps.say(line)
    outputs["coefficients"] = coef_dir
    steps.done(t)

    t = steps.start(f"per-clip concept charts ({', '.join(map(str, chart_clips))})")
    charts_dir = out / "concept_charts"
    res = explain_concepts(joint, chart_paths, charts_dir, cache_dir=cache_dir,
                           window=min(s.crop_seconds, s.duration / 2))
    for line in res.summary_lines():
        steps.say(line)
    outputs["per-clip concept charts"] = charts_dir
    steps.done(t)
    return coef_dir, charts_dir


def _attributions(out, s, joint, blackbox, chart_paths, concept, cache_dir, steps, outputs):
    """SHAP maps and listenable wavs of the black box and of a bottleneck concept."""
    from midlevel.workflows.explain_attributions import (
        explain_audio, explain_blackbox, run_background,
    )
    target = blackbox.model.output_names[0]
    t = steps.start(f"SHAP maps and listenable wavs of the black box (target {target})")
    shap_dir = out / "shap_blackbox"
    bg = run_background(blackbox, s.n_background, cache_dir=cache_dir)
    res = explain_blackbox(blackbox, chart_paths, shap_dir, targets=[target],
                           methods=("shap_deep",), cache_dir=cache_dir, progress=False,
                           background=bg)
    steps.say(f"SHAP DeepExplainer: {res.summary['ms_per_clip'].mean():.0f} ms per clip; max "
              f"additivity gap {res.summary['additivity_gap'].abs().max():.1e}")
    outputs["black-box SHAP maps and wavs"] = shap_dir
    steps.done(t)

    t = steps.start(f"SHAP maps and listenable wavs of a bottleneck concept ({concept})")
    concept_dir = out / "shap_concept"
    res_c = explain_audio(joint, chart_paths, concept_dir, outputs=[f"concept:{concept}"],
                          methods=("shap_deep",), cache_dir=cache_dir,
                          background=run_background(joint, s.n_background, cache_dir=cache_dir))
    steps.say(f"{len(res_c.files)} files written")
    outputs["bottleneck concept SHAP maps and wavs"] = concept_dir
    steps.done(t)


EVENT_TEXT = ("Controlled check (EventTask): a small black box learns a target decided by the "
              "energy in a known time-frequency box (with distractor events elsewhere). "
              "share: positive attribution inside the box; area_share: the box's share of the "
              "input; ratio: share / area_share; deletion areas (the harness, removal to the "
              "reference): most-relevant-first order against random orders (lower = more "
              "faithful); morf_better: share of clips where it beats random.")


def event_check(*, steps: int = 150, n_clips: int = 6, seed: int = 0,
                methods=("shap_deep", "integrated_gradients", "lrp", "gradcam",
                         "lime_patches")):
    """Train the controlled :class:`EventTask` model and measure ``methods`` on it.

    Returns a table: method, share, area_share, ratio, deletion_area, deletion_area_random,
    morf_better, ms_per_clip.
    """
    import numpy as np
    import pandas as pd
    import torch

    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.explain.faithfulness import event_share
    from midlevel.explain.harness import clip_scores, curve_areas, perturbation_curves
    from midlevel.testing.events import EventTask
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest
    try:
        task = EventTask()
        model = task.train_model(steps=steps, seed=seed)
        x, y = task.sample(64, seed=seed + 1)
        x = x[np.argsort(-y[:, 0].numpy())[:n_clips]]
        bg, _ = task.sample(16, seed=seed + 2)
        rows = []
        for method in methods:
            attributor = Attributor(model, method, background=bg, n_steps=16, n_samples=16,
                                    n_repeats=2)
            attr = attributor.attribute(x)
            share = event_share(attr, task.box)
            scores = clip_scores(curve_areas(perturbation_curves(
                attributor.selector, x, attr.values, attributor.reference_for(x),
                method=method, modes=("deletion",), n_random=5)))
            rows.append({"method": method, "share": share["share"].mean(),
                         "area_share": share["area_share"].mean(),
                         "ratio": share["ratio"].mean(), "deletion_area": scores["morf"].mean(),
                         "deletion_area_random": scores["random"].mean(),
                         "morf_better": scores["morf_better"].mean(),
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


def _report_summary(rep) -> list[str]:
    lines = []
    cost = rep.tables.get("cost")
    if cost is not None and len(cost):
        lines.append("explanation cost (ms per clip): " + "; ".join(
            f"{r.model}/{r.method} {r.ms_per_clip:.0f}" for r in cost.itertuples()))
    faith = rep.tables.get("faithfulness")
    if faith is not None and len(faith):
        d = faith[faith["mode"] == "deletion"]
        lines.append("deletion area, most relevant first vs random (lower = more faithful): "
                     + "; ".join(f"{r.model}/{r.method} {r.morf:.2f} vs {r.random:.2f}"
                                 for r in d.itertuples()))
    sanity = rep.tables.get("sanity")
    if sanity is not None and len(sanity):
        lines.append("sanity check (cascading randomization): " + "; ".join(
            f"{r.model}/{r.method} {r.verdict}" for r in sanity.itertuples()))
    comp = rep.tables.get("completeness")
    if comp is not None and len(comp):
        summary = comp["name"].astype(str).str.match(r"mean(:|$)")  # mean, mean:ratings...
        row = comp[(comp["metric"] == "r") & summary]
        lines += [f"completeness ({r.model}, {r.name} r): {r.completeness:.2f}"
                  for r in row.itertuples()]
    return lines
