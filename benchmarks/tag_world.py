"""Tags as concepts on the synthetic tag world: do tag explanations recover the known truth?

The tag world (``midlevel synth --tags``): every clip holds or lacks four layer families
(drums, pad, drone, melody voice; binary concepts ``layer=<family>`` with known truth) beside
the seven rated mid-level concepts, and carries mood tags (a multi-label target ``mood=<mood>``)
drawn from the layers by a known logistic map (12 non-zero and 4 zero log-odds weights; the
rated concepts weigh 0). Every mode is trained on the same spec, and for each:

1. *Metrics* on the test split: ROC-AUC, PR-AUC and F1 (threshold 0.5) per tag, concept tags
   (what the CNN hears) and mood tags (the targets), macro-averaged; r of the rated concepts.
2. *What the model does*: the head's tag -> mood weights (log-odds per unit of predicted
   probability) against the true map: sign agreement over the non-zero weights, correlation.
3. *What the data show*: the binomial GLM of each mood on the concept ratings and tags: sign
   agreement, coverage of the true weights (zeros included) by the 95 % intervals, share of
   zero weights called significant.
4. *Interventions*: switching ``layer=drums`` (and every other layer) on and off in held-out
   clips; the model's change of P(mood) against the true change from the map, per clip.
5. *Where a head sign is wrong* (the sequential head): the same question refitted on the
   held-out clips' predicted concepts, and which layers each predicted tag carries there.
6. *Other worlds* (``--repeat-seeds``, default 8 and 9): the sign agreement again on worlds
   synthesized and trained with other seeds, so that one world's figure is not the only one.

    python benchmarks/tag_world.py --workdir runs/tags          # about 15 min on 2 CPU cores
    python benchmarks/tag_world.py --quick                      # smoke run

Runs already in ``--workdir`` are loaded, not retrained. Writes the section "Tags as concepts:
the synthetic tag world" of benchmarks/RESULTS.md and ``tag_world.json`` beside it.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from ground_truth_recovery import replace_section  # noqa: E402

from midlevel.explain.coefficients import run_coefficients  # noqa: E402
from midlevel.explain.head import LinearHead  # noqa: E402
from midlevel.explain.interventions import intervene  # noqa: E402
from midlevel.run import load_run  # noqa: E402
from midlevel.synth import tags as tagging  # noqa: E402
from midlevel.synth.dataset import synthesize  # noqa: E402
from midlevel.training.from_spec import train  # noqa: E402

SECTION = "Tags as concepts: the synthetic tag world"
MODES = ("joint", "independent", "sequential", "blackbox")


def truth_table() -> pd.DataFrame:
    """target, concept, true_weight of every mood x layer pair (log-odds per tag)."""
    w = tagging.DEFAULT_TAG_WEIGHTS
    return pd.DataFrame([{"target": f"mood={m}", "concept": f"layer={k}",
                          "true_weight": float(w.loc[m, k])}
                         for m in w.index for k in w.columns])


def world(args, work: Path) -> Path:
    data = work / "data"
    spec = data / "spec.yaml"
    if not spec.is_file():
        synthesize(data, n_clips=args.n_clips, seed=args.seed, duration=args.duration,
                   tags=True, n_jobs=2, progress=False)
    return spec


def trained(spec: Path, work: Path, mode: str, args, log):
    out = work / mode
    if (out / "model.pt").is_file():
        return load_run(out)
    epochs = args.epochs if mode == "joint" else args.other_epochs
    t0 = time.time()
    run = train(spec, out, mode=mode, preset="small", epochs=epochs, cache_dir=work / "cache",
                config={"crop_seconds": args.duration, "patience": args.patience,
                        "seed": args.seed},
                overwrite=True, progress=False)
    log(f"{mode}: trained {run.info['epochs']} epochs (at most {epochs}, best "
        f"{run.info['best_epoch']}) in {time.time() - t0:.0f} s")
    return run


def tag_metrics(run) -> pd.DataFrame:
    m = run.metrics
    m = m[m["split"] == "test"]
    keep = m["name"].str.startswith(("layer=", "mood=", "mean:layer", "mean:mood"))
    rated = (m["kind"] == "concept") & ~m["name"].str.contains("=|:|^mean$", regex=True)
    return pd.concat([m[keep], m[rated]])[["kind", "name", "n", "auc", "pr_auc", "f1",
                                           "accuracy", "r", "r2"]]


def recovery(run, truth: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    coefs = run_coefficients(run, leakage=False)
    table = coefs.table[coefs.table["target"].str.startswith("mood=")]
    merged = table.merge(truth, on=["target", "concept"], how="left").fillna(
        {"true_weight": 0.0})  # rated concepts weigh 0 for every mood
    tags = merged[merged["concept"].str.startswith("layer=")]
    nonzero = tags["true_weight"] != 0
    zero = merged["true_weight"] == 0
    covered = (merged["ci_low"] <= merged["true_weight"]) & (merged["true_weight"] <= merged["ci_high"])
    out = {
        "model_sign_agreement": float((np.sign(tags.loc[nonzero, "model_weight"])
                                       == np.sign(tags.loc[nonzero, "true_weight"])).mean()),
        "model_correlation": float(np.corrcoef(tags["model_weight"], tags["true_weight"])[0, 1]),
        "data_sign_agreement": float((np.sign(tags.loc[nonzero, "weight"])
                                      == np.sign(tags.loc[nonzero, "true_weight"])).mean()),
        "data_coverage": float(covered.mean()),
        "data_coverage_tags": float(covered[merged["concept"].str.startswith("layer=")].mean()),
        "data_null_fpr": float(merged.loc[zero, "p_value"].lt(0.05).mean()),
        "n_nonzero": int(nonzero.sum()), "n_weights": int(len(merged)), "n_zero": int(zero.sum()),
        "flagged": int((merged["flag"] != "").sum()),
        "method": str(coefs.table.attrs.get("method") or merged["method"].iloc[0]),
    }
    return out, tags[["target", "concept", "true_weight", "model_weight", "weight", "ci_low",
                      "ci_high", "flag"]]


def interventions(run, spec: Path) -> dict:
    """Each layer switched on and off in the test clips: model vs true change of P(mood)."""
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    table = load_annotations(load_spec(spec))
    preds = run.predictions("test")
    head = LinearHead.from_run(run)
    tags = table.loc[preds.index, [f"layer={k}" for k in tagging.TAG_LAYERS]].to_numpy()
    rows = []
    for k, layer in enumerate(tagging.TAG_LAYERS):
        name = f"layer={layer}"
        on = intervene(head, preds[run.concept_names], {name: "on"}, targets=["mood"])
        off = intervene(head, preds[run.concept_names], {name: "off"}, targets=["mood"])
        t_on, t_off = tags.copy(), tags.copy()
        t_on[:, k], t_off[:, k] = 1.0, 0.0
        true_change = (tagging.mood_probabilities(t_on) - tagging.mood_probabilities(t_off))
        for j, mood in enumerate(tagging.MOODS):
            sel_on, sel_off = on["target"] == f"mood={mood}", off["target"] == f"mood={mood}"
            model_change = (on.loc[sel_on, "intervened_probability"].to_numpy()
                            - off.loc[sel_off, "intervened_probability"].to_numpy())
            rows += [{"layer": layer, "mood": mood, "model": m, "true": t}
                     for m, t in zip(model_change, true_change[:, j])]
    frame = pd.DataFrame(rows)
    big = frame[frame["true"].abs() > 0.05]
    return {"clips": int(len(preds)), "pairs": int(len(frame)),
            "correlation": float(np.corrcoef(frame["model"], frame["true"])[0, 1]),
            "mean_abs_error": float((frame["model"] - frame["true"]).abs().mean()),
            "sign_agreement": float((np.sign(big["model"]) == np.sign(big["true"])).mean()),
            "drums_on_driving_model": float(frame[(frame.layer == "drums") &
                                                  (frame.mood == "driving")]["model"].mean()),
            "drums_on_driving_true": float(frame[(frame.layer == "drums") &
                                                 (frame.mood == "driving")]["true"].mean())}


def heldout_diagnosis(run, truth: pd.DataFrame, cache: Path) -> dict:
    """Is a wrong head sign an artefact of fitting on the training clips' own predictions?

    Refits the head's question (binomial GLM of each true mood on every predicted concept,
    z-scored) on the *held-out* validation and test clips, whose predictions carry the errors
    the network makes on new clips, and reports its sign agreement on the non-zero tag weights
    beside the correlations of each predicted tag with every true tag there (off the diagonal:
    what one predicted tag carries of another layer)."""
    import statsmodels.api as sm
    df = pd.concat([run.predictions(s, cache_dir=cache) for s in ("validation", "test")])
    names = run.concept_names
    X = df[names].to_numpy(np.float64)
    X = (X - X.mean(0)) / X.std(0).clip(min=1e-9)
    rows = []
    for target in sorted(truth["target"].unique()):
        fit = sm.GLM(df[f"true:{target}"].to_numpy(np.float64), sm.add_constant(X),
                     family=sm.families.Binomial()).fit()
        for _, t in truth[(truth["target"] == target) & (truth["true_weight"] != 0)].iterrows():
            rows.append({"target": target, "concept": t["concept"],
                         "true_weight": float(t["true_weight"]),
                         "heldout_weight": float(fit.params[1 + names.index(t["concept"])])})
    w = pd.DataFrame(rows)
    agree = np.sign(w["heldout_weight"]) == np.sign(w["true_weight"])
    layers = [f"layer={k}" for k in tagging.TAG_LAYERS]
    corr = np.corrcoef(df[layers].to_numpy(np.float64).T,
                       df[[f"true:{c}" for c in layers]].to_numpy(np.float64).T)[:4, 4:]
    return {"clips": int(len(df)), "sign_agreement": float(agree.mean()),
            "wrong": w[~agree].to_dict(orient="records"),
            "confusion": {p: {t: float(corr[i, j]) for j, t in enumerate(layers)}
                          for i, p in enumerate(layers)}}


def oracle(spec: Path) -> dict:
    """The ceiling: ROC-AUC and PR-AUC of the true P(mood | layers) on the test clips (the
    moods are random draws given the layers, so no model can do better on average)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    table = load_annotations(load_spec(spec))
    test = table[table["split"] == "test"]
    prob = tagging.mood_probabilities(test[[f"layer={k}" for k in tagging.TAG_LAYERS]].to_numpy())
    out = {}
    for j, mood in enumerate(tagging.MOODS):
        y = test[f"mood={mood}"].to_numpy()
        out[f"mood={mood}"] = {"auc": float(roc_auc_score(y, prob[:, j])),
                               "pr_auc": float(average_precision_score(y, prob[:, j]))}
    out["mean:mood"] = {k: float(np.mean([v[k] for v in out.values()])) for k in ("auc", "pr_auc")}
    return out


