"""The explanation sections of the comparison report (:mod:`midlevel.workflows.compare`):
attribution maps and cost, the faithfulness harness, sanity checks, event shares, listen-back
audio and LIME's top components, each filling tables and figures of a
:class:`~midlevel.report.document.Report`."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from midlevel.explain.attribution.attributor import Attributor
from midlevel.explain.attribution.base import OutputSelector
from midlevel.explain.attribution.registry import LABELS, make_method
from midlevel.explain.faithfulness import event_share
from midlevel.explain.harness import (
    HarnessResult, clip_scores, compare_to_random, curve_areas, perturbation_curves,
)
from midlevel.explain.component_audio import components_csv, top_component_wavs
from midlevel.explain.listen_back import (
    common_gain, listen_back_csv, listen_back_parts, output_spread, write_listen_back,
)
from midlevel.explain.names import safe_name
from midlevel.explain.sanity import sanity_check
from midlevel.io import write_wav
from midlevel.plots.common import as_written, short_label
from midlevel.report.document import SECTION_TEXT, Report
from midlevel.workflows.compare_work import WorkStore, array_digest, run_fingerprint

log = logging.getLogger("midlevel.compare")

THIS_RUN = "this run"
EARLIER_RUN = "an earlier, interrupted run"
"""The cost table's ``timed_in``: an explanation computed by this compare, or one taken from
``.compare_work/`` (:mod:`.compare_work`), timed by the interrupted compare that stored it."""
REUSED_COST_NOTE = (
    f"Rows with timed_in '{EARLIER_RUN}' are explanations taken from an interrupted compare "
    f"into this folder: they were timed in another process at another time, under whatever "
    f"else the machine ran then, so their ms_per_clip (and their bars in the cost figure) is "
    f"not comparable with the rows timed in {THIS_RUN} on a shared machine; a compare into a "
    f"fresh folder times every explanation in one run.")


def fit_window(spec: np.ndarray, n_frames: int) -> np.ndarray:
    """The first ``n_frames`` of a spectrogram, zero-padded if it is shorter."""
    out = np.zeros((spec.shape[0], n_frames), dtype=np.float32)
    n = min(n_frames, spec.shape[1])
    out[:, :n] = spec[:, :n]
    return out


def attributions(report: Report, reps: dict, clips, methods, data, *, n_background, target,
                  faithfulness, randomization, n_random, sanity_clips, events, deletion_patch,
                  options, sanity_networks: int, work: WorkStore | None = None) -> dict:
    """Maps, cost, faithfulness (the harness), sanity checks and event shares of every method
    on the first run of each model; returns ``{(label, method): [Attribution per clip]}``.

    Each test clip is explained whole, through the windows ``predict`` averages (the number it
    reports), relative to the training background's mean (the removal reference too). With
    ``work``, each (model, method) result is stored as soon as it is done and taken from there
    when an interrupted compare with the same settings stored it (see
    :mod:`midlevel.workflows.compare_work`).
    """
    from midlevel.data.frontends import make_frontend
    fe = make_frontend(next(iter(reps.values())).frontend)
    costs, curves, shares, sanity = [], [], [], []
    maps = {}
    for label, run in reps.items():
        log.info("explaining %s (%s) on %d test clips", label, run.path, len(clips.names))
        # the background is read first: a stored result is reused only for the same crops
        bg = run.background(n_background, **data)
        fingerprint = {**run_fingerprint(run), "background": array_digest(bg.numpy())} \
            if work is not None else {}
        output = target or run.model.output_names[0]
        for method in methods:
            key = {**fingerprint, "label": label, "method": method, "output": output}
            done = work.load(key) if work is not None else None
            timed_in = THIS_RUN if done is None else EARLIER_RUN
            if done is None:
                done = _explain_with(run, label, method, output, bg, fe, clips, options,
                                     faithfulness=faithfulness, n_random=n_random,
                                     deletion_patch=deletion_patch,
                                     sanity_clips=sanity_clips if randomization else 0,
                                     sanity_networks=sanity_networks)
                if work is not None:
                    work.save(key, done)
            else:
                log.info("  %s: taken from the interrupted compare's results", method)
            maps[(label, method)] = done["attrs"]
            costs.append({**done["cost"], "timed_in": timed_in})
            log.info("  %s: %.0f ms per clip (timed in %s)", method,
                     done["cost"]["ms_per_clip"], timed_in)
            curves += done["curves"]
            if done["sanity"] is not None:
                sanity.append((label, method, done["sanity"]))
            if events:
                shares += [e.assign(model=label) for e in _event_shares(done["attrs"], events)]
        _map_figures(report, label, clips.names, methods, maps)
    _cost_tables(report, costs, methods)
    if curves:
        units = {c["model"]: c["units"] for c in costs}
        _faithfulness_tables(report, reps, pd.concat(curves, ignore_index=True), units)
    if sanity:
        _sanity_tables(report, sanity)
    if shares:
        e = pd.concat(shares, ignore_index=True)
        report.tables["event_share"] = e.groupby(["model", "method", "output"], sort=False)[
            ["share", "area_share", "ratio"]].mean().reset_index()
    return maps


def _explain_with(run, label, method, output, bg, fe, clips, options, *, faithfulness,
                  n_random, deletion_patch, sanity_clips, sanity_networks: int) -> dict:
    """One model with one method: ``attrs`` (one Attribution per clip, in the units
    ``predict`` reports), its ``cost`` row, faithfulness ``curves`` (a list of tables) and
    the ``sanity`` result (None without ``sanity_clips``); picklable, for the work store."""
    attributor = Attributor(run.model, method, output=output, background=bg, fps=run.fps,
                            band_frequencies=fe.band_frequencies, windows=run.window(),
                            frontend=fe, **options)
    attrs = [attributor.attribute(x[None, None], clips=[name]).in_rating_units()
             for name, x in zip(clips.names, clips.specs)]
    for attr in attrs:  # what is computed on access is computed now, so it can be stored
        attr.predictions
        attr.tables = {name: attr.tables[name] for name in attr.tables}
    curves = []
    if faithfulness:
        for i, (name, x, attr) in enumerate(zip(clips.names, clips.specs, attrs)):
            xb = torch.as_tensor(x)[None, None]
            c = perturbation_curves(attributor.rating_selector, xb, attr.values,
                                    attributor.reference_for(xb), method=method, clips=[name],
                                    n_random=n_random, patch=deletion_patch, first=i)
            curves.append(c.assign(model=label))
    sanity = (_sanity(run, attributor, clips, bg, sanity_clips, method, sanity_networks)
              if sanity_clips else None)
    return {"attrs": attrs, "cost": _cost_row(label, method, attrs, clips), "curves": curves,
            "sanity": sanity}


def _unit_field(attr) -> str:
    """For Grad-CAM, how many input bins one unit of its layer sees (``"bands x frames"``):
    the map cannot place evidence more finely than that; empty for the other methods."""
    if "gradcam" not in attr.tables:
        return ""
    t = attr.tables["gradcam"]
    if t.empty or t["field_bands"].isna().all():
        return "unknown"
    return f"{int(t['field_bands'].iloc[0])} x {int(t['field_frames'].iloc[0])}"


def _cost_row(label, method, attrs, clips) -> dict:
    gaps = [float(np.abs(a.additivity_gap()).mean()) for a in attrs if a.expected is not None]
    seconds = sum(a.seconds for a in attrs)
    return {"model": label, "method": method, "label": LABELS[method],
            "unit_field_bins": _unit_field(attrs[0]),
            "output": attrs[0].output, "units": attrs[0].units, "ms_per_clip": 1000 * seconds / len(attrs),
            "n_clips": len(attrs), "mean_frames": float(np.mean([s.shape[1]
                                                                 for s in clips.specs])),
            "mean_abs_additivity_gap": float(np.mean(gaps)) if gaps else np.nan}


def _sanity(run, attributor, clips, bg, n: int, method: str, networks: int):
    """Cascading randomization with both floors on the first ``n`` clips, one window each,
    against ``networks`` independent full randomizations (seeds 1 .. networks)."""
    n_frames = run.window()[0]
    x = torch.stack([torch.as_tensor(fit_window(s, n_frames)) for s in clips.specs[:n]])
    f = OutputSelector(run.model, attributor.kind, attributor.index).eval()
    # randomized networks: SHAP's additivity assertion is about float error, not the check
    method_impl = make_method(method, **{**attributor.options, "check_additivity": False})
    return sanity_check(f, method_impl, x[:, None], bg.mean(0, keepdim=True), name=method,
                        background=bg, clips=clips.names[:n], n_random=networks)


def _sanity_tables(report, results) -> None:
    """Verdicts (trained vs randomized against both floors) and the cascade curves."""
    verdicts, cascades, floors = [], [], []
    for label, method, res in results:
        verdicts.append(res.verdict.assign(model=label))
        cascades.append(res.cascade.assign(model=label))
        floors.append(res.floors.assign(model=label))
    v = pd.concat(verdicts, ignore_index=True)
    report.tables["sanity"] = v[v["similarity"] == "spearman_abs"].reset_index(drop=True)
    report.tables["sanity_cascade"] = pd.concat(cascades, ignore_index=True)
    report.tables["sanity_floors"] = pd.concat(floors, ignore_index=True)
    from midlevel.plots.attribution import sanity_plot
    for label in dict.fromkeys(v["model"]):
        fig = sanity_plot(report.tables["sanity_cascade"].query("model == @label"),
                          report.tables["sanity_floors"].query("model == @label"))
        report.figures[f"Cascading randomization of {label}: similarity of the maps to the "
                       f"trained ones, top layer down (stage k: the k-th stage listed in "
                       f"tables/sanity_cascade.csv, which names its layers), with the two "
                       f"floors"] = \
            report.save_figure(fig, f"sanity_{safe_name(label)}.png")


def _event_shares(attrs, events) -> list[pd.DataFrame]:
    out = []
    for attr in attrs:
        box = events.get(attr.clips[0])
        if box is not None:
            out.append(event_share(attr, box))
    return out


def _map_figures(report, label, names, methods, maps):
    """The maps of the first clip, one panel per method, and the first method's profile."""
    import matplotlib.pyplot as plt

    from midlevel.plots.attribution import attribution_figure, attribution_map
    fig, axes = plt.subplots(len(methods), 1, figsize=(8, 2.3 * len(methods)),
                             constrained_layout=True, squeeze=False)
    for ax_, method in zip(axes[:, 0], methods):
        first = maps[(label, method)][0]
        attribution_map(first, 0, ax=ax_)
        as_written(ax_.set_title(f"{LABELS[method]}: {label} -> {first.output}, clip "
                                 f"{short_label(names[0])}", fontsize=9))
    report.figures[f"Attribution maps of {label} (clip {names[0]})"] = \
        report.save_figure(fig, f"maps_{safe_name(label)}.png")
    fig = attribution_figure(maps[(label, methods[0])][0], 0)
    report.figures[f"{LABELS[methods[0]]} of {label}: map, time curve, frequency profile"] = \
        report.save_figure(fig, f"profile_{safe_name(label)}.png")


