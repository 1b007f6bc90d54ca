"""Side by side with what a user would write instead, each a ratio within one run.

- the paper front end against the equivalent librosa pipeline (``librosa.stft`` with the same
  window and frames, the same log filterbank, ``log10(1 + x)``; same output within 1e-4), and
  against madmom's ``LogarithmicFilteredSpectrogram`` when madmom can be imported;
- each attribution method (through ``Attributor``, the way the workflows call it: one instance
  explaining clip after clip) against the direct shap / captum call with the same settings;
- the training steps of an epoch (``Trainer``, fused Adam) against a plain PyTorch loop over
  the same network, batches and data (Adam with its default implementation).

Both sides of every pair run on one torch thread unless ``threads`` says otherwise, interleaved
round by round, each side first in every other round; speedup = median(theirs) /
median(ours).
"""
from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from bench_common import ratio_interval, summarize


def _pair(ours, theirs, rounds: int, budget_s: float = 0.0) -> dict:
    """Time ``ours`` and ``theirs`` round by round (ABBA order). ``budget_s``: raise the number
    of rounds (up to 60) until both sides together take about that long, so a call of a few
    milliseconds is timed as often as the noise needs. ``interval``: a 95 % bootstrap interval
    of the speedup (rounds resampled in pairs), to read a ratio against the run's noise."""
    t0 = time.perf_counter()
    ours(), theirs()  # warm up both
    once = time.perf_counter() - t0
    if budget_s > 0:
        rounds = max(rounds, min(60, int(budget_s / max(once, 1e-6))))
    a, b = [], []
    for r in range(rounds):  # ABBA: each side goes first in half of the rounds
        for fn, times in ([(ours, a), (theirs, b)] if r % 2 == 0 else [(theirs, b), (ours, a)]):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    sa, sb = summarize(a), summarize(b)
    return {"ours_s": sa["median"], "theirs_s": sb["median"], "speedup": sb["median"] / sa["median"],
            "speedup_best": sb["min"] / sa["min"], "rounds": rounds,
            "interval": ratio_interval(b, a)}


# ----------------------------------------------------------------------------- front end


def frontend_vs_librosa(n_clips: int, seconds: float, rounds: int,
                        budget_s: float = 0.0) -> dict:
    """The package front end against the librosa pipeline a user would write, on the same
    audio. Primary figure at equal resources: the package runs on one torch thread, so
    librosa's matrix product runs on one BLAS thread too (``threadpoolctl``); numpy's default
    (OpenBLAS on every core) is reported beside it: on a busy machine its spinning threads
    made the same pipeline up to 6x slower in one run, which is a property of the BLAS
    threads, not of either front end."""
    import librosa
    from threadpoolctl import threadpool_info, threadpool_limits

    from midlevel.data.frontends import LogFilteredSpectrogram
    sr = 22050
    fe = LogFilteredSpectrogram(fps=sr / 705).eval()  # an integer hop, which librosa needs
    fb, win = fe.filterbank.numpy(), fe.window.numpy()
    ys = [np.random.default_rng(i).normal(size=int(sr * seconds)).astype(np.float32)
          for i in range(n_clips)]

    def lib(y):
        S = np.abs(librosa.stft(y, n_fft=2048, hop_length=705, window=win, center=True,
                                pad_mode="constant"))
        return np.log10(1 + fe.log_mul * (fb.T @ S[:fb.shape[0]]))

    def ours(y):
        with torch.no_grad():
            return fe(torch.from_numpy(y)).numpy()

    # the bound: both pipelines run the same real FFT (torch's and scipy's pocketfft, timed
    # equal), so no front end beats librosa by more than librosa / (the FFTs alone)
    # (uncentred frames: 3 fewer than either pipeline's 939 per 30 s, a 0.3 % kinder bound)
    framed = [(torch.from_numpy(y).unfold(0, 2048, 705) * fe.window).contiguous() for y in ys]

    def fft_only():
        return [torch.fft.rfft(f) for f in framed]

    a, b = ours(ys[0]), lib(ys[0])
    n = min(a.shape[1], b.shape[1])
    blas = max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"),
               default=1)
    with threadpool_limits(limits=1):
        res = _pair(lambda: [ours(y) for y in ys], lambda: [lib(y) for y in ys], rounds,
                    budget_s)
        fft = _pair(fft_only, lambda: [lib(y) for y in ys], rounds, budget_s)
    default = _pair(lambda: [ours(y) for y in ys], lambda: [lib(y) for y in ys], rounds,
                    budget_s)
    return {"ours_s": res["ours_s"], "librosa_s": res["theirs_s"], "speedup": res["speedup"],
            "speedup_best": res["speedup_best"], "interval": res["interval"],
            "rounds": res["rounds"], "fft_only_s": fft["ours_s"], "ceiling": fft["speedup"],
            "ceiling_interval": fft["interval"],
            "default_blas_threads": int(blas), "default_librosa_s": default["theirs_s"],
            "default_ours_s": default["ours_s"], "default_speedup": default["speedup"],
            "default_interval": default["interval"],
            "audio_seconds": n_clips * seconds,
            "max_abs_diff": float(np.abs(a[:, :n] - b[:, :n]).max()),
            "frames": [int(a.shape[1]), int(b.shape[1])]}