def _f(x, d=2) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{d}f}"


def wrong_signs(weights) -> pd.DataFrame:
    """The rows of a weights table (``true_weight``, ``model_weight``) whose non-zero true
    weight the model gets with the wrong sign."""
    w = pd.DataFrame(weights or [])
    if w.empty:
        return w
    nz = w[w["true_weight"] != 0]
    return nz[np.sign(nz["model_weight"]) != np.sign(nz["true_weight"])]


def _pooled(rcs: list[dict], share: str, count: str) -> tuple[float, float, int]:
    """A share pooled over worlds: (share, how many, out of how many)."""
    total = sum(rc[count] for rc in rcs)
    hits = sum(rc[share] * rc[count] for rc in rcs)
    return hits / total, hits, total


def _budget(res: dict) -> str:
    """The training budget in words: at most how many epochs, the patience, and the epochs
    each mode trained (best epoch in brackets) on the main world."""
    s = res["settings"]
    most = (f"{s['epochs']}" if s["epochs"] == s["other_epochs"]
            else f"{s['epochs']} (joint) / {s['other_epochs']} (other modes)")
    if s.get("patience") is None:  # results of the fixed-budget runs
        return f"{most} epochs"
    done = ", ".join(f"{mode} {r['epochs_trained']} ({r['best_epoch']})"
                     for mode, r in res["modes"].items() if "epochs_trained" in r)
    return (f"at most {most} epochs with early stopping after {s['patience']} epochs without a "
            f"better validation score (epochs trained, best in brackets: {done})")


