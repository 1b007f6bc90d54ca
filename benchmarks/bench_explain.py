"""(d) per-clip explanation cost as a ratio to one inference, (e) its peak memory and (f) how it
grows with clip length.

- bottleneck contributions: ``midlevel.explain.contributions.explain_clips`` (whole-clip
  prediction, then the linear head's weight x concept table) next to ``Run.predict`` on the same
  clips: the share it adds;
- attributions: ``midlevel.explain.attribution.attribute`` on one 10-s window (the run's
  training crop) with the package defaults (16 background crops from the training clips, first
  target), methods SHAP DeepExplainer and GradientExplainer, Captum IntegratedGradients and
  Occlusion (perturbation); each divided by one forward pass of one window.

Each method's work is counted from the code (``cost_model``: gradient passes and extra forward
passes per clip) times the FLOPs of one pass (FlopCounterMode); the time that work takes at
matmul speed is reported as the bound next to the measurement.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_common import PeakMemory, load_features, matmul_gflops, pick_files, summarize, timeit


def cost_model(method: str, opts: dict, n_background: int, n_bands: int, n_frames: int
               ) -> dict:
    """Forward+backward passes and extra forward passes one ``attribute`` call makes for one
    clip with these options, on the first call of an ``Attributor`` (read from
    midlevel/explain/attribution/, shap 0.51 and captum 0.9; the prediction is computed only
    when the result's ``predictions`` are read, so it is not counted):

    - shap_gradient: ``n_samples`` gradient passes; forwards: GradientExplainer's constructor
      runs the model on the background (with autograd on), and the expected value on the
      background again (both once per Attributor and length).
    - shap_deep: 2 x n_background gradient passes (x tiled against each background sample, plus
      the background); forwards: constructor on the background, output and additivity check.
    - integrated_gradients: ``n_steps`` gradient passes; forwards: the baseline.
    - occlusion: one forward per window position, plus the baseline.

    tests/test_bench_smoke.py checks the totals against a forward hook's count.
    """
    n_samples, n_steps = opts.get("n_samples", 32), opts.get("n_steps", 32)
    if method == "shap_gradient":
        return {"grad_passes": n_samples, "forwards": 2 * n_background}
    if method == "shap_deep":
        return {"grad_passes": 2 * n_background, "forwards": n_background + 1}
    if method == "integrated_gradients":
        return {"grad_passes": n_steps, "forwards": 1}
    if method == "occlusion":
        wb, wt = opts.get("window", (16, 32))
        sb, st = opts.get("stride") or (wb, wt)
        wb, wt = min(wb, n_bands), min(wt, n_frames)
        positions = (-(-(n_bands - wb) // sb) + 1) * (-(-(n_frames - wt) // st) + 1)
        return {"grad_passes": 0, "forwards": positions + 1}
    return {"grad_passes": None, "forwards": None}


def background(specs, n: int, n_frames: int, seed: int = 0) -> torch.Tensor:
    """``n`` random crops of ``n_frames`` from ``specs`` (what ``training_background`` draws)."""
    from midlevel.training.data import fit_frames
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        s = torch.as_tensor(specs[int(rng.integers(len(specs)))], dtype=torch.float32)
        start = int(rng.integers(0, max(0, s.shape[1] - n_frames) + 1))
        out.append(fit_frames(s[:, start:start + n_frames], n_frames))
    return torch.stack(out).unsqueeze(1)


def long_spec(specs, n_frames: int) -> torch.Tensor:
    """One spectrogram of ``n_frames`` frames, clips joined end to end."""
    joined = torch.cat([torch.as_tensor(s) for s in specs], dim=1)
    while joined.shape[1] < n_frames:
        joined = torch.cat([joined, joined], dim=1)
    return joined[:, :n_frames]


def input_grad_flops(model, x: torch.Tensor) -> tuple[float, float]:
    """GFLOP of one forward, and of one forward + backward to the input, for ``x``.

    SHAP and Captum call ``torch.autograd.grad(output, input)``, which skips the weight
    gradients; the count runs ``backward`` with the weights' ``requires_grad`` off, the same
    work (FlopCounterMode cannot watch ``autograd.grad`` on a leaf)."""
    from midlevel.explain.attribution.base import OutputSelector
    sel = OutputSelector(model).eval()
    states = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            sel(x)
        fwd = fc.get_total_flops()
        xi = x.clone().requires_grad_(True)
        with FlopCounterMode(display=False) as fc:
            sel(xi).sum().backward()
        return fwd / 1e9, fc.get_total_flops() / 1e9
    finally:
        for p, s in zip(model.parameters(), states):
            p.requires_grad_(s)


def time_attribution(model, x, method: str, bg, options: dict, repeat: int) -> dict:
    """Per-call cost of one method with one ``Attributor`` explaining clip after clip (what a
    workflow pays per clip: SHAP's explainer and expected value are built on the first call
    and reused); the first call, which builds them, is reported on its own."""
    from midlevel.explain.attribution.attributor import Attributor
    times, inner = [], []
    with PeakMemory() as mem:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            attributor = Attributor(model, method, background=bg, **options)
            a = attributor.attribute(x)
            first = time.perf_counter() - t0
            for _ in range(repeat):
                t0 = time.perf_counter()
                a = attributor.attribute(x)
                times.append(time.perf_counter() - t0)
                inner.append(a.seconds)
    gap = a.additivity_gap()
    return {"seconds": summarize(times), "method_seconds": summarize(inner),
            "first_call_seconds": first, "memory": mem.as_dict(),
            "additivity_gap": None if np.isnan(gap).all() else float(np.abs(gap).max())}


def contributions_cost(run, specs, baseline, rounds: int) -> dict:
    """explain_clips vs Run.predict on the same whole clips, interleaved."""
    from midlevel.explain.head import explain_clips
    run.predict(specs[:1])
    explain_clips(run, specs[:1], baseline=baseline, names=["w"])
    names = [f"c{i}" for i in range(len(specs))]
    tp, te = [], []
    mem_p = mem_e = None
    for r in range(rounds):
        with PeakMemory() as m1:
            t0 = time.perf_counter()
            run.predict(specs, names=names)
            tp.append(time.perf_counter() - t0)
        with PeakMemory() as m2:
            t0 = time.perf_counter()
            table, _ = explain_clips(run, specs, baseline=baseline, names=names)
            te.append(time.perf_counter() - t0)
        if r == 0:
            mem_p, mem_e = m1.as_dict(), m2.as_dict()
    p, e = summarize(tp), summarize(te)
    # the part explain_clips adds, timed alone (the difference of two noisy totals is noise)
    from midlevel.explain.head import LinearHead, contributions
    pred = run.predict(specs, names=names).set_index("clip")[run.concept_names]
    direct = timeit(lambda: contributions(pred, LinearHead.from_run(run), baseline),
                    repeat=20, warmup=2)
    return {"n_clips": len(specs), "predict": {"seconds": p, "memory": mem_p},
            "table_seconds": direct,
            "added_fraction_direct": direct["median"] / p["median"],
            "explain_clips": {"seconds": e, "memory": mem_e, "rows": len(table)},
            "added_fraction": (e["median"] - p["median"]) / p["median"],
            "added_fraction_best": (e["min"] - p["min"]) / p["min"],
            "added_per_round": [(b - a) / a for a, b in zip(tp, te)],
            "explain_s_per_clip": e["median"] / len(specs)}


def run(cfg: dict) -> dict:
    from midlevel.training import load_run
    import shap  # noqa: F401 - imported before timing (seconds of import)
    import captum.attr  # noqa: F401
    workdir = Path(cfg["workdir"])
    files, source = pick_files(cfg["n_clips"], workdir, seed=2,
                               quick_seconds=cfg.get("quick_seconds"))
    features = load_features(Path(cfg["cache_dir"]), files)
    specs = [features[str(p)] for p in files]
    train_files, _ = pick_files(cfg["n_background_clips"], workdir, seed=1,
                                quick_seconds=cfg.get("quick_seconds"))
    train_specs = list(load_features(Path(cfg["cache_dir"]), train_files).values())
    mm = matmul_gflops(n=cfg["matmul_n"])
    result: dict = {"source": source, "presets": {},
                    "note": "attribution runs on the CPU: Attributor.attribute moves inputs "
                            "to the CPU"}
    for preset in cfg["presets"]:
        run_dir = workdir / "runs" / preset
        if not (run_dir / "model.pt").is_file():
            result["presets"][preset] = {"missing": f"{run_dir}: no trained run"}
            continue
        r = load_run(run_dir)
        model = r.model.cpu().eval()
        n_frames = int(r.config.crop_seconds * r.fps) + 1
        x = long_spec(specs, n_frames)[None, None]
        bg = background(train_specs, cfg["n_background"], n_frames)

        def fwd():
            with torch.no_grad():
                model(x)
        one = timeit(fwd, repeat=cfg["latency_repeat"], warmup=2)["median"]
        entry: dict = {"one_inference_s": one, "n_background": cfg["n_background"],
                       "crop_frames": n_frames, "methods": {}}
        baseline = r.predict(train_specs)[r.concept_names].mean()
        entry["contributions"] = contributions_cost(r, specs, baseline, cfg["rounds"])
        entry["contributions"]["predict_s_per_clip"] = (
            entry["contributions"]["predict"]["seconds"]["median"] / len(specs))
        fwd_g, grad_g = input_grad_flops(model, x)
        entry["flops"] = {"forward_gflop": fwd_g, "input_grad_gflop": grad_g}
        repeat = cfg["repeat"].get(preset, 1)
        for method in cfg["methods"]:
            opts = dict(cfg["method_options"].get(method, {}))
            if method == "occlusion":  # warm-up: one window over everything, 2 forwards
                warm, warm_bg = {**opts, "window": (x.shape[2], x.shape[3])}, bg[:2]
            else:
                warm, warm_bg = {**opts, "n_samples": 2, "n_steps": 2, "batch_size": 2}, bg[:2]
            try:
                time_attribution(model, x, method, warm_bg, warm, 1)  # imports, oneDNN kernels
                m = time_attribution(model, x, method, bg, opts, repeat)
            except Exception as exc:  # noqa: BLE001 - a failing method is reported, not fatal
                entry["methods"][method] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            m["options"] = opts or "package defaults"
            m["ratio_to_one_inference"] = m["seconds"]["median"] / one
            cost = cost_model(method, opts, len(bg), x.shape[2], x.shape[3])
            m.update(cost)
            if cost["forwards"] is not None:
                gflop = (cost["grad_passes"] * grad_g + cost["forwards"] * fwd_g)
                m["gflop"] = gflop
                m["grad_gflop"] = cost["grad_passes"] * grad_g
                m["forward_equivalents"] = gflop / fwd_g  # the work, in units of one inference
                m["achieved_gflops"] = gflop / m["seconds"]["median"]
            entry["methods"][method] = m
        result["presets"][preset] = entry

    # the machine's capacity: the best matmul speed seen in this section (the load moves)
    mm2 = matmul_gflops(n=cfg["matmul_n"])
    cap = max(mm["gflops_best"], mm2["gflops_best"])
    result["matmul_gflops"] = cap
    result["matmul_gflops_samples"] = [mm["gflops"], mm2["gflops"]]
    for entry in result["presets"].values():
        for m in (entry.get("methods") or {}).values():
            if m.get("gflop"):
                m["bound_s"] = m["gflop"] / cap
                m["grad_only_bound_s"] = m["grad_gflop"] / cap

    # (f) explanation cost vs clip length
    scaling = []
    sp = cfg["scaling_preset"]
    run_dir = workdir / "runs" / sp
    if (run_dir / "model.pt").is_file():
        r = load_run(run_dir)
        model = r.model.cpu().eval()
        baseline = r.predict(train_specs)[r.concept_names].mean()
        from midlevel.explain.head import explain_clips
        for seconds in cfg["scaling_seconds"]:
            n = int(seconds * r.fps) + 1
            s = long_spec(specs, n)
            row = {"seconds": seconds, "preset": sp, "frames": n}
            with PeakMemory() as mem:
                t = timeit(lambda: explain_clips(r, [s.numpy()], baseline=baseline,
                                                 names=["x"]), repeat=cfg["rounds"], warmup=1)
            row["contributions_s"] = t["median"]
            row["contributions_memory"] = mem.as_dict()
            bg = background(train_specs, cfg["n_background"], n)
            for method in cfg["scaling_methods"]:
                opts = cfg["method_options"].get(method, {})
                m = time_attribution(model, s[None, None], method, bg, opts, 1)
                row[method] = {"seconds": m["seconds"]["median"], "memory": m["memory"]}
            scaling.append(row)
    result["scaling"] = scaling
    return result
