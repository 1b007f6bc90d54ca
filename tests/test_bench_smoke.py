"""The benchmark suite's code paths at tiny sizes, so ``make bench`` cannot rot.

No timing is asserted: only that every section runs and reports what RESULTS.md needs, that the
memory probe sees an allocation, that the explanation cost model matches what the methods run,
and that writing RESULTS.md leaves the other authors' sections alone.
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import bench_common  # noqa: E402
import bench_report  # noqa: E402


def test_ratio_interval_holds_the_true_ratio_and_pairs_the_rounds():
    rng = np.random.default_rng(1)
    round_noise = rng.uniform(0.5, 2.0, size=40)  # a load that moves both sides of a round
    fast = round_noise * 1.0 * rng.normal(1, 0.01, size=40)
    slow = round_noise * 1.5 * rng.normal(1, 0.01, size=40)
    lo, hi = bench_common.ratio_interval(slow, fast)
    assert lo <= 1.5 <= hi
    assert hi - lo < 0.1  # paired: the shared round load cancels
    with pytest.raises(ValueError, match="unequal length"):
        bench_common.ratio_interval(slow, fast[:-1])


def test_peak_memory_sees_an_allocation():
    with bench_common.PeakMemory() as mem:
        block = np.ones(64 * 2 ** 20 // 8)  # 64 MiB, touched
        block.sum()
    del block
    d = mem.as_dict()
    assert d["peak_rss_mb"] >= d["added_rss_mb"] >= 0
    if d["method"] == "VmHWM reset":
        assert d["added_rss_mb"] >= 48


def test_timeit_and_summary():
    calls = []
    t = bench_common.timeit(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 5 and len(t["all"]) == 3
    assert t["min"] <= t["median"] <= t["max"]


def test_splice_replaces_only_the_perf_block():
    old = ("# Results\n\n## Models and training\n\nkeep me\n\n## Performance\n\n"
           f"{bench_report.START}\nold numbers\n{bench_report.END}\n\n## Comparison\n\nkeep too\n")
    new = bench_report.splice(old, f"{bench_report.START}\nnew numbers\n{bench_report.END}")
    assert "keep me" in new and "keep too" in new and "new numbers" in new
    assert "old numbers" not in new
    assert new.count(bench_report.START) == 1 and new.count(bench_report.END) == 1


def test_splice_appends_a_section_when_markers_are_absent():
    old = "# Results\n\n## Comparison\n\nother text\n"
    new = bench_report.splice(old, f"{bench_report.START}\nx\n{bench_report.END}")
    assert new.startswith(old) and "## Performance" in new and new.rstrip().endswith(
        bench_report.END)


@pytest.mark.parametrize("method, opts", [
    ("shap_gradient", {"n_samples": 3}),
    ("shap_deep", {}),
    ("integrated_gradients", {"n_steps": 3}),
    ("occlusion", {"window": (40, 16)}),
])
def test_cost_model_counts_the_samples_the_model_sees(method, opts):
    """grad passes + forwards of bench_explain.cost_model == samples through the backbone."""
    from bench_explain import cost_model
    from midlevel.explain.attribution.attributor import attribute
    from midlevel.models.backbone import preset
    from midlevel.models.bottleneck import build_model
    torch.manual_seed(0)
    model = build_model("bottleneck", ["a", "b"], [{"name": "y"}], preset("small")).eval()
    seen = [0]
    model.backbone.register_forward_hook(lambda m, i, o: seen.__setitem__(0, seen[0] + len(i[0])))
    x, bg = torch.randn(1, 1, 149, 40), torch.randn(3, 1, 149, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attribute(model, x, method=method, background=bg, **opts)
    cost = cost_model(method, opts, len(bg), 149, 40)
    assert cost["grad_passes"] + cost["forwards"] == seen[0]


@pytest.mark.slow
def test_quick_run_writes_every_section(tmp_path):
    """``run.py --quick``: all four sections in their own processes, JSON and Markdown."""
    import run
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    (out / "RESULTS.md").write_text("# Results\n\n## Comparison\n\nsomeone else's\n")
    code = run.main(["--quick", "--out", str(out), "--workdir", str(work)])
    results = json.loads((out / "results.json").read_text())["cpu"]
    errors = {k: v.get("log_tail", "")[-2000:] for k, v in results["sections"].items()
              if "error" in v}
    assert code == 0 and not errors, errors
    s = results["sections"]
    assert s["features"]["modes"]["jobs=1"]["cache_fill"]["clips_per_s"] > 0
    assert s["features"]["modes"]["jobs=1"]["decode"]["clips_per_s"] > 0
    small = s["training"]["presets"]["small"]["in_memory"]
    assert small["train_gflop_per_clip"] > small["forward_gflop_per_clip"] > 0
    assert s["training"]["presets"]["small"]["end_to_end"]["clips_per_s"] > 0
    assert s["training"]["presets"]["small"]["matmul_gflops"] > 0
    assert s["training"]["presets"]["small"]["conv_layers"]
    from midlevel.training.config import cpu_has_bf16
    if cpu_has_bf16() and "layout" in small:  # the option's pair runs beside the layout's
        assert small["cpu_bf16"]["speedup"] > 0
        assert "under the `cpu_bf16` option" in (out / "RESULTS.md").read_text()
    assert s["inference"]["presets"]["small"]["whole_clips_from_features"]["clips_per_s"] > 0
    methods = s["explain"]["presets"]["small"]["methods"]
    assert set(methods) == {"shap_deep", "shap_gradient", "integrated_gradients", "occlusion"}
    assert all("error" not in m for m in methods.values()), methods
    assert len(s["training"]["scaling"]) == 2 and len(s["explain"]["scaling"]) == 2
    md = (out / "RESULTS.md").read_text()
    assert "someone else's" in md and bench_report.START in md and bench_report.END in md
    for heading in ("#### Targets", "(a) Audio", "(b) Training", "(c) Inference", "(d, e)",
                    "(f) Scaling", "torch"):
        assert heading in md
    fe = s["sidebyside"]["frontend"]  # equal threads and numpy's default, both reported
    assert fe["speedup"] > 0 and fe["default_speedup"] > 0 and fe["default_blas_threads"] >= 1
    assert "one thread each" in md and "default BLAS threads" in md
    # the tables keep their own Markdown (the report's name escaping once wrote \*\*yes\*\*)
    assert "**yes**" in md or "**no**" in md
    assert "\\*" not in md and "\\_" not in md and "\\`" not in md


@pytest.mark.parametrize("shape", [(10,), (2047,), (2048,), (5000,), (22050 * 3 + 123,),
                                   (3, 22050)])
def test_blocked_frontend_matches_the_package_front_end(shape):
    """The front end recommended in RESULTS.md gives the package's numbers (any length, batch)."""
    from bench_frontend import BlockedLogFiltered
    from midlevel.data.frontends import LogFilteredSpectrogram
    fe = LogFilteredSpectrogram().eval()
    y = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    with torch.no_grad():
        ref = fe(y)
    for block in (16, 128):
        out = BlockedLogFiltered(fe, block)(y)
        assert out.shape == ref.shape
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_quick_run_on_cuda_with_amp(tmp_path):
    """``--device cuda --amp``: training and inference on the GPU, results filed under cuda."""
    import run
    out = tmp_path / "out"
    code = run.main(["--quick", "--device", "cuda", "--amp", "--out", str(out),
                     "--workdir", str(tmp_path / "work"), "--sections", "training",
                     "inference"])
    results = json.loads((out / "results.json").read_text())["cuda"]
    errors = {k: v.get("log_tail", "")[-2000:] for k, v in results["sections"].items()
              if "error" in v}
    assert code == 0 and not errors, errors
    small = results["sections"]["training"]["presets"]["small"]
    assert small["in_memory"]["memory"].get("device_peak_mb", 0) > 0
    assert results["sections"]["training"]["matmul_dtype"] == "bfloat16"
    assert "GPU run" in (out / "RESULTS.md").read_text()


