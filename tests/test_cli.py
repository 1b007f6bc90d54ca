"""The command line: every subcommand has --help; `python -m midlevel` works; synth -> validate -> features."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from midlevel.cli import build_parser, main


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_core_subcommands_present():
    assert {"validate", "features", "synth", "demo"} <= set(subcommands())


@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: midlevel " + command)


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "midlevel", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "validate" in result.stdout


def test_the_command_line_is_built_without_the_heavy_libraries():
    """``--help``, ``--version`` and a usage error wait for no torch, pandas or captum import
    (audit 11a #1: building the parser imported them to read three tuples, 6-7 s a call)."""
    heavy = ["torch", "torchaudio", "pandas", "captum", "shap", "librosa", "matplotlib",
             "sklearn", "statsmodels", "scipy"]
    code = ("import sys\nfrom midlevel.cli import build_parser\nbuild_parser()\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_parsers_choices_are_the_ones_the_package_acts_on():
    from midlevel.choices import COMPARE_METHODS
    from midlevel.explain.attribution.registry import resolve_method
    from midlevel.explain.multiplicity import CORRECTIONS, adjust_pvalues
    from midlevel.training.config import MODES, TrainConfig
    import numpy as np

    for mode in MODES:
        TrainConfig(mode=mode).check()
    for correction in CORRECTIONS:
        adjust_pvalues(np.array([0.01, 0.2]), correction)
    for method in COMPARE_METHODS:
        resolve_method(method)


def test_synth_validate_features(tmp_path, capsys):
    out = tmp_path / "world"
    assert main(["synth", "--out", str(out), "--n-clips", "6", "--seed", "1", "--duration", "3",
                 "--quiet"]) == 0
    assert main(["validate", str(out / "spec.yaml"), "--quiet"]) == 0
    assert "clips: 6" in capsys.readouterr().out
    cache = tmp_path / "cache"
    assert main(["features", str(out / "spec.yaml"), "--cache", str(cache), "--quiet"]) == 0
    assert "6 computed, 0 reused" in capsys.readouterr().out
    assert len(list(cache.rglob("*.npy"))) == 6
    assert main(["features", str(out / "spec.yaml"), "--cache", str(cache), "--quiet"]) == 0
    assert "0 computed, 6 reused" in capsys.readouterr().out


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_standard_output_is_named(tmp_path):
    """A table printed under ``> file`` on a full disk said only 'error: [Errno 28] No space
    left on device': the error names standard output, once, with no traceback and no second
    message from Python's flush at exit."""
    world = tmp_path / "world"
    assert main(["synth", "--out", str(world), "--n-clips", "4", "--seed", "1",
                 "--duration", "2", "--quiet"]) == 0
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "midlevel", "validate",
                                 str(world / "spec.yaml"), "--quiet"], stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "midlevel validate: error: standard output: No space left on device"), result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


