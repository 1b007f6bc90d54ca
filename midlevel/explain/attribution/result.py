"""The result of an attribution: values per input bin with what they explain, tidy views."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from midlevel.io import write_npz


@dataclass
class Attribution:
    """Attributions of one scalar output for a batch of spectrograms.

    Attributes
    ----------
    values : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
        Attribution per input bin, same shape as ``inputs``.
    inputs : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
    predictions : np.ndarray [shape=(batch,)]
        The explained output (model units) for each input; computed on first use when the
        attribution was made with ``predict_fn`` (one forward pass that a caller who only
        wants the map does not pay).
    expected : float or None
        The reference output (mean over the background for SHAP, the baseline's output
        for IG/DeepLift); for additive methods ``values.sum() ~ predictions - expected``.
    method, output, output_kind : str
    seconds : float
        Wall time of the attribution call (all inputs).
    fps : float or None; band_frequencies : np.ndarray [shape=(n_bands,)] or None
    clips : list[str]
    """

    values: np.ndarray
    inputs: np.ndarray
    predictions: np.ndarray
    expected: float | None
    method: str
    output: str
    output_kind: str
    seconds: float
    fps: float | None = None
    band_frequencies: np.ndarray | None = None
    clips: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)  # method tables (LIME, LRP...), built on access
    predict_fn: Callable | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not self.clips:
            self.clips = [f"clip{i}" for i in range(len(self.values))]

    @property
    def ms_per_clip(self) -> float:
        return 1000.0 * self.seconds / max(1, len(self.values))

    @property
    def maps(self) -> np.ndarray:
        """``(batch, n_bands, n_frames)`` view of ``values``."""
        return self.values[:, 0]

    def frame_seconds(self) -> np.ndarray:
        n = self.values.shape[-1]
        return np.arange(n) / self.fps if self.fps else np.full(n, np.nan)

    def band_hz(self) -> np.ndarray:
        n = self.values.shape[-2]
        if self.band_frequencies is not None and len(self.band_frequencies) == n:
            return np.asarray(self.band_frequencies, dtype=float)
        return np.full(n, np.nan)

    def additivity_gap(self) -> np.ndarray:
        """``predictions - expected - values.sum()`` per input (NaN if no reference)."""
        if self.expected is None:
            return np.full(len(self.values), np.nan)
        return self.predictions - self.expected - self.values.reshape(len(self.values), -1).sum(1)

    def _keys(self, n: int, i: int) -> dict:
        return {"clip": self.clips[i], "method": self.method, "output": self.output,
                "output_kind": self.output_kind}

    def time_marginal(self) -> pd.DataFrame:
        """Tidy per-frame sums over bands: clip, method, output, output_kind, frame, seconds,
        attribution, positive, negative."""
        secs = self.frame_seconds()
        frames = []
        for i, m in enumerate(self.maps):
            frames.append(pd.DataFrame({**self._keys(m.shape[1], i), "frame": np.arange(m.shape[1]),
                                        "seconds": secs, "attribution": m.sum(0),
                                        "positive": np.clip(m, 0, None).sum(0),
                                        "negative": np.clip(m, None, 0).sum(0)}))
        return pd.concat(frames, ignore_index=True)

    def frequency_marginal(self) -> pd.DataFrame:
        """Tidy per-band sums over frames: clip, method, output, output_kind, band, hz,
        attribution, positive, negative."""
        hz = self.band_hz()
        frames = []
        for i, m in enumerate(self.maps):
            frames.append(pd.DataFrame({**self._keys(m.shape[0], i), "band": np.arange(m.shape[0]),
                                        "hz": hz, "attribution": m.sum(1),
                                        "positive": np.clip(m, 0, None).sum(1),
                                        "negative": np.clip(m, None, 0).sum(1)}))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """One row per clip: prediction, expected, total attribution, additivity gap, ms."""
        total = self.values.reshape(len(self.values), -1).sum(1)
        return pd.DataFrame({"clip": self.clips, "method": self.method, "output": self.output,
                             "output_kind": self.output_kind, "prediction": self.predictions,
                             "expected": np.nan if self.expected is None else self.expected,
                             "total": total, "additivity_gap": self.additivity_gap(),
                             "ms_per_clip": self.ms_per_clip})

    def save(self, path) -> None:
        """Write an ``.npz`` with values, inputs, predictions and the metadata."""
        write_npz(path, values=self.values.astype(np.float32),
                  inputs=self.inputs.astype(np.float32), predictions=self.predictions,
                  expected=np.nan if self.expected is None else self.expected,
                  method=self.method, output=self.output, output_kind=self.output_kind,
                  seconds=self.seconds, fps=np.nan if self.fps is None else self.fps,
                  band_frequencies=self.band_hz(), clips=np.array(self.clips))

    @classmethod
    def load(cls, path) -> "Attribution":
        with np.load(path, allow_pickle=False) as z:
            fps = float(z["fps"])
            hz = z["band_frequencies"]
            expected = float(z["expected"])
            return cls(values=z["values"], inputs=z["inputs"], predictions=z["predictions"],
                       expected=None if np.isnan(expected) else expected,
                       method=str(z["method"]), output=str(z["output"]),
                       output_kind=str(z["output_kind"]), seconds=float(z["seconds"]),
                       fps=None if np.isnan(fps) else fps,
                       band_frequencies=None if np.isnan(hz).all() else hz,
                       clips=[str(c) for c in z["clips"]])




def _get_predictions(self) -> np.ndarray:
    if self._predictions is None and self.predict_fn is not None:
        self._predictions = np.asarray(self.predict_fn())
        self.predict_fn = None
    return self._predictions


def _set_predictions(self, value) -> None:
    self._predictions = None if value is None else np.asarray(value)


Attribution.predictions = property(_get_predictions, _set_predictions)