def test_sanity_benchmark_report_reads_what_sanity_check_writes(tmp_path):
    """``posthoc_sanity.py``'s table, verdict grid and cascade figure from a real check (the
    column names are the module's, so a rename there cannot silently empty the report)."""
    import argparse

    import pandas as pd
    import posthoc_sanity

    from midlevel.explain.attribution.base import OutputSelector
    from midlevel.explain.sanity import gradient_x_input, sanity_check
    from midlevel.testing.events import EventTask
    task = EventTask()
    torch.manual_seed(0)
    f = OutputSelector(task.train_model(steps=20)).eval()
    x, _ = task.sample(6, seed=1)
    verdicts, cascades, cost = [], [], []
    for target in ("a", "b"):
        res = sanity_check(f, gradient_x_input, x, x.mean(0, keepdim=True), name="gxi",
                           n_boot=200)
        verdicts.append(res.verdict.assign(model="toy", target=target))
        cascades.append(res.cascade.assign(model="toy", target=target))
        cost.append({"model": "toy", "target": target, "method": "gxi", "seconds": 1.0,
                     "clips": len(x), "stages": int(res.cascade["n_stages"].max())})
    args = argparse.Namespace(clips=len(x), targets=["a", "b"], lime_samples=8)
    text = posthoc_sanity.summarize(pd.concat(verdicts), pd.DataFrame(cost), args,
                                    {"toy": "a r 0.50"})
    row = next(line for line in text.splitlines() if line.startswith("| toy | a | gxi | 6 | 6 |"))
    assert "nan" not in row and row.rstrip(" |").split("| ")[-1] in ("True", "False")
    grid = next(line for line in text.splitlines() if line.startswith("| gxi |"))
    assert grid.rstrip(" |").endswith(" of 2")
    posthoc_sanity.cascade_figure(pd.concat(cascades), tmp_path / "cascade.png")
    assert (tmp_path / "cascade.png").stat().st_size > 1000


