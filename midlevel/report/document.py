"""The comparison report as a document: what it holds (:class:`Report`), what each section
says, and its rendering to CSV tables, Markdown and one self-contained HTML page."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from midlevel.io import replace_manifest, save_figure, write_csv, write_text
from midlevel.report.html import write_html
from midlevel.report.markdown import markdown_table, md_code, md_link, md_text

log = logging.getLogger(__name__)


@dataclass
class Report:
    """What :func:`compare` wrote: tables (name -> DataFrame), figures and audio (title ->
    path), the Markdown and HTML paths, and ``files``: the other files written into ``out``
    (the tables beside the wavs), which ``report_files.json`` records with the rest."""

    out: Path
    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    audio: dict = field(default_factory=dict)
    markdown: Path | None = None
    html: Path | None = None
    notes: list = field(default_factory=list)      # names of the extra tables, in order
    texts: dict = field(default_factory=dict)      # name -> description of extra tables
    warnings: list = field(default_factory=list)   # lines a reader must see (fewer clips...)
    files: list = field(default_factory=list)      # other files written (audio/*_listen_back.csv)

    def save_figure(self, fig, name: str) -> Path:
        """Save the matplotlib ``fig`` as ``out/figures/<name>`` (PNG, 90 dpi) and close it;
        returns the path."""
        import matplotlib.pyplot as plt
        path = self.out / "figures" / name
        save_figure(fig, path, dpi=90)
        plt.close(fig)
        return path


def model_label(run) -> str:
    """"blackbox" for a black box, else the run's mode."""
    return "blackbox" if run.model.kind == "blackbox" else run.mode


