"""The one way the package writes a file: beside the target, fsync, rename into place.

An interrupted write (exception, kill -9) never leaves a half-written file under the real name;
at worst a hidden ``.<name>.*.tmp`` file is left beside it, which no reader looks at and which
a later write of the same file removes once it is an hour old. Every
writer below goes through :func:`atomic_open`; the one exception is a run's ``train.log``
(:func:`log_handler`), an append-only log whose lines are each complete when written.
"""
from __future__ import annotations

import contextlib
import contextvars
import glob
import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path``.

    Parameters
    ----------
    path : the file to (re)write; its folder is created if missing.
    mode : ``"wb"`` or ``"w"`` (text; ``kwargs`` such as ``encoding`` go to ``open``).

    The file gets the permission bits of the file it replaces, or ``0o666 & ~umask`` when it
    is new (as ``open()`` would give it), not the 0600 of the temporary file.

    A write that fails on the file system (a full disk, a file-size limit) raises an OSError
    naming ``path``, also where the writing library wraps it in another error (``torch.save``
    raises RuntimeError). After a clean write, the temporaries that killed writes of ``path``
    left more than ``STALE_SECONDS`` ago are removed (a recent one may be another writer's).
    """
    path = Path(path)
    _record(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            os.fchmod(fh.fileno(), _new_file_mode(path))  # mkstemp's 0600 -> the usual mode
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(exc)
        if cause is None:
            raise
        if cause.filename is None:  # write(), flush() and fsync() name no file
            cause.filename = str(path)
        if cause is exc:
            raise
        raise cause from exc  # the OSError a library wrapped (torch.save: RuntimeError)
    remove_stale_temporaries(path, keep=Path(tmp))


STALE_SECONDS = 3600
"""Age after which a temporary of :func:`atomic_open` is taken for a killed write's leftover."""


def remove_stale_temporaries(path: str | Path, *, keep=None) -> None:
    """Remove the temporaries of ``path`` (``.<name>.<random>.tmp`` beside it) older than
    ``STALE_SECONDS``: what writes killed before their ``os.replace`` left (a younger one may
    be a write still running)."""
    now = time.time()
    for stale in _temporaries(Path(path)):
        try:
            if stale != keep and now - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()
        except OSError:
            pass  # gone already, or not ours to remove


def _os_error(exc: BaseException) -> OSError | None:
    """``exc`` when it is an OSError; else the OSError a RuntimeError was raised over (its
    ``__cause__`` or ``__context__``, as torch.save raises on a full disk); else None."""
    if isinstance(exc, OSError):
        return exc
    seen = exc
    while isinstance(exc, RuntimeError) and seen is not None:
        seen = seen.__cause__ or seen.__context__
        if isinstance(seen, OSError):
            return seen
    return None


def _new_file_mode(path: Path) -> int:
    """The permission bits ``path`` gets when written: those of the file it replaces, else
    what ``open()`` would give a new file (``0o666 & ~umask``)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """This process's umask, read from ``/proc/self/status`` (no change to it, so no race with
    other threads); where that is missing (not Linux), set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | Path, obj: Any, **kwargs) -> Path:
    """``json.dumps(obj, **kwargs)`` written atomically."""
    return write_text(path, json.dumps(obj, **kwargs))


def write_yaml(path: str | Path, obj: Any, **kwargs) -> Path:
    """``yaml.safe_dump(obj, **kwargs)`` written atomically."""
    import yaml
    return write_text(path, yaml.safe_dump(obj, **kwargs))


def write_csv(table, path: str | Path, **kwargs) -> Path:
    """A DataFrame as CSV (``index=False`` unless given), atomically."""
    kwargs.setdefault("index", False)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, **kwargs)
    return Path(path)


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """``np.save`` atomically (the file is exactly ``path``, no ``.npy`` appended)."""
    with atomic_open(path) as fh:
        np.save(fh, array)
    return Path(path)