def test_sanity_networks_report_reads_what_sanity_check_writes():
    """``posthoc_sanity.py --n-random K``'s section from a real K = 3 check and its two-network
    comparison (seeds 1, 2 of the same networks): both rows, the spread columns filled, a
    reading line per method whose words follow the two verdicts."""
    import argparse

    import pandas as pd
    import posthoc_sanity

    from midlevel.explain.attribution.base import OutputSelector
    from midlevel.explain.sanity import gradient_x_input, sanity_check
    from midlevel.testing.events import EventTask
    task = EventTask()
    torch.manual_seed(0)
    f = OutputSelector(task.train_model(steps=20)).eval()
    x, _ = task.sample(6, seed=1)
    res = sanity_check(f, gradient_x_input, x, x.mean(0, keepdim=True), name="gxi",
                       n_boot=200, n_random=3, cascade=False)
    v = pd.concat([res.verdict, res.with_networks([1, 2]).verdict]).assign(model="toy",
                                                                          target="a")
    cost = pd.DataFrame([{"model": "toy", "target": "a", "method": "gxi", "seconds": 60.0,
                          "clips": 6, "stages": float("nan")}])
    args = argparse.Namespace(clips=6, targets=["a"], threads=1, workdir=None)
    text = posthoc_sanity.summarize_networks(v, cost, args, {"toy": "a r 0.50"}, "python x")
    rows = [line for line in text.splitlines() if line.startswith("| toy | a | gxi |")]
    assert [r.split("|")[4].strip() for r in rows] == ["2", "3"]
    assert all("nan" not in r for r in rows)
    reading = next(line for line in text.splitlines() if line.startswith("- toy a gxi: "))
    two, three = (r.rstrip(" |").split("| ")[-1] for r in rows)
    assert ("passes with two networks" in reading) == (two == "True")
    assert ("still passes" in reading or "passes with K" in reading) == (three == "True")


def test_the_sanity_reading_names_each_failed_floor_with_its_own_upper_end():
    """``posthoc_sanity.failed_floors`` (audit 19: the reading named floor (b) and printed its
    upper end where floor (a) failed)."""
    import posthoc_sanity
    row = lambda a, b: {"minus_input_ci_high": a, "minus_random_ci_high": b}  # noqa: E731
    assert posthoc_sanity.failed_floors(row(0.015, -0.017)) == "floor (a), upper end +0.015"
    assert posthoc_sanity.failed_floors(row(-0.1, 0.002)) == "floor (b), upper end +0.002"
    assert posthoc_sanity.failed_floors(row(0.05, 0.06)) == (
        "floor (a), upper end +0.050 and floor (b), upper end +0.060")
    assert posthoc_sanity.failed_floors(row(float("nan"), float("nan"))) == "no verdict"