def madmom_status() -> str:
    try:
        import madmom  # noqa: F401
    except ImportError as exc:
        return (f"not compared: madmom cannot be imported here ({exc.__class__.__name__}); it "
                f"needs Cython and an older numpy at build time, which this environment does "
                f"not provide")
    return "importable (comparison not written yet)"


# ----------------------------------------------------------------------------- methods


def _direct(method: str, f, bg, ref, options: dict):
    """The user's own call of the library, built once like ours: ``x -> values``."""
    import captum.attr as ca
    import shap
    if method == "shap_deep":
        with torch.no_grad():
            e = shap.DeepExplainer(f, bg)
        return "shap", lambda x: np.concatenate([e.shap_values(x[i:i + 1])
                                                 for i in range(len(x))])
    if method == "shap_gradient":
        with torch.no_grad():
            e = shap.GradientExplainer(f, bg, batch_size=16)
        return "shap", lambda x: e.shap_values(x, nsamples=options["n_samples"], rseed=0)
    if method == "integrated_gradients":
        ig = ca.IntegratedGradients(f)
        return "captum", lambda x: ig.attribute(x, baselines=ref, target=0,
                                               n_steps=options["n_steps"],
                                               internal_batch_size=16).detach()
    if method == "gradient_shap":
        gs = ca.GradientShap(f)
        return "captum", lambda x: gs.attribute(x, baselines=bg, target=0, stdevs=0.0,
                                               n_samples=options["n_samples"]).detach()
    if method == "deeplift":
        dl = ca.DeepLift(f)
        return "captum", lambda x: dl.attribute(x, baselines=ref.expand_as(x).contiguous(),
                                               target=0).detach()
    if method == "occlusion":
        occ = ca.Occlusion(f)
        w = options["window"]
        return "captum", lambda x: occ.attribute(x, sliding_window_shapes=(1, *w),
                                                strides=(1, *w), baselines=ref, target=0,
                                                perturbations_per_eval=16).detach()
    if method == "gradcam":
        from midlevel.explain.attribution.gradcam import last_conv_block
        cam = ca.LayerGradCam(f, last_conv_block(f)[1])
        return "captum", lambda x: torch.nn.functional.interpolate(
            cam.attribute(x, target=0, relu_attributions=True).detach(),
            size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)
    return None, None


