"""The statistics of a training split that a model is scaled by: the spectrograms' mean and
std, and each concept's and target's mean and std (:class:`Scales`), stored in the model's
buffers and with the run."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

if TYPE_CHECKING:
    from midlevel.training.data import Columns


@dataclass
class Scales:
    """Statistics of the training split: input mean/std, per-column rating mean/std."""

    input_mean: float
    input_std: float
    concept_mean: np.ndarray   # (n_concepts,)
    concept_std: np.ndarray
    target_mean: np.ndarray    # (n_targets,) class targets: 0
    target_std: np.ndarray     # class targets: 1

    @classmethod
    def fit(cls, table: pd.DataFrame, features, columns: Columns) -> "Scales":
        """``table``: the training split's rows; ``features``: clip -> spectrogram (read one
        clip at a time, so a memory-mapped store is never loaded whole)."""
        def specs():
            return (torch.as_tensor(np.asarray(features[c])) for c in table.index)
        total, count = 0.0, 0
        for s in specs():
            total += float(s.double().sum())
            count += s.numel()
        mean = total / count
        var = sum(float(((s.double() - mean) ** 2).sum()) for s in specs()) / count
        c_mean, c_std = _column_stats(table, columns.concepts)
        binary = np.array(columns.binary_concepts, dtype=bool)
        c_mean[binary], c_std[binary] = 0.0, 1.0   # binary concepts: 0/1 labels, probabilities
        reg = set(columns.regression_targets())
        t_mean, t_std = _column_stats(table, columns.target_names)
        is_class = np.array([n not in reg for n in columns.target_names], dtype=bool)
        t_mean[is_class], t_std[is_class] = 0.0, 1.0
        return cls(mean, float(np.sqrt(var)) or 1.0, c_mean, c_std, t_mean, t_std)

    @classmethod
    def from_model(cls, model, columns: "Columns", fitted: "Scales") -> "Scales":
        """The statistics ``model`` holds in its buffers (:meth:`apply_to`'s inverse): what a
        checkpoint was trained with, whatever rule a later version fits them by; ``fitted``'s
        for what the model holds none of (a black box's concepts)."""
        from midlevel.models.bottleneck import output_layout
        t_mean, t_std = fitted.target_mean.copy(), fitted.target_std.copy()
        for j, kind, s in output_layout(columns.targets):
            if kind == "regression":
                t_mean[j] = float(model.target_mean[s][0])
                t_std[j] = float(model.target_std[s][0])
        c_mean, c_std = fitted.concept_mean, fitted.concept_std
        if model.concept_names:
            c_mean = model.concept_mean.detach().cpu().double().numpy()
            c_std = model.concept_std.detach().cpu().double().numpy()
        return cls(float(model.normalize.mean), float(model.normalize.std), c_mean, c_std,
                   t_mean, t_std)

    def close_to(self, other: "Scales") -> bool:
        """Every statistic equal to ``other``'s at float32 precision (the buffers')."""
        mine, theirs = self.to_dict(), other.to_dict()
        return all(np.shape(mine[k]) == np.shape(theirs[k]) and np.allclose(
            np.asarray(mine[k], float), np.asarray(theirs[k], float), rtol=1e-6, atol=0)
            for k in mine)

    def apply_to(self, model, columns: "Columns") -> None:
        """Copy these statistics into ``model``'s buffers (per output unit for targets; class
        logits stay unscaled)."""
        from midlevel.models.bottleneck import output_layout
        n_o = len(model.output_names)
        t_mean, t_std = np.zeros(n_o), np.ones(n_o)
        for j, kind, s in output_layout(columns.targets):
            if kind == "regression":
                t_mean[s], t_std[s] = self.target_mean[j], self.target_std[j]
        model.set_scales(input_mean=self.input_mean, input_std=self.input_std,
                         concept_mean=self.concept_mean if model.concept_names else None,
                         concept_std=self.concept_std if model.concept_names else None,
                         target_mean=t_mean, target_std=t_std)

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scales":
        return cls(**{k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
                      for k, v in d.items()})


def _column_stats(table: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring mean and std per column. A column without spread (constant up to rounding,
    relative to its mean) gets ``|mean|`` as its std, or 1 where that is 0 (an unrated column:
    mean 0): a value in the column's own units, so the model's outputs and every score read
    the same in any units (audit 12b: a fixed 1 rating unit made a constant column's
    validation R^2 depend on the units and could change the epoch kept); spread is judged
    relative to the mean, so a column of real spread in tiny units (sd 3e-9) is not taken
    for a constant one."""
    mean, std = _nan_mean_std(table, names)
    mean = np.nan_to_num(mean, nan=0.0)
    std = np.where(has_spread(mean, std), std, np.where(np.abs(mean) > 0, np.abs(mean), 1.0))
    return mean, std


def has_spread(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Which columns of NaN-ignoring ``mean`` and ``std`` vary: a finite std above 0 and
    above 1e-10 of the mean's size (constant up to rounding is no spread; an unrated column,
    std NaN, has none)."""
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(std) & (std > 0) & (std > 1e-10 * np.abs(np.nan_to_num(mean)))


def columns_without_spread(table: pd.DataFrame, names: list[str]) -> dict[str, float]:
    """The columns of ``names`` whose ratings in ``table`` do not vary (the rule a model's
    scales are fitted by), each with its one value (NaN where the column has no rating)."""
    mean, std = _nan_mean_std(table, names)
    return {n: float(m) for n, m, s in zip(names, mean, has_spread(mean, std)) if not s}


def _nan_mean_std(table: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring mean and std of each column of ``names`` (NaN for an unrated one)."""
    values = table[names].to_numpy(np.float64).reshape(len(table), len(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, 0), np.nanstd(values, 0)