def test_calibrated_floor_matches_the_slope_band_and_shares_identical_runs():
    """A calibrated predictor's pass probability: near the normal approximation of the slope's
    sampling error (r = 0.65, n = 36: slope s.e. about 0.2, P(0.8 <= slope <= 1.25) about
    0.74), near 1 for r = 0.97, and identical prediction vectors pass or fail together."""
    import calibration_uncertainty as cu
    from scipy.stats import norm
    rng = np.random.default_rng(0)
    p_mid, p_high = rng.normal(size=36), rng.normal(size=36)
    per_pair, passes = cu.calibrated_floor([(p_mid, 0.65), (p_high, 0.97), (p_mid.copy(), 0.65)],
                                           n_sim=2000)
    se = np.sqrt((1 - 0.65 ** 2) / (0.65 ** 2 * 34))
    expected = norm.cdf(0.25 / se) - norm.cdf(-0.2 / se)
    assert abs(per_pair[0] - expected) < 0.05, (per_pair, expected)
    assert per_pair[1] > 0.99
    assert per_pair[0] == per_pair[2]  # shared draws: the same ratings for the same predictions
    assert passes.shape == (2000,) and passes.mean() == pytest.approx(per_pair.sum())


def test_event_verdict_needs_every_seed_and_old_tables_still_render():
    """The planted-event verdict: a method meets the target only if it reaches 3x and MoRF
    below random on >= 90 % of clips on every seed; a table from before seeds renders."""
    import pandas as pd
    import posthoc_faithfulness as pf
    rows = []
    for seed, (ratio, morf) in enumerate([(4.0, 1.0), (2.9, 1.0)]):
        rows.append({"size": "149 x 313", "seed": seed, "removal": 0.5, "held_out_r2": 0.9,
                     "method": "gradcam", "ratio_mean": ratio, "ratio_min": 1.0,
                     "clips_3x": 0.5, "morf_below_random": morf, "ceiling_ratio": np.nan})
        rows.append({**rows[-1], "method": "lrp", "ratio_mean": 10.0, "morf_below_random":
                     0.9 if seed else 0.95})
    verdict = pf.event_verdict(pd.DataFrame(rows)).set_index("method")
    assert verdict.loc["gradcam", "meets_target"] == "no"
    assert verdict.loc["gradcam", "ratio_worst"] == 2.9
    assert verdict.loc["lrp", "meets_target"] == "yes"
    assert verdict.loc["lrp", "morf_below_random_worst"] == 0.9
    old = pd.DataFrame(rows).drop(columns=["seed", "removal"]).iloc[:2]
    text = pf.events_text(old)
    assert "| 149 x 313 | gradcam |" in text and "seed 0" in text


