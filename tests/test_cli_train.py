"""``midlevel train / evaluate / predict`` end to end on a tiny synthetic dataset."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from midlevel.cli import main
from midlevel.errors import MidlevelError


@pytest.fixture(scope="module")
def synth_spec(tmp_path_factory):
    from midlevel.synth import synthesize
    return synthesize(tmp_path_factory.mktemp("synth"), n_clips=14, seed=1, duration=2.5,
                      n_jobs=1, progress=False)


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: midlevel " + command in capsys.readouterr().out


def test_train_evaluate_predict(synth_spec, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4}))
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["train", str(synth_spec), "--mode", "joint", "--out", str(run), "--preset", "small",
            "--epochs", "1", "--config", str(config), "--cache", str(cache), "--quiet"]
    assert main(args) == 0
    assert (run / "model.pt").is_file()
    assert main(args) == 2  # exists: needs --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(args[:-1] + ["--epochs", "2", "--resume", "--quiet"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2

    out = tmp_path / "metrics.csv"
    assert main(["evaluate", str(run), "--cache", str(cache), "--out", str(out), "--quiet",
                 "--split", "test", "--split", "test"]) == 0
    metrics = pd.read_csv(out)
    assert set(metrics["split"]) == {"test"} and set(metrics["kind"]) == {"concept", "target"}
    assert not metrics.duplicated(["split", "kind", "name"]).any()  # a split asked twice

    audio = sorted((synth_spec.parent / "audio").glob("*.wav"))[:2]
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio at all")
    csv = tmp_path / "pred.csv"
    code = main(["predict", str(run), str(audio[0]), str(bad), str(audio[1]), "--out", str(csv),
                 "--hop", "0.5"])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.wav" in err and "predict:" in err  # the progress bar (no --quiet) ...
    named = [part for part in re.split(r"[\r\n]", err) if "broken.wav" in part]
    assert named and all(part.startswith("skipping") for part in named), named  # ... apart
    pred = pd.read_csv(csv)
    assert set(pred["clip"]) == {str(audio[0]), str(audio[1])}
    before = csv.read_bytes()  # every file failing: the earlier CSV stays as it was
    assert main(["predict", str(run), str(bad), "--out", str(csv)]) == 1
    assert "nothing written" in capsys.readouterr().err and csv.read_bytes() == before
    assert (pred.groupby("clip")["start"].count() >= 3).all()  # 2.5 s clips, 1 s windows
    assert {"start", "end", "melodiousness", "valence"} <= set(pred.columns)

    # a folder another command is writing into (audit 23a: predict overwrote a running
    # explain's predictions.csv, both exit 0)
    from midlevel.io import folder_lock
    busy = tmp_path / "explaining"
    with folder_lock(busy):
        assert main(["predict", str(run), str(audio[0]), "--out",
                     str(busy / "predictions.csv"), "--quiet"]) == 2
        assert main(["evaluate", str(run), "--cache", str(cache), "--out",
                     str(busy / "metrics.csv"), "--quiet"]) == 2
        (busy / "clip").mkdir()  # a folder below it too (re-audit 23d), through a link
        (tmp_path / "link").symlink_to(busy)  # too; a path out of it through `..` is free
        assert main(["predict", str(run), str(audio[0]), "--out",
                     str(busy / "clip" / "p.csv"), "--quiet"]) == 2
        assert main(["predict", str(run), str(audio[0]), "--out",
                     str(tmp_path / "link" / "p.csv"), "--quiet"]) == 2
        assert main(["predict", str(run), str(audio[0]), "--out",
                     str(busy / ".." / "free.csv"), "--quiet"]) == 0
    assert "another command is writing into" in capsys.readouterr().err
    assert not (busy / "predictions.csv").exists() and not (busy / "metrics.csv").exists()
    assert not (busy / "clip" / "p.csv").exists() and not (busy / "p.csv").exists()
    assert (tmp_path / "free.csv").is_file()


def test_a_split_of_short_clips_is_one_warning_not_a_line_per_clip(synth_spec, tmp_path,
                                                                   caplog):
    """Clips shorter than the window, predicted as a dataset split (coefficients, explain's
    baseline and dataset view), give one warning with their count, once per split (audit
    11b #3: one line per training clip, 800 lines for explaining three files)."""
    import logging
    from midlevel.training import load_run
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 3.0, "batch_size": 4}))
    run = tmp_path / "run"
    assert main(["train", str(synth_spec), "--mode", "joint", "--out", str(run), "--preset",
                 "small", "--epochs", "1", "--config", str(config), "--cache",
                 str(tmp_path / "cache"), "--quiet"]) == 0
    loaded = load_run(run)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        pred = loaded.predictions("train", cache_dir=tmp_path / "cache")
        loaded.predictions("train", cache_dir=tmp_path / "cache")
    lines = [r.getMessage() for r in caplog.records if "shorter than" in r.getMessage()]
    assert len(lines) == 1, lines
    assert f"{len(pred)} of {len(pred)} train clips" in lines[0]
    assert "shorter than the 3-s window" in lines[0] and "validate --window 3`" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        held_out = loaded.predictions(("validation", "test"), cache_dir=tmp_path / "cache")
    lines = [r.getMessage() for r in caplog.records if "shorter than" in r.getMessage()]
    assert len(lines) == 1 and f"of {len(held_out)} validation and test clips" in lines[0]
    for ask, split in ((lambda r: r.evaluate(cache_dir=tmp_path / "cache"), "test"),
                       (lambda r: r.predictions("train", cache_dir=tmp_path / "cache"), "train")):
        caplog.clear()  # evaluate says it too; the stored training predictions keep their notes
        with caplog.at_level(logging.WARNING, logger="midlevel"):
            ask(load_run(run))
        lines = [r.getMessage() for r in caplog.records if "shorter than" in r.getMessage()]
        assert len(lines) == 1 and f" {split} clips have a note" in lines[0], lines
    single = loaded.predict(sorted((synth_spec.parent / "audio").glob("*.wav"))[:1])
    assert len(single.attrs["warnings"]) == 1  # a file the user names keeps its own line


