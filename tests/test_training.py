"""Training: every mode, masked losses, head fitting, resume, determinism, round trip, errors."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from midlevel.errors import CheckpointError, TrainingError
from midlevel.training import Columns, fit, load_run
from midlevel.training.data import window_starts
from midlevel.models.bottleneck import output_layout
from midlevel.training.evaluation import evaluate_split
from midlevel.training.losses import masked_mse, target_loss
from midlevel.training.metrics import metrics_table, regression_metrics
from midlevel.testing.toy import FPS, toy_config, toy_data


def train_toy(tmp_path, name="run", data=None, **config):
    table, features, columns = data or toy_data()
    return fit(table, features, columns, tmp_path / name, toy_config(**config), fps=FPS,
               progress=False)


# ----------------------------------------------------------------------------- pieces


def test_regression_metrics_on_known_values():
    m = regression_metrics(np.array([1.0, 2.0, 3.0, np.nan]), np.array([1.0, 2.0, 3.0, 9.0]))
    assert m["n"] == 3 and m["r"] == pytest.approx(1) and m["r2"] == pytest.approx(1)
    assert m["rmse"] == 0 and m["mae"] == 0
    m = regression_metrics(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert m["r"] == pytest.approx(1) and m["mae"] == pytest.approx(1)
    assert m["r2"] == pytest.approx(1 - 3 / 2)


def test_metrics_table_has_a_mean_row():
    t = metrics_table("test", "target", ["a", "b"], np.array([[1, 1], [2, 3], [3, 2.0]]),
                      np.array([[1, 3], [2, 2], [3, 1.0]]))
    assert list(t["name"]) == ["a", "b", "mean"]
    assert t["r"].iloc[2] == pytest.approx((1 + -0.5) / 2)


def test_masked_mse_ignores_missing_ratings():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    true = torch.tensor([[1.5, float("nan")], [float("nan"), float("nan")]])
    loss = masked_mse(pred, true)
    loss.backward()
    assert loss.item() == pytest.approx(0.25)
    assert pred.grad[0, 0] != 0 and (pred.grad.flatten()[1:] == 0).all()
    empty = masked_mse(pred, torch.full((2, 2), float("nan")))
    assert empty.item() == 0 and empty.requires_grad


def test_class_target_loss_ignores_missing_labels():
    layout = output_layout([{"name": "r"}, {"name": "c", "kind": "class", "classes": ["x", "y"]}])
    out = torch.tensor([[0.0, 5.0, -5.0], [0.0, 0.0, 0.0]])
    loss = target_loss(out, torch.tensor([[0.0, 0.0], [float("nan"), float("nan")]]), layout)
    assert loss.item() == pytest.approx(np.log1p(np.exp(-10)) / 2, abs=1e-6)


def test_windows_cover_the_clip_and_end_at_its_end():
    assert window_starts(20, 32, 16) == [0]
    assert window_starts(100, 32, 32) == [0, 32, 64, 68]
    assert window_starts(64, 32, 32) == [0, 32]


def test_prediction_cuts_windows_a_batch_at_a_time(monkeypatch):
    """predict_specs holds a clip and one batch of windows, whatever the hop (audit 11b #1:
    every window of a clip was stacked first, 5.6 GB for a 30-min file at hop 0.1 s), and
    gives what the model gives each window, grouped by clip, with several clips."""
    from midlevel.models.bottleneck import BlackBox
    from midlevel.training import predict as predict_module
    torch.manual_seed(0)
    model = BlackBox([{"name": "y"}], backbone={"width": 0.125, "dropout": 0.0}).eval()
    specs = [torch.randn(40, 200), torch.randn(40, 20), torch.randn(40, 90)]
    cut, seen, most = [0], [0], [0]
    real_crop, forward = predict_module.crop, model.forward

    def counting_crop(*args):
        cut[0] += 1
        return real_crop(*args)

    def counting_forward(x):
        most[0] = max(most[0], cut[0] - seen[0])
        seen[0] += len(x)
        return forward(x)

    monkeypatch.setattr(predict_module, "crop", counting_crop)
    monkeypatch.setattr(model, "forward", counting_forward)
    rows = predict_module.predict_specs(model, specs, 32, 3, device=torch.device("cpu"),
                                        batch_size=4, per_window=True)
    assert most[0] <= 4 and seen[0] == cut[0] == sum(len(r[0]) for r in rows)
    monkeypatch.undo()
    from midlevel.training.data import crop
    for spec, (starts, _, outputs) in zip(specs, rows):
        assert starts == window_starts(spec.shape[1], 32, 3)
        w = torch.stack([crop(spec, s, 32) for s in starts]).unsqueeze(1)  # all at once
        with torch.no_grad():
            direct = model.unscale(model(w)).targets.numpy()
        np.testing.assert_allclose(outputs, direct, atol=1e-5)
    _, means = predict_module.predict_specs(model, specs, 32, 3, device=torch.device("cpu"))
    np.testing.assert_allclose(means, np.stack([r[2].mean(0) for r in rows]), atol=1e-6)


# ----------------------------------------------------------------------------- modes


@pytest.mark.parametrize("mode", ["blackbox", "independent", "sequential", "joint"])
def test_every_mode_trains_and_writes_a_complete_run(tmp_path, mode):
    run = train_toy(tmp_path, mode=mode)
    for name in ("model.pt", "checkpoint.pt", "config.yaml", "history.csv", "metrics.csv",
                 "train.log", "splits.csv"):
        assert (run.path / name).is_file(), name
    m = run.metrics
    assert set(m["split"]) == {"train", "validation", "test"}
    kinds = {"target"} if mode == "blackbox" else {"concept", "target"}
    assert set(m["kind"]) == kinds
    assert len(pd.read_csv(run.path / "history.csv")) == 2
    pred = run.predict([np.random.default_rng(0).normal(size=(40, 50)).astype(np.float32)])
    assert list(pred.columns) == ["clip", *run.concept_names, "t0", "t1"]


def test_independent_head_is_least_squares_on_true_concepts(tmp_path):
    data = toy_data()
    run = train_toy(tmp_path, data=data, mode="independent", epochs=1)
    design = run.head_design
    assert design.attrs["source"] == "true concepts"
    table = data[0][data[0]["split"] == "train"]
    assert list(design.index) == list(table.index)
    X = np.c_[design[run.concept_names].to_numpy(), np.ones(len(design))]
    coef = np.linalg.lstsq(X, design[["t0", "t1"]].to_numpy(), rcond=None)[0]
    head = run.model.head_layer
    np.testing.assert_allclose(head.weight.detach().numpy(), coef[:-1].T, rtol=1e-4, atol=1e-5)
    # the design is z-scored true ratings: the head recovers the known linear map exactly
    z = (table[["k0", "k1", "k2"]] - table[["k0", "k1", "k2"]].mean()) / table[["k0", "k1", "k2"]].std(ddof=0)
    np.testing.assert_allclose(design[run.concept_names].to_numpy(), z.to_numpy(), atol=1e-5)


def test_sequential_head_is_fitted_on_predicted_concepts(tmp_path):
    run = train_toy(tmp_path, mode="sequential", epochs=1)
    assert run.head_design.attrs["source"] == "predicted concepts"


def test_joint_learns_the_toy_world(tmp_path):
    run = train_toy(tmp_path, data=toy_data(40), mode="joint", epochs=6, lr=5e-3)
    val = run.metrics.query("split == 'validation' and name == 'mean'").set_index("kind")["r"]
    assert val["concept"] > 0.7 and val["target"] > 0.6


def test_missing_ratings_are_masked(tmp_path):
    table, features, columns = toy_data()
    train = table.index[table["split"] == "train"]
    table.loc[train[:6], ["t0", "t1"]] = np.nan  # concept-only clips
    table.loc[train[6:10], ["k0", "k1", "k2"]] = np.nan  # target-only clips
    table.loc[train[10], "k1"] = np.nan
    run = train_toy(tmp_path, data=(table, features, columns), mode="joint")
    assert np.isfinite(pd.read_csv(run.path / "history.csv")["loss"]).all()
    m = run.metrics.query("split == 'train' and name != 'mean'").set_index("name")["n"]
    assert m["t0"] == len(train) - 6 and m["k0"] == len(train) - 4 and m["k1"] == len(train) - 5


def test_class_targets_train_and_predict_labels(tmp_path):
    table, features, _ = toy_data()
    table["mood"] = (table["t0"] > table["t0"].median()).astype(float)
    columns = Columns(["k0", "k1", "k2"], [{"name": "t1", "kind": "regression"},
                                           {"name": "mood", "kind": "class",
                                            "classes": ["calm", "wild"]}])
    for mode in ("joint", "independent"):
        run = fit(table, features, columns, tmp_path / mode, toy_config(mode=mode), fps=FPS,
                  progress=False)
        acc = run.metrics.query("name == 'mood'")["accuracy"]
        assert acc.between(0, 1).all()
        pred = run.predict([features["c005"]])
        assert pred["mood"].iloc[0] in ("calm", "wild")
        assert pred[["mood=calm", "mood=wild"]].sum(axis=1).iloc[0] == pytest.approx(1)


# ----------------------------------------------------------------------------- runs


def test_same_seed_same_metrics_and_resume_continues_exactly(tmp_path):
    full = train_toy(tmp_path, "full", mode="joint", epochs=2, seed=3).metrics
    again = train_toy(tmp_path, "again", mode="joint", epochs=2, seed=3).metrics
    pd.testing.assert_frame_equal(full, again)
    train_toy(tmp_path, "cut", mode="joint", epochs=1, seed=3)
    (tmp_path / "cut" / "model.pt").unlink()  # as if killed after epoch 1
    table, features, columns = toy_data()
    resumed = fit(table, features, columns, tmp_path / "cut", toy_config(mode="joint", epochs=2,
                  seed=3), fps=FPS, resume=True, progress=False)
    pd.testing.assert_frame_equal(full, resumed.metrics)
    assert len(pd.read_csv(tmp_path / "cut" / "history.csv")) == 2


def test_save_load_round_trip_gives_the_same_outputs(tmp_path):
    table, features, columns = toy_data()
    run = train_toy(tmp_path, data=(table, features, columns), mode="joint")
    again = load_run(run.path)
    x = torch.randn(3, 1, 40, 32)
    torch.testing.assert_close(run.model(x).targets, again.model(x).targets)
    rows = table[table["split"] == "test"]
    specs = [torch.as_tensor(features[c]) for c in rows.index]
    from midlevel.training import ddp
    n_frames = int(again.config.crop_seconds * FPS) + 1
    recomputed = evaluate_split(ddp.Context(), again.model, rows, specs, columns, "test",
                                n_frames, n_frames - 1, again.config)
    stored = run.metrics.query("split == 'test'").reset_index(drop=True)
    np.testing.assert_allclose(recomputed["r"], stored["r"], rtol=1e-5)


def test_existing_run_is_not_overwritten_without_permission(tmp_path):
    train_toy(tmp_path, mode="blackbox", epochs=1)
    with pytest.raises(CheckpointError, match="--overwrite"):
        train_toy(tmp_path, mode="blackbox", epochs=1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("keep")
    table, features, columns = toy_data()
    with pytest.raises(CheckpointError, match="not a run directory"):
        fit(table, features, columns, tmp_path / "other", toy_config(epochs=1), fps=FPS,
            overwrite=True, progress=False)


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_resume_refuses_other_columns_and_settings_and_leaves_the_run(tmp_path):
    """Resuming with a spec of other concepts or targets, or with settings that define the
    model (mode, preset, seed...), is refused by name before the run is touched; a higher
    maximum of epochs is the resume's use."""
    table, features, columns = toy_data()
    run = train_toy(tmp_path, data=(table, features, columns), mode="joint", epochs=1)
    before = _files(run.path)
    other = Columns(["k0", "k1"], columns.targets)
    with pytest.raises(CheckpointError, match=r"concepts: the data's \['k0', 'k1'\] vs the "
                                              r"run's \['k0', 'k1', 'k2'\]"):
        fit(table, features, other, run.path, toy_config(mode="joint", epochs=2), fps=FPS,
            resume=True, progress=False)
    classes = Columns(columns.concepts, [{"name": "t0", "kind": "class", "classes": [0, 1]},
                                         columns.targets[1]])
    with pytest.raises(CheckpointError, match=r"targets: .*t0 \(class: 0, 1\)"):
        fit(table.assign(t0=(table["t0"] > 3).astype(float)), features, classes, run.path,
            toy_config(mode="joint", epochs=2), fps=FPS, resume=True, progress=False)
    with pytest.raises(TrainingError, match=r"'blackbox' \(the run's: 'joint'\).*seed.* 5"):
        fit(table, features, columns, run.path, toy_config(mode="blackbox", seed=5, epochs=2),
            fps=FPS, resume=True, progress=False)
    assert _files(run.path) == before
    resumed = fit(table, features, columns, run.path, toy_config(mode="joint", epochs=2),
                  fps=FPS, resume=True, progress=False)
    assert len(pd.read_csv(resumed.path / "history.csv")) == 2