SECTION_TEXT = {
    "leakage": "Held-out clips: the bottleneck's head fed its own predicted concepts against "
               "the true concept ratings (r, R^2; accuracy for classes), and the meaning share "
               "(adjusted R^2 of the head's output on the concept ratings: about 0 for an "
               "output unrelated to them; the plain R^2 and what it reaches by chance, "
               "k / (n - 1), beside it). Neither number is a verdict on leakage: noise in "
               "the predicted concepts lowers the share as leakage does, and a head fitted on "
               "predicted concepts shrunk toward their mean beyond calibration loses with the "
               "true ratings for its inflated weights, whether or not anything leaked; on 22 "
               "held-out clips the three modes' shares were within each other's noise (see "
               "midlevel.explain.leakage).",
    "metrics": "Test-split accuracy per target, mean and std over the runs of each model "
               "(std is empty for a single run): r, R^2 and RMSE of rating targets, and of "
               "binary targets' probabilities against their 0/1 labels (RMSE there is the "
               "root Brier score), accuracy of class and binary targets (and ROC-AUC of "
               "binary ones).",
    "completeness": "Completeness: the bottleneck's accuracy over the black box's (1 = the "
                    "concepts lose nothing); not given where the black box's r is below 0.1, "
                    "a chance-level denominator, where r is not defined (class targets) or "
                    "where only one model has the target. A negative ratio (the bottleneck's "
                    "r of the opposite sign) says so in its note. The mean row is the mean r "
                    "of each model over exactly the targets with a ratio (n_targets), of one "
                    "sort only, as evaluate's summary rows: mean:ratings and mean:binary "
                    "(point-biserial r of tag probabilities) when the targets mix sorts.",
    "cost": "Explanation cost: wall time of one attribution call divided by the clips "
            "explained (one output, CPU). `unit_field_bins` (Grad-CAM): how many input bands "
            "x frames one unit of its layer sees; its map cannot place evidence more finely, "
            "and on the planted-event benchmark its box ratio ranged 0.0-6.7x over models "
            "that all computed the event (benchmarks/RESULTS.md in midlevel's source "
            "repository). The additivity gap is in `units`, those `midlevel predict` "
            "reports. `timed_in`: this run, or an earlier, interrupted compare whose "
            "explanation this report reuses.",
    "faithfulness": "The faithfulness harness (midlevel.explain.harness), per model, method "
                    "and mode over the explained clips: patches of the spectrogram removed "
                    "(deletion) or inserted in the order of their signed attribution, largest "
                    "first (MoRF) and its reverse (LeRF), against random orders and their "
                    "reverses; a removed patch takes the training background's mean, the "
                    "attributions' own reference. Areas under the output curve in the units "
                    "`midlevel predict` reports where it reports a rating (rating points of a "
                    "regression target); a tag's logit, and a class's logit centred on its "
                    "classes' mean (predict reports their probabilities), unnormalized; between = LeRF - MoRF (deletion), positive = "
                    "faithful; morf_better_share = clips where MoRF beats the random mean; "
                    "between_gain interval: percentile bootstrap over clips of the gain over "
                    "random, with a paired Wilcoxon p-value. The verdict needs both: better "
                    "(worse) than random when the interval lies above (below) 0 and p < 0.05; "
                    "with fewer clips than clips_needed (6: the exact test's smallest p is "
                    "2 / 2^n, 0.25 for 3 clips) it says too few clips to test (--clips).",
    "sanity": "Cascading model randomization (midlevel.explain.sanity): every layer "
              "re-initialized from the top down, BatchNorm included (statistics "
              "re-estimated); on each clip's first window (zero-padded when shorter) and "
              "the model's output for that window, not the whole clip that the report's "
              "maps explain; similarity (Spearman of |map|) of the trained map to the fully "
              "randomized ones, against two floors: the trained map against an input-only "
              "map |x - reference| and independent full randomizations (n_random of them) "
              "against each other. With more than two, the intervals cover the draw of the "
              "random networks as well as of the clips (a jackknife over networks and a t "
              "quantile; --sanity-networks, default 8); a verdict whose upper end is near 0 "
              "can still differ between draws. "
              "passed: the trained map is further from the randomized ones than both floors "
              "(upper ends of both 95 % intervals below 0); with fewer defined clips "
              "than clips_needed (6) there is no verdict: passed is empty (-), neither a "
              "pass nor a failure, and the verdict says too few clips (--clips and "
              "--sanity-clips).",
    "listen_back": "Listen-back fidelity of the first clip: the audio of the evidence for "
                   "and against the output (the bins holding 90 % of |attribution|, split "
                   "by sign) and of the rest, re-run through front end and model with the "
                   "reference outside the part; share = (f(part) - f(ref)) / (f(x) - f(ref)) "
                   "(for SHAP and GradientShap, whose values are relative to the mean output "
                   "over the background, f is averaged over the part placed in each background "
                   "input, and f(ref) is that mean). "
                   "Where |f(x) - f(ref)| is below 5 % of the sd over the test clips of what "
                   "is explained (spread_sd: of its ratings, or of the model's output for a "
                   "logit), readable is False: the span is too small to read a share; "
                   "where that sd is unknown (the run's test clips cannot be read), readable "
                   "is empty (-): not checked.",
    "lime_components": "LIME's top components of the first clip (by evidence for its "
                       "deviation from the reference), written as wavs; for NMF components "
                       "the relative reconstruction error of the clip's magnitude.",
    "event_share": "Share of positive attribution inside the known deciding event, against the "
                   "event's share of the input (ratio 1 = no better than uniform).",
}


def runs_table(runs) -> pd.DataFrame:
    return pd.DataFrame([{"model": model_label(r), "mode": r.mode, "seed": r.config.seed,
                          "preset": r.config.preset, "epochs": r.info.get("epochs"),
                          "run": str(r.path)} for r in runs])


