"""Command line: a thin layer over the public functions and workflows (``midlevel --help``).

One module per command group, registered statically: :mod:`~.data` (validate, features,
synth), :mod:`~.train` (train, evaluate, predict), :mod:`~.explain` (coefficients, explain),
:mod:`~.compare` and :mod:`~.demo`.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
from pathlib import Path

from midlevel import __version__
from midlevel.cli import compare, data, demo, explain, train
from midlevel.cli.common import show_log
from midlevel.errors import MidlevelError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="midlevel",
        description="Explainable audio ML through perceptual concepts: data specs, features, "
                    "concept-bottleneck and black-box models, explanations.")
    parser.add_argument("--version", action="version", version=f"midlevel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in (data, demo, train, explain, compare):
        group.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it unwinds as after Ctrl-C: atomic writes
    drop their temporaries and a run directory without a finished epoch is removed (torchrun
    stops the other processes with SIGTERM when one fails)."""


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises :class:`Terminated` inside the block (the main thread only; elsewhere,
    as in a thread of a test runner, the default handling stays). A process forked inside the
    block (a worker of a pool, which the pool's close stops with SIGTERM) inherits the
    handler: there it ends as it would have without it, silently."""
    here = os.getpid()

    def terminated(signum, frame):
        if os.getpid() != here:  # a forked worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()
    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures are written to files, never shown
    show_log(logging.WARNING)  # warnings (short clips, skipped files) always reach stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    who = f"midlevel {args.command}"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun: each process prints its own
        who += f" (process {os.environ.get('RANK', '?')} of {os.environ['WORLD_SIZE']})"
    try:
        with _sigterm_unwinds(), _named_stdout():
            return int(args.func(args) or 0)
    except MidlevelError as exc:
        print(f"{who}: error: {_once_per_launch(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command writes (or reads) cannot be: no traceback
        print(f"{who}: error: {_once_per_launch(os_error_message(exc))}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"{who}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{who}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # raised while a stop unwound: torch's DataLoader reports its workers, which the same
        # SIGTERM to the process group ended, "killed by signal" in place of the stop
        stop = _stopped_by(exc)
        if stop is None:
            raise
        term = isinstance(stop, Terminated)
        print(f"{who}: {'terminated (SIGTERM)' if term else 'interrupted'}", file=sys.stderr)
        return 143 if term else 130


def _once_per_launch(message: str) -> str:
    """``message``, or under torchrun, where every process reads the same inputs and meets the
    same refusal, a pointer to the process that printed it first (audit 22a: a refusal was
    printed once per process). The processes of one launch (torchrun's agent process, master
    address, port, run id and restart count) note each message's digest in a file of the
    temporary folder, under a lock; such files a day old are removed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return message
    import hashlib
    import tempfile

    from midlevel.io import first_noted
    # torchrun's agent, the parent of every process of a launch: a relaunch on a fixed port
    # and run id is another launch (audit 22d F1: every process pointed at the last's)
    keys = ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT")
    launch = "|".join([str(os.getppid()), *(os.environ.get(k, "") for k in keys)])
    name = hashlib.sha1(launch.encode()).hexdigest()[:16]
    first = first_noted(Path(tempfile.gettempdir()) / f"midlevel-errors-{name}",
                        hashlib.sha1(message.encode()).hexdigest(),
                        os.environ.get("RANK", "?"))
    if first is not None:
        return f"the same as process {first}'s (printed once)"
    return message


STDOUT_NAME = "standard output"


class _NamedStream:
    """``stream`` whose failed writes and flushes raise an OSError naming ``name`` (a table
    printed under ``> file`` on a full disk said only "No space left on device")."""

    def __init__(self, stream, name: str):
        self._stream, self._name = stream, name

    def _named(self, exc: OSError) -> OSError:
        if exc.filename is not None or exc.errno is None:
            return exc
        return type(exc)(exc.errno, exc.strerror, self._name)

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._named(exc) from None

    def flush(self):
        try:
            return self._stream.flush()
        except OSError as exc:
            raise self._named(exc) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def _named_stdout():
    """Run the command with ``sys.stdout`` naming itself in its write errors; what it printed
    is flushed before the error handlers run, and text that could not be written is dropped
    (Python's flush at exit would fail on it a second time, with its own message)."""
    original = sys.stdout
    if original is None:
        yield
        return
    sys.stdout = _NamedStream(original, STDOUT_NAME)
    failed = False
    try:
        yield
        sys.stdout.flush()
    except OSError as exc:
        failed = exc.filename == STDOUT_NAME
        raise
    finally:
        sys.stdout = original
        if failed:
            _drop_unwritten(original)


def _drop_unwritten(stream) -> None:
    """Point ``stream``'s file descriptor at the null device (its pending text is lost)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _stopped_by(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM (:class:`Terminated`) during whose handling ``exc`` was raised,
    if any (Python's implicit exception context)."""
    seen, context = set(), exc.__context__
    while context is not None and id(context) not in seen:
        if isinstance(context, KeyboardInterrupt):
            return context
        seen.add(id(context))
        context = context.__context__
    return None


def os_error_message(exc: OSError) -> str:
    """``path: reason`` of an OSError (both paths of a rename), or its text; the temporary
    file of an atomic write (``.NAME.XXXX.tmp``, :func:`midlevel.io.atomic_open`) is named by
    the file it was to become."""
    paths = [re.sub(r"(^|/)\.([^/]+)\.[^./]+\.tmp$", r"\1\2", str(p))
             for p in (exc.filename, exc.filename2) if p is not None]
    unique: dict[str, str] = {}  # a rename's two names of one file (absolute, relative): once
    for p in paths:
        unique.setdefault(os.path.abspath(p), p)
    paths = list(unique.values())
    if not paths or not exc.strerror:
        return str(exc)
    return f"{' -> '.join(map(str, paths))}: {exc.strerror}"


if __name__ == "__main__":
    sys.exit(main())
