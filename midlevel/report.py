"""The comparison report: black box and concept bottleneck(s) side by side (``midlevel compare``).

:func:`compare` takes runs (several seeds per kind allowed) and writes into ``out``:

- ``report.md``: Markdown with every table and links to figures and wavs;
- ``report.html``: one self-contained page (figures and audio players embedded as base64);
- ``tables/*.csv``: the tidy tables (metrics per run and summarized over seeds, completeness,
  explanation cost per clip per method, faithfulness areas against random orders,
  randomization check, event shares);
- ``figures/*.png`` and ``audio/*.wav``.

Accuracy comes from each run's test split; explanations (attribution maps, cost, faithfulness,
listenable wavs) from the first run of each mode on the first ``n_clips`` test clips.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

__all__ = ["compare", "Report", "markdown_table", "write_html", "DEFAULT_METHODS"]

DEFAULT_METHODS = ("shap_deep", "shap_gradient", "integrated_gradients", "gradient_shap",
                   "deeplift", "occlusion")


@dataclass
class Report:
    """What :func:`compare` wrote: tables (name -> DataFrame), figures and audio (title ->
    path), the Markdown and HTML paths."""

    out: Path
    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    audio: dict = field(default_factory=dict)
    markdown: Path | None = None
    html: Path | None = None
    notes: list = field(default_factory=list)      # names of the extra tables, in order
    texts: dict = field(default_factory=dict)      # name -> description of extra tables


# ------------------------------------------------------------------------------ formatting


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "-"
        return f"{v:.3g}" if abs(v) >= 1000 or abs(v) < 0.001 and v != 0 else f"{v:.3f}"
    return str(v)


def markdown_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    """A pipe table (no extra dependency); long tables are cut with a note."""
    if df is None or len(df) == 0:
        return "_(empty)_\n"
    d = df.head(max_rows)
    lines = ["| " + " | ".join(str(c) for c in d.columns) + " |",
             "|" + "|".join("---" for _ in d.columns) + "|"]
    for _, row in d.iterrows():
        lines.append("| " + " | ".join(_fmt(v) for v in row.to_numpy()) + " |")
    if len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows in the CSV_")
    return "\n".join(lines) + "\n"


def _b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def write_html(path, title: str, sections: list[tuple[str, list]]) -> Path:
    """Write one self-contained HTML page.

    ``sections``: (heading, items) with items ``("text", str)``, ``("table", DataFrame)``,
    ``("figure", (caption, png path))`` or ``("audio", (caption, wav path))``; figures and
    audio are embedded as base64 data URIs.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto;"
             "padding:1em}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "figure{margin:.5em 0}img{max-width:100%}figcaption{font-size:13px;color:#444}"
             ".audio{display:flex;align-items:center;gap:1em;margin:.2em 0}"
             ".audio span{min-width:420px;font-size:13px}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for kind, value in items:
            if kind == "text":
                parts.append(f"<p>{html.escape(value)}</p>")
            elif kind == "table":
                parts.append(value.to_html(index=False, float_format=lambda v: _fmt(v),
                                           na_rep="-", border=0))
            elif kind == "figure":
                caption, p = value
                parts.append(f"<figure><img alt='{html.escape(caption)}' "
                             f"src='data:image/png;base64,{_b64(p)}'><figcaption>"
                             f"{html.escape(caption)}</figcaption></figure>")
            elif kind == "audio":
                caption, p = value
                parts.append(f"<div class='audio'><span>{html.escape(caption)}</span>"
                             f"<audio controls src='data:audio/wav;base64,{_b64(p)}'></audio>"
                             f"</div>")
    parts.append("</body></html>")
    path = Path(path)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------ metrics


def _label(run) -> str:
    return "blackbox" if run.model.kind == "blackbox" else run.mode


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
        m.insert(0, "model", _label(run))
        frames.append(m)
    return pd.concat(frames, ignore_index=True)


def summarize_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over runs (seeds) per model, kind and name of r, R^2 and RMSE."""
    g = metrics.groupby(["model", "kind", "name"], sort=False)
    out = g.agg(n_runs=("run", "nunique"), r=("r", "mean"), r_std=("r", "std"),
                r2=("r2", "mean"), r2_std=("r2", "std"), rmse=("rmse", "mean"),
                rmse_std=("rmse", "std")).reset_index()
    return out


# ------------------------------------------------------------------------------ clips


def _test_clips(run, *, spec, root, cache_dir, n_clips: int, max_seconds: float | None):
    """(names, spectrograms (n, 1, bands, frames) cropped to a common length, audio paths)."""
    from midlevel.data.cache import FeatureCache
    from midlevel.data.spec import DataSpec, load_annotations, load_spec
    stored = run.info.get("data") or {}
    if spec is None and root is None and stored.get("root"):
        root = stored["root"]  # the root the run was trained with
    spec = spec or stored.get("spec")
    if not isinstance(spec, DataSpec):
        spec = load_spec(spec, root=root)
    table = load_annotations(spec)
    rows = table[table["split"] == "test"]
    if len(rows) == 0:
        rows = table[table["split"] == "validation"]
    rows = rows.head(n_clips)
    cache = FeatureCache(cache_dir, run.frontend)
    cache.fill(rows["path"], jobs=1, progress=False)
    specs = [np.asarray(cache.get(p), dtype=np.float32) for p in rows["path"]]
    n_frames = min(s.shape[1] for s in specs)
    seconds = max_seconds or run.config.crop_seconds
    n_frames = min(n_frames, int(round(seconds * run.fps)) + 1)
    x = torch.as_tensor(np.stack([s[:, :n_frames] for s in specs])).unsqueeze(1)
    return list(rows.index.astype(str)), x, list(rows["path"]), spec


# ------------------------------------------------------------------------------ compare


def compare(runs, out, *, spec=None, root=None, cache_dir=None, methods=DEFAULT_METHODS,
            n_clips: int = 3, n_background: int = 16, target: str | None = None,
            concept: str | None = None, faithfulness: bool = True, randomization: bool = True,
            listen: bool = True, max_seconds: float | None = None, steps: int = 10,
            events: dict | None = None, extra_figures: list | None = None,
            extra_tables: dict | None = None,
            deletion_patch: tuple[int, int] | None = (8, 16),
            title: str = "midlevel comparison report", progress: bool = True,
            **options) -> Report:
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
    Report
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from midlevel.data.audio import load_audio
    from midlevel.data.frontends import make_frontend
    from midlevel.explain.attribution import LABELS, Attributor, resolve_method, training_background
    from midlevel.explain.contributions import as_run, write_csv
    from midlevel.explain.faithfulness import (
        area_summary, completeness, curve_areas, event_share, perturbation_curves,
        randomization_check,
    )
    from midlevel.explain.listen import listenable, write_wav
    from midlevel.plots.attribution import attribution_figure, attribution_map, perturbation_plot

    def say(msg):
        if progress:
            print(f"compare: {msg}", flush=True)

    runs = [as_run(r) for r in runs]
    if not runs:
        raise ValueError("compare needs at least one run")
    for run in runs[1:]:
        if run.frontend != runs[0].frontend:
            from midlevel.errors import MidlevelError
            raise MidlevelError(f"runs use different front ends ({runs[0].path}: "
                                f"{runs[0].frontend}; {run.path}: {run.frontend}); compare runs "
                                f"trained on the same features")
    out = Path(out)
    for sub in ("tables", "figures", "audio"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    report = Report(out=out)
    methods = [resolve_method(m) for m in methods]

    # ---------------------------------------------------------------- accuracy
    metrics = run_metrics(runs, spec=spec, root=root, cache_dir=cache_dir)
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
            for metric in ("r",):  # a ratio of R^2 values is meaningless when they go negative
                c = completeness(sub, metric=metric)
                c.insert(0, "metric", metric)
                c.insert(0, "model", m)
                c.columns = ["model", "metric", "name", "bottleneck", "blackbox", "completeness"]
                rows.append(c)
        report.tables["completeness"] = pd.concat(rows, ignore_index=True)

    leaks = []
    for run in runs:
        if run.model.kind == "bottleneck" and run.mode in ("joint", "sequential"):
            from midlevel.explain.contributions import split_predictions
            from midlevel.explain.leakage import leakage_diagnostic
            held = split_predictions(run, spec=spec, root=root, cache_dir=cache_dir,
                                     split=("validation", "test"))
            leak = leakage_diagnostic(run, held)
            leak.insert(0, "seed", run.config.seed)
            leak.insert(0, "model", _label(run))
            leaks.append(leak)
    if leaks:
        report.tables["leakage"] = pd.concat(leaks, ignore_index=True)

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
        fig, out / "figures" / "metrics.png")

    # ---------------------------------------------------------------- explanations
    reps = {}
    for run in runs:
        reps.setdefault(_label(run), run)
    costs, areas, randoms, shares, curves_all = [], [], [], [], []
    maps = {}
    clip_names, x, paths, spec_obj = _test_clips(runs[0], spec=spec, root=root,
                                                 cache_dir=cache_dir, n_clips=n_clips,
                                                 max_seconds=max_seconds)
    fe = make_frontend(runs[0].frontend)
    for label, run in reps.items():
        say(f"explaining {label} ({run.path}) on {len(clip_names)} test clips")
        bg = training_background(run, n_background, spec=spec_obj, cache_dir=cache_dir,
                                 n_frames=x.shape[-1])
        output = target or run.model.output_names[0]
        # removed bins take the training background's mean (per band and frame), the same
        # reference the baselines of IG / DeepLift / occlusion use
        removed = bg.mean(0)[0]
        with torch.no_grad():
            out_bg = run.model(bg)
        unit = run.model.output_names.index(output) if output in run.model.output_names else 0
        min_span = 0.1 * float(out_bg.targets[:, unit].std())
        for method in methods:
            attributor = Attributor(run.model, method, output=output, background=bg,
                                    fps=run.fps, band_frequencies=fe.band_frequencies, **options)
            attr = attributor.attribute(x, clips=clip_names)
            maps[(label, method)] = attr
            gap = (float(np.nanmean(np.abs(attr.additivity_gap())))
                   if attr.expected is not None else np.nan)
            costs.append({"model": label, "method": method, "label": LABELS[method],
                          "output": attr.output, "ms_per_clip": attr.ms_per_clip,
                          "n_clips": len(clip_names), "n_frames": x.shape[-1],
                          "mean_abs_additivity_gap": gap})
            say(f"  {method}: {attr.ms_per_clip:.0f} ms per clip")
            if faithfulness:
                for mode in ("deletion", "insertion"):
                    c = perturbation_curves(run.model, attr, mode=mode, steps=steps, n_random=1,
                                            baseline=removed, min_span=min_span,
                                            patch=deletion_patch)
                    c.insert(0, "model", label)
                    curves_all.append(c)
                    a = curve_areas(c.drop(columns="model"))
                    a.insert(0, "model", label)
                    areas.append(a)
            if randomization and method in ("shap_deep", "integrated_gradients"):
                r = randomization_check(run.model, attr, background=bg, **options)
                r.insert(0, "model", label)
                randoms.append(r)
            if events:
                boxes = [events.get(c) for c in clip_names]
                keep = [i for i, b in enumerate(boxes) if b is not None]
                if keep:
                    e = event_share(attr, [boxes[i] if boxes[i] is not None else (0, 0, 0, 0)
                                           for i in range(len(boxes))])
                    e = e.iloc[keep]
                    e.insert(0, "model", label)
                    shares.append(e)
        # maps of the first clip, one panel per method
        fig, axes = plt.subplots(len(methods), 1, figsize=(8, 2.3 * len(methods)),
                                 constrained_layout=True, squeeze=False)
        for ax_, method in zip(axes[:, 0], methods):
            attribution_map(maps[(label, method)], 0, ax=ax_)
            ax_.set_title(f"{LABELS[method]}: {label} -> {maps[(label, method)].output}, "
                          f"clip {clip_names[0]}", fontsize=9)
        report.figures[f"Attribution maps of {label} (clip {clip_names[0]})"] = _save(
            fig, out / "figures" / f"maps_{label}.png")
        first = maps[(label, methods[0])]
        fig = attribution_figure(first, 0)
        report.figures[f"{LABELS[methods[0]]} of {label}: map, time curve, frequency profile"] = \
            _save(fig, out / "figures" / f"profile_{label}.png")

    report.tables["cost"] = pd.DataFrame(costs)
    fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
    cost = report.tables["cost"].pivot_table(index="method", columns="model", values="ms_per_clip")
    cost.reindex(methods).plot.bar(ax=ax, logy=True, rot=20)
    ax.set_ylabel("ms per clip (log)")
    ax.set_xlabel("")
    report.figures["Explanation cost per clip"] = _save(fig, out / "figures" / "cost.png")

    if areas:
        areas = pd.concat(areas, ignore_index=True)
        report.tables["faithfulness_areas"] = areas
        s = []
        for label in reps:
            a = area_summary(areas[areas["model"] == label].drop(columns="model"))
            a.insert(0, "model", label)
            s.append(a)
        report.tables["faithfulness"] = pd.concat(s, ignore_index=True)
        curves = pd.concat(curves_all, ignore_index=True)
        for mode in ("deletion", "insertion"):
            fig, axes = plt.subplots(1, len(reps), figsize=(4.5 * len(reps), 3.3),
                                     constrained_layout=True, squeeze=False)
            for ax_, label in zip(axes[0], reps):
                perturbation_plot(curves[curves["model"] == label], mode=mode, ax=ax_)
                ax_.set_title(f"{mode}: {label}", fontsize=9)
            report.figures[f"{mode.capitalize()} curves (mean over clips)"] = _save(
                fig, out / "figures" / f"{mode}.png")
    if randoms:
        r = pd.concat(randoms, ignore_index=True)
        report.tables["randomization_runs"] = r
        report.tables["randomization"] = r.groupby(["model", "method", "output"], sort=False)[
            ["spearman_abs", "spearman", "pearson", "top10_overlap"]].mean().reset_index()
    if shares:
        e = pd.concat(shares, ignore_index=True)
        report.tables["event_share"] = e.groupby(["model", "method", "output"], sort=False)[
            ["share", "area_share", "ratio"]].mean().reset_index()

    # ---------------------------------------------------------------- listening
    if listen:
        y_full = load_audio(paths[0], sample_rate=fe.sample_rate)
        n_samples = min(len(y_full), int(round((x.shape[-1]) * fe.hop)))
        y = np.asarray(y_full[:n_samples])
        # the spectrogram frames of the excerpt are the first x.shape[-1] frames of the clip
        n_fr = fe.num_frames(len(y))
        report.audio[f"{clip_names[0]}: original excerpt"] = write_wav(
            out / "audio" / f"{clip_names[0]}_original.wav", y, fe.sample_rate)
        listen_method = "shap_deep" if "shap_deep" in methods else methods[0]
        for label, run in reps.items():
            attr = maps[(label, listen_method)]
            m = _fit_len(attr.maps[0], n_fr)
            sound = listenable(y, m, fe)
            for part in ("masked", "complement"):
                what = "what drove" if part == "masked" else "the rest of the sound, not"
                report.audio[f"{label}: {what} {attr.output} ({LABELS[listen_method]}, "
                             f"{part})"] = write_wav(
                    out / "audio" / f"{clip_names[0]}_{label}_{attr.output}_{part}.wav",
                    sound[part], fe.sample_rate)
            if run.model.kind == "bottleneck":
                c_name = concept or _top_concept(run, attr.output)
                bg = training_background(run, n_background, spec=spec_obj,
                                         cache_dir=cache_dir, n_frames=x.shape[-1])
                c_attr = Attributor(run.model, listen_method, output=f"concept:{c_name}",
                                    background=bg, fps=run.fps,
                                    band_frequencies=fe.band_frequencies,
                                    **options).attribute(x[:1], clips=clip_names[:1])
                maps[(label, f"concept:{c_name}")] = c_attr
                fig = attribution_figure(c_attr, 0)
                report.figures[f"{label}: what in clip {clip_names[0]} drives the concept "
                               f"'{c_name}' ({LABELS[listen_method]})"] = _save(
                    fig, out / "figures" / f"concept_{label}_{c_name}.png")
                sound = listenable(y, _fit_len(c_attr.maps[0], n_fr), fe)
                for part in ("masked", "complement"):
                    report.audio[f"{label}: what sounds '{c_name}' ({part})"] = write_wav(
                        out / "audio" / f"{clip_names[0]}_{label}_concept_{c_name}_{part}.wav",
                        sound[part], fe.sample_rate)

    for caption, p in extra_figures or []:
        report.figures[caption] = Path(p)
    for name, (text, table) in (extra_tables or {}).items():
        report.tables[name] = table
        report.texts[name] = text
        report.notes.append(name)

    # ---------------------------------------------------------------- write
    for name, table in report.tables.items():
        write_csv(table, out / "tables" / f"{name}.csv")
    _write_markdown(report, runs, title, methods, clip_names)
    report.html = write_html(out / "report.html", title, _sections(report, runs, methods,
                                                                   clip_names))
    say(f"report written: {report.html}")
    return report


def _fit_len(m: np.ndarray, n: int) -> np.ndarray:
    if m.shape[1] >= n:
        return m[:, :n]
    return np.pad(m, ((0, 0), (0, n - m.shape[1])))


def _top_concept(run, output: str) -> str:
    w = run.model.head_layer.weight.detach().numpy()
    j = run.model.output_names.index(output) if output in run.model.output_names else 0
    return run.concept_names[int(np.argmax(np.abs(w[j])))]


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


_TEXT = {
    "leakage": "Held-out clips: the bottleneck's head fed its own predicted concepts against "
               "the true concept ratings (r, R^2; accuracy for classes), and the meaning share "
               "(R^2 of the head's output on the concept ratings). A head that uses what the "
               "concepts mean loses little with the true ratings; a large loss, or a low "
               "meaning share, says target information passes through the predicted concepts "
               "beyond their meaning (see midlevel.explain.leakage).",
    "metrics": "Test-split accuracy per target, mean and std over the runs of each model "
               "(std is empty for a single run).",
    "completeness": "Completeness: the bottleneck's accuracy over the black box's (1 = the "
                    "concepts lose nothing).",
    "cost": "Explanation cost: wall time of one attribution call divided by the clips "
            "explained (one output, CPU).",
    "faithfulness": "Deletion / insertion: patches of the spectrogram removed (inserted) in "
                    "order of decreasing summed attribution towards the clip's deviation "
                    "from the fully perturbed input (attribution x the sign of that "
                    "deviation) vs a random order (a removed bin "
                    "takes the training background's mean); area under the output curve "
                    "normalized to run from "
                    "the clip's output to the fully perturbed one (clips whose output moves "
                    "less than a tenth of the background's spread are left out). "
                    "Faithful: deletion area below random, insertion area above; better_share "
                    "= share of clips where the attribution order beats random.",
    "randomization": "Model-parameter randomization check: rank correlation of the maps of the "
                     "trained model and of a fully re-initialized one (near 1 = the explanation "
                     "does not depend on what the model learned).",
    "event_share": "Share of positive attribution inside the known deciding event, against the "
                   "event's share of the input (ratio 1 = no better than uniform).",
}


def _runs_table(runs) -> pd.DataFrame:
    return pd.DataFrame([{"model": _label(r), "mode": r.mode, "seed": r.config.seed,
                          "preset": r.config.preset, "epochs": r.info.get("epochs"),
                          "run": str(r.path)} for r in runs])


def _write_markdown(report: Report, runs, title, methods, clips) -> None:
    out = report.out
    lines = [f"# {title}\n", f"Runs compared ({len(runs)}):\n", markdown_table(_runs_table(runs)),
             f"Explained: test clips {', '.join(clips)}; methods {', '.join(methods)}.\n"]
    for name in ("metrics", "completeness", "leakage", "cost", "faithfulness", "randomization",
                 "event_share", *report.notes):
        if name in report.tables:
            table = report.tables[name]
            if name == "metrics":
                table = table[table["kind"] == "target"]
            text = report.texts.get(name, _TEXT.get(name, ""))
            lines += [f"## {name.replace('_', ' ').capitalize()}\n", text + "\n",
                      markdown_table(table), f"CSV: `tables/{name}.csv`\n"]
    lines.append("## Figures\n")
    for caption, p in report.figures.items():
        rel = Path(p).relative_to(out) if Path(p).is_relative_to(out) else Path(p)
        lines.append(f"![{caption}]({rel})\n\n_{caption}_\n")
    if report.audio:
        lines.append("## Listenable explanations\n")
        for caption, p in report.audio.items():
            lines.append(f"- [{caption}]({Path(p).relative_to(out)})")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report.markdown = path


def _sections(report: Report, runs, methods, clips) -> list:
    sections = [("Runs", [("table", _runs_table(runs)),
                          ("text", f"Explained: test clips {', '.join(clips)}; methods "
                                   f"{', '.join(methods)}.")])]
    for name, heading in [("metrics", "Accuracy"), ("completeness", "Completeness"),
                          ("leakage", "Leakage diagnostic"),
                          ("cost", "Explanation cost"), ("faithfulness", "Faithfulness"),
                          ("randomization", "Randomization check"),
                          ("event_share", "Share of attribution inside the deciding event"),
                          *[(n, n.replace("_", " ").capitalize()) for n in report.notes]]:
        if name in report.tables:
            table = report.tables[name]
            if name == "metrics":
                table = table[table["kind"] == "target"]
            text = report.texts.get(name, _TEXT.get(name, ""))
            sections.append((heading, [("text", text), ("table", table)]))
    if report.audio:
        sections.append(("Listenable explanations",
                         [("text", "Masked: the positively attributed part of the sound "
                                   "(soft mask on the STFT, bands mapped back to bins); "
                                   "complement: everything else.")]
                         + [("audio", (c, p)) for c, p in report.audio.items()]))
    sections.append(("Figures", [("figure", (c, p)) for c, p in report.figures.items()]))
    return sections
