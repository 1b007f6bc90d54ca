"""Shared helpers of the benchmark suite: timing, peak memory, machine facts, test data.

Timings are medians over repeats after warm-up. On a shared machine the absolute numbers move
with the load of other jobs, so every figure that is compared with another (a ratio) is measured
in the same process, interleaved round by round where that is cheap.

Peak memory: on Linux the kernel's high-water mark of this process (``VmHWM`` in
``/proc/self/status``) is reset before a measurement by writing ``5`` to
``/proc/self/clear_refs``, so each measurement gets its own peak resident set size; freed heap
memory is handed back first (``malloc_trim``), so "added" is what the measurement itself needed
beyond what was live when it started. Where that
is not allowed the process-lifetime ``ru_maxrss`` is reported instead (method says which). On
CUDA the peak of the caching allocator (``torch.cuda.max_memory_allocated``) is reported too.
"""
from __future__ import annotations

import os
import platform
import re
import resource
import statistics
import time
from pathlib import Path

import sys

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOUNDTRACKS = REPO.parent / "shared" / "datasets" / "soundtracks"

sys.path.insert(0, str(REPO))
from midlevel.synth.world import EMOTIONS, MIDLEVEL_CONCEPTS  # noqa: E402  (the synthetic world's)

CONCEPTS, TARGETS = list(MIDLEVEL_CONCEPTS), list(EMOTIONS)


# ----------------------------------------------------------------------------- timing


