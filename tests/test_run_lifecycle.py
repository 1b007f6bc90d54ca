"""A run directory's life around training (audit 22a): an interrupted --overwrite gives the
replaced run back, train.log keeps what was said before it existed, each epoch's precision is
recorded, and a refusal under torchrun is printed once."""
from __future__ import annotations

import contextlib
import io
import logging

import pandas as pd
import pytest

from midlevel.io import LOCK_FILE
from midlevel.testing.toy import FPS, toy_config, toy_data
from midlevel.training import fit
from midlevel.training.rundir import REPLACED, early_log


def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and p.name != LOCK_FILE}


@contextlib.contextmanager
def _listening(logger):
    """Inside: a handler of the caller's own on ``logger``, writing to the StringIO given."""
    shown = io.StringIO()
    handler = logging.StreamHandler(shown)
    logger.addHandler(handler)
    try:
        yield shown
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def _level(logger, level):
    """Inside: ``logger`` at ``level`` (a caller's ``setLevel``); after: unset."""
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


def _fit(out, **kw):
    table, features, columns = toy_data()
    epochs = kw.pop("epochs", 1)
    return fit(table, features, columns, out, toy_config(epochs=epochs, **kw.pop("config", {})),
               fps=FPS, progress=False, **kw)


def test_an_overwrite_stopped_before_its_first_epoch_gives_the_replaced_run_back(
        tmp_path, monkeypatch):
    """The old run's files were deleted when --overwrite began; stopped before an epoch, the
    folder held a config and no model (evaluate: "no trained model"; train: "exists")."""
    from midlevel.training import loop
    out = tmp_path / "run"
    _fit(out)
    before = _files(out)

    def stopped(self, progress):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(loop.Trainer, "train", stopped)
        with pytest.raises(KeyboardInterrupt):
            _fit(out, epochs=2, overwrite=True)
    assert _files(out) == before and not (out / REPLACED).exists()
    _fit(out, epochs=2, overwrite=True)  # finished: the new run, nothing of the old one kept
    assert len(pd.read_csv(out / "history.csv")) == 2 and not (out / REPLACED).exists()


def test_an_overwrite_killed_before_its_first_epoch_is_undone_by_the_next_call(tmp_path):
    """A kill -9 runs no clean-up: the next call finds the replaced run in RUN/.midlevel_
    replaced and no checkpoint, and puts it back before anything else; after an epoch the
    new run stands and the old one is dropped."""
    from midlevel.errors import CheckpointError
    out = tmp_path / "run"
    _fit(out)
    before = _files(out)
    (out / REPLACED).mkdir()
    for p in out.iterdir():
        if p.name not in (LOCK_FILE, REPLACED):
            p.rename(out / REPLACED / p.name)
    (out / "config.yaml").write_text("config: {}\n")  # the new run's first file
    with pytest.raises(CheckpointError, match="run directory exists"):
        _fit(out)
    assert _files(out) == before and not (out / REPLACED).exists()
    (out / REPLACED).mkdir()
    (out / REPLACED / "model.pt").write_bytes(b"old")  # killed after the new run's epoch
    run = _fit(out, epochs=2, resume=True)
    assert not (out / REPLACED).exists() and len(pd.read_csv(run.path / "history.csv")) == 2


def test_train_log_keeps_what_was_said_before_the_run_directory_existed(tmp_path,
                                                                         monkeypatch):
    """The data's warnings (quiet audio, segments without a frame) and the scoring note are
    said before `fit` makes RUN/train.log: they reached the screen only."""
    from midlevel.training import from_spec
    out = tmp_path / "run"
    logger = logging.getLogger("midlevel")
    level = logger.level
    logger.setLevel(logging.WARNING)  # Python use without logging set up (re-audit 22d F7)
    try:
        with early_log():
            logging.getLogger("midlevel.data.audio").warning("x.wav: very quiet audio")
            logging.getLogger("midlevel.training").info("8 clip(s) have time-varying ratings")
            _fit(out)
    finally:
        logger.setLevel(level)
    log = (out / "train.log").read_text()
    assert log.index("x.wav: very quiet audio") < log.index("joint mode")
    assert "8 clip(s) have time-varying ratings" in log

    def fake(spec, out, **kw):  # train()'s own work, as the data checks do it
        logging.getLogger("midlevel.training").warning("said before the run existed")
        return _fit(out, overwrite=True)

    monkeypatch.setattr(from_spec, "_train", fake)
    from_spec.train("unused.yaml", out)
    assert "said before the run existed" in (out / "train.log").read_text()


def test_each_epochs_precision_is_recorded_and_a_resume_that_changes_it_is_named(
        tmp_path, monkeypatch, caplog):
    """--bf16 said nothing when on, and a resume that switched it gave a run of mixed
    epochs that config.yaml called bf16 throughout."""
    from midlevel.training.config import TrainConfig
    out = tmp_path / "run"
    _fit(out)
    with caplog.at_level("INFO", logger="midlevel"):
        monkeypatch.setattr(TrainConfig, "autocast_steps", lambda self, device: True)
        _fit(out, epochs=2, resume=True)
    assert pd.read_csv(out / "history.csv")["bf16"].tolist() == [False, True]
    assert "epoch 1 ran its training steps in float32, this resume in bfloat16" in caplog.text
    assert "bfloat16 training steps" in caplog.text  # the run's first line says it


