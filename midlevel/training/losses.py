"""Masked losses: a clip missing some ratings trains only what it has."""
from __future__ import annotations

import torch


def masked_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``true`` (0 with a graph if none)."""
    mask = torch.isfinite(true)
    diff = torch.where(mask, pred - torch.nan_to_num(true), torch.zeros_like(pred))
    return (diff ** 2).sum() / mask.sum().clamp(min=1)


def target_loss(outputs: torch.Tensor, targets: torch.Tensor, layout: list[tuple]) -> torch.Tensor:
    """Mean over target groups: one pooled masked MSE for the regression targets, one
    cross-entropy per class target (missing labels ignored).

    outputs ``(batch, n_outputs)``, targets ``(batch, n_targets)``; ``layout`` from
    :func:`output_layout`.
    """
    reg = [(j, s.start) for j, kind, s in layout if kind == "regression"]
    parts = []
    if reg:
        cols, units = zip(*reg)
        parts.append(masked_mse(outputs[:, list(units)], targets[:, list(cols)]))
    for j, kind, s in layout:
        if kind == "class":
            labels = torch.nan_to_num(targets[:, j], nan=-100).long()
            ce = torch.nn.functional.cross_entropy(outputs[:, s], labels, ignore_index=-100,
                                                   reduction="sum")
            parts.append(ce / (labels != -100).sum().clamp(min=1))
    return torch.stack(parts).mean() if parts else outputs.sum() * 0.0
