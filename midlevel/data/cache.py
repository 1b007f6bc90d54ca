"""Feature cache: spectrograms computed once, keyed by audio content and front-end parameters.

Layout: ``<cache_dir>/<front-end key>/<content key[:2]>/<content key>.npy`` where the front-end
key hashes the front end's ``config()`` plus the loader settings and the decoder's
``DECODE_VERSION`` (bumped when ``load_audio`` changes what it returns), and the content key
hashes the audio file's bytes. A change in either gives a new key, so stale features are
never read. Each entry is written to a temporary file and renamed into place, so an
interrupted run never leaves a half-written entry under a real name; ``fill`` resumes where
it stopped. Beside an entry whose decoding gave warnings (very quiet, clipped, band-limited
audio), ``<content key>.warnings.json`` keeps them, so that a fill from the cache says them
again (:meth:`FeatureCache.notes`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from midlevel.io import write_json, write_npy
from midlevel.data.audio import DECODE_VERSION, kept_warnings, load_audio
from midlevel.data.audio import warn as say_warning
from midlevel.data.frontends import make_frontend
from midlevel.errors import AudioError, CacheError, Problem, ValidationFailed
from midlevel.workers import exit_with

# 2: an entry's decoding warnings are kept beside it (:meth:`FeatureCache.notes_file`), and
# an entry without that file is one whose decoding gave none (a version-1 entry could not say)
CACHE_VERSION = 2


def default_cache_dir() -> Path:
    """``$MIDLEVEL_CACHE`` or ``~/.cache/midlevel/features``."""
    env = os.environ.get("MIDLEVEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "midlevel" / "features"


def file_digest(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes (hex), read once per process while the file's identity
    (device, inode, size, modification and change times in ns) stays the same: a command
    looks a file up several times (fill, then the memory maps or ``get``), and reading a
    corpus twice costs minutes on a large or remote one (audit 11b #7). The change time
    catches an edit whose modification time was put back (``touch -r``, ``cp -p``) and a
    file made again on a reused inode; a file changed in the last ``RACY_S`` seconds is read
    every time (a file system with coarse times could show a rewrite at the same time: git's
    "racy" entries)."""
    try:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
               st.st_ctime_ns)
        if key in _DIGESTS:
            return _DIGESTS[key]
        h = hashlib.sha1()
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    except OSError as exc:
        raise AudioError(f"{path}: cannot read audio file: {exc.strerror or exc}") from exc
    if time.time() - max(st.st_mtime, st.st_ctime) > RACY_S:
        if len(_DIGESTS) >= 1 << 20:  # a bound for a process that reads millions of files
            _DIGESTS.clear()
        _DIGESTS[key] = h.hexdigest()
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}
RACY_S = 2.0


@dataclass
class FillStats:
    """What :meth:`FeatureCache.fill` did."""

    computed: int               # files whose features this fill computed
    reused: int                 # files found in the cache (or computed earlier in this fill
                                # for another file with the same bytes)
    seconds_of_audio: float     # of the computed files
    problems: list[Problem]


