"""(g) training that streams: peak memory against dataset size, and throughput, streaming from
memory-mapped feature files vs holding every spectrogram in memory.

Data: random spectrograms of the paper front end's shape (149 bands, 31.25 frames/s) and the
Mid-level dataset's clip length, written once as ``.npy`` files, the layout of the feature
cache; speed and memory of training do not depend on their values.

*Memory*: ``midlevel.training.fit`` (1 epoch, joint, a tiny network so that data handling, not
the network, decides the peak) on 1x, 2x, 4x and 8x the base number of clips, in memory and
streaming, each in a fresh Python process: peak RSS of the process (the kernel's high-water
mark), the part added during ``fit`` (peak minus the RSS at its start), and for streaming the
peak RSS of the largest DataLoader worker (``RUSAGE_CHILDREN``; it counts pages shared with the
parent, so it is an upper bound).

*Throughput*: ``fit`` with the ``small`` preset on the same clips, in memory and streaming with
the default workers (and with reads in the training process, ``workers=0``), interleaved
round by round; clips per second from ``fit``'s own per-epoch timing (which includes the
validation pass and BatchNorm re-estimation, done the same way on both paths).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench_common import REPO, bench_table, columns, ratio_interval

FPS = 31.25
N_BANDS = 149


def write_clips(folder: Path, n: int, seconds: float, seed: int = 0) -> dict[str, Path]:
    """``n`` random float32 spectrograms ``(149, frames)`` as ``clipNNNN.npy`` (kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frames = int(seconds * FPS) + 1
    files = {}
    for i in range(n):
        path = folder / f"clip{i:04d}.npy"
        if not path.is_file():
            np.save(path, rng.standard_normal((N_BANDS, frames)).astype(np.float32))
        files[f"clip{i:04d}"] = path
    return files


def _table(n: int):
    """``bench_table`` over ``n`` clips: 90 % train, 10 % validation, at least 2 validation
    clips (one rating gives no selection score: training refuses it; the full sizes are
    unchanged)."""
    return bench_table([f"/nowhere/clip{i:04d}.wav" for i in range(n)],
                       n_train=n - max(2, n - int(0.9 * n)))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(cfg: dict) -> dict:
    """One ``fit`` in this (fresh) process; peak memory of the process and its workers."""
    import torch
    torch.set_num_threads(int(cfg.get("threads") or 1))
    from midlevel.data.stream import MappedFeatures
    from midlevel.training import TrainConfig, fit
    n = cfg["n_clips"]
    table = _table(n)
    files = {clip: Path(cfg["folder"]) / f"{clip}.npy" for clip in table.index}
    features = MappedFeatures(files)
    config = TrainConfig(mode="joint", preset="small", width=cfg["width"], epochs=1,
                         batch_size=cfg["batch_size"], crop_seconds=cfg["crop_seconds"],
                         eval_batch_size=32, bn_batch_size=32, seed=0,
                         max_memory=0 if cfg["streaming"] else "1TB", workers=cfg["workers"])
    # what every fit imports or builds once per process (torch._dynamo on the first Adam,
    # scipy, sklearn) is loaded first, so "added" is what fit needs for the data and the model
    import gc

    import scipy.stats  # noqa: F401
    import sklearn.metrics  # noqa: F401
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    gc.collect()
    start = _rss_mb()
    t0 = time.perf_counter()
    fit(table, features, columns(), Path(cfg["out"]), config, fps=FPS, overwrite=True,
        progress=False)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"n_clips": n, "streaming": cfg["streaming"], "feature_mb": features.nbytes() / 2 ** 20,
            "peak_rss_mb": peak, "start_rss_mb": start, "added_mb": peak - start,
            "worker_peak_rss_mb": workers if cfg["streaming"] and cfg["workers"] != 0 else None,
            "fit_seconds": seconds}


