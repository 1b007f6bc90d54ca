"""A run's dataset splits are read one clip at a time and predicted once (audit 11b #2, #3,
#8): ``Run.data`` returns a lazy view of the cached spectrograms instead of a list holding a
split's every spectrogram, ``Run.predict`` holds one input at a time however many it is given,
``Run.predictions`` keeps its table in ``RUN/predictions/`` under a key of the model, the
clips' audio and the windows, and the long passes of training and prediction show progress."""
from __future__ import annotations

import logging
import os
import weakref

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from midlevel.data.stream import CachedSpecs
from midlevel.errors import ArgumentError
from midlevel.run import load_run
from midlevel.training import stored_predictions

from conftest import train_tiny_runs


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("streaming")
    spec, cache, runs = train_tiny_runs(root, n_clips=16, seed=5, duration=3.0,
                                        modes=("joint",))
    return spec, cache, runs["joint"]


def test_a_runs_split_is_read_from_the_cache_as_it_is_used(world):
    spec, cache, run = world
    rows, specs = run.data("train", cache_dir=cache)
    assert isinstance(specs, CachedSpecs) and len(specs) == len(rows)
    first = specs[0]
    assert isinstance(first, np.ndarray) and first.dtype == np.float32 and first.ndim == 2
    assert isinstance(specs[1:3], CachedSpecs) and len(specs[1:3]) == 2
    np.testing.assert_array_equal(specs[1:3][0], specs[1])
    np.testing.assert_array_equal(specs.subset([2, 0])[1], first)
    with pytest.raises(IndexError):
        specs[len(specs)]
    # the lazy view predicts what the loaded arrays predict
    lazy = run.predict(specs, names=list(rows.index))
    eager = run.predict([specs[i] for i in range(len(specs))], names=list(rows.index))
    pd.testing.assert_frame_equal(lazy, eager)


def test_predict_holds_one_input_at_a_time_not_all_of_them(world, tmp_path, monkeypatch):
    """Every input's spectrogram was made before the first prediction: memory grew with the
    number of files (``midlevel predict`` over hundreds). Now the windows of a batch keep at
    most a batch of clips alive, whatever the number of inputs."""
    _, _, run = world
    sr = 22050
    paths = []
    for k in range(12):
        y = 0.5 * np.sin(2 * np.pi * (200 + 20 * k) * np.arange(int(1.6 * sr)) / sr)
        sf.write(tmp_path / f"f{k}.wav", y.astype(np.float32), sr)
        paths.append(str(tmp_path / f"f{k}.wav"))
    import midlevel.training.predict as run_module
    made, most = [], [0]
    real = run_module.item_spectrogram

    def tracked(*args, **kwargs):
        spec, seconds = real(*args, **kwargs)  # freed by reference counting, no gc needed
        most[0] = max(most[0], sum(ref() is not None for ref in made))
        made.append(weakref.ref(spec))
        return spec, seconds

    monkeypatch.setattr(run_module, "item_spectrogram", tracked)
    table = run.predict(paths, batch_size=2)
    assert len(table) == 12 and most[0] <= 3, most[0]  # before: 11 alive at the last input
    monkeypatch.undo()
    pd.testing.assert_frame_equal(table, run.predict(paths, batch_size=2))


