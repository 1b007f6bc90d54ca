"""Options shared by several commands."""
from __future__ import annotations

import argparse
import logging
import sys


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
