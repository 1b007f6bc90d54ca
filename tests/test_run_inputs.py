"""The Python API's array inputs and names (``Run.predict``, ``Run.waveform``, ``explain_clips``):
a waveform array is prepared as its file is, mis-shaped and unusable arrays are skipped by
name like unreadable files, and ``names`` must name each input once (audit 6, #1 #2 #7 #12)."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from midlevel.data.frontends import LogFilteredSpectrogram
from midlevel.errors import ArgumentError, AudioError
from midlevel.explain.head import explain_clips
from midlevel.testing.toy import FPS, toy_config, toy_data
from midlevel.training import fit

SR = 22050


@pytest.fixture(scope="module")
def run(tmp_path_factory, one_torch_thread):
    """A tiny joint run on 149-band toy spectrograms that stores the paper's front end."""
    frontend = LogFilteredSpectrogram()
    table, features, columns = toy_data(n_bands=frontend.n_bands)
    return fit(table, features, columns, tmp_path_factory.mktemp("run") / "joint",
               toy_config(mode="joint", epochs=1), fps=FPS, frontend=frontend.config(),
               progress=False)


def _music(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    """A mono test signal [shape=(n_samples,)] peaking at 0.8, with a DC offset of 0.05."""
    t = np.arange(int(seconds * sr)) / sr
    y = (0.4 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.7 * t))
         + 0.1 * np.sin(2 * np.pi * 1870 * t) * (t > seconds / 2))
    return (0.75 * y / np.abs(y).max() + 0.05).astype(np.float32)


def _wav(tmp_path, name: str, sr: int = SR, seconds: float = 3.0):
    path = tmp_path / f"{name}.wav"
    sf.write(path, _music(seconds, sr=sr), sr, subtype="PCM_16")
    return path


def _values(table: pd.DataFrame) -> np.ndarray:
    return table.drop(columns="clip").to_numpy(dtype=float)


def test_a_waveform_array_is_predicted_as_its_file(run, tmp_path):
    path = _wav(tmp_path, "song")
    from_file = _values(run.predict(path))
    as_float, sr = sf.read(path, dtype="float32")
    as_int16, _ = sf.read(path, dtype="int16")
    # the decoded samples give the file's numbers exactly: same DC removal and normalization
    np.testing.assert_array_equal(_values(run.predict(as_float)), from_file)
    # PCM integers are scaled by their full range (int16 / 32768), as soundfile reads PCM
    np.testing.assert_array_equal(_values(run.predict(as_int16)), from_file)
    np.testing.assert_array_equal(run.waveform(as_int16), run.waveform(as_int16 / 32768.0))
    # the level and a DC offset do not matter: peak normalization after DC removal
    for scaled in (0.1 * as_float, as_float.astype(np.float64) - 0.3):
        np.testing.assert_allclose(_values(run.predict(scaled)), from_file, atol=1e-4)
    y = run.waveform(0.1 * as_float + 0.3)
    assert abs(float(y.mean())) < 1e-3 and np.abs(y).max() == pytest.approx(1.0)


def test_a_very_quiet_array_is_warned_about_by_name_each_time(run, caplog):
    quiet = 1e-5 * _music()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        run.predict(quiet, names=["hush"])
        run.predict(quiet, names=["hush"])
    assert caplog.text.count("hush: very quiet audio") == 2


def test_an_array_at_another_rate_is_resampled_like_a_file(run, tmp_path):
    path = _wav(tmp_path, "song44", sr=44100)
    y, sr = sf.read(path, dtype="float32")
    from_file = _values(run.predict(path))
    np.testing.assert_array_equal(_values(run.predict(y, sample_rate=sr)), from_file)
    assert len(run.waveform(y, sample_rate=sr)) == len(run.waveform(path))
    with pytest.raises(ArgumentError, match="sample_rate"):
        run.predict(y, sample_rate=0)


def test_unusable_arrays_are_skipped_by_name_and_the_rest_predicted(run, tmp_path, caplog):
    path = _wav(tmp_path, "good")
    y, _ = sf.read(path, dtype="float32")
    spec = run.spectrogram(path).numpy()
    nan = y.copy()
    nan[100] = np.nan
    bad = {"silent": np.zeros_like(y), "nan": nan, "empty": np.zeros(0, np.float32),
           "stereo_n2": np.stack([y, y], 1), "stereo_2n": np.stack([y, y], 0),
           "few_bands": spec[:50], "transposed": spec.T, "cube": y[None, None],
           "uint16": np.arange(100, dtype=np.uint16), "text": np.array(["a", "b"]),
           "int64": np.array((y * 32767).astype(np.int16).tolist())}
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        out = run.predict([path, *bad.values()], names=["good", *bad])
    assert list(out["clip"]) == ["good"]
    np.testing.assert_array_equal(_values(out), _values(run.predict(path)))
    errors = out.attrs["errors"]
    assert list(errors) == list(bad)
    for name, message in errors.items():
        assert message.startswith(f"{name}: ")
        assert f"skipping {name}: " in caplog.text
    assert "silent" in errors["silent"] and "NaN" in errors["nan"]
    assert "empty" in errors["empty"]
    # re-audit 6, N3: int64 (numpy's integer from a list of ints) is no PCM format, not "silent"
    assert "int64 samples are no PCM format" in errors["int64"]
    assert "silent" not in errors["int64"]
    for name in ("stereo_n2", "stereo_2n", "few_bands", "transposed"):
        assert "mixed down" in errors[name] and "149 bands" in errors[name]
    # as a silent file is: the same error class, raised when asked for one waveform
    with pytest.raises(AudioError, match="silent"):
        run.waveform(np.zeros(1000, np.float32))
    with pytest.raises(AudioError, match="mixed down"):
        run.waveform(np.stack([y, y], 1))


