"""In-memory training data: spectrograms, scaled ratings, random crops and whole-clip windows.

The spectrograms of every clip are held in memory (``(n_bands, n_frames)`` float32 each), so a
batch is a few tensor copies and the CPU stays busy with the network, not with loading.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from midlevel.errors import DataError


@dataclass
class Columns:
    """What a model learns: concept names and targets (dicts with name, kind, classes)."""

    concepts: list[str]
    targets: list[dict]

    @classmethod
    def from_spec(cls, spec, table: pd.DataFrame) -> "Columns":
        """From a :class:`DataSpec` and its annotations table (for class lists seen in data)."""
        seen = table.attrs.get("classes", {})
        targets = []
        for t in spec.targets:
            d = {"name": t.name, "kind": t.kind}
            if t.is_class:
                d["classes"] = list(t.classes or seen.get(t.name, []))
            targets.append(d)
        return cls(list(spec.concept_names), targets)

    @property
    def target_names(self) -> list[str]:
        return [t["name"] for t in self.targets]

    def regression_targets(self) -> list[str]:
        return [t["name"] for t in self.targets if t.get("kind", "regression") != "class"]


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
        """``table``: the training split's rows; ``features``: clip -> spectrogram."""
        specs = [torch.as_tensor(np.asarray(features[c])) for c in table.index]
        total = sum(float(s.double().sum()) for s in specs)
        count = sum(s.numel() for s in specs)
        mean = total / count
        var = sum(float(((s.double() - mean) ** 2).sum()) for s in specs) / count
        c_mean, c_std = _column_stats(table, columns.concepts)
        reg = set(columns.regression_targets())
        t_mean, t_std = _column_stats(table, columns.target_names)
        is_class = np.array([n not in reg for n in columns.target_names], dtype=bool)
        t_mean[is_class], t_std[is_class] = 0.0, 1.0
        return cls(mean, float(np.sqrt(var)) or 1.0, c_mean, c_std, t_mean, t_std)

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scales":
        return cls(**{k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
                      for k, v in d.items()})


def _column_stats(table: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring mean and std per column; 0 and 1 where a column has too few ratings."""
    values = table[names].to_numpy(np.float64).reshape(len(table), len(names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(values, 0), np.nanstd(values, 0)
    mean = np.nan_to_num(mean, nan=0.0)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    return mean, std


class ClipSet:
    """The clips of one or more splits, with spectrograms and scaled ratings in memory.

    Attributes
    ----------
    clips : list[str]
    specs : list[torch.Tensor [shape=(n_bands, n_frames)]]
    concepts : torch.Tensor [shape=(n_clips, n_concepts)] z-scored, NaN = missing
    targets : torch.Tensor [shape=(n_clips, n_targets)] regression z-scored, class codes as
        float, NaN = missing
    """

    def __init__(self, table: pd.DataFrame, features, columns: Columns, scales: Scales):
        self.clips = [str(c) for c in table.index]
        self.specs = [torch.as_tensor(np.asarray(features[c]), dtype=torch.float32)
                      for c in table.index]
        for clip, s in zip(self.clips, self.specs):
            if s.ndim != 2 or s.shape[1] == 0:
                raise DataError(f"clip '{clip}': expected a (n_bands, n_frames) spectrogram, "
                                f"got shape {tuple(s.shape)}")
        c = table[columns.concepts].to_numpy(np.float64).reshape(len(table), len(columns.concepts))
        t = table[columns.target_names].to_numpy(np.float64).reshape(len(table), len(columns.targets))
        self.concepts = torch.as_tensor((c - scales.concept_mean) / scales.concept_std,
                                        dtype=torch.float32)
        self.targets = torch.as_tensor((t - scales.target_mean) / scales.target_std,
                                       dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.clips)

    def n_short(self, n_frames: int) -> int:
        """How many clips are shorter than ``n_frames`` (padded with zeros = silence)."""
        return sum(s.shape[1] < n_frames for s in self.specs)

    def crop_offsets(self, n_frames: int, rng: np.random.Generator) -> np.ndarray:
        """One random crop start per clip, ``(n_clips,)`` int."""
        room = np.array([max(0, s.shape[1] - n_frames) for s in self.specs])
        return np.floor(rng.random(len(self.specs)) * (room + 1)).astype(int)

    def batch(self, idx, offsets: np.ndarray, n_frames: int):
        """Crops of the clips ``idx``: x ``(batch, 1, n_bands, n_frames)``, concepts, targets."""
        x = torch.stack([crop(self.specs[i], int(offsets[i]), n_frames) for i in idx])
        return x.unsqueeze(1), self.concepts[idx], self.targets[idx]


def crop(spec: torch.Tensor, start: int, n_frames: int) -> torch.Tensor:
    """``(n_bands, T)`` -> ``(n_bands, n_frames)`` from ``start``; zero-padded at the end."""
    piece = spec[:, start:start + n_frames]
    if piece.shape[1] < n_frames:
        piece = torch.nn.functional.pad(piece, (0, n_frames - piece.shape[1]))
    return piece


def window_starts(n_total: int, n_frames: int, hop: int) -> list[int]:
    """Starts of windows covering ``n_total`` frames; the last one ends at the clip's end."""
    if n_total <= n_frames:
        return [0]
    starts = list(range(0, n_total - n_frames + 1, hop))
    if starts[-1] != n_total - n_frames:
        starts.append(n_total - n_frames)
    return starts


def windows(spec: torch.Tensor, n_frames: int, hop: int) -> tuple[torch.Tensor, list[int]]:
    """``(n_bands, T)`` -> ``(n_windows, 1, n_bands, n_frames)`` and the window starts."""
    starts = window_starts(spec.shape[1], n_frames, hop)
    return torch.stack([crop(spec, s, n_frames) for s in starts]).unsqueeze(1), starts