def test_a_splits_predictions_are_computed_once_per_model_and_audio(world, monkeypatch, caplog):
    spec, cache, run = world
    run = load_run(run.path)
    store = run.path / stored_predictions.FOLDER
    calls = []
    real = type(run).predict

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(run), "predict", counting)
    first = run.predictions("train", cache_dir=cache)
    assert len(calls) == 1 and (store / "train.pt").is_file()
    again = load_run(run.path).predictions("train", cache_dir=cache)
    assert len(calls) == 1  # read back, not predicted again
    pd.testing.assert_frame_equal(first, again)
    # held-out splits asked together are their own table
    held = run.predictions(("validation", "test"), cache_dir=cache)
    assert len(calls) == 2 and (store / "validation+test.pt").is_file()
    assert set(held["split"]) <= {"validation", "test"}

    # an audio file of the split edited in place: its features, so the key, change
    rows, _ = run.data("train", cache_dir=cache)
    audio = rows["path"].iloc[0]
    y, sr = sf.read(audio)
    stat = os.stat(audio)
    sf.write(audio, (0.5 * y).astype(np.float32), sr)
    os.utime(audio, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its time put back
    changed = load_run(run.path).predictions("train", cache_dir=cache)
    assert len(calls) == 3
    assert not np.allclose(changed.iloc[0][run.concept_names].to_numpy(float),
                           first.iloc[0][run.concept_names].to_numpy(float))

    # another model in the folder (the checkpoint's bytes change): predicted again
    ckpt = torch.load(run.path / "model.pt", weights_only=False)
    for name, value in ckpt["state_dict"].items():
        if value.is_floating_point() and "weight" in name:
            ckpt["state_dict"][name] = value * 1.5
            break
    torch.save(ckpt, run.path / "model.pt")
    other = load_run(run.path).predictions("train", cache_dir=cache)
    assert len(calls) == 4
    assert not np.allclose(other[run.concept_names].to_numpy(float),
                           changed[run.concept_names].to_numpy(float))

    # a damaged store is named and recomputed
    (store / "train.pt").write_bytes(b"not a table")
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        repaired = load_run(run.path).predictions("train", cache_dir=cache)
    assert len(calls) == 5 and "cannot read the stored predictions" in caplog.text
    pd.testing.assert_frame_equal(repaired, other)


def test_a_read_only_run_is_used_as_it_is(world, monkeypatch, caplog):
    spec, cache, run = world
    if os.geteuid() == 0:  # root writes anywhere: refuse the write instead
        def refuse(*args, **kwargs):
            raise PermissionError("read-only file system")
        monkeypatch.setattr(stored_predictions, "write_torch", refuse)
        monkeypatch.setattr(stored_predictions.Path, "mkdir", lambda *a, **k: None)
    store = run.path / stored_predictions.FOLDER
    for f in store.glob("test.pt"):
        f.unlink()
    mode = run.path.stat().st_mode
    try:
        os.chmod(run.path, 0o555)
        with caplog.at_level(logging.WARNING, logger="midlevel"):  # said where commands say
            table = load_run(run.path).predictions("test", cache_dir=cache)
    finally:
        os.chmod(run.path, mode)
    assert len(table) and "predictions not stored" in caplog.text
    assert not (store / "test.pt").exists()


def test_long_passes_show_progress(world, capsys):
    """The BatchNorm pass, validation and the final metrics of training, and predict over
    many files, each show a bar (audit 11b #8: minutes without output on large sets)."""
    from midlevel.testing.toy import FPS, toy_config, toy_data
    from midlevel.training import fit
    table, features, columns = toy_data()
    fit(table, features, columns, world[2].path.parent / "progress_run",
        toy_config(mode="sequential", epochs=1), fps=FPS, progress=True)
    err = capsys.readouterr().err
    for label in ("BatchNorm statistics", "validation", "head (training clips)",
                  "metrics (test)"):
        assert label in err, label
    spec, cache, run = world
    rows, specs = run.data("test", cache_dir=cache)
    run.predict(list(rows["path"]), progress=True)
    assert "predict" in capsys.readouterr().err


def test_weights_changed_in_memory_are_another_model(world):
    """A notebook that changes a loaded run's weights (fine-tuning, a randomization check)
    gets the predictions of the weights it has, not the stored ones of model.pt."""
    spec, cache, run = world
    run = load_run(run.path)
    before = run.predictions("test", cache_dir=cache)
    with torch.no_grad():
        run.model.head_layer.bias.add_(1.0)
    after = run.predictions("test", cache_dir=cache)
    assert not np.allclose(after[run.target_names].to_numpy(float),
                           before[run.target_names].to_numpy(float))
    np.testing.assert_array_equal(stored_predictions.model_digest(load_run(run.path).model),
                                  stored_predictions.model_digest(load_run(run.path).model))


def test_the_key_holds_what_the_weights_do_not(world, monkeypatch, caplog):
    """Re-audit: the front end, the decoder's version and the outputs' names are part of
    the predictions (not of the weights), so each gives another key; a store this
    environment cannot unpickle is named and recomputed."""
    spec, cache, run = world
    run = load_run(run.path)
    rows, specs = run.data("test", cache_dir=cache)
    key = stored_predictions.prediction_key(run, rows, specs, batch_size=16)
    import midlevel.data.cache as cache_module
    monkeypatch.setattr(cache_module, "DECODE_VERSION", cache_module.DECODE_VERSION + 100)
    _, moved = run.data("test", cache_dir=cache)  # a new decoder: another cache folder
    assert stored_predictions.prediction_key(run, rows, moved, batch_size=16) != key
    monkeypatch.undo()
    other = load_run(run.path)
    other.frontend = dict(other.frontend, log_mul=5.0)
    _, refit = other.data("test", cache_dir=cache)
    assert stored_predictions.prediction_key(other, rows, refit, batch_size=16) != key
    renamed = load_run(run.path)
    renamed.model.concept_names = [f"{c}_v2" for c in renamed.model.concept_names]
    assert stored_predictions.prediction_key(renamed, rows, specs, batch_size=16) != key
    assert stored_predictions.prediction_key(load_run(run.path), rows, specs,
                                             batch_size=16) == key

    first = run.predictions("test", cache_dir=cache)  # stored
    fresh = load_run(run.path)

    def foreign(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'pandas._libs.a_newer_one'")
    monkeypatch.setattr(stored_predictions.torch, "load", foreign)
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        again = fresh.predictions("test", cache_dir=cache)
    assert "cannot read the stored predictions" in caplog.text
    pd.testing.assert_frame_equal(first, again)


def test_evaluate_repairs_a_damaged_cache_entry(world, tmp_path):
    """Re-audit: evaluate read the entries' headers for its short-clip note and stopped at
    an empty entry that every other command recomputes."""
    import shutil
    spec, cache, run = world
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    rows, specs = load_run(run.path).data("test", cache_dir=copy)
    entry = specs.cache.entry(specs.paths[0])
    entry.write_bytes(b"")
    table = load_run(run.path).evaluate(cache_dir=copy)
    assert len(table) and np.load(entry).ndim == 2


class _Planted:
    """A pickle that runs code when loaded: it writes the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_run_files_are_read_without_running_code_from_them(world, tmp_path, monkeypatch,
                                                            caplog):
    """Audit 23b: ``load_run`` and ``Run.predictions`` unpickled whatever a shared run folder's
    ``model.pt`` or ``predictions/*.pt`` named, so opening a run could run its code. Now both
    are read weights-only: a planted object is refused by name (model) or recomputed with a
    warning (a stored table), and nothing runs; the stored tables come back exactly."""
    import shutil

    from midlevel.errors import CheckpointError
    from midlevel.training.torch_files import TRUST_VARIABLE
    spec, cache, run = world
    shared = tmp_path / "shared_run"
    shutil.copytree(run.path, shared)
    first = load_run(shared).predictions("test", cache_dir=cache)
    again = load_run(shared).predictions("test", cache_dir=cache)
    pd.testing.assert_frame_equal(first, again, check_exact=True)  # stored, read back exactly

    ran = tmp_path / "code_ran"
    stored = shared / stored_predictions.FOLDER / "test.pt"
    state = torch.load(stored, weights_only=True)
    torch.save({**state, "payload": _Planted(ran)}, stored)
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        recomputed = load_run(shared).predictions("test", cache_dir=cache)
    assert not ran.exists() and "(or not by it: it names io.open)" in caplog.text
    pd.testing.assert_frame_equal(recomputed, first, check_exact=True)

    ckpt = torch.load(shared / "model.pt", weights_only=True)
    torch.save({**ckpt, "payload": _Planted(ran)}, shared / "model.pt")
    with pytest.raises(CheckpointError, match=rf"model\.pt: holds objects.*{TRUST_VARIABLE}=1"):
        load_run(shared)
    assert not ran.exists()
    monkeypatch.setenv(TRUST_VARIABLE, "1")  # the user's own older run, read as before
    load_run(shared)
    assert ran.exists()


def test_a_background_pads_a_short_clip_with_silence_as_training_does(world):
    """Audit 23b: ``Run.background`` looped a clip shorter than the crop, so SHAP's expected
    value and the mean reference were built from audio the model never heard (training and
    ``predict`` pad with silence)."""
    spec, cache, run = world
    frames = int(round(3.0 * run.fps))  # the world's clips are 3 s
    bg = run.background(4, n_frames=2 * frames, cache_dir=cache)
    assert bg.shape[-1] == 2 * frames
    assert (bg[..., frames + 2:] == 0).all()
    assert (bg[..., :frames - 2].abs().sum((1, 2, 3)) > 0).all()


def test_several_splits_may_be_named_in_any_sequence(world):
    """Re-audit 23d: after the split check was tightened, an array of names raised "truth
    value is ambiguous" and an Index read "split ... is empty"."""
    spec, cache, run = world
    names = list(run.data(["train", "test"], cache_dir=cache)[0].index)
    for given in (np.array(["train", "test"]), pd.Index(["train", "test"]), ("train", "test")):
        assert list(run.data(given, cache_dir=cache)[0].index) == names
    with pytest.raises(ArgumentError, match="unknown split"):  # not a sequence of names
        run.data((s for s in ["train"]), cache_dir=cache)