def test_resume_refuses_other_splits_or_ratings_and_accepts_the_same_data(tmp_path, caplog):
    """The run stores its clips' splits and a fingerprint of its ratings: a resume on other
    splits or other ratings is refused by name and the run stays byte for byte; the same
    data resumes, and model.pt and config.yaml then hold the same data record."""
    import yaml
    table, features, columns = toy_data()
    run = train_toy(tmp_path, data=(table, features, columns), mode="joint", epochs=1)
    stored = pd.read_csv(run.path / "splits.csv", dtype=str)
    assert dict(zip(stored["clip"], stored["split"])) == table["split"].to_dict()
    before = _files(run.path)
    config = toy_config(mode="joint", epochs=2)
    swapped = table.copy()
    train_clip, test_clip = table.index[0], table.index[-1]
    swapped.loc[[train_clip, test_clip], "split"] = ["test", "train"]
    with pytest.raises(CheckpointError, match=rf"2 of the 32 clip\(s\) the run knows are in "
                                              rf"another split \({train_clip}: train -> test"):
        fit(swapped, features, columns, run.path, config, fps=FPS, resume=True, progress=False)
    with pytest.raises(CheckpointError, match=r"1 clip\(s\) the run had are gone"):
        fit(table.iloc[1:], features, columns, run.path, config, fps=FPS, resume=True,
            progress=False)
    rerated = table.assign(t1=table["t1"] + 0.5)
    with pytest.raises(CheckpointError, match=r"other ratings .*\['t1'\]"):
        fit(rerated, features, columns, run.path, config, fps=FPS, resume=True, progress=False)
    assert _files(run.path) == before
    moved = table.assign(path=[p.replace("/nowhere/", "/copy/") for p in table["path"]])
    resumed = fit(moved, features, columns, run.path, config, fps=FPS, resume=True,
                  progress=False, data={"spec": "/new/spec.yaml"})
    record = yaml.safe_load((run.path / "config.yaml").read_text())
    assert record["data"] == resumed.info["data"] and record["data"]["spec"] == "/new/spec.yaml"
    assert record["config"]["epochs"] == resumed.info["config"]["epochs"] == 2
    assert (run.path / "splits.csv").read_bytes() == before["splits.csv"]
    # nothing left to train: said in the log, not silently
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        fit(table, features, columns, run.path, config, fps=FPS, resume=True, progress=False)
    assert "has done 2 epochs, the maximum (epochs 2): nothing to train" in caplog.text