def test_no_bf16_turns_the_option_off_on_the_command_line():
    from midlevel.cli import build_parser
    parse = build_parser().parse_args
    base = ["train", "spec.yaml", "--out", "run"]
    assert parse(base).bf16 is None and parse(base + ["--bf16"]).bf16 is True
    assert parse(base + ["--no-bf16"]).bf16 is False


def test_a_refusal_every_torchrun_process_meets_is_printed_once(tmp_path, monkeypatch):
    import tempfile

    from midlevel.cli import _once_per_launch
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for key, value in dict(WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="29511",
                           TORCHELASTIC_RUN_ID="r1", RANK="0").items():
        monkeypatch.setenv(key, value)
    assert _once_per_launch("spec.yaml: bad") == "spec.yaml: bad"
    monkeypatch.setenv("RANK", "1")
    assert _once_per_launch("spec.yaml: bad") == "the same as process 0's (printed once)"
    assert _once_per_launch("only here") == "only here"  # another error is printed whole
    monkeypatch.setenv("MASTER_PORT", "29512")  # another launch
    assert _once_per_launch("spec.yaml: bad") == "spec.yaml: bad"
    import os  # a relaunch on the same port and run id (audit 22d F1): another agent
    other_agent = os.getppid() + 1  # not 1: a test run whose parent died has ppid 1
    monkeypatch.setattr(os, "getppid", lambda: other_agent)
    assert _once_per_launch("spec.yaml: bad") == "spec.yaml: bad"
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert _once_per_launch("spec.yaml: bad") == "spec.yaml: bad"


def test_training_and_loading_leave_the_callers_random_state_as_it_was(tmp_path):
    """Audit 23b: ``fit``/``train`` seeded torch's global generator and ``load_run`` drew the
    initial weights from it, so a caller's ``torch.manual_seed`` was overridden (after any
    training every next draw was the same)."""
    import torch

    from midlevel.run import load_run
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    _fit(tmp_path / "run")
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(7)
    load_run(tmp_path / "run")
    assert torch.equal(torch.rand(3), expected)


def test_a_log_level_the_caller_set_holds_while_train_log_keeps_everything(tmp_path):
    """Audit 23b: under a caller's ``setLevel(ERROR)`` on the package's logger, training
    printed its INFO and WARNING lines (the logger was lowered to INFO for train.log), and a
    direct ``fit`` left it at INFO afterwards."""
    logger = logging.getLogger("midlevel")
    with _listening(logging.getLogger()) as shown, _level(logger, logging.ERROR):
        with early_log():
            logging.getLogger("midlevel.data").warning("said before the run folder")
            _fit(tmp_path / "run")
        logger.error("an error still shows")
        assert logger.level == logging.ERROR and logger.propagate
    assert shown.getvalue() == "an error still shows\n"
    log_text = (tmp_path / "run" / "train.log").read_text()
    assert "said before the run folder" in log_text and "epoch" in log_text


def test_a_metrics_file_left_behind_by_a_stopped_training_is_brought_in_line(tmp_path,
                                                                             caplog):
    """Audit 23a: a resume killed between writing model.pt and metrics.csv left the table of
    the model before (model.pt at 4 epochs, metrics.csv at 2), and no command said so."""
    from midlevel.run import load_run
    out = tmp_path / "run"
    _fit(out)
    right = (out / "metrics.csv").read_text()
    stale = pd.read_csv(out / "metrics.csv").assign(r=0.123)
    stale.to_csv(out / "metrics.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        run = load_run(out)
    assert (out / "metrics.csv").read_text() == right and "brought in line" in caplog.text
    caplog.clear()
    load_run(out)  # in line: nothing written, nothing said
    assert "brought in line" not in caplog.text
    assert run.metrics.equals(pd.read_csv(out / "metrics.csv"))


def test_a_warning_is_shown_once_whatever_handlers_the_caller_set(tmp_path, capsys,
                                                                   monkeypatch):
    """Re-audit 23d: with a caller's handler on the package logger and none above it, each
    training warning was shown twice (the forwarding handler fell back to Python's last
    resort); with no handler anywhere it is shown once, by the last resort."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # none above (pytest's gone)
    logger = logging.getLogger("midlevel")
    monkeypatch.setattr(logger, "handlers", [])  # nor the CLI's, which earlier tests leave
    with _listening(logger) as shown, _level(logger, logging.ERROR), early_log():
        logger.error("an error said during training")
    assert shown.getvalue() == "an error said during training\n"
    assert "an error said" not in capsys.readouterr().err  # not a second time
    with early_log():  # no handler anywhere: Python's last resort shows it, once
        logger.warning("a warning with nowhere to go")
    assert capsys.readouterr().err.count("a warning with nowhere to go") == 1
    below = logging.getLogger("midlevel.training")  # a handler one level down only (re-audit
    with _listening(below) as shown, early_log():   # 23e): once, and no INFO
        below.info("an INFO line")
        below.warning("a warning below")
    assert shown.getvalue() == "a warning below\n"
    assert "a warning below" not in capsys.readouterr().err


def test_a_black_box_resumes(tmp_path):
    """Re-audit 23d: a black box's checkpoint (empty concept arrays, pickled as empty bytes)
    was refused as unsafe on --resume."""
    out = tmp_path / "bb"
    _fit(out, config={"mode": "blackbox"})
    _fit(out, epochs=2, resume=True, config={"mode": "blackbox"})
    assert len(pd.read_csv(out / "history.csv")) == 2
