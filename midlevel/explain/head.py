"""Per-clip explanations: how much each concept pushed each prediction up or down.

For a linear head ``y_e = b_e + sum_k w[e, k] c_k`` (rating units) and a baseline concept vector
``c0`` (by default the mean predicted concept on the training split)::

    contribution[k, e] = w[e, k] * (c_k - c0_k)
    y_e = baseline_prediction_e + sum_k contribution[k, e],   baseline_prediction = head(c0)

exactly, because the head is linear. Class targets get contributions to each class's logit,
binary targets (tags) to their log-odds. A binary concept's value is its predicted
probability, so its weight is "per unit of probability" and its contribution
``w * (p - p_baseline)``.

Everything is a tidy table with one row per (clip, target, concept) and the columns
``clip, target, concept, concept_value, concept_baseline, weight, contribution,
baseline_prediction, prediction, concept_kind, output_kind`` (plus ``start, end, time`` for
windows over time); ``concept_kind`` is "regression" (rating units) or "binary"
(probability), ``output_kind`` "regression", "logit" (a class) or "binary" (log-odds).
A table with a class or binary unit also has ``baseline_probability`` and ``probability``
(the softmax over the class's every class, or the sigmoid; empty for a regression unit):
the probabilities ``predict`` reports, which a class's logit alone does not give.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
import pandas as pd

from midlevel.data.inputs import batch_items
from midlevel.errors import ExplainError
from midlevel.explain.names import clip_names
from midlevel.run import load_run

KEY_COLUMNS = ("clip", "start", "end", "time")
TABLE_COLUMNS = ["target", "concept", "concept_value", "concept_baseline", "weight",
                 "contribution", "baseline_prediction", "prediction", "concept_kind",
                 "output_kind"]


def class_targets_of(run) -> dict[str, list]:
    """``{target: classes}`` of a run's class targets."""
    return {t["name"]: list(t["classes"]) for t in run.targets
            if t.get("kind", "regression") == "class"}


def binary_targets_of(run) -> list[str]:
    """The names of a run's binary targets (tags)."""
    return [t["name"] for t in run.targets if t.get("kind", "regression") == "binary"]


def require_bottleneck(run) -> None:
    """:class:`ExplainError` if ``run`` has no concepts (a black box)."""
    if getattr(run.model, "kind", None) != "bottleneck" or not run.concept_names:
        raise ExplainError(
            f"{run.path}: a black-box run (mode '{run.mode}') has no concepts to explain with; "
            f"use the attribution commands (`midlevel compare --help`) for black boxes")


