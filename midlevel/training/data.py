"""Training data: spectrograms, scaled ratings, random crops and whole-clip windows.

By default the spectrograms of every clip are held in memory (``(n_bands, n_frames)`` float32
each), so a batch is a few tensor copies and the CPU stays busy with the network, not with
loading. Given a :class:`~midlevel.data.stream.MappedFeatures` (a dataset larger than the
memory budget, see :mod:`midlevel.training.stream`) a :class:`ClipSet` holds only the clips'
lengths and labels and reads each crop or whole clip from its memory-mapped file when asked
(:class:`MappedSpecs`); crops and labels are the same either way.

A clip with time-varying ratings (the spec's ``segments``, see :mod:`midlevel.data.segments`)
gets per-frame labels (:func:`frame_labels`): a frame inside a segment takes that segment's
rating, any other frame the clip's rating; a crop's label is the mean over its frames. Every
other clip's crops take the clip's rating, as always.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from midlevel.data.segments import frame_span
from midlevel.data.stream import MappedFeatures, MappedSpecs
from midlevel.errors import DataError


@dataclass
class Columns:
    """What a model learns: concept names (with their kinds, "regression" or "binary", and
    multi-label groups) and targets (dicts with name, kind, classes, group)."""

    concepts: list[str]
    targets: list[dict]
    concept_kinds: list[str] | None = None     # None: every concept a rating
    concept_groups: list[str | None] | None = None

    def __post_init__(self):
        self.concept_kinds = list(self.concept_kinds or ["regression"] * len(self.concepts))
        self.concept_groups = list(self.concept_groups or [None] * len(self.concepts))

    @classmethod
    def from_spec(cls, spec, table: pd.DataFrame) -> "Columns":
        """From a :class:`DataSpec` and its annotations table (for class lists seen in data)."""
        seen = table.attrs.get("classes", {})
        targets = []
        for t in spec.targets:
            d = {"name": t.name, "kind": t.kind}
            if t.is_class:
                d["classes"] = list(t.classes or seen.get(t.name, []))
            if t.group is not None:
                d["group"] = t.group
            targets.append(d)
        return cls(list(spec.concept_names), targets, [c.kind for c in spec.concepts],
                   [c.group for c in spec.concepts])

    @property
    def target_names(self) -> list[str]:
        return [t["name"] for t in self.targets]

    @property
    def binary_concepts(self) -> list[bool]:
        return [k == "binary" for k in self.concept_kinds]

    def regression_targets(self) -> list[str]:
        return [t["name"] for t in self.targets if t.get("kind", "regression") == "regression"]

    def target_kinds(self) -> list[str]:
        return [t.get("kind", "regression") for t in self.targets]

    def groups(self) -> dict[str, str]:
        """``{column name: multi-label group}`` of the concepts and targets in a group."""
        out = {c: g for c, g in zip(self.concepts, self.concept_groups) if g is not None}
        out.update({t["name"]: t["group"] for t in self.targets if t.get("group")})
        return out


def frame_labels(segments: pd.DataFrame, clip_values, names: list[str], n_frames: int,
                 fps: float) -> np.ndarray:
    """Per-frame labels of one clip from its segments.

    Frame ``k`` (centred at ``k / fps`` s) lies in a segment when ``start <= k / fps < end``;
    it takes that segment's value of each column the segment rates (a NaN cell rates nothing),
    otherwise the clip's value.

    Parameters
    ----------
    segments : the clip's rows of a :class:`~midlevel.data.segments.Segments` table (columns
        ``start``, ``end`` in seconds and any of ``names``).
    clip_values : array [shape=(len(names),)] the clip-level values (NaN = missing).
    names : the columns to label, in order.
    n_frames, fps : the clip's number of frames and the front end's frame rate.

    Returns
    -------
    np.ndarray [shape=(n_frames, len(names)), dtype=float64]
    """
    out = np.tile(np.asarray(clip_values, dtype=np.float64).reshape(1, len(names)),
                  (n_frames, 1))
    first, stop = frame_span(segments["start"], segments["end"], n_frames, fps)
    for j, name in enumerate(names):
        if name not in segments.columns:
            continue
        values = segments[name].to_numpy(np.float64)
        for a, b, v in zip(first, stop, values):
            if np.isfinite(v):
                out[a:b, j] = v
    return out


def _window_mean(labels: np.ndarray, start: int, n_frames: int) -> np.ndarray:
    """Mean over the frames ``start .. start + n_frames`` that exist and have a label
    (NaN where none has): ``(n_columns,)``."""
    part = labels[max(0, start):max(0, start) + n_frames]
    finite = np.isfinite(part)
    count = finite.sum(0)
    total = np.where(finite, part, 0.0).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class ClipSet:
    """The clips of one or more splits, with spectrograms (in memory, or memory-mapped from
    the feature cache) and scaled ratings.

    Parameters
    ----------
    table : annotations rows (index clip; concept and target columns).
    features : clip -> spectrogram ``(n_bands, n_frames)``, or a :class:`MappedFeatures`
        (nothing loaded until a crop or clip is asked for).
    scales : the :class:`~midlevel.training.scales.Scales` the ratings are z-scored by.
    fps : the front end's frame rate; needed when there are segments.
    segments : time-varying ratings (default: ``table.attrs["segments"]``, see
        :func:`midlevel.data.segments.segments_of`); clips of the table that have none keep
        their clip-level labels for every crop.

    Attributes
    ----------
    clips : list[str]
    specs : list[torch.Tensor [shape=(n_bands, n_frames)]], or a :class:`MappedSpecs`
    lengths : np.ndarray [shape=(n_clips,)] frames per clip
    streamed : bool, whether the spectrograms stay on disk
    concepts : torch.Tensor [shape=(n_clips, n_concepts)] z-scored clip-level ratings,
        NaN = missing
    targets : torch.Tensor [shape=(n_clips, n_targets)] regression z-scored, class codes as
        float, NaN = missing
    frames : dict clip index -> (concepts, targets), per-frame labels ``(n_frames, n)`` float64
        z-scored, for the clips with segments
    """

    def __init__(self, table: pd.DataFrame, features, columns: Columns, scales, *,
                 fps: float | None = None, segments=None):
        self.clips = [str(c) for c in table.index]
        self.streamed = isinstance(features, MappedFeatures)
        if self.streamed:
            self.specs = MappedSpecs(features, self.clips)
            shapes = [features.shape(c) for c in self.clips]
        else:
            self.specs = [torch.as_tensor(np.asarray(features[c]), dtype=torch.float32)
                          for c in table.index]
            shapes = [tuple(s.shape) for s in self.specs]
        for clip, shape in zip(self.clips, shapes):
            if len(shape) != 2 or shape[1] == 0:
                raise DataError(f"clip '{clip}': expected a (n_bands, n_frames) spectrogram, "
                                f"got shape {shape}")
        self.lengths = np.array([shape[1] for shape in shapes], dtype=np.int64)
        c = table[columns.concepts].to_numpy(np.float64).reshape(len(table), len(columns.concepts))
        t = table[columns.target_names].to_numpy(np.float64).reshape(len(table), len(columns.targets))
        self.concepts = torch.as_tensor((c - scales.concept_mean) / scales.concept_std,
                                        dtype=torch.float32)
        self.targets = torch.as_tensor((t - scales.target_mean) / scales.target_std,
                                       dtype=torch.float32)
        self.scales = scales
        self.frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if segments is None:
            from midlevel.data.segments import segments_of
            segments = segments_of(table)
        if len(segments):
            self._segment_labels(segments, columns, c, t, fps)

    def _segment_labels(self, segments, columns: Columns, c: np.ndarray, t: np.ndarray,
                        fps: float | None) -> None:
        """Per-frame z-scored labels of the clips that have segments."""
        have = set(segments.clips)
        if not have.intersection(self.clips):
            return
        if not fps:
            raise DataError("clips with segments need the front end's frame rate: pass fps")
        scales = self.scales
        for i, clip in enumerate(self.clips):
            if clip not in have:
                continue
            rows = segments.for_clip(clip)
            n = int(self.lengths[i])
            fc = frame_labels(rows, c[i], columns.concepts, n, fps)
            ft = frame_labels(rows, t[i], columns.target_names, n, fps)
            self.frames[i] = ((fc - scales.concept_mean) / scales.concept_std,
                              (ft - scales.target_mean) / scales.target_std)

    def __len__(self) -> int:
        return len(self.clips)

    def n_short(self, n_frames: int) -> int:
        """How many clips are shorter than ``n_frames`` (padded with zeros = silence)."""
        return int((self.lengths < n_frames).sum())

    def crop_offsets(self, n_frames: int, rng: np.random.Generator) -> np.ndarray:
        """One random crop start per clip, ``(n_clips,)`` int."""
        room = np.maximum(0, self.lengths - n_frames)
        return np.floor(rng.random(len(self.lengths)) * (room + 1)).astype(int)

    def crop(self, i: int, start: int, n_frames: int) -> torch.Tensor:
        """Clip ``i`` from frame ``start``: ``(n_bands, n_frames)``, zero-padded at the end
        (read from disk for a streamed set)."""
        if self.streamed:
            return self.specs.crop(int(i), int(start), n_frames)
        return crop(self.specs[i], int(start), n_frames)

    def item(self, i: int, offset: int, n_frames: int):
        """One crop and its labels: x ``(n_bands, n_frames)``, concepts ``(n_concepts,)``,
        targets ``(n_targets,)`` (what :meth:`batch` gives per row)."""
        i = int(i)
        x = self.crop(i, offset, n_frames)
        if i not in self.frames:
            return x, self.concepts[i], self.targets[i]
        c, t = self.window_labels(i, int(offset), n_frames, scaled=True)
        return (x, torch.as_tensor(c, dtype=torch.float32),
                torch.as_tensor(t, dtype=torch.float32))

    def batch(self, idx, offsets: np.ndarray, n_frames: int):
        """Crops of the clips ``idx`` from ``offsets[i]``: x ``(batch, 1, n_bands, n_frames)``,
        concepts ``(batch, n_concepts)`` and targets ``(batch, n_targets)`` of each crop
        (z-scored; a clip without segments: its clip-level labels)."""
        x = torch.stack([self.crop(i, int(offsets[i]), n_frames) for i in idx])
        concepts, targets = self.concepts[idx], self.targets[idx]
        rows = [(k, int(i)) for k, i in enumerate(idx) if int(i) in self.frames]
        if rows:
            concepts, targets = concepts.clone(), targets.clone()
            for k, i in rows:
                c, t = self.window_labels(i, int(offsets[i]), n_frames, scaled=True)
                concepts[k] = torch.as_tensor(c, dtype=torch.float32)
                targets[k] = torch.as_tensor(t, dtype=torch.float32)
        return x.unsqueeze(1), concepts, targets

    def window_labels(self, clip, start: int, n_frames: int, *,
                      scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The labels of one window of a clip: the mean of its per-frame labels over the frames
        ``start .. start + n_frames`` (frames past the clip's end do not count), or the
        clip-level labels for a clip without segments.

        Parameters
        ----------
        clip : index into ``clips`` or a clip id.
        start, n_frames : the window, in frames.
        scaled : z-scored as the model's outputs (True) or in rating units (False; class
            targets are their codes either way).

        Returns
        -------
        (concepts ``(n_concepts,)``, targets ``(n_targets,)``) float64, NaN = no label.
        """
        i = clip if isinstance(clip, (int, np.integer)) else self.clips.index(str(clip))
        if i in self.frames:
            fc, ft = self.frames[i]
            c, t = _window_mean(fc, start, n_frames), _window_mean(ft, start, n_frames)
        else:
            c = self.concepts[i].numpy().astype(np.float64)
            t = self.targets[i].numpy().astype(np.float64)
        if scaled:
            return c, t
        s = self.scales
        return c * s.concept_std + s.concept_mean, t * s.target_std + s.target_mean


def fit_frames(x: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Crop (from the start) or tile ``(..., n_frames')`` to ``(..., n_frames)``."""
    t = x.shape[-1]
    if t == n_frames:
        return x
    if t > n_frames:
        return x[..., :n_frames]
    reps = -(-n_frames // t)
    return torch.cat([x] * reps, dim=-1)[..., :n_frames]


def crop(spec: torch.Tensor, start: int, n_frames: int) -> torch.Tensor:
    """``(n_bands, T)`` -> ``(n_bands, n_frames)`` from ``start``; zero-padded at the end."""
    return fit_crop(spec[:, start:start + n_frames], n_frames)


def fit_crop(piece: torch.Tensor, n_frames: int) -> torch.Tensor:
    """A crop of at most ``n_frames`` frames zero-padded at the end to ``n_frames``."""
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
