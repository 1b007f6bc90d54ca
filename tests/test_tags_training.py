"""Binary concepts and targets in models and training: logits, masked (balanced) BCE, mixed
bottlenecks, metrics per tag, every mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from midlevel.models.bottleneck import ConceptBottleneck, decode_targets, output_layout
from midlevel.training import fit, load_run
from midlevel.training.losses import (
    balance_weights, concept_loss, masked_bce, masked_mse, target_loss,
)
from midlevel.training.metrics import binary_metrics, metrics_table, score
from midlevel.testing.toy import FPS, toy_config, toy_tag_data

TINY = dict(width=0.125, last_kernel=1, dropout=0.0)


def test_concept_loss_without_binary_is_masked_mse():
    pred, true = torch.randn(5, 3), torch.randn(5, 3)
    true[1, 2] = float("nan")
    assert torch.equal(concept_loss(pred, true), masked_mse(pred, true))
    assert torch.equal(concept_loss(pred, true, torch.zeros(3, dtype=torch.bool)),
                       masked_mse(pred, true))


def test_mixed_concept_loss_pools_squared_error_and_bce_over_finite_labels():
    pred = torch.tensor([[1.0, 0.0], [2.0, 3.0]], requires_grad=True)
    true = torch.tensor([[1.5, 1.0], [float("nan"), float("nan")]])
    loss = concept_loss(pred, true, torch.tensor([False, True]))
    expected = (0.25 + np.log(2)) / 2   # two finite labels: (1.5 - 1)^2 and BCE(0, 1)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert (pred.grad[1] == 0).all()  # missing labels train nothing


def test_balanced_bce_weighs_positives_by_negatives_over_positives():
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, np.nan]], dtype=float)
    np.testing.assert_allclose(balance_weights(labels), [3.0, 2.0])
    logits, y = torch.zeros(4, 1), torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    plain = masked_bce(logits, y).item()
    balanced = masked_bce(logits, y, torch.tensor([3.0])).item()
    assert balanced == pytest.approx(plain * (3 + 3) / 4)


def test_binary_targets_get_one_logit_and_a_pooled_bce():
    targets = [{"name": "t"}, {"name": "m=a", "kind": "binary"}, {"name": "m=b", "kind": "binary"}]
    layout = output_layout(targets)
    assert [(k, s.stop - s.start) for _, k, s in layout] == [("regression", 1), ("binary", 1),
                                                             ("binary", 1)]
    out = torch.tensor([[0.0, 0.0, 0.0]])
    y = torch.tensor([[0.0, 1.0, float("nan")]])
    assert target_loss(out, y, layout).item() == pytest.approx(np.log(2) / 2, abs=1e-6)
    np.testing.assert_allclose(decode_targets(np.array([[2.0, 0.0, 50.0]]), layout),
                               [[2.0, 0.5, 1.0]])


def test_the_head_reads_probabilities_of_binary_concepts():
    torch.manual_seed(0)
    model = ConceptBottleneck(["r", "b"], [{"name": "y"}], backbone={"width": 0.125},
                              concept_kinds=["regression", "binary"]).eval()
    c = torch.tensor([[0.5, 2.0]])
    expected = model.head_layer(torch.tensor([[0.5, float(torch.sigmoid(torch.tensor(2.0)))]]))
    torch.testing.assert_close(model.head(c), expected)
    un = model.unscale(type(model(torch.zeros(1, 1, 40, 32)))(c, torch.zeros(1, 1)))
    assert un.concepts[0, 1].item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert "concept_kinds" in model.init_args


def test_binary_metrics_on_known_values():
    y = np.array([0, 0, 1, 1, np.nan])
    p = np.array([0.1, 0.6, 0.4, 0.9, 0.5])
    m = binary_metrics(y, p)
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.5) and m["f1"] == pytest.approx(0.5)
    assert m["n"] == 4
    assert m["r2"] == pytest.approx(1 - np.sum((p[:4] - y[:4]) ** 2) / 1.0)  # Brier skill
    assert binary_metrics(y, p, threshold=0.3)["f1"] == pytest.approx(0.8)  # 2 TP, 1 FP
    assert np.isnan(binary_metrics(np.array([1.0, 1.0]), np.array([0.2, 0.9]))["auc"])



def test_f1_without_any_positive_is_undefined_and_left_out_of_the_mean():
    """Audit 8b, item 4: a tag absent from every clip, predicted absent everywhere (accuracy
    1), got F1 0.0, the worst score, and that 0 entered mean:binary. F1 is 0/0 there: NaN,
    said in the note, and the mean is over the columns that have it. Positives on one side
    only still give 0."""
    none = binary_metrics(np.zeros(4), np.array([0.1, 0.2, 0.1, 0.3]))
    assert none["accuracy"] == 1.0 and np.isnan(none["f1"])
    assert "F1" in none["note"]
    assert binary_metrics(np.zeros(4), np.array([0.1, 0.9, 0.1, 0.3]))["f1"] == 0.0  # a FP
    assert binary_metrics(np.array([0, 1.0, 0, 0]), np.full(4, 0.1))["f1"] == 0.0    # a FN
    y = np.array([[0, 1.0], [0, 0], [0, 1], [0, 0]])
    p = np.array([[0.1, 0.8], [0.2, 0.3], [0.1, 0.9], [0.3, 0.6]])
    t = metrics_table("test", "target", ["absent", "b"], y, p, kinds=["binary", "binary"])
    mean = t.set_index("name").loc["mean"]
    assert mean["f1"] == pytest.approx(t.set_index("name").loc["b", "f1"])
    assert "f1 over 1 (not absent)" in mean["note"]


def test_metrics_table_macro_averages_each_group():
    y = np.array([[0, 1, 5.0], [1, 0, 6.0], [1, 1, 7.0], [0, 0, 8.0]])
    p = np.array([[0.2, 0.7, 5.0], [0.8, 0.3, 6.5], [0.9, 0.6, 7.0], [0.1, 0.2, 8.5]])
    t = metrics_table("test", "target", ["m=a", "m=b", "r"], y, p,
                      kinds=["binary", "binary", "regression"], groups={"m=a": "m", "m=b": "m"})
    assert list(t["name"]) == ["m=a", "m=b", "r", "mean:binary", "mean:ratings", "mean:m"]
    assert t.set_index("name").loc["mean:m", "auc"] == pytest.approx(1.0)
    assert np.isnan(t.set_index("name").loc["r", "auc"])
    assert score(t, ("target",)) == pytest.approx(t["r2"].iloc[:3].mean())


@pytest.mark.parametrize("mode", ["blackbox", "independent", "sequential", "joint"])
def test_every_mode_trains_mixed_concepts_and_tag_targets(tmp_path, mode, one_torch_thread):
    table, features, columns = toy_tag_data()
    run = fit(table, features, columns, tmp_path / mode,
              toy_config(mode=mode, epochs=2, balance="balanced"), fps=FPS, progress=False)
    m = run.metrics
    tags = m[m["name"].isin(["mood=up", "mood=down"])]
    assert tags["auc"].notna().all() and tags["pr_auc"].notna().all()
    assert {"mean:mood"} <= set(m["name"])
    pred = run.predict([features["c030"], features["c031"]])
    assert pred[["mood=up", "mood=down"]].stack().between(0, 1).all()
    if mode != "blackbox":
        assert pred[["b0", "b1"]].stack().between(0, 1).all()
        assert m[(m["kind"] == "concept") & (m["name"] == "b0")]["auc"].notna().all()
    again = load_run(run.path)
    assert again.model.concept_kinds == run.model.concept_kinds
    np.testing.assert_allclose(again.predict([features["c030"]]).drop(columns="clip"),
                               pred.iloc[:1].drop(columns="clip"))


def test_independent_head_is_the_logistic_glm_of_the_true_tags(tmp_path, one_torch_thread):
    from sklearn.linear_model import LogisticRegression
    table, features, columns = toy_tag_data(n_clips=80)
    run = fit(table, features, columns, tmp_path / "ind", toy_config(mode="independent",
                                                                    epochs=1), fps=FPS,
              progress=False)
    train = table[table["split"] == "train"]
    x = train[["k0", "b0", "b1"]].to_numpy()
    clf = LogisticRegression(C=np.inf, tol=1e-8, max_iter=5000).fit(x, train["mood=up"])
    from midlevel.explain.head import LinearHead
    head = LinearHead.from_run(run)
    j = head.outputs.index("mood=up")
    np.testing.assert_allclose(head.weight[j], clf.coef_[0], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("target", [
    {"name": "dreamy", "kind": "binary"},
    {"name": "scene", "kind": "class", "classes": ["calm", "bright", "busy"]}])
def test_a_head_on_separable_labels_is_named_and_the_joint_start_stays_bounded(target, caplog):
    """Audit 10c #1: a tag the concepts separate on the training clips started the joint
    head with a weight of 634 (others <= 5.4), its probabilities ~0 on every clip and F1 0,
    without a word: sklearn called the unpenalized fit converged, so no warning fired."""
    import logging

    from midlevel.training.head import SEPARATED_LOGIT, fit_head
    rng = np.random.default_rng(0)
    X = rng.normal(size=(42, 4))
    y = (X[:, 0] > 0.3).astype(float) if target["kind"] == "binary" else \
        np.digitize(X[:, 0], [-0.4, 0.4]).astype(float)  # classes separated by concept 0
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        w, b = fit_head(X, y[:, None], [target])
    assert f"target '{target['name']}': the concepts separate its classes" in caplog.text
    assert "large and uncertain" in caplog.text
    assert np.abs(X @ w.T + b).max() > SEPARATED_LOGIT  # the maximum-likelihood head: as is
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        w, b = fit_head(X, y[:, None], [target], start=True)
    assert "the joint head starts from an L2-penalized fit for it instead" in caplog.text
    assert np.abs(X @ w.T + b).max() < 10
    # labels that overlap: no warning, the same unpenalized fit either way
    y_noisy = ((X[:, 0] + rng.normal(size=42)) > 0.3).astype(float)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="midlevel"):
        plain = fit_head(X, y_noisy[:, None], [{"name": "t", "kind": "binary"}])
        started = fit_head(X, y_noisy[:, None], [{"name": "t", "kind": "binary"}], start=True)
    assert caplog.text == "" and np.array_equal(plain[0], started[0])


def test_the_unpenalized_head_uses_no_deprecated_sklearn_option(monkeypatch):
    """scikit-learn 1.8 deprecates penalty=None (removed in 1.10, where it would fail; the
    fits hid the warning): the unpenalized fits use C=inf, the same fit (0.0 apart on 1.9)."""
    import sklearn.linear_model as linear_model

    from midlevel.explain.evidence import _logit_coef
    from midlevel.training.head import fit_head
    real, calls = linear_model.LogisticRegression, []

    def checked(*args, **kwargs):
        calls.append(kwargs)
        assert "penalty" not in kwargs, kwargs
        return real(*args, **kwargs)
    monkeypatch.setattr(linear_model, "LogisticRegression", checked)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = ((X[:, 0] + rng.normal(size=80)) > 0).astype(float)
    fit_head(X, y[:, None], [{"name": "t", "kind": "binary"}])
    _logit_coef(X, y.astype(int), 2)
    assert len(calls) == 2 and all(c["C"] == np.inf for c in calls)
