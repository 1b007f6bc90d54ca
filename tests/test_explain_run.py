"""The model-based path: a tiny small-preset run on the synthetic world, explained end to end
(statistics against a direct statsmodels fit of the run's design, exact additivity against the
model's own predictions, over-time tables, the commands and their files)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from conftest import TINY_RUN, train_tiny_runs
from midlevel.cli import main
from midlevel.errors import TrainingError
from midlevel.explain.coefficients import run_coefficients
from midlevel.explain.head import LinearHead, baseline_concepts, check_additivity, explain_clips
from midlevel.explain.timeline import contributions_over_time


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain_world")
    spec, cache, runs = train_tiny_runs(root, n_clips=32, seed=11, duration=4.0,
                                        modes=("sequential", "joint"))
    truth = json.loads((root / "data" / "ground_truth.json").read_text())
    return {"root": root, "spec": spec, "cache": cache, "runs": runs, "truth": truth}


def _train_predictions(world, mode):
    """The run's predictions on the training split, computed once per module."""
    cache = world.setdefault("train_predictions", {})
    if mode not in cache:
        cache[mode] = world["runs"][mode].predictions("train", cache_dir=world["cache"])
    return cache[mode]


def _audio(world, n=2):
    return sorted((world["root"] / "data" / "audio").glob("*.wav"))[:n]


@pytest.fixture(scope="module")
def independent(world):
    from midlevel.training import train
    return train(world["spec"], world["root"] / "independent", mode="independent",
                 config={**TINY_RUN, "mode": "independent"}, cache_dir=world["cache"],
                 progress=False)


def _head_weights(run, table):
    """The head's weight of every row, read straight from the model's parameters."""
    w = run.model.head_layer.weight.detach().double().numpy()
    c_std = run.model.concept_std.double().numpy()
    t_std = run.model.target_std.double().numpy()
    per_point = t_std[:, None] * w / c_std[None, :]
    units = list(run.model.output_names)
    return np.array([per_point[units.index(t), run.concept_names.index(c)]
                     for t, c in zip(table["target"], table["concept"])])


@pytest.mark.parametrize("mode", ["independent", "sequential", "joint"])
def test_what_the_model_does_is_the_head(world, independent, mode):
    run = independent if mode == "independent" else world["runs"][mode]
    result = run_coefficients(run, data="ratings", leakage=False)
    t = result.table
    assert len(t) == len(run.concept_names) * len(run.target_names)
    np.testing.assert_allclose(t["model_weight"], _head_weights(run, t), rtol=0, atol=1e-6)
    np.testing.assert_allclose(t["model_std_weight"], t["model_weight"] * t["std_scale"])
    assert (t["mode"] == mode).all()


