"""``make bench``: the performance benchmark suite of midlevel.

Measures on this machine, in one run, and writes ``benchmarks/results.json`` and the
"Performance" section of ``benchmarks/RESULTS.md`` (between ``<!-- perf:start -->`` and
``<!-- perf:end -->``):

(a) audio -> cached spectrogram throughput next to decode-only throughput of the same files;
(b) training throughput end to end and fed in-memory tensors, achieved vs matmul GFLOP/s,
    presets ``paper`` and ``small``;
(c) inference throughput on whole clips;
(d) explanation cost per clip as a ratio to one inference;
(e) peak memory of each;
(f) time and memory vs dataset size (features, training epoch) and clip length (explanations);
(g) training that streams from memory-mapped feature files: peak memory at 1x-8x dataset size
    and throughput, against holding every spectrogram in memory.
(h) side by side with what a user would write instead (librosa, direct shap / captum calls, a
    plain PyTorch training loop).

Each section runs in its own Python process (clean memory peaks; one crash does not end the
run). Usage::

    python benchmarks/run.py                 # full run, CPU (about 10 minutes on 2 cores)
    python benchmarks/run.py --device cuda --amp
    python benchmarks/run.py --quick --out /tmp/b   # under a minute: the smoke test's sizes
    python benchmarks/run.py --render        # RESULTS.md again from results.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SECTIONS = ("features", "training", "inference", "explain", "streaming", "sidebyside")
METHODS = ["shap_deep", "shap_gradient", "integrated_gradients", "occlusion"]


def sizes(quick: bool, device: str, amp: bool) -> dict:
    """Per-section settings. Full: about 10 min on 2 CPU cores; quick: seconds."""
    cuda = device.startswith("cuda")
    if quick:  # one torch thread: tiny ops, and robust on a busy machine
        common = {"quick_seconds": 3.0, "threads": 1}
        return {
            "features": {**common, "n_files": 3, "rounds": 1, "jobs": [1, 2],
                         "breakdown_files": 2, "scaling_sizes": [1, 2, 3], "profile_repeat": 1},
            "training": {**common, "n_train": 4, "batch_size": 2, "crop_seconds": 2.0,
                         "epochs": 2, "presets": ["small"], "warmup_steps": 1, "steps": 2,
                         "matmul_n": 256, "profile": True, "opt_repeat": 2,
                         "scaling_sizes": [2, 4], "scaling_preset": "small"},
            "inference": {**common, "n_clips": 2, "rounds": 1, "audio_clips": 1,
                          "latency_repeat": 2, "presets": ["small"]},
            "explain": {**common, "n_clips": 2, "n_background_clips": 2, "n_background": 2,
                        "matmul_n": 256, "presets": ["small"], "methods": METHODS,
                        "method_options": {"shap_gradient": {"n_samples": 2},
                                           "integrated_gradients": {"n_steps": 2},
                                           "occlusion": {"window": (32, 32)}},
                        "repeat": {"small": 1}, "rounds": 1, "latency_repeat": 2,
                        "scaling_preset": "small", "scaling_seconds": [2, 4],
                        "scaling_methods": ["shap_gradient"]},
            "sidebyside": {**common, "fe_clips": 1, "fe_seconds": 3.0, "rounds": 1,
                           "preset": "small", "seconds": 2.0, "n_background": 2,
                           "method_options": {"n_steps": 2, "n_samples": 2, "window": (32, 32)},
                           "epoch_preset": "small", "n_train": 4, "batch_size": 2},
            "streaming": {**common, "clip_seconds": 3.0, "base_clips": 6, "factors": [1, 2],
                          "width": 0.125, "crop_seconds": 1.0, "batch_size": 4,
                          "throughput_clips": 8, "throughput_crop_seconds": 1.0,
                          "throughput_width": 0.125, "preset": "small", "epochs": 2,
                          "rounds": 1, "subprocess": False},
        }
    return {
        "features": {"n_files": 24, "rounds": 3, "jobs": [1, 2], "breakdown_files": 8,
                     "scaling_sizes": [8, 16, 32], "profile_repeat": 5},
        "training": {"n_train": 24, "batch_size": 8, "crop_seconds": 10.0, "epochs": 3,
                     "presets": ["paper", "small"], "warmup_steps": 1, "steps": 2,
                     "matmul_n": 8192 if cuda else 2048, "profile": not cuda, "opt_repeat": 7,
                     "scaling_sizes": [8, 16, 32], "scaling_preset": "small"},
        "inference": {"n_clips": 8, "rounds": 2, "audio_clips": 4, "latency_repeat": 5,
                      "presets": ["paper", "small"]},
        "explain": {"n_clips": 4, "n_background_clips": 16, "n_background": 16,
                    "matmul_n": 2048, "presets": ["paper", "small"], "methods": METHODS,
                    "method_options": {}, "repeat": {"paper": 1, "small": 1}, "rounds": 2,
                    "latency_repeat": 5, "scaling_preset": "small",
                    "scaling_seconds": [10, 20, 40],
                    "scaling_methods": ["shap_gradient"]},
        "sidebyside": {"fe_clips": 4, "fe_seconds": 30.0, "rounds": 5, "budget_s": 6.0,
                       "preset": "small", "seconds": 10.0, "n_background": 16,
                       "method_options": {"n_steps": 32, "n_samples": 32, "window": (16, 32)},
                       "epoch_preset": "small", "n_train": 24, "batch_size": 8, "threads": 1,
                       "epoch_budget_s": 15.0},
        "streaming": {"clip_seconds": 15.0, "base_clips": 150, "factors": [1, 2, 4, 8],
                      "width": 0.125, "crop_seconds": 2.0, "batch_size": 8,
                      "throughput_clips": 64, "throughput_crop_seconds": 10.0,
                      "throughput_width": None, "preset": "small", "epochs": 3, "rounds": 8},
    }


def child(section: str, cfg_path: str, out_path: str) -> int:
    """Run one section in this process and write its JSON result."""
    import importlib
    cfg = json.loads(Path(cfg_path).read_text())
    import torch
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    from bench_common import rounded
    module = importlib.import_module(f"bench_{section}")
    t0 = time.perf_counter()
    result = module.run(cfg)
    result["section_seconds"] = time.perf_counter() - t0
    Path(out_path).write_text(json.dumps(rounded(result), indent=1, default=str))
    return 0


def run_section(section: str, cfg: dict, workdir: Path, timeout: float) -> dict:
    cfg_path = workdir / f"{section}.cfg.json"
    out_path = workdir / f"{section}.result.json"
    log_path = workdir / f"{section}.log"
    cfg_path.write_text(json.dumps(cfg))
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                                   section, str(cfg_path), str(out_path)],
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.perf_counter() - t0
    if code == 0 and out_path.is_file():
        result = json.loads(out_path.read_text())
        result["process_seconds"] = round(wall, 2)
        return result
    tail = log_path.read_text()[-3000:] if log_path.is_file() else ""
    return {"error": f"section {section} failed ({code})", "log_tail": tail,
            "process_seconds": round(wall, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--amp", action="store_true",
                    help="bfloat16 autocast for training and inference on cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--out", type=Path, default=HERE,
                    help="folder for results.json and RESULTS.md (default: benchmarks/)")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="scratch folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads in every section (default: torch's, i.e. "
                         "the number of cores)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per section")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite RESULTS.md's section from the results.json in --out")
    ap.add_argument("--child", nargs=3, metavar=("SECTION", "CFG", "OUT"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(*args.child)
    if args.render:
        from bench_report import rerender
        print(f"[bench] rewritten: {rerender(args.out)}")
        return 0

    import torch
    from bench_common import cpu_reference, machine_info
    from bench_report import write_outputs
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA device", file=sys.stderr)
        return 2
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="midlevel-bench-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    t0 = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info(args.device)
    ref_n = 256 if args.quick else 1024
    info["reference_start"] = cpu_reference(ref_n)
    plan = sizes(args.quick, args.device, args.amp)
    results: dict = {"started": started, "quick": args.quick, "device": args.device,
                     "amp": args.amp, "machine": info, "sections": {}}
    try:
        for section in args.sections:
            cfg = {**plan[section], "workdir": str(workdir), "cache_dir": str(workdir / "cache"),
                   "device": args.device, "amp": args.amp}
            if args.threads:
                cfg["threads"] = args.threads
            if section in ("features", "explain", "streaming"):
                cfg["device"] = "cpu"  # the cache and the attributions run on the CPU
            print(f"[bench] {section} ...", flush=True)
            res = run_section(section, cfg, workdir, args.timeout)
            results["sections"][section] = res
            status = res.get("error") or f"{res.get('process_seconds', 0):.0f} s"
            print(f"[bench] {section}: {status}", flush=True)
    finally:
        results["total_seconds"] = round(time.perf_counter() - t0, 1)
        results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        results["machine"]["reference_end"] = cpu_reference(ref_n)
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    paths = write_outputs(results, args.out)
    print(f"[bench] done in {results['total_seconds']:.0f} s: " + ", ".join(map(str, paths)))
    failed = [s for s, r in results["sections"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