class FeatureCache:
    """Spectrograms of audio files, computed by ``frontend`` and cached on disk.

    Parameters
    ----------
    cache_dir : folder of the cache (created on demand); default :func:`default_cache_dir`.
    frontend : a front-end module (``LogFilteredSpectrogram`` ...) or its ``config()`` dict.
    normalize : peak-normalize audio before the front end (part of the key).
    """

    def __init__(self, cache_dir: str | Path | None = None, frontend: torch.nn.Module | dict | None = None,
                 *, normalize: bool = True):
        if frontend is None:
            frontend = {"name": "LogFilteredSpectrogram"}
        self.frontend = make_frontend(frontend) if isinstance(frontend, dict) else frontend
        self.frontend.eval()
        self.normalize = normalize
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        contract = {"frontend": self.frontend.config(), "normalize": normalize,
                    "version": CACHE_VERSION, "decode": DECODE_VERSION}
        self.key = hashlib.sha1(json.dumps(contract, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = self.cache_dir / self.key

    @property
    def sample_rate(self) -> int:
        return int(self.frontend.config()["sample_rate"])

    def entry(self, path: str | Path) -> Path:
        """Where the features of ``path`` (as its bytes are now) live in the cache."""
        digest = file_digest(path)
        return self.folder / digest[:2] / f"{digest}.npy"

    def notes_file(self, path: str | Path) -> Path:
        """Where the warnings the decoding of ``path`` gave (very quiet, clipped, band-
        limited audio) are kept beside its features: a JSON list, each without the file's
        name, so that a command reading cached features repeats them for the file as named
        now (audit 22a: with a warm cache they were never said again). Written only for a
        file that gave warnings (most give none: no second write per entry)."""
        return self.entry(path).with_suffix(".warnings.json")

    def notes(self, path: str | Path) -> list[str]:
        """The warnings about ``path``'s audio kept in the cache, naming ``path``."""
        target = self.notes_file(path)
        if not target.is_file():
            return []
        try:
            kept = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [f"{path}: {m}" for m in kept if isinstance(m, str)]

    def compute(self, path: str | Path) -> np.ndarray:
        """Features of one file without touching the cache: float32 [shape=(n_bands, n_frames)]."""
        y = load_audio(path, sample_rate=self.sample_rate, normalize=self.normalize)
        with torch.no_grad():
            spec = self.frontend(torch.from_numpy(np.ascontiguousarray(y)))
        spec = spec.numpy().astype(np.float32, copy=False)
        if not np.isfinite(spec).all():   # never cached: it would be reused as it is
            bad = int((~np.isfinite(spec)).sum())
            raise AudioError(f"{path}: its features are not finite ({bad} NaN or infinite "
                             f"values; samples up to {float(np.max(np.abs(y))):.3g})")
        return spec

    def get(self, path: str | Path) -> np.ndarray:
        """Cached features of ``path`` (computed and stored on a miss).

        Returns
        -------
        np.ndarray [shape=(n_bands, n_frames), dtype=float32]
        """
        return self.load_or_compute(path)[0]

    def load_or_compute(self, path: str | Path, *, say: bool = True
                        ) -> tuple[np.ndarray, bool]:
        """:meth:`get` and whether it computed the features (False: read from the cache).
        The decoding's warnings are kept in the cache (:meth:`notes_file`) and, with
        ``say``, logged."""
        target = self.entry(path)
        if target.is_file():
            try:
                features = np.load(target)
                if np.isfinite(features).all():
                    return features, False
            except (ValueError, OSError, EOFError):
                pass
            # unreadable, or not finite (stored before such features were refused): computed
            # again, which names the file if they still are not
            target.unlink(missing_ok=True)
        with kept_warnings() as kept:
            features = self.compute(path)
        try:
            if kept:  # first: a whole entry has its notes
                write_json(self.notes_file(path), [_unnamed(m, path) for m in kept])
            write_npy(target, features)
        except OSError as exc:  # audit 22d F2: a bare PermissionError from a read-only cache
            why = exc.strerror or exc
            raise CacheError(f"{self.folder}: cannot write the feature cache ({why}) for "
                             f"{path}; give a folder you can write with --cache (or "
                             f"MIDLEVEL_CACHE)") from exc
        for message in kept if say else ():
            say_warning(message)
        return features, True

    def contains(self, path: str | Path) -> bool:
        """Whether the features of ``path`` are cached whole: an entry whose header does not
        read or whose file is shorter or longer than its header's array (a copy cut short, a
        disk error) is not, and is removed, so that :meth:`fill` computes it again rather
        than counting it as reused."""
        target = self.entry(path)
        if not target.is_file():
            return False
        if entry_is_whole(target):
            return True
        target.unlink(missing_ok=True)
        return False

    def fill(self, paths: Iterable[str | Path], *, jobs: int | None = None,
             progress: bool = True, strict: bool = True, warn: bool = True) -> FillStats:
        """Compute and store the features of every file not yet cached.

        ``jobs``: worker processes (None: every usable core). Each worker and the in-process
        path run one torch thread: the front end's operators are too small to gain from a
        second one and lose to it on a busy machine (measured in ``make bench``). The first
        files are filled in this process; workers (forked from a fork server, never from a
        process that runs torch threads) start only when the rest, timed on those files, would
        take more than ``WORKER_WORTH_S`` seconds here and there are two files per worker.

        Files that fail to decode are listed (file named) and the others still processed; with
        ``strict`` a :class:`ValidationFailed` listing them is raised at the end. Two processes
        filling one cache at once do no harm: every entry is written atomically, and one that
        both write is the same array.

        With ``warn``, the warnings about every file's audio (very quiet, clipped,
        band-limited: :meth:`notes`) are logged at the end, for the files computed now and
        those cached before alike, each once per process.
        """
        paths = [str(p) for p in paths]
        todo = [p for p in paths if not self.contains(p)]
        jobs = usable_cores() if jobs is None else max(1, int(jobs))
        problems: list[Problem] = []
        seconds = 0.0
        # no bar when every file is cached (a "0clip" bar would only be noise)
        bar = tqdm(total=len(todo), desc="features", unit="clip",
                   disable=not progress or not todo)
        fps = float(getattr(self.frontend, "fps", 0.0) or 0.0)
        computed = 0

        def done(path, n_frames, error, fresh):
            nonlocal seconds, computed
            if fresh:
                seconds += n_frames / fps if fps else 0.0
                computed += 1
            if error:
                problems.append(Problem(error, file=path))
            bar.update()

        # Files are filled in this process first; workers start only when the rest, timed on
        # those files, would take longer here than starting them costs (a few dozen short
        # files finish in-process before two workers would have started).
        rest = list(todo)
        t0 = time.perf_counter()
        with one_torch_thread():
            while rest and (jobs == 1 or time.perf_counter() - t0 < WORKER_PROBE_S):
                path = rest.pop(0)
                done(path, *_fill_one(self, path))
        per_file = (time.perf_counter() - t0) / max(1, len(todo) - len(rest))
        if rest and per_file * len(rest) > WORKER_WORTH_S and len(rest) >= 2 * jobs:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=_worker_context(),
                                     initializer=_worker_init,
                                     initargs=(self.cache_dir, self.frontend.config(),
                                               self.normalize, os.getpid())) as pool:
                for path, *result in pool.map(_worker_fill, rest, chunksize=4):
                    done(path, *result)
        else:
            with one_torch_thread():
                for path in rest:
                    done(path, *_fill_one(self, path))
        bar.close()
        for path in dict.fromkeys(paths) if warn else ():
            for message in self.notes(path):
                say_warning(message)
        stats = FillStats(computed, len(paths) - computed - len(problems), seconds, problems)
        if strict and problems:
            raise ValidationFailed(problems, "features could not be computed for some files")
        return stats


def _unnamed(message: str, path) -> str:
    """``message`` without the name of the file it is about (as given, or as the audio module
    writes it, normalized: ``./x.wav`` is ``x.wav``; audit 22d F5)."""
    for name in (str(path), str(Path(path))):
        if message.startswith(f"{name}: "):
            return message[len(name) + 2:]
    return message


def entry_is_whole(target: Path) -> bool:
    """Whether the ``.npy`` file ``target`` holds exactly the array its header describes
    (the header is read, not the array)."""
    try:
        array = np.load(target, mmap_mode="r")   # maps the file: nothing of the array is read
        whole = isinstance(array, np.memmap) and \
            target.stat().st_size == array.offset + array.nbytes
        del array
        return whole
    except (ValueError, OSError, EOFError, SyntaxError):
        return False


WORKER_PROBE_S = 1.0  # seconds of in-process filling that time the files
WORKER_WORTH_S = 6.0  # start workers only for more in-process work than this


def _worker_context():
    """Worker processes forked from a fork server that has imported this module (and torch)
    once: never forked from a process running torch threads, and without the 2-4 s of imports
    a spawned worker pays (which made two spawned workers slower than one process for a few
    dozen files in ``make bench``). Falls back to spawn where there is no fork server."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def usable_cores() -> int:
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with one torch intra-op thread, then restore the setting."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _fill_one(cache: FeatureCache, path: str) -> tuple[int, str | None, bool]:
    """``(n_frames, error, computed)`` of one file: computed is False when its entry was
    there already (another file of the fill with the same bytes, or another process)."""
    try:
        features, computed = cache.load_or_compute(path, say=False)  # fill says them
        return features.shape[-1], None, computed
    except AudioError as exc:
        message = str(exc)
        return 0, message[len(path) + 2:] if message.startswith(f"{path}: ") else message, False


_WORKER: FeatureCache | None = None


def _worker_init(cache_dir: Path, frontend: dict, normalize: bool, parent: int) -> None:
    global _WORKER
    exit_with(parent)  # a fill killed with -9 leaves no worker waiting for ever
    torch.set_num_threads(1)
    _WORKER = FeatureCache(cache_dir, frontend, normalize=normalize)


def _worker_fill(path: str) -> tuple[str, int, str | None, bool]:
    if _WORKER is None:
        raise CacheError("feature worker used before initialisation")
    return (path, *_fill_one(_WORKER, path))