def test_what_the_data_show_is_a_robust_fit_of_the_ratings(world):
    """Every mode gets the same answer from the ratings: HC3 OLS of targets on concept ratings,
    whatever the CNN predicted."""
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    seq, joint = world["runs"]["sequential"], world["runs"]["joint"]
    a = run_coefficients(seq, data="ratings", leakage=False).table
    b = run_coefficients(joint, data="ratings", leakage=False).table
    cols = ["weight", "se", "ci_low", "ci_high", "p_value"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    table = load_annotations(load_spec(world["spec"]))
    target = seq.target_names[1]
    direct = sm.OLS(table[target].to_numpy(),
                    sm.add_constant(table[seq.concept_names].to_numpy())).fit(cov_type="HC3",
                                                                               use_t=True)
    rows = a[a["target"] == target].set_index("concept").loc[seq.concept_names]
    np.testing.assert_allclose(rows["weight"], direct.params[1:], rtol=1e-8)
    np.testing.assert_allclose(rows["se"], direct.bse[1:], rtol=1e-8)
    np.testing.assert_allclose(rows[["ci_low", "ci_high"]], direct.conf_int()[1:], rtol=1e-8)
    assert (rows["method"] == "OLS, HC3").all()
    assert a.attrs["method"].startswith("OLS of the targets on the concept ratings")


def test_calibrated_answer_and_leakage_on_held_out_clips(world):
    """Audit 12b #3: on the world's held-out clips (about 10, for 8 coefficients of the
    calibration) most bootstrap resamples have fewer distinct clips than coefficients, whose
    minimum-norm fits gave intervals that moved with the units: refused, saying so. A copy
    of the spec holding out 60 % of the clips gives the answer."""
    import yaml

    from conftest import TINY_RUN
    from midlevel.errors import ExplainError
    from midlevel.training import train
    with pytest.raises(ExplainError, match="too few held-out clips"):
        run_coefficients(world["runs"]["joint"], data="calibrated", n_boot=100,
                         cache_dir=world["cache"])
    raw = yaml.safe_load(world["spec"].read_text())
    raw["splits"] = {"seed": 0, "test": {"fraction": 0.3}, "validation": {"fraction": 0.3}}
    spec = world["spec"].parent / "spec_held_out.yaml"
    spec.write_text(yaml.safe_dump(raw))
    run = train(spec, world["root"] / "joint_held_out", mode="joint", cache_dir=world["cache"],
                config={**TINY_RUN, "mode": "joint"}, progress=False)
    result = run_coefficients(run, data="calibrated", n_boot=100, cache_dir=world["cache"])
    t = result.table
    assert (t["method"] == "calibrated OLS, bootstrap").all()
    assert t.attrs["method"].startswith("regression calibration on held-out predictions")
    assert result.summary_lines()[2].startswith("what the data show: regression calibration")
    assert (t["ci_low"] < t["ci_high"]).all()  # coverage is tested on simulated data
    n_held = int(sum(load_split(spec, s) for s in ("validation", "test")))
    assert (t["n"] == n_held).all()
    leak = result.leakage
    assert set(leak["split"]) == {"validation", "test"}
    assert set(leak["target"]) == set(run.target_names)
    assert leak[["r_predicted_concepts", "r_true_concepts"]].notna().all().all()


def load_split(spec, split):
    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    table = load_annotations(load_spec(spec))
    return int((table["split"] == split).sum())


def test_contributions_add_up_to_the_models_prediction(world):
    for mode, run in world["runs"].items():
        train = _train_predictions(world, mode)
        # sequential: from the stored design; joint: from the predictions
        baseline = baseline_concepts(run, **({} if mode == "sequential" else
                                              {"train_predictions": train}))
        np.testing.assert_allclose(baseline, train[run.concept_names].mean(), rtol=1e-5)
        table, pred = explain_clips(run, _audio(world), baseline=baseline)
        assert check_additivity(table, atol=1e-9) < 1e-9
        ours = table.groupby(["clip", "target"])["prediction"].first().unstack()
        np.testing.assert_allclose(ours.loc[pred.index, run.target_names],
                                   pred[run.target_names], atol=1e-4)


def test_contributions_over_time(world):
    run = world["runs"]["sequential"]
    baseline = baseline_concepts(run)
    table, spec = contributions_over_time(run, _audio(world, 1)[0], baseline=baseline,
                                          hop=0.25, window=2.0)
    times = np.sort(table["time"].unique())
    assert len(times) == 9 and times[0] == pytest.approx(1.0, abs=0.05)
    assert times[-1] == pytest.approx(3.0, abs=0.05)
    assert spec.shape[0] == 149
    assert check_additivity(table, atol=1e-9) < 1e-9


def test_commands_write_their_files(world, tmp_path, capsys):
    seq = world["runs"]["sequential"]
    out = tmp_path / "coef"
    assert main(["coefficients", str(seq.path), "--out", str(out), "--correction", "holm",
                 "--data", "ratings", "--cache", str(world["cache"]), "--quiet"]) == 0
    for name in ("coefficients.csv", "coefficients.png", "coefficients_summary.txt"):
        assert (out / name).stat().st_size > 0
    table = pd.read_csv(out / "coefficients.csv", keep_default_na=False)
    assert {"target", "concept", "model_weight", "model_std_weight", "weight", "std_weight",
            "se", "ci_low", "ci_high", "p_value", "p_adjusted", "method", "r2", "flag",
            "flag_reason"} <= set(table.columns)
    summary = (out / "coefficients_summary.txt").read_text()
    assert "OLS Regression Results" in summary and "departs from what the data show" in summary
    assert (out / "leakage.csv").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "what the model does" in printed and "what the data show" in printed

    out = tmp_path / "explain"
    audio = [str(p) for p in _audio(world)]
    assert main(["explain", str(world["runs"]["joint"].path), *audio, "--out", str(out),
                 "--cache", str(world["cache"]), "--window", "2", "--hop", "0.5",
                 "--set", f"{seq.concept_names[0]}=8", "--intervention-split", "test",
                 "--repeats", "3", "--targets", *seq.target_names[:2], "--quiet"]) == 0
    clip = _audio(world)[0].stem
    for name in ("contributions.csv", "predictions.csv", "baseline.csv", "timeline.csv",
                 "dataset_contributions_train.csv", "interventions.csv",
                 "intervention_curve.csv", "intervention_curve.png",
                 f"{clip}_contributions.png", f"{clip}_dataset.png", f"{clip}_timeline.png"):
        assert (out / name).stat().st_size > 0, name
    contrib = pd.read_csv(out / "contributions.csv")
    assert check_additivity(contrib, atol=1e-6) < 1e-6
    assert set(contrib["target"]) == set(seq.target_names[:2])
    assert set(contrib["clip"]) == {p.stem for p in _audio(world)}
    assert "explained 2 clip(s)" in capsys.readouterr().out
    # a stored baseline, no dataset view, no timeline: nothing predicted but the clips
    again = tmp_path / "again"
    assert main(["explain", str(world["runs"]["joint"].path), audio[0], "--out", str(again),
                 "--baseline", str(out / "baseline.csv"), "--dataset-split", "none",
                 "--no-timeline", "--quiet"]) == 0
    assert sorted(p.name for p in again.iterdir()) == [  # with the lock and the file list
        ".midlevel.lock", "baseline.csv", "contributions.csv", "explain_files.json",
        "predictions.csv", f"{clip}_contributions.png"]
    first = contrib[contrib["clip"] == clip].reset_index(drop=True)
    second = pd.read_csv(again / "contributions.csv")
    second = second[second["target"].isin(first["target"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)


def test_blackbox_run_gets_pointed_to_attributions(world, tmp_path, capsys, monkeypatch):
    import midlevel.run
    from midlevel.models.bottleneck import build_model
    from midlevel.run import load_run

    # a black-box run without training one: the sequential run with a BlackBox model
    run = load_run(world["runs"]["sequential"].path)
    run.model = build_model("blackbox", [], run.targets, run.model.init_args["backbone"]).eval()
    run.mode, run.concept_names = "blackbox", []
    monkeypatch.setattr(midlevel.run, "load_run", lambda path: run)
    assert main(["coefficients", str(run.path), "--out", str(tmp_path / "c")]) == 1
    assert "midlevel compare" in capsys.readouterr().err
    audio = str(_audio(world, 1)[0])
    import midlevel.workflows.explain_attributions as blackbox
    calls = []

    def fake(run_, audio_paths, out_dir, **options):
        calls.append((run_.mode, list(audio_paths), str(out_dir), options))
        return blackbox.ExplainResult()

    monkeypatch.setattr(blackbox, "explain_blackbox", fake)
    assert main(["explain", str(run.path), audio, "--out", str(tmp_path / "e"),
                 "--targets", "valence", "--quiet"]) == 0
    [(mode, paths, out, options)] = calls
    assert mode == "blackbox" and paths == [audio] and out == str(tmp_path / "e")
    assert options["targets"] == ["valence"] and options["progress"] is False


def test_help_of_every_command(capsys):
    for command in ("coefficients", "explain"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert command in capsys.readouterr().out


def test_a_class_no_clip_has_is_not_the_base_of_the_model_weight(world, tmp_path):
    """Audit 8b, item 1: with a declared first class that no clip has, the data's rows are
    relative to the first class present and the model's weight was relative to the declared
    first one: two contrasts under one label, and false compensation flags. Both are now
    relative to the class named in ``versus``."""
    import yaml
    from midlevel.training import train
    data = world["root"] / "data"
    table = pd.read_csv(data / "annotations.csv")
    table["mood"] = np.where(table["valence"] > table["valence"].median(), "high", "low")
    table[["clip_id", *json.loads((data / "ground_truth.json").read_text())["concepts"],
           "mood"]].to_csv(data / "annotations_unused.csv", index=False)
    spec = yaml.safe_load((data / "spec.yaml").read_text())
    spec["tables"][0]["path"] = "annotations_unused.csv"
    spec["targets"] = {"mood": {"column": "mood", "type": "class",
                                "classes": ["jazz", "low", "high"]}}
    (data / "spec_unused.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run = train(data / "spec_unused.yaml", tmp_path / "unused", mode="independent",
                config={**TINY_RUN, "epochs": 1, "mode": "independent"}, cache_dir=world["cache"],
                progress=False)
    t = run_coefficients(run, data="ratings").table
    assert set(t["target"]) == {"mood=high"} and (t["versus"] == "low").all()
    head = LinearHead.from_run(run)
    low, high = head.outputs.index("mood=low"), head.outputs.index("mood=high")
    jazz = head.outputs.index("mood=jazz")
    for _, row in t.iterrows():
        k = head.concepts.index(row["concept"])
        assert row["model_weight"] == pytest.approx(head.weight[high, k] - head.weight[low, k],
                                                    abs=1e-9)
        assert abs(head.weight[jazz, k] - head.weight[low, k]) > 1e-6  # the old base differs


def test_class_target_run(world, tmp_path):
    """A class target: GLM statistics and contributions to its logits, exact additivity."""
    import yaml
    from midlevel.training import train
    data = world["root"] / "data"
    table = pd.read_csv(data / "annotations.csv")
    table["mood"] = np.where(table["valence"] > table["valence"].median(), "high", "low")
    table[["clip_id", *json.loads((data / "ground_truth.json").read_text())["concepts"],
           "energy", "mood"]].to_csv(data / "annotations_class.csv", index=False)
    spec = yaml.safe_load((data / "spec.yaml").read_text())
    spec["tables"][0]["path"] = "annotations_class.csv"
    spec["targets"] = {"energy": spec["targets"]["energy"],
                       "mood": {"column": "mood", "type": "class", "classes": ["low", "high"]}}
    (data / "spec_class.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run = train(data / "spec_class.yaml", tmp_path / "cls", mode="independent",
                config={**TINY_RUN, "epochs": 1, "mode": "independent"}, cache_dir=world["cache"],
                progress=False)
    result = run_coefficients(run, data="ratings")
    t = result.table.set_index(["target", "concept"])
    assert (t.loc["mood=high", "method"] == "binomial GLM").all()   # each row's estimator
    assert (t.loc["energy", "method"] == "OLS, HC3").all()
    # audit 20c: the summary counts a class target's rows as rows, not as targets
    assert "independent run, 7 concepts x 2 target rows (a class target: one per class " \
        "against its base)" in result.summary_lines()[0]
    head = LinearHead.from_run(run)
    # what the model does: the logit difference of the two classes, exactly
    for c in run.concept_names:
        k = run.concept_names.index(c)
        assert t.loc[("mood=high", c), "model_weight"] == pytest.approx(
            head.weight[2, k] - head.weight[1, k], abs=1e-9)
    baseline = baseline_concepts(run, cache_dir=world["cache"])
    table, pred = explain_clips(run, _audio(world), baseline=baseline, targets=["mood"])
    assert set(table["target"]) == {"mood=low", "mood=high"}
    assert check_additivity(table) < 1e-9
    logits = table.groupby(["clip", "target"])["prediction"].first().unstack()
    probs = np.exp(logits.to_numpy())
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, pred.loc[logits.index, list(logits.columns)], atol=1e-4)
    # audit 20c: a spec copy listing the classes in another order scores and explains the
    # same classes (read by name); a class the run never saw is refused, by name
    spec["targets"]["mood"]["classes"] = ["high", "low"]
    (data / "spec_class_reordered.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    own, other = run.evaluate(splits=("train", "test")), run.evaluate(
        data / "spec_class_reordered.yaml", splits=("train", "test"))
    pd.testing.assert_frame_equal(own, other)
    again = run_coefficients(run, data="ratings", spec=data / "spec_class_reordered.yaml")
    pd.testing.assert_frame_equal(again.table, result.table)
    spec["targets"]["mood"]["classes"] = ["low", "mid", "high"]
    (data / "spec_class_more.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(TrainingError, match=r"'mood' lists class\(es\) \['mid'\]"):
        run.evaluate(data / "spec_class_more.yaml")


def test_a_concept_constant_in_training_is_flagged_as_untrainable_not_compensating(world):
    """Audit 12b #7: a concept whose ratings do not vary among the training clips was
    flagged "compensation" (its weight far from the data's interval, which the held-out
    clips' spread gives), as if the model over- or under-used it; training had nothing to
    learn its effect from. Every row of it is now ``no training spread``, counted apart."""
    import yaml

    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    from midlevel.explain.flags import NO_TRAINING_SPREAD
    from midlevel.training import train
    root = world["spec"].parent
    raw = yaml.safe_load(world["spec"].read_text())
    raw.pop("segments", None)
    raw["tables"] = [{**raw["tables"][0], "path": "annotations_flat_dissonance.csv"}]
    spec = root / "spec_flat_dissonance.yaml"
    spec.write_text(yaml.safe_dump(raw))
    ratings = pd.read_csv(root / "annotations.csv", dtype={"clip_id": str})
    ratings.to_csv(root / "annotations_flat_dissonance.csv", index=False)
    splits = load_annotations(load_spec(spec))["split"]
    in_training = ratings["clip_id"].map(splits).eq("train")
    ratings.loc[in_training, "dissonance"] = 4.5
    ratings.to_csv(root / "annotations_flat_dissonance.csv", index=False)
    run = train(spec, world["root"] / "flat_dissonance", mode="sequential",
                cache_dir=world["cache"], config={**TINY_RUN, "mode": "sequential"},
                progress=False)
    result = run_coefficients(run, data="ratings", leakage=False)
    t = result.table
    flat = t["concept"] == "dissonance"
    assert (t.loc[flat, "flag"] == NO_TRAINING_SPREAD).all()
    assert t.loc[flat, "flag_reason"].str.contains("do not vary \\(all 4.5\\)").all()
    assert not t.loc[~flat, "flag"].eq(NO_TRAINING_SPREAD).any()
    lines = "\n".join(result.summary_lines(most=50))
    assert (f"{int(flat.sum())} model weights are on concepts whose ratings do not vary "
            f"among the training clips (dissonance)") in lines
    departs = lines.split("\n")
    header = next(ln for ln in departs if "depart" in ln)
    assert NO_TRAINING_SPREAD not in header


def test_coefficients_lock_their_folder_and_leave_no_earlier_tables_files(world, independent,
                                                                          tmp_path):
    """Audit 13b #6: two coefficients into one folder at once could leave one's table beside
    the other's figure, and an independent run's table beside a joint run's leakage.csv
    (a run without a leakage diagnostic writes none): the folder is locked while written,
    and an earlier table's files go first."""
    from midlevel.io import folder_lock
    out = tmp_path / "co"
    assert main(["coefficients", str(world["runs"]["joint"].path), "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "leakage.csv").exists()
    assert main(["coefficients", str(independent.path), "--out", str(out), "--quiet"]) == 0
    assert not (out / "leakage.csv").exists()
    assert (out / "coefficients.csv").exists() and (out / "coefficients.png").exists()
    with folder_lock(out):
        assert main(["coefficients", str(independent.path), "--out", str(out),
                     "--quiet"]) == 2


def test_auto_falls_back_to_the_ratings_when_the_calibration_cannot_fit(world, monkeypatch):
    """Re-audit 13 R3: --data auto chose regression calibration on enough held-out clips for
    one fit but too few for its bootstrap ('only 220 of 1000 resamples could be fitted'),
    and stopped, while --data ratings answered: it now takes the ratings, saying why."""
    from midlevel.errors import ExplainError
    from midlevel.explain import evidence

    def cannot(*args, **kwargs):
        raise ExplainError("regression calibration: only 220 of 1000 bootstrap resamples "
                           "could be fitted; too few held-out clips")
    monkeypatch.setattr(evidence, "auto_method", lambda *a, **k: ("calibrated", "chosen"))
    monkeypatch.setattr(evidence, "calibrated_fit", cannot)
    result = run_coefficients(world["runs"]["joint"], data="auto", leakage=False,
                              cache_dir=world["cache"])
    assert result.table.attrs["data"] == "ratings"
    assert "could not fit (regression calibration: only 220" in \
        result.table.attrs["data_choice"]
    assert (result.table["method"] == "OLS, HC3").all()
    with pytest.raises(ExplainError, match="only 220"):
        run_coefficients(world["runs"]["joint"], data="calibrated", leakage=False,
                         cache_dir=world["cache"])


def test_floors_and_ceilings_are_judged_on_the_scales_of_the_spec_the_ratings_come_from(
        world, tmp_path):
    """Second re-audit 14: with --spec, the ratings come from that spec, but their floors and
    ceilings were judged on the run's stored scales. A copy of the spec declaring every
    target's scale to start at the lowest rating seen puts those ratings at the bottom."""
    from pathlib import Path

    import yaml

    from midlevel.data.annotations import load_annotations
    from midlevel.data.spec import load_spec
    from midlevel.explain.caveats import declared_scales
    run = world["runs"]["sequential"]
    raw = yaml.safe_load(Path(world["spec"]).read_text())
    table = load_annotations(load_spec(world["spec"]))
    target = run.target_names[0]
    low = float(table[target].min())
    raw["targets"][target]["scale"] = [low, 100.0]
    raw["root"] = str(Path(world["spec"]).parent.resolve() / raw.get("root", "."))
    copy = tmp_path / "spec.yaml"
    copy.write_text(yaml.safe_dump(raw))
    assert declared_scales(run)[target] != (low, 100.0)
    assert declared_scales(run, copy)[target] == (low, 100.0)


def test_reliabilities_the_spec_declares_correct_the_ratings_fit(world, tmp_path, capsys):
    """A copy of the spec declaring two concepts' reliabilities: the ratings estimator becomes
    the corrected one (the same numbers as corrected_fit on the annotations), the summary says
    what it assumes; --reliability replaces the spec's, 'none' turns it off, and a bad item
    is refused naming it."""
    from pathlib import Path

    import yaml

    from midlevel.explain.evidence import rated_design
    from midlevel.explain.reliability import corrected_fit
    run = world["runs"]["sequential"]
    raw = yaml.safe_load(Path(world["spec"]).read_text())
    first, second = run.concept_names[:2]
    raw["concepts"][first]["reliability"] = 0.9
    raw["concepts"][second]["reliability"] = 0.8
    raw["root"] = str(Path(world["spec"]).parent.resolve() / raw.get("root", "."))
    copy = tmp_path / "spec.yaml"
    copy.write_text(yaml.safe_dump(raw))
    result = run_coefficients(run, spec=copy, data="ratings", leakage=False, n_boot=60)
    table = result.table
    assert (table["method"] == "corrected OLS, bootstrap").all()
    X, Y = rated_design(run.annotations(copy), run.concept_names, run.target_names)
    direct = corrected_fit(X, Y, {first: 0.9, second: 0.8}, n_boot=60).table
    np.testing.assert_allclose(table["weight"], direct["weight"], rtol=1e-12)
    lines = "\n".join(result.summary_lines())
    assert (f"declared reliabilities ({first} 0.9, {second} 0.8)" in lines
            or f"declared reliabilities ({second} 0.8, {first} 0.9)" in lines)
    assert "only 32 clips for the correction of 7 concepts" in lines
    plain = run_coefficients(run, spec=copy, data="ratings", leakage=False,
                             reliability="none")
    assert (plain.table["method"] == "OLS, HC3").all()
    same = run_coefficients(run, spec=copy, data="ratings", leakage=False, n_boot=60,
                            reliability={})   # nothing replaced: the spec's
    np.testing.assert_allclose(same.table["weight"], table["weight"], rtol=1e-12)
    out = tmp_path / "out"
    assert main(["coefficients", str(run.path), "--spec", str(copy), "--data", "ratings",
                 "--out", str(out), "--quiet", "--bootstrap", "60",
                 "--reliability", f"{first}=0.7"]) == 0
    written = pd.read_csv(out / "coefficients.csv")
    assert (written["method"] == "corrected OLS, bootstrap").all()
    printed = capsys.readouterr().out     # the option replaces the first, the spec's second
    assert (f"declared reliabilities ({first} 0.7, {second} 0.8)" in printed
            or f"declared reliabilities ({second} 0.8, {first} 0.7)" in printed)
    assert main(["coefficients", str(run.path), "--spec", str(copy), "--data", "ratings",
                 "--out", str(out), "--quiet", "--reliability", "none"]) == 0
    assert (pd.read_csv(out / "coefficients.csv")["method"] == "OLS, HC3").all()
    capsys.readouterr()
    assert main(["coefficients", str(run.path), "--out", str(out), "--quiet",
                 "--reliability", "nosuch=0.9"]) != 0
    assert "--reliability: 'nosuch' is not a concept" in capsys.readouterr().err
    assert main(["coefficients", str(run.path), "--out", str(out), "--quiet",
                 "--reliability", f"{first}"]) != 0
    assert f"--reliability {first}: expected CONCEPT=R" in capsys.readouterr().err