def test_bottleneck_on_a_spec_without_concepts_is_refused(synth_spec, tmp_path, capsys):
    raw = yaml.safe_load(synth_spec.read_text())
    raw["concepts"] = {}
    raw["root"] = str(synth_spec.parent)
    spec = tmp_path / "no_concepts.yaml"
    spec.write_text(yaml.safe_dump(raw))
    assert main(["train", str(spec), "--mode", "sequential", "--out", str(tmp_path / "r")]) == 2
    assert "no concept columns" in capsys.readouterr().err


def test_a_run_trained_with_root_needs_no_root_later(synth_spec, tmp_path, capsys):
    """The spec's own root holds no data; training gets --root; evaluate, coefficients,
    explain and compare then find the data through the root stored with the run."""
    import shutil
    elsewhere = tmp_path / "spec_only"
    elsewhere.mkdir()
    spec = elsewhere / "spec.yaml"
    shutil.copy(synth_spec, spec)
    root = str(synth_spec.parent)
    run, cache = tmp_path / "run", tmp_path / "cache"
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4,
                                    "calibrate_concepts": False}))
    assert main(["train", str(spec), "--root", root, "--mode", "joint", "--out", str(run),
                 "--preset", "small", "--epochs", "1", "--config", str(tiny), "--cache",
                 str(cache), "--quiet"]) == 0
    with pytest.raises(MidlevelError):  # the spec alone does not find the data
        from midlevel.data.annotations import load_annotations
        from midlevel.data.spec import load_spec
        load_annotations(load_spec(spec))
    assert main(["evaluate", str(run), "--cache", str(cache), "--quiet"]) == 0
    assert main(["coefficients", str(run), "--out", str(tmp_path / "coef"), "--data",
                 "ratings", "--cache", str(cache), "--quiet"]) == 0
    audio = sorted((synth_spec.parent / "audio").glob("*.wav"))[0]
    assert main(["explain", str(run), str(audio), "--out", str(tmp_path / "explain"),
                 "--no-timeline", "--cache", str(cache), "--quiet"]) == 0
    assert main(["compare", str(run), "--out", str(tmp_path / "report"), "--cache", str(cache),
                 "--methods", "integrated_gradients", "--clips", "1", "--background", "2",
                 "--n-steps", "2", "--no-faithfulness", "--no-randomization", "--no-audio",
                 "--quiet"]) == 0
    assert (tmp_path / "report" / "report.html").is_file()
    # the spec moved (audit 11a #2): the error says where the run looked and what to pass
    moved = elsewhere.rename(tmp_path / "spec_moved") / "spec.yaml"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--cache", str(cache), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(spec) in err and "--spec" in err and "not there any more" in err
    rc = main(["evaluate", str(run), "--spec", str(moved), "--root", root, "--cache",
               str(cache), "--quiet"])
    assert rc == 0, capsys.readouterr().err


