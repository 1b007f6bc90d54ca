"""What ``compare`` puts side by side (audit 5): one target for every model, the class
targets' accuracy, audio cut to the explained seconds, notes for options nothing uses, and
listen-back shares over a span too small to read."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import train_tiny_runs
from midlevel.errors import ReportError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A joint and a black-box run (1 epoch) on 16 synthetic 3-s clips."""
    root = tmp_path_factory.mktemp("compare_world")
    spec, cache, runs = train_tiny_runs(root, n_clips=16, seed=3, duration=3.0)
    return {"cache": cache, "runs": runs}


def _fake(path, outputs):
    model = SimpleNamespace(output_names=outputs, concept_names=[])
    return SimpleNamespace(path=path, model=model)


def test_the_explained_target_is_one_every_model_has():
    """Audit 5, item 3: with no --target each model explained its own first output, a black
    box on valence beside a bottleneck on quadrant=angry (rating points beside logits)."""
    from midlevel.workflows.compare import explained_target
    bb = _fake("runs/bb", ["valence", "energy", "tension"])
    cls = _fake("runs/cls", ["quadrant=angry", "quadrant=calm", "bright", "valence"])
    assert explained_target({"blackbox": bb, "joint": cls}) == "valence"
    assert explained_target({"joint": cls, "blackbox": bb}) == "valence"
    both = _fake("runs/b2", ["energy", "valence"])
    assert explained_target({"blackbox": bb, "joint": both}) == "valence"  # first run's order
    other = _fake("runs/other", ["quadrant=angry", "bright"])
    with pytest.raises(ReportError) as exc:
        explained_target({"blackbox": bb, "joint": other})
    message = str(exc.value)
    assert "--target" in message and "runs/bb: valence, energy, tension" in message
    assert "runs/other: quadrant=angry, bright" in message
    with pytest.raises(ReportError, match="runs/other"):
        explained_target({"blackbox": bb, "joint": other}, "energy")
    assert explained_target({"blackbox": bb, "joint": both}, "energy") == "energy"


def test_the_metrics_table_and_figure_hold_class_accuracy(tmp_path, monkeypatch):
    """Audit 5, item 10: a class target's row had no accuracy at all."""
    from midlevel.report.document import Report
    from midlevel.workflows import compare_accuracy as compare
    m = pd.DataFrame({"model": ["joint", "joint", "joint", "blackbox"],
                      "run": ["r1", "r2", "r1", "r3"], "kind": "target",
                      "name": ["quadrant", "quadrant", "valence", "valence"],
                      "r": [np.nan, np.nan, 0.5, 0.6], "r2": [np.nan, np.nan, 0.2, 0.3],
                      "rmse": [np.nan, np.nan, 1.0, 0.9],
                      "accuracy": [0.5, 0.7, np.nan, np.nan]})
    s = compare.summarize_metrics(m).set_index(["model", "name"])
    assert s.loc[("joint", "quadrant"), "accuracy"] == pytest.approx(0.6)
    assert s.loc[("joint", "quadrant"), "accuracy_std"] == pytest.approx(np.std([0.5, 0.7],
                                                                               ddof=1))
    figures = []
    monkeypatch.setattr(Report, "save_figure", lambda self, fig, name: figures.append(fig))
    compare._metrics_figure(Report(out=tmp_path), s.reset_index(), ["joint", "blackbox"],
                            {"quadrant": "class", "valence": "regression"})
    [fig] = figures
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["Pearson r (test)", "accuracy (test)"]
    ticks = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes]
    assert ticks == [["valence"], ["quadrant"]]


def test_a_tiny_span_gives_a_caveat_not_a_bare_share():
    """Audit 5, item 18: a span f(x) - f(ref) of 0.0047 rating points printed "keeps -2095 %"."""
    from midlevel.explain.listen_back import share_note
    note = share_note(0.0047, 0.22)
    assert note.startswith("span too small to read a share") and "0.0047" in note
    assert share_note(-0.0047, 0.22) and not share_note(0.05, 0.22)
    assert not share_note(0.0047, None) and not share_note(0.0047, np.nan)