@dataclass
class LinearHead:
    """A bottleneck's concept -> output map in rating units.

    Attributes
    ----------
    concepts : list[str]
    outputs : list[str]
        Output units: a regression target's name, or ``name=class`` per class logit.
    weight : np.ndarray [shape=(n_outputs, n_concepts)]
        Output change per rating point of each concept (per unit of probability of a binary
        concept).
    bias : np.ndarray [shape=(n_outputs,)]
    kinds : list[str]
        ``"regression"``, ``"logit"`` (a class) or ``"binary"`` (a tag's log-odds) per output.
    targets : list[str]
        Target of each output unit.
    concept_kinds : list[str]
        ``"regression"`` (a rating) or ``"binary"`` (a probability) per concept.
    groups : list[str | None]
        Multi-label group of each output unit (None outside a group).
    """

    concepts: list[str]
    outputs: list[str]
    weight: np.ndarray
    bias: np.ndarray
    kinds: list[str]
    targets: list[str]
    concept_kinds: list[str] | None = None
    groups: list | None = None

    def __post_init__(self):
        self.concept_kinds = list(self.concept_kinds or ["regression"] * len(self.concepts))
        self.groups = list(self.groups or [None] * len(self.outputs))

    @classmethod
    def from_run(cls, run) -> "LinearHead":
        run = load_run(run)
        require_bottleneck(run)
        return cls.from_model(run.model)

    @classmethod
    def from_model(cls, model) -> "LinearHead":
        """From a ``ConceptBottleneck``: undo the concept and target z-scoring of its head."""
        import torch
        with torch.no_grad():
            w = model.head_layer.weight.double().cpu().numpy()
            b = model.head_layer.bias.double().cpu().numpy()
            c_mean = model.concept_mean.double().cpu().numpy()
            c_std = model.concept_std.double().cpu().numpy()
            t_mean = model.target_mean.double().cpu().numpy()
            t_std = model.target_std.double().cpu().numpy()
        weight = t_std[:, None] * w / c_std[None, :]
        bias = t_mean + t_std * (b - w @ (c_mean / c_std))
        kinds, owners, groups = [], [], []
        for t in model.targets:
            kind = t.get("kind", "regression")
            n = len(t["classes"]) if kind == "class" else 1
            kinds += [{"class": "logit"}.get(kind, kind)] * n
            owners += [t["name"]] * n
            groups += [t.get("group")] * n
        return cls(list(model.concept_names), list(model.output_names), weight, bias, kinds,
                   owners, list(getattr(model, "concept_kinds", None) or []) or None, groups)

    def predict(self, concepts) -> np.ndarray:
        """``(n, n_concepts)`` concept values -> ``(n, n_outputs)`` outputs (float64)."""
        c = np.asarray(concepts, dtype=np.float64).reshape(-1, len(self.concepts))
        return c @ self.weight.T + self.bias

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """``(n, n_outputs)`` head outputs -> probabilities of the binary units (sigmoid) and
        of the class units (softmax over their target's classes); NaN for regression units."""
        out = np.full(np.shape(outputs), np.nan)
        o = np.asarray(outputs, dtype=np.float64)
        for j, kind in enumerate(self.kinds):
            if kind == "binary":
                out[:, j] = expit(o[:, j])  # no overflow warning for large logits
        for t in dict.fromkeys(t for t, k in zip(self.targets, self.kinds) if k == "logit"):
            idx = [j for j, tt in enumerate(self.targets) if tt == t]
            z = o[:, idx] - o[:, idx].max(1, keepdims=True)
            out[:, idx] = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        return out

    def units(self, targets=None) -> list[int]:
        """Indices of the output units of ``targets`` (names of targets, units or multi-label
        groups; None = all)."""
        if targets is None:
            return list(range(len(self.outputs)))
        if isinstance(targets, str):  # one name, not its letters (audit 23b)
            targets = [targets]
        idx = []
        for name in targets:
            found = [j for j, (o, t, g) in enumerate(zip(self.outputs, self.targets,
                                                          self.groups)) if name in (o, t, g)]
            if not found:
                raise ExplainError(f"unknown target '{name}'; targets are "
                                    f"{list(dict.fromkeys(self.targets))}")
            idx += [j for j in found if j not in idx]
        return idx

    def weight_of(self, target: str, concept: str, versus: str | None = None) -> float:
        """The weight of ``concept`` for ``target``; for a class unit ``name=cls`` the weight of
        its logit relative to class ``versus`` (default: the first class), what a GLM /
        multinomial logit with that base class estimates. A softmax is unchanged by a shift
        shared by every class's logit, so only such differences have a meaning."""
        if concept not in self.concepts:
            return float("nan")
        k = self.concepts.index(concept)
        if target not in self.outputs:
            return float("nan")
        j = self.outputs.index(target)
        if self.kinds[j] == "logit":
            name = self.targets[j]
            base = f"{name}={versus}" if versus else None
            if base is not None and base not in self.outputs:
                return float("nan")
            first = self.outputs.index(base) if base else self.targets.index(name)
            return float(self.weight[j, k] - self.weight[first, k])
        return float(self.weight[j, k])

    def table(self) -> pd.DataFrame:
        """Tidy weights: target, concept, weight, plus the bias per target."""
        return pd.DataFrame([{"target": o, "concept": c, "weight": self.weight[j, k],
                              "bias": self.bias[j]}
                             for j, o in enumerate(self.outputs)
                             for k, c in enumerate(self.concepts)])