def methods_vs_direct(preset: str, seconds: float, n_background: int, rounds: int,
                      options: dict, budget_s: float = 0.0,
                      noise_method: str = "integrated_gradients") -> tuple[dict, dict]:
    """Each method through ``Attributor`` against the direct call; and the noise floor: the
    ratio of ``noise_method``'s direct call timed against itself in the same way."""
    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.explain.attribution.base import OutputSelector
    from midlevel.models.bottleneck import BlackBox
    from midlevel.models.backbone import preset as backbone_preset
    torch.manual_seed(0)
    model = BlackBox([{"name": "y"}], backbone=backbone_preset(preset)).eval()
    n_frames = int(seconds * 31.25) + 1
    x = torch.randn(1, 1, 149, n_frames)
    bg = torch.randn(n_background, 1, 149, n_frames)
    out, noise = {}, {}
    for method in ("shap_deep", "shap_gradient", "integrated_gradients", "gradient_shap",
                   "deeplift", "occlusion", "gradcam"):
        at = Attributor(model, method, background=bg, **options)
        f = OutputSelector(model).eval()
        library, direct = _direct(method, f, bg, bg.mean(0, keepdim=True), options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours_v = at.attribute(x).values
            theirs_v = np.asarray(direct(x)).reshape(ours_v.shape)
            res = _pair(lambda: at.attribute(x), lambda: direct(x), rounds, budget_s)
            if method == noise_method:  # the noise floor: the same direct call on both sides
                aa = _pair(lambda: direct(x), lambda: direct(x), rounds, budget_s)
                noise = {"method": method, "speedup": aa["speedup"], "interval": aa["interval"],
                         "rounds": aa["rounds"]}
        scale = float(np.abs(theirs_v).max()) or 1.0
        out[method] = {"library": library, "ours_s": res["ours_s"], "direct_s": res["theirs_s"],
                       "speedup": res["speedup"], "speedup_best": res["speedup_best"],
                       "interval": res["interval"], "rounds": res["rounds"],
                       "max_abs_diff": float(np.abs(ours_v - theirs_v).max()) / scale}
    return out, noise


# ----------------------------------------------------------------------------- epoch


def epoch_vs_plain(preset: str, n_train: int, seconds: float, batch_size: int,
                   rounds: int, workdir, budget_s: float = 0.0) -> dict:
    import pandas as pd

    from midlevel.models.bottleneck import build_model, output_layout
    from midlevel.testing.toy import toy_data
    from midlevel.training.config import TrainConfig
    from midlevel.training.ddp import Context
    from midlevel.training.loop import Trainer, fit
    from midlevel.training.losses import masked_mse, target_loss
    n_frames = int(seconds * 31.25) + 1
    # at least 10 clips: the toy's 20 % validation split needs 2 to give a selection score
    # (training refuses 1); the full run's 24 training clips are 41 either way
    table, features, columns = toy_data(n_clips=max(10, int(n_train / 0.6) + 1), n_bands=149)
    rng = np.random.default_rng(0)
    features = {k: rng.normal(1.0, 0.3, size=(149, n_frames + 10)).astype(np.float32)
                for k in features}
    config = TrainConfig(mode="joint", preset=preset, crop_seconds=seconds,
                         batch_size=batch_size, epochs=1)
    trainer = Trainer(Context(), table, features, columns, workdir / "trainer", config,
                      fps=31.25, frontend=None, data={})
    torch.manual_seed(0)
    model = build_model("bottleneck", columns.concepts, columns.targets, config.backbone())
    trainer.scales.apply_to(model, columns)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    layout = output_layout(columns.targets)
    train_set = trainer.train_set

    def plain(epoch=0):
        g = np.random.default_rng([config.seed, epoch])
        order = g.permutation(len(train_set))
        offsets = train_set.crop_offsets(trainer.n_frames, g)
        model.train()
        for a in range(0, len(order), batch_size):
            idx = order[a:a + batch_size]
            if len(idx) < 2:
                continue
            x, c, y = train_set.batch(idx, offsets, trainer.n_frames)
            o = model(x)
            loss = config.w * target_loss(o.targets, y, layout) + (1 - config.w) * masked_mse(
                o.concepts, c)
            float(loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    res = _pair(lambda: trainer._epoch(0, False), plain, rounds, budget_s)
    t0 = time.perf_counter()
    fit(table, features, columns, workdir / "fit", TrainConfig(
        mode="joint", preset=preset, crop_seconds=seconds, batch_size=batch_size, epochs=2),
        fps=31.25, overwrite=True, progress=False)
    history = pd.read_csv(workdir / "fit" / "history.csv")
    return {"preset": preset, "n_train": len(train_set), "ours_s": res["ours_s"],
            "plain_s": res["theirs_s"], "speedup": res["speedup"],
            "speedup_best": res["speedup_best"], "interval": res["interval"],
            "rounds": res["rounds"], "fit_epoch_s": float(history["seconds"].iloc[-1]),
            "fit_total_s": time.perf_counter() - t0}


def run(cfg: dict) -> dict:
    from pathlib import Path
    workdir = Path(cfg["workdir"]) / "sidebyside"
    workdir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg.get("threads") or 1))
    methods, noise = methods_vs_direct(cfg["preset"], cfg["seconds"], cfg["n_background"],
                                       cfg["rounds"], cfg["method_options"],
                                       float(cfg.get("budget_s", 0.0)))
    return {"threads": torch.get_num_threads(),
            "frontend": frontend_vs_librosa(cfg["fe_clips"], cfg["fe_seconds"], cfg["rounds"],
                                            float(cfg.get("budget_s", 0.0))),
            "madmom": madmom_status(),
            "methods": methods,
            "noise_floor": noise,
            "epoch": epoch_vs_plain(cfg["epoch_preset"], cfg["n_train"], cfg["seconds"],
                                    cfg["batch_size"], cfg["rounds"], workdir,
                                    float(cfg.get("epoch_budget_s", 0.0)))}