def test_train_bf16_reaches_the_config_or_is_refused_by_name(synth_spec, tmp_path, capsys):
    from midlevel.training.config import cpu_has_bf16
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4}))
    run = tmp_path / "run"
    code = main(["train", str(synth_spec), "--out", str(run), "--preset", "small", "--epochs",
                 "1", "--config", str(config), "--cache", str(tmp_path / "cache"), "--quiet",
                 "--bf16"])
    if cpu_has_bf16():
        assert code == 0
        assert yaml.safe_load((run / "config.yaml").read_text())["config"]["cpu_bf16"] is True
    else:
        assert code != 0 and "cpu_bf16" in capsys.readouterr().err
        assert not run.exists()


def test_bf16_on_a_cpu_without_bf16_units_is_refused_naming_the_flag(synth_spec, tmp_path,
                                                                    capsys, monkeypatch):
    """Audit 10c #3: the refusal told a user who typed --bf16 to 'leave cpu_bf16 off'."""
    import midlevel.training.config as config_module
    monkeypatch.setattr(config_module, "cpu_has_bf16", lambda: False)
    run = tmp_path / "run"
    assert main(["train", str(synth_spec), "--out", str(run), "--preset", "small", "--epochs",
                 "1", "--cache", str(tmp_path / "cache"), "--quiet", "--bf16"]) == 2
    err = capsys.readouterr().err
    assert "--bf16 (config key cpu_bf16): this CPU has no bfloat16 units" in err
    assert "train without it" in err and not run.exists()


def test_named_roots_given_to_train_are_used_by_later_commands(synth_spec, tmp_path, capsys,
                                                               caplog):
    """A named root replaced with --root NAME=DIR at training is stored with the run (as is
    the main root): evaluate scores against the ratings the run was trained on, an explicit
    --root still replaces it, and runs that stored no named roots keep the spec's."""
    from midlevel.run import load_run
    ratings = pd.read_csv(synth_spec.parent / "annotations.csv")
    meta, flipped = tmp_path / "meta", tmp_path / "metaZ"
    meta.mkdir(), flipped.mkdir()
    ratings.to_csv(meta / "annotations.csv", index=False)
    ratings.assign(melodiousness=11 - ratings["melodiousness"]).to_csv(
        flipped / "annotations.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "named", "root": str(synth_spec.parent), "roots": {"meta": "meta"},
        "audio": {"pattern": "audio/{id}.wav"},
        "tables": [{"path": "annotations.csv", "root": "meta", "id_column": "clip_id"}],
        "concepts": {"melodiousness": {"scale": [1, 10]}, "dissonance": {"scale": [1, 10]}},
        "targets": {"valence": {"scale": [1, 9]}},
        "splits": {"seed": 0, "test": {"size": 4}, "validation": {"size": 3}}}))
    run, cache = tmp_path / "run", tmp_path / "cache"
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4,
                                    "calibrate_concepts": False}))
    assert main(["train", str(spec), "--root", f"meta={flipped}", "--mode", "joint", "--out",
                 str(run), "--preset", "small", "--epochs", "1", "--config", str(tiny),
                 "--cache", str(cache), "--quiet"]) == 0
    out = tmp_path / "evaluated.csv"
    assert main(["evaluate", str(run), "--cache", str(cache), "--out", str(out),
                 "--quiet"]) == 0
    trained = load_run(run).metrics.query("split == 'test'").reset_index(drop=True)
    evaluated = pd.read_csv(out)
    pd.testing.assert_frame_equal(evaluated[["kind", "name"]], trained[["kind", "name"]])
    for column in ("r", "rmse"):
        assert evaluated[column].to_numpy() == pytest.approx(trained[column].to_numpy(),
                                                             rel=1e-4, nan_ok=True)

    # a resume without --root continues on the roots the run was trained with
    assert main(["train", str(spec), "--resume", "--epochs", "2", "--out", str(run),
                 "--cache", str(cache), "--quiet"]) == 0
    loaded = load_run(run)
    assert loaded.info["data"]["roots"] == {"meta": str(flipped)}
    assert loaded.spec().roots["meta"] == flipped
    assert loaded.spec().root == synth_spec.parent.resolve()
    again = loaded.spec(root=f"meta={meta}")  # explicit wins, the main root stays the run's
    assert again.roots["meta"] == meta and again.root == synth_spec.parent.resolve()
    del loaded.info["data"]["roots"]  # a run of an older version: the spec's named roots
    assert loaded.spec().roots["meta"] == meta.resolve()

    flipped.rename(tmp_path / "moved")  # a stored root that is gone: the spec's, and a warning
    assert load_run(run).spec().roots["meta"] == meta.resolve()
    assert "root 'meta'" in caplog.text and "--root meta=DIR" in caplog.text