def contributions(concepts: pd.DataFrame, head: LinearHead, baseline, *,
                  targets=None) -> pd.DataFrame:
    """Per-concept contributions of every row of ``concepts``.

    Parameters
    ----------
    concepts : pd.DataFrame
        One row per clip (or window): the concept columns in rating units, plus optional key
        columns ``clip, start, end, time`` (an index named ``clip`` also counts).
    head : LinearHead
    baseline : pd.Series or mapping concept -> value, or array [shape=(n_concepts,)]
    targets : target or unit names to keep (default all).

    Returns
    -------
    pd.DataFrame, tidy: key columns, then ``TABLE_COLUMNS``; ``baseline_prediction +
    sum(contribution)`` over a row's concepts equals ``prediction``. A class target's rows
    are each class's own logit (``weight``: the head's row for it), not the difference from
    a base class that :meth:`LinearHead.weight_of` and ``coefficients.csv`` give.
    """
    frame = concepts.reset_index() if concepts.index.name == "clip" else concepts
    missing = [c for c in head.concepts if c not in frame.columns]
    if missing:
        raise ExplainError(f"concept column(s) {missing} missing; columns are "
                            f"{list(frame.columns)}")
    keys = [k for k in KEY_COLUMNS if k in frame.columns]
    c0 = _baseline_array(baseline, head.concepts)
    c = frame[head.concepts].to_numpy(np.float64)
    units = head.units(targets)
    w = head.weight[units]                                  # (n_units, n_concepts)
    contrib = w[None, :, :] * (c - c0)[:, None, :]          # (n_rows, n_units, n_concepts)
    base_pred = head.predict(c0)[0, units]                  # (n_units,)
    pred = base_pred[None, :] + contrib.sum(axis=2)         # exact by construction
    n_rows, n_units, n_c = contrib.shape
    out = {key: np.repeat(frame[key].to_numpy(), n_units * n_c) for key in keys}
    out.update({
        "target": np.tile(np.repeat(np.asarray(head.outputs, dtype=object)[units], n_c), n_rows),
        "concept": np.tile(np.asarray(head.concepts, dtype=object), n_rows * n_units),
        "concept_value": np.repeat(c, n_units, axis=0).ravel(),
        "concept_baseline": np.tile(c0, n_rows * n_units),
        "weight": np.tile(w.ravel(), n_rows),
        "contribution": contrib.ravel(),
        "baseline_prediction": np.tile(np.repeat(base_pred, n_c), n_rows),
        "prediction": np.repeat(pred.ravel(), n_c),
        "concept_kind": np.tile(np.asarray(head.concept_kinds, dtype=object), n_rows * n_units),
        "output_kind": np.tile(np.repeat(np.asarray(head.kinds, dtype=object)[units], n_c),
                               n_rows),
    })
    if any(head.kinds[j] != "regression" for j in units):  # over every unit of a class
        p0 = head.probabilities(head.predict(c0))[0, units]
        p = head.probabilities(head.predict(c))[:, units]
        out["baseline_probability"] = np.tile(np.repeat(p0, n_c), n_rows)
        out["probability"] = np.repeat(p.ravel(), n_c)
    return pd.DataFrame(out)


def _baseline_array(baseline, names: list[str]) -> np.ndarray:
    """The baseline concept values in ``names``' order; ExplainError naming what is missing
    or not a finite number (a NaN made every prediction NaN without a word; audit 23b)."""
    if baseline is None:
        raise ExplainError("baseline is None: give the concept values contributions are "
                           "measured from (e.g. baseline_concepts(run))")
    if isinstance(baseline, (pd.Series, dict)):
        missing = [n for n in names if n not in baseline]
        if missing:
            raise ExplainError(f"baseline lacks concept(s) {missing}")
        try:
            arr = np.array([float(baseline[n]) for n in names])
        except (TypeError, ValueError) as exc:
            raise ExplainError(f"baseline holds a value that is not a number ({exc})") from exc
    else:
        arr = np.asarray(baseline, dtype=np.float64).ravel()
        if arr.shape != (len(names),):
            raise ExplainError(f"baseline has {arr.size} values for {len(names)} concepts")
    bad = [n for n, v in zip(names, arr) if not np.isfinite(v)]
    if bad:
        raise ExplainError(f"baseline value of {', '.join(bad)} is not a finite number")
    return arr


def check_additivity(table: pd.DataFrame, *, atol: float = 1e-9) -> float:
    """Largest ``|baseline_prediction + sum(contribution) - prediction|`` over the rows of a
    contributions table; :class:`ExplainError` if above ``atol``."""
    keys = [k for k in KEY_COLUMNS if k in table.columns] + ["target"]
    g = table.groupby(keys, sort=False)
    err = (g["baseline_prediction"].first() + g["contribution"].sum()
           - g["prediction"].first()).abs()
    worst = float(err.max()) if len(err) else 0.0
    if worst > atol:
        raise ExplainError(f"contributions do not add up: largest error {worst:g}")
    return worst


# --------------------------------------------------------------------------- predictions


