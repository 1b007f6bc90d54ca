"""What ``midlevel explain`` (and predict, evaluate, coefficients, compare) write, and where:
clips of one name never share a file, tables carry each clip's source path, unreadable files
are skipped (all of them: nothing written), an earlier explanation's leftovers are removed, a
folder is written by one command at a time, an output that cannot be written (or a run's own
file) is refused before the work, options a black box ignores are refused, a timeline window
shorter than the model's input is refused up front, and messages are printed once."""
from __future__ import annotations

import os

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import train_tiny_runs
from midlevel.cli import main
from midlevel.errors import ExplainError
from midlevel.explain.names import clip_names, safe_name, unique_names
from midlevel.workflows.explain_concepts import explain_concepts

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A joint and a black-box run (1 epoch) on 12 synthetic 3-s clips; bad files beside."""
    root = tmp_path_factory.mktemp("outputs_world")
    spec, cache, runs = train_tiny_runs(root, n_clips=12, seed=4, duration=3.0)
    audio = sorted((root / "data" / "audio").glob("*.wav"))
    bad = root / "bad"
    bad.mkdir()
    (bad / "zero.wav").write_bytes(b"")
    (bad / "text.wav").write_text("not audio\n")
    (bad / "folder.wav").mkdir()
    sf.write(bad / "silence.wav", np.zeros(22050, dtype=np.float32), 22050)
    y, sr = sf.read(audio[0], dtype="float32")
    sf.write(bad / "short.wav", y[: sr // 2], sr)  # 0.5 s: shorter than the window
    return {"root": root, "cache": cache, "runs": runs, "audio": [str(a) for a in audio],
            "bad": [str(bad / n) for n in ("zero.wav", "text.wav", "folder.wav",
                                            "silence.wav")],
            "short": str(bad / "short.wav")}


def _same_name_clips(world, folder) -> list[str]:
    """Three different clips named a.wav, a.wav and a_1.wav (in three folders) and two whose
    names differ only in characters a file-safe name drops."""
    paths = []
    for sub, name, source in (("x", "a.wav", 0), ("y", "a.wav", 1), ("z", "a_1.wav", 2),
                              ("u", "\u00fc.wav", 3), ("u", "\u00e9.wav", 4)):
        path = folder / sub / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(open(world["audio"][source], "rb").read())
        paths.append(str(path))
    return paths


# ------------------------------------------------------------------------------ names


def test_clip_names_are_unique_after_every_mapping():
    assert unique_names(["a", "a", "a_1"]) == ["a_2", "a_3", "a_1"]
    assert len(set(n.casefold() for n in unique_names(["A", "a", "b"]))) == 3
    safe = unique_names(["a b", "a_b", "\u00fc", "\u00e9", "..", "."], safe=True)
    assert len(set(safe)) == 6 and all(safe_name(n) == n for n in safe)
    assert not any(n.strip(".") == "" for n in safe)  # never a name of "." or ".."
    assert clip_names(["x/a.wav", "y/a.wav", "z/a_1.wav"]) == ["a_2", "a_3", "a_1"]


def test_a_clip_never_takes_a_reserved_name():
    """Re-audit 5, N5: clip names were made unique among the clips only, so a clip named
    ``predictions.csv.wav`` took the folder ``predictions.csv`` of the table beside it."""
    reserved = ["predictions.csv", "listen_back.csv", "predictions.csv_1"]
    names = unique_names(["Predictions.csv", "listen_back.csv", "listen_back.csv", "b"],
                         reserved=reserved)
    assert names == ["Predictions.csv_2", "listen_back.csv_1", "listen_back.csv_2", "b"]
    assert not {n.casefold() for n in names} & {r.casefold() for r in reserved}
    assert clip_names(["x/predictions.csv.wav"], safe=True,
                      reserved=reserved) == ["predictions.csv_2"]


def test_a_bottleneck_explains_clips_of_one_name_apart_with_their_paths(world, tmp_path):
    paths = _same_name_clips(world, tmp_path / "in")
    out = tmp_path / "out"
    res = explain_concepts(world["runs"]["joint"], paths, out, cache_dir=world["cache"],
                           dataset_split=None, timeline=False)
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert pred["clip"].is_unique and list(pred["path"]) == paths
    assert list(pred.columns[:2]) == ["clip", "path"]
    table = pd.read_csv(out / "contributions.csv")
    per_clip = table.groupby("clip").size()
    assert per_clip.nunique() == 1 and len(per_clip) == len(paths)  # no clip holds two
    assert sorted(p.name for p in out.glob("*_contributions.png")) == sorted(
        f"{n}_contributions.png" for n in pred["clip"])
    # the path column joins predict's table (which keys clips by path)
    predicted = world["runs"]["joint"].predict(paths)
    joined = pred.merge(predicted, left_on="path", right_on="clip", suffixes=("", "_p"))
    c = world["runs"]["joint"].concept_names[0]
    assert len(joined) == len(paths) and np.allclose(joined[c], joined[f"{c}_p"])
    assert not res.errors


def test_a_black_box_writes_one_folder_per_clip_and_a_predictions_table(world, tmp_path):
    from midlevel.workflows.explain_attributions import explain_blackbox
    paths = _same_name_clips(world, tmp_path / "in")
    out = tmp_path / "out"
    res = explain_blackbox(world["runs"]["blackbox"], paths, out, targets=["valence"],
                           methods=["integrated_gradients"], progress=False,
                           cache_dir=world["cache"], n_steps=4, listen=False)
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(pred["path"]) == paths and pred["clip"].is_unique
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted(pred["clip"])  # five clips, five folders
    assert all(len(list((out / f).glob("*.npz"))) == 1 for f in folders)
    predicted = world["runs"]["blackbox"].predict(paths)
    assert np.allclose(pred["valence"], predicted["valence"], atol=1e-5)
    assert len(set(map(str, res.files))) == len(res.files)  # no file written twice


def test_a_black_box_clip_named_like_an_output_file_gets_its_own_folder(world, tmp_path):
    """Re-audit 5, N5: clips ``predictions.csv.wav`` and ``listen_back.csv.wav`` crashed after
    the work ("listen_back.csv: Is a directory"), leaving no explain_files.json."""
    from midlevel.workflows.explain_attributions import OUTPUT_NAMES
    paths = []
    for name, source in (("predictions.csv.wav", 0), ("listen_back.csv.wav", 1)):
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(open(world["audio"][source], "rb").read())
        paths.append(str(path))
    out = tmp_path / "out"
    rc = main(["explain", str(world["runs"]["blackbox"].path), *paths, "--out", str(out),
               "--methods", "ig", "--targets", "valence", "--cache",
               str(world["cache"]), "--quiet"])
    assert rc == 0
    pred = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(pred["path"]) == paths
    assert not set(pred["clip"]) & set(OUTPUT_NAMES)
    assert (out / "listen_back.csv").is_file() and (out / "explain_files.json").is_file()
    top = {p.name for p in out.iterdir()}
    assert top - set(pred["clip"]) <= set(OUTPUT_NAMES)  # every other name is reserved
    assert all((out / c).is_dir() and any((out / c).glob("*.npz")) for c in pred["clip"])


def test_explain_marks_a_share_over_a_tiny_span_unreadable(world, tmp_path, monkeypatch):
    """Re-audit 5, 18j: explain never passed the output's spread to listen_back, so a share
    over a span of 0.008 rating points (shares of -1022 %) was marked readable."""
    from midlevel.workflows import explain_attributions as ea
    out = tmp_path / "out"
    args = dict(targets=["valence"], methods=["integrated_gradients"], progress=False,
                n_steps=2, cache_dir=world["cache"])
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:1], out, **args)
    lb = pd.read_csv(out / "listen_back.csv", keep_default_na=False)
    sd = world["runs"]["blackbox"].annotations().query("split == 'test'")["valence"].std()
    assert np.allclose(lb["spread_sd"], sd) and set(lb["spread_of"]) == {"ratings"}
    small = (lb["f_x"] - lb["f_ref"]).abs() < 0.05 * lb["spread_sd"]
    assert (lb["readable"] == ~small).all()
    # an output that varies far more over the test clips than this clip's span
    monkeypatch.setattr(ea, "output_spread", lambda *a, **k: (1e6, "ratings"))
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:1], out, **args)
    lb = pd.read_csv(out / "listen_back.csv", keep_default_na=False)
    assert not lb["readable"].any()
    assert all(n.startswith("span too small to read a share") for n in lb["note"])
    per_clip = pd.read_csv(next(out.glob("*/*_listen_back.csv")), keep_default_na=False)
    assert not per_clip["readable"].any()


def test_explain_scales_every_wav_of_a_clip_by_one_factor(world, tmp_path, monkeypatch):
    """Audit 8a, item 3: each method and output had its own factor, so one clip's wavs were
    not at comparable loudness (README: a clip's wavs share one factor)."""
    from midlevel.workflows import explain_attributions as ea
    real = ea.listen_back_parts

    def loud_gradcam(y, values, f, fe, **kw):  # Grad-CAM's parts peak at 1.5, the others not
        table, audio = real(y, values, f, fe, **kw)
        if kw["clip"].startswith("gradcam"):
            table = table.assign(peak=1.5)
        return table, audio

    monkeypatch.setattr(ea, "listen_back_parts", loud_gradcam)
    out = tmp_path / "out"
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:2], out,
                        targets=["valence", "energy"], progress=False, cache_dir=world["cache"],
                        methods=["integrated_gradients", "gradcam"], n_steps=2)
    lb = pd.read_csv(out / "listen_back.csv", keep_default_na=False)
    assert lb.groupby("clip")["method"].nunique().eq(2).all()
    assert lb.groupby("clip")["output"].nunique().eq(2).all()
    assert np.allclose(lb["gain"], 1 / 1.5)  # the integrated-gradients wavs too
    for wav in lb["path"]:  # relative to the output folder (audit 12a #5: to the cwd)
        assert not Path(wav).is_absolute() and np.abs(sf.read(out / wav)[0]).max() <= 1.0
    for per_clip in out.glob("*/*_listen_back.csv"):  # the per-explanation tables agree
        t = pd.read_csv(per_clip, keep_default_na=False)
        assert t["gain"].iloc[0] in set(lb["gain"])
        assert set(t["clip"]) <= set(lb["clip"]) and t["method"].nunique() == 1  # labelled
        assert all((per_clip.parent / w).is_file() for w in t["path"])  # beside the table


