"""One strategy per training mode: what the model is, what the loss is, how the head is made.

=============  ===========================================================================
mode           strategy
=============  ===========================================================================
blackbox       backbone -> targets (the paper's A2E); target loss only
independent    concept network on concept ratings; head fitted in closed form on the *true*
               concept ratings
sequential     concept network on concept ratings; head fitted in closed form on the
               network's *predicted* training concepts
joint          one network, ``w * target loss + (1 - w) * concept loss``; the head starts from
               the least-squares map of the true concepts and is learned with the rest
=============  ===========================================================================

The training loop (:mod:`midlevel.training.loop`) asks its strategy and never compares mode
strings.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from midlevel.errors import TrainingError
from midlevel.training.head import fit_head
from midlevel.training.losses import concept_loss, target_loss
from midlevel.training.predict import predict_sharded

log = logging.getLogger("midlevel.training")


class Strategy:
    """Base strategy (see the module docstring). Subclasses set the class attributes."""

    mode: str = ""
    model_kind: str = "bottleneck"       # "bottleneck" or "blackbox"
    scored: tuple[str, ...] = ()         # metric kinds of the validation score
    head_source: str | None = None       # what a closed-form head is fitted on, if any

    def check(self, columns) -> None:
        """:class:`TrainingError` when the data cannot train this mode."""
        if self.model_kind == "bottleneck" and not columns.concepts:
            raise TrainingError(f"mode '{self.mode}' trains a concept bottleneck, but the data "
                                f"has no concept columns; add concepts to the spec or use "
                                f"--mode blackbox")

    def prepare(self, model, train_set, columns, config) -> None:
        """Set up the new model before training (head start, frozen parts)."""
        if self.head_source is not None:
            for p in model.head_layer.parameters():
                p.requires_grad_(False)

    def loss(self, out, concepts, targets, layout, config, terms=None, counts=None):
        """``(loss, concept loss, target loss)`` of one batch (scalars with a graph);
        ``terms``: the binary columns' :class:`~midlevel.training.losses.BinaryTerms`;
        ``counts``: the losses' denominators (DDP: the mean over the processes, laid out as
        :func:`~midlevel.training.losses.loss_counts`), None for the batch's own."""
        lt = target_loss(out.targets.float(), targets, layout,
                         pos_weight=terms.target_pos_weight if terms else None, counts=counts)
        lc = (concept_loss(out.concepts.float(), concepts,
                           terms.concept_mask if terms else None,
                           terms.concept_pos_weight if terms else None,
                           count=None if counts is None else counts[0])
              if out.concepts is not None else lt * 0.0)
        return self.combine(lc, lt, config), lc, lt

    def combine(self, lc, lt, config):
        return lc

    def head_design(self, ctx, model, train_set, scales, n_frames, hop, config, progress=None):
        """``X`` (scaled concepts) a closed-form head is fitted on, or None (``progress``: a
        progress bar's label for a pass over the training clips)."""
        return None

    def finish_head(self, ctx, model, train_set, scales, columns, n_frames, hop, config, *,
                    progress: bool = False):
        """Fit a closed-form head into ``model``; returns the stored design or None."""
        X = self.head_design(ctx, model, train_set, scales, n_frames, hop, config,
                             progress="head (training clips)" if progress else None)
        if X is None:
            return None
        Y = train_set.targets.numpy().astype(np.float64)
        weight, bias = fit_head(X, Y, columns.targets, concepts=columns.concepts)
        with torch.no_grad():
            model.head_layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            model.head_layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        return {"clips": train_set.clips, "X": X, "Y": Y, "source": self.head_source,
                "units": "z-scored with the training split's mean and std"}


class BlackBoxStrategy(Strategy):
    mode, model_kind, scored = "blackbox", "blackbox", ("target",)

    def check(self, columns) -> None:
        if not columns.targets:
            raise TrainingError("mode 'blackbox' needs target columns, but the data has none")

    def combine(self, lc, lt, config):
        return lt


class IndependentStrategy(Strategy):
    mode, scored, head_source = "independent", ("concept",), "true concepts"

    def head_design(self, ctx, model, train_set, scales, n_frames, hop, config, progress=None):
        return train_set.concepts.numpy().astype(np.float64)


class SequentialStrategy(Strategy):
    mode, scored, head_source = "sequential", ("concept",), "predicted concepts"

    def head_design(self, ctx, model, train_set, scales, n_frames, hop, config, progress=None):
        pred, _ = predict_sharded(ctx, model, train_set.specs, n_frames, hop, config,
                                  progress=progress)
        return (pred - scales.concept_mean) / scales.concept_std


class JointStrategy(Strategy):
    mode, scored = "joint", ("concept", "target")

    def prepare(self, model, train_set, columns, config) -> None:
        if config.head_init != "lstsq":
            return
        # With random weights the small concept -> target head needs thousands of steps at the
        # paper's learning rate before the target loss helps; this start is the independent
        # mode's head, which joint training then adapts to the predicted concepts.
        try:
            weight, bias = fit_head(train_set.concepts.numpy().astype(np.float64),
                                    train_set.targets.numpy().astype(np.float64),
                                    columns.targets, start=True,
                                    concepts=columns.concepts)
        except TrainingError as exc:
            log.info("head starts from random weights: %s", exc)
            return
        with torch.no_grad():
            model.head_layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            model.head_layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def combine(self, lc, lt, config):
        return config.w * lt + (1 - config.w) * lc


STRATEGIES = {s.mode: s for s in (BlackBoxStrategy(), IndependentStrategy(),
                                  SequentialStrategy(), JointStrategy())}


def strategy(mode: str) -> Strategy:
    """The strategy of ``mode`` (one of :data:`midlevel.training.config.MODES`)."""
    if mode not in STRATEGIES:
        raise TrainingError(f"unknown mode '{mode}'; modes are {list(STRATEGIES)}")
    return STRATEGIES[mode]
