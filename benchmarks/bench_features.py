"""(a) audio -> cached spectrogram throughput next to decode-only throughput of the same files,
the cost of each stage of caching, and (f) how caching time and memory grow with the number of
files.

Decode-only is what ``midlevel.data.audio`` asks libsndfile for (``SoundFile.read`` as float32,
all channels, native rate); caching is ``FeatureCache.fill`` into an empty cache (decode, down-mix,
resample to 22.05 kHz, peak-normalize, paper front end, content hash, atomic ``.npy`` write).
Both run over the same files, interleaved round by round, single process (``jobs=1``) and with
two worker processes (``jobs=2``).
"""
from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from bench_common import PeakMemory, audio_seconds, pick_files, summarize


def _decode(path) -> int:
    with sf.SoundFile(str(path)) as f:
        return f.read(dtype="float32", always_2d=True).shape[0]


def decode_all(paths, jobs: int = 1) -> float:
    t0 = time.perf_counter()
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(_decode, [str(p) for p in paths], chunksize=4))
    else:
        for p in paths:
            _decode(p)
    return time.perf_counter() - t0


def fill_all(paths, jobs: int = 1, workdir: Path | None = None, frontend=None) -> float:
    from midlevel.data.cache import FeatureCache
    folder = Path(tempfile.mkdtemp(prefix="cache-", dir=workdir))
    try:
        cache = FeatureCache(folder, frontend)
        t0 = time.perf_counter()
        cache.fill(paths, jobs=jobs, progress=False)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stage_breakdown(paths, workdir: Path) -> dict:
    """Seconds per stage over ``paths`` (one pass, this process): the profile of caching."""
    from midlevel.data.audio import load_audio
    from midlevel.data.cache import file_digest
    from midlevel.io import write_npy
    from midlevel.data.frontends import LogFilteredSpectrogram
    fe = LogFilteredSpectrogram().eval()
    stages = {"decode": 0.0, "downmix_resample_normalize": 0.0, "frontend": 0.0,
              "content_hash": 0.0, "npy_write_fsync": 0.0}
    out = workdir / "breakdown"
    out.mkdir(exist_ok=True)
    for i, p in enumerate(paths):
        t0 = time.perf_counter()
        _decode(p)
        t1 = time.perf_counter()
        y = load_audio(p, sample_rate=fe.sample_rate)
        t2 = time.perf_counter()
        with torch.no_grad():
            spec = fe(torch.from_numpy(np.ascontiguousarray(y))).numpy()
        t3 = time.perf_counter()
        file_digest(p)
        t4 = time.perf_counter()
        write_npy(out / f"{i}.npy", spec)
        t5 = time.perf_counter()
        stages["decode"] += t1 - t0
        stages["downmix_resample_normalize"] += max(0.0, (t2 - t1) - (t1 - t0))
        stages["frontend"] += t3 - t2
        stages["content_hash"] += t4 - t3
        stages["npy_write_fsync"] += t5 - t4
    shutil.rmtree(out, ignore_errors=True)
    total = sum(stages.values())
    return {"seconds": stages, "share": {k: v / total for k, v in stages.items()},
            "total_s": total}


def frontend_profile(seconds: float = 30.0, repeat: int = 5) -> dict:
    """torch.profiler table of the front end on one clip: where its time goes."""
    from torch.profiler import ProfilerActivity, profile
    from midlevel.data.frontends import LogFilteredSpectrogram
    fe = LogFilteredSpectrogram().eval()
    y = torch.randn(int(seconds * fe.sample_rate))
    with torch.no_grad():
        fe(y)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeat):
                fe(y)
    rows = []
    for ev in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]:
        rows.append({"op": ev.key, "self_ms_per_call_of_forward":
                     ev.self_cpu_time_total / 1e3 / repeat, "calls": ev.count // repeat})
    return {"clip_seconds": seconds, "top_ops": rows}


def run(cfg: dict) -> dict:
    workdir = Path(cfg["workdir"])
    n = cfg["n_files"]
    files, source = pick_files(max(n, max(cfg["scaling_sizes"])), workdir,
                               quick_seconds=cfg.get("quick_seconds"))
    main = files[:n]
    secs = audio_seconds(main)
    for p in files:  # page cache warm for both sides
        Path(p).read_bytes()
    from midlevel.data.cache import FeatureCache
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:  # lazy imports, soxr and FFT plans
        FeatureCache(tmp).get(main[0])
    _decode(main[0])

    from bench_frontend import blocked_frontend, compare
    candidate = blocked_frontend()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        FeatureCache(tmp, candidate).get(main[0])
    result: dict = {"source": source, "n_files": n, "audio_seconds": secs, "modes": {}}
    modes = [(f"jobs={j}", j, None) for j in cfg["jobs"]]
    if 1 in cfg["jobs"] and torch.get_num_threads() > 1:
        modes.insert(1, ("jobs=1, 1 torch thread", 1, 1))
    result["candidate"] = {}
    for name, jobs, threads in modes:
        dec, fil, cand = [], [], []
        mem_dec = mem_fil = None
        default_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            for r in range(cfg["rounds"]):
                with PeakMemory() as m1:
                    dec.append(decode_all(main, jobs))
                with PeakMemory() as m2:
                    fil.append(fill_all(main, jobs, workdir))
                if jobs == 1:  # the candidate front end (workers would rebuild the real one)
                    cand.append(fill_all(main, jobs, workdir, candidate))
                if r == 0:
                    mem_dec, mem_fil = m1.as_dict(), m2.as_dict()
        finally:
            torch.set_num_threads(default_threads)
        d, f = summarize(dec), summarize(fil)
        if cand:
            c = summarize(cand)
            result["candidate"][name] = {
                "seconds": c, "clips_per_s": n / c["median"], "x_realtime": secs / c["median"],
                "ratio_fill_to_decode": d["median"] / c["median"],
                "ratio_fill_to_decode_best": d["min"] / c["min"]}
        result["modes"][name] = {
            "jobs": jobs, "torch_threads": threads or default_threads,
            "decode": {"seconds": d, "clips_per_s": n / d["median"],
                       "x_realtime": secs / d["median"], "memory": mem_dec},
            "cache_fill": {"seconds": f, "clips_per_s": n / f["median"],
                           "x_realtime": secs / f["median"], "memory": mem_fil},
            "ratio_fill_to_decode": d["median"] / f["median"],
            "ratio_fill_to_decode_best": d["min"] / f["min"],
            "ratio_per_round": [a / b for a, b in zip(dec, fil)],
        }
    result["stages"] = stage_breakdown(main[: cfg["breakdown_files"]], workdir)
    from midlevel.data.audio import load_audio
    waves = [load_audio(p) for p in main[: cfg["breakdown_files"]]]
    result["frontend_candidate"] = {f"threads={t or torch.get_num_threads()}":
                                    compare(waves, rounds=cfg["rounds"], threads=t)
                                    for t in (None, 1)}
    result["frontend_profile"] = frontend_profile(repeat=cfg.get("profile_repeat", 5))

    scaling = []
    for k in cfg["scaling_sizes"]:
        sub = files[:k]
        with PeakMemory() as mem:
            t = fill_all(sub, 1, workdir)
        scaling.append({"n_files": k, "audio_seconds": audio_seconds(sub), "seconds": t,
                        "clips_per_s": k / t, "memory": mem.as_dict()})
    result["scaling"] = scaling
    return result
