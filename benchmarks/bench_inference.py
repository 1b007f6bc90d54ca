"""(c) inference throughput on whole clips: ``Run.predict`` over cached spectrograms (the mean
over 10-s windows, as evaluation does) and from audio files (decode, front end, model), plus the
latency of one 10-s window, the unit the explanation costs are divided by.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from bench_common import (PeakMemory, audio_seconds, load_features, pick_files, summarize,
                          sync, timeit)


def one_window(model, n_frames: int, device: str, repeat: int) -> dict:
    """Forward of one 10-s window (batch 1, no grad), the reference 'one inference'."""
    x = torch.randn(1, 1, 149, n_frames, device=device)
    model.eval()

    def fwd():
        with torch.no_grad():
            model(x)
    t = timeit(fwd, repeat=repeat, warmup=2, device=device)
    return {"seconds": t, "ms": t["median"] * 1e3}


def predict_rounds(run, specs, rounds: int, device: str) -> dict:
    run.predict(specs[:1])
    times = []
    with PeakMemory(device) as mem:
        for _ in range(rounds):
            t0 = time.perf_counter()
            run.predict(specs)
            sync(device)
            times.append(time.perf_counter() - t0)
    return {"seconds": summarize(times), "memory": mem.as_dict()}


def run(cfg: dict) -> dict:
    from midlevel.training import load_run
    workdir = Path(cfg["workdir"])
    device = cfg["device"]
    files, source = pick_files(cfg["n_clips"], workdir, seed=2,
                               quick_seconds=cfg.get("quick_seconds"))
    features = load_features(Path(cfg["cache_dir"]), files)
    specs = [features[str(p)] for p in files]
    secs = float(sum(s.shape[1] for s in specs) / 31.25)
    result: dict = {"source": source, "n_clips": len(files), "audio_seconds": secs,
                    "presets": {}}
    for preset in cfg["presets"]:
        run_dir = workdir / "runs" / preset
        if not (run_dir / "model.pt").is_file():
            result["presets"][preset] = {"missing": f"{run_dir}: no trained run (training "
                                                    f"section failed?)"}
            continue
        r = load_run(run_dir)
        r.model.to(device)
        n_frames = int(r.config.crop_seconds * r.fps) + 1
        hop = max(1, int(round(r.config.crop_seconds * r.fps)))
        from midlevel.training.data import window_starts
        n_windows = sum(len(window_starts(s.shape[1], n_frames, hop)) for s in specs)
        pred = predict_rounds(r, specs, cfg["rounds"], device)
        med = pred["seconds"]["median"]
        entry = {"whole_clips_from_features": {
            **pred, "clips_per_s": len(specs) / med, "x_realtime": secs / med,
            "windows": n_windows, "windows_per_s": n_windows / med}}
        k = cfg["audio_clips"]
        sub = files[:k]
        asecs = audio_seconds(sub)
        r.predict([str(sub[0])])
        with PeakMemory(device) as mem:
            t0 = time.perf_counter()
            r.predict([str(p) for p in sub])
            sync(device)
            ta = time.perf_counter() - t0
        entry["whole_clips_from_audio"] = {"n_clips": k, "seconds": ta, "clips_per_s": k / ta,
                                           "x_realtime": asecs / ta, "memory": mem.as_dict()}
        entry["one_window"] = one_window(r.model, n_frames, device, cfg["latency_repeat"])
        joined = torch.cat([torch.as_tensor(s) for s in specs], dim=1)  # 16 real windows
        while joined.shape[1] < 16 * n_frames:
            joined = torch.cat([joined, joined], dim=1)
        x = joined[:, :16 * n_frames].reshape(joined.shape[0], 16, n_frames).permute(1, 0, 2)
        x = x.unsqueeze(1).contiguous().to(device)

        def batch16():
            with torch.no_grad():
                r.model(x)
        reps = max(2, cfg["latency_repeat"] // 3)
        t16 = timeit(batch16, repeat=reps, warmup=1, device=device)
        entry["batch16_windows_per_s"] = 16 / t16["median"]
        if device == "cpu" and cfg.get("cpu_bf16", True):
            # option, not what Run.predict does: bfloat16 autocast on a CPU with bf16 units
            def batch16_bf16():
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    r.model(x)
            tb = timeit(batch16_bf16, repeat=reps, warmup=1)
            with torch.no_grad():
                ref = r.model(x).targets
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    diff = (r.model(x).targets.float() - ref).abs().max()
            entry["cpu_bf16_option"] = {"batch16_windows_per_s": 16 / tb["median"],
                                        "speedup": t16["median"] / tb["median"],
                                        "max_abs_output_change_scaled_units": float(diff)}
        result["presets"][preset] = entry
    return result