def write_npz(path: str | Path, **arrays) -> Path:
    """``np.savez_compressed`` atomically."""
    with atomic_open(path) as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def write_torch(path: str | Path, obj: Any) -> Path:
    """``torch.save`` atomically."""
    import torch
    with atomic_open(path) as fh:
        torch.save(obj, fh)
    return Path(path)


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    """``fig.savefig`` atomically (format from the suffix)."""
    path = Path(path)
    kwargs.setdefault("format", path.suffix.lstrip(".") or "png")
    with atomic_open(path) as fh:
        fig.savefig(fh, **kwargs)
    return path


def write_wav(path: str | Path, y: np.ndarray, sample_rate: int, *,
              subtype: str = "PCM_16") -> Path:
    """A mono waveform as WAV, atomically; samples beyond [-1, 1] are clipped, with a warning
    naming the file and how many were (callers scale to avoid it, as listen-back does).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    """
    import soundfile as sf
    y = np.asarray(y, dtype=np.float32)
    clipped = int(np.count_nonzero(np.abs(y) > 1))
    if clipped:
        log.warning(
            "%s: %d of %d samples beyond full scale (peak %.3g) are clipped to [-1, 1]",
            path, clipped, y.size, float(np.max(np.abs(y))))
    with atomic_open(path) as fh:
        sf.write(fh, np.clip(y, -1, 1), int(sample_rate), subtype=subtype, format="WAV")
    return Path(path)