def _memory_in_subprocess(cfg: dict, workdir: Path) -> dict:
    path = workdir / f"mem_{cfg['n_clips']}_{int(cfg['streaming'])}.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(path)],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        return {"n_clips": cfg["n_clips"], "streaming": cfg["streaming"],
                "error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def throughput(files: dict, cfg: dict, workdir: Path) -> dict:
    """In memory vs streaming on the same clips, interleaved; median clips/s over rounds."""
    from midlevel.data.stream import MappedFeatures
    from midlevel.training import TrainConfig, fit
    n = cfg["throughput_clips"]
    table = _table(n)
    features = MappedFeatures({c: files[c] for c in table.index})
    n_train = int((table["split"] == "train").sum())
    used = (n_train // cfg["batch_size"]) * cfg["batch_size"] + (
        n_train % cfg["batch_size"] if n_train % cfg["batch_size"] >= 2 else 0)
    variants = {"in memory": {"max_memory": "1TB"},
                "streaming": {"max_memory": 0, "workers": None},
                "streaming, workers=0": {"max_memory": 0, "workers": 0}}
    epochs = {k: [] for k in variants}
    for r in range(cfg["rounds"]):
        for name, extra in variants.items():
            config = TrainConfig(mode="joint", preset=cfg["preset"],
                                 width=cfg.get("throughput_width"), epochs=cfg["epochs"],
                                 batch_size=cfg["batch_size"],
                                 crop_seconds=cfg["throughput_crop_seconds"], seed=0, **extra)
            run = fit(table, features, columns(), workdir / f"tp_{r}_{name.replace(' ', '_')}",
                      config, fps=FPS, overwrite=True, progress=False)
            seconds = pd.read_csv(run.path / "history.csv")["seconds"].tolist()
            epochs[name] += seconds[1:] if len(seconds) > 1 else seconds
    out = {"n_clips": n, "n_train": n_train, "clips_per_epoch": used, "preset": cfg["preset"],
           "crop_seconds": cfg["throughput_crop_seconds"], "rounds": cfg["rounds"],
           "epochs_per_fit": cfg["epochs"], "variants": {}}
    for name, secs in epochs.items():
        out["variants"][name] = {"epoch_seconds": secs,
                                 "clips_per_s": used / float(np.median(secs)),
                                 "clips_per_s_best": used / float(min(secs))}
    base = out["variants"]["in memory"]
    for name, v in out["variants"].items():
        v["ratio_to_in_memory"] = v["clips_per_s"] / base["clips_per_s"]
        v["ratio_to_in_memory_best"] = v["clips_per_s_best"] / base["clips_per_s_best"]
        # the k-th counted epoch of every path comes from the same round: resampled in pairs
        if v is not base:
            v["ratio_interval"] = ratio_interval(base["epoch_seconds"], v["epoch_seconds"])
    return out


def run(cfg: dict) -> dict:
    from midlevel.training.stream import default_workers
    workdir = Path(cfg["workdir"]) / "streaming"
    workdir.mkdir(parents=True, exist_ok=True)
    factors = cfg["factors"]
    n_max = cfg["base_clips"] * max(factors)
    folder = workdir / "clips"
    t0 = time.perf_counter()
    files = write_clips(folder, max(n_max, cfg["throughput_clips"]), cfg["clip_seconds"])
    result = {"clip_seconds": cfg["clip_seconds"], "base_clips": cfg["base_clips"],
              "factors": factors, "memory_width": cfg["width"],
              "memory_crop_seconds": cfg["crop_seconds"], "write_seconds": time.perf_counter() - t0,
              "default_workers": default_workers(), "memory": [],
              "subprocess": bool(cfg.get("subprocess", True))}
    for factor in factors:
        for streaming in (False, True):
            sub = {**cfg, "n_clips": cfg["base_clips"] * factor, "streaming": streaming,
                   "folder": str(folder), "out": str(workdir / f"run_{factor}_{int(streaming)}"),
                   "workers": None if streaming else 0}
            # quick (smoke) runs measure in this process: the mechanics, not the peaks
            res = (_memory_in_subprocess(sub, workdir) if cfg.get("subprocess", True)
                   else measure_memory(sub))
            res["factor"] = factor
            result["memory"].append(res)
    mem = pd.DataFrame([m for m in result["memory"] if "error" not in m])
    for streaming, key in ((True, "streaming"), (False, "in_memory")):
        part = mem[mem["streaming"] == streaming].sort_values("factor") if len(mem) else mem
        if len(part) >= 2:
            first, last = part.iloc[0], part.iloc[-1]
            result[f"{key}_peak_growth"] = float(last["peak_rss_mb"] / first["peak_rss_mb"] - 1)
            result[f"{key}_added_growth"] = float(last["added_mb"] / max(first["added_mb"], 1e-9)
                                                  - 1)
            result[f"{key}_peak_spread"] = float(part["peak_rss_mb"].max() /
                                                 part["peak_rss_mb"].min() - 1)
    result["throughput"] = throughput(files, cfg, workdir)
    return result


if __name__ == "__main__":  # one memory measurement: python bench_streaming.py CFG.json
    sys.path.insert(0, str(REPO))
    print(json.dumps(measure_memory(json.loads(Path(sys.argv[1]).read_text()))))
