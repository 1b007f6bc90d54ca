"""Are the concept explanations true? Calibration, both coefficient answers, flags, timelines.

Measured where the truth is known (the synthetic concept world, several weight maps with about
a third of their weights exactly zero, seeds not used in development) and on real Soundtracks
(``soundtracks_dimensional``: valence, energy, tension as concepts; 3 seeds):

1. *Calibration* of the predicted concepts on the test split: r, R^2 and the calibration slope
   of the rating on the prediction; a concept with test r >= 0.5 passes when
   R^2 >= r^2 - 0.1 and the slope lies in [0.8, 1.25].
2. *What the data show* against the true map: sign agreement on non-zero weights, coverage of
   the true weights by the 95 % intervals, share of zero weights called significant
   (uncorrected), for the ratings estimator (the default on these data) and the calibrated
   estimator (held-out predictions), per run; beside them the naive OLS on the CNN's in-sample
   predictions (what the table used to report).
3. *Flags*: the share of zero-truth model weights that the naive in-sample OLS would call
   significant which the table flags, and the share of model weights that agree with the
   truth (same sign, within 0.05 standardized) flagged by mistake.
4. *Leakage diagnostic* (joint, sequential): target r on predicted vs true concepts.
5. *Localization* of mid-clip concept changes in held-out clips: the changed concept over
   windows of the training crop every 0.25 s, ``locate_change``; share within 1 s against the
   chance rate of a uniform guess over the window centres and against a guess of the clip's
   middle (changes are drawn over ``--change-range`` of the clip; the section's table is
   ``benchmarks/change_localization.py``'s judged figure on its own worlds).

"Before" runs repeat one synthetic world and one Soundtracks seed with the earlier pipeline
(no BatchNorm re-estimation, no concept recalibration, selection on r, clip-level labels only).

    python benchmarks/truthful_concepts.py --workdir runs/truthful     # full: about 1.5 h, CPU
    python benchmarks/truthful_concepts.py --quick                     # smoke run

Runs already in ``--workdir`` are loaded, not retrained. Writes the section "Truthful concept
explanations" of benchmarks/RESULTS.md and ``truthful_concepts.json`` in the workdir.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from ground_truth_recovery import _fmt, replace_section  # noqa: E402

from midlevel.explain.coefficients import run_coefficients
from midlevel.explain.head import run_design
from midlevel.explain.statistics import fit_ols
from midlevel.explain.truth import compare_to_truth, ground_truth_weights

SECTION = "Truthful concept explanations"
MAP_SEEDS = (101, 202, 303)
BEFORE = {"recalibrate_bn": False, "select_on": "r", "calibrate_concepts": False}
MATERIALITY = 0.05


def weight_map(seed: int, *, n_zero: int = 19) -> pd.DataFrame:
    """A random 8 x 7 emotion map with ``n_zero`` exact zeros, magnitudes 0.5-2.5, rows scaled
    so that the absolute weights of a target sum to at most 7 (targets stay inside 1-9)."""
    from midlevel.synth import EMOTIONS, MIDLEVEL_CONCEPTS
    rng = np.random.default_rng(seed)
    w = rng.choice([-1.0, 1.0], size=(8, 7)) * rng.uniform(0.5, 2.5, size=(8, 7))
    w.flat[rng.choice(56, size=n_zero, replace=False)] = 0.0
    w *= np.minimum(1.0, 7.0 / np.abs(w).sum(1, keepdims=True))
    return pd.DataFrame(np.round(w, 3), index=list(EMOTIONS), columns=list(MIDLEVEL_CONCEPTS))


def _load_or_train(spec, out: Path, mode: str, config: dict, cache: Path):
    from midlevel.training import load_run, train
    if (out / "model.pt").is_file():
        return load_run(out)
    return train(spec, out, mode=mode, config={**config, "mode": mode}, cache_dir=cache,
                 overwrite=True, progress=False)


def world_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the synthetic worlds and their training, shared with
    ``change_localization.py`` so that both measure the same worlds the same way."""
    p.add_argument("--maps", type=int, default=3)
    p.add_argument("--n-clips", type=int, default=240)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--crop", type=float, default=3.0, help="training crop / timeline window (s)")
    p.add_argument("--change-range", type=float, nargs=2, default=(0.2, 0.8),
                   metavar=("LOW", "HIGH"),
                   help="fractions of a clip between which its change time is drawn (default "
                        "0.2 0.8; the runs of 2026-12-05 had every change at the middle, 0.5 "
                        "0.5, where a guess of the middle locates every change)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=12)


def quick_world(args) -> None:
    """The tiny worlds of a smoke run (``--quick``)."""
    args.maps, args.n_clips, args.duration, args.epochs, args.crop = 1, 40, 4.0, 2, 2.0


def training_config(args) -> dict:
    """The training settings of every synthetic-world run (the seed added per world)."""
    return {"preset": "small", "epochs": args.epochs, "patience": args.patience,
            "crop_seconds": args.crop, "eval_hop_seconds": args.crop / 2}


def world(args, work: Path, k: int, seed: int, change_fraction: float = 0.5
          ) -> tuple[Path, dict]:
    """World ``k`` (map ``seed``) in ``work``: synthesized unless there, refused if drawn
    with other change settings (:func:`check_world`); its spec path and ground truth."""
    from midlevel.synth import synthesize
    data = work / f"world{k}"
    spec = data / "spec.yaml"
    if not spec.is_file():
        synthesize(data, n_clips=args.n_clips, seed=seed, duration=args.duration,
                   weights=weight_map(seed), change_fraction=change_fraction,
                   change_range=tuple(args.change_range), n_jobs=2, progress=False)
    truth_json = json.loads((data / "ground_truth.json").read_text())
    check_world(data, truth_json, args.change_range, change_fraction)
    return spec, truth_json


def check_world(data: Path, truth_json: dict, change_range, change_fraction: float) -> None:
    """Refuse (SystemExit, naming the folder) a world in a reused workdir drawn with other
    change settings than those asked for (a world from before change ranges existed had
    every change at the middle: ``(0.5, 0.5)``), so no table reports one world's figure
    under another's description."""
    drawn = tuple(truth_json.get("change_range", (0.5, 0.5)))
    fraction = float(truth_json.get("change_fraction", change_fraction))
    if drawn != tuple(map(float, change_range)) or fraction != float(change_fraction):
        raise SystemExit(f"{data}: its world was drawn with change range {drawn} and change "
                         f"fraction {fraction:g}, not the {tuple(change_range)} and "
                         f"{change_fraction:g} asked for; use another --workdir or remove it")


def median_error(errors) -> float:
    """The median of located errors with a curve not located (NaN) counted as infinitely
    wrong, so misses cannot flatter it."""
    e = np.asarray(errors, dtype=float)
    return float(np.median(np.where(np.isnan(e), np.inf, e))) if len(e) else float("nan")


def _without_segments(spec: Path) -> Path:
    """A copy of a spec without its time-segment tables (clip-level labels only)."""
    raw = yaml.safe_load(spec.read_text())
    raw.pop("segments", None)
    out = spec.with_name("spec_clip_labels.yaml")
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


# ----------------------------------------------------------------------------- measures


EVAL_SPLIT = "test"  # --dev: "validation", so development never looks at the test split


def _passes(r: float, r2: float, slope: float) -> tuple[bool, float]:
    checked = bool(r >= 0.5)
    ok = checked and r2 >= r ** 2 - 0.1 and 0.8 <= slope <= 1.25
    return checked, (ok if checked else np.nan)


def unshrunk_predictions(run, pred: pd.DataFrame) -> pd.DataFrame:
    """The run's predicted concepts as the fitted calibration lines, before their bootstrap
    shrinkage, would have made them (same model; rating units)."""
    scales, lines = run.info["scales"], run.info.get("concept_calibration") or {}
    out = pred.copy()
    for k, name in enumerate(run.concept_names):
        ln = lines.get(name) or {}
        if ln.get("shrinkage", 1.0) == 1.0:
            continue
        mu, sd = scales["concept_mean"][k], scales["concept_std"][k]
        scaled = (pred[name] - mu) / sd
        unshrunk = ln["intercept_fitted"] + (scaled - ln["intercept"]) / ln["shrinkage"]
        out[name] = mu + sd * unshrunk
    return out


def calibration(run, label: dict, cache: Path, spec=None) -> list[dict]:
    """Per concept on the evaluation split: r, R^2, slope and the pass, for the run as it is
    (shrunk calibration lines) and, from the same model, with the fitted lines unshrunk."""
    from midlevel.training.metrics import regression_metrics
    m = run.metrics
    rows = m[(m["split"] == EVAL_SPLIT) & (m["kind"] == "concept") & (m["name"] != "mean")]
    lines = run.info.get("concept_calibration") or {}
    unshrunk = None
    if any((ln or {}).get("shrinkage", 1.0) != 1.0 for ln in lines.values()):
        pred = run.predictions(EVAL_SPLIT, spec=spec, cache_dir=cache)
        unshrunk = unshrunk_predictions(run, pred)
    out = []
    for _, r in rows.iterrows():
        checked, ok = _passes(r["r"], r["r2"], r["cal_slope"])
        ln = lines.get(r["name"]) or {}
        row = {**label, "concept": r["name"], "r": r["r"], "r2": r["r2"],
               "r2_floor": r["r"] ** 2 - 0.1, "slope": r["cal_slope"],
               "shrinkage": ln.get("shrinkage", np.nan),
               "shrinkage_raw": ln.get("shrinkage_raw", np.nan),
               "checked": checked, "passes": ok}
        row.update(slope_unshrunk=r["cal_slope"], r2_unshrunk=r["r2"], passes_unshrunk=ok)
        if unshrunk is not None and ln.get("shrinkage", 1.0) != 1.0:
            u = regression_metrics(unshrunk[f"true:{r['name']}"].to_numpy(np.float64),
                                   unshrunk[r["name"]].to_numpy(np.float64))
            row.update(slope_unshrunk=u["cal_slope"], r2_unshrunk=u["r2"],
                       passes_unshrunk=_passes(u["r"], u["r2"], u["cal_slope"])[1])
        out.append(row)
    return out


def _in_sample(run, cache):
    """The naive design: targets on the CNN's in-sample predicted training concepts."""

    if run.mode == "sequential":
        X, Y, _ = run_design(run)
        return X, Y
    pred = run.predictions("train", cache_dir=cache)
    Y = pred[[f"true:{t}" for t in run.target_names]].set_axis(run.target_names, axis=1)
    return pred[run.concept_names], Y


def statistics(run, truth: pd.DataFrame, cache: Path, label: dict, n_boot: int):
    """Rows of recovery figures per estimator, flag figures, the leakage table."""
    rows, flag_row = [], None
    res = run_coefficients(run, data="ratings", cache_dir=cache)
    t = res.table
    rows.append({**label, "estimator": "what the data show: ratings (HC3)",
                 **compare_to_truth(t, truth)})
    cal = run_coefficients(run, data="calibrated", n_boot=n_boot, cache_dir=cache,
                           leakage=False).table
    rows.append({**label, "estimator": "what the data show: calibrated held-out predictions",
                 **compare_to_truth(cal, truth)})
    if run.mode != "independent":
        X, Y = _in_sample(run, cache)
        naive = fit_ols(X, Y, summaries=False).table
        rows.append({**label, "estimator": "naive OLS on in-sample predictions (before)",
                     **compare_to_truth(naive, truth)})
        # "would a naive in-sample OLS call this model weight significant": the model's own
        # weight against the OLS standard error on the in-sample predictions treated as exact
        # (for a sequential head, whose weights are that OLS, exactly its p < 0.05)
        merged = t.merge(truth, on=["target", "concept"]).merge(
            naive[["target", "concept", "se", "n", "significant"]].rename(
                columns={"se": "naive_se", "n": "naive_n", "significant": "refit_significant"}),
            on=["target", "concept"])
        from scipy import stats as sstats
        crit = sstats.t.ppf(0.975, merged["naive_n"] - len(run.concept_names) - 1)
        merged["naive_significant"] = merged["model_weight"].abs() > crit * merged["naive_se"]
        zero = merged["true_weight"] == 0
        suspect = merged[zero & merged["naive_significant"]]
        refit = merged[zero & merged["refit_significant"]]
        gap = ((merged["model_weight"] - merged["true_weight"]) * merged["std_scale"]).abs()
        agree = merged[(gap < MATERIALITY) & (zero | (np.sign(merged["model_weight"])
                                                      == np.sign(merged["true_weight"])))]
        flag_row = {**label, "zero_weights_naive_significant": len(suspect),
                    "of_those_flagged": float((suspect["flag"] != "").mean())
                    if len(suspect) else np.nan,
                    "zero_weights_refit_significant": len(refit),
                    "refit_of_those_flagged": float((refit["flag"] != "").mean())
                    if len(refit) else np.nan,
                    "weights_agreeing_with_truth": len(agree),
                    "of_those_flagged_by_mistake": float((agree["flag"] != "").mean())
                    if len(agree) else np.nan,
                    "flags_total": int((merged["flag"] != "").sum()), "weights": len(merged)}
    leak = res.leakage
    if leak is not None:
        leak = leak.assign(**label)
    return rows, flag_row, leak


def localization(run, table: pd.DataFrame, truth_json: dict, cache: Path, label: dict):
    import torch
    from midlevel.data.cache import FeatureCache
    from midlevel.explain.timeline import locate_change, window_concepts
    fc = FeatureCache(cache, run.frontend)
    m = run.metrics
    test_r = m[(m["split"] == EVAL_SPLIT) & (m["kind"] == "concept")].set_index("name")["r"]
    window = run.config.crop_seconds
    rows = []
    for clip, rec in truth_json["clips"].items():
        change = rec.get("change")
        if not change or table.loc[clip, "split"] != EVAL_SPLIT:
            continue
        spec = torch.as_tensor(np.asarray(fc.get(table.loc[clip, "path"])))
        frame = window_concepts(run, spec, hop=0.25, window=window, name=clip)
        est = locate_change(frame["time"], frame[change["concept"]], window=window)
        times = frame["time"].to_numpy()
        grid = np.linspace(times[0], times[-1], 10001)
        duration = float(truth_json["duration"])
        rows.append({**label, "clip": clip, "concept": change["concept"],
                     "time_s": float(change["time"]), "estimate_s": float(est),
                     "error_s": abs(est - change["time"]),  # NaN: the curve cannot tell
                     "chance": float(np.mean(np.abs(grid - change["time"]) <= 1.0)),
                     "middle_guess": float(abs(duration / 2 - change["time"]) <= 1.0),
                     "test_r": float(test_r.get(change["concept"], np.nan))})
    return rows


# ----------------------------------------------------------------------------- worlds


def synthetic(args, work: Path, log) -> dict:
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    out = {k: [] for k in ("calibration", "stats", "flags", "leakage", "localization")}
    config = training_config(args)
    cache = work / "cache"
    for k, seed in enumerate(MAP_SEEDS[:args.maps]):
        t0 = time.time()
        spec, truth_json = world(args, work, k, seed)
        truth = ground_truth_weights(truth_json)
        table = load_annotations(load_spec(spec))
        variants = [("after", spec, {**config, "seed": seed})]
        if k == 0 and not args.no_before:
            variants.append(("before", _without_segments(spec), {**config, "seed": seed,
                                                                 **BEFORE}))
        for version, spec_used, cfg in variants:
            for mode in args.modes:
                run = _load_or_train(spec_used, work / f"world{k}_{mode}_{version}", mode, cfg,
                                     cache)
                label = {"world": f"map {k} (seed {seed})", "mode": mode, "version": version}
                out["calibration"] += calibration(run, label, cache)
                rows, flags, leak = statistics(run, truth, cache, label, args.n_boot)
                out["stats"] += rows
                if flags:
                    out["flags"].append(flags)
                if leak is not None:
                    out["leakage"].append(leak)
                out["localization"] += localization(run, table, truth_json, cache, label)
        log(f"synthetic world {k}: {time.time() - t0:.0f} s")
    return out


def soundtracks(args, work: Path, log) -> dict:
    from midlevel.explain.flags import flag_summary
    out = {"calibration": [], "flags": [], "leakage": []}
    root = Path(args.soundtracks)
    if not (root / "mean_ratings_set1.csv").is_file():
        log(f"Soundtracks not found at {root}: skipped")
        return out
    spec = REPO / "data_specs" / "soundtracks_dimensional.yaml"
    from midlevel.data.spec import load_spec
    spec_obj = load_spec(spec, root=root)
    config = {"preset": "small", "epochs": args.st_epochs, "patience": 8}
    variants = [("after", s, {**config, "seed": s}) for s in range(args.st_seeds)]
    if not args.no_before:
        variants.append(("before", 0, {**config, "seed": 0, **BEFORE}))
    for version, seed, cfg in variants:
        t0 = time.time()
        run = _load_or_train(spec_obj, work / f"soundtracks_joint_{seed}_{version}", "joint",
                             cfg, work / "cache")
        label = {"world": "Soundtracks", "mode": "joint", "version": version, "seed": seed}
        out["calibration"] += calibration(run, label, work / "cache", spec=spec_obj)
        res = run_coefficients(run, spec=spec_obj, cache_dir=work / "cache")
        t = res.table
        out["flags"].append({**label, "flags_total": int((t["flag"] != "").sum()),
                             "weights": len(t), "summary": flag_summary(t, most=3)})
        if res.leakage is not None:
            out["leakage"].append(res.leakage.assign(**label))
        log(f"Soundtracks seed {seed} ({version}): {time.time() - t0:.0f} s")
    return out


# ----------------------------------------------------------------------------- report


def _pct(x) -> str:
    return "" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def summarize(syn: dict, st: dict) -> tuple[str, dict]:
    cal = pd.DataFrame(syn["calibration"] + st["calibration"])
    figures = {}
    cal_rows = []
    for (world, version), g in cal.groupby(["world", "version"], sort=False):
        ch = g[g["checked"]]
        cal_rows.append({"data": world, "version": version, "runs": g["mode"].size
                         // max(1, g["concept"].nunique()),
                         "concepts checked (r >= 0.5)": len(ch),
                         "pass": _pct(ch["passes"].mean()) if len(ch) else "",
                         "median R^2 - r^2": float((g["r2"] - g["r"] ** 2).median()),
                         "median slope": float(g["slope"].median()),
                         "pass, lines unshrunk": _pct(ch["passes_unshrunk"].mean())
                         if len(ch) else "",
                         "median slope, unshrunk": float(g["slope_unshrunk"].median()),
                         "median shrinkage": float(g["shrinkage"].median())})
    figures["calibration"] = cal_rows
    stats = pd.DataFrame(syn["stats"])
    stat_table = pd.DataFrame()
    if len(stats):
        g = stats.groupby(["version", "mode", "estimator"], sort=False)
        stat_table = g[["sign_agreement", "coverage"]].mean()
        stat_table["zero_significant"] = g.apply(
            lambda d: (d["null_fpr"] * d["n_null"]).sum() / d["n_null"].sum(),
            include_groups=False)
        stat_table["runs"] = g.size()
        stat_table = stat_table.reset_index()
    flags = pd.DataFrame(syn["flags"])
    flag_table = pd.DataFrame()
    if len(flags):
        def agg(d):
            s, a = d["zero_weights_naive_significant"], d["weights_agreeing_with_truth"]
            f = d["zero_weights_refit_significant"]
            return pd.Series({
                "zero weights naive-significant": int(s.sum()),
                "flagged": (d["of_those_flagged"].fillna(0) * s).sum() / max(1, s.sum()),
                "zero weights significant in the old refit": int(f.sum()),
                "flagged ": (d["refit_of_those_flagged"].fillna(0) * f).sum() / max(1, f.sum()),
                "weights agreeing with truth": int(a.sum()),
                "flagged by mistake": (d["of_those_flagged_by_mistake"].fillna(0) * a).sum()
                / max(1, a.sum()),
                "flags": int(d["flags_total"].sum()), "weights": int(d["weights"].sum())})
        flag_table = flags.groupby(["version", "mode"], sort=False).apply(
            agg, include_groups=False).reset_index()
        for c in ("zero weights naive-significant", "weights agreeing with truth", "flags",
                  "weights", "zero weights significant in the old refit"):
            flag_table[c] = flag_table[c].astype(int)
    loc = pd.DataFrame(syn["localization"])
    loc_table = pd.DataFrame()
    if len(loc):
        loc["good"] = loc["test_r"] >= 0.7
        rows = []
        for (version, mode), g in loc.groupby(["version", "mode"], sort=False):
            good = g[g["good"]]
            rows.append({"version": version, "mode": mode, "changes": len(g),
                         "within 1 s": (g["error_s"] <= 1.0).mean(),
                         "changes of concepts r >= 0.7": len(good),
                         "within 1 s (r >= 0.7)": (good["error_s"] <= 1.0).mean()
                         if len(good) else np.nan,
                         "chance": g["chance"].mean(),
                         "middle guess": g["middle_guess"].mean(),
                         "not located": int(g["error_s"].isna().sum()),
                         "median error s": median_error(g["error_s"])})
        loc_table = pd.DataFrame(rows)
    leak = pd.concat(syn["leakage"] + st["leakage"], ignore_index=True) \
        if syn["leakage"] or st["leakage"] else pd.DataFrame()
    leak_table = pd.DataFrame()
    if len(leak):
        leak_table = leak.groupby(["world", "mode", "version", "split"], sort=False)[
            ["r_predicted_concepts", "r_true_concepts", "meaning_share"]].mean().reset_index()
    st_flags = pd.DataFrame(st["flags"])
    text = f"""Script: `benchmarks/truthful_concepts.py` (CPU). Synthetic worlds: random emotion maps
with 19 of 56 weights exactly zero (`weight_map(seed)`, seeds {', '.join(map(str, MAP_SEEDS))}),
clips as written by `midlevel.synth` with segment ratings for the clips whose concept
changes mid-clip; small preset. Soundtracks: `soundtracks_dimensional` (joint), fixed 36-clip
test split. "before" = the earlier pipeline (no BatchNorm re-estimation, no concept
recalibration, selection on r, clip-level labels only), same data and seeds.

### 1. Calibration of the predicted concepts (test split)

A concept with test r >= 0.5 passes when R^2 >= r^2 - 0.1 and the calibration slope (rating on
prediction) lies in [0.8, 1.25].

{_fmt(pd.DataFrame(cal_rows))}

Per concept:

{_fmt(cal[["world", "version", "mode", "concept", "r", "r2", "r2_floor", "slope", "passes",
           "shrinkage", "shrinkage_raw", "slope_unshrunk", "passes_unshrunk"]])}

`shrinkage`: the factor of the calibration slope from the bootstrap of the epoch selection and
the line on the validation clips (`midlevel.training.calibration.selection_shrinkage`, at most
1; `shrinkage_raw` before that cap); `slope_unshrunk`, `passes_unshrunk`: the same model with
the fitted validation line as it was before the shrinkage (computed from the same
predictions). "before" runs have no calibration line.

### 2. What the data show, against the true maps

{_fmt(stat_table) if len(stat_table) else "no synthetic runs"}

`zero_significant`: share of the zero true weights whose p < 0.05 (uncorrected). The ratings
estimator does not depend on the model (same rows for every mode of a world); the calibrated
one uses the run's held-out predictions.

### 3. Flags: where the model departs from what the data show

{_fmt(flag_table) if len(flag_table) else "no runs"}

"zero weights naive-significant": model weights on concepts with no true effect that a naive
OLS would call significant: the model's weight against the standard error of the OLS of the
targets on the in-sample predicted training concepts treated as exact (for a sequential head,
whose weights are that OLS, exactly its p < 0.05); "flagged": the share of those the table
flags. "significant in the old refit": zero-truth weights the earlier table starred (its OLS
refit on in-sample predictions; for a joint run that refit is not the head), and the share of
those flagged. "weights agreeing with truth": within 0.05 standardized of the true weight
(and of its sign when non-zero); "flagged by mistake": the share of those flagged.

### 4. Leakage diagnostic (held-out clips, mean over targets)

{_fmt(leak_table) if len(leak_table) else "no runs"}

meaning_share: the adjusted R^2 of the head's output on the true concept ratings
(`midlevel.explain.leakage`; about 0 for an output unrelated to them). Before 2026-12-06 this
column held the plain R^2, whose chance level on 36 clips is 7/35 = 0.20 for the synthetic
worlds' seven concepts and 3/35 = 0.09 for Soundtracks' three (plain values then: 0.63-0.87).

### 5. Localization of mid-clip concept changes

{_fmt(loc_table) if len(loc_table) else "no changes"}

`chance`: share of a uniform guess over the window centres within 1 s; `middle guess`: share
of changes within 1 s of the clip's middle (a detector that does not read the audio); `not
located`: curves `locate_change` cannot time (NaN), counted as misses and as infinitely
wrong in the median error.
"""
    if len(st_flags):
        text += "\n### 6. Soundtracks flags\n\n" + _fmt(st_flags.drop(columns=["summary"])) + "\n"
        text += "\n" + "\n".join(f"- seed {r['seed']} ({r['version']}): "
                                 + r["summary"].replace("\n", " ")
                                 for _, r in st_flags.iterrows()) + "\n"
    figures.update(stats=stat_table.to_dict("records"), flags=flag_table.to_dict("records"),
                   localization=loc_table.to_dict("records"),
                   leakage=leak_table.to_dict("records"))
    return text, figures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", help="keep data and runs here (resumable)")
    world_arguments(p)
    p.add_argument("--modes", nargs="+", default=["independent", "sequential", "joint"])
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--soundtracks", default=str(REPO.parent / "shared" / "datasets"
                                               / "soundtracks"))
    p.add_argument("--st-seeds", type=int, default=3)
    p.add_argument("--st-epochs", type=int, default=20)
    p.add_argument("--no-before", action="store_true", help="skip the 'before' runs")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke run)")
    p.add_argument("--dev", action="store_true",
                   help="development: calibration and localization on the validation split "
                        "only (the test split stays unseen); implies --no-write")
    p.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = p.parse_args(argv)
    if args.quick:
        quick_world(args)
        args.st_seeds, args.st_epochs, args.n_boot = 0, 1, 100
        args.no_before, args.no_write = True, True
    if args.dev:
        global EVAL_SPLIT
        EVAL_SPLIT, args.no_write = "validation", True
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="truthful_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    syn = synthetic(args, work, print)
    st = soundtracks(args, work, print) if args.st_seeds else {"calibration": [], "flags": [],
                                                               "leakage": []}
    text, figures = summarize(syn, st)
    loaded = "; the runs already in the workdir were loaded, not retrained" if args.workdir \
        else ""
    text = text.replace("(CPU)", f"(CPU, {(time.time() - t0) / 60:.0f} min{loaded})", 1)
    print(text)
    (work / "truthful_concepts.json").write_text(json.dumps(
        {"figures": figures, "raw": {k: v for k, v in syn.items() if k != "leakage"}},
        indent=1, default=float))
    if not args.no_write:
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, text)
        print(f"written: benchmarks/RESULTS.md (section '{SECTION}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