def test_listen_back_audio_made_again_is_the_audio_held(world, tmp_path, monkeypatch):
    """Re-audit 8, N2: past HELD_AUDIO bytes a clip's listen-back audio is dropped until its
    factor is known and made again to be written; the files are the same either way."""
    from midlevel.workflows import explain_attributions as ea
    args = dict(targets=["valence", "energy"], progress=False, cache_dir=world["cache"],
                methods=["integrated_gradients"], n_steps=2)
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:1], tmp_path / "held", **args)
    monkeypatch.setattr(ea, "HELD_AUDIO", 0)
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:1], tmp_path / "made", **args)
    held = sorted((tmp_path / "held").glob("*/*.wav"))
    assert len(held) == 10
    for wav in held:
        np.testing.assert_array_equal(sf.read(wav)[0],
                                      sf.read(tmp_path / "made" / wav.parent.name / wav.name)[0])


# ------------------------------------------------------------------------------ bad files


def test_explain_skips_unreadable_files_like_predict(world, tmp_path, capsys):
    good = world["audio"][:2]
    out = tmp_path / "out"
    res = explain_concepts(world["runs"]["joint"], [good[0], *world["bad"], good[1]], out,
                           cache_dir=world["cache"], dataset_split=None, timeline=False)
    assert sorted(res.errors) == sorted(world["bad"])  # each named, by its path
    assert list(pd.read_csv(out / "predictions.csv")["path"]) == good
    rc = main(["explain", str(world["runs"]["joint"].path), good[0], *world["bad"], "--out",
               str(tmp_path / "cli"), "--cache", str(world["cache"]), "--no-timeline",
               "--dataset-split", "none", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and all(err.count(b) >= 1 for b in world["bad"])
    assert (tmp_path / "cli" / "predictions.csv").is_file()


def test_when_every_file_fails_nothing_is_written_and_an_earlier_explanation_stays(
        world, tmp_path, capsys):
    out = tmp_path / "out"
    explain_concepts(world["runs"]["joint"], world["audio"][:1], out, cache_dir=world["cache"],
                     dataset_split=None, timeline=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    res = explain_concepts(world["runs"]["joint"], world["bad"], out, cache_dir=world["cache"],
                           dataset_split=None, timeline=False)
    assert not res.files and sorted(res.errors) == sorted(world["bad"])
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    for mode in ("joint", "blackbox"):
        new = tmp_path / f"new_{mode}"
        rc = main(["explain", str(world["runs"][mode].path), *world["bad"], "--out", str(new),
                   "--cache", str(world["cache"]), "--quiet"]
                  + (["--methods", "integrated_gradients"] if mode == "blackbox" else []))
        assert rc == 1 and not new.exists()
        assert "nothing written" in capsys.readouterr().err


# ------------------------------------------------------------------------------ options


def test_a_black_box_refuses_the_bottleneck_options_given(world, tmp_path, capsys):
    run = str(world["runs"]["blackbox"].path)
    for extra, flag in ((["--hop", "3"], "--hop"), (["--window", "1"], "--window"),
                        (["--no-timeline"], "--no-timeline"),
                        (["--dataset-split", "test"], "--dataset-split"),
                        (["--repeats", "3"], "--repeats"), (["--seed", "5"], "--seed"),
                        (["--hop", "0.5"], "--hop"),  # the default value, given, too
                        (["--seed", "0"], "--seed")):
        out = tmp_path / "o"
        rc = main(["explain", run, world["audio"][0], "--out", str(out), "--methods", "ig",
                   "--cache", str(world["cache"]), "--quiet", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and flag in err and "black-box" in err, err
        assert not out.exists()


def test_a_window_shorter_than_the_model_input_is_refused_before_the_work(world, tmp_path):
    from midlevel.explain.timeline import min_frames, timeline_frames
    run = world["runs"]["joint"]
    least = min_frames(run)
    assert 1 < least < run.window()[0]
    shortest = (least - 1) / run.fps  # seconds of a window of `least` frames
    out = tmp_path / "out"
    with pytest.raises(ExplainError) as exc:  # a window of least - 1 frames
        explain_concepts(run, world["audio"][:1], out, cache_dir=world["cache"],
                         dataset_split=None, window=(least - 1.5) / run.fps)
    assert "--window" in str(exc.value) and f"{shortest:.3g} s" in str(exc.value)
    assert not out.exists()
    suggested = float(str(exc.value).rsplit("--window ", 1)[1].split()[0])
    assert timeline_frames(run, window=suggested)[0] >= least  # the window it suggests works
    assert timeline_frames(run, window=(least - 0.5) / run.fps)[0] == least
    res = explain_concepts(run, world["audio"][:1], out, cache_dir=world["cache"],
                           dataset_split=None, window=(least - 0.5) / run.fps, hop=0.25)
    assert (out / "timeline.csv").is_file() and not res.errors


# ------------------------------------------------------------------------------ outputs


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain", "coefficients",
                                     "compare"])
def test_an_output_under_a_file_is_refused_before_the_work(world, tmp_path, command, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    run = str(world["runs"]["joint"].path)
    argv = {"predict": ["predict", run, world["audio"][0], "--out", f"{afile}/x.csv"],
            "evaluate": ["evaluate", run, "--out", f"{afile}/x.csv"],
            "explain": ["explain", run, world["audio"][0], "--out", f"{afile}/sub"],
            "coefficients": ["coefficients", run, "--out", f"{afile}/sub"],
            "compare": ["compare", run, "--out", f"{afile}/sub"]}[command]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--out" in err and f"{afile} is a file" in err


def test_an_unwritable_folder_is_refused_and_an_os_error_is_a_message(world, tmp_path, capsys,
                                                                      monkeypatch):
    from midlevel.cli import common
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(common.os, "access", lambda p, mode: real(p, mode) and
                        os.path.abspath(p) != str(ro))  # a read-only folder, even for root
    with pytest.raises(SystemExit):
        main(["explain", str(world["runs"]["joint"].path), world["audio"][0], "--out", str(ro)])
    assert "cannot write in folder" in capsys.readouterr().err
    monkeypatch.undo()

    def fails(args):  # a write that fails after the checks (a full disk, a folder made
        raise PermissionError(13, "Permission denied", f"{ro}/.metrics.csv.k2j_x.tmp")
    monkeypatch.setattr("midlevel.cli.train._evaluate", fails)
    parser_main = main
    rc = parser_main(["evaluate", str(world["runs"]["joint"].path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and f"midlevel evaluate: error: {ro}/metrics.csv: Permission denied" in err
    assert "Traceback" not in err


def test_a_run_directory_file_is_refused_as_an_output(world, capsys):
    run = world["runs"]["joint"].path
    metrics = (run / "metrics.csv").read_bytes()
    for argv in (["predict", str(run), world["audio"][0], "--out", str(run / "metrics.csv")],
                 ["evaluate", str(run), "--out", str(run / "model.pt")]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and "run directory" in capsys.readouterr().err
    assert (run / "metrics.csv").read_bytes() == metrics


def test_a_rerun_removes_the_earlier_explanations_files_it_does_not_write(world, tmp_path):
    from midlevel.workflows.explain_attributions import explain_blackbox
    out = tmp_path / "out"
    keep = out / "mine.txt"
    out.mkdir()
    keep.write_text("a file of the user's")
    args = {"cache_dir": world["cache"], "dataset_split": None}
    explain_concepts(world["runs"]["joint"], world["audio"][:2], out, **args)
    first = {p.name for p in out.iterdir()}
    explain_concepts(world["runs"]["joint"], world["audio"][2:3], out, timeline=False, **args)
    names = {p.name for p in out.iterdir()}
    stems = [os.path.basename(a)[:-4] for a in world["audio"][:3]]
    assert f"{stems[0]}_contributions.png" in first and f"{stems[0]}_timeline.png" in first
    assert not any(n.startswith((stems[0], stems[1])) for n in names)
    assert "timeline.csv" not in names and f"{stems[2]}_contributions.png" in names
    assert keep.is_file()  # not written by an explanation: left alone
    bb = tmp_path / "bb"
    for audio in (world["audio"][:2], world["audio"][2:3]):
        explain_blackbox(world["runs"]["blackbox"], audio, bb, targets=["valence"],
                         methods=["integrated_gradients"], progress=False, n_steps=4,
                         cache_dir=world["cache"], listen=False)
    assert sorted(p.name for p in bb.iterdir() if p.is_dir()) == [stems[2]]


def test_a_rerun_removes_the_files_of_an_interrupted_explanation(world, tmp_path,
                                                                monkeypatch):
    """An explain killed after its first clip's files (re-audit 7, N1): the manifest was
    written only at the end, so a rerun left that clip's maps forever. Every file is now
    listed before it is written; a rerun on another clip removes them."""
    import json

    from midlevel.plots import attribution as plots
    from midlevel.workflows import explain_attributions as ea
    stems = [os.path.basename(a)[:-4] for a in world["audio"][:3]]
    bb, calls = tmp_path / "bb", []
    real = plots.attribution_figure

    def interrupted(attr, *a, **k):  # the process dies after the first map's npz
        calls.append(attr)
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "attribution_figure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:2], bb,
                            targets=["valence"], methods=["integrated_gradients"],
                            progress=False, n_steps=4, cache_dir=world["cache"], listen=False)
    listed = json.loads((bb / ea.MANIFEST).read_text())["files"]
    assert (bb / stems[0]).is_dir() and any(f.startswith(stems[0]) for f in listed)
    monkeypatch.setattr(plots, "attribution_figure", real)
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][2:3], bb,
                        targets=["valence"], methods=["integrated_gradients"], progress=False,
                        n_steps=4, cache_dir=world["cache"], listen=False)
    assert sorted(p.name for p in bb.iterdir() if p.is_dir()) == [stems[2]]
    on_disk = {str(p.relative_to(bb)) for p in bb.rglob("*") if p.is_file()}
    listed = set(json.loads((bb / ea.MANIFEST).read_text())["files"])
    assert listed == on_disk - {ea.MANIFEST, ".midlevel.lock"}


def test_one_command_at_a_time_writes_an_output_folder(world, tmp_path, capsys):
    from midlevel.io import folder_lock
    out = tmp_path / "out"
    run = str(world["runs"]["joint"].path)
    with folder_lock(out):  # another command (a lock is per open file, so this process too)
        rc = main(["explain", run, world["audio"][0], "--out", str(out), "--cache",
                   str(world["cache"]), "--dataset-split", "none", "--no-timeline", "--quiet"])
        assert rc == 2 and str(out) in capsys.readouterr().err
        rc = main(["compare", run, "--out", str(out), "--methods", "ig", "--clips", "1",
                   "--no-randomization", "--no-faithfulness", "--no-audio", "--cache",
                   str(world["cache"]), "--quiet"])
        assert rc == 2 and "another command" in capsys.readouterr().err
    assert not (out / "predictions.csv").exists()
    assert main(["explain", run, world["audio"][0], "--out", str(out), "--cache",
                 str(world["cache"]), "--dataset-split", "none", "--no-timeline",
                 "--quiet"]) == 0  # released


def test_a_failed_command_leaves_no_new_folder_behind_its_lock(world, tmp_path):
    out = tmp_path / "new"
    rc = main(["explain", str(world["runs"]["joint"].path), world["audio"][0], "--out",
               str(out), "--targets", "bogus", "--cache", str(world["cache"])])
    assert rc == 2 and not out.exists()


# ------------------------------------------------------------------------------ messages


def test_skipped_files_and_short_clips_are_named_once(world, tmp_path, capsys):
    run = str(world["runs"]["joint"].path)
    rc = main(["predict", run, world["audio"][0], world["bad"][1]])
    err = capsys.readouterr().err
    assert rc == 1 and err.count(f"skipping {world['bad'][1]}") == 1
    assert err.count("skipped") <= 1  # the summary line, not the file again
    rc = main(["explain", run, world["short"], "--out", str(tmp_path / "o"), "--cache",
               str(world["cache"]), "--dataset-split", "none", "--no-timeline", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and err.count("padded with silence") == 1, err
    # audit 22b: a black box's explain gave the length from its spectrogram's frames
    rc = main(["explain", str(world["runs"]["blackbox"].path), world["short"], "--out",
               str(tmp_path / "b"), "--cache", str(world["cache"]), "--methods", "ig",
               "--targets", "valence", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0 and err.count("padded with silence") == 1, err
    assert "short.wav: 0.50 s, shorter than the" in err, err


def test_no_progress_bar_when_every_feature_is_cached(world, capsys):
    from midlevel.data.cache import FeatureCache
    from midlevel.data.frontends import make_frontend
    cache = FeatureCache(world["cache"], make_frontend(world["runs"]["joint"].frontend))
    cache.fill(world["audio"][:2], progress=False)
    capsys.readouterr()
    cache.fill(world["audio"][:2], progress=True)
    assert "features" not in capsys.readouterr().err


def test_interventions_record_the_values_set(world, tmp_path):
    run = world["runs"]["joint"]
    c1, c2 = run.concept_names[:2]
    explain_concepts(run, world["audio"][:1], tmp_path, cache_dir=world["cache"],
                     dataset_split=None, timeline=False, settings={c1: 10.0, c2: 1.5})
    table = pd.read_csv(tmp_path / "interventions.csv")
    assert (table["set"] == f"{c1}=10; {c2}=1.5").all()


# ------------------------------------------------------------------------------ figures


def test_contribution_bars_say_their_units():
    from midlevel.plots.concepts import contribution_bars
    rows = []
    for target, kind in (("valence", "regression"), ("mood=calm", "logit"), ("bright", "binary")):
        for c in ("a", "b"):
            rows.append({"clip": "x", "target": target, "concept": c, "concept_value": 1.0,
                         "concept_baseline": 0.5, "weight": 1.0, "contribution": 0.5,
                         "baseline_prediction": 0.0, "prediction": 1.0,
                         "concept_kind": "regression", "output_kind": kind})
    fig = contribution_bars(pd.DataFrame(rows), "x")
    labels = [ax.get_xlabel() for ax in fig.axes if ax.get_visible()]
    assert labels == ["contribution (rating points)", "contribution (logit)",
                      "contribution (log-odds)"]


def test_every_concept_plot_says_the_units_of_its_values():
    """Audit 10b #4: the distribution, timeline, intervention and deletion plots had no units
    where the bar charts of the same quantities did."""
    import matplotlib.pyplot as plt

    from midlevel.plots.attribution import perturbation_plot
    from midlevel.plots.concepts import (
        contribution_distribution, intervention_plot, timeline_plot,
    )
    rows = [{"clip": clip, "target": target, "concept": c, "concept_value": 1.0,
             "contribution": 0.5, "time": time, "concept_kind": "regression",
             "output_kind": kind}
            for clip in ("x", "y") for target, kind in (("valence", "regression"),
                                                        ("mood=calm", "logit"))
            for c in ("a", "b") for time in (1.0, 2.0)]
    table = pd.DataFrame(rows)
    ax = contribution_distribution(table, "valence")
    assert ax.get_ylabel() == "contribution to valence (rating points)"
    assert contribution_distribution(table, "mood=calm").get_ylabel().endswith("(logit)")
    fig = timeline_plot(np.zeros((4, 100)), table, fps=31.25, clip="x")
    assert [a.get_ylabel() for a in fig.axes] == [
        "band (index)", "concept value\n(rating)", "valence\n(rating points)",
        "mood=calm\n(logit)"]
    curve = pd.DataFrame({"order": "greedy", "repeat": 0, "n_replaced": [0, 1],
                          "concept": ["", "a"], "target": "mean", "rmse": [1.0, 0.5]})
    # a table written before the relative RMSE: its mean RMSE, in rating points
    assert intervention_plot(curve).get_ylabel() == "mean RMSE over the targets (rating points)"
    relative = curve.assign(rmse=np.nan, relative_rmse=[0.8, 0.4])
    ax = intervention_plot(relative)
    assert ax.get_ylabel().startswith("mean over the targets of\nRMSE / sd")
    assert list(ax.lines[0].get_ydata()) == [0.8, 0.4]
    assert intervention_plot(curve.assign(target="valence"), target="valence").get_ylabel() \
        == "RMSE of valence (rating points)"
    curves = pd.DataFrame({"clip": "x", "method": "m", "mode": "deletion", "order": "morf",
                           "repeat": 0, "fraction": [0.0, 1.0], "value": [1.0, 0.0]})
    _, ax = plt.subplots()
    perturbation_plot(curves, ax=ax, units="rating")
    assert ax.get_ylabel() == "model output (rating points)"
    plt.close("all")


def test_a_plot_of_an_unknown_target_or_an_empty_table_is_an_error_not_a_blank_chart():
    """Audit 10b #7: intervention_plot of a misspelt target and coefficient_heatmap of an
    empty table drew empty axes."""
    from midlevel.errors import ExplainError
    from midlevel.plots.concepts import (
        coefficient_figure, coefficient_heatmap, intervention_plot,
    )
    curve = pd.DataFrame({"order": "greedy", "repeat": 0, "n_replaced": [0, 1],
                          "concept": ["", "a"], "target": "mean", "rmse": [1.0, 0.5]})
    with pytest.raises(ExplainError, match=r"targets \['nope'\] are not in the table; its "
                                           r"targets are \['mean'\]"):
        intervention_plot(curve, target="nope")
    with pytest.raises(ExplainError, match="coefficient heatmap: the table has no rows"):
        coefficient_heatmap(pd.DataFrame(columns=["concept", "target", "std_weight"]))
    with pytest.raises(ExplainError, match="coefficient figure: the table has no rows"):
        coefficient_figure(pd.DataFrame(columns=["concept", "target", "std_weight"]))


def test_the_coefficient_figure_draws_into_a_figure_given():
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import coefficient_figure
    table = pd.DataFrame({"concept": ["a", "b"], "target": "valence", "std_weight": [0.3, 0.0],
                          "model_std_weight": [0.4, 0.2], "p_value": [0.01, 0.6],
                          "flag": ["", "unsupported"], "mode": "joint"})
    fig = plt.figure()
    assert coefficient_figure(table, fig=fig) is fig
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2
    plt.close(fig)


def test_the_timeline_does_not_draw_a_last_window_crowded_onto_the_previous_one():
    from midlevel.plots.concepts import drawn_windows, timeline_plot
    times = [1.008, 2.0, 2.992, 3.984, 4.976, 5.008]  # hop 1 s; the last ends the clip
    table = pd.DataFrame({"clip": "x", "time": times, "target": "t", "concept": "c",
                          "concept_value": 1.0, "contribution": np.arange(6.0)})
    assert list(drawn_windows(table)["time"]) == times[:-1]
    even = table.assign(time=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert len(drawn_windows(even)) == 6
    fig = timeline_plot(np.zeros((4, 200)), table, fps=31.25)
    xs = fig.axes[-1].lines[0].get_xdata()
    assert list(xs) == times[:-1] and np.all(np.diff(xs) > 0)


def test_the_timeline_draws_each_frame_and_band_around_its_centre():
    """Audit 13c (observation): frame k, centred at k / fps, was drawn over [k, k + 1] / fps,
    half a frame after the curves, and band i half a band above its tick. A single hot
    pixel at frame 40, band 2 is drawn where its centre time and band tick are."""
    from midlevel.plots.concepts import timeline_plot
    fps, spec = 31.25, np.zeros((4, 100))
    spec[2, 40] = 1.0
    table = pd.DataFrame({"clip": "x", "time": [1.0, 2.0], "target": "t", "concept": "c",
                          "concept_value": 1.0, "contribution": 0.0})
    fig = timeline_plot(spec, table, fps=fps, band_frequencies=[100, 200, 400, 800])
    image = fig.axes[0].images[0]
    left, right, bottom, top = image.get_extent()
    col_width, row_height = (right - left) / spec.shape[1], (top - bottom) / spec.shape[0]
    assert left + 40.5 * col_width == pytest.approx(40 / fps)
    assert bottom + 2.5 * row_height == pytest.approx(2.0)
    ticks = fig.axes[0].get_yticks()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert dict(zip(labels, ticks))["400"] == pytest.approx(2.0)
    assert fig.axes[-1].get_xlim() == pytest.approx((0, 100 / fps))


def _contributions(clips=("a", "b"), targets=("valence", "energy"), concepts=("c1", "c2", "c3")):
    """A contributions table of ``clips`` x ``targets`` x ``concepts`` (contribution = index)."""
    rows = [{"clip": clip, "target": t, "concept": c, "concept_value": 5.0,
             "concept_baseline": 4.0, "weight": 0.1, "contribution": 0.1 * (k + 1) * (j + 1),
             "baseline_prediction": 5.0, "prediction": 5.5}
            for j, clip in enumerate(clips) for t in targets for k, c in enumerate(concepts)]
    return pd.DataFrame(rows)


def _timeline(clips=("a", "b"), times=(1.0, 1.5, 2.0)):
    """A timeline table: each clip's windows at ``times`` (shifted by 0.25 s for the second)."""
    rows = [{"clip": clip, "time": t + 0.25 * j, "target": "valence", "concept": c,
             "concept_value": 5.0, "contribution": 0.1 * (j + 1)}
            for j, clip in enumerate(clips) for t in times for c in ("c1", "c2")]
    return pd.DataFrame(rows)


def test_the_timeline_draws_one_clip_and_refuses_to_mix_several():
    """Audit 6, #8: a table of several clips was drawn as one zigzag curve under one clip's
    spectrogram, titled with another clip's name."""
    from midlevel.plots.concepts import timeline_plot
    table = _timeline()
    with pytest.raises(ExplainError, match=r"2 clips \(\['a', 'b'\]\).*clip="):
        timeline_plot(np.zeros((4, 100)), table, fps=31.25)
    fig = timeline_plot(np.zeros((4, 100)), table, fps=31.25, clip="b")
    assert list(fig.axes[-1].lines[0].get_xdata()) == [1.25, 1.75, 2.25]
    assert fig.axes[0].get_title().startswith("b:")
    with pytest.raises(ExplainError, match=r"clip 'z' is not in the table; its clips are"):
        timeline_plot(np.zeros((4, 100)), table, fps=31.25, clip="z")


def test_a_nan_contribution_neither_squashes_the_axes_nor_hides():
    """Audit 6, #9: one NaN set every panel's x range to +-1.15e-6."""
    from midlevel.plots.concepts import contribution_bars
    table = _contributions(clips=("a",))
    table.loc[table["concept"] == "c2", "contribution"] = np.nan
    fig = contribution_bars(table, "a")
    for ax in fig.axes:
        finite = table.loc[table["target"] == ax.get_title().split(":")[0], "contribution"]
        assert ax.get_xlim()[1] == pytest.approx(1.15 * np.nanmax(np.abs(finite)))
        assert [t.get_text().strip() for t in ax.texts] == ["NaN"]
        assert ax.get_ylim()[1] > 2  # the NaN row (sorted last) is inside the panel


@pytest.mark.parametrize("plot, args, kwargs, message", [
    ("contribution_bars", ("nope",), {},
     r"clip 'nope' is not in the table; its clips are \['a', 'b'\]"),
    ("contribution_bars", ("a",), {"targets": ["nope"]},
     r"targets \['nope'\] are not in the table; its targets are \['valence', 'energy'\]"),
    ("contribution_bars", (), {"empty": True}, "no rows"),
    ("contribution_distribution", ("nope",), {}, r"targets \['nope'\] are not in the table"),
    ("contribution_distribution", ("valence",), {"clip": "nope"},
     r"clip 'nope' is not in the table"),
    ("contribution_distribution", ("valence",), {"empty": True}, "no rows"),
    ("timeline_plot", (), {"empty": True}, "no rows"),
])
def test_plots_name_an_unknown_clip_or_target_and_an_empty_table(plot, args, kwargs, message):
    """Audit 6, #13: ZeroDivisionError, IndexError and matplotlib ValueErrors before."""
    from midlevel.plots import concepts
    kwargs = dict(kwargs)
    table = _contributions()
    if plot == "timeline_plot":
        table, args = _timeline(clips=("a",)), (np.zeros((4, 100)),)
        kwargs["fps"] = 31.25
    if kwargs.pop("empty", False):
        table = table.iloc[:0]
    with pytest.raises(ExplainError, match=message):
        if plot == "timeline_plot":
            concepts.timeline_plot(args[0], table, **kwargs)
        else:
            getattr(concepts, plot)(table, *args, **kwargs)


def test_a_one_window_timeline_draws_its_points():
    """Audit 6, #15: a single point per curve drawn without a marker left the panels blank."""
    from midlevel.plots.concepts import timeline_plot
    fig = timeline_plot(np.zeros((4, 63)), _timeline(clips=("a",), times=(1.008,)),
                        fps=31.25)
    lines = [ln for ax in fig.axes[1:] for ln in ax.lines if len(ln.get_xdata()) == 1]
    assert len(lines) == 4 and all(ln.get_marker() == "o" for ln in lines)
    many = timeline_plot(np.zeros((4, 100)), _timeline(clips=("a",)), fps=31.25)
    assert all(ln.get_marker() in ("None", None, "") for ln in many.axes[-1].lines[:2])


def test_window_ends_stop_at_the_audio_and_the_one_window_note_gives_the_window(world,
                                                                               tmp_path):
    """Audit 6, #16: ``end`` ran up to a frame past the audio (the front end rounds the frame
    count up), and the note called a 2.01-s clip "no longer than the window (2 s)" of a
    2.016-s window. Starts and frames are those of the spectrogram's windows."""
    from midlevel.explain import baseline_concepts
    from midlevel.explain.timeline import contributions_over_time, timeline_frames
    run = world["runs"]["joint"]
    path = world["audio"][0]
    seconds = sf.info(path).frames / sf.info(path).samplerate
    base = baseline_concepts(run)
    tl, spec = contributions_over_time(run, path, baseline=base, hop=0.5)
    from_spec, _ = contributions_over_time(run, spec, baseline=base, hop=0.5)
    assert spec.shape[1] / run.fps > seconds            # the spectrogram passes the audio
    assert tl["end"].max() == pytest.approx(seconds) and (tl["end"] <= seconds + 1e-9).all()
    np.testing.assert_array_equal(tl["start"], from_spec["start"])
    pred = run.predict(path, hop=0.5)
    assert pred["end"].max() == pytest.approx(seconds)
    res = explain_concepts(run, [world["short"]], tmp_path / "one", cache_dir=world["cache"],
                           dataset_split=None)
    n_frames = timeline_frames(run)[0]
    note = [n for n in res.notes if "one window" in n]
    assert note and f"(0.5 s) fits in one window of {n_frames / run.fps:.4g} s " \
                    f"({n_frames} frames)" in note[0]


def test_a_long_name_or_a_dollar_in_a_file_name_is_explained(world, tmp_path):
    """Audit 12a #2, #3: a legal 244-byte file name stopped explain ('File name too long'
    for <stem>_contributions.png) after it had written its tables, and a '$' in a name went
    to matplotlib's math mode (a parse error, or italics)."""
    import shutil

    from midlevel.explain.names import MAX_NAME_BYTES
    from midlevel.workflows.explain_concepts import explain_concepts
    long = tmp_path / ("A" * 240 + ".wav")
    dollar = tmp_path / "song_{1}^2 $$ Pay $5 or $10.wav"
    cjk = tmp_path / ("é" * 120 + ".wav")  # 240 bytes (glyphs the default font has)
    for path in (long, dollar, cjk):
        shutil.copy(world["audio"][0], path)
    out = tmp_path / "out"
    result = explain_concepts(world["runs"]["joint"], [str(long), str(dollar), str(cjk)], out,
                              cache_dir=world["cache"], timeline=False)
    assert not result.errors and len(result.contributions["clip"].unique()) == 3
    pngs = list(out.glob("*_contributions.png"))
    assert len(pngs) == 3 and all(len(p.name.encode()) < 255 for p in pngs)
    assert all(len(c.encode()) <= MAX_NAME_BYTES for c in result.contributions["clip"])
    assert any("$5" in c for c in result.contributions["clip"])  # the name kept as it is


def test_a_rerun_stopped_part_way_leaves_nothing_of_the_earlier_explanation(world, tmp_path,
                                                                           monkeypatch):
    """Audit 23a: a rerun into a folder holding an explanation, stopped part-way, left its
    new tables beside the earlier run's timeline and figures (a concept baseline of 7.216 in
    one table, 6.019 in timeline.csv), and a black box's new wavs beside the earlier
    listen_back.csv and predictions.csv: every name present, nothing marked. The earlier
    explanation's files now go before the first new one is written."""
    from midlevel.plots import attribution as plots
    from midlevel.workflows import explain_attributions as ea
    from midlevel.workflows import explain_concepts as ec
    args = {"cache_dir": world["cache"], "dataset_split": None}
    out = tmp_path / "out"
    explain_concepts(world["runs"]["joint"], world["audio"][:2], out, **args)
    earlier = {p.name for p in out.iterdir()}
    assert "timeline.csv" in earlier

    def stopped(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # stopped after the tables, before the figures
        m.setattr(ec, "_clip_figures", stopped)
        with pytest.raises(KeyboardInterrupt):
            explain_concepts(world["runs"]["joint"], world["audio"][:2], out, **args)
    left = {p.name for p in out.iterdir()}
    assert "timeline.csv" not in left and not any(n.endswith(".png") for n in left)
    assert {"baseline.csv", "contributions.csv", "predictions.csv"} <= left

    bb = tmp_path / "bb"
    kw = dict(targets=["valence"], methods=["integrated_gradients"], progress=False,
              n_steps=4, cache_dir=world["cache"])
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:2], bb, **kw)
    assert (bb / ea.PREDICTIONS).is_file() and (bb / ea.LISTEN_BACK).is_file()
    with monkeypatch.context() as m:  # stopped after the first clip's first map
        m.setattr(plots, "attribution_figure", stopped)
        with pytest.raises(KeyboardInterrupt):
            ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:2], bb, **kw)
    files = {str(p.relative_to(bb)) for p in bb.rglob("*") if p.is_file()}
    assert not (bb / ea.PREDICTIONS).exists() and not (bb / ea.LISTEN_BACK).exists()
    assert not any(f.endswith((".wav", ".png")) for f in files)


def test_a_rerun_reads_an_input_the_earlier_explanation_wrote(world, tmp_path):
    """Re-audit 23d: a black-box rerun removed the earlier explanation's files before its
    first clip, so a later input that was one of them (a listen-back wav) was "not found"."""
    from midlevel.workflows import explain_attributions as ea
    bb = tmp_path / "bb"
    kw = dict(targets=["valence"], methods=["integrated_gradients"], progress=False,
              n_steps=4, cache_dir=world["cache"])
    ea.explain_blackbox(world["runs"]["blackbox"], world["audio"][:1], bb, **kw)
    wav = sorted(bb.rglob("*_for.wav"))[0]
    again = ea.explain_blackbox(world["runs"]["blackbox"], [world["audio"][1], str(wav)], bb,
                                **kw)
    assert not again.errors and len(again.predictions) == 2