def test_resume_with_other_options_or_columns_is_refused_by_name(synth_spec, tmp_path, capsys):
    """--resume keeps the run's model: --mode, --preset and --seed that differ from it are
    named and refused, as is a spec of other concepts, and the run stays as it was; the same
    options and a higher --epochs resume."""
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4,
                                    "calibrate_concepts": False}))
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--out", str(run), "--config", str(tiny), "--cache", str(cache), "--quiet"]
    assert main(["train", str(synth_spec), "--mode", "joint", "--preset", "small",
                 "--epochs", "1", *common]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", str(synth_spec), "--resume", "--mode", "blackbox", "--preset",
                 "paper", "--seed", "5", "--epochs", "2", *common]) == 2
    err = capsys.readouterr().err
    assert "--mode 'blackbox' (the run's: 'joint')" in err
    assert "--preset 'paper' (the run's: 'small')" in err and "--seed 5 (the run's: 0)" in err
    raw = yaml.safe_load(synth_spec.read_text())
    raw["root"] = str(synth_spec.parent)
    del raw["concepts"]["minorness"], raw["segments"]
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(yaml.safe_dump(raw))
    assert main(["train", str(fewer), "--resume", "--epochs", "2", *common]) == 2
    err = capsys.readouterr().err
    assert "concepts: the data's" in err and "'minorness']" in err and "Traceback" not in err
    assert main(["train", str(synth_spec), "--resume", "--frontend", "logmel", "--epochs", "2",
                 *common]) == 2
    assert "not --frontend 'LogMelSpectrogram'" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # eval_batch_size sets only speed and memory (bn_batch_size is the model's): it may change
    # (re-audit 6, N2: it was refused)
    faster = tmp_path / "faster.yaml"
    faster.write_text(yaml.safe_dump({**yaml.safe_load(tiny.read_text()), "eval_batch_size": 4}))
    resume = [a if a != str(tiny) else str(faster) for a in common]
    assert main(["train", str(synth_spec), "--resume", "--mode", "joint", "--epochs", "2",
                 *resume]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["config"]["bn_batch_size"] == 16 and stored["config"]["eval_batch_size"] == 4


def _joint_run(synth_spec, tmp_path):
    """A one-epoch joint run on a copy of the synthetic spec: ``(raw spec, spec path, run,
    cache, the train options, the clips' splits)``."""
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    raw = yaml.safe_load(synth_spec.read_text())
    raw["root"] = str(synth_spec.parent)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4,
                                    "calibrate_concepts": False}))
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--out", str(run), "--config", str(tiny), "--cache", str(cache), "--quiet"]
    assert main(["train", str(spec), "--mode", "joint", "--preset", "small", "--epochs", "1",
                 *common]) == 0
    return raw, spec, run, cache, common, load_annotations(load_spec(spec))["split"]


def _reseeded(raw: dict, path, trained):
    """Write ``raw`` to ``path`` with a split seed that draws a training clip into the test
    split; return the splits it draws."""
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    for seed in range(1, 50):
        raw["splits"]["seed"] = seed
        path.write_text(yaml.safe_dump(raw))
        edited = load_annotations(load_spec(path))["split"]
        if ((edited == "test") & (trained == "train")).any():
            return edited
    raise AssertionError("no seed moves a training clip into the test split")