def sync(device: str = "cpu") -> None:
    """Wait for queued device work (CUDA kernels run asynchronously)."""
    if str(device).startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def timeit(fn, *, repeat: int = 3, warmup: int = 1, device: str = "cpu") -> dict:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times timed.

    Returns
    -------
    dict with ``median``, ``min``, ``max`` (seconds) and ``all`` (list of seconds).
    """
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return summarize(times)


def summarize(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "all": [round(t, 6) for t in times]}


def ratio_interval(slow, fast, *, n_boot: int = 2000, seed: int = 0) -> list[float]:
    """95 % percentile bootstrap interval of ``median(slow) / median(fast)`` over times
    measured in interleaved rounds: the rounds are resampled in pairs, so ``slow[i]`` and
    ``fast[i]`` must come from the same round (equal lengths)."""
    a, b = np.asarray(slow, dtype=np.float64), np.asarray(fast, dtype=np.float64)
    if len(a) != len(b):
        raise ValueError(f"paired times of unequal length: {len(a)} and {len(b)}")
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    boot = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


# ----------------------------------------------------------------------------- memory


def _status_mb(field: str) -> float | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so
    the RSS at the start of a measurement is what is live, not what the allocator kept."""
    import gc
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_mb() -> float:
    """Current resident set size in MiB (``ru_maxrss`` where /proc is missing)."""
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Peak memory of the code inside a ``with`` block.

    Attributes (after the block): ``peak_mb`` (peak RSS of the process during the block, MiB),
    ``added_mb`` (peak minus the RSS at entry), ``method`` ("VmHWM reset" or "ru_maxrss
    (process lifetime)"), ``device_peak_mb`` (CUDA allocator peak, or None).
    """

    def __init__(self, device: str = "cpu"):
        self.device = str(device)

    def __enter__(self):
        release_free_memory()
        self.exact = _reset_hwm()
        self.start_mb = rss_mb()
        if self.device.startswith("cuda"):
            import torch
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc):
        hwm = _status_mb("VmHWM") if self.exact else None
        self.peak_mb = hwm if hwm is not None else (
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        self.method = "VmHWM reset" if hwm is not None else "ru_maxrss (process lifetime)"
        self.added_mb = max(0.0, self.peak_mb - self.start_mb)
        self.device_peak_mb = None
        if self.device.startswith("cuda"):
            import torch
            self.device_peak_mb = torch.cuda.max_memory_allocated() / 2 ** 20
        return False

    def as_dict(self) -> dict:
        out = {"peak_rss_mb": round(self.peak_mb, 1), "added_rss_mb": round(self.added_mb, 1),
               "method": self.method}
        if self.device_peak_mb is not None:
            out["device_peak_mb"] = round(self.device_peak_mb, 1)
        return out


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_info(device: str = "cpu") -> dict:
    """CPU model, cores, memory, torch and library versions, load, accelerator."""
    import torch
    flags = cpu_flags()
    mem = _meminfo_gb()
    info = {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "simd": [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags],
        "memory_gb": mem,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "device": device,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": props.name, "memory_gb": round(props.total_memory / 2 ** 30, 1),
                       "cuda": torch.version.cuda}
    for mod in ("soundfile", "soxr", "librosa", "shap", "captum"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional packages
            info[mod] = None
    return info


def _meminfo_gb() -> float | None:
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        return round(int(m.group(1)) / 2 ** 20, 1) if m else None
    except OSError:
        return None


def cpu_reference(n: int = 1024) -> dict:
    """Matmul GFLOP/s with 1 thread and with torch's default threads: how much of the
    machine this process gets right now (other jobs share the cores)."""
    import torch
    threads = torch.get_num_threads()
    out = {}
    try:
        torch.set_num_threads(1)
        out["matmul_gflops_1_thread"] = matmul_gflops(n=n, repeat=5)["gflops"]
    finally:
        torch.set_num_threads(threads)
    out[f"matmul_gflops_{threads}_threads"] = matmul_gflops(n=n, repeat=5)["gflops"]
    return out


def matmul_gflops(*, n: int = 2048, repeat: int = 5, device: str = "cpu",
                  dtype: str = "float32") -> dict:
    """Dense ``n x n`` matrix product speed: GFLOP/s (``2 n^3`` per product), median."""
    import torch
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dt)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dt)
    t = timeit(lambda: torch.mm(a, b), repeat=repeat, warmup=2, device=device)
    return {"n": n, "dtype": dtype, "gflops": 2 * n ** 3 / t["median"] / 1e9,
            "gflops_best": 2 * n ** 3 / t["min"] / 1e9, "seconds": t}


# ----------------------------------------------------------------------------- data


def soundtracks_files() -> list[Path]:
    return sorted((SOUNDTRACKS / "audio").glob("*.mp3")) if SOUNDTRACKS.is_dir() else []


def synthetic_files(folder: Path, n: int, *, seed: int = 0, sample_rate: int = 44100,
                    min_seconds: float = 10.0, max_seconds: float = 37.0) -> list[Path]:
    """``n`` stereo 16-bit wavs of 10-37 s (tones and noise), written once into ``folder``."""
    import soundfile as sf
    folder = folder / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"syn{i:04d}.wav"
        seconds = float(rng.uniform(min_seconds, max_seconds))
        if not path.is_file():
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            f0 = rng.uniform(80, 800)
            y = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(len(t))
            y = np.stack([y, np.roll(y, 17)], axis=1)
            tmp = path.with_suffix(".tmp.wav")
            sf.write(tmp, y.astype(np.float32), sample_rate, subtype="PCM_16")
            os.replace(tmp, path)
        paths.append(path)
    return paths


def pick_files(n: int, workdir: Path, *, seed: int = 0, quick_seconds: float | None = None
               ) -> tuple[list[Path], str]:
    """``n`` audio files: a seeded sample of the Soundtracks mp3s when present, else synthetic
    wavs (of ``quick_seconds`` each when given). Returns (paths, description)."""
    files = soundtracks_files() if quick_seconds is None else []
    if len(files) >= n:
        order = np.random.default_rng(seed).permutation(len(files))  # prefixes are nested
        return [files[i] for i in order[:n]], "Soundtracks set 1 mp3 (44.1 kHz stereo)"
    if quick_seconds is not None:
        return (synthetic_files(workdir / "synthetic_quick", n, seed=seed,
                                min_seconds=quick_seconds, max_seconds=quick_seconds * 1.5),
                "synthetic wav (44.1 kHz stereo, 16 bit)")
    return synthetic_files(workdir / "synthetic", n, seed=seed), \
        "synthetic wav (44.1 kHz stereo, 16 bit)"


def audio_seconds(paths) -> float:
    import soundfile as sf
    return float(sum(sf.info(str(p)).duration for p in paths))


def bench_table(paths, *, n_train: int, seed: int = 0):
    """An annotations table (ARCHITECTURE.md contract) over ``paths``: the first ``n_train``
    clips are "train", the rest "validation"; concept (1-10) and target (1-9) ratings are
    random (speed does not depend on them)."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    n = len(paths)
    table = pd.DataFrame({"path": [str(p) for p in paths],
                          "split": ["train" if i < n_train else "validation" for i in range(n)]},
                         index=pd.Index([f"clip{i:04d}" for i in range(n)], name="clip"))
    for c in CONCEPTS:
        table[c] = rng.uniform(1, 10, n).round(2)
    for t in TARGETS:
        table[t] = rng.uniform(1, 9, n).round(2)
    return table


def columns():
    from midlevel.training.data import Columns
    return Columns(list(CONCEPTS), [{"name": t, "kind": "regression"} for t in TARGETS])


def load_features(cache_dir: Path, paths, *, progress: bool = False) -> dict:
    """Fill the feature cache for ``paths`` and return ``{path: spectrogram}``."""
    from midlevel.data.cache import FeatureCache
    cache = FeatureCache(cache_dir)
    cache.fill(paths, jobs=1, progress=progress)
    return {str(p): cache.get(p) for p in paths}


def rounded(obj, digits: int = 4):
    """Round floats in nested dicts/lists (for compact JSON)."""
    if isinstance(obj, float):
        return round(obj, digits) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    if isinstance(obj, (np.floating,)):
        return rounded(float(obj), digits)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj
