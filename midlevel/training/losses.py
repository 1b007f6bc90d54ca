"""Masked losses: a clip missing some ratings trains only what it has.

Ratings (z-scored) get squared error; binary concepts and targets (tags) binary cross-entropy
on their logits, optionally class-balanced (``pos_weight`` = negatives / positives of each
column on the training split, :func:`balance_weights`).

Each loss is a sum over the finite labels divided by their count. Under DDP each process holds
a share of the global batch and DDP averages the processes' gradients, so a process that
divided by its own count would weigh its labels by its share (a 2 + 1 split of 3 clips weighs
them 1/4, 1/4, 1/2); the training loop passes instead the mean count over the processes
(:func:`loss_counts`, summed by an all-reduce), which makes the averaged gradient the global
batch's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def _denominator(count, local: torch.Tensor) -> torch.Tensor:
    """``count`` where given (DDP: the mean count over the processes), else the local one."""
    return local.clamp(min=1) if count is None else count


def masked_mse(pred: torch.Tensor, true: torch.Tensor, count=None) -> torch.Tensor:
    """Mean squared error over the finite entries of ``true`` (0 with a graph if none);
    ``count``: the denominator to use instead of their number (see the module docstring)."""
    mask = torch.isfinite(true)
    diff = torch.where(mask, pred - torch.nan_to_num(true), torch.zeros_like(pred))
    return (diff ** 2).sum() / _denominator(count, mask.sum())


def _bce_sum(logits: torch.Tensor, labels: torch.Tensor, pos_weight=None):
    """(sum of the binary cross-entropies over the finite labels, their count)."""
    mask = torch.isfinite(labels)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nan_to_num(labels), pos_weight=pos_weight, reduction="none")
    return torch.where(mask, loss, torch.zeros_like(loss)).sum(), mask.sum()


def masked_bce(logits: torch.Tensor, labels: torch.Tensor,
               pos_weight: torch.Tensor | None = None, count=None) -> torch.Tensor:
    """Binary cross-entropy of ``logits`` against 0/1 ``labels`` (same shape; NaN = missing),
    averaged over the finite labels; ``pos_weight`` ``(n_columns,)`` weighs the positives."""
    total, local = _bce_sum(logits, labels, pos_weight)
    return total / _denominator(count, local)


def concept_loss(pred: torch.Tensor, true: torch.Tensor, binary: torch.Tensor | None = None,
                 pos_weight: torch.Tensor | None = None, count=None) -> torch.Tensor:
    """The concept loss: the mean over every finite label of its squared error (ratings) or
    binary cross-entropy (binary concepts, ``binary`` ``(n_concepts,)`` bool; ``pos_weight``
    one per binary concept). Without binary concepts exactly :func:`masked_mse`."""
    if binary is None or not bool(binary.any()):
        return masked_mse(pred, true, count)
    reg = ~binary
    sq_mask = torch.isfinite(true[:, reg])
    diff = torch.where(sq_mask, pred[:, reg] - torch.nan_to_num(true[:, reg]),
                       torch.zeros_like(pred[:, reg]))
    bce, n_bce = _bce_sum(pred[:, binary], true[:, binary], pos_weight)
    return ((diff ** 2).sum() + bce) / _denominator(count, sq_mask.sum() + n_bce)


def loss_counts(concepts: torch.Tensor, targets: torch.Tensor, layout: list[tuple]
                ) -> torch.Tensor:
    """The label counts the losses of one batch divide by, float64 ``(3 + n_class,)``: the
    finite concept labels, regression target ratings, binary target labels, then the labels
    of each class target in ``layout``'s order (0 where a kind is absent)."""
    def finite(t):
        return torch.isfinite(t).sum().to(torch.float64)

    def of(kind):
        cols = [j for j, k, _ in layout if k == kind]
        return finite(targets[:, cols]) if cols else torch.zeros((), dtype=torch.float64,
                                                                  device=targets.device)
    classes = [finite(targets[:, j]) for j, kind, _ in layout if kind == "class"]
    return torch.stack([finite(concepts), of("regression"), of("binary"), *classes])