def test_later_commands_and_resume_keep_the_splits_the_run_was_trained_on(
        synth_spec, tmp_path, capsys, caplog):
    """The run stores each clip's split (splits.csv): after the spec is edited to draw other
    splits, later commands score the run on its own test clips (warned once, naming the
    clips that moved), a resume on the edited spec is refused by name, and --epochs below the
    epochs done is refused naming both numbers."""
    import logging

    from midlevel.run import load_run
    raw, spec, run, cache, common, trained = _joint_run(synth_spec, tmp_path)
    _reseeded(raw, spec, trained)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        rows, _ = load_run(run).data("test", cache_dir=cache)
        assert sorted(rows.index) == sorted(trained.index[trained == "test"])
        out = tmp_path / "evaluated.csv"
        assert main(["evaluate", str(run), "--cache", str(cache), "--out", str(out),
                     "--quiet"]) == 0
    assert caplog.text.count("the spec now draws other splits") == 2  # once per loaded run
    assert "clip(s) the run knows are in another split" in caplog.text
    assert "train -> " in caplog.text or "validation -> " in caplog.text
    stored = load_run(run).metrics.query("split == 'test'").reset_index(drop=True)
    assert pd.read_csv(out)["r"].to_numpy() == pytest.approx(stored["r"].to_numpy(), rel=1e-4,
                                                             nan_ok=True)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", str(spec), "--resume", "--epochs", "2", *common]) == 2
    err = capsys.readouterr().err
    assert "cannot resume on other clips or splits" in err and "another split" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    raw["splits"]["seed"] = yaml.safe_load(synth_spec.read_text())["splits"]["seed"]
    spec.write_text(yaml.safe_dump(raw))
    assert main(["train", str(spec), "--resume", "--epochs", "2", *common]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", str(spec), "--resume", "--epochs", "1", *common]) == 2
    assert "--epochs 1 is lower than the 2 epochs the run has already done" in \
        capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_a_resume_on_other_audio_or_time_varying_ratings_is_refused(synth_spec, tmp_path,
                                                                   capsys):
    """Audit 21b A2: the resume check compared the clip table's ratings only, so a run
    resumed on a training clip's audio replaced by noise, or on mirrored segment ratings (the
    labels of every crop of their clips), went on without a word."""
    import shutil

    import numpy as np
    import soundfile as sf

    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    data = tmp_path / "data"
    shutil.copytree(synth_spec.parent, data)
    raw, spec, run, cache, common, trained = _joint_run(data / synth_spec.name, tmp_path)
    assert "audio" in pd.read_csv(run / "splits.csv")  # the bytes each clip trained on
    table = load_annotations(load_spec(spec))
    clip = sorted(trained.index[trained == "train"])[0]
    wav = Path(table.loc[clip, "path"])
    original = wav.read_bytes()
    y, sr = sf.read(wav)
    sf.write(wav, np.random.default_rng(0).normal(0, 0.1, y.shape), sr)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["train", str(spec), "--resume", "--epochs", "2", *common]) == 2
    err = capsys.readouterr().err
    assert "cannot resume on other audio than the run's: 1 clip(s)" in err and clip in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    wav.write_bytes(original)
    segments = data / "segments.csv"
    rows = pd.read_csv(segments)
    rated = [c for c in rows.columns if c not in ("clip_id", "start", "end")]
    rows[rated[0]] = 11 - rows[rated[0]]
    rows.to_csv(segments, index=False)
    assert main(["train", str(spec), "--resume", "--epochs", "2", *common]) == 2
    err = capsys.readouterr().err
    assert "other time-varying ratings than the run's" in err and rated[0] in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    shutil.copy(synth_spec.parent / "segments.csv", segments)
    assert main(["train", str(spec), "--resume", "--epochs", "2", *common]) == 0