def _cost_tables(report, costs, methods) -> None:
    """The cost table (a row per model and method, ``timed_in`` saying which process timed
    it), its figure, and, where some rows were reused, a note that they are not comparable."""
    import matplotlib.pyplot as plt
    report.tables["cost"] = pd.DataFrame(costs)
    if (report.tables["cost"]["timed_in"] == EARLIER_RUN).any():
        report.texts["cost"] = f"{SECTION_TEXT['cost']} {REUSED_COST_NOTE}"
    fig, ax = plt.subplots(figsize=(7, 3), constrained_layout=True)
    cost = report.tables["cost"].pivot_table(index="method", columns="model",
                                             values="ms_per_clip")
    models = list(dict.fromkeys(report.tables["cost"]["model"]))  # the runs' order, as the
    cost.reindex(index=methods, columns=models).plot.bar(ax=ax, logy=True, rot=20)  # metrics'
    ax.legend(fontsize=8)
    ax.set_ylabel("ms per clip (log)")
    ax.set_xlabel("")
    report.figures["Explanation cost per clip"] = report.save_figure(fig, "cost.png")


def _faithfulness_tables(report, reps, curves, units: dict) -> None:
    """The harness's tables per model: per-clip scores, and per method the areas, the share
    of clips where MoRF beats random and the area-between gain with its interval."""
    import matplotlib.pyplot as plt

    from midlevel.plots.attribution import perturbation_plot
    summaries, scores_all = [], []
    for label in reps:
        c = curves[curves["model"] == label].drop(columns="model")
        areas = curve_areas(c)
        scores = clip_scores(areas)
        result = HarnessResult(c, areas, scores, compare_to_random(scores))
        for mode in ("deletion", "insertion"):
            summaries.append(result.summary(mode).assign(model=label, mode=mode))
        scores_all.append(scores.assign(model=label))
    cols = ["model", "mode"]
    summary = pd.concat(summaries, ignore_index=True)
    report.tables["faithfulness"] = summary[cols + [c for c in summary if c not in cols]]
    report.tables["faithfulness_clips"] = pd.concat(scores_all, ignore_index=True)
    for mode in ("deletion", "insertion"):
        fig, axes = plt.subplots(1, len(reps), figsize=(4.5 * len(reps), 3.3),
                                 constrained_layout=True, squeeze=False)
        for ax_, label in zip(axes[0], reps):
            perturbation_plot(curves[curves["model"] == label], mode=mode, ax=ax_,
                              units=units.get(label))
            as_written(ax_.set_title(f"{mode}: {label}", fontsize=9))
        report.figures[f"{mode.capitalize()} curves (mean over clips; MoRF solid, LeRF "
                       f"dotted, random dashed)"] = \
            report.save_figure(fig, f"{mode}.png")