def render(res: dict) -> str:
    s = res["settings"]
    trained = res.get("trained_seconds") or res["seconds"]
    lines = [f"`python benchmarks/tag_world.py` ({res['started']}, {trained / 60:.0f} min "
             f"on {s['cores']} shared CPU cores): the tag world of `midlevel synth --tags`, "
             f"{s['n_clips']} clips of {s['duration']:g} s (seed {s['seed']}, 70/15/15 % "
             f"split), preset `small`, " + _budget(res) + ", crops of the whole clip. "
             "Concepts: 7 rated mid-level concepts and 4 layer tags (`layer=drums`, `pad`, "
             "`drone`, `melody`, each present with "
             "probability 0.5); targets: 8 emotion ratings and the multi-label `mood` "
             "(4 tags from a logistic map of the layers with 12 non-zero weights, 4 zero; "
             "the rated concepts weigh 0). Test split throughout.", ""]
    lines += ["#### Metrics per tag (test split)", ""]
    header = "| mode | tag | ROC-AUC | PR-AUC | F1 @0.5 | accuracy |"
    lines += [header, "|---|---|---|---|---|---|"]
    for mode, r in res["modes"].items():
        for row in r["metrics"]:
            if str(row["name"]).startswith(("layer=", "mood=", "mean:layer", "mean:mood")):
                lines.append(f"| {mode} | {row['name']} | {_f(row['auc'])} | "
                             f"{_f(row['pr_auc'])} | {_f(row['f1'])} | {_f(row['accuracy'])} |")
    orc = res.get("oracle") or {}
    for name, v in orc.items():
        lines.append(f"| ceiling: the true P(mood \\| layers) | {name} | {_f(v['auc'])} | "
                     f"{_f(v['pr_auc'])} | - | - |")
    lines += ["", "Rated concepts beside the tags (mean test r): " + ", ".join(
        f"{mode} {_f(r['rated_concept_r'])}" for mode, r in res["modes"].items()
        if r.get("rated_concept_r") is not None) + ".", ""]
    lines += ["#### Tag -> mood weights against the truth", ""]
    lines += ["| mode | model: sign agreement (non-zero) | model: r with truth | data: sign "
              "agreement | data: 95 % coverage (all / tag weights) | data: zeros significant |"
              " flagged |", "|---|---|---|---|---|---|---|"]
    for mode, r in res["modes"].items():
        rc = r.get("recovery")
        if rc:
            lines.append(f"| {mode} | {_f(rc['model_sign_agreement'])} ({rc['n_nonzero']}) | "
                         f"{_f(rc['model_correlation'])} | {_f(rc['data_sign_agreement'])} | "
                         f"{_f(rc['data_coverage'])} / {_f(rc['data_coverage_tags'])} "
                         f"({rc['n_weights']} weights) | {_f(rc['data_null_fpr'])} "
                         f"({rc['n_zero']} zeros) | {rc['flagged']} |")
    lines += ["", "Model weights are the head's log-odds per unit of predicted probability; "
              "the data's answer for a mood is the binomial GLM of the mood on the concept "
              "ratings and tags. The fit, as the coefficient table names it: "
              + next((r["recovery"]["method"] for r in res["modes"].values()
                      if r.get("recovery")), "") + ".", ""]
    for mode, r in res["modes"].items():
        rc, w = r.get("recovery"), pd.DataFrame(r.get("weights") or [])
        if not rc or w.empty or rc["model_sign_agreement"] >= 0.95:
            continue
        nz = w[w["true_weight"] != 0]
        wrong = wrong_signs(r.get("weights"))
        ratio = (nz["model_weight"].abs() / nz["weight"].abs().clip(lower=1e-9)).median()
        lines += [f"Miss: the {mode} head's signs agree on {_f(rc['model_sign_agreement'])} of "
                  f"the non-zero tag weights (target 0.95). Its weights are a median "
                  f"{_f(ratio, 1)}x the data's answer: it is fitted on the concept network's "
                  f"predicted probabilities of its training clips, which are compressed "
                  f"(standard deviation per tag: " + ", ".join(
                      f"{k} {_f(v)}" for k, v in (r.get("train_probability_std") or {}).items())
                  + " against about 0.5 for the 0/1 truth), so a weight per unit of predicted "
                  f"probability grows and leans on the other concepts; the wrong sign"
                  f"{'s' if len(wrong) != 1 else ''} ("
                  + ", ".join(f"{a} -> {b}: {_f(m)} vs true {_f(t)}, flag "
                              f"'{fl or 'none'}'" for a, b, m, t, fl in
                              zip(wrong["concept"], wrong["target"], wrong["model_weight"],
                                  wrong["true_weight"], wrong["flag"]))
                  + ") and the departures are flagged in the table, and the data's answer "
                  f"keeps its signs ({_f(rc['data_sign_agreement'])}).", ""]
        ho = r.get("heldout")
        if ho:
            same = {(a, b) for a, b in zip(wrong["concept"], wrong["target"])} & {
                (x["concept"], x["target"]) for x in ho["wrong"]}
            conf = sorted(((p_, t_, v) for p_, row in ho["confusion"].items()
                           for t_, v in row.items() if p_ != t_), key=lambda x: -abs(x[2]))[:3]
            lines += [f"Is it the in-sample fit? The same question refitted on the held-out "
                      f"validation and test clips' predicted concepts ({ho['clips']} clips, "
                      f"binomial GLM of each true mood on every predicted concept) agrees in "
                      f"sign on {_f(ho['sign_agreement'])} of the non-zero tag weights ("
                      + (", ".join(f"{x['concept']} -> {x['target']}: {_f(x['heldout_weight'])}"
                                   for x in ho["wrong"]) or "none wrong") + "). "
                      + (f"The wrong sign{'s' if len(same) != 1 else ''} of the head "
                         f"{'come' if len(same) != 1 else 'comes'} back on clips the network "
                         f"never trained on, so {'they are' if len(same) != 1 else 'it is'} "
                         f"not an artefact of fitting on the training clips' own predictions "
                         f"but what the predicted tags carry: " if same else
                         "On held-out clips the head's wrong sign does not come back, so it "
                         "is the in-sample fit; the predicted tags carry: ")
                      + ", ".join(f"predicted {a} with true {b} r {_f(v)}" for a, b, v in conf)
                      + " (largest correlations off the diagonal, held-out clips)."
                      + (" Refitting the head on held-out or cross-fitted predictions would "
                         "therefore not restore the sign; a better concept network would."
                         if same else ""), ""]
    reps = res.get("repeats") or {}
    if reps:
        lines += ["#### The signs on other worlds", "",
                  "The same modes trained on further worlds (synthesis and training seed "
                  "changed together, everything else as above): sign agreement of the "
                  "non-zero tag -> mood weights.", "",
                  "| world seed | mode | model: sign agreement | model: wrong signs | "
                  "sequential head refitted on held-out clips | data: sign agreement | data: "
                  "95 % coverage | data: zeros significant |",
                  "|---|---|---|---|---|---|---|---|"]
        worlds = {str(s["seed"]): {m: r for m, r in res["modes"].items()}, **reps}
        for seed, modes in worlds.items():
            for mode, r in modes.items():
                rc = r.get("recovery")
                if not rc:
                    continue
                wrong = wrong_signs(r.get("weights"))
                ho = r.get("heldout")
                lines.append(f"| {seed} | {mode} | {_f(rc['model_sign_agreement'])} | "
                             + (", ".join(f"{a} -> {b}" for a, b in
                                          zip(wrong["concept"], wrong["target"]))
                                if len(wrong) else "-")
                             + f" | {_f(ho['sign_agreement']) if ho else '-'} | "
                             f"{_f(rc['data_sign_agreement'])} | {_f(rc['data_coverage'])} | "
                             f"{_f(rc['data_null_fpr'])} |")
        for mode in res["modes"]:
            rcs = [m[mode]["recovery"] for m in worlds.values()
                   if m.get(mode, {}).get("recovery")]
            if not rcs:
                continue
            signs, n_signs, n_nonzero = _pooled(rcs, "model_sign_agreement", "n_nonzero")
            data_signs = _pooled(rcs, "data_sign_agreement", "n_nonzero")[0]
            coverage = _pooled(rcs, "data_coverage", "n_weights")[0]
            fpr, n_fp, n_zero = _pooled(rcs, "data_null_fpr", "n_zero")
            lines.append(f"| all {len(rcs)} | {mode} | {_f(signs)} ({n_signs:.0f} of "
                         f"{n_nonzero}) | | | {_f(data_signs)} | {_f(coverage)} | {_f(fpr)} "
                         f"({n_fp:.0f} of {n_zero}) |")
        lines.append("")
    lines += ["#### Interventions: a layer switched on vs off in the test clips", ""]
    lines += ["| mode | clip x layer x mood | r (model vs true change of P) | mean abs error | "
              "sign agreement (true change > 0.05) | drums -> P(driving): model / true |",
              "|---|---|---|---|---|---|"]
    for mode, r in res["modes"].items():
        iv = r.get("interventions")
        if iv:
            lines.append(f"| {mode} | {iv['pairs']} | {_f(iv['correlation'])} | "
                         f"{_f(iv['mean_abs_error'], 3)} | {_f(iv['sign_agreement'])} | "
                         f"{_f(iv['drums_on_driving_model'])} / "
                         f"{_f(iv['drums_on_driving_true'])} |")
    return "\n".join(lines) + "\n"