def test_an_edited_copy_of_the_spec_scores_the_run_on_its_own_splits_too(synth_spec, tmp_path,
                                                                        caplog):
    """Audit 10a D2: --spec with an edited copy (another split seed) silently scored the run
    on the copy's splits: its "test" held clips the model trained on (r 0.911 against a true
    0.803). A copy reading the run's audio now keeps the run's splits, warned; another dataset
    whose ids happen to match (other audio files) keeps its own."""
    import logging
    import shutil

    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    from midlevel.run import load_run
    raw, _, run, cache, _, trained = _joint_run(synth_spec, tmp_path)
    copy = tmp_path / "copy" / "spec.yaml"
    copy.parent.mkdir()
    _reseeded(raw, copy, trained)
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        rows, _ = load_run(run).data("test", spec=copy, cache_dir=cache)
    assert sorted(rows.index) == sorted(trained.index[trained == "test"])
    assert "the spec now draws other splits" in caplog.text and str(copy) in caplog.text
    # a copy of the whole dataset, audio included (re-audit 10, #1): the run's clips too
    copied = tmp_path / "copied"
    shutil.copytree(synth_spec.parent, copied)
    raw["root"] = str(copied)
    (copied / "spec.yaml").write_text(yaml.safe_dump(raw))
    rows, _ = load_run(run).data("test", spec=copied / "spec.yaml", cache_dir=cache)
    assert sorted(rows.index) == sorted(trained.index[trained == "test"])
    # the same ids and file sizes on other audio (another dataset): its own splits, unwarned
    from midlevel.synth import synthesize
    other = synthesize(tmp_path / "other", n_clips=14, seed=2, duration=2.5, n_jobs=1,
                       progress=False).parent
    raw["root"] = str(other)
    (other / "spec.yaml").write_text(yaml.safe_dump(raw))
    assert sorted(p.stat().st_size for p in (other / "audio").iterdir()) == \
        sorted(p.stat().st_size for p in (copied / "audio").iterdir())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        rows, _ = load_run(run).data("test", spec=other / "spec.yaml", cache_dir=cache)
    # its bytes cannot tell it from a re-encoded copy: the run's split of each name (never
    # less safe), said as such (audit 22e), not as a spec drawing other splits
    assert sorted(rows.index) == sorted(trained.index[trained == "test"])
    assert "draws other splits" not in caplog.text
    assert re.search(r"\d+ clip\(s\) the run knows by name hold other bytes than at "
                     r"training", caplog.text)


def test_each_clip_is_scored_in_the_split_its_audio_had_at_training(synth_spec, tmp_path,
                                                                     caplog):
    """Audit 22c: with the run's own spec gone (a moved dataset), an edited copy given with
    --spec scored the run on the copy's splits, every "test" clip one it trained on ("may be
    scored as held out" was all it said); on the own spec's path, audio swapped between a
    training and a test clip was scored without a word. The SHA-1 of each clip's audio in
    splits.csv now puts every clip where its audio was."""
    import logging
    import shutil

    import soundfile as sf

    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    from midlevel.run import load_run
    data = tmp_path / "data"
    shutil.copytree(synth_spec.parent, data)
    raw, spec, run, cache, _, trained = _joint_run(data / synth_spec.name, tmp_path)
    copy = tmp_path / "copy" / "spec.yaml"
    copy.parent.mkdir()
    _reseeded(raw, copy, trained)
    spec.unlink()  # the run's own spec is gone
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        rows, _ = load_run(run).data("test", spec=copy, cache_dir=cache)
    assert sorted(rows.index) == sorted(trained.index[trained == "test"])
    assert "the spec now draws other splits" in caplog.text
    assert "cannot load the run's own spec" not in caplog.text
    # a training clip's and a test clip's audio swapped under the run's own spec
    spec.write_text(yaml.safe_dump({**raw, "splits": yaml.safe_load(
        synth_spec.read_text())["splits"]}))
    table = load_annotations(load_spec(spec))
    a = sorted(trained.index[trained == "train"])[0]
    b = sorted(trained.index[trained == "test"])[0]
    pa, pb = Path(table.loc[a, "path"]), Path(table.loc[b, "path"])
    held = pa.read_bytes()
    pa.write_bytes(pb.read_bytes())
    pb.write_bytes(held)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        rows, _ = load_run(run).data("test", cache_dir=cache)
    assert a in rows.index and b not in rows.index
    assert "2 clip(s) hold audio another clip had when the run was trained" in caplog.text
    assert f"{a} holds {b}'s (test)" in caplog.text and f"{b} holds {a}'s (train)" in caplog.text
    # audio the run never heard under a name it knows keeps the spec's split, said so
    pb.write_bytes(held[:-1000] + bytes(1000))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        load_run(run).data("test", cache_dir=cache)
    assert "1 clip(s) the run knows by name hold other bytes than at training" in caplog.text
    # re-encoded files (other bytes, the same audio) with an edited split seed (audit 22e:
    # kept in the spec's splits, the run was scored on its training clips)
    spec.write_text(copy.read_text())
    table = load_annotations(load_spec(spec))
    for path in table["path"]:
        y, sr = sf.read(path, dtype="int16")
        sf.write(path, y, sr, subtype="PCM_24")
    rows, _ = load_run(run).data("test", cache_dir=cache)
    assert sorted(rows.index) == sorted(trained.index[trained == "test"])