def target_loss(outputs: torch.Tensor, targets: torch.Tensor, layout: list[tuple],
                pos_weight: torch.Tensor | None = None, counts=None) -> torch.Tensor:
    """Mean over target groups: one pooled masked MSE for the regression targets, one pooled
    binary cross-entropy for the binary targets (tags; ``pos_weight`` one per binary target),
    one cross-entropy per class target (missing labels ignored).

    outputs ``(batch, n_outputs)``, targets ``(batch, n_targets)``; ``layout`` from
    :func:`output_layout`; ``counts``: the denominators to use, laid out as
    :func:`loss_counts` (the concepts' first), or None for this batch's own.
    """
    def count(i):
        return None if counts is None else counts[i]
    reg = [(j, s.start) for j, kind, s in layout if kind == "regression"]
    parts = []
    if reg:
        cols, units = zip(*reg)
        parts.append(masked_mse(outputs[:, list(units)], targets[:, list(cols)], count(1)))
    binary = [(j, s.start) for j, kind, s in layout if kind == "binary"]
    if binary:
        cols, units = zip(*binary)
        parts.append(masked_bce(outputs[:, list(units)], targets[:, list(cols)], pos_weight,
                                count(2)))
    n_class = 0
    for j, kind, s in layout:
        if kind == "class":
            labels = torch.nan_to_num(targets[:, j], nan=-100).long()
            ce = torch.nn.functional.cross_entropy(outputs[:, s], labels, ignore_index=-100,
                                                   reduction="sum")
            parts.append(ce / _denominator(count(3 + n_class), (labels != -100).sum()))
            n_class += 1
    return torch.stack(parts).mean() if parts else outputs.sum() * 0.0


@dataclass
class BinaryTerms:
    """What the losses need to know of the binary columns (None where there are none).

    concept_mask : ``(n_concepts,)`` bool, the binary concepts.
    concept_pos_weight : ``(n_binary_concepts,)`` or None (no class balance).
    target_pos_weight : ``(n_binary_targets,)`` or None.
    """

    concept_mask: torch.Tensor | None = None
    concept_pos_weight: torch.Tensor | None = None
    target_pos_weight: torch.Tensor | None = None

    def to(self, device) -> "BinaryTerms":
        return BinaryTerms(*(None if t is None else t.to(device) for t in
                             (self.concept_mask, self.concept_pos_weight,
                              self.target_pos_weight)))


def balance_weights(labels: np.ndarray, *, limit: float = 100.0) -> np.ndarray:
    """``pos_weight`` per column of 0/1 ``labels`` ``(n_clips, n)`` (NaN = missing): negatives /
    positives, 1 for a column without both, clipped to ``[1 / limit, limit]``."""
    pos = np.nansum(labels == 1, axis=0).astype(float)
    neg = np.nansum(labels == 0, axis=0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where((pos > 0) & (neg > 0), neg / pos, 1.0)
    return np.clip(w, 1.0 / limit, limit)


def binary_terms(columns, concepts: np.ndarray, targets: np.ndarray,
                 balance: str = "none") -> BinaryTerms:
    """The :class:`BinaryTerms` of ``columns`` from the training split's clip-level labels
    (``concepts`` ``(n, n_concepts)``, ``targets`` ``(n, n_targets)``); ``balance``: "none" or
    "balanced" (``pos_weight`` = negatives / positives per column)."""
    mask = np.array(columns.binary_concepts, dtype=bool)
    t_bin = np.array([k == "binary" for k in columns.target_kinds()], dtype=bool)
    terms = BinaryTerms(torch.as_tensor(mask) if mask.any() else None)
    if balance == "balanced":
        if mask.any():
            terms.concept_pos_weight = torch.as_tensor(balance_weights(concepts[:, mask]),
                                                       dtype=torch.float32)
        if t_bin.any():
            terms.target_pos_weight = torch.as_tensor(balance_weights(targets[:, t_bin]),
                                                      dtype=torch.float32)
    return terms