def test_compare_with_seconds_cuts_the_audio_and_notes_ignored_options(world, tmp_path):
    """Audit 5, item 7: --seconds crashed after the work (maps of the first seconds, audio of
    the whole clip). Item 18: --window without occlusion and --deletion-patch with
    --no-faithfulness were ignored without a word."""
    import soundfile as sf

    from midlevel.workflows.compare import compare
    out = tmp_path / "report"
    report = compare([world["runs"]["joint"], world["runs"]["blackbox"]], out,
                     cache_dir=world["cache"], methods=["integrated_gradients",
                                                        "lime_segments"],
                     n_clips=1, n_background=2, max_seconds=1.5, faithfulness=False,
                     randomization=False, deletion_patch=(4, 4), n_steps=2, n_samples=8,
                     window=(4, 4))
    [original] = (out / "audio").glob("*_original.wav")
    y, sr = sf.read(original)
    assert abs(len(y) / sr - 1.5) < 0.05
    assert not report.tables["lime_components"].empty
    assert set(report.tables["cost"]["output"]) == {world["runs"]["joint"].target_names[0]}
    lb = report.tables["listen_back"]
    assert {"readable", "note", "spread_sd"} <= set(lb)
    small = (lb["f_x"] - lb["f_ref"]).abs() < 0.05 * lb["spread_sd"]
    assert (lb["readable"] == ~small).all()
    ignored = [w for w in report.warnings if "ignored" in w]
    assert any(w.startswith("--window (window) is ignored") for w in ignored)
    # the registered LIME variants take lime_samples and drop n_samples
    assert any(w.startswith("--n-samples (n_samples) is ignored") for w in ignored)
    assert any(w.startswith("--deletion-patch (deletion_patch) 4 4") for w in ignored)
    assert len(ignored) == 3  # n_steps is used (integrated gradients)
    from midlevel.workflows.compare_checks import ignored_options
    assert ignored_options(["occlusion", "shap_gradient"], {"window": (4, 4), "stride": (2, 2),
                                                            "n_samples": 8},
                           faithfulness=False, deletion_patch=(8, 16)) == []
    assert "--window (window) is ignored" in (out / "report.md").read_text()


def test_report_files_lists_every_file_and_a_rerun_without_audio_leaves_none(world, tmp_path):
    """Re-audit 5, N6: report_files.json did not list audio/*_listen_back.csv (nor LIME's
    audio/*_components.csv), so a rerun with --no-audio left them behind; and --no-audio
    made an empty audio/ folder."""
    import json

    from midlevel.workflows.compare import compare
    runs = [world["runs"]["joint"], world["runs"]["blackbox"]]
    args = dict(cache_dir=world["cache"], n_clips=1, n_background=2, max_seconds=1.5,
                faithfulness=False, randomization=False, n_steps=2, n_samples=8)
    out = tmp_path / "report"
    compare(runs, out, methods=["integrated_gradients", "lime_segments"], **args)
    listed = set(json.loads((out / "report_files.json").read_text())["files"])
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk - listed <= {"report_files.json", ".midlevel.lock"}
    audio = {f for f in listed if f.startswith("audio/")}
    assert any(f.endswith("_listen_back.csv") for f in audio)
    assert any(f.endswith("_components.csv") for f in audio)
    compare(runs, out, methods=["integrated_gradients"], listen=False, **args)
    assert not (out / "audio").exists()  # every file of the first run's audio/ removed
    fresh = tmp_path / "fresh"
    compare(runs, fresh, methods=["integrated_gradients"], listen=False, **args)
    assert not (fresh / "audio").exists()


