"""The comparison workflow: black box and concept bottleneck(s) side by side (``midlevel
compare``).

:func:`compare` takes runs (several seeds per kind allowed) and writes into ``out``:

- ``report.md``: Markdown with every table and links to figures and wavs;
- ``report.html``: one self-contained page (figures and audio players embedded as base64);
- ``tables/*.csv``: the tidy tables (metrics per run and summarized over seeds, completeness,
  the leakage diagnostic, explanation cost per clip per method, faithfulness areas against
  random orders, randomization check, event shares);
- ``figures/*.png`` and ``audio/*.wav`` with the listen-back and LIME component tables
  beside them (``audio/*_listen_back.csv``, ``audio/*_components.csv``; no ``audio/`` without
  audio);
- ``report_files.json``: the files above, each recorded there before it is written; a later
  report into the same folder removes those of this one (or of an interrupted one) it does
  not write again (other files are left alone).

While it runs, each model's explanation by each method is kept in ``.compare_work/`` as soon
as it is done: a compare interrupted (a kill included) and run again into the same folder
with the same runs and settings takes those from there (:mod:`.compare_work`; the cost table
says which were timed in the interrupted run); the folder is removed once the report is
written.

Every run must have been trained on the same data (the same spec and test split; see
:func:`check_runs`), so runs of one mode are seeds of one model. Accuracy comes from each run's
test split; explanations (attribution maps, cost, faithfulness, listenable wavs) from the first
run of each mode on the first ``n_clips`` test clips. Each analysis is one function of
:mod:`.compare_accuracy` or :mod:`.compare_explanations`; :mod:`midlevel.report.document`
renders the result.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from midlevel import __version__
from midlevel.errors import CheckpointError, ReportError
from midlevel.explain.attribution.registry import resolve_method
from midlevel.explain.sanity import RECOMMENDED_NETWORKS as SANITY_NETWORKS
from midlevel.io import recording
from midlevel.report.document import MANIFEST, Report, model_label, write_report
from midlevel.workflows.compare_accuracy import (
    accuracy_tables, leakage_tables, run_metrics, summarize_metrics,
)
from midlevel.workflows.compare_checks import (
    DEFAULT_PATCH, check_explained, explained_target, ignored_options,
    sanity_clip_notes,
)
from midlevel.workflows.compare_work import WORK_DIR, WorkStore, array_digest
from midlevel.workflows.compare_explanations import attributions, lime_components, listening
from midlevel.run import load_run
from midlevel.data.frontends import window_frames
from midlevel.training.datarecord import read_splits, stored_audio_keys
from midlevel.checks import real_number, whole_number
from midlevel.choices import COMPARE_METHODS

log = logging.getLogger("midlevel.compare")

__all__ = ["compare", "run_metrics", "summarize_metrics", "check_explained", "check_runs",
           "explained_target", "training_data", "DEFAULT_METHODS"]

DEFAULT_METHODS = COMPARE_METHODS

@dataclass
class Clips:
    """The explained clips: names, whole spectrograms ``(n_bands, n_frames)``, audio paths,
    and notes for the user (fewer clips than asked for)."""

    names: list[str]
    specs: list[np.ndarray]
    paths: list[str]
    notes: list[str] = field(default_factory=list)


def test_clips(run, *, spec, root, cache_dir, n_clips: int,
               max_seconds: float | None = None) -> Clips:
    """The first ``n_clips`` test clips (validation clips if the test split is empty), whole,
    or their first ``max_seconds``; ArgumentError unless ``n_clips >= 1`` (a negative count
    must not act as a slice). A split with fewer clips than ``n_clips`` gives all of them and
    a note saying so."""
    n_clips = whole_number(n_clips, "n_clips (--clips)")
    table = run.annotations(spec, root=root)
    split = "test" if (table["split"] == "test").any() else "validation"
    rows, specs = run.data(split, spec=spec, root=root, cache_dir=cache_dir)
    notes = []
    if len(rows) < n_clips:
        notes.append(f"asked for {n_clips} clips (--clips); the {split} split has "
                     f"{len(rows)}: all {len(rows)} are explained")
    rows, specs = rows.head(n_clips), specs[:n_clips]
    if max_seconds:
        specs = [s[:, :window_frames(max_seconds, run.fps)] for s in specs]
    return Clips(list(rows.index.astype(str)), [np.asarray(s, dtype=np.float32) for s in specs],
                 list(rows["path"]), notes)


def compare(runs, out, *, spec=None, root=None, cache_dir=None, methods=DEFAULT_METHODS,
            n_clips: int = 6, n_background: int = 16, target: str | None = None,
            concept: str | None = None, faithfulness: bool = True, randomization: bool = True,
            listen: bool = True, max_seconds: float | None = None, n_random: int = 5,
            sanity_clips: int | None = None, sanity_networks: int = SANITY_NETWORKS,
            events: dict | None = None, extra_figures: list | None = None,
            extra_tables: dict | None = None,
            deletion_patch: tuple[int, int] | None = DEFAULT_PATCH,
            title: str = "midlevel comparison report", **options) -> Report:
    """Compare runs on the same test split and write the report (see the module docstring).

    Parameters
    ----------
    runs : Runs or run directories (black box and bottleneck(s); several seeds allowed).
    spec : data spec for the test split (default: the one stored with the first run).
    methods : attribution methods compared (cost, faithfulness, maps).
    n_clips : test clips explained per model (>= 1); n_background : background crops
        (training split, >= 1).
    target : explained target output, the same for every model (default: the first output,
        in the first run's order, that every model has; ReportError listing each run's
        outputs when none is shared: :func:`explained_target`); concept : bottleneck concept
        made listenable (default the concept with the largest |head weight| on the target).
    faithfulness : the harness (:mod:`midlevel.explain.harness`): MoRF and LeRF deletion and
        insertion against ``n_random`` random orders and their reverses, per clip, and per
        method a paired bootstrap interval and Wilcoxon test against random.
        ``deletion_patch`` = (bands, frames) ranks and removes whole patches, default 8 bands
        x 16 frames, about a third of an octave x half a second; None: single bins.
    randomization : cascading randomization with both floors (:mod:`midlevel.explain.sanity`)
        for every method, on the first ``sanity_clips`` of the explained clips (default
        ``n_clips``; more than the clips explained gives a note; a verdict needs 6, fewer
        give "too few clips for a verdict"), each clip's first window (zero-padded when
        shorter) and the model's output for that window, not the whole clip through
        ``predict``'s windows as the report's maps; against ``sanity_networks`` independent
        full randomizations (>= 2; default 8: with more than two the verdict's intervals
        cover the draw of the random networks as well as of the clips, where two networks'
        verdicts turned with the draw; a verdict whose upper end is near 0 can still differ
        between draws; ``benchmarks/sanity_networks_toy.py``).
    max_seconds : explained excerpt length (default: whole clips, through the windows
        ``predict`` averages).
    events : clip -> (band_start, band_stop, frame_start, frame_stop) of a known deciding event;
        adds the share of attribution inside it.
    extra_figures : (caption, png path) pairs appended to the report (e.g. concept charts).
    extra_tables : name -> (description, DataFrame) added as sections (and CSV).
    options : passed to ``Attributor`` (n_steps, n_samples, window, stride, batch_size); one
        that no method compared uses (and a ``deletion_patch`` other than the default without
        faithfulness) gives a note (``Report.warnings``) naming it.

    Every option (counts >= 1, seconds > 0, the target of every model, the concept of every
    bottleneck, the methods and their settings) and the runs (each given once, all trained
    on the same data: :func:`check_runs`) are checked and the test clips are read before the
    first file is written: a call that fails on its inputs writes no partial report. Fewer
    test clips than ``n_clips`` explains them all, with a note (``Report.warnings``).

    Returns
    -------
    Report (progress is logged on the ``midlevel.compare`` logger)
    """
    runs = [load_run(r) for r in runs]
    if not runs:
        raise ReportError("compare needs at least one run")
    check_runs(runs)
    check_seeds(runs)
    reps = {}
    for run in runs:
        reps.setdefault(model_label(run), run)
    methods = [resolve_method(m) for m in methods]
    if not methods:
        raise ReportError("compare needs at least one attribution method")
    n_clips = whole_number(n_clips, "n_clips (--clips)")
    n_background = whole_number(n_background, "n_background (--background)")
    sanity_clips = whole_number(n_clips if sanity_clips is None else sanity_clips,
                                "sanity_clips (--sanity-clips)", least=0)
    sanity_networks = whole_number(sanity_networks, "sanity_networks (--sanity-networks)",
                                   least=2)
    if faithfulness:
        whole_number(n_random, "n_random", least=5)
    max_seconds = real_number(max_seconds, "max_seconds (--seconds)", above=0, unit="seconds",
                              allow_none=True)
    if deletion_patch is not None:
        deletion_patch = whole_number(deletion_patch, "deletion_patch (--deletion-patch)", size=2)
    target = explained_target(reps, target)
    check_explained(reps, methods, target=target, concept=concept, options=options)
    ignored = ignored_options(methods, options, faithfulness=faithfulness,
                              deletion_patch=deletion_patch)
    # the clips are read before the first file is written (an empty split fails here)
    clips = test_clips(runs[0], spec=spec, root=root, cache_dir=cache_dir, n_clips=n_clips,
                       max_seconds=max_seconds)
    if not clips.names:
        raise ReportError(f"{runs[0].path}: no test or validation clip to explain")
    out = Path(out)
    for sub in ("tables", "figures"):  # audio/ only when something goes into it
        (out / sub).mkdir(parents=True, exist_ok=True)
    # every file is listed in report_files.json before it is written (a kill too); the
    # resumable work store is not the report's output
    with recording(out, MANIFEST, exclude=(WORK_DIR,)):
        report = Report(out=out, warnings=list(clips.notes) + ignored + sanity_clip_notes(
            sanity_clips if randomization else 0, len(clips.names)))
        accuracy_tables(report, runs, spec=spec, root=root, cache_dir=cache_dir)
        leakage_tables(report, runs, spec=spec, root=root, cache_dir=cache_dir)
        data = {"spec": spec, "root": root, "cache_dir": cache_dir}
        work = WorkStore(out, {
            "version": __version__, "clips": clips.names, "content": array_digest(clips.specs),
            "frames": [int(s.shape[-1]) for s in clips.specs], "n_background": n_background,
            "spec": str(getattr(spec, "path", spec)), "root": str(root), "options": options,
            "faithfulness": faithfulness, "n_random": n_random, "deletion_patch": deletion_patch,
            "sanity_clips": sanity_clips if randomization else 0,
            "sanity_networks": sanity_networks if randomization else 0})
        maps = attributions(report, reps, clips, methods, data, n_background=n_background,
                             target=target, faithfulness=faithfulness, randomization=randomization,
                             n_random=n_random, sanity_clips=sanity_clips,
                             sanity_networks=sanity_networks, events=events,
                             deletion_patch=deletion_patch, options=options, work=work)
        if work.reused:
            report.warnings.append(f"{work.reused} of {work.reused + work.computed} (model, "
                                   f"method) explanations were taken from an interrupted compare "
                                   f"into this folder with the same runs and settings (and timed "
                                   f"there: the cost table's timed_in)")
        if listen:
            listening(report, reps, clips, maps, methods, data, n_background=n_background,
                       concept=concept, options=options)
            lime = next((m for m in methods if m.startswith("lime")), None)
            if lime:
                lime_components(report, reps, lime, clips, data, n_background=n_background,
                                 target=target, options=options)
        for caption, p in extra_figures or []:
            report.figures[caption] = Path(p)
        for name, (text, table) in (extra_tables or {}).items():
            report.tables[name] = table
            report.texts[name] = text
            report.notes.append(name)
        write_report(report, runs, title, methods, clips.names)
    work.clear()
    log.info("report written: %s", report.html)
    return report


def training_data(run) -> dict:
    """What a run was trained on, as stored with it: ``spec`` (the spec file), ``spec_name``,
    ``root``, ``roots`` (named root -> folder), ``test_clips`` (the clip count of its test
    metrics: the largest ``n`` of a target, which every mode shares), ``test_ids`` (its
    test clips, sorted, from ``RUN/splits.csv``), ``ratings`` and ``segment_ratings`` (column
    -> fingerprint of its ratings over the run's clips), ``audio`` (clip -> SHA-1 of its
    audio at training), ``clips`` (every clip of ``splits.csv``, sorted) and ``classes``
    (class target -> its classes, in the order its ratings were coded); None where
    unknown."""
    data = (getattr(run, "info", None) or {}).get("data") or {}
    try:
        metrics = run.metrics
        rows = metrics["split"] == "test"
        if "kind" in metrics:
            rows &= metrics["kind"] == "target"
        test = metrics.loc[rows, "n"]
        n_test = int(test.max()) if len(test) else None
    except (OSError, KeyError, ValueError, CheckpointError):  # no (readable) metrics.csv
        n_test = None
    stored = read_splits(run.path)
    test_ids = None if stored is None else sorted(stored.index[stored == "test"])
    return {"spec": data.get("spec"), "spec_name": data.get("spec_name"),
            "root": data.get("root"), "roots": data.get("roots"), "test_clips": n_test,
            "test_ids": test_ids, "ratings": data.get("ratings"),
            "segment_ratings": data.get("segment_ratings"),
            "audio": stored_audio_keys(run.path),
            "clips": None if stored is None else sorted(stored.index),
            "classes": {t["name"]: list(t.get("classes") or [])
                        for t in getattr(run, "targets", []) if t.get("kind") == "class"}}


def _describe_data(run, data: dict) -> str:
    where = data["spec"] or "a spec without a file"
    name = f" '{data['spec_name']}'" if data["spec_name"] else ""
    clips = f", {data['test_clips']} test clips" if data["test_clips"] is not None else ""
    return f"{run.path} (spec {where}{name}, root {data['root']}{clips})"


# what must agree between runs: the dataset (its root; each named root both runs' specs
# have) and its test split (the clip count, and the clip ids where both runs stored their
# splits: runs tested on other clips are not seeds of one model). The spec file may differ: two specs over one
# dataset choose other columns as concepts and targets (Soundtracks' emotions for the black
# box, its dimensions as the bottleneck's concepts) and share the fixed test split.
SAME_DATA = ("root", "test_clips")


def check_runs(runs) -> None:
    """Runs compared are distinct and trained on the same data with the same front end.

    A run given twice would count twice among the seeds of its model: ReportError naming it.
    Runs of one mode are pooled as seeds (mean +- std), the bottleneck's accuracy is divided
    by the black box's and every model is explained on the first run's test clips, so every
    run must have been trained on one dataset (the same root and as many test clips, the
    same ones where both runs stored their splits, the same ratings of the columns both rate
    where they were trained on the same clips, and the same audio of the clips both trained
    on; the spec files may differ, see ``SAME_DATA``; the roots are not compared between
    runs of the same clips that stored their audio keys: a copy elsewhere is the same data):
    ReportError naming the runs and their datasets otherwise. What is not stored
    with a run (older runs) is not compared.
    """
    seen = set()
    for run in runs:
        key = Path(run.path).resolve()
        if key in seen:
            raise ReportError(f"run {run.path} is given twice: it would count twice among "
                              f"the seeds of its model; give each run once")
        seen.add(key)
    first, data0 = runs[0], training_data(runs[0])
    for run in runs[1:]:
        if run.frontend != first.frontend:
            raise ReportError(f"runs use different front ends ({first.path}: "
                              f"{first.frontend}; {run.path}: {run.frontend}); compare runs "
                              f"trained on the same features")
        data = training_data(run)
        # runs of the same clips that stored each one's audio bytes are compared by those and
        # their ratings' fingerprints, not by where the dataset lay (audit 22c: a run and its
        # own resume on a moved copy were refused)
        keyed = bool(data0["audio"]) and bool(data["audio"]) and \
            data0["clips"] is not None and data0["clips"] == data["clips"]
        differ = [k for k in SAME_DATA if data0[k] is not None and data[k] is not None
                  and data0[k] != data[k] and not (keyed and k == "root")]
        roots0, roots = ({}, {}) if keyed else (data0["roots"] or {}, data["roots"] or {})
        differ += [f"root {name!r} ({roots0[name]} vs {roots[name]})"
                   for name in sorted(set(roots0) & set(roots)) if roots0[name] != roots[name]]
        ids0, ids = data0["test_ids"], data["test_ids"]
        if ids0 is not None and ids is not None and ids0 != ids:
            only = sorted(set(ids0) ^ set(ids))
            differ.append(f"test clips ({len(only)} clip(s) are test clips of one run only, "
                          f"e.g. {', '.join(only[:5])})")
        differ += _rating_and_audio_differences(data0, data)
        if differ:
            raise ReportError(
                f"runs trained on different data: {_describe_data(first, data0)} and "
                f"{_describe_data(run, data)} (they differ in {', '.join(differ)}). compare "
                f"pools the runs of a mode as seeds and compares models on one test split; "
                f"make one report per dataset")


def _rating_and_audio_differences(data0: dict, data: dict) -> list[str]:
    """What two runs' stored records say differs in the data they share: the ratings of a
    column both rate (its clip table's, its segment tables'; for runs of the same clips), the
    audio of a clip both trained on (audit 21b: a run trained before a rating correction and
    one after were pooled as seeds, valence r 0.12 +- 0.90)."""
    out = []
    # a fingerprint covers every clip of a run: compared only between runs of the same clips
    # (two specs over one dataset may choose other clips), and a class target's only where
    # both coded its classes in one order
    same_clips = data0["clips"] is not None and data0["clips"] == data["clips"]
    recoded = {n for n in set(data0["classes"]) | set(data["classes"])
               if data0["classes"].get(n) != data["classes"].get(n)}
    for key, what in (("ratings", "ratings"), ("segment_ratings", "time-varying ratings")):
        a, b = data0[key] or {}, data[key] or {}
        cols = sorted(n for n in set(a) & set(b) if a[n] != b[n] and n not in recoded)
        if cols and same_clips:
            out.append(f"{what} of {', '.join(cols)}")
    a, b = data0["audio"] or {}, data["audio"] or {}
    changed = sorted(c for c in set(a) & set(b) if a[c] and b[c] and a[c] != b[c])
    if changed:
        more = ", ..." if len(changed) > 5 else ""
        out.append(f"the audio of {len(changed)} clip(s) ({', '.join(changed[:5])}{more})")
    return out


def check_seeds(runs) -> None:
    """Runs of one model (one mode, or black boxes) are pooled as its seeds, so they must
    predict the same targets from the same concepts: ReportError naming two that do not
    (audit 15b: a black box of 'tension' and one of the class target 'scene' were pooled, the
    report explaining 'tension' only and its mean row mixing the two)."""
    first = {}
    for run in runs:
        label = model_label(run)
        # as sets: the same names in another order (two specs listing them differently) are
        # the same model, matched by name downstream
        outputs = (sorted(run.target_names), sorted(getattr(run, "concept_names", None) or []))
        if label not in first:
            first[label] = (run, outputs)
            continue
        run0, outputs0 = first[label]
        if outputs != outputs0:
            what = "targets" if outputs[0] != outputs0[0] else "concepts"
            k = 0 if what == "targets" else 1
            only0 = [n for n in outputs0[k] if n not in outputs[k]]
            only1 = [n for n in outputs[k] if n not in outputs0[k]]
            raise ReportError(
                f"{label} runs {run0.path} and {run.path} have different {what} "
                f"({', '.join(only0) or 'none'} only in the first, {', '.join(only1) or 'none'} "
                f"only in the second): "
                f"compare pools the runs of one mode as seeds of one model; give runs with the "
                f"same {what}, or make one report per set")