def _top_concept(run, output: str) -> str:
    w = run.model.head_layer.weight.detach().numpy()
    j = run.model.output_names.index(output) if output in run.model.output_names else 0
    return run.concept_names[int(np.argmax(np.abs(w[j])))]


def file_stem(clip: str, *parts: str) -> str:
    """A file name's stem for a clip's files: each part file-safe, the clip's cut to 60
    characters first, so that the parts after it (run, output, method) always survive and
    two outputs of one clip never share a file (a whole stem cut to the name limit lost
    them: valence and a concept wrote the same wavs)."""
    return "_".join([safe_name(clip)[:60].rstrip("_") or "x", *map(safe_name, parts)])


def clip_audio(clips, i: int, fe) -> np.ndarray:
    """The audio of explained clip ``i`` at the front end's rate (peak-normalized over the
    whole file, as its features), cut to the frames its spectrogram and every map cover (the
    first ``--seconds``): ``(n_samples,)`` with ``fe.num_frames(n_samples)`` equal to
    ``clips.specs[i].shape[-1]``. Every use of a clip's audio in the report goes through here,
    so audio and maps cover the same seconds."""
    from midlevel.data.audio import load_audio
    y = np.asarray(load_audio(clips.paths[i], sample_rate=fe.sample_rate))
    n_frames = int(clips.specs[i].shape[-1])
    if fe.num_frames(len(y)) <= n_frames:
        return y
    n = min(len(y), int(np.floor(n_frames * fe.hop)))
    while n > 0 and fe.num_frames(n) > n_frames:
        n -= 1
    return y[:n]