def _write_markdown(report: Report, runs, title, methods, clips) -> None:
    out = report.out
    lines = [f"# {title}\n", f"Runs compared ({len(runs)}):\n", markdown_table(runs_table(runs)),
             f"Explained: test clips {', '.join(map(md_code, clips))}; methods "
             f"{', '.join(methods)}.\n"]
    lines += [f"**Note:** {md_text(w)}\n" for w in report.warnings]
    for name in ("metrics", "completeness", "leakage", "cost", "faithfulness", "sanity",
                 "listen_back", "lime_components",
                 "event_share", *report.notes):
        if name in report.tables:
            table = report.tables[name]
            if name == "metrics":
                table = table[table["kind"] == "target"]
            text = report.texts.get(name, SECTION_TEXT.get(name, ""))
            lines += [f"## {name.replace('_', ' ').capitalize()}\n", text + "\n",
                      markdown_table(table), f"CSV: `tables/{name}.csv`\n"]
    lines.append("## Figures\n")
    for caption, p in report.figures.items():
        rel = Path(p).relative_to(out) if Path(p).is_relative_to(out) else Path(p)
        lines.append(f"![{md_text(caption)}]({md_link(rel)})\n\n_{md_text(caption)}_\n")
    if report.audio:
        lines.append("## Listenable explanations\n")
        for caption, p in report.audio.items():
            lines.append(f"- [{md_text(caption)}]({md_link(Path(p).relative_to(out))})")
    report.markdown = write_text(out / "report.md", "\n".join(lines) + "\n")


def _sections(report: Report, runs, methods, clips) -> list:
    sections = [("Runs", [("table", runs_table(runs)),
                          ("text", f"Explained: test clips {', '.join(clips)}; methods "
                                   f"{', '.join(methods)}."),
                          *[("text", f"Note: {w}") for w in report.warnings]])]
    for name, heading in [("metrics", "Accuracy"), ("completeness", "Completeness"),
                          ("leakage", "Leakage diagnostic"),
                          ("cost", "Explanation cost"), ("faithfulness", "Faithfulness"),
                          ("sanity", "Sanity check: cascading randomization"),
                          ("listen_back", "Listen-back fidelity"),
                          ("lime_components", "LIME components"),
                          ("event_share", "Share of attribution inside the deciding event"),
                          *[(n, n.replace("_", " ").capitalize()) for n in report.notes]]:
        if name in report.tables:
            table = report.tables[name]
            if name == "metrics":
                table = table[table["kind"] == "target"]
            text = report.texts.get(name, SECTION_TEXT.get(name, ""))
            sections.append((heading, [("text", text), ("table", table)]))
    if report.audio:
        sections.append(("Listenable explanations",
                         [("text", "Masked: the positively attributed part of the sound "
                                   "(soft mask on the STFT, bands mapped back to bins); "
                                   "complement: everything else.")]
                         + [("audio", (c, p)) for c, p in report.audio.items()]))
    sections.append(("Figures", [("figure", (c, p)) for c, p in report.figures.items()]))
    return sections


MANIFEST = "report_files.json"
"""The list of files a report wrote, relative to its folder (so a later report into the same
folder can remove what it no longer writes)."""


def write_report(report: Report, runs, title: str, methods, clips) -> Report:
    """Write every table as CSV (``tables/``), ``report.md`` and ``report.html``; then remove
    the files an earlier report into the same folder wrote and this one did not (a rerun
    without faithfulness must not leave the old faithfulness tables beside the new report),
    and record this report's files in ``report_files.json``. :func:`compare` writes inside
    :func:`midlevel.io.recording`, so every file was listed there before it was written: those
    of an interrupted compare are removed too when this report does not write them again."""
    tables = {name: report.out / "tables" / f"{name}.csv" for name in report.tables}
    written = [write_csv(report.tables[name], path) for name, path in tables.items()]
    _write_markdown(report, runs, title, methods, clips)
    report.html = write_html(report.out / "report.html", title,
                             _sections(report, runs, methods, clips))
    written += [report.markdown, report.html, *report.figures.values(), *report.audio.values(),
                *report.files]
    _replace_manifest(report.out, written)
    return report


def _replace_manifest(out: Path, written) -> None:
    stale = replace_manifest(out, written, MANIFEST)
    if stale:
        log.info("removed %d file(s) of the earlier report in %s that this one does not "
                 "write: %s", len(stale), out, ", ".join(stale))
