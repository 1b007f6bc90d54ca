"""The comparison workflow: black box and concept bottleneck(s) side by side (``midlevel
compare``).

:func:`compare` takes runs (several seeds per kind allowed) and writes into ``out``:

- ``report.md``: Markdown with every table and links to figures and wavs;
- ``report.html``: one self-contained page (figures and audio players embedded as base64);
- ``tables/*.csv``: the tidy tables (metrics per run and summarized over seeds, completeness,
  the leakage diagnostic, explanation cost per clip per method, faithfulness areas against
  random orders, randomization check, event shares);
- ``figures/*.png`` and ``audio/*.wav``.

Accuracy comes from each run's test split; explanations (attribution maps, cost, faithfulness,
listenable wavs) from the first run of each mode on the first ``n_clips`` test clips. Each
analysis is one function below; :mod:`midlevel.report.document` renders the result.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from midlevel.errors import ReportError
from midlevel.explain.attribution.attributor import Attributor
from midlevel.explain.attribution.registry import LABELS, resolve_method
from midlevel.explain.faithfulness import (
    area_summary, completeness, curve_areas, event_share, perturbation_curves,
    randomization_check,
)
from midlevel.explain.leakage import leakage_diagnostic
from midlevel.explain.listen import listenable
from midlevel.io import save_figure, write_wav
from midlevel.report.document import Report, model_label, write_report
from midlevel.run import load_run
from midlevel.training.data import window_frames

log = logging.getLogger("midlevel.compare")

__all__ = ["compare", "run_metrics", "summarize_metrics", "DEFAULT_METHODS"]

DEFAULT_METHODS = ("shap_deep", "shap_gradient", "integrated_gradients", "gradient_shap",
                   "deeplift", "occlusion")


def run_metrics(runs, *, spec=None, root=None, cache_dir=None) -> pd.DataFrame:
    """Test-split metrics of every run (from the run's metrics.csv, or recomputed on ``spec``),
    with columns model (mode; "blackbox" for black boxes), run, seed first."""
    frames = []
    for run in runs:
        if spec is not None:
            m = run.evaluate(spec, root=root, splits=("test",), cache_dir=cache_dir)
        else:
            m = run.metrics
            m = m[m["split"] == "test"]
        m = m.copy()
        m.insert(0, "seed", run.config.seed)
        m.insert(0, "run", str(run.path))
        m.insert(0, "model", model_label(run))
        frames.append(m)
    return pd.concat(frames, ignore_index=True)


def summarize_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over runs (seeds) per model, kind and name of r, R^2 and RMSE."""
    g = metrics.groupby(["model", "kind", "name"], sort=False)
    return g.agg(n_runs=("run", "nunique"), r=("r", "mean"), r_std=("r", "std"),
                 r2=("r2", "mean"), r2_std=("r2", "std"), rmse=("rmse", "mean"),
                 rmse_std=("rmse", "std")).reset_index()


def test_clips(run, *, spec, root, cache_dir, n_clips: int, max_seconds: float | None):
    """(names, spectrograms (n, 1, bands, frames) cropped to a common length, audio paths)
    of the first ``n_clips`` test clips (validation clips if the test split is empty)."""
    table = run.annotations(spec, root=root)
    split = "test" if (table["split"] == "test").any() else "validation"
    rows, specs = run.data(split, spec=spec, root=root, cache_dir=cache_dir)
    rows, specs = rows.head(n_clips), specs[:n_clips]
    n_frames = min(min(s.shape[1] for s in specs),
                   window_frames(max_seconds or run.config.crop_seconds, run.fps))
    x = torch.as_tensor(np.stack([np.asarray(s[:, :n_frames], dtype=np.float32)
                                  for s in specs])).unsqueeze(1)
    return list(rows.index.astype(str)), x, list(rows["path"])


def compare(runs, out, *, spec=None, root=None, cache_dir=None, methods=DEFAULT_METHODS,
            n_clips: int = 3, n_background: int = 16, target: str | None = None,
            concept: str | None = None, faithfulness: bool = True, randomization: bool = True,
            listen: bool = True, max_seconds: float | None = None, steps: int = 10,
            events: dict | None = None, extra_figures: list | None = None,
            extra_tables: dict | None = None,
            deletion_patch: tuple[int, int] | None = (8, 16),
            title: str = "midlevel comparison report", **options) -> Report:
    """Compare runs on the same test split and write the report (see the module docstring).

    Parameters
    ----------
    runs : Runs or run directories (black box and bottleneck(s); several seeds allowed).
    spec : data spec for the test split (default: the one stored with the first run).
    methods : attribution methods compared (cost, faithfulness, maps).
    n_clips : test clips explained per model; n_background : background crops (training split).
    target : explained target output (default the first); concept : bottleneck concept made
        listenable (default the concept with the largest |head weight| on the target).
    faithfulness : deletion / insertion areas against random orders (``steps`` fractions;
        ``deletion_patch`` = (bands, frames) ranks and removes whole patches, default 8 bands
        x 16 frames, about a third of an octave x half a second; None: single bins, which
        on real music makes unnatural inputs the network overreacts to).
    randomization : model-parameter randomization check for SHAP DeepExplainer and IG.
    max_seconds : explained excerpt length (default each run's training crop).
    events : clip -> (band_start, band_stop, frame_start, frame_stop) of a known deciding event;
        adds the share of attribution inside it.
    extra_figures : (caption, png path) pairs appended to the report (e.g. concept charts).
    extra_tables : name -> (description, DataFrame) added as sections (and CSV).
    options : passed to ``Attributor`` (n_steps, n_samples, window, stride, batch_size).

    Returns
    -------
    Report (progress is logged on the ``midlevel.compare`` logger)
    """
    runs = [load_run(r) for r in runs]
    if not runs:
        raise ReportError("compare needs at least one run")
    for run in runs[1:]:
        if run.frontend != runs[0].frontend:
            raise ReportError(f"runs use different front ends ({runs[0].path}: "
                              f"{runs[0].frontend}; {run.path}: {run.frontend}); compare runs "
                              f"trained on the same features")
    out = Path(out)
    for sub in ("tables", "figures", "audio"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    report = Report(out=out)
    methods = [resolve_method(m) for m in methods]
    _accuracy(report, runs, spec=spec, root=root, cache_dir=cache_dir)
    _leakage(report, runs, spec=spec, root=root, cache_dir=cache_dir)
    reps = {}
    for run in runs:
        reps.setdefault(model_label(run), run)
    names, x, paths = test_clips(runs[0], spec=spec, root=root, cache_dir=cache_dir,
                                 n_clips=n_clips, max_seconds=max_seconds)
    data = {"spec": spec, "root": root, "cache_dir": cache_dir}
    maps = _attributions(report, reps, names, x, methods, data, n_background=n_background,
                         target=target, faithfulness=faithfulness, randomization=randomization,
                         steps=steps, events=events, deletion_patch=deletion_patch,
                         options=options)
    if listen:
        _listening(report, reps, names, x, paths[0], maps, methods, data,
                   n_background=n_background, concept=concept, options=options)
    for caption, p in extra_figures or []:
        report.figures[caption] = Path(p)
    for name, (text, table) in (extra_tables or {}).items():
        report.tables[name] = table
        report.texts[name] = text
        report.notes.append(name)
    write_report(report, runs, title, methods, names)
    log.info("report written: %s", report.html)
    return report


# ------------------------------------------------------------------------------ analyses


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


def _accuracy(report: Report, runs, **data) -> None:
    """Metrics per run and over seeds, completeness against the black box, and a figure."""
    import matplotlib.pyplot as plt
    metrics = run_metrics(runs, **data)
    summary = summarize_metrics(metrics)
    report.tables["metrics_runs"] = metrics
    report.tables["metrics"] = summary
    models = list(dict.fromkeys(metrics["model"]))
    if "blackbox" in models and len(models) > 1:
        rows = []
        for m in models:
            if m == "blackbox":
                continue
            sub = metrics[metrics["model"].isin([m, "blackbox"])].copy()
            sub["model"] = np.where(sub["model"] == "blackbox", "blackbox", "bottleneck")
            sub = sub[sub["name"] != "mean"]
            c = completeness(sub, metric="r")  # a ratio of R^2 values is meaningless below 0
            c.insert(0, "metric", "r")
            c.insert(0, "model", m)
            c.columns = ["model", "metric", "name", "bottleneck", "blackbox", "completeness"]
            rows.append(c)
        report.tables["completeness"] = pd.concat(rows, ignore_index=True)
    fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
    tgt = summary[(summary["kind"] == "target")]
    names = list(dict.fromkeys(tgt["name"]))
    width = 0.8 / max(1, len(models))
    for k, m in enumerate(models):
        d = tgt[tgt["model"] == m].set_index("name").reindex(names)
        ax.bar(np.arange(len(names)) + k * width, d["r"], width,
               yerr=d["r_std"].fillna(0), label=m, capsize=2)
    ax.set_xticks(np.arange(len(names)) + width * (len(models) - 1) / 2, names, rotation=30)
    ax.set_ylabel("Pearson r (test)")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.legend(fontsize=8)
    report.figures["Test accuracy per target (mean +- std over runs)"] = _save(
        fig, report.out / "figures" / "metrics.png")


def _leakage(report: Report, runs, **data) -> None:
    """The leakage diagnostic of every joint and sequential bottleneck (held-out clips)."""
    leaks = []
    for run in runs:
        if run.model.kind == "bottleneck" and run.mode in ("joint", "sequential"):
            leak = leakage_diagnostic(run, run.predictions(("validation", "test"), **data))
            leak.insert(0, "seed", run.config.seed)
            leak.insert(0, "model", model_label(run))
            leaks.append(leak)
    if leaks:
        report.tables["leakage"] = pd.concat(leaks, ignore_index=True)


def _attributions(report: Report, reps: dict, names, x, methods, data, *, n_background,
                  target, faithfulness, randomization, steps, events, deletion_patch,
                  options) -> dict:
    """Maps, cost, faithfulness, randomization and event shares of every method on the first
    run of each model; returns ``{(label, method): Attribution}``."""
    from midlevel.data.frontends import make_frontend
    from midlevel.plots.attribution import attribution_figure, attribution_map
    costs, areas, randoms, shares, curves = [], [], [], [], []
    maps = {}
    fe = make_frontend(next(iter(reps.values())).frontend)
    for label, run in reps.items():
        log.info("explaining %s (%s) on %d test clips", label, run.path, len(names))
        bg = run.background(n_background, n_frames=x.shape[-1], **data)
        output = target or run.model.output_names[0]
        # removed bins take the training background's mean (per band and frame), the same
        # reference the baselines of IG / DeepLift / occlusion use
        removed = bg.mean(0)[0]
        with torch.no_grad():
            out_bg = run.model(bg)
        unit = run.model.output_names.index(output) if output in run.model.output_names else 0
        min_span = 0.1 * float(out_bg.targets[:, unit].std())
        for method in methods:
            attr = Attributor(run.model, method, output=output, background=bg, fps=run.fps,
                              band_frequencies=fe.band_frequencies, **options).attribute(
                x, clips=names)
            maps[(label, method)] = attr
            gap = (float(np.nanmean(np.abs(attr.additivity_gap())))
                   if attr.expected is not None else np.nan)
            costs.append({"model": label, "method": method, "label": LABELS[method],
                          "output": attr.output, "ms_per_clip": attr.ms_per_clip,
                          "n_clips": len(names), "n_frames": x.shape[-1],
                          "mean_abs_additivity_gap": gap})
            log.info("  %s: %.0f ms per clip", method, attr.ms_per_clip)
            if faithfulness:
                for mode in ("deletion", "insertion"):
                    c = perturbation_curves(run.model, attr, mode=mode, steps=steps, n_random=1,
                                            baseline=removed, min_span=min_span,
                                            patch=deletion_patch)
                    a = curve_areas(c)
                    c.insert(0, "model", label)
                    a.insert(0, "model", label)
                    curves.append(c)
                    areas.append(a)
            if randomization and method in ("shap_deep", "integrated_gradients"):
                r = randomization_check(run.model, attr, background=bg, **options)
                r.insert(0, "model", label)
                randoms.append(r)
            if events:
                shares += _event_shares(attr, names, events, label)
        _map_figures(report, label, names, methods, maps, attribution_map, attribution_figure)
    _cost_tables(report, costs, methods)
    if areas:
        _faithfulness_tables(report, reps, pd.concat(areas, ignore_index=True),
                             pd.concat(curves, ignore_index=True))
    if randoms:
        r = pd.concat(randoms, ignore_index=True)
        report.tables["randomization_runs"] = r
        report.tables["randomization"] = r.groupby(["model", "method", "output"], sort=False)[
            ["spearman_abs", "spearman", "pearson", "top10_overlap"]].mean().reset_index()
    if shares:
        e = pd.concat(shares, ignore_index=True)
        report.tables["event_share"] = e.groupby(["model", "method", "output"], sort=False)[
            ["share", "area_share", "ratio"]].mean().reset_index()
    return maps


def _event_shares(attr, names, events, label) -> list[pd.DataFrame]:
    boxes = [events.get(c) for c in names]
    keep = [i for i, b in enumerate(boxes) if b is not None]
    if not keep:
        return []
    e = event_share(attr, [b if b is not None else (0, 0, 0, 0) for b in boxes]).iloc[keep]
    e.insert(0, "model", label)
    return [e]


def _map_figures(report, label, names, methods, maps, attribution_map, attribution_figure):
    """The maps of the first clip, one panel per method, and the first method's profile."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(methods), 1, figsize=(8, 2.3 * len(methods)),
                             constrained_layout=True, squeeze=False)
    for ax_, method in zip(axes[:, 0], methods):
        attribution_map(maps[(label, method)], 0, ax=ax_)
        ax_.set_title(f"{LABELS[method]}: {label} -> {maps[(label, method)].output}, "
                      f"clip {names[0]}", fontsize=9)
    report.figures[f"Attribution maps of {label} (clip {names[0]})"] = _save(
        fig, report.out / "figures" / f"maps_{label}.png")
    fig = attribution_figure(maps[(label, methods[0])], 0)
    report.figures[f"{LABELS[methods[0]]} of {label}: map, time curve, frequency profile"] = \
        _save(fig, report.out / "figures" / f"profile_{label}.png")


def _cost_tables(report, costs, methods) -> None:
    import matplotlib.pyplot as plt
    report.tables["cost"] = pd.DataFrame(costs)
    fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
    cost = report.tables["cost"].pivot_table(index="method", columns="model",
                                             values="ms_per_clip")
    cost.reindex(methods).plot.bar(ax=ax, logy=True, rot=20)
    ax.set_ylabel("ms per clip (log)")
    ax.set_xlabel("")
    report.figures["Explanation cost per clip"] = _save(fig, report.out / "figures" / "cost.png")


def _faithfulness_tables(report, reps, areas, curves) -> None:
    import matplotlib.pyplot as plt

    from midlevel.plots.attribution import perturbation_plot
    report.tables["faithfulness_areas"] = areas
    s = []
    for label in reps:
        a = area_summary(areas[areas["model"] == label].drop(columns="model"))
        a.insert(0, "model", label)
        s.append(a)
    report.tables["faithfulness"] = pd.concat(s, ignore_index=True)
    for mode in ("deletion", "insertion"):
        fig, axes = plt.subplots(1, len(reps), figsize=(4.5 * len(reps), 3.3),
                                 constrained_layout=True, squeeze=False)
        for ax_, label in zip(axes[0], reps):
            perturbation_plot(curves[curves["model"] == label].drop(columns="model"),
                              mode=mode, ax=ax_)
            ax_.set_title(f"{mode}: {label}", fontsize=9)
        report.figures[f"{mode.capitalize()} curves (mean over clips)"] = _save(
            fig, report.out / "figures" / f"{mode}.png")


def _fit_len(m: np.ndarray, n: int) -> np.ndarray:
    if m.shape[1] >= n:
        return m[:, :n]
    return np.pad(m, ((0, 0), (0, n - m.shape[1])))


def _top_concept(run, output: str) -> str:
    w = run.model.head_layer.weight.detach().numpy()
    j = run.model.output_names.index(output) if output in run.model.output_names else 0
    return run.concept_names[int(np.argmax(np.abs(w[j])))]


def _listening(report: Report, reps, names, x, path, maps, methods, data, *, n_background,
               concept, options) -> None:
    """Listenable wavs of the first clip: what drove each model's output, and for a
    bottleneck what drives its most-weighted (or the given) concept."""
    from midlevel.data.audio import load_audio
    from midlevel.data.frontends import make_frontend
    from midlevel.plots.attribution import attribution_figure
    out = report.out
    fe = make_frontend(next(iter(reps.values())).frontend)
    y_full = load_audio(path, sample_rate=fe.sample_rate)
    y = np.asarray(y_full[:min(len(y_full), int(round(x.shape[-1] * fe.hop)))])
    n_fr = fe.num_frames(len(y))  # the excerpt's frames are the first x.shape[-1] frames
    report.audio[f"{names[0]}: original excerpt"] = write_wav(
        out / "audio" / f"{names[0]}_original.wav", y, fe.sample_rate)
    method = "shap_deep" if "shap_deep" in methods else methods[0]
    for label, run in reps.items():
        attr = maps[(label, method)]
        sound = listenable(y, _fit_len(attr.maps[0], n_fr), fe)
        for part in ("masked", "complement"):
            what = "what drove" if part == "masked" else "the rest of the sound, not"
            report.audio[f"{label}: {what} {attr.output} ({LABELS[method]}, {part})"] = \
                write_wav(out / "audio" / f"{names[0]}_{label}_{attr.output}_{part}.wav",
                          sound[part], fe.sample_rate)
        if run.model.kind != "bottleneck":
            continue
        c_name = concept or _top_concept(run, attr.output)
        bg = run.background(n_background, n_frames=x.shape[-1], **data)
        c_attr = Attributor(run.model, method, output=f"concept:{c_name}", background=bg,
                            fps=run.fps, band_frequencies=fe.band_frequencies,
                            **options).attribute(x[:1], clips=names[:1])
        maps[(label, f"concept:{c_name}")] = c_attr
        report.figures[f"{label}: what in clip {names[0]} drives the concept '{c_name}' "
                       f"({LABELS[method]})"] = _save(
            attribution_figure(c_attr, 0), out / "figures" / f"concept_{label}_{c_name}.png")
        sound = listenable(y, _fit_len(c_attr.maps[0], n_fr), fe)
        for part in ("masked", "complement"):
            report.audio[f"{label}: what sounds '{c_name}' ({part})"] = write_wav(
                out / "audio" / f"{names[0]}_{label}_concept_{c_name}_{part}.wav",
                sound[part], fe.sample_rate)
