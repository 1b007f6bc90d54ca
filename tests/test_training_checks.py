"""Training settings and ratings refused or warned about before a run starts (audit 6: #3,
#5, #10, #14, #16): settings the backbone cannot take, seeds and memory budgets out of
range, a validation split that cannot select a model, BatchNorm re-estimation batches that
are part of the model while eval_batch_size is not, settings a mode ignores."""
from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from midlevel.errors import TrainingError
from midlevel.training import fit
from midlevel.training.config import TrainConfig, stored_config
from midlevel.data.frontends import window_frames
from midlevel.testing.toy import FPS, toy_config, toy_data


def train_toy(tmp_path, name="run", data=None, **config):
    table, features, columns = data or toy_data()
    return fit(table, features, columns, tmp_path / name, toy_config(**config), fps=FPS,
               progress=False)


def weights(run) -> dict:
    return {k: v.detach().double() for k, v in run.model.state_dict().items()}


# ------------------------------------------------------------------- #10 values that crashed


@pytest.mark.parametrize("key, value, says", [
    ("crop_seconds", 0.05, "crop_seconds 0.05 is shorter than the model's shortest input"),
    ("last_kernel", 100, "last_kernel 100 is larger than the last convolution's input"),
    ("seed", 2 ** 64, "seed must be a whole number >= 0 and <= 18446744073709551615"),
    ("max_memory", float("nan"), "max_memory: a memory budget must be a finite number"),
    ("max_memory", float("inf"), "max_memory: a memory budget must be a finite number"),
    ("max_memory", "1e400", "max_memory: a memory budget must be a finite number"),
])
def test_values_that_crashed_are_refused_by_name_before_a_run_directory(tmp_path, key, value,
                                                                          says):
    with pytest.raises(TrainingError, match=says):
        train_toy(tmp_path, **{key: value})
    assert not (tmp_path / "run").exists()


def test_the_shortest_crop_named_is_the_backbone_s_shortest_input():
    """The crop the message asks for is taken, one frame less is refused: the bound is
    the model's own (probed), not a guess."""
    with pytest.raises(TrainingError, match=r"crop_seconds must be at least ([0-9.]+)") as exc:
        toy_config(crop_seconds=0.05).check_input(40, FPS)
    least = float(exc.value.args[0].rsplit(" ", 1)[1])
    toy_config(crop_seconds=least).check_input(40, FPS)
    frames = window_frames(least, FPS)
    below = (frames - 2) / FPS  # a window of one frame fewer
    assert window_frames(below, FPS) == frames - 1
    with pytest.raises(TrainingError, match="crop_seconds"):
        toy_config(crop_seconds=below).check_input(40, FPS)
    # last_kernel: its bound is the last convolution's input rows (40 bands: 5)
    toy_config(last_kernel=5, crop_seconds=2.0).check_input(40, FPS)
    with pytest.raises(TrainingError, match="last_kernel must be between 1 and 5"):
        toy_config(last_kernel=6, crop_seconds=2.0).check_input(40, FPS)


def test_the_largest_seed_trains(tmp_path):
    run = train_toy(tmp_path, mode="blackbox", epochs=1, seed=2 ** 64 - 1,
                    calibration_bootstrap=5)
    assert (run.path / "model.pt").is_file()


@pytest.mark.parametrize("text", ["1.5e9", "1.5E9", "1.5e+9", "1.5E+09", "1500000000"])
def test_max_memory_reads_every_way_of_writing_an_exponent(text):
    from midlevel.training.stream import parse_bytes
    assert parse_bytes(text) == 1_500_000_000


# ------------------------------------------------------------------- #3 validation


def test_a_validation_split_without_ratings_of_the_scored_columns_is_refused(tmp_path):
    table, features, columns = toy_data()
    validation = table["split"] == "validation"
    table.loc[validation, ["t0", "t1"]] = np.nan
    with pytest.raises(TrainingError) as exc:
        train_toy(tmp_path, data=(table, features, columns), mode="blackbox")
    message = str(exc.value)
    assert "validation split (6 clips)" in message and "blackbox mode" in message
    assert "'t0': no rating" in message and "'t1': no rating" in message
    assert not (tmp_path / "run").exists()
    table.loc[validation, "t0"] = 4.0  # constant: no R^2 either
    with pytest.raises(TrainingError, match="'t0': constant ratings"):
        train_toy(tmp_path, data=(table, features, columns), mode="blackbox")


def test_selection_on_r_needs_three_validation_ratings(tmp_path):
    """With select_on r, two ratings of a column give no r (+-1 by construction): refused by
    name before the run folder exists; select_on r2 trains on the same split."""
    table, features, columns = toy_data()
    rows = table.index[table["split"] == "validation"]
    table.loc[rows[2:], ["t0", "t1"]] = np.nan  # 2 ratings of each target left
    with pytest.raises(TrainingError, match="'t0': 2 ratings \\(r needs at least 3\\)"):
        train_toy(tmp_path, data=(table, features, columns), mode="blackbox", select_on="r")
    assert not (tmp_path / "run").exists()
    run = train_toy(tmp_path, data=(table, features, columns), mode="blackbox", epochs=1,
                    calibration_bootstrap=5)
    assert (run.path / "model.pt").is_file()


