"""Options shared by several commands."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from midlevel.checks import real_number, whole_number
from midlevel.errors import ArgumentError
from midlevel.io import LOCK_FILE, folder_lock


class OptionValueError(ArgumentError, argparse.ArgumentTypeError):
    """A command-line value out of range, raised by an argparse ``type`` function: argparse
    prints it as ``argument --option: <message>`` with the usage (exit status 2)."""


FRONTENDS = {"logfilt": "LogFilteredSpectrogram", "logmel": "LogMelSpectrogram"}
"""Front-end names of the command line -> the classes of :mod:`midlevel.data.frontends`."""


def folder_path(text: str) -> str:
    """argparse type of an output folder: refused when the path is an existing file or cannot
    be created and written (:func:`check_output`)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise OptionValueError(f"{text} is a file, not a folder")
    check_output(text, folder=True)
    return text


def file_path(text: str) -> str:
    """argparse type of an output file: refused when the path is an existing folder, one of a
    run directory's own files, or cannot be written (:func:`check_output`)."""
    if os.path.isdir(text):
        raise OptionValueError(f"{text} is a folder, not a file")
    check_output(text, folder=False)
    return text


def check_output(text: str, *, folder: bool) -> None:
    """OptionValueError unless output ``text`` (a folder when ``folder``, else a file) can be
    written, checked before any work: the nearest existing folder on its path must be a folder
    (not a file) that this process may write in; a file output must not be one of a run
    directory's own files (``model.pt``, ``metrics.csv``, ...: :data:`midlevel.training.checkpoint.RUN_FILES`),
    which later commands read. Nothing is created."""
    path = Path(text)
    if not folder:
        _refuse_run_file(path, text)
    probe = path if folder else path.parent
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if os.path.lexists(probe) and not os.path.isdir(probe):
        raise OptionValueError(f"{text}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OptionValueError(f"{text}: cannot write in folder {probe} (no permission, or "
                               f"a read-only folder)")


def _refuse_run_file(path: Path, text: str) -> None:
    """OptionValueError when ``path`` is a run directory's own file (the folder holds a
    ``config.yaml``, ``model.pt`` or ``checkpoint.pt``)."""
    from midlevel.training.checkpoint import CONFIG_FILE, MODEL_FILE, RUN_FILES, STATE_FILE
    folder = path.parent
    if path.name in RUN_FILES and any((folder / f).is_file()
                                      for f in (CONFIG_FILE, MODEL_FILE, STATE_FILE)):
        raise OptionValueError(f"{text} is a file of the run directory {folder} (a run's "
                               f"files are {', '.join(RUN_FILES)}); write elsewhere")


@contextlib.contextmanager
def locked_output(folder: str):
    """Hold the lock of output folder ``folder`` (:func:`midlevel.io.folder_lock`) while the
    block runs; ArgumentError naming the folder when another command is writing into it."""
    stack = contextlib.ExitStack()
    try:
        path = stack.enter_context(folder_lock(folder))
    except BlockingIOError:
        raise ArgumentError(f"--out {folder}: another command is writing into this folder "
                            f"(it holds {Path(folder) / LOCK_FILE}); wait for it to end or "
                            f"choose another folder") from None
    with stack:
        yield path


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its error)."""
    return whole_number(text, least=1, error=OptionValueError)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return whole_number(text, least=0, error=OptionValueError)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (seconds, durations)."""
    return real_number(text, above=0, error=OptionValueError)


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return real_number(text, least=0, error=OptionValueError)


def open_unit(text: str) -> float:
    """argparse type: a number strictly between 0 and 1 (a level or a probability)."""
    return real_number(text, above=0, below=1, error=OptionValueError)


def add_root_option(p: argparse.ArgumentParser) -> None:
    """``--root DIR`` (replaces the spec's root) or ``--root NAME=DIR`` (a named root)."""
    p.add_argument("--root", action="append", metavar="DIR|NAME=DIR",
                   help="dataset root replacing the spec's 'root' (NAME=DIR replaces a named "
                        "root); may be repeated")


def cache_folder(text: str) -> str:
    """argparse type of the feature cache folder (made on demand): refused when the path, or
    a folder above it, is an existing file."""
    path = Path(text)
    for above in (path, *path.parents):
        if above.exists():
            if not above.is_dir():
                raise OptionValueError(f"{text} is not a folder ({above} is a file)"
                                       if above != path else f"{text} is a file, not a folder")
            break
    return text


def add_cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR", type=cache_folder,
                   help="feature cache folder (default: $MIDLEVEL_CACHE or "
                        "~/.cache/midlevel/features)")


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (not the stream of the first call),
    through ``tqdm.write``: a line logged while a progress bar runs gets a line of its own,
    the bar is drawn again below it."""

    _midlevel_cli = True

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm
        tqdm.write(self.format(record), file=sys.stderr)


def show_log(level: int = logging.INFO) -> None:
    """Send the package's log lines (progress, warnings) to stderr, once."""
    logger = logging.getLogger("midlevel")
    if not any(getattr(h, "_midlevel_cli", False) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
