"""The concept bottleneck (spectrogram -> concepts -> linear head -> targets) and the black box.

Both models take raw front-end output ``(batch, 1, n_bands, n_frames)`` and standardize it
themselves (the training split's mean and std are buffers), and both return a
:class:`ModelOutput`. Their forward is split into named steps::

    h = model.features(x)      # (batch, n_features)   normalize + backbone
    c = model.concepts(h)      # (batch, n_concepts)   bottleneck only
    y = model.head(c or h)     # (batch, n_outputs)    linear

Outputs are in scaled units (concepts and regression targets z-scored with the training split's
mean and std, stored as buffers); :meth:`unscale` gives rating units back. A regression target
has one output unit, a class target one logit per class (softmax over them), a binary target
(a tag) one logit; the unit names are ``model.output_names``.

A binary concept (``concept_kinds``) is predicted as a logit; the head reads its probability
``sigmoid(logit)`` (:class:`ConceptActivation`) beside the z-scored ratings, so a head weight of
a binary concept is "per unit of predicted probability", and :meth:`unscale` gives the
probability.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import expit

import torch
from torch import nn

from midlevel.models.backbone import Backbone, Standardize


class ModelOutput(NamedTuple):
    """concepts: ``(batch, n_concepts)`` or None (black box); targets: ``(batch, n_outputs)``."""

    concepts: torch.Tensor | None
    targets: torch.Tensor


def output_names(targets: list[dict]) -> list[str]:
    """Names of the output units: ``name`` per regression or binary target, ``name=class`` per
    class."""
    names = []
    for t in targets:
        if t.get("kind", "regression") == "class":
            names += [f"{t['name']}={c}" for c in t["classes"]]
        else:
            names.append(t["name"])
    return names


def output_layout(targets: list[dict]) -> list[tuple[int, str, slice]]:
    """(target column, kind, slice of output units) per target."""
    layout, start = [], 0
    for j, t in enumerate(targets):
        kind = t.get("kind", "regression")
        n = len(t["classes"]) if kind == "class" else 1
        layout.append((j, kind, slice(start, start + n)))
        start += n
    return layout


def decode_targets(outputs: np.ndarray, layout: list[tuple]) -> np.ndarray:
    """``(n, n_outputs)`` unscaled outputs -> ``(n, n_targets)`` values (class: argmax code;
    binary: the probability ``sigmoid(logit)``)."""
    out = np.empty((outputs.shape[0], len(layout)))
    for j, kind, s in layout:
        if kind == "class":
            out[:, j] = outputs[:, s].argmax(1)
        elif kind == "binary":
            out[:, j] = expit(outputs[:, s.start])  # no overflow warning for large logits
        else:
            out[:, j] = outputs[:, s.start]
    return out


class ConceptActivation(nn.Module):
    """What the head reads of the concept layer: z-scored ratings as they are, binary concepts
    as probabilities ``sigmoid(logit)``. ``binary``: ``(n_concepts,)`` bool (not stored in the
    state: it follows from the model's constructor arguments)."""

    def __init__(self, binary: list[bool]):
        super().__init__()
        self.register_buffer("binary", torch.tensor(binary, dtype=torch.bool), persistent=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return torch.where(self.binary, self.sigmoid(c), c)


class _Model(nn.Module):
    """Shared part: standardization, backbone, output scales, names."""

    def __init__(self, concepts: list[str], targets: list[dict], backbone: dict,
                 concept_kinds: list[str] | None = None,
                 concept_groups: list[str | None] | None = None):
        super().__init__()
        self.concept_names = list(concepts)
        self.concept_kinds = list(concept_kinds or ["regression"] * len(self.concept_names))
        self.concept_groups = list(concept_groups or [None] * len(self.concept_names))
        self.targets = [dict(t) for t in targets]
        self.target_names = [t["name"] for t in self.targets]
        self.output_names = output_names(self.targets)
        self.init_args = {"concepts": self.concept_names, "targets": self.targets,
                          "backbone": dict(backbone)}
        if "binary" in self.concept_kinds:
            self.init_args.update(concept_kinds=self.concept_kinds,
                                  concept_groups=self.concept_groups)
        # a module only where there are binary concepts: a model of ratings is as it was
        self.activation = (ConceptActivation([k == "binary" for k in self.concept_kinds])
                           if "binary" in self.concept_kinds else None)
        self.normalize = Standardize()
        self.backbone = Backbone(**backbone)
        n_c, n_o = len(self.concept_names), len(self.output_names)
        for name, n in [("concept_mean", n_c), ("target_mean", n_o)]:
            self.register_buffer(name, torch.zeros(n))
        for name, n in [("concept_std", n_c), ("target_std", n_o)]:
            self.register_buffer(name, torch.ones(n))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, n_bands, n_frames)`` raw front-end output -> ``(batch, n_features)``."""
        return self.backbone(self.normalize(x))

    def unscale(self, out: ModelOutput) -> ModelOutput:
        """Scaled model output -> rating units (binary concepts: probabilities; class and
        binary target logits stay logits)."""
        concepts = None
        if out.concepts is not None:
            concepts = out.concepts * self.concept_std + self.concept_mean
            if self.activation is not None:
                concepts = torch.where(self.activation.binary, torch.sigmoid(out.concepts),
                                       concepts)
        return ModelOutput(concepts, out.targets * self.target_std + self.target_mean)

    def set_scales(self, *, input_mean: float, input_std: float, concept_mean=None,
                   concept_std=None, target_mean=None, target_std=None) -> None:
        """Store the training split's statistics (arrays of the buffers' lengths)."""
        self.normalize.mean.fill_(float(input_mean))
        self.normalize.std.fill_(float(input_std))
        for name, value in [("concept_mean", concept_mean), ("concept_std", concept_std),
                            ("target_mean", target_mean), ("target_std", target_std)]:
            if value is not None:
                getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))


class BlackBox(_Model):
    """Backbone -> linear -> targets (the paper's A2E). ``forward`` gives concepts=None."""

    kind = "blackbox"

    def __init__(self, targets: list[dict], *, backbone: dict):
        super().__init__([], targets, backbone)
        self.output = nn.Linear(self.backbone.out_features, len(self.output_names))

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """``(batch, n_features)`` -> ``(batch, n_outputs)``."""
        return self.output(h)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(None, self.head(self.features(x)))


class ConceptBottleneck(_Model):
    """Backbone -> linear -> concepts -> linear head -> targets (the paper's A2Mid2E)."""

    kind = "bottleneck"

    def __init__(self, concepts: list[str], targets: list[dict], *, backbone: dict,
                 concept_kinds: list[str] | None = None,
                 concept_groups: list[str | None] | None = None):
        super().__init__(concepts, targets, backbone, concept_kinds, concept_groups)
        self.concept_layer = nn.Linear(self.backbone.out_features, len(self.concept_names))
        self.head_layer = nn.Linear(len(self.concept_names), len(self.output_names))

    def concepts(self, h: torch.Tensor) -> torch.Tensor:
        """``(batch, n_features)`` -> ``(batch, n_concepts)`` (scaled units; binary: logits)."""
        return self.concept_layer(h)

    def head(self, c: torch.Tensor) -> torch.Tensor:
        """``(batch, n_concepts)`` scaled concepts (binary: logits) -> ``(batch, n_outputs)``;
        the head layer reads binary concepts as probabilities."""
        return self.head_layer(c if self.activation is None else self.activation(c))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        c = self.concepts(self.features(x))
        return ModelOutput(c, self.head(c))


def build_model(kind: str, concepts: list[str], targets: list[dict], backbone: dict, *,
                concept_kinds: list[str] | None = None,
                concept_groups: list[str | None] | None = None) -> _Model:
    """``kind`` "blackbox" or "bottleneck" -> an initialized model."""
    if kind == "blackbox":
        return BlackBox(targets, backbone=backbone)
    return ConceptBottleneck(concepts, targets, backbone=backbone, concept_kinds=concept_kinds,
                             concept_groups=concept_groups)