def test_a_spectrogram_with_the_front_ends_bands_is_predicted(run, tmp_path):
    path = _wav(tmp_path, "spec")
    spec = run.spectrogram(path)
    np.testing.assert_array_equal(_values(run.predict(spec.numpy())), _values(run.predict(path)))
    np.testing.assert_array_equal(_values(run.predict(spec)), _values(run.predict(path)))


def test_names_must_name_each_input_once(run, tmp_path):
    paths = [_wav(tmp_path, f"n{i}") for i in range(3)]
    baseline = pd.Series(0.0, index=run.concept_names)
    for call in (lambda names: run.predict(paths, names=names),
                 lambda names: explain_clips(run, paths, baseline=baseline, names=names)):
        with pytest.raises(ArgumentError, match="2 name.*3 audio input"):
            call(["a", "b"])
        with pytest.raises(ArgumentError, match="4 name.*3 audio input"):
            call(["a", "b", "c", "d"])
        with pytest.raises(ArgumentError, match="repeated: 'a' \\(2 times\\)"):
            call(["a", "a", "b"])
    table, pred = explain_clips(run, paths, baseline=baseline, names=["a", "b", "c"])
    assert list(pred.index) == ["a", "b", "c"]
    assert table.groupby("clip").size().nunique() == 1  # no clip merged into another
    assert list(run.predict(paths[0], names="one")["clip"]) == ["one"]


def test_a_run_without_a_front_end_takes_spectrograms_of_any_band_count(tmp_path):
    table, features, columns = toy_data()
    run = fit(table, features, columns, tmp_path / "toy", toy_config(mode="joint", epochs=1),
              fps=FPS, progress=False)
    out = run.predict([features["c005"], np.zeros(1000, np.float32)])
    assert list(out["clip"]) == ["clip0"]
    assert "no front end" in out.attrs["errors"]["clip1"]


def test_a_list_of_numbers_is_refused_as_one_waveform_given_as_a_batch(run, tmp_path):
    """Re-audit 6, N4: ``predict(list(y))`` read every sample as an input of its own (44,100
    log lines and an empty table)."""
    y, _ = sf.read(_wav(tmp_path, "list"), dtype="float32")
    for call in (lambda a: run.predict(a), lambda a: explain_clips(run, a, baseline=0.0)):
        with pytest.raises(ArgumentError, match="np.asarray"):
            call(list(y[:1000]))
    out = run.predict([y, y * 0.5], names=["a", "b"])  # a list of arrays is a batch
    assert list(out["clip"]) == ["a", "b"]


def test_window_ends_are_the_audio_duration_to_the_microsecond(run, tmp_path):
    """Re-audit 6, N5: the clipped ``end`` was written at full float precision."""
    path = _wav(tmp_path, "odd", seconds=2.01)
    out = run.predict(path, hop=0.5)
    seconds = sf.info(path).frames / SR  # 44320 samples: 2.0099773242630388 s
    assert out["end"].max() == round(seconds, 6) == 2.009977


@pytest.mark.parametrize("hop", [0, -1, float("nan"), float("inf"), "one"])
def test_a_hop_that_is_not_positive_seconds_is_refused_by_name(run, hop):
    """Before (audit 10b #3): 0 silently became the training crop, a negative hop one frame,
    NaN and inf a ValueError / OverflowError from int(), text a TypeError."""
    with pytest.raises(ArgumentError, match=r"hop must be a finite number of seconds > 0"):
        run.predict(_music(), hop=hop)


def test_a_hop_below_one_frame_is_refused_and_times_are_written_to_the_microsecond(run):
    """Audit 13c #4, #7: predict's hop of 0.01 s silently became one frame (32 ms) where
    explain refused it; ends and starts were written as 4.5440000000000005."""
    with pytest.raises(ArgumentError, match=r"hop \(--hop\) 0.01 s is shorter than one frame"):
        run.predict(_music(), hop=0.01)
    table = run.predict(_music(6.0), hop=0.5)
    for column in ("start", "end"):
        assert (table[column] == table[column].round(6)).all()
        assert all(len(repr(float(v)).split(".")[1]) <= 6 for v in table[column])


def test_a_hop_in_seconds_gives_windows_that_far_apart(run):
    table = run.predict(_music(6.0), hop=1.0)
    assert np.allclose(np.diff(table["start"].to_numpy())[:-1], 1.0, atol=0.02)


def test_load_run_says_what_a_run_directory_is(tmp_path, run):
    from midlevel.errors import CheckpointError
    from midlevel.run import load_run
    a_file = tmp_path / "spec.yaml"
    a_file.write_text("x: 1\n")
    with pytest.raises(CheckpointError, match=r"spec\.yaml is a file, not a run directory"):
        load_run(a_file)  # before: 'spec.yaml/model.pt: no trained model'
    with pytest.raises(CheckpointError, match=r"is not a run directory \(the folder `midlevel "
                                              r"train \.\.\. --out RUN` writes\)"):
        load_run(tmp_path)
    assert load_run(run.path).config == run.config


def test_an_unknown_split_is_named_with_the_valid_ones(run):
    """Audit 10b #7: 'nope' read "split 'nope' of the run's data is empty"."""
    with pytest.raises(ArgumentError, match=r"unknown split 'nope': a split is one of train, "
                                            r"validation, calibration, test"):
        run.data("nope")
    with pytest.raises(ArgumentError, match=r"unknown split 3"):  # audit 23b: a TypeError
        run.predictions(3)
