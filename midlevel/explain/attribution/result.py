"""The result of an attribution: values per input bin with what they explain, tidy views."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from midlevel.io import write_npz


NOT_ADDITIVE = frozenset({"occlusion", "gradcam"})
"""Methods whose maps' sums are no share of the output (see :attr:`Attribution.additive`)."""

RELATIVE = frozenset({"gradcam"})
"""Methods whose values are in no output unit (:meth:`Attribution.in_rating_units` calls
their units ``relative``)."""


@dataclass
class Attribution:
    """Attributions of one scalar output for a batch of spectrograms.

    Attributes
    ----------
    values : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
        Attribution per input bin, same shape as ``inputs``.
    inputs : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
    predictions : np.ndarray [shape=(batch,)]
        The explained output (in ``units``) for each input; computed on first use when the
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
    units : str
        Units of ``values``, ``predictions`` and ``expected``: "standardized" (a midlevel
        model's z-scored regression output, as its layers compute it), "rating" (the units
        ``Run.predict`` reports), "logit" (a binary target or binary concept: the
        log-odds, whose probability ``predict`` reports), "centred logit" (a class: its logit
        minus its classes' mean, fixed by the probabilities ``predict`` reports) or "model"
        (a model without stored scales).
    padding : np.ndarray [shape=(batch,)] or None
        Attribution on the zero padding of an input shorter than the model's window, not on
        the map (LRP: the model reads the padding as silence; see ``MethodResult.padding``);
        :meth:`additivity_gap` counts it.
    rating : (offset, scale, units) or None
        How to reach the units ``Run.predict`` reports: ``offset + scale * output``, and
        attributions times ``scale`` (exact: they are linear in the output's scale); None when
        ``units`` already are those (:meth:`in_rating_units`).
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
    units: str = "model"
    rating: tuple | None = None
    padding: np.ndarray | None = None

    def __post_init__(self):
        if not self.clips:
            self.clips = [f"clip{i}" for i in range(len(self.values))]

    def in_rating_units(self) -> "Attribution":
        """This attribution in the units ``Run.predict`` reports (itself when it already is):
        ``predictions`` and ``expected`` mapped by ``offset + scale * output``, ``values``
        multiplied by ``scale``, so ``values.sum() ~ predictions - expected`` still holds for
        additive methods. Method tables (LIME, LRP...) are kept as they are."""
        if self.rating is None:
            return self
        offset, scale, units = self.rating
        offset, scale = float(offset), float(scale)
        if self.method in RELATIVE:
            units = "relative"  # scaled alike, but no value is in output units
        source, predict_fn = self, None
        if self._predictions is None:  # keep the forward pass lazy
            predict_fn = lambda: offset + scale * np.asarray(source.predictions)  # noqa: E731
        return Attribution(
            values=self.values * np.float32(scale), inputs=self.inputs,
            predictions=None if predict_fn else offset + scale * self.predictions,
            expected=None if self.expected is None else offset + scale * self.expected,
            method=self.method, output=self.output, output_kind=self.output_kind,
            seconds=self.seconds, fps=self.fps, band_frequencies=self.band_frequencies,
            clips=list(self.clips), options=dict(self.options), tables=self.tables,
            predict_fn=predict_fn, units=units, rating=None,
            padding=None if self.padding is None else scale * np.asarray(self.padding))

    @property
    def additive(self) -> bool:
        """Whether the map's sums are shares of the output (``values.sum()`` ~ ``predictions
        - expected`` for the methods with completeness; LIME spreads each component's weight
        over its bins): not so for occlusion (each bin holds its whole patch's removal effect,
        so a sum counts a patch once per bin it covers) nor Grad-CAM (relative values)."""
        return self.method not in NOT_ADDITIVE

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
        """``predictions - expected - values.sum() - padding`` per input (NaN if no
        reference; ``padding`` 0 when there is none)."""
        if self.expected is None:
            return np.full(len(self.values), np.nan)
        gap = self.predictions - self.expected - self.values.reshape(len(self.values), -1).sum(1)
        return gap if self.padding is None else gap - np.asarray(self.padding)

    def _keys(self, n: int, i: int) -> dict:
        return {"clip": self.clips[i], "method": self.method, "output": self.output,
                "output_kind": self.output_kind, "units": self.units,
                "additive": self.additive}  # (sums of a map that is not: no output share)

    def time_marginal(self) -> pd.DataFrame:
        """Tidy per-frame sums over bands: clip, method, output, output_kind, units, additive
        (False: the sums are no share of the output, :attr:`additive`), frame, seconds,
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
        """Tidy per-band sums over frames: clip, method, output, output_kind, units, additive,
        band, hz, attribution, positive, negative."""
        hz = self.band_hz()
        frames = []
        for i, m in enumerate(self.maps):
            frames.append(pd.DataFrame({**self._keys(m.shape[0], i), "band": np.arange(m.shape[0]),
                                        "hz": hz, "attribution": m.sum(1),
                                        "positive": np.clip(m, 0, None).sum(1),
                                        "negative": np.clip(m, None, 0).sum(1)}))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """One row per clip: prediction, expected, total attribution (on the map; NaN for a
        map that is not :attr:`additive`, whose sum is no share of the output), padding
        (attribution on the padding of a clip shorter than the window; 0 for the methods
        that give it none), additivity gap (all in ``units``, a column too), ms."""
        total = self.values.reshape(len(self.values), -1).sum(1)
        if not self.additive:
            total = np.full(len(total), np.nan)
        padding = np.zeros(len(total)) if self.padding is None else np.asarray(self.padding)
        return pd.DataFrame({"clip": self.clips, "method": self.method, "output": self.output,
                             "output_kind": self.output_kind, "units": self.units,
                             "prediction": self.predictions,
                             "expected": np.nan if self.expected is None else self.expected,
                             "total": total, "additive": self.additive, "padding": padding,
                             "additivity_gap": self.additivity_gap(),
                             "ms_per_clip": self.ms_per_clip})

    def save(self, path) -> None:
        """Write an ``.npz`` with values, inputs, predictions and the metadata."""
        write_npz(path, values=self.values.astype(np.float32),
                  inputs=self.inputs.astype(np.float32), predictions=self.predictions,
                  expected=np.nan if self.expected is None else self.expected,
                  method=self.method, output=self.output, output_kind=self.output_kind,
                  seconds=self.seconds, fps=np.nan if self.fps is None else self.fps,
                  band_frequencies=self.band_hz(), clips=np.array(self.clips),
                  units=self.units, rating=np.array(self.rating[:2] if self.rating else
                                                    [np.nan, np.nan], dtype=np.float64),
                  rating_units=self.rating[2] if self.rating else "",
                  padding=np.full(len(self.values), np.nan) if self.padding is None
                  else np.asarray(self.padding, dtype=np.float64))

    @classmethod
    def load(cls, path) -> "Attribution":
        with np.load(path, allow_pickle=False) as z:
            fps = float(z["fps"])
            hz = z["band_frequencies"]
            expected = float(z["expected"])
            rating = None  # files written before units were stored: model units, unknown map
            if "rating" in z.files and np.isfinite(z["rating"]).all():
                rating = (*(float(v) for v in z["rating"]), str(z["rating_units"]))
            return cls(values=z["values"], inputs=z["inputs"], predictions=z["predictions"],
                       expected=None if np.isnan(expected) else expected,
                       method=str(z["method"]), output=str(z["output"]),
                       output_kind=str(z["output_kind"]), seconds=float(z["seconds"]),
                       fps=None if np.isnan(fps) else fps,
                       band_frequencies=None if np.isnan(hz).all() else hz,
                       clips=[str(c) for c in z["clips"]],
                       units=str(z["units"]) if "units" in z.files else "model",
                       rating=rating, padding=_padding(z))




def _padding(z) -> np.ndarray | None:
    """The stored ``padding`` (None where the file has none: all NaN, or written before it)."""
    if "padding" not in z.files or np.isnan(z["padding"]).all():
        return None
    return z["padding"]


def _get_predictions(self) -> np.ndarray:
    if self._predictions is None and self.predict_fn is not None:
        self._predictions = np.asarray(self.predict_fn())
        self.predict_fn = None
    return self._predictions


def _set_predictions(self, value) -> None:
    self._predictions = None if value is None else np.asarray(value)


Attribution.predictions = property(_get_predictions, _set_predictions)