def listening(report: Report, reps, clips, maps, methods, data, *, n_background, concept,
               options) -> None:
    """Listenable explanations of the first clip: the "for" and "against" evidence of each
    model's output (and, for a bottleneck, of its most-weighted or the given concept), each
    re-run through front end and model with the share of ``f(x) - f(ref)`` it keeps; and the
    top LIME components as wavs when a LIME method is compared. Every wav of the clip, the
    original's included, is multiplied by one factor (``common_gain``) so that none is
    clipped; the report's labels and the ``gain`` column give it."""
    from midlevel.data.frontends import make_frontend
    out = report.out
    fe = make_frontend(next(iter(reps.values())).frontend)
    name = clips.names[0]
    y = clip_audio(clips, 0, fe)
    method = "shap_deep" if "shap_deep" in methods else methods[0]
    shares, measured = [], []
    for label, run in reps.items():
        explained = [(maps[(label, method)][0], None)]
        if run.model.kind == "bottleneck":
            c_name = concept or _top_concept(run, explained[0][0].output)
            bg = run.background(n_background, **data)
            c_attr = Attributor(run.model, method, output=f"concept:{c_name}", background=bg,
                                fps=run.fps, band_frequencies=fe.band_frequencies,
                                windows=run.window(), frontend=fe, **options).attribute(
                clips.specs[0][None, None], clips=[name]).in_rating_units()
            explained.append((c_attr, c_name))
            from midlevel.plots.attribution import attribution_figure
            report.figures[f"{label}: what in clip {name} drives the concept '{c_name}' "
                           f"({LABELS[method]})"] = \
                report.save_figure(attribution_figure(c_attr, 0),
                                   f"concept_{safe_name(label)}_{safe_name(c_name)}.png")
        for attr, c_name in explained:
            what = f"concept '{c_name}'" if c_name else attr.output
            stem = file_stem(name, label, f"concept_{c_name}" if c_name else attr.output)
            attributor = Attributor(run.model, method, output=f"concept:{c_name}" if c_name
                                    else attr.output, background=run.background(
                                        n_background, **data), windows=run.window())
            x = torch.as_tensor(clips.specs[0])[None, None]
            spread, spread_of = output_spread(run, attributor.rating_selector, data,
                                              c_name or attr.output, attr.units)
            table, audio = listen_back_parts(
                y, attr.maps[0], attributor.rating_selector, fe,
                reference=attributor.removal_reference(x), clip=stem,
                parts=("for", "against", "complement"), spread=spread)
            measured.append((table, audio, label, what, attr.units, spread, spread_of))
    # one factor for every wav of the clip (the original's included): none is clipped, and
    # their relative loudness is kept
    gain = common_gain([y, *(a for m in measured for a in m[1].values())])
    scaled = f"; every wav of the clip scaled by {gain:.3g}" if gain < 1 else ""
    original = out / "audio" / f"{file_stem(name)}_original.wav"
    report.audio[f"{name}: original{scaled}"] = write_wav(original, gain * y, fe.sample_rate)
    for table, audio, label, what, units, spread, spread_of in measured:
        labels = {"clip": name, "model": label, "method": method, "output": what}
        table = write_listen_back(table, audio, out / "audio", gain=gain,
                                  sample_rate=fe.sample_rate, labels=labels)
        report.files.append(listen_back_csv(out / "audio", table["clip"].iloc[0]))
        shares.append(table.assign(**labels, units=units, spread_sd=spread, spread_of=spread_of,
                                   path=[os.path.relpath(p, out) for p in table["path"]]))
        for part, path, share, note in zip(table["part"], table["path"], table["share"],
                                           table["note"]):
            caveat = f"; {note.split(':')[0]}" if note else ""
            report.audio[f"{label}: {part} {what} ({LABELS[method]}; keeps "
                         f"{share:+.0%} of f(x) - f(ref){caveat}{scaled})"] = Path(path)
    report.tables["listen_back"] = pd.concat(shares, ignore_index=True)


