"""results.json and the "Performance" section of RESULTS.md from one benchmark run.

``results.json`` keeps one entry per device (``cpu``, ``cuda``): a CPU run leaves a recorded GPU
run in place and the other way round. In RESULTS.md only the text between
``<!-- perf:start -->`` and ``<!-- perf:end -->`` is replaced (the markers and a heading are
appended when absent); the other sections belong to other authors.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from midlevel.io import write_text  # noqa: E402
from midlevel.report.markdown import markdown_table  # noqa: E402

START, END = "<!-- perf:start -->", "<!-- perf:end -->"
HEADING = "## Performance"

TARGETS = {"cache_vs_decode": 0.50, "e2e_vs_memory": 0.85, "paper_vs_matmul": 0.80,
           "contrib_added": 0.05, "shap_gradient_s": 3.5, "frontend_vs_librosa": 2.0,
           "method_vs_direct": 1.0, "epoch_vs_plain": 1.0, "stream_memory_growth": 0.20,
           "stream_vs_memory": 0.90}


# ----------------------------------------------------------------------------- helpers


def _g(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _f(x, digits=1, suffix=""):
    if x is None:
        return "n/a"
    if isinstance(x, str):
        return x
    if abs(x) >= 100:
        return f"{x:,.0f}{suffix}"
    return f"{x:.{digits}f}{suffix}"


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _spct(x):
    """Signed percentage: +3%, -1%, +0.2%."""
    if x is None:
        return "n/a"
    return f"{100 * x:+.1f}%" if abs(x) < 0.1 else f"{100 * x:+.0f}%"


def _mem(m):
    return "n/a" if not m else _f(m.get("added_rss_mb"), 0)


def _table(header, rows) -> list[str]:
    """A Markdown table of formatted cells (the package's renderer)."""
    frame = pd.DataFrame([[str(c) for c in row] for row in rows], columns=list(header))
    table = markdown_table(frame, max_rows=len(frame) + 1, literal=False)
    return table.rstrip("\n").splitlines() + [""]


def _met(ok):
    return "n/a" if ok is None else ("**yes**" if ok else "**no**")


# ----------------------------------------------------------------------------- sections


def targets_rows(r: dict) -> list[list]:
    s = r["sections"]
    rows = []
    for mode, m in (_g(s, "features", "modes") or {}).items():
        ratio = m["ratio_fill_to_decode"]
        rows.append([f"feature caching / decode-only throughput ({mode})", "≥ 50%",
                     f"{_f(m['cache_fill']['clips_per_s'])} vs "
                     f"{_f(m['decode']['clips_per_s'])} clips/s", _pct(ratio),
                     _pct(m.get("ratio_fill_to_decode_best")),
                     _met(ratio >= TARGETS["cache_vs_decode"])])
        c = _g(s, "features", "candidate", mode)
        if c:
            rows.append([f"… {mode} with `bench_frontend.py`'s blocked front end (the "
                         f"package's own runs on one thread)", "≥ 50%", f"{_f(c['clips_per_s'])} clips/s",
                         _pct(c["ratio_fill_to_decode"]), _pct(c["ratio_fill_to_decode_best"]),
                         _met(c["ratio_fill_to_decode"] >= TARGETS["cache_vs_decode"])])
    for preset in ("paper", "small"):
        p = _g(s, "training", "presets", preset)
        if p:
            ratio = p["ratio_e2e_to_in_memory"]
            flag = " (> 100%: the load changed between the two)" if ratio > 1.1 else ""
            rows.append([f"training end to end / in-memory ({preset})", "≥ 85%",
                         f"{_f(p['end_to_end']['clips_per_s'], 2)} vs "
                         f"{_f(p['in_memory']['clips_per_s'], 2)} clips/s", _pct(ratio) + flag,
                         _pct(p.get("ratio_e2e_to_in_memory_best")),
                         _met(ratio >= TARGETS["e2e_vs_memory"])])
    p = _g(s, "training", "presets", "paper")
    if p:
        ratio = p["ratio_in_memory_to_matmul"]
        rows.append(["training GFLOP/s / matmul GFLOP/s (paper, in-memory)", "≥ 80%",
                     f"{_f(p['in_memory']['achieved_gflops'])} vs {_f(p['matmul_gflops'])} "
                     f"GFLOP/s", _pct(ratio), _pct(p.get("ratio_in_memory_to_matmul_best")),
                     _met(ratio >= TARGETS["paper_vs_matmul"])])
        rows.append(["training GFLOP/s / matmul GFLOP/s (paper, end to end)", "(≥ 80%)",
                     f"{_f(p['e2e_achieved_gflops'])} vs {_f(p['matmul_gflops'])} GFLOP/s",
                     _pct(p["ratio_e2e_to_matmul"]), "",
                     _met(p["ratio_e2e_to_matmul"] >= TARGETS["paper_vs_matmul"])])
    for preset in ("paper", "small"):
        c = _g(s, "explain", "presets", preset, "contributions")
        if c:
            a = c["added_fraction"]
            d = c.get("added_fraction_direct")
            rows.append([f"bottleneck contributions added to whole-clip inference ({preset})",
                         "≤ 5%",
                         f"`explain_clips` {_f(c['explain_clips']['seconds']['median'], 3)}"
                         f" s vs `Run.predict` {_f(c['predict']['seconds']['median'], 3)} s "
                         f"({c['n_clips']} clips); the table alone "
                         f"{_f(1e3 * _g(c, 'table_seconds', 'median', default=0.0), 1)} ms",
                         f"{_spct(a)} (table alone {_spct(d)})",
                         _spct(c.get("added_fraction_best")),
                         _met((d if d is not None else a) <= TARGETS["contrib_added"])])
    g = _g(s, "explain", "presets", "paper", "methods", "shap_gradient")
    if g and "seconds" in g:
        t = g["seconds"]["median"]
        lim = TARGETS["shap_gradient_s"]
        rows.append(["SHAP GradientExplainer per 10-s clip (paper, defaults, explainer reused)",
                     f"≤ {lim:g} s", f"{_f(t, 2)} s ({g.get('grad_passes', '?')} samples; first "
                     f"call {_f(g.get('first_call_seconds'), 2)} s)",
                     f"{_f(t / lim, 2)}x target", f"{_f(g['seconds']['min'] / lim, 2)}x",
                     _met(t <= lim)])
        if g.get("bound_s") is not None:
            rows.append(["… the first call's bound: FLOPs of its work (the explainer's "
                         "background forwards included) at matmul speed", f"≤ {lim:g} s",
                         f"{_f(g['bound_s'], 2)} s ({_f(g.get('grad_only_bound_s'), 2)} s for "
                         f"the gradient passes alone)", f"{_f(g['bound_s'] / lim, 2)}x target",
                         "", _met(g["bound_s"] <= lim)])
    st = s.get("streaming") or {}
    if "streaming_peak_spread" in st:
        grow = st["streaming_peak_spread"]
        rows.append([f"streaming: peak training memory, {st['factors'][0]}x to "
                     f"{st['factors'][-1]}x dataset size", "within 20%",
                     f"spread {_spct(grow)} (in memory {_spct(st.get('in_memory_peak_spread'))})",
                     _spct(st.get("streaming_peak_growth")), "",
                     _met(grow <= TARGETS["stream_memory_growth"])])
    v = _g(st, "throughput", "variants", "streaming")
    if v:
        rows.append(["training throughput, streaming / in memory (same data)", "≥ 90%",
                     f"{_f(v['clips_per_s'], 2)} vs "
                     f"{_f(st['throughput']['variants']['in memory']['clips_per_s'], 2)} clips/s"
                     + (f" (95 % interval {_pct(v['ratio_interval'][0])}-"
                        f"{_pct(v['ratio_interval'][1])}, {st['throughput']['rounds']} rounds)"
                        if v.get("ratio_interval") else ""),
                     _pct(v["ratio_to_in_memory"]), _pct(v["ratio_to_in_memory_best"]),
                     _met(v["ratio_to_in_memory"] >= TARGETS["stream_vs_memory"])])
    rows += sidebyside_rows(_g(s, "sidebyside") or {})
    return rows


def _cache_worth() -> str:
    from midlevel.data import cache
    return f"{cache.WORKER_WORTH_S:g}"


def _interval(m: dict) -> str:
    """``; 95 % interval a-b, n rounds`` when the pair has a bootstrap interval."""
    if not m.get("interval"):
        return ""
    lo, hi = m["interval"]
    return f"; 95 % interval {_f(lo, 2)}-{_f(hi, 2)}x, {m.get('rounds')} rounds"


def sidebyside_rows(sb: dict) -> list[list]:
    """Target rows of the side-by-side section (``bench_sidebyside.py``)."""
    rows = []
    fe = sb.get("frontend")
    if fe:
        rows.append(["front end / the librosa pipeline (same output; one thread each: torch "
                     "and librosa's BLAS)", "≥ 2x",
                     f"{_f(fe['ours_s'], 3)} s vs {_f(fe['librosa_s'], 3)} s for "
                     f"{_f(fe['audio_seconds'], 0)} s of audio (max diff "
                     f"{fe['max_abs_diff']:.1e}{_interval(fe)})", f"{_f(fe['speedup'], 2)}x",
                     f"{_f(fe['speedup_best'], 2)}x",
                     _met(fe["speedup"] >= TARGETS["frontend_vs_librosa"])])
        if fe.get("default_speedup"):
            lo, hi = fe["default_interval"]
            rows.append([f"… librosa with numpy's default BLAS threads "
                         f"({fe['default_blas_threads']}), the package on one torch thread",
                         "(reported)", f"{_f(fe['default_ours_s'], 3)} s vs "
                         f"{_f(fe['default_librosa_s'], 3)} s (95 % interval {_f(lo, 2)}-"
                         f"{_f(hi, 2)}x)", f"{_f(fe['default_speedup'], 2)}x", "", ""])
        if fe.get("ceiling"):
            rows.append(["… its ceiling: the librosa pipeline / the real FFTs of the same frames "
                         "alone (both sides use the same pocketfft speed)", "(reported)",
                         f"{_f(1e3 * fe['fft_only_s'], 1)} ms of FFT for the same audio",
                         f"{_f(fe['ceiling'], 2)}x", "", ""])
    for name, m in (sb.get("methods") or {}).items():
        rows.append([f"{name} / the direct {m['library']} call", "≥ 1x",
                     f"{_f(1e3 * m['ours_s'], 0)} vs {_f(1e3 * m['direct_s'], 0)} ms per clip "
                     f"(max diff {m['max_abs_diff']:.1e}{_interval(m)})",
                     f"{_f(m['speedup'], 2)}x", f"{_f(m['speedup_best'], 2)}x",
                     _met(m["speedup"] >= TARGETS["method_vs_direct"])])
    nf = sb.get("noise_floor")
    if nf:
        rows.append([f"… noise floor: the direct {nf['method']} call timed against itself",
                     "(reported)", f"same call on both sides{_interval(nf)}",
                     f"{_f(nf['speedup'], 2)}x", "", ""])
    ep = sb.get("epoch")
    if ep:
        rows.append([f"training steps of an epoch / a plain PyTorch loop ({ep['preset']}, "
                     f"same network, batches, data)", "≥ 1x",
                     f"{_f(ep['ours_s'], 2)} vs {_f(ep['plain_s'], 2)} s per epoch"
                     f"{_interval(ep)}",
                     f"{_f(ep['speedup'], 2)}x", f"{_f(ep['speedup_best'], 2)}x",
                     _met(ep["speedup"] >= TARGETS["epoch_vs_plain"])])
        rows.append(["… the whole epoch of `fit` (BatchNorm re-estimation, validation, "
                     "checkpoint) / the plain loop's steps", "(reported)",
                     f"{_f(ep['fit_epoch_s'], 2)} s", f"{_f(ep['plain_s'] / ep['fit_epoch_s'], 2)}x",
                     "", ""])
    if sb.get("madmom"):
        rows.append(["madmom's LogarithmicFilteredSpectrogram", "(compared if installable)",
                     sb["madmom"], "", "", "n/a"])
    return rows


def streaming_lines(s: dict) -> list[str]:
    st = s.get("streaming")
    if not st:
        return ["Not run (see `--sections`).", ""]
    if "error" in st:
        return [f"Streaming section failed: {st['error']}", ""]
    out = [f"`benchmarks/bench_streaming.py`. Random spectrograms of {st['clip_seconds']:g}-s "
           f"clips (149 bands, {int(st['clip_seconds'] * 31.25) + 1} frames, "
           f"{149 * (int(st['clip_seconds'] * 31.25) + 1) * 4 / 1e3:.0f} kB each) as `.npy` "
           f"files (the feature cache's layout); 90 % train. Memory: `fit` for 1 epoch (joint, "
           f"a tiny network of width {st['memory_width']:g} and {st['memory_crop_seconds']:g}-s "
           f"crops, so that data handling decides the peak), "
           f"{'each in a fresh process' if st.get('subprocess', True) else 'in one process (quick run: the mechanics, not the peaks)'}; "
           f"streaming with {st['default_workers']} DataLoader worker(s) (the default here). "
           f"Peak = the process's high-water mark; added = peak minus the RSS at the start of "
           f"`fit`; worker = largest DataLoader worker's peak RSS (counts pages shared with the "
           f"trainer: an upper bound).", ""]
    rows = []
    for m in st["memory"]:
        if "error" in m:
            rows.append([f"{m['factor']}x", "streaming" if m["streaming"] else "in memory",
                         "failed", "", "", "", ""])
            continue
        rows.append([f"{m['factor']}x ({m['n_clips']} clips)",
                     "streaming" if m["streaming"] else "in memory", _f(m["feature_mb"], 0),
                     _f(m["peak_rss_mb"], 0), _f(m["added_mb"], 0),
                     _f(m["worker_peak_rss_mb"], 0) if m.get("worker_peak_rss_mb") else "-",
                     _f(m["fit_seconds"], 1)])
    out += _table(["dataset", "path", "spectrograms MB", "peak RSS MB", "added MB",
                   "worker peak MB", "fit s"], rows)
    out += [f"Peak RSS from {st['factors'][0]}x to {st['factors'][-1]}x: streaming "
            f"{_spct(st.get('streaming_peak_growth'))} (largest spread over the sizes "
            f"{_spct(st.get('streaming_peak_spread'))}), in memory "
            f"{_spct(st.get('in_memory_peak_growth'))}.", ""]
    tp = st.get("throughput")
    if tp:
        out += [f"Throughput: `fit`, preset `{tp['preset']}`, {tp['crop_seconds']:g}-s crops, "
                f"{tp['n_train']} training clips, {tp['epochs_per_fit']} epochs per fit (epoch 2 "
                f"on counted), {tp['rounds']} interleaved round(s); per-epoch time includes "
                f"the validation pass and BatchNorm re-estimation on both paths.", ""]
        out += _table(["path", "clips/s (median)", "clips/s (best)", "/ in memory",
                       "95 % interval", "/ in memory (best)"],
                      [[name, _f(v["clips_per_s"], 2), _f(v["clips_per_s_best"], 2),
                        _pct(v["ratio_to_in_memory"]),
                        (f"{_pct(v['ratio_interval'][0])}-{_pct(v['ratio_interval'][1])}"
                         if v.get("ratio_interval") and name != "in memory" else "-"),
                        _pct(v["ratio_to_in_memory_best"])]
                       for name, v in tp["variants"].items()])
        out += ["Interval: 95 % percentile bootstrap of the ratio of median epoch times, the "
                "counted epochs resampled in pairs from the same rounds (2000 times); before "
                "2026-12-03 the "
                "figure came from 2 rounds and no interval (88 %, 91 % and 104 % in three "
                "runs).", ""]
    return out


def best_matmul(r: dict) -> float | None:
    """The fastest fp32 matmul measured anywhere in a run (GFLOP/s): the machine's capacity
    as far as this run saw it."""
    m, s = r["machine"], r["sections"]
    seen = [v for ref in (m.get("reference_start"), m.get("reference_end")) if ref
            for v in ref.values()]
    seen += [p.get("matmul_gflops_best", 0) for p in (_g(s, "training", "presets") or {}).values()]
    seen.append(_g(s, "explain", "matmul_gflops", default=0) or 0)
    return max(seen) if seen else None


def _ref(ref) -> str:
    if not ref:
        return "n/a"
    return ", ".join(f"{_f(v, 0)} ({k.split('_', 2)[-1].replace('_', ' ')})"
                     for k, v in ref.items())


def machine_lines(r: dict) -> list[str]:
    m = r["machine"]
    rows = [["CPU", f"{m['cpu_model']} ({', '.join(m.get('simd', []))})"],
            ["cores (usable / logical)", f"{m.get('usable_cpus')} / {m.get('logical_cpus')}"],
            ["memory", f"{m.get('memory_gb')} GB"],
            ["torch", f"{m['torch']} ({m.get('blas')}, {m.get('torch_cpu_capability')}), "
                      f"{m['torch_threads']} threads"],
            ["python / numpy", f"{m['python']} / {m['numpy']}"],
            ["soundfile / soxr / librosa", f"{m.get('soundfile')} / {m.get('soxr')} / "
                                           f"{m.get('librosa')}"],
            ["shap / captum", f"{m.get('shap')} / {m.get('captum')}"],
            ["device", r["device"] + (" (bf16 autocast)" if r.get("amp") else "")
             + (f": {m['gpu']['name']}, {m['gpu']['memory_gb']} GB" if m.get("gpu") else "")],
            ["load average (1/5/15 min) at start → end",
             f"{m.get('load_average')} → {m.get('load_average_end')}"],
            ["fp32 matmul GFLOP/s (1024²) at start → end", _ref(m.get("reference_start"))
             + " → " + _ref(m.get("reference_end"))],
            ["best fp32 matmul seen in the run", f"{_f(best_matmul(r), 0)} GFLOP/s"]]
    return _table(["", ""], rows)


def features_lines(s: dict) -> list[str]:
    f = s.get("features")
    if not f:
        return ["Not run (see `--sections`).", ""]
    if "error" in f:
        return [f"Feature section failed: {f['error']}", ""]
    out = [f"{f['n_files']} files ({f['source']}), {_f(f['audio_seconds'], 0)} s of audio; "
           f"rounds interleaved (decode, cache, decode, cache, ...); medians.", ""]
    rows = []
    for mode, m in f["modes"].items():
        rows.append([mode, _f(m["decode"]["clips_per_s"]), _f(m["decode"]["x_realtime"], 0),
                     _f(m["cache_fill"]["clips_per_s"]), _f(m["cache_fill"]["x_realtime"], 0),
                     _pct(m["ratio_fill_to_decode"]), _mem(m["decode"]["memory"]),
                     _mem(m["cache_fill"]["memory"])])
    out += _table(["processes", "decode-only clips/s", "decode x real time", "cache fill clips/s",
                   "cache x real time", "cache / decode", "decode peak MB (added)",
                   "cache peak MB (added)"], rows)
    for mode, c in (f.get("candidate") or {}).items():
        out += [f"Candidate fix (`benchmarks/bench_frontend.py`, blocked front end, same output), "
                f"{mode}: cache fill at {_f(c['clips_per_s'])} clips/s, "
                f"{_f(c['x_realtime'], 0)}x real time, {_pct(c['ratio_fill_to_decode'])} of "
                f"decode-only (measured in the same rounds).", ""]
    st = f["stages"]
    out += ["Where caching time goes (one pass, one process, "
            f"{_f(st['total_s'], 2)} s in all):", ""]
    out += _table(["stage", "seconds", "share"],
                  [[k, _f(v, 3), _pct(st["share"][k])] for k, v in st["seconds"].items()])
    fc = f.get("frontend_candidate")
    if fc:
        out += ["Front end alone on the breakdown clips, current vs blocked (x real time), by "
                "torch intra-op threads:", ""]
        out += _table(["threads", "current x RT", "blocked x RT", "speed-up (median)",
                       "speed-up (best)", "max abs diff"],
                      [[k, _f(v["current"]["x_realtime"], 0), _f(v["blocked"]["x_realtime"], 0),
                        f"{_f(v['speedup'], 2)}x", f"{_f(v['speedup_best'], 2)}x",
                        f"{v['max_abs_diff']:.1e}"] for k, v in fc.items()])
    prof = f.get("frontend_profile")
    if prof:
        out += [f"Front end on one {prof['clip_seconds']:.0f}-s clip (torch.profiler, "
                f"self time per forward):", ""]
        out += _table(["op", "ms", "calls"], [[r["op"], _f(r["self_ms_per_call_of_forward"], 2),
                                               r["calls"]] for r in prof["top_ops"]])
    return out


def training_lines(s: dict) -> list[str]:
    t = s.get("training")
    if not t:
        return ["Not run (see `--sections`).", ""]
    if "error" in t:
        return [f"Training section failed: {t['error']}", ""]
    first = next(iter(t["presets"].values()), {})
    out = [f"Batch {t['batch_size']} of {t['crop_seconds']:.0f}-s crops, joint mode, Adam. "
           f"End to end = `midlevel.training.fit` on cached features of "
           f"{_g(first, 'end_to_end', 'n_train') or '?'} clips "
           f"({t['source']}), throughput from its own per-epoch timing (epoch 2 on; epoch 1 "
           f"carries warm-up). In-memory = the same model and optimizer on one fixed batch. "
           f"FLOPs by FlopCounterMode (2 per multiply-add). Matmul = median of fp32 "
           f"{_g(first, 'matmul_n') or ''}² products measured before, between "
           f"and after. Reading a filled cache: {_f(1e3 * t['cache_read_s_per_clip'], 1)} ms "
           f"per clip.", ""]
    rows = []
    for preset, p in t["presets"].items():
        im, e2e = p["in_memory"], p["end_to_end"]
        rows.append([preset, f"{im['parameters'] / 1e6:.2f} M",
                     _f(im["forward_gflop_per_clip"], 2), _f(im["train_gflop_per_clip"], 2),
                     _f(im["clips_per_s"], 2), _f(im["achieved_gflops"]),
                     _f(e2e["clips_per_s"], 2), _f(p["e2e_achieved_gflops"]),
                     _f(p["matmul_gflops"]), _pct(p["ratio_e2e_to_in_memory"]),
                     _pct(p["ratio_in_memory_to_matmul"]), _mem(im["memory"]),
                     _mem(e2e["memory"])])
    ones = [(preset, p["in_memory"]["one_thread"]) for preset, p in t["presets"].items()
            if p["in_memory"].get("one_thread")]
    if ones:
        out += ["Same in-memory steps on one torch thread (does the second core help on this "
                "machine now?): " + "; ".join(
                    f"{preset} {_f(o['clips_per_s'], 2)} clips/s, {_f(o['achieved_gflops'])} "
                    f"GFLOP/s" for preset, o in ones) + ".", ""]
    lays = [(preset, p["in_memory"]["layout"]) for preset, p in t["presets"].items()
            if p["in_memory"].get("layout")]
    if lays:
        out += ["The same in-memory steps with the conv weights in the contiguous (NCHW) layout "
                "instead of channels last (`midlevel.models.place`, what `fit` does on the CPU), "
                "interleaved: " + "; ".join(
                    f"{preset} {l['contiguous_step_s'] * 1e3:.0f} ms vs "
                    f"{l['placed_step_s'] * 1e3:.0f} ms per step, channels last "
                    f"{l['speedup']:.2f}x (best {l['speedup_best']:.2f}x; contiguous "
                    f"{_f(l['contiguous_gflops'])} GFLOP/s)" for preset, l in lays) + ".", ""]
    bfs = [(preset, p["in_memory"]["cpu_bf16"]) for preset, p in t["presets"].items()
           if p["in_memory"].get("cpu_bf16")]
    if bfs:
        out += ["The same in-memory steps under the `cpu_bf16` option (`train --bf16`: bfloat16 "
                "autocast for the training steps; an option, not the targets' float32), "
                "interleaved: " + "; ".join(
                    f"{preset} {b['float32_step_s'] * 1e3:.0f} ms vs "
                    f"{b['bf16_step_s'] * 1e3:.0f} ms per step, {b['speedup']:.2f}x (best "
                    f"{b['speedup_best']:.2f}x)" for preset, b in bfs) + ".", ""]
    out += _table(["preset", "params", "GFLOP/clip fwd", "GFLOP/clip fwd+bwd",
                   "in-memory clips/s", "in-memory GFLOP/s", "end-to-end clips/s",
                   "end-to-end GFLOP/s", "matmul GFLOP/s", "e2e / in-memory",
                   "in-memory / matmul", "in-memory peak MB (added)", "fit peak MB (added)"], rows)
    prof_rows = []
    for preset, p in t["presets"].items():
        pr = p.get("profile")
        if pr:
            cells = [f"{_f(pr['ms_per_step'][k], 0)} ms ({_pct(pr['share'][k])})"
                     for k in pr["ms_per_step"]]
            prof_rows.append([preset, *cells])
            keys = list(pr["ms_per_step"])
    if prof_rows:
        out += ["Training step profile (torch.profiler, self CPU time per step, share of the "
                "profiled step):", ""]
        out += _table(["preset", *keys], prof_rows)
    for preset, p in t["presets"].items():
        layers = p.get("conv_layers")
        if layers:
            tf = sum(r["fwd_ms"] for r in layers)
            tb = sum(r["bwd_ms"] for r in layers)
            out += [f"Convolutions of `{preset}` one by one (batch {t['batch_size']}, "
                    f"forward no-grad and backward timed alone; matmul "
                    f"{_f(p['matmul_gflops'])} GFLOP/s): {_f(tf, 0)} ms forward + "
                    f"{_f(tb, 0)} ms backward in all.", ""]
            out += _table(["conv", "in (C, F, T)", "out", "kernel/stride", "fwd GFLOP",
                           "fwd ms", "fwd GFLOP/s", "bwd GFLOP", "bwd ms", "bwd GFLOP/s",
                           "share of conv time"],
                          [[r["layer"], "x".join(map(str, r["in"])),
                            "x".join(map(str, r["out"])),
                            f"{r['kernel'][0]}/{r['stride'][0]}", _f(r["fwd_gflop"], 2),
                            _f(r["fwd_ms"], 0), _f(r["fwd_gflops"]), _f(r["bwd_gflop"], 2),
                            _f(r["bwd_ms"], 0), _f(r["bwd_gflops"]),
                            _pct((r["fwd_ms"] + r["bwd_ms"]) / (tf + tb))] for r in layers])
    adam_rows = []
    for preset, p in t["presets"].items():
        av = p.get("adam_variants")
        if av:
            adam_rows.append([preset, *[_f(av[k].get("ms"), 1) if "ms" in av[k] else "error"
                                        for k in ("default", "foreach", "fused")]])
    if adam_rows:
        out += ["Adam step alone (ms, fastest of interleaved rounds) by implementation (`fit` "
                "uses the fused one, `make_adam`):", ""]
        out += _table(["preset", "default (for-loop)", "foreach", "fused"], adam_rows)
    return out


def inference_lines(s: dict) -> list[str]:
    i = s.get("inference")
    if not i:
        return ["Not run (see `--sections`).", ""]
    if "error" in i:
        return [f"Inference section failed: {i['error']}", ""]
    out = [f"`Run.predict` on {i['n_clips']} whole clips ({_f(i['audio_seconds'], 0)} s, "
           f"mean over 10-s windows) from cached spectrograms, and from the audio files "
           f"(decode + front end + model); one window = one 10-s input, batch 1, no grad.", ""]
    rows = []
    for preset, p in i["presets"].items():
        if "missing" in p:
            rows.append([preset, p["missing"], "", "", "", "", "", "", "", ""])
            continue
        w, a = p["whole_clips_from_features"], p["whole_clips_from_audio"]
        bf = p.get("cpu_bf16_option")
        rows.append([preset, _f(w["clips_per_s"], 2), _f(w["x_realtime"], 0),
                     _f(w["windows_per_s"], 1), _f(a["clips_per_s"], 2), _f(a["x_realtime"], 0),
                     _f(p["one_window"]["ms"], 0), _f(p["batch16_windows_per_s"], 1),
                     f"{_f(bf['batch16_windows_per_s'], 1)} ({_f(bf['speedup'], 2)}x, max "
                     f"change {bf['max_abs_output_change_scaled_units']:.3f})" if bf else "",
                     _mem(w["memory"])])
    out += _table(["preset", "clips/s (features)", "x real time", "windows/s",
                   "clips/s (from audio)", "x real time", "one 10-s window ms",
                   "windows/s at batch 16", "same, bf16 autocast (option; speed-up, max output "
                   "change in z units)", "peak MB (added)"], rows)
    return out


def explain_lines(s: dict) -> list[str]:
    e = s.get("explain")
    if not e:
        return ["Not run (see `--sections`).", ""]
    if "error" in e:
        return [f"Explanation section failed: {e['error']}", ""]
    out = ["One 10-s window per clip, package defaults (`attribute(model, x, method=...)`, "
           "16 background crops from training clips, first target); ratio = seconds / one "
           "forward of one window. Passes per clip are read from the code (gradient passes to "
           "the input, extra forward passes); bound = their FLOPs / the best matmul speed "
           f"measured in the section ({_f(e['matmul_gflops'])} GFLOP/s). "
           f"{e.get('note', '')}.", ""]
    rows = []
    for preset, p in e["presets"].items():
        if "missing" in p:
            rows.append([preset, p["missing"]] + [""] * 7)
            continue
        c = p["contributions"]
        rows.append([preset, "bottleneck contributions (`explain_clips`, whole clips)",
                     f"{_f(c['explain_s_per_clip'], 3)}",
                     f"{_spct(c['added_fraction'])} over `Run.predict` (table alone "
                     f"{_spct(c.get('added_fraction_direct'))})",
                     "", _mem(c["explain_clips"]["memory"]), "", "", ""])
        for method, m in p["methods"].items():
            if "error" in m:
                rows.append([preset, method, m["error"][:120], "", "", "", "", "", ""])
                continue
            work = (f"{m['grad_passes']} grad + {m['forwards']} fwd"
                    if m.get("forwards") is not None else "")
            fe = m.get("forward_equivalents")
            if fe is None and m.get("gflop") and p.get("flops"):
                fe = m["gflop"] / p["flops"]["forward_gflop"]
            rows.append([preset, method, _f(m["seconds"]["median"], 2),
                         f"{_f(m['ratio_to_one_inference'], 0)}x", f"{_f(fe, 0)}x" if fe else "",
                         _mem(m["memory"]), work, _f(m.get("achieved_gflops")),
                         _f(m.get("bound_s"), 2)])
    out += _table(["preset", "method", "s per 10-s clip", "ratio to one inference (measured)",
                   "ratio to one inference (FLOPs)", "peak MB (added)", "passes per clip",
                   "achieved GFLOP/s", "bound s (at matmul speed)"], rows)
    return out


def scaling_lines(s: dict) -> list[str]:
    out = []
    f = _g(s, "features", "scaling")
    if f:
        out += ["Feature caching vs number of files (one process):", ""]
        out += _table(["files", "audio s", "seconds", "clips/s", "peak MB (added)"],
                      [[r["n_files"], _f(r["audio_seconds"], 0), _f(r["seconds"], 2),
                        _f(r["clips_per_s"], 1), _mem(r["memory"])] for r in f])
    t = _g(s, "training", "scaling")
    if t:
        out += [f"Training epoch vs number of training clips (preset {t[0]['preset']}, "
                f"`fit`, 2 epochs; peak over the whole `fit` incl. the final whole-clip "
                f"evaluation):", ""]
        out += _table(["train clips", "features MB", "epoch s", "clips/s", "fit total s",
                       "peak MB (added)"],
                      [[r["n_train"], _f(r["feature_mb"], 1), _f(r["epoch_seconds"], 2),
                        _f(r["clips_per_s"], 1), _f(r["fit_total_s"], 1), _mem(r["memory"])]
                       for r in t])
    x = _g(s, "explain", "scaling")
    if x:
        methods = [k for k in x[0] if isinstance(x[0][k], dict) and "seconds" in x[0][k]]
        out += [f"Explanation cost vs clip length (preset {x[0]['preset']}, whole clip as one "
                f"input for attributions, package defaults):", ""]
        header = ["clip s", "contributions s", "contributions MB (added)"]
        for m in methods:
            header += [f"{m} s", f"{m} MB (added)"]
        rows = []
        for r in x:
            row = [r["seconds"], _f(r["contributions_s"], 3), _mem(r["contributions_memory"])]
            for m in methods:
                row += [_f(r[m]["seconds"], 2), _mem(r[m]["memory"])]
            rows.append(row)
        out += _table(header, rows)
    return out


def findings_lines(r: dict) -> list[str]:
    """Profile-backed findings, with this run's numbers."""
    s = r["sections"]
    out = []
    f = s.get("features", {})
    st, m1, m2 = _g(f, "stages"), _g(f, "modes", "jobs=1"), _g(f, "modes", "jobs=2")
    if st and m1:
        share = st["share"]
        text = (f"- **Feature caching** reaches {_pct(m1['ratio_fill_to_decode'])} of "
                f"decode-only throughput in one process. The stage profile puts "
                f"{_pct(share['frontend'])} of the time in the front end, "
                f"{_pct(share['decode'])} in decoding, "
                f"{_pct(share['downmix_resample_normalize'])} in down-mix + resampling + "
                f"normalization and {_pct(share['content_hash'] + share['npy_write_fsync'])} "
                f"in hashing and writing. Decoding is inside the cache fill too, so the 50% "
                f"target needs everything else together to cost no more than decoding: the "
                f"front end is the one stage that has to shrink.")
        fc = f.get("frontend_candidate") or {}
        cands = f.get("candidate") or {}
        if fc:
            parts = [f"{_f(v['speedup'], 1)}x with {k.replace('threads=', '')} torch "
                     f"thread(s) ({_f(v['current']['x_realtime'], 0)} -> "
                     f"{_f(v['blocked']['x_realtime'], 0)}x real time)" for k, v in fc.items()]
            text += (f" The blocked front end of `benchmarks/bench_frontend.py` (largest "
                     f"difference {max(v['max_abs_diff'] for v in fc.values()):.1e}) is "
                     f"{'; '.join(parts)}.")
        if cands:
            text += " With it the one-process cache fill reaches " + ", ".join(
                f"{_pct(c['ratio_fill_to_decode'])} of decode-only ({mode})"
                for mode, c in cands.items()) + "."
        m1t = _g(f, "modes", "jobs=1, 1 torch thread")
        if m1t:
            text += (f" One torch thread instead of {m1.get('torch_threads', 2)} makes the same "
                     f"one-process fill {_f(m1t['cache_fill']['clips_per_s'])} instead of "
                     f"{_f(m1['cache_fill']['clips_per_s'])} clips/s: the front end's operators "
                     f"are too small to gain from a second thread, and on a busy machine they "
                     f"lose to it.")
        if m2:
            text += (f" With `fill(jobs=2)` the cache reaches "
                     f"{_f(m2['cache_fill']['clips_per_s'])} clips/s against "
                     f"{_f(m1['cache_fill']['clips_per_s'])} clips/s with `jobs=1`: `fill` "
                     f"times its first files in-process and starts worker processes only "
                     f"when the rest would take longer than "
                     f"{_cache_worth()} s here (starting two cost 1-5 s, more than "
                     f"this section's whole fill).")
        out.append(text)
    t = s.get("training", {})
    for preset, p in (_g(t, "presets") or {}).items():
        pr, av = p.get("profile"), p.get("adam_variants")
        if not pr:
            continue
        text = (f"- **Training ({preset})**: the profiled step spends "
                f"{_pct(pr['share']['convolution forward'] + pr['share']['convolution backward'])}"
                f" in convolutions, {_pct(pr['share']['batch norm (fwd+bwd)'])} in batch norm, "
                f"{_pct(pr['share']['relu / pool / dropout (fwd+bwd)'])} in ReLU/pool/dropout "
                f"and {_pct(pr['share']['Adam step (total)'])} in the Adam step.")
        if av and "ms" in av.get("fused", {}) and "ms" in av.get("default", {}):
            step_ms = 1e3 * p["in_memory"]["step_seconds"]["min"]
            gain = (av["default"]["ms"] - av["fused"]["ms"]) / step_ms
            better = av["fused"]["ms"] < 0.8 * av["default"]["ms"] and gain > 0.05
            text += (f" Adam alone: {_f(av['default']['ms'], 0)} ms default (for-loop), "
                     f"{_f(av['foreach']['ms'], 0) if 'ms' in av.get('foreach', {}) else 'n/a'}"
                     f" ms foreach, {_f(av['fused']['ms'], 0)} ms fused"
                     + (f"; `fused=True` in `midlevel/training/loop.py` would save "
                        f"{_pct(gain)} of a step." if better else
                        f" ({_spct(gain)} of a step): no worthwhile gain from the fused "
                        f"version in this run."))
        out.append(text)
    e = s.get("explain", {})
    p = _g(e, "presets", "paper") or {}
    fl = p.get("flops")
    for method, m in (p.get("methods") or {}).items():
        if fl and m.get("bound_s") and m.get("forwards"):
            extra = m["forwards"] * fl["forward_gflop"] / m["gflop"]
            target = ""
            if method == "shap_gradient":
                nbg = p.get("n_background", 16)
                lean = m["gflop"] - 2 * nbg * fl["forward_gflop"]
                lim = TARGETS["shap_gradient_s"]
                target = (f" The {lim:g}-s target needs {_f(m['gflop'] / lim, 0)} GFLOP/s "
                          f"sustained with the defaults, {_f(lean / lim, 0)} GFLOP/s without "
                          f"the {2 * nbg} background forwards, {_f(lean / lim / 2, 0)} GFLOP/s "
                          f"with `n_samples=16` as well; the best fp32 matmul of the run was "
                          f"{_f(best_matmul(r), 0)} GFLOP/s.")
            out.append(
                f"- **{method} (paper)**: {_f(m['seconds']['median'], 2)} s per 10-s clip "
                f"= {_f(m['achieved_gflops'])} GFLOP/s over {m['grad_passes']} gradient "
                f"passes ({_f(fl['input_grad_gflop'], 1)} GFLOP each) and {m['forwards']} "
                f"forward passes ({_f(fl['forward_gflop'], 1)} GFLOP each; "
                f"{_pct(extra)} of the work). At the best matmul speed of the section that "
                f"work takes {_f(m['bound_s'], 2)} s." + target)
    return out


def render(results: dict) -> str:
    lines = [START, ""]
    for device in ("cpu", "cuda"):
        r = results.get(device)
        if not r:
            continue
        s = r["sections"]
        title = "CPU" if device == "cpu" else "GPU"
        lines += [f"### {title} run: {r['started']}, {r['total_seconds']:.0f} s"
                  + (" (quick sizes)" if r.get("quick") else ""), ""]
        lines += ["Generated by `make bench` (`benchmarks/run.py`; raw figures in "
                  "`benchmarks/results.json`). The machine was shared with other jobs while it "
                  "ran (load average below), so absolute speeds move between runs; every ratio "
                  "is measured within one process, interleaved where cheap. Peak memory = "
                  "peak resident set size during that measurement minus the size at its start "
                  "(kernel high-water mark reset per measurement).", ""]
        later = {k: v["from_run"] for k, v in s.items()
                 if v.get("from_run") and v["from_run"] != r["started"]}
        if later:
            lines += ["Sections re-run on their own since (`run.py --sections ...`; the machine "
                      "facts below are those of the first run): " + ", ".join(
                          f"{k} ({when})" for k, when in later.items()) + ".", ""]
        lines += machine_lines(r)
        load = (r["machine"].get("load_average") or [0])[0]
        cores = r["machine"].get("usable_cpus") or r["machine"].get("logical_cpus") or 1
        if load > cores:
            lines += [f"**The cores were oversubscribed during this run** (1-min load "
                      f"{load:.1f} on {cores} cores at the start): absolute speeds are those of "
                      f"a busy machine, and operator-heavy, FLOP-light work (the `small` "
                      f"preset, the Adam for-loop, the front end) suffers most, since every "
                      f"parallel region waits for a descheduled thread. Compare ratios, and "
                      f"rerun on an idle machine for absolute figures.", ""]
        lines += ["#### Targets", ""]
        lines += ["Ratio = medians (as the targets are stated); best = the fastest repeat of each "
                  "side, the least disturbed by other jobs.", ""]
        lines += _table(["figure", "target", "measured (medians)", "ratio", "ratio (best)",
                         "met"], targets_rows(r))
        lines += ["#### (a) Audio to cached spectrogram", ""] + features_lines(s)
        lines += ["#### (b) Training throughput", ""] + training_lines(s)
        lines += ["#### (c) Inference", ""] + inference_lines(s)
        lines += ["#### (d, e) Explanation cost and memory", ""] + explain_lines(s)
        lines += ["#### (f) Scaling", ""] + scaling_lines(s)
        lines += ["#### (g) Training that streams", ""] + streaming_lines(s)
        sb = s.get("sidebyside") or {}
        if sb and "error" not in sb:
            lines += ["#### (h) Side by side with what a user would write instead", "",
                      "Each pair in one process, interleaved, on "
                      f"{sb.get('threads', 1)} torch thread(s); the target rows above give the "
                      "ratios. " + (sb.get("madmom") or ""), ""]
        found = findings_lines(r)
        if found:
            lines += ["#### Findings from the profiles (this run's numbers)", ""] + found + [""]
        notes = results.get("notes")
        if notes and device == "cpu":
            lines += ["#### Analysis", "", notes, ""]
        failed = [k for k, v in s.items() if "error" in v]
        for k in failed:
            lines += [f"Section {k} failed:", "", "```", s[k].get("log_tail", "")[-1500:],
                      "```", ""]
    lines.append(END)
    return "\n".join(lines)


def splice(old: str, block: str) -> str:
    if START in old and END in old:
        a, b = old.index(START), old.index(END) + len(END)
        return old[:a] + block + old[b:]
    sep = "" if old.endswith("\n") or not old else "\n"
    return old + sep + ("\n" if old else "") + HEADING + "\n\n" + block + "\n"


def _write_markdown(stored: dict, out_dir: Path) -> Path:
    try:
        from bench_notes import NOTES
        stored = {**stored, "notes": NOTES.strip()}
    except ImportError:
        pass
    mpath = out_dir / "RESULTS.md"
    old = mpath.read_text() if mpath.is_file() else "# Benchmark results\n"  # re-read now
    write_text(mpath, splice(old, render(stored)))
    return mpath


def rerender(out_dir: Path) -> Path:
    """RESULTS.md's section again from ``out_dir/results.json`` (after editing the notes)."""
    stored = json.loads((Path(out_dir) / "results.json").read_text())
    return _write_markdown(stored, Path(out_dir))


def write_outputs(results: dict, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / "results.json"
    stored = {}
    if jpath.is_file():
        try:
            stored = json.loads(jpath.read_text())
        except json.JSONDecodeError:
            stored = {}
    device = "cuda" if results["device"].startswith("cuda") else "cpu"
    stored = {k: v for k, v in stored.items() if k in ("cpu", "cuda")}
    before = stored.get(device)
    ran = set(results["sections"])
    if before and not results.get("quick") and not before.get("quick") and \
            ran < set(before.get("sections", {})) | ran:
        # a run of some sections only: keep the other sections of the stored run, each
        # marked with the run it comes from
        merged = {k: {**v, "from_run": v.get("from_run", before["started"])}
                  for k, v in before["sections"].items() if k not in ran}
        results = {**before, "sections": {**merged, **{k: {**v, "from_run": results["started"]}
                                                      for k, v in results["sections"].items()}},
                   "partial_runs": before.get("partial_runs", []) + [results["started"]]}
    stored[device] = results
    write_text(jpath, json.dumps(stored, indent=1))
    return [jpath, _write_markdown(stored, out_dir)]