def baseline_concepts(run, *, train_predictions: pd.DataFrame | None = None, spec=None,
                      root=None, cache_dir=None, progress: bool = False) -> pd.Series:
    """Mean predicted concept on the training split (rating units), the contributions' zero.

    A sequential run stores its predicted training concepts with the model, so nothing is
    predicted; otherwise ``train_predictions`` or :meth:`midlevel.run.Run.predictions`.
    """
    run = load_run(run)
    require_bottleneck(run)
    if train_predictions is None and run.mode == "sequential" and run.head_design is not None:
        X, _, _ = run_design(run)
        return X.mean().rename("baseline")
    if train_predictions is None:
        train_predictions = run.predictions("train", spec=spec, root=root, cache_dir=cache_dir,
                                            progress=progress)
    return train_predictions[run.concept_names].mean().rename("baseline")


def explain_clips(run, audio, *, baseline, names=None, targets=None,
                  sample_rate: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Contributions of every concept to every target for whole clips.

    Parameters
    ----------
    run : a bottleneck run or its directory.
    audio : paths, mono waveform arrays or spectrograms (see ``Run.predict``: a waveform is
        normalized as a file is; a stereo one must be mixed down first).
    baseline : concept baseline (see :func:`baseline_concepts`).
    names : one clip name per input, all different (ArgumentError otherwise; default: the
        file names' stems, made unique, when every input is a path, else ``Run.predict``'s).
    targets : targets to explain (default all).
    sample_rate : the waveform arrays' rate in Hz (default: the front end's).

    Returns
    -------
    contributions : tidy table (see :func:`contributions`).
    predictions : ``Run.predict``'s table (index clip): the model's own predictions. Inputs
        it cannot use are skipped, named in ``predictions.attrs["errors"]``.
    """
    run = load_run(run)
    require_bottleneck(run)
    items = batch_items(audio)
    if names is None:
        names = clip_names(items) if all(isinstance(a, (str, os.PathLike)) for a in items) \
            else None
    pred = run.predict(list(items), names=names, sample_rate=sample_rate).set_index("clip")
    table = contributions(pred[run.concept_names], LinearHead.from_run(run), baseline,
                          targets=targets)
    warn_separated(table)
    return table, pred


def warn_separated(table: pd.DataFrame) -> list[str]:
    """Warn, naming each class or tag target whose explained logits pass the training
    head's separation line (``SEPARATED_LOGIT``): the concepts separate its classes on the
    training clips, the unpenalized head's weights grew without bound, and contributions
    of tens of thousands of logits say the head is certain, not how much a concept matters
    (audit 23c: 75,038 logits, two test clips given P = 1.0 for the wrong class, no note).
    Returns the targets named."""
    import logging

    from midlevel.training.head import SEPARATED_LOGIT
    logits = table[table["output_kind"] != "regression"]
    if logits.empty:
        return []
    largest = logits.groupby("target", sort=False)["prediction"].agg(lambda v: v.abs().max())
    named = [t for t, v in largest.items() if v > SEPARATED_LOGIT]
    if named:
        logging.getLogger("midlevel").warning(
            "%s: the head's logits reach %s: the concepts separate the classes on the training "
            "clips, so the unpenalized head's weights are as large as its solver let them grow; "
            "its probabilities are 0 or 1 and its contributions say it is certain, not how "
            "much each concept matters (a joint run starts from a penalized fit)",
            ", ".join(named), ", ".join(f"{largest[t]:.0f}" for t in named))
    return named


def run_design(run):
    """The design an independent or sequential head was fitted on, in rating units.

    Returns ``(X, Y, source)``: X the concepts (true ratings for an independent head, the
    model's predicted training concepts for a sequential one), Y the targets (class targets:
    codes), both indexed by clip; None for a joint run (its head is learned by gradient
    descent, on no stored design).
    """
    design = run.head_design
    if design is None:
        return None
    scales = run.info.get("scales") or {}
    concepts, targets = run.concept_names, run.target_names
    c_mean = np.asarray(scales.get("concept_mean", np.zeros(len(concepts))))
    c_std = np.asarray(scales.get("concept_std", np.ones(len(concepts))))
    t_mean = np.asarray(scales.get("target_mean", np.zeros(len(targets))))
    t_std = np.asarray(scales.get("target_std", np.ones(len(targets))))
    X = design[concepts] * c_std + c_mean
    Y = design[targets] * t_std + t_mean
    return X, Y, design.attrs.get("source", "stored head design")