def lime_components(report, reps, lime, clips, data, *, n_background, target,
                    options=None) -> None:
    """The top three components of the LIME explanation of the first clip, as wavs (NMF
    components also report their reconstruction error), with the maps' method ``options``
    (``n_samples``...)."""
    from midlevel.data.frontends import make_frontend
    fe = make_frontend(next(iter(reps.values())).frontend)
    y = clip_audio(clips, 0, fe)
    x = torch.as_tensor(clips.specs[0])[None, None]
    rows = []
    for label, run in reps.items():
        attributor = Attributor(run.model, lime, output=target or run.model.output_names[0],
                                background=run.background(n_background, **data),
                                windows=run.window(), frontend=fe, **(options or {}))
        attr = attributor.attribute(x, clips=clips.names[:1])
        comps, weights = attributor.impl.components_[0], attributor.impl.weights_[0].mean(0)
        direction = 1.0 if attr.predictions[0] >= (attr.expected or 0.0) else -1.0
        stem = file_stem(clips.names[0], label, lime)
        table = top_component_wavs(y, comps, weights, fe, report.out / "audio", top=3,
                                   clip=stem, direction=direction)
        report.files.append(components_csv(report.out / "audio", stem))
        for _, row in table.iterrows():
            report.audio[f"{label}: {LABELS[lime]} component {row['name']} (evidence rank "
                         f"{int(row['rank'])})"] = Path(row["path"])
        rows.append(table.assign(model=label, method=lime, nmf_error=comps.error,
                                 path=[os.path.relpath(p, report.out) for p in table["path"]]))
    report.tables["lime_components"] = pd.concat(rows, ignore_index=True)