def test_load_run_of_an_unfinished_run_says_resume(tmp_path):
    run = train_toy(tmp_path, mode="blackbox", epochs=1)
    (run.path / "model.pt").unlink()
    with pytest.raises(CheckpointError, match="--resume"):
        load_run(run.path)


# ----------------------------------------------------------------------------- bad input


def test_non_finite_loss_names_epoch_and_batch(tmp_path):
    table, features, columns = toy_data()
    features["c003"][0, 0] = np.inf  # a corrupt training spectrogram
    with pytest.raises(TrainingError, match=r"non-finite loss .* epoch 1, batch 1"):
        fit(table, features, columns, tmp_path / "r", toy_config(mode="blackbox"), fps=FPS,
            progress=False)


def test_bottleneck_without_concepts_is_a_clear_error(tmp_path):
    table, features, columns = toy_data()
    with pytest.raises(TrainingError, match="no concept columns"):
        fit(table, features, Columns([], columns.targets), tmp_path / "r",
            toy_config(mode="joint"), fps=FPS, progress=False)


def test_short_clips_are_padded_and_counted(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="midlevel"):
        train_toy(tmp_path, mode="blackbox", epochs=1)
    assert "2 of 19 train clips are shorter than 1.0 s" in caplog.text


# ----------------------------------------------------------------------------- precision