def run_world(args, work: Path, log) -> tuple[dict, bool]:
    """Every mode of ``args.modes`` on the world of ``args.seed`` in ``work``: the results
    dict and whether every run was loaded rather than trained."""
    work.mkdir(parents=True, exist_ok=True)
    spec = world(args, work)
    truth = truth_table()
    ceiling = oracle(spec)
    res = {"started": time.strftime("%Y-%m-%d %H:%M"),
           "settings": {"n_clips": args.n_clips, "duration": args.duration, "seed": args.seed,
                        "epochs": args.epochs, "other_epochs": args.other_epochs,
                        "patience": args.patience,
                        "cores": len(os.sched_getaffinity(0))}, "modes": {},
           "oracle": ceiling}
    loaded = all((work / mode / "model.pt").is_file() for mode in args.modes)
    for mode in args.modes:
        run = trained(spec, work, mode, args, log)
        metrics = tag_metrics(run)
        rated = metrics[~metrics["name"].str.contains("=|:", regex=True) &
                        (metrics["kind"] == "concept") & (metrics["name"] != "mean")]
        entry = {"metrics": metrics.replace({np.nan: None}).to_dict(orient="records"),
                 "rated_concept_r": float(rated["r"].mean()) if len(rated) else None,
                 "epochs_trained": int(run.info["epochs"]),
                 "best_epoch": int(run.info["best_epoch"])}
        if mode != "blackbox":
            entry["recovery"], weights = recovery(run, truth)
            entry["weights"] = weights.to_dict(orient="records")
            entry["interventions"] = interventions(run, spec)
            train_pred = run.predictions("train", cache_dir=work / "cache")
            entry["train_probability_std"] = {
                k: float(train_pred[f"layer={k}"].std()) for k in tagging.TAG_LAYERS}
            if mode == "sequential":
                entry["heldout"] = heldout_diagnosis(run, truth, work / "cache")
        res["modes"][mode] = entry
        log(f"{mode}: " + json.dumps({k: v for k, v in entry.items()
                                      if k in ("recovery", "interventions")}))
    return res, loaded


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--n-clips", type=int, default=300)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--epochs", type=int, default=150,
                   help="the most epochs a mode trains (early stopping: --patience); runs "
                        "before 2026-12-05 trained a fixed 30 (patience = epochs), which left "
                        "the concept network far from converged (validation score still "
                        "rising at epoch 80)")
    p.add_argument("--patience", type=int, default=20,
                   help="epochs without a better validation score before a mode stops")
    p.add_argument("--other-epochs", type=int, default=None,
                   help="epochs of the other modes (default: --epochs, the same budget for "
                        "every mode; runs before 2026-12-03 gave them 15 against the joint "
                        "model's 30)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat-seeds", type=int, nargs="*", default=[8, 9],
                   help="further worlds (synthesis and training seeds) on which the sign "
                        "agreement of the tag -> mood weights is measured again, in "
                        "<workdir>/seed<N>; none: --repeat-seeds with no value")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    p.add_argument("--no-write", action="store_true",
                   help="do not write RESULTS.md and benchmarks/tag_world.json (the results "
                        "go to <workdir>/tag_world.json only)")
    args = p.parse_args(argv)
    if args.quick:
        args.n_clips, args.duration, args.epochs, args.other_epochs = 60, 2.0, 1, 1
    if args.other_epochs is None:
        args.other_epochs = args.epochs
    import torch
    torch.set_num_threads(2)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="midlevel-tags-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def log(msg):
        print(f"[tags {time.time() - t0:5.0f} s] {msg}", flush=True)
    res, loaded = run_world(args, work, log)
    res["seconds"] = time.time() - t0
    res["repeats"] = {}
    for seed in ([] if args.quick else args.repeat_seeds):
        other, _ = run_world(argparse.Namespace(**{**vars(args), "seed": seed}),
                             work / f"seed{seed}", log)
        res["repeats"][str(seed)] = {mode: {k: r[k] for k in ("recovery", "weights", "heldout",
                                                              "epochs_trained", "best_epoch")
                                            if k in r}
                                     for mode, r in other["modes"].items()}
    earlier = REPO / "benchmarks" / "tag_world.json"
    if loaded and earlier.is_file():  # every run loaded: keep when and how they were trained
        old = json.loads(earlier.read_text())
        if {k: old.get("settings", {}).get(k) for k in ("n_clips", "seed", "epochs")} == {
                k: res["settings"][k] for k in ("n_clips", "seed", "epochs")}:
            res["started"] = old["started"]
            res["settings"]["cores"] = old["settings"]["cores"]
            res["trained_seconds"] = old.get("trained_seconds") or old["seconds"]
    dump = json.dumps(res, indent=1, default=str)
    (work / "tag_world.json").write_text(dump)
    if not args.no_write and not args.quick:
        (REPO / "benchmarks" / "tag_world.json").write_text(dump)
    text = render(res)
    print(text)
    if not args.no_write and not args.quick:
        replace_section(REPO / "benchmarks" / "RESULTS.md", SECTION, text)
        print(f"written: benchmarks/RESULTS.md (section '{SECTION}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