def log_handler(path: str | Path):
    """A ``logging.FileHandler`` appending complete lines to ``path`` (a run's train.log)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    return handler


def replace_manifest(out: str | Path, written, name: str) -> list[str]:
    """Record the files a command wrote into folder ``out`` and remove an earlier run's
    leftovers: the files the previous ``out/name`` (JSON ``{"files": [...]}``, paths relative to
    ``out``) lists that are not in ``written`` this time. Only plain files inside ``out`` are
    removed (and the folders inside ``out`` that this leaves empty); files no manifest lists
    are left alone. The previous manifest includes what an interrupted command recorded with
    :func:`add_to_manifest`. The temporary files a killed write left beside a listed file or
    the manifest are removed too (the output folder's lock keeps any other writer out).
    Returns the removed paths, relative to ``out``."""
    out = Path(out).resolve()
    mine = sorted(_inside(out, written))
    before = _listed(out, name)
    stale = [f for f in before if f not in mine
             and (out / f).resolve().is_relative_to(out) and (out / f).is_file()]
    # what a killed atomic_open left beside any listed file (or the manifest): its temporary
    leftovers = [t for f in {*before, *mine, name} for t in _temporaries(out / f)
                 if t.resolve().is_relative_to(out)]
    for path in [out / f for f in stale] + leftovers:
        path.unlink(missing_ok=True)
        folder = path.parent
        while folder != out and folder.is_relative_to(out) and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    write_json(out / name, {"files": mine})
    return stale


def _temporaries(path: Path) -> list[Path]:
    """The temporary files :func:`atomic_open` makes for ``path`` (``.<name>.<random>.tmp``
    beside it) that are still there: a write killed before its ``os.replace``."""
    folder = path.parent
    if not folder.is_dir():
        return []
    return [t for t in folder.glob(f".{glob.escape(path.name)}.*.tmp") if t.is_file()]


def add_to_manifest(out: str | Path, paths, name: str) -> None:
    """Add ``paths`` (files inside folder ``out`` that a command is about to write) to the
    manifest ``out/name`` of :func:`replace_manifest`, keeping every file it lists already.

    A command that writes its files over minutes records each one before writing it: when it
    is interrupted (a kill included), its files are listed beside the earlier run's, and the
    next command's :func:`replace_manifest` removes those it does not write again. Paths
    outside ``out`` are ignored; the manifest is rewritten atomically, and only when it
    gains a file."""
    out = Path(out).resolve()
    before = _listed(out, name)
    new = _inside(out, paths) - set(before)
    if new:
        write_json(out / name, {"files": sorted({*before, *new})})


_RECORDING: contextvars.ContextVar = contextvars.ContextVar("midlevel_recording", default=None)


@contextlib.contextmanager
def recording(out: str | Path, name: str, *, exclude=()) -> Iterator[None]:
    """Inside: every file this module writes into folder ``out`` (through :func:`atomic_open`:
    every ``write_*`` and :func:`save_figure`) is added to the manifest ``out/name``
    (:func:`add_to_manifest`) before it is written. A command killed half-way (``kill -9``
    included) thus leaves its files listed, and the next command's :func:`replace_manifest`
    removes those it does not write again. ``exclude``: sub-folders of ``out`` whose files
    are not the command's output (compare's resumable work store) and are not listed."""
    out = Path(out).resolve()
    token = _RECORDING.set((out, name, tuple(out / e for e in exclude)))
    try:
        yield
    finally:
        _RECORDING.reset(token)


def _record(path: Path) -> None:
    """Add ``path`` to the manifest of the active :func:`recording` (not the manifest itself)."""
    active = _RECORDING.get()
    if active is None:
        return
    out, name, excluded = active
    path = path.resolve()
    if path != out / name and not any(path.is_relative_to(e) for e in excluded):
        add_to_manifest(out, [path], name)


def _inside(out: Path, paths) -> set[str]:
    """The paths of ``paths`` inside the resolved folder ``out``, relative to it."""
    return {str(Path(p).resolve().relative_to(out)) for p in paths
            if p is not None and Path(p).resolve().is_relative_to(out)}


def _listed(out: Path, name: str) -> list[str]:
    """The relative paths the manifest ``out/name`` lists ([] if it is missing or unreadable)."""
    try:
        files = json.loads((out / name).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else []


LOCK_FILE = ".midlevel.lock"
"""The lock file :func:`folder_lock` holds inside an output folder."""


@contextlib.contextmanager
def folder_lock(folder: str | Path, name: str = LOCK_FILE) -> Iterator[Path]:
    """Hold an exclusive lock on output folder ``folder`` while the block runs.

    The folder is created if missing and ``folder/name`` locked with a non-blocking
    ``fcntl.flock``: ``BlockingIOError`` when another process holds it (two commands writing
    one folder at once). The lock goes with the process (released on exit, a kill included).
    A folder this call created that holds nothing but the lock file at the end is removed
    again (a command that failed before writing leaves no new folder).
    """
    import fcntl
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / name
    # held open (and locked) for the block's life; read-only, so that a second user who may
    # write the folder but not the first user's lock file (0644) can still take the lock
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: BlockingIOError
        try:
            yield folder
        finally:
            # (the block may have removed the folder itself, as a failed training start does)
            if created and folder.is_dir() and [p.name for p in folder.iterdir()] == [name]:
                lock.unlink()
                folder.rmdir()
    finally:
        os.close(fd)


def lock_held(folder: str | Path, name: str = LOCK_FILE) -> bool:
    """Whether another process holds :func:`folder_lock` on ``folder`` now (the lock file is
    neither created nor kept locked by asking)."""
    import fcntl
    try:
        fd = os.open(Path(folder) / name, os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody has locked the folder
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases a shared lock taken here


def first_noted(path: str | Path, key: str, who: str) -> str | None:
    """Note ``key`` for ``who`` in the shared file ``path`` (appended under an exclusive
    lock; processes of one launch share it) and return who noted ``key`` first, or None
    when this call did (or the file cannot be used). Files of the same name up to its last
    ``-`` (earlier launches') a day old are removed."""
    import fcntl
    path = Path(path)
    for old in path.parent.glob(f"{path.name.rsplit('-', 1)[0]}-*"):  # earlier launches'
        try:                                                          # a day on: removed
            if old.is_file() and not old.is_symlink() and \
                    time.time() - old.stat().st_mtime > 86400:
                old.unlink()
        except OSError:
            pass
    try:
        with open(path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            for line in f.read().splitlines():
                first, _, noted = line.partition(" ")
                if noted == key:
                    return first
            f.write(f"{who} {key}\n")
    except OSError:
        pass
    return None