def test_columns_left_out_of_the_validation_score_are_named(tmp_path, caplog):
    """Joint mode, targets unrated on validation: a warning naming them, and the score is the
    mean over the concepts (as metrics.score computes it)."""
    from midlevel.training.metrics import score
    table, features, columns = toy_data()
    table.loc[table["split"] == "validation", ["t0", "t1"]] = np.nan
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        run = train_toy(tmp_path, data=(table, features, columns), mode="joint", epochs=1,
                        recalibrate_bn=False, calibrate_concepts=False)
    assert "gives no r2 for 2 of the 5 columns the joint mode is selected on ('t0': no " \
           "rating; 't1': no rating): the validation score is the mean over the other 3" \
           in caplog.text
    val = run.metrics[run.metrics["split"] == "validation"]
    concepts = val[val["kind"] == "concept"]
    assert score(val, ("concept", "target")) == score(concepts, ("concept",))
    history = pd.read_csv(run.path / "history.csv")
    assert math.isfinite(float(history["val_score"].iloc[-1]))


def test_a_nan_validation_score_is_said_not_silently_a_bad_epoch(tmp_path, caplog,
                                                                 monkeypatch):
    from midlevel.training import loop
    monkeypatch.setattr(loop, "score", lambda *a, **k: float("nan"))
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        train_toy(tmp_path, mode="blackbox", epochs=2, patience=1, calibrate_concepts=False)
    assert "epoch 1: no validation score (NaN" in caplog.text
    assert "no epoch had a validation score: the weights are the last epoch's (1)" \
        in caplog.text


# ------------------------------------------------------------------- #5 batches


def test_eval_batch_size_changes_neither_weights_nor_metrics(tmp_path):
    runs = {size: train_toy(tmp_path, f"e{size}", mode="joint", eval_batch_size=size)
            for size in (1, 7, 64)}
    for size in (1, 7):
        a, b = weights(runs[size]), weights(runs[64])
        assert all(torch.equal(a[k], b[k]) for k in b), size
        values = ["r", "r2", "rmse", "mae", "cal_slope", "cal_intercept"]
        np.testing.assert_allclose(runs[size].metrics[values].to_numpy(float),
                                   runs[64].metrics[values].to_numpy(float),
                                   rtol=1e-6, atol=1e-6)
    # bn_batch_size is the setting that is part of the model
    other = train_toy(tmp_path, "bn1", mode="joint", eval_batch_size=64, bn_batch_size=5)
    b = weights(runs[64])
    assert any(not torch.equal(weights(other)[k], b[k]) for k in b)


def test_a_run_stored_without_bn_batch_size_keeps_its_eval_batch_size(tmp_path):
    """An older run (no bn_batch_size in its config) re-estimated with eval_batch_size
    batches: loaded and resumed it keeps doing so."""
    from midlevel.run import load_run
    assert stored_config({"eval_batch_size": 7})["bn_batch_size"] == 7
    assert stored_config({"eval_batch_size": 7, "bn_batch_size": 3})["bn_batch_size"] == 3
    assert TrainConfig.from_stored({"eval_batch_size": 5}).bn_batch_size == 5
    straight = train_toy(tmp_path, "straight", mode="blackbox", epochs=2, eval_batch_size=7,
                         bn_batch_size=7)
    run = train_toy(tmp_path, "old", mode="blackbox", epochs=1, eval_batch_size=7,
                    bn_batch_size=7)
    record = yaml.safe_load((run.path / "config.yaml").read_text())
    del record["config"]["bn_batch_size"]  # as a version before the key wrote it
    (run.path / "config.yaml").write_text(yaml.safe_dump(record, sort_keys=False))
    ckpt = torch.load(run.path / "model.pt", weights_only=False)
    del ckpt["config"]["bn_batch_size"]
    torch.save(ckpt, run.path / "model.pt")
    assert load_run(run.path).config.bn_batch_size == 7
    table, features, columns = toy_data()
    with pytest.raises(TrainingError, match=r"config key 'bn_batch_size' 64 \(the run's: 7\)"):
        fit(table, features, columns, run.path, toy_config(mode="blackbox", epochs=2,
                                                           eval_batch_size=7), fps=FPS,
            resume=True, progress=False)
    resumed = fit(table, features, columns, run.path,
                  toy_config(mode="blackbox", epochs=2, eval_batch_size=7, bn_batch_size=7),
                  fps=FPS, resume=True, progress=False)
    a, b = weights(resumed), weights(straight)
    assert all(torch.equal(a[k], b[k]) for k in b)


# ------------------------------------------------------------------- #16 ignored settings


def test_settings_a_mode_ignores_are_named_in_a_warning(tmp_path, caplog):
    assert TrainConfig(mode="joint", w=0.2, head_init="random").ignored() == []
    assert TrainConfig(mode="blackbox").ignored() == []
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        train_toy(tmp_path, mode="independent", epochs=1, w=0.3, head_init="random",
                  calibrate_concepts=False)
    assert "the independent mode ignores w 0.3" in caplog.text
    assert "head_init 'random'" in caplog.text