@pytest.mark.parametrize("argv, option", [
    (["train", "s.yaml", "--out", "r", "--epochs", "0"], "--epochs"),
    (["evaluate", "r", "--threshold", "2"], "--threshold"),
    (["predict", "r", "a.wav", "--hop", "nan"], "--hop"),
    (["predict", "r", "a.wav", "--hop", "-1"], "--hop"),
    (["coefficients", "r", "--alpha", "1.5"], "--alpha"),
    (["coefficients", "r", "--alpha", "0"], "--alpha"),
    (["coefficients", "r", "--materiality", "-1"], "--materiality"),
    (["coefficients", "r", "--bootstrap", "0"], "--bootstrap"),
    (["explain", "r", "a.wav", "--out", "o", "--window", "0"], "--window"),
    (["explain", "r", "a.wav", "--out", "o", "--hop", "0"], "--hop"),
    (["compare", "r", "--out", "o", "--clips", "-1"], "--clips"),
    (["compare", "r", "--out", "o", "--seconds", "inf"], "--seconds"),
    (["synth", "--out", "o", "--duration", "0"], "--duration"),
])
def test_out_of_range_numbers_are_refused_naming_the_option(argv, option, capsys, tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)  # outputs would land here: nothing may
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [
    ["train", "s.yaml", "--out", "FILE"], ["synth", "--out", "FILE"],
    ["explain", "r", "a.wav", "--out", "FILE"], ["coefficients", "r", "--out", "FILE"],
    ["compare", "r", "--out", "FILE"], ["demo", "--out", "FILE"],
    ["evaluate", "r", "--out", "DIR"], ["predict", "r", "a.wav", "--out", "DIR"],
])
def test_an_output_path_of_the_wrong_kind_is_refused_naming_it(argv, capsys, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("keep me")
    (tmp_path / "DIR").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --out" in err and ("FILE is a file" in err or "DIR is a folder" in err)
    assert (tmp_path / "FILE").read_text() == "keep me" and not any((tmp_path / "DIR").iterdir())


def test_an_os_error_names_each_file_once(tmp_path, monkeypatch):
    """A failed rename of a temporary file onto its target names the target once (the
    temporary name maps to it, and an absolute and a relative name of one file are one)."""
    import errno
    import os

    from midlevel.cli import os_error_message
    monkeypatch.chdir(tmp_path)
    exc = OSError(errno.EPERM, "Operation not permitted", str(tmp_path / "out" / ".a.csv.x1y2.tmp"),
                  None, "out/a.csv")
    assert os_error_message(exc) == f"{tmp_path / 'out' / 'a.csv'}: Operation not permitted"
    exc = OSError(errno.EXDEV, "Invalid cross-device link", "/x/a.csv", None, "/y/a.csv")
    assert os_error_message(exc) == "/x/a.csv -> /y/a.csv: Invalid cross-device link"
    assert os.path.isabs(os_error_message(exc).split(" ")[0])


def test_sigterm_unwinds_as_ctrl_c(tmp_path, monkeypatch, capsys):
    """SIGTERM (what torchrun sends the other processes when one fails) raises where the
    command is, so atomic writes and run directories are cleaned up as after Ctrl-C; the
    handler is the previous one again afterwards."""
    import os
    import signal

    import midlevel.cli as cli
    from midlevel.io import atomic_open

    def command(args):
        with atomic_open(tmp_path / "table.csv", "w") as f:
            f.write("half a table")
            os.kill(os.getpid(), signal.SIGTERM)
            f.write("never")
    import argparse
    parser = build_parser()
    monkeypatch.setattr(parser, "parse_args", lambda argv: argparse.Namespace(
        command="validate", func=command))
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["validate", "x.yaml"]) == 143
    assert "midlevel validate: terminated (SIGTERM)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the table nor its temporary
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_error_raised_while_a_sigterm_unwinds_still_ends_as_terminated(monkeypatch, capsys):
    """The race the streaming SIGTERM test met once: the same SIGTERM ends the DataLoader
    workers, and torch raised "DataLoader worker ... killed by signal: Terminated" while the
    main process's Terminated unwound, so the command ended with a traceback and exit 1."""
    import argparse

    import midlevel.cli as cli

    def command(args):
        try:
            raise cli.Terminated()
        finally:
            raise RuntimeError("DataLoader worker (pid 1) is killed by signal: Terminated.")

    def failing(args):
        raise RuntimeError("a real failure")
    parser = build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for func, outcome in ((command, 143), (failing, RuntimeError)):
        monkeypatch.setattr(parser, "parse_args", lambda argv, f=func: argparse.Namespace(
            command="train", func=f))
        if outcome is RuntimeError:  # an error outside a stop is not swallowed
            with pytest.raises(RuntimeError, match="a real failure"):
                main(["train"])
        else:
            assert main(["train"]) == 143
            assert "midlevel train: terminated (SIGTERM)" in capsys.readouterr().err


def test_under_torchrun_each_process_names_itself_in_its_error(monkeypatch, capsys):
    """Audit 9a, D6: every process printed the same error, as if it were printed twice."""
    import argparse

    import midlevel.cli as cli
    from midlevel.errors import TrainingError

    def command(args):
        raise TrainingError("no")
    parser = build_parser()
    monkeypatch.setattr(parser, "parse_args", lambda argv: argparse.Namespace(
        command="train", func=command))
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(["train"]) == 2
    assert capsys.readouterr().err == "midlevel train (process 1 of 2): error: no\n"
    monkeypatch.delenv("WORLD_SIZE")
    assert main(["train"]) == 2
    assert capsys.readouterr().err == "midlevel train: error: no\n"


def test_a_process_forked_under_the_handler_ends_on_sigterm_as_without_it():
    """Re-audit 9, R1: synth's pool workers, forked inside main(), inherited the handler, and
    closing the pool (SIGTERM to each) printed their Terminated tracebacks."""
    import os
    import signal

    from midlevel.cli import _sigterm_unwinds
    with _sigterm_unwinds():
        pid = os.fork()
        if pid == 0:  # the worker: ended by the signal, else exit status 7
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 5) if hasattr(signal, "sigtimedwait") else None
            finally:
                os._exit(7)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