def test_more_sanity_clips_than_clips_explained_is_noted(world, tmp_path):
    """Re-audit 6, N1: --sanity-clips above --clips ran on the explained clips without a
    word, and the report sent the user to --sanity-clips."""
    from midlevel.workflows.compare import compare
    report = compare([world["runs"]["blackbox"]], tmp_path / "report",
                     cache_dir=world["cache"], methods=["deeplift"], n_clips=1,
                     sanity_clips=8, n_background=2, max_seconds=1.5, faithfulness=False,
                     listen=False)
    [note] = [w for w in report.warnings if w.startswith("sanity_clips (--sanity-clips) 8")]
    assert "runs on the 1 clips explained; raise --clips" in note
    sanity = report.tables["sanity"]
    assert (sanity["n_clips"] == 1).all()
    assert (sanity["n_random"] == 8).all()  # the recommended number of random networks
    # audit 7a, item 4: no verdict reads as neither passed nor failed: an empty cell
    assert sanity["passed"].isna().all()
    assert sanity["verdict"].str.startswith("too few clips for a verdict").all()
    md = (tmp_path / "report" / "report.md").read_text()
    assert "--clips and --sanity-clips" in md
    rows = [line for line in md.splitlines() if line.startswith("| deeplift")]
    assert rows and all("False" not in line and "True" not in line for line in rows)
    csv = pd.read_csv(tmp_path / "report" / "tables" / "sanity.csv")
    assert csv["passed"].isna().all()


def test_the_sanity_check_draws_the_random_networks_asked_for(world, tmp_path):
    """Audit 16b: two random networks' verdict turned with their seeds; compare's check draws
    --sanity-networks of them (default 8) and refuses fewer than two before writing."""
    from midlevel.errors import MidlevelError
    from midlevel.workflows.compare import compare
    args = dict(cache_dir=world["cache"], methods=["deeplift"], n_clips=2, n_background=2,
                max_seconds=1.5, faithfulness=False, listen=False)
    report = compare([world["runs"]["blackbox"]], tmp_path / "three", sanity_networks=3,
                     **args)
    sanity, floors = report.tables["sanity"], report.tables["sanity_floors"]
    assert (sanity["n_random"] == 3).all()
    assert {"minus_random_network_min", "minus_random_pair_max"} <= set(sanity.columns)
    assert len(floors) == 2 * 3  # per clip and similarity, averaged over the networks
    with pytest.raises(MidlevelError, match="sanity-networks"):
        compare([world["runs"]["blackbox"]], tmp_path / "one", sanity_networks=1, **args)
    assert not (tmp_path / "one").exists()


def _on_disk(out) -> set[str]:
    """Files under ``out`` (relative), without the manifest itself and the work folder."""
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
            and p.name != "report_files.json" and ".compare_work" not in p.parts}


def _listed(out) -> set[str]:
    import json
    return set(json.loads((out / "report_files.json").read_text())["files"])


def test_a_rerun_removes_the_files_of_an_interrupted_compare(world, tmp_path, monkeypatch):
    """Audit 7a, item 1: figures are written during the work, report_files.json only at the
    end; a compare killed after the joint model's maps, then run again with other runs, left
    figures/maps_joint.png beside the finished report, listed nowhere, forever."""
    from midlevel.workflows import compare_explanations
    from midlevel.workflows.compare import compare
    joint, blackbox = world["runs"]["joint"], world["runs"]["blackbox"]
    args = dict(cache_dir=world["cache"], n_clips=1, n_background=2, max_seconds=1.5,
                faithfulness=False, randomization=False, n_steps=2)
    out = tmp_path / "report"
    # an earlier, finished report (with audio) into the folder
    compare([blackbox], out, methods=["integrated_gradients"], **args)
    assert any(f.startswith("audio/") for f in _listed(out))

    def killed(*a, **k):
        raise KeyboardInterrupt  # what a kill leaves: the maps written, no report

    monkeypatch.setattr(compare_explanations, "_cost_tables", killed)
    with pytest.raises(KeyboardInterrupt):
        compare([joint, blackbox], out, methods=["deeplift", "integrated_gradients"], **args)
    interrupted = {"figures/maps_joint.png", "figures/profile_joint.png"}
    assert interrupted <= _on_disk(out) and interrupted <= _listed(out)
    monkeypatch.undo()
    compare([blackbox], out, methods=["deeplift"], listen=False, **args)
    on_disk = _on_disk(out)
    assert not on_disk & interrupted and not (out / "audio").exists()
    assert _listed(out) == on_disk
    assert {"figures/maps_blackbox.png", "figures/cost.png", "report.html"} <= on_disk


