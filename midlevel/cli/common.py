"""Options shared by several commands."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from midlevel.checks import real_number, whole_number
from midlevel.errors import ArgumentError


class OptionValueError(ArgumentError, argparse.ArgumentTypeError):
    """A command-line value out of range, raised by an argparse ``type`` function: argparse
    prints it as ``argument --option: <message>`` with the usage (exit status 2)."""


FRONTENDS = {"logfilt": "LogFilteredSpectrogram", "logmel": "LogMelSpectrogram"}
"""Front-end names of the command line -> the classes of :mod:`midlevel.data.frontends`."""


def folder_path(text: str) -> str:
    """argparse type of an output folder: refused when the path is an existing file."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise OptionValueError(f"{text} is a file, not a folder")
    return text


def file_path(text: str) -> str:
    """argparse type of an output file: refused when the path is an existing folder."""
    if os.path.isdir(text):
        raise OptionValueError(f"{text} is a folder, not a file")
    return text


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


def add_cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", metavar="DIR",
                   help="feature cache folder (default: $MIDLEVEL_CACHE or "
                        "~/.cache/midlevel/features)")


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (not the stream of the first call)."""

    _midlevel_cli = True

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(self.format(record) + "\n")


def show_log(level: int = logging.INFO) -> None:
    """Send the package's log lines (progress, warnings) to stderr, once."""
    logger = logging.getLogger("midlevel")
    if not any(getattr(h, "_midlevel_cli", False) for h in logger.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