def test_the_caveats_benchmark_runs_and_reports_both_tables(capsys):
    """``benchmarks/caveats_power.py --quick``: the linearity check's rates per world and the
    VIF line's per clip count (the figures RESULTS.md quotes), without writing RESULTS.md."""
    import caveats_power
    assert caveats_power.main(["--quick", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| U-shape in one concept | 300 |" in out and "| linear, normal noise | 300 |" in out
    assert "share with a VIF line" in out


def test_the_reliability_benchmark_runs_and_reports_both_worlds(capsys):
    """``benchmarks/reliability_correction.py --quick``: the plain and corrected fits on the
    pair world and the synthetic world, without writing RESULTS.md."""
    import reliability_correction
    assert reliability_correction.main(["--quick", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| 0.9 | 100 | corrected, true reliability 0.9 |" in out
    assert "| 400 | corrected, measured reliabilities |" in out


def test_a_remeasured_row_stands_beside_the_row_it_replaces(tmp_path):
    """``benchmarks/posthoc_remeasure.py``: the old rows are read from the source section's
    table with the same header (not from another section's), and matched by model, target and
    method; a row the old table lacks reads ``-``."""
    import pandas as pd
    import posthoc_remeasure as pr
    header = "| model | target | method | gain |\n|---|---|---|---|\n"
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "## Other\n\n" + header + "| bb | fear | lrp | 9.000 |\n\n"
        f"## {pr.SOURCE_SECTION}\n\ntext\n\n" + header
        + "| bb | fear | lrp | 0.797 |\n| bb | fear | deeplift | 1.506 |\n"
        "| bb | fear | gradcam | 0.602 |\n\nafter\n")
    old = pr.numeric(pr.old_rows(results, ["model", "target", "method", "gain"],
                                 ["lrp", "deeplift"]))
    assert list(old["method"]) == ["lrp", "deeplift"] and old["gain"].tolist() == [0.797, 1.506]
    new = pd.DataFrame({"model": ["bb", "bb"], "target": ["fear", "happy"],
                        "method": ["lrp", "lrp"], "gain": [1.2, 0.5]})
    both = pr.beside(new, old, ["gain"])
    assert list(both.columns) == ["model", "target", "method", "gain", "gain_before"]
    assert both["gain_before"].tolist() == [0.797, "-"]
    assert pr.old_rows(tmp_path / "absent.md", ["model", "gain"], ["lrp"]).empty


def test_the_localization_benchmark_runs_and_its_floors_read_no_audio(capsys):
    """``benchmarks/change_localization.py --quick`` runs and reports the floors; the
    shuffled floor pairs each estimate with the other clips' times: an exact detector on
    changes 3 s apart scores 1 itself and 0 there; the middle guess is the share of changes
    within 1 s of the middle."""
    import pandas as pd
    import change_localization as cl
    exact = pd.DataFrame({"estimate_s": [2.0, 5.0, 8.0], "time_s": [2.0, 5.0, 8.0]})
    assert cl.shuffled_floor(exact) == 0.0
    same = pd.DataFrame({"estimate_s": [5.0, 5.2, float("nan")], "time_s": [5.0, 5.1, 4.9]})
    assert cl.shuffled_floor(same) == pytest.approx(4 / 6)  # NaN estimates miss
    assert cl.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| mode | changes | within 1 s |" in out and "middle guess" in out


def test_a_reused_world_drawn_with_other_change_times_is_refused(tmp_path):
    """Re-audit 16: a workdir's world whose changes all sit at the middle (written before
    change ranges, so without the key) was read as if drawn over 20-80 %; now refused by
    name. Not-located curves count as infinitely wrong in the median error."""
    import truthful_concepts as tc
    with pytest.raises(SystemExit, match="change range"):
        tc.check_world(tmp_path / "world0", {"change_fraction": 0.5}, (0.2, 0.8), 0.5)
    with pytest.raises(SystemExit, match="change fraction"):
        tc.check_world(tmp_path, {"change_range": [0.2, 0.8], "change_fraction": 0.25},
                       (0.2, 0.8), 0.5)
    tc.check_world(tmp_path, {"change_range": [0.2, 0.8], "change_fraction": 0.5}, (0.2, 0.8), 0.5)
    assert tc.median_error([0.1, 0.2, float("nan")]) == 0.2
    assert tc.median_error([0.1, float("nan"), float("nan")]) == float("inf")


def test_the_event_floors_benchmark_scores_maps_that_read_no_model(capsys, tmp_path):
    """``benchmarks/event_floors.py --quick``: the fixed-box map reaches the largest ratio
    (the box never moves) and beats random orders, as audit 16b found; the distractor clips
    are those whose brightest box-shaped patch lies outside the box."""
    import event_floors as ef
    task, _, _ = ef.task_for("toy")
    x, _ = ef.distractor_clips(task, 5)
    b0, b1, f0, f1 = task.box
    inside = x[:, 0, b0:b1, f0:f1].mean((1, 2))
    outside = torch.nn.functional.avg_pool2d(x, (b1 - b0, f1 - f0), stride=1).flatten(1)
    assert len(x) == 5 and bool((outside.amax(1) > inside).all())
    assert ef.main(["--quick", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| strongest | 32 x 48 | fixed_box | 25.600 | 1.000 | 1.000 |" in out


def test_the_moving_event_benchmark_scores_own_boxes_and_a_randomized_network(capsys,
                                                                             tmp_path):
    """``benchmarks/event_moving.py --quick``: the distractor clips are those whose clicks
    outshine the tone; the randomized network shares no weight with the trained one; on those
    clips the input prefers the distractor on every clip, and the table says so."""
    import event_moving as em
    task, _, _, _ = em.task_for("toy")
    x, boxes, distractors, strengths, bg = em.moving_clips(task, 5, "distractor")
    assert len(x) == 5 and (strengths[:, 1] > strengths[:, 0]).all()
    assert len(set(boxes)) > 1 and all(d is not None for d in distractors)
    model = task.train_model(n=32, steps=2, seed=0)
    noise = em.randomized(model, x, bg, 1)
    trained, rand = dict(model.named_parameters()), dict(noise.named_parameters())
    assert all(not torch.equal(trained[k], rand[k]) for k in trained if k.endswith("weight")
               and "conv" in k.lower())
    assert em.main(["--quick", "--clip-set", "distractor", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "| none | input |" in line)
    header = next(lines[i] for i in range(at, -1, -1) if lines[i].startswith("| clip_set"))
    column = [c.strip() for c in header.split("|")].index("prefers_event")
    assert lines[at].split("|")[column].strip() == "0.000"  # the input prefers the clicks
    assert list(tmp_path.glob("model_32x48_3_*.pt"))  # the model is kept for the other set
    texture = lines[next(i for i, line in enumerate(lines) if "| none | texture |" in line)]
    assert texture.split("|")[column].strip() == "1.000"  # reads no model, prefers the tone
    # a part scored before a floor existed gets it through the same model, the rest unchanged
    import pandas as pd
    part = tmp_path / "moving_toy_3_distractor.csv"
    full = pd.read_csv(part)
    full[full["method"] != "texture"].to_csv(part, index=False)
    assert em.main(["--quick", "--clip-set", "distractor", "--workdir", str(tmp_path)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(part), full)
    # the model trained again (the quick run's one thread: the same model, R^2 checked)
    for model_file in tmp_path.glob("model_32x48_3_*.pt"):
        model_file.unlink()
    full[full["method"] != "texture"].to_csv(part, index=False)
    assert em.main(["--quick", "--clip-set", "distractor", "--workdir", str(tmp_path)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(part), full)
    # other clips than the part's: refused, the part unchanged
    other = full[full["method"] != "texture"].assign(
        event_strength=lambda d: d["event_strength"] + 0.1)
    other.to_csv(part, index=False)
    with pytest.raises(SystemExit, match="its clips are not the ones drawn now"):
        em.main(["--quick", "--clip-set", "distractor", "--workdir", str(tmp_path)])
    pd.testing.assert_frame_equal(pd.read_csv(part), other)


def test_the_moving_event_benchmark_sets_path_trained_models_beside_the_plain_ones(capsys,
                                                                                tmp_path):
    """``benchmarks/event_moving.py --training path``: its parts sit beside the plain ones
    without touching them, are scored on a model of their own (kept under its own name) and
    compared with the plain parts in a section of their own; the plain section reads the plain
    parts only, and other tables in the workdir are not read as parts."""
    import pandas as pd

    import event_moving as em
    args = ["--quick", "--clip-set", "distractor", "--workdir", str(tmp_path)]
    assert em.main(args) == 0
    plain = pd.read_csv(tmp_path / "moving_toy_3_distractor.csv")
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "moving_paths.csv", index=False)
    capsys.readouterr()
    assert em.main(args + ["--training", "path"]) == 0
    out = capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "moving_toy_3_distractor.csv"), plain)
    path = pd.read_csv(tmp_path / "moving_toy_3_distractor_path.csv")
    assert set(path["training"]) == {"path"} and len(path) == len(plain)
    assert (tmp_path / "model_32x48_3_150_path0.5.pt").is_file()
    checks = pd.read_csv(tmp_path / "checks_moving_toy_3_distractor_path.csv")
    plain_checks = pd.read_csv(tmp_path / "checks_moving_toy_3_distractor.csv")
    assert checks["held_out_r2"].iloc[0] != plain_checks["held_out_r2"].iloc[0]
    compared, plain_section = out.split("Script: `benchmarks/event_moving.py` (")
    assert compared.count("| distractor | 32 x 48 | shap_deep | plain |") == 1
    assert compared.count("| distractor | 32 x 48 | shap_deep | path |") == 1
    assert "path-trained against plain" in compared
    # the plain section holds one row per method and seed: the path part is not in it
    assert plain_section.count("| distractor | 32 x 48 | shap_deep |") == 1
    assert plain_section.count("| distractor | 32 x 48 | 3 | trained | shap_deep |") == 1
    # a plain part written before "has_distractor" existed, read beside a newer one
    plain.drop(columns="has_distractor").to_csv(tmp_path / "moving_toy_3_distractor.csv",
                                                index=False)
    assert em.main(args + ["--render"]) == 0
    again = capsys.readouterr().out.split("Script: `benchmarks/event_moving.py` (")[0]
    row = next(line for line in again.splitlines()
               if line.startswith("| distractor | 32 x 48 | shap_deep | plain |"))
    header = next(line for line in again.splitlines() if line.startswith("| clip_set | size |"
                                                                          " method | training"))
    column = [c.strip() for c in header.split("|")].index("prefers_event")
    assert row.split("|")[column].strip() not in ("-", "nan", "")
    # a stray copy is not a part; a part whose rows say another training than its name: refused
    import shutil
    shutil.copy(tmp_path / "moving_toy_3_distractor_path.csv",
                tmp_path / "moving_toy_3_distractor_old.csv")
    assert em.main(args + ["--render"]) == 0
    assert capsys.readouterr().out.split("Script: `benchmarks/event_moving.py` (")[0] == again
    shutil.copy(tmp_path / "moving_toy_3_distractor_path.csv",
                tmp_path / "moving_toy_3_distractor_long.csv")
    with pytest.raises(SystemExit, match="its name 'long'"):
        em.main(args + ["--render"])
    with pytest.raises(ValueError, match="training 'other'"):
        em.trained_model(em.task_for("toy")[0], 8, 1, 0, None, "other")


def test_the_trainings_section_pools_the_seeds_every_training_scored():
    """``event_moving.compare_trainings`` on parts whose answers are known: plain models on
    seeds 3 and 4, a path-trained one on seed 3 only; the comparison pools seed 3 alone (the
    plain map loses to its randomized network there, wins on seed 4), and the reading's counts
    are the table's; without a plain part sharing a seed there is nothing to compare."""
    import pandas as pd

    import event_moving as em

    def part(seed, training, trained_ratio):
        rows = []
        for method, network, ratio in (("m1", "trained", trained_ratio), ("m1", "random", 2.0),
                                       ("input", "none", 4.0)):
            rows += [{"clip_set": "distractor", "size": "32 x 48", "seed": seed, "clip": c,
                      "method": method, "network": network, "ratio": ratio,
                      "distractor_ratio": 1.0, "morf_better": True, "has_distractor": True,
                      "distractor_strength": 1.0, "training": training} for c in ("c0", "c1")]
        return pd.DataFrame(rows)

    parts = pd.concat([part(3, "plain", 1.0), part(4, "plain", 5.0), part(3, "path", 5.0)],
                      ignore_index=True)
    checks = pd.DataFrame([{"clip_set": "distractor", "size": "32 x 48", "seed": seed,
                            "training": t, "held_out_r2": 0.9, "event_drop": 0.5,
                            "distractor_drop": 0.0}
                           for seed, t in ((3, "plain"), (4, "plain"), (3, "path"))])
    text = em.compare_trainings(parts, checks, "header")
    assert "seeds 3 (plain, path)" in text
    assert "| distractor | 32 x 48 | m1 | plain | 1.000 | 0.000 | 1.000 | 0.000 | 1.000 | 0.000 | 0 of 1 |" in text
    assert "| distractor | 32 x 48 | m1 | path | 5.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1 of 1 |" in text
    assert "m1 0.00 -> 1.00" in text and "0 of 1 methods plain, 1 path-trained (newly: m1;" in text
    assert "The judged figure on every model: 0 of 1 methods plain (none), 1 path-trained (m1)" in text
    assert "| distractor | 32 x 48 | 4 |" not in text  # the plain-only seed is not pooled
    alone = parts[(parts["training"] == "path") | (parts["seed"] == 4)]
    assert em.compare_trainings(alone, checks, "header") is None


def test_the_input_floor_maps_read_only_the_clip():
    """``benchmarks/posthoc_input_floor.py``: its maps are ``x - reference`` and its absolute
    value, shaped as the clip."""
    import posthoc_input_floor as pif
    x = torch.arange(12, dtype=torch.float32).reshape(1, 1, 3, 4)
    maps = pif.input_maps(x, np.full((3, 4), 5.0))
    assert maps["input"].shape == (1, 1, 3, 4) and maps["input"][0, 0, 0, 0] == -5.0
    assert (maps["abs_input"] == np.abs(maps["input"])).all()


def test_publish_prints_and_writes_only_its_own_section(tmp_path, monkeypatch, capsys):
    """``ground_truth_recovery.publish``: the text printed; with ``write`` it replaces its
    section of RESULTS.md and leaves the others alone."""
    import ground_truth_recovery as gtr
    (tmp_path / "benchmarks").mkdir()
    results = tmp_path / "benchmarks" / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## A\n\nold a\n\n## B\n\nold b\n")
    monkeypatch.setattr(gtr, "REPO", tmp_path)
    gtr.publish("new a", "A", write=False)
    assert "new a" in capsys.readouterr().out and "old a" in results.read_text()
    gtr.publish("new a", "A", write=True)
    text = results.read_text()
    assert "new a" in text and "old a" not in text and "old b" in text


def test_the_ig_path_split_is_captums_rule_and_its_ratios_are_box_over_background(capsys,
                                                                                 tmp_path):
    """``benchmarks/event_moving_paths.py``: on a linear function the path-averaged gradient
    is the weights, the first half of the path gives half of the map and the map is
    ``(x - reference) * w``; a box twice as bright as the rest reads 2; the quick run checks
    its split against the package's IG map."""
    import event_moving_paths as emp
    w = torch.randn(1, 1, 4, 6)
    f = lambda z: (z * w).sum((1, 2, 3))[:, None]  # noqa: E731
    x, ref = torch.rand(3, 1, 4, 6), torch.rand(1, 1, 4, 6)
    split = emp.path_split(f, x, ref, 8)
    assert np.allclose(split["mean_grad"], w[:, 0].numpy(), atol=1e-6)
    assert np.allclose(split["ig"], ((x - ref) * w)[:, 0].numpy(), atol=1e-6)
    assert np.allclose(split["early"], split["ig"] / 2, atol=1e-6)
    assert np.allclose(sum(split["quarter_abs_grad"]) / 4, np.abs(w[:, 0].numpy()), atol=1e-6)
    # a box whose signed IG cancels: squares (positive IG, a quarter from the first half of
    # the path) beside as many negative linear terms (half from it): the share is over the
    # positive bins, 0.25, where a share of the signed sums would divide by 0
    sq = torch.zeros(1, 1, 4, 6)
    sq[..., :2, :] = 1.0
    g = lambda z: ((z ** 2) * sq - z * (1 - sq)).sum((1, 2, 3))[:, None]  # noqa: E731
    box = np.zeros((1, 4, 6), bool)
    box[0, 1:3] = True  # two bands of squares and two of linear terms
    split = emp.path_split(g, torch.ones(1, 1, 4, 6), torch.zeros(1, 1, 4, 6), 32)
    assert abs(emp.net_share(split["ig"], box)[0]) < 1e-6
    # (the half-path sum of the full path's nodes is exact only for a constant gradient)
    assert np.allclose(emp.early_share(split, box), 0.25, atol=2e-3)
    odd = emp.path_split(f, x, ref, 7)  # the node at 0.5 is split between the halves
    assert np.allclose(odd["early"], odd["ig"] / 2, atol=1e-6)
    grad = np.array([[[1.0, 1.0], [-1.0, -1.0]]])  # positive on band 0, negative on band 1
    assert emp.stripe_sign(grad, [(0, 2, 0, 2)], "bands")[0] == 1.0
    assert emp.stripe_sign(grad, [(0, 2, 0, 2)], "frames")[0] == 0.5
    tone, clicks, rest = emp.masks((4, 6), [(0, 2, 0, 2)], [(2, 4, 3, 6)])
    assert tone.sum() == 4 and clicks.sum() == 6 and rest.sum() == 14
    values = np.ones((1, 4, 6))
    values[0, 2:4, 3:6] = -2.0  # |.| is read
    assert np.allclose(emp.box_over_background(values, clicks, rest), 2.0)
    assert np.allclose(emp.box_over_background(values, tone, rest), 1.0)
    assert emp.main(["--quick", "--workdir", str(tmp_path), "--trainings", "plain", "path",
                     "long"]) == 0
    out = capsys.readouterr().out
    assert "- **32 x 48, plain against path-trained.**" in out
    assert "- **32 x 48, plain against long-trained.**" in out
    assert list(tmp_path.glob("model_32x48_3_40_n512.pt"))  # twice the quick run's 20 steps
    assert "ig_beats_random" in out and "Held-out R^2 on clean clips" in out
    assert list(tmp_path.glob("model_32x48_3_*_path0.5.pt"))  # kept beside the plain one
    checks = out[out.index("**Checks**"):].splitlines()
    row = next(line for line in checks if line.startswith("| 32 x 48 | 3 | plain |"))
    assert all(float(v) < 1e-5 for v in row.split("|")[4:6])
    assert "not compared" in row  # a fresh workdir holds no event_moving checks to compare