def test_reused_explanations_say_their_cost_was_timed_in_the_interrupted_run(
        world, tmp_path, monkeypatch):
    """Audit 7a, item 5: the cost of explanations reused from .compare_work was reported as if
    timed in this run, beside fresh timings made at another time on a shared machine."""
    from midlevel.workflows import compare_explanations
    from midlevel.workflows.compare import compare
    real = compare_explanations._explain_with

    def killed_on_the_second(run, label, method, *a, **k):
        if method == "deeplift":
            raise KeyboardInterrupt
        return real(run, label, method, *a, **k)

    args = dict(cache_dir=world["cache"], methods=["integrated_gradients", "deeplift"],
                n_clips=1, n_background=2, max_seconds=1.5, faithfulness=False,
                randomization=False, listen=False, n_steps=2)
    out = tmp_path / "report"
    monkeypatch.setattr(compare_explanations, "_explain_with", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        compare([world["runs"]["blackbox"]], out, **args)
    monkeypatch.undo()
    report = compare([world["runs"]["blackbox"]], out, **args)
    cost = report.tables["cost"].set_index("method")
    assert cost.loc["integrated_gradients", "timed_in"] == "an earlier, interrupted run"
    assert cost.loc["deeplift", "timed_in"] == "this run"
    md = (out / "report.md").read_text()
    assert "timed in another process at another time" in md and "not comparable" in md
    assert "timed_in" in pd.read_csv(out / "tables" / "cost.csv")
    fresh = compare([world["runs"]["blackbox"]], tmp_path / "fresh", **args)
    assert (fresh.tables["cost"]["timed_in"] == "this run").all()
    assert "timed in another process" not in (tmp_path / "fresh" / "report.md").read_text()


def test_clip_names_stay_inside_the_report_and_read_literally(world, tmp_path, monkeypatch):
    """Audit 12a #1, #3, #4: a clip id holding '..' or '/' put compare's wavs outside --out,
    one of 230 characters stopped it ('File name too long'), a '$' went to matplotlib's math
    mode, and report.md escaped nothing (HTML, '|', links with spaces)."""
    import os

    from midlevel.workflows import compare as compare_module
    real = compare_module.test_clips
    odd = "../../Pay $5 <b>x</b> | a,b " + "A" * 230

    def renamed(*args, **kwargs):
        clips = real(*args, **kwargs)
        clips.names[0] = odd
        return clips

    monkeypatch.setattr(compare_module, "test_clips", renamed)
    out = tmp_path / "deep" / "report"
    report = compare_module.compare([world["runs"]["joint"]], out, cache_dir=world["cache"],
                                    methods=["integrated_gradients"], n_clips=1,
                                    n_background=2, faithfulness=False, randomization=False,
                                    n_steps=2)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert outside == []
    names = [p.name for p in out.rglob("*")]
    assert names and max(len(n.encode()) for n in names) < 255
    md = (out / "report.md").read_text()
    assert f"`{odd}`" in md and md.count("<b>") == 1  # verbatim in a code span, ...
    assert "&lt;b&gt;" in md  # ... as entities in captions
    assert "](<audio/" in md  # link destinations in angle brackets
    lb = report.tables["listen_back"]
    assert set(lb["clip"]) == {odd} and not any(os.path.isabs(p) for p in lb["path"])
    assert all((out / p).is_file() for p in lb["path"])
    # re-audit 12: cutting the whole stem to the name limit cut off the output, and the
    # target's and the concept's listen-back wrote the same files
    assert lb["output"].nunique() == 2 and lb["path"].nunique() == len(lb)
    assert not [n for n in names if n.startswith(".")]  # '../..' made hidden files