def test_autocast_steps_is_amp_on_cuda_and_cpu_bf16_on_the_cpu():
    from midlevel.training import TrainConfig
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not TrainConfig().autocast_steps(cpu) and TrainConfig().autocast_steps(cuda)
    assert TrainConfig(cpu_bf16=True).autocast_steps(cpu)
    assert not TrainConfig(amp=False, cpu_bf16=True).autocast_steps(cuda)


def test_cpu_bf16_without_bf16_units_is_a_clear_error(monkeypatch):
    import midlevel.training.config as config
    monkeypatch.setattr(config, "cpu_has_bf16", lambda: False)
    with pytest.raises(TrainingError, match="cpu_bf16.*no bfloat16 units"):
        toy_config(cpu_bf16=True).check()
    toy_config(cpu_bf16=True, device="cuda").check()  # the CPU's units do not matter there


def test_cpu_bf16_runs_the_steps_in_bfloat16_and_the_rest_in_float32(tmp_path):
    """Every convolution of a training step computes in bfloat16, every one in eval mode
    (validation, BatchNorm re-estimation, calibration, prediction) in float32; the weights
    stay float32 and the run still learns the toy world."""
    from midlevel.training.config import cpu_has_bf16
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bfloat16 units")
    seen = {True: set(), False: set()}

    def record(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            seen[module.training].add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        run = train_toy(tmp_path, data=toy_data(40), mode="joint", epochs=6, lr=5e-3,
                        cpu_bf16=True)
    finally:
        handle.remove()
    assert seen[True] == {torch.bfloat16} and seen[False] == {torch.float32}
    assert all(p.dtype == torch.float32 for p in run.model.parameters())
    val = run.metrics.query("split == 'validation' and name == 'mean'").set_index("kind")["r"]
    assert val["concept"] > 0.7 and val["target"] > 0.6


@pytest.mark.parametrize("key, value", [("epochs", 0), ("epochs", -2), ("lr", "abc"),
                                        ("dropout", 1.5), ("batch_size", 1), ("amp", "false"),
                                        ("crop_seconds", float("nan"))])
def test_bad_settings_are_refused_by_name_before_a_run_directory_exists(tmp_path, key, value):
    with pytest.raises(TrainingError, match=key):
        train_toy(tmp_path, **{key: value})
    assert not (tmp_path / "run").exists()


def test_a_run_that_fails_before_its_first_epoch_leaves_no_directory(tmp_path, monkeypatch):
    from midlevel.training import loop

    def broken(self, progress):
        raise RuntimeError("boom")

    monkeypatch.setattr(loop.Trainer, "train", broken)
    with pytest.raises(RuntimeError, match="boom"):
        train_toy(tmp_path)
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    assert (train_toy(tmp_path).path / "model.pt").is_file()  # no --overwrite needed


def test_a_second_training_into_a_run_directory_in_use_is_refused(tmp_path):
    """Audit 9a: train held no lock, so a --resume or --overwrite started by mistake while a
    run trained could write over its checkpoint or delete its folder. While another process
    holds the run's lock both are refused and the folder is untouched; once it is gone both
    go on."""
    import fcntl
    import os

    from midlevel.errors import CheckpointError
    from midlevel.io import LOCK_FILE
    table, features, columns = toy_data()
    out = tmp_path / "run"
    fit(table, features, columns, out, toy_config(epochs=1), fps=FPS, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert LOCK_FILE in before  # the lock stays, hidden, beside the run's files
    holder = os.open(out / LOCK_FILE, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another training, as it were
    try:
        for kw in (dict(resume=True), dict(overwrite=True)):
            with pytest.raises(CheckpointError, match="another training is writing this run "
                                                      "directory"):
                fit(table, features, columns, out, toy_config(epochs=2), fps=FPS,
                    progress=False, **kw)
            assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    finally:
        os.close(holder)
    fit(table, features, columns, out, toy_config(epochs=2), fps=FPS, progress=False,
        resume=True)
    assert len(pd.read_csv(out / "history.csv")) == 2
    fit(table, features, columns, out, toy_config(epochs=1), fps=FPS, progress=False,
        overwrite=True)
    assert len(pd.read_csv(out / "history.csv")) == 1 and (out / LOCK_FILE).exists()


def test_a_refused_start_never_removes_the_folder_another_training_holds(tmp_path):
    """Re-audit 9, R5: two trainings starting into one new folder at once both saw it absent;
    the refused one then removed the folder (only the winner's lock file in it yet)."""
    import fcntl
    import os

    from midlevel.errors import CheckpointError
    from midlevel.io import LOCK_FILE
    from midlevel.training import ddp
    from midlevel.training.rundir import _locked
    out = tmp_path / "run"
    out.mkdir()
    holder = os.open(out / LOCK_FILE, os.O_RDONLY | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(CheckpointError, match="another training"):
            with _locked(ddp.Context(), out):
                pass
        assert (out / LOCK_FILE).exists()
    finally:
        os.close(holder)
    (out / LOCK_FILE).unlink()
    out.rmdir()
    with _locked(ddp.Context(), out):  # made here, nothing written: removed
        pass
    assert not out.exists()


def test_a_columns_scale_is_in_its_own_units_whatever_its_spread():
    """Audit 12b #1, #2: a column without spread got a std of 1 rating unit (a constant
    concept's validation R^2, and with it the epoch kept, depended on the units) and a
    column of real spread in tiny units (sd 3e-9) was taken for a constant one."""
    from midlevel.training.scales import _column_stats
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"const": 5.0, "zero": 0.0, "spread": rng.normal(5, 1, 40),
                          "unrated": np.nan}, index=range(40))
    for units in (1.0, 1e-4, 1e-9, 1e6):
        mean, std = _column_stats(table * units, list(table.columns))
        ref_mean, ref_std = _column_stats(table, list(table.columns))
        np.testing.assert_allclose(mean[:3], ref_mean[:3] * units, rtol=1e-12)
        np.testing.assert_allclose(std[[0, 2]], ref_std[[0, 2]] * units, rtol=1e-12)
        assert std[0] == pytest.approx(5.0 * units) and std[1] == 1.0 and std[3] == 1.0
        assert std[2] == pytest.approx(np.std(table["spread"]) * units)


def test_a_run_begun_under_the_older_scale_rule_resumes_on_its_own_scales(tmp_path):
    """Re-audit 12: a run begun before a column without spread got |mean| as its scale
    (it had 1) kept 1 in its model on --resume while the scales stored beside it said
    |mean|; explain un-scales a head's design with the stored ones."""
    from midlevel.training.checkpoint import read_checkpoint
    table, features, columns = toy_data()
    table.loc[table["split"] == "train", "k1"] = 0.5  # constant in training: scale |0.5|
    cut = tmp_path / "cut"
    fit(table, features, columns, cut, toy_config(mode="sequential", epochs=1), fps=FPS,
        progress=False)
    state = torch.load(cut / "checkpoint.pt", weights_only=False)
    assert state["model"]["concept_std"][1] == pytest.approx(0.5)
    state["model"]["concept_std"][1] = 1.0  # as the rule before wrote it
    torch.save(state, cut / "checkpoint.pt")
    run = fit(table, features, columns, cut, toy_config(mode="sequential", epochs=2), fps=FPS,
              resume=True, progress=False)
    stored = read_checkpoint(cut / "model.pt")
    assert float(run.model.concept_std[1]) == 1.0
    assert stored["scales"]["concept_std"][1] == pytest.approx(1.0)


def test_an_independent_head_without_clips_rated_on_both_is_refused_before_training(tmp_path):
    """Audit 13a D3: concepts and targets rated on disjoint training clips trained every
    epoch of an independent run, then refused at the head ("0 training clips have it and
    every concept rated"), leaving a run without model.pt. Refused before the run folder,
    naming the targets and the way out; a sequential run (predicted concepts) trains."""
    from midlevel.errors import TrainingError
    table, features, columns = toy_data()
    train_rows = table.index[table["split"] == "train"]
    half = len(train_rows) // 2
    table.loc[train_rows[:half], ["k0", "k1", "k2"]] = np.nan
    table.loc[train_rows[half:], ["t0", "t1"]] = np.nan
    out = tmp_path / "independent"
    with pytest.raises(TrainingError, match=r"'t0' 0 \(of 9 with it\).*--mode sequential"):
        fit(table, features, columns, out, toy_config(mode="independent", epochs=1), fps=FPS,
            progress=False)
    assert not out.exists()
    run = fit(table, features, columns, tmp_path / "sequential",
              toy_config(mode="sequential", epochs=1), fps=FPS, progress=False)
    assert (tmp_path / "sequential" / "model.pt").exists() and run.mode == "sequential"


def test_an_independent_head_says_how_many_clips_it_is_fitted_on(caplog):
    """Audit 13a D2: the independent head is a complete-case fit; a concept missing on most
    clips left 119 of 136 clips with the target out without a word. Now a warning names each
    target's count and the concepts missing most; a complete design logs its counts."""
    from midlevel.training.head import fit_head
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    X[:30, 2] = np.nan
    targets = [{"name": "valence", "kind": "regression"}]
    with caplog.at_level("INFO", logger="midlevel.training"):
        fit_head(X, Y, targets, concepts=["a", "b", "minorness"])
    assert "'valence' 10 of the 40 clips with it" in caplog.text
    assert "'minorness' 30" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="midlevel.training"):
        fit_head(X[30:], Y[30:], targets, concepts=["a", "b", "minorness"])
    assert "the head is fitted on 10 ('valence') training clips" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_loaded_runs_metrics_are_those_of_its_weights_and_history_survives(tmp_path):
    """Audit 13b #4, #7: Run.metrics read metrics.csv from disk on each call, so a Run
    loaded before a retraining of its folder paired the old weights with the new numbers
    (compare reported one model's accuracy beside another's explanations); a kill between
    an epoch's checkpoint and its history row lost the row for good (a resume found nothing
    to train and never wrote history.csv again)."""
    table, features, columns = toy_data()
    out = tmp_path / "run"
    run = fit(table, features, columns, out, toy_config(mode="joint", epochs=2), fps=FPS,
              progress=False)
    before = run.metrics.copy()
    written = pd.read_csv(out / "metrics.csv")
    pd.testing.assert_frame_equal(before, written, check_dtype=False)
    changed = written.copy()
    changed["r"] = 0.5
    changed.to_csv(out / "metrics.csv", index=False)        # as a retraining writes it
    pd.testing.assert_frame_equal(run.metrics, before)
    pd.testing.assert_frame_equal(load_run(out).metrics, before)
    history = pd.read_csv(out / "history.csv")
    history.iloc[:1].to_csv(out / "history.csv", index=False)   # killed before epoch 2's row
    from midlevel.training.checkpoint import write_history
    write_history(tmp_path, [{"epoch": 1, "loss": 0.5}])  # re-audit 13 N5: no 'processes'
    assert list(pd.read_csv(tmp_path / "history.csv").columns) == ["epoch", "loss"]
    fit(table, features, columns, out, toy_config(mode="joint", epochs=2), fps=FPS,
        resume=True, progress=False)
    assert len(pd.read_csv(out / "history.csv")) == 2


def test_a_reader_of_a_run_being_trained_is_told_to_wait(tmp_path):
    """Audit 13b #5: while a training held the run's lock, evaluate and explain said 'not a
    run directory' or 'continue it with --resume', which the lock then refused."""
    from midlevel.io import folder_lock
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"")
    with folder_lock(out):
        with pytest.raises(CheckpointError, match="a training holds .*; wait for it to end"):
            load_run(out)
    with pytest.raises(CheckpointError, match="continue it with --resume"):
        load_run(out)
