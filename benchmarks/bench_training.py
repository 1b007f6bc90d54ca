"""(b) training throughput: end to end (``midlevel.training.fit`` on features read from the
cache: crops, batch assembly, losses, optimizer, then the BatchNorm re-estimation and the
validation pass, as timed by ``fit`` itself per epoch; the checkpoint written after each epoch
falls outside that timing) next to the same model and
optimizer fed one in-memory batch over and over, with achieved GFLOP/s next to dense matmul
GFLOP/s; (f) how an epoch's time and memory grow with the number of training clips.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one forward+backward
of a batch of 10-s crops (convolutions and matrix products; 2 FLOPs per multiply-add).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench_common import (PeakMemory, bench_table, columns, load_features, matmul_gflops,
                          pick_files, summarize, sync, timeit)

FPS = 31.25


def _config(preset: str, cfg: dict, epochs: int):
    from midlevel.training import TrainConfig
    return TrainConfig(mode="joint", preset=preset, epochs=epochs, patience=epochs + 1,
                       batch_size=cfg["batch_size"], crop_seconds=cfg["crop_seconds"],
                       device=cfg["device"], amp=cfg["amp"], seed=0)


def end_to_end(table: pd.DataFrame, features: dict, preset: str, cfg: dict, out: Path) -> dict:
    """``fit`` for ``epochs`` epochs; training throughput from its own per-epoch timing."""
    from midlevel.training import fit
    config = _config(preset, cfg, cfg["epochs"])
    feats = {clip: features[path] for clip, path in table["path"].items()}
    t0 = time.perf_counter()
    with PeakMemory(cfg["device"]) as mem:
        run = fit(table, feats, columns(), out, config, fps=FPS,
                  frontend={"name": "LogFilteredSpectrogram"}, overwrite=True, progress=False)
    total = time.perf_counter() - t0
    history = pd.read_csv(run.path / "history.csv")
    n_train = int((table["split"] == "train").sum())
    per_batch = cfg["batch_size"]
    used = (n_train // per_batch) * per_batch + (n_train % per_batch if n_train % per_batch >= 2
                                                 else 0)
    epoch_s = history["seconds"].tolist()
    steady = epoch_s[1:] if len(epoch_s) > 1 else epoch_s  # epoch 1 carries warm-up
    med = float(np.median(steady))
    return {"n_train": n_train, "clips_per_epoch": used, "epochs": len(epoch_s),
            "epoch_seconds": epoch_s, "clips_per_s": used / med,
            "clips_per_s_best": used / min(steady), "fit_total_s": total,
            "memory": mem.as_dict(), "run": str(run.path)}


class InMemory:
    """The same model and optimizer as ``fit`` on one fixed in-memory batch.

    ``measure(n)`` times ``n`` steps; calling it before and after the end-to-end run spreads
    the in-memory samples over the same stretch of time (other jobs' load drifts)."""

    def __init__(self, batch: tuple, preset: str, cfg: dict, memory_format=None,
                 cpu_bf16: bool = False):
        from midlevel.models.bottleneck import build_model, output_layout
        from midlevel.models.layout import place
        from midlevel.training.loop import make_adam
        from midlevel.training.losses import masked_mse, target_loss
        self.device = device = cfg["device"]
        config = _config(preset, cfg, 1)
        cols = columns()
        torch.manual_seed(0)
        model = build_model("bottleneck", cols.concepts, cols.targets, config.backbone())
        if memory_format is None:
            place(model, device)  # as fit places it: channels last on the CPU
        else:
            model.to(device=device, memory_format=memory_format)
        model.train()
        opt = make_adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        layout = output_layout(cols.targets)
        x, c, y = (t.to(device) for t in batch)
        cuda = device.startswith("cuda")
        amp = (cfg["amp"] and cuda) or (cpu_bf16 and not cuda)  # as TrainConfig.autocast_steps

        def step():
            with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                o = model(x)
            lt = target_loss(o.targets.float(), y, layout)
            lc = masked_mse(o.concepts.float(), c)
            loss = config.w * lt + (1 - config.w) * lc
            float(loss.detach())  # fit reads the loss every step too
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        self.step, self.model, self.x = step, model, x
        with FlopCounterMode(display=False) as fc:
            step()
        self.train_flops = fc.get_total_flops()
        model.eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(x[:1])
        self.fwd_flops = fc.get_total_flops()
        model.train()
        for _ in range(cfg["warmup_steps"]):
            step()
        sync(device)
        self.times: list[float] = []
        self.memory = None

    def measure(self, n: int) -> None:
        with PeakMemory(self.device) as mem:
            for _ in range(n):
                t0 = time.perf_counter()
                self.step()
                sync(self.device)
                self.times.append(time.perf_counter() - t0)
        if self.memory is None or mem.added_mb > self.memory["added_rss_mb"]:
            self.memory = mem.as_dict()

    def result(self) -> dict:
        s = summarize(self.times)
        n, f = self.x.shape[0], self.train_flops
        return {"batch_size": n, "step_seconds": s, "clips_per_s": n / s["median"],
                "clips_per_s_best": n / s["min"], "achieved_gflops_best": f / s["min"] / 1e9,
                "train_gflop_per_batch": f / 1e9, "train_gflop_per_clip": f / n / 1e9,
                "forward_gflop_per_clip": self.fwd_flops / 1e9,
                "achieved_gflops": f / s["median"] / 1e9,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "memory": self.memory}


def layout_pair(im: InMemory, batch: tuple, preset: str, cfg: dict, rounds: int = 8) -> dict:
    """The in-memory steps as ``fit`` places the model (``im``'s) against the same steps with
    the weights in the contiguous NCHW layout (what ``fit`` used before it placed models
    channels last), interleaved round by round."""
    placed = InMemory.__new__(InMemory)
    placed.__dict__.update({**im.__dict__, "times": [], "memory": None})
    plain = InMemory(batch, preset, cfg, memory_format=torch.contiguous_format)
    for _ in range(rounds):
        placed.measure(cfg["steps"])
        plain.measure(cfg["steps"])
    a, b = np.median(placed.times), np.median(plain.times)
    return {"placed_step_s": float(a), "contiguous_step_s": float(b),
            "speedup": float(b / a), "speedup_best": float(min(plain.times) / min(placed.times)),
            "contiguous_gflops": im.train_flops / b / 1e9, "rounds": rounds}


def bf16_pair(im: InMemory, batch: tuple, preset: str, cfg: dict, rounds: int = 8) -> dict:
    """The in-memory float32 steps (``im``'s) against the same steps under the ``cpu_bf16``
    option (bfloat16 autocast), interleaved round by round. An option: the float32 figures
    above are the targets'."""
    base = InMemory.__new__(InMemory)
    base.__dict__.update({**im.__dict__, "times": [], "memory": None})
    bf16 = InMemory(batch, preset, cfg, cpu_bf16=True)
    for _ in range(rounds):
        base.measure(cfg["steps"])
        bf16.measure(cfg["steps"])
    a, b = np.median(base.times), np.median(bf16.times)
    return {"float32_step_s": float(a), "bf16_step_s": float(b), "speedup": float(a / b),
            "speedup_best": float(min(base.times) / min(bf16.times)), "rounds": rounds}


def profile_step(batch: tuple, preset: str, cfg: dict, steps: int = 1) -> dict:
    """torch.profiler of training steps: share of time per operator group."""
    from torch.profiler import ProfilerActivity, profile
    from midlevel.models.bottleneck import build_model, output_layout
    from midlevel.models.layout import place
    from midlevel.training.loop import make_adam
    from midlevel.training.losses import masked_mse, target_loss
    config = _config(preset, cfg, 1)
    cols = columns()
    model = place(build_model("bottleneck", cols.concepts, cols.targets, config.backbone()),
                  "cpu")  # as fit places it
    model.train()
    opt = make_adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    layout = output_layout(cols.targets)
    x, c, y = batch

    def step():
        o = model(x)
        loss = 0.5 * target_loss(o.targets, y, layout) + 0.5 * masked_mse(o.concepts, c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    groups = {"convolution forward": ("aten::mkldnn_convolution", "aten::_convolution",
                                      "aten::convolution"),
              "convolution backward": ("aten::convolution_backward",),
              "batch norm (fwd+bwd)": ("aten::native_batch_norm",
                                       "aten::native_batch_norm_backward",
                                       "aten::_batch_norm_impl_index"),
              "relu / pool / dropout (fwd+bwd)": ("aten::clamp_min", "aten::relu",
                                                  "aten::threshold_backward",
                                                  "aten::max_pool2d_with_indices",
                                                  "aten::max_pool2d_with_indices_backward",
                                                  "aten::bernoulli_", "aten::mul", "aten::div_")}
    totals = {k: 0.0 for k in groups}
    all_ms = 0.0
    adam_ms = 0.0
    for ev in prof.key_averages():
        ms = ev.self_cpu_time_total / 1e3
        all_ms += ms
        if ev.key.startswith("Optimizer.step"):
            adam_ms = ev.cpu_time_total / 1e3
        for k, names in groups.items():
            if ev.key in names:
                totals[k] += ms
    totals["Adam step (total)"] = adam_ms
    share = {k: v / all_ms for k, v in totals.items()}
    return {"steps": steps, "ms_per_step": {k: v / steps for k, v in totals.items()},
            "share": share, "profiled_ms_per_step": all_ms / steps}


def conv_layers(batch: tuple, preset: str, cfg: dict, repeat: int = 2) -> list[dict]:
    """Each convolution of the backbone alone, forward and backward at the training batch's
    shapes: where the model falls short of matmul speed."""
    from midlevel.models.bottleneck import build_model
    config = _config(preset, cfg, 1)
    cols = columns()
    model = build_model("bottleneck", cols.concepts, cols.targets, config.backbone())
    model.train()
    shapes = {}

    def record(name):
        def hook(mod, inputs, output):
            shapes[name] = (tuple(inputs[0].shape), tuple(output.shape))
        return hook
    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
             if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(batch[0])
    for h in hooks:
        h.remove()
    rows = []
    for k, (name, m) in enumerate((n, m) for n, m in model.named_modules()
                                  if isinstance(m, torch.nn.Conv2d)):
        in_shape, out_shape = shapes[name]
        x = torch.randn(in_shape, requires_grad=k > 0)  # the first layer's input needs no grad
        g = torch.randn(out_shape)
        with FlopCounterMode(display=False) as fc:
            m(x)
        f_fwd = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            m(x).backward(g)
        f_bwd = fc.get_total_flops() - f_fwd

        def fwd():
            with torch.no_grad():
                m(x)

        def fwd_bwd():
            m(x).backward(g)
        tf = timeit(fwd, repeat=repeat, warmup=1)["median"]
        tb = max(timeit(fwd_bwd, repeat=repeat, warmup=1)["median"] - tf, 1e-9)
        rows.append({"layer": k + 1, "in": list(in_shape[1:]), "out": list(out_shape[1:]),
                     "kernel": list(m.kernel_size), "stride": list(m.stride),
                     "fwd_gflop": f_fwd / 1e9, "fwd_ms": tf * 1e3,
                     "fwd_gflops": f_fwd / tf / 1e9, "bwd_gflop": f_bwd / 1e9,
                     "bwd_ms": tb * 1e3, "bwd_gflops": f_bwd / tb / 1e9})
    return rows


def optimizer_variants(preset: str, cfg: dict) -> dict:
    """Adam step time on the model's parameters: default (for-loop) vs foreach vs fused,
    interleaved round by round; ``ms`` is the fastest round (the least disturbed by other
    jobs: a step's own cost does not vary), ``ms_median`` the median."""
    from midlevel.models.bottleneck import build_model
    cols = columns()
    config = _config(preset, cfg, 1)
    model = build_model("bottleneck", cols.concepts, cols.targets, config.backbone()).to(
        cfg["device"])
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    out, opts = {}, {}
    for name, kw in [("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})]:
        try:
            opts[name] = torch.optim.Adam(model.parameters(), lr=5e-4, **kw)
            opts[name].step()
        except (RuntimeError, TypeError) as exc:
            out[name] = {"error": str(exc)}
            opts.pop(name, None)
    times: dict = {k: [] for k in opts}
    for _ in range(cfg.get("opt_repeat", 5)):
        for name, opt in opts.items():
            sync(cfg["device"])
            t0 = time.perf_counter()
            opt.step()
            sync(cfg["device"])
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        out[name] = {"ms": min(ts) * 1e3, "ms_median": float(np.median(ts)) * 1e3}
    return out


def run(cfg: dict) -> dict:
    workdir = Path(cfg["workdir"])
    device = cfg["device"]
    n_max = max([cfg["n_train"], *cfg["scaling_sizes"]])
    files, source = pick_files(n_max, workdir, seed=1, quick_seconds=cfg.get("quick_seconds"))
    t0 = time.perf_counter()
    features = load_features(Path(cfg["cache_dir"]), files)
    load_s = time.perf_counter() - t0
    # the cost of reading a filled cache (what `train` does before fit): warm-cache reads
    from midlevel.data.cache import FeatureCache
    cache = FeatureCache(Path(cfg["cache_dir"]))
    t0 = time.perf_counter()
    for p in files[: cfg["n_train"]]:
        cache.get(p)
    read_s = (time.perf_counter() - t0) / cfg["n_train"]
    result: dict = {"source": source, "device": device, "amp": cfg["amp"],
                    "batch_size": cfg["batch_size"], "crop_seconds": cfg["crop_seconds"],
                    "cache_read_s_per_clip": read_s, "feature_prepare_s": load_s,
                    "presets": {}}
    table = bench_table(files[: cfg["n_train"]], n_train=cfg["n_train"])
    n_frames = int(cfg["crop_seconds"] * FPS) + 1
    rng = np.random.default_rng(0)
    specs = [torch.as_tensor(features[str(p)]) for p in files[: cfg["batch_size"]]]
    crops = []
    for s in specs:
        start = int(rng.integers(0, max(1, s.shape[1] - n_frames + 1)))
        piece = s[:, start:start + n_frames]
        crops.append(torch.nn.functional.pad(piece, (0, n_frames - piece.shape[1])))
    x = torch.stack(crops).unsqueeze(1)
    batch = (x, torch.randn(len(x), 7), torch.randn(len(x), 8))
    # the matmul at the precision the model computes in (bf16 under --amp on cuda)
    mm_dtype = "bfloat16" if cfg["amp"] and device.startswith("cuda") else "float32"
    result["matmul_dtype"] = mm_dtype
    for preset in cfg["presets"]:
        mm_before = matmul_gflops(n=cfg["matmul_n"], device=device, dtype=mm_dtype)
        im = InMemory(batch, preset, cfg)
        im.measure(cfg["steps"])
        mm_mid = matmul_gflops(n=cfg["matmul_n"], device=device, dtype=mm_dtype)
        e2e = end_to_end(table, features, preset, cfg, workdir / "runs" / preset)
        im.measure(cfg["steps"])
        mem = im.result()
        threads = torch.get_num_threads()
        if not device.startswith("cuda") and threads > 1:
            # the same steps on one thread: does the second core help on this machine now?
            one = InMemory.__new__(InMemory)
            one.__dict__.update({**im.__dict__, "times": [], "memory": None})
            torch.set_num_threads(1)
            try:
                one.step()  # oneDNN primitives for one thread
                one.measure(cfg["steps"])
            finally:
                torch.set_num_threads(threads)
            mem["one_thread"] = {"step_seconds": summarize(one.times),
                                 "clips_per_s": one.x.shape[0] / np.median(one.times),
                                 "achieved_gflops": im.train_flops / np.median(one.times) / 1e9}
            del one
            mem["layout"] = layout_pair(im, batch, preset, cfg)
            from midlevel.training.config import cpu_has_bf16
            if cpu_has_bf16():
                mem["cpu_bf16"] = bf16_pair(im, batch, preset, cfg)
        del im
        mm_after = matmul_gflops(n=cfg["matmul_n"], device=device, dtype=mm_dtype)
        mms = [m["gflops"] for m in (mm_before, mm_mid, mm_after)]
        matmul = float(np.median(mms))
        matmul_best = max(m["gflops_best"] for m in (mm_before, mm_mid, mm_after))
        entry = {"in_memory": mem, "end_to_end": e2e, "matmul_gflops": matmul,
                 "matmul_gflops_samples": mms, "matmul_n": cfg["matmul_n"],
                 "ratio_e2e_to_in_memory": e2e["clips_per_s"] / mem["clips_per_s"],
                 "e2e_achieved_gflops": e2e["clips_per_s"] * mem["train_gflop_per_clip"],
                 "ratio_in_memory_to_matmul": mem["achieved_gflops"] / matmul,
                 "matmul_gflops_best": matmul_best,
                 "ratio_e2e_to_in_memory_best": e2e["clips_per_s_best"] / mem["clips_per_s_best"],
                 "ratio_in_memory_to_matmul_best": mem["achieved_gflops_best"] / matmul_best}
        entry["ratio_e2e_to_matmul"] = entry["e2e_achieved_gflops"] / matmul
        if cfg.get("profile") and not device.startswith("cuda"):
            entry["profile"] = profile_step(batch, preset, cfg)
            if preset == "paper" or cfg.get("quick_seconds"):
                entry["conv_layers"] = conv_layers(batch, preset, cfg)
            entry["adam_variants"] = optimizer_variants(preset, cfg)
        result["presets"][preset] = entry

    scaling = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for k in cfg["scaling_sizes"]:
            tab = bench_table(files[:k], n_train=k)
            sub = {**cfg, "epochs": 2}
            e = end_to_end(tab, features, cfg["scaling_preset"], sub, Path(tmp) / f"n{k}")
            scaling.append({"n_train": k, "preset": cfg["scaling_preset"],
                            "epoch_seconds": e["epoch_seconds"][-1],
                            "clips_per_s": e["clips_per_s"], "fit_total_s": e["fit_total_s"],
                            "memory": e["memory"],
                            "feature_mb": sum(features[str(p)].nbytes
                                              for p in files[:k]) / 2 ** 20})
    result["scaling"] = scaling
    return result