def test_a_bad_value_in_a_config_file_names_the_file(synth_spec, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("lr: .inf\n")
    assert main(["train", str(synth_spec), "--mode", "joint", "--out", str(tmp_path / "r"),
                 "--config", str(config), "--quiet"]) == 2
    assert f"{config}: lr must be a finite number > 0, got inf" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_cache_option_that_is_a_file_is_refused_by_name(synth_spec, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args in (["features", str(synth_spec)], ["evaluate", str(tmp_path)]):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--cache", str(afile), "--quiet"])
        assert exc.value.code == 2
        assert f"argument --cache: {afile} is a file, not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["features", str(synth_spec), "--cache", str(afile / "sub"), "--quiet"])
    assert f"({afile} is a file)" in capsys.readouterr().err


@pytest.mark.parametrize("rank, shown", [("0", True), ("1", False)])
def test_only_the_first_process_prints_the_run(synth_spec, tmp_path, capsys, monkeypatch,
                                               rank, shown):
    """Under torchrun every process returns the run; one line says where it is."""
    from types import SimpleNamespace

    import midlevel.training.from_spec as from_spec
    monkeypatch.setattr(from_spec, "train", lambda *a, **k: SimpleNamespace(path=tmp_path))
    monkeypatch.setenv("RANK", rank)
    assert main(["train", str(synth_spec), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert ("run: " in capsys.readouterr().out) == shown


def _as_older_version(run, *, drop_config=(), drop_model=(), drop_files=()):
    """Make ``run`` look written by an earlier version: keys its config.yaml and model.pt
    did not have yet, files it did not write."""
    import torch
    record = yaml.safe_load((run / "config.yaml").read_text())
    for key in drop_config:
        record["config"].pop(key, None)
    for key in drop_model:   # the data record is in both files
        if key.startswith("data."):
            record["data"].pop(key[5:], None)
    (run / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    ckpt = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    for key in drop_config:
        ckpt["config"].pop(key, None)
    for key in drop_model:
        if "." in key:
            outer, inner = key.split(".")
            ckpt[outer].pop(inner, None)
        else:
            ckpt.pop(key, None)
    torch.save(ckpt, run / "model.pt")
    for name in drop_files:
        (run / name).unlink()


def test_runs_of_earlier_versions_keep_their_rules_and_say_what_they_lack(synth_spec, tmp_path,
                                                                          capsys):
    """Audit 14c, on runs of five earlier versions: a resume of a run from before BatchNorm
    re-estimation took today's defaults (R^2 epochs compared with a best mean r, the old
    weights marked re-estimated, the load warning gone); a run from before the DC offset
    was removed, or before splits.csv, loaded without a word; Run.metrics of an old run
    without metrics.csv raised a bare FileNotFoundError; --resume of a folder with model.pt
    but no checkpoint.pt trained a new model over it."""
    import torch

    from midlevel.errors import CheckpointError
    from midlevel.run import load_run
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({"width": 0.125, "crop_seconds": 1.0, "batch_size": 4}))
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--out", str(run), "--cache", str(cache), "--quiet"]
    assert main(["train", str(synth_spec), "--mode", "joint", "--preset", "small",
                 "--epochs", "1", "--config", str(tiny), *common]) == 0
    capsys.readouterr()
    # select_on kept: its legacy value, r, needs 3 validation clips (this world has 2)
    _as_older_version(run, drop_config=("recalibrate_bn", "calibrate_concepts",
                                        "shrink_calibration", "bn_batch_size"),
                      drop_model=("bn_recalibrated", "decode_version", "metrics_csv",
                                  "data.roots", "data.decode_version"))
    assert main(["train", str(synth_spec), "--resume", "--epochs", "2", *common]) == 0
    err = capsys.readouterr().err
    assert "earlier version that had no recalibrate_bn, calibrate_concepts, " \
           "shrink_calibration" in err
    assert "(recalibrate_bn False, calibrate_concepts False" in err
    assert torch.load(run / "model.pt", map_location="cpu",
                      weights_only=False)["bn_recalibrated"] is False
    stored = yaml.safe_load((run / "config.yaml").read_text())["config"]
    assert (stored["calibrate_concepts"], stored["recalibrate_bn"]) == (False, False)
    resumed = torch.load(run / "model.pt", map_location="cpu", weights_only=False)
    assert resumed["decode_version"] is None   # not stamped with today's: the run's is unknown
    assert "recalibrate_bn" in resumed["data"]["legacy_settings"]
    _as_older_version(run, drop_model=("metrics_csv",), drop_files=("metrics.csv",
                                                                     "splits.csv"))
    loaded = load_run(run)
    err = capsys.readouterr().err
    assert "trained before versions had BatchNorm statistics re-estimated" in err
    assert "does not record the audio decoder" in err
    with pytest.raises(CheckpointError, match="metrics.csv: missing.*midlevel evaluate"):
        loaded.metrics
    from midlevel.workflows.compare_accuracy import run_metrics
    again = run_metrics([loaded], cache_dir=cache)   # compare computes them on the run's spec
    assert set(again["split"]) == {"test"} and len(again) > 0
    assert main(["evaluate", str(run), "--cache", str(cache), "--quiet"]) == 0
    assert "holds no splits.csv" in capsys.readouterr().err
    (run / "checkpoint.pt").unlink()
    model = (run / "model.pt").read_bytes()
    assert main(["train", str(synth_spec), "--resume", "--epochs", "3", *common]) == 2
    assert "--resume needs the run's checkpoint.pt" in capsys.readouterr().err
    assert (run / "model.pt").read_bytes() == model
    import shutil
    shutil.copytree(run, tmp_path / "named.pt")   # a run folder named like a model file
    assert load_run(tmp_path / "named.pt").mode == "joint"


def test_a_run_without_a_setting_keeps_what_its_version_did():
    """What each key a run's version did not store stands for: the behaviour before the key
    existed, never today's default; a stored key is kept."""
    from midlevel.training.config import legacy_settings, stored_config
    before_bn = {"eval_batch_size": 8, "mode": "joint"}
    assert legacy_settings(before_bn) == {
        "bn_batch_size": 8, "recalibrate_bn": False, "select_on": "r",
        "calibrate_concepts": False, "shrink_calibration": False}
    assert legacy_settings({"recalibrate_bn": True, "calibrate_concepts": True})[
        "select_on"] == "r2"
    assert stored_config({"select_on": "r2", "eval_batch_size": 4})["select_on"] == "r2"
    from dataclasses import asdict

    from midlevel.training.config import TrainConfig
    assert legacy_settings(asdict(TrainConfig())) == {}


def test_load_warnings_follow_what_a_run_records_of_its_version(caplog):
    """Re-audit 14: a run trained with recalibrate_bn off on purpose was told to retrain on
    every load; a decoder inferred from a key stored 22 commits before the DC change missed
    decoder-1 runs. Now: the BatchNorm warning for runs whose version had no re-estimation
    (or resumes of them), the decoder warning from the record, hedged where unknown."""
    from pathlib import Path

    from midlevel.training.checkpoint import warn_if_older

    def said(ckpt):
        caplog.clear()
        with caplog.at_level("WARNING", logger="midlevel"):
            recalibrated = warn_if_older(Path("m.pt"), ckpt)
        return recalibrated, caplog.text

    current = {"bn_recalibrated": True, "decode_version": 2, "config": {"bn_batch_size": 16},
               "data": {}}
    assert said(current) == (True, "")
    assert said({**current, "bn_recalibrated": False}) == (False, "")   # off on purpose
    legacy = {**current, "bn_recalibrated": False,
              "data": {"legacy_settings": {"recalibrate_bn": False}}}
    assert "before versions had BatchNorm" in said(legacy)[1]
    assert "before versions had BatchNorm" in said({"config": {}, "data": {}})[1]
    assert "decoder 1, now 2" in said({**current, "decode_version": 1})[1]
    unknown = {"bn_recalibrated": True, "config": {"eval_batch_size": 8}, "data": {"roots": {}}}
    assert "does not record the audio decoder" in said(unknown)[1]
    assert said({**unknown, "config": {"bn_batch_size": 8}})[1] == ""
