"""Interpretable components of one clip's spectrogram, for LIME and for listening back.

A :class:`Components` holds ``n_components`` masks over the clip's bands and frames, each
bin's masks summing to 1: the mask of component ``k`` is its *share* of each bin. Hard kinds
(time segments, frequency bands, patches) partition the bins (each bin belongs to exactly one
component, masks are 0/1); NMF components are soft (each bin is split between the components
in proportion to their part of the bin's reconstructed magnitude).

Factories (all take the clip's spectrogram ``spec`` ``(n_bands, n_frames)``, or any array
with leading singleton dimensions such as ``(1, 1, n_bands, n_frames)``):

- :func:`time_segments`: fixed-length segments (``n`` of them, or ``seconds`` long), or
  segments cut at detected onsets (``onsets=True``: librosa onset detection on the spectral
  flux of ``spec``);
- :func:`frequency_bands`: ``n`` contiguous groups of the front end's bands;
- :func:`patches`: a ``n_freq`` x ``n_time`` grid of time-frequency rectangles;
- :func:`nmf_components`: a non-negative matrix factorization of the clip's own magnitude
  (scikit-learn ``NMF``), the stand-in for audioLIME's source-separated components.

:func:`midlevel.explain.attribution.nmf.make_components` resolves a factory by name
(``"segments"``, ``"onsets"``, ``"bands"``, ``"patches"``, ``"nmf"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError

__all__ = ["Components", "ComponentError", "time_segments", "frequency_bands", "patches"]


class ComponentError(ExplainError):
    """Components could not be built or used as asked (shapes, parameters)."""


@dataclass
class Components:
    """Masks over one clip's bins that split it into interpretable components.

    Attributes
    ----------
    masks : np.ndarray [shape=(n_components, n_bands, n_frames), dtype=float64]
        Share of each bin that belongs to each component, in [0, 1]; summed over components
        every bin gives 1 (hard kinds: exactly one mask is 1 at each bin).
    names : list[str]
        One readable name per component (time span, frequency range, ...).
    kind : str
        ``"segments"``, ``"onsets"``, ``"bands"``, ``"patches"`` or ``"nmf"``.
    W : np.ndarray [shape=(n_bands, n_components)] or None
        NMF only: spectral templates (in the factored domain, see :func:`nmf_components`).
    H : np.ndarray [shape=(n_components, n_frames)] or None
        NMF only: activations.
    error : float or None
        NMF only: relative reconstruction error ``||V - W H||_F / ||V||_F`` of the factored
        magnitude ``V``.
    info : dict
        Kind-specific details (segment boundaries, NMF errors per rank tried, the spectrogram
        domain factored, the error on the compressed spectrogram, whether onsets fell back
        to fixed segments...).
    """

    masks: np.ndarray
    names: list[str]
    kind: str
    W: np.ndarray | None = None
    H: np.ndarray | None = None
    error: float | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.masks = np.asarray(self.masks, dtype=np.float64)
        if self.masks.ndim != 3:
            raise ComponentError(f"masks must be (n_components, n_bands, n_frames), got shape "
                                 f"{self.masks.shape}")
        if len(self.names) != len(self.masks):
            raise ComponentError(f"{len(self.masks)} masks but {len(self.names)} names")
        if self.masks.min() < -1e-9 or self.masks.max() > 1 + 1e-9:
            raise ComponentError(f"masks must lie in [0, 1], got [{self.masks.min():.3g}, "
                                 f"{self.masks.max():.3g}]")
        total = self.masks.sum(0)
        if not np.allclose(total, 1.0, atol=1e-6):
            raise ComponentError(f"masks must sum to 1 at every bin; sums range over "
                                 f"[{total.min():.4g}, {total.max():.4g}]")

    @property
    def n_components(self) -> int:
        return int(self.masks.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_bands, n_frames)`` of the clip."""
        return tuple(self.masks.shape[1:])

    @property
    def hard(self) -> bool:
        """True when every mask is 0/1 (the components partition the bins)."""
        return bool(np.all((self.masks == 0) | (self.masks == 1)))

    @property
    def area(self) -> np.ndarray:
        """Share of the clip's bins each component holds ``(n_components,)`` (sums to 1)."""
        return self.masks.reshape(self.n_components, -1).mean(1)

    def combine(self, z) -> np.ndarray:
        """Kept share of each bin when components with ``z_k = 1`` are kept.

        Parameters
        ----------
        z : array [shape=(n_components,) or (n, n_components)], 0/1 (or in [0, 1])

        Returns
        -------
        keep : np.ndarray [shape=(n_bands, n_frames) or (n, n_bands, n_frames)]
            ``sum_k z_k m_k``; a perturbed input is ``reference + (x - reference) * keep``.
        """
        z = np.asarray(z, dtype=np.float64)
        return np.tensordot(z, self.masks, axes=([-1], [0]))

    def spread(self, weights) -> np.ndarray:
        """Bin attribution from component weights ``(n_components,)``.

        Component ``k``'s weight is spread over its bins in proportion to its share of each
        bin: ``values = sum_k w_k m_k / sum(m_k)``, so the map sums to ``sum_k w_k`` (the
        surrogate's change from all-removed to the clip).

        Returns
        -------
        values : np.ndarray [shape=(n_bands, n_frames)]
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n_components,):
            raise ComponentError(f"need {self.n_components} weights, got shape {w.shape}")
        size = self.masks.reshape(self.n_components, -1).sum(1)
        density = np.divide(w, size, out=np.zeros_like(w), where=size > 0)
        return np.tensordot(density, self.masks, axes=([0], [0]))

    def table(self) -> pd.DataFrame:
        """Tidy: component (index), name, kind, area."""
        return pd.DataFrame({"component": np.arange(self.n_components), "name": self.names,
                             "kind": self.kind, "area": self.area})


# ------------------------------------------------------------------------------ helpers


def _as_spec(spec) -> np.ndarray:
    """``(n_bands, n_frames)`` float64 array from an array/tensor with leading singletons."""
    if hasattr(spec, "detach"):
        spec = spec.detach().cpu().numpy()
    s = np.asarray(spec, dtype=np.float64)
    while s.ndim > 2 and s.shape[0] == 1:
        s = s[0]
    if s.ndim != 2:
        raise ComponentError(f"need one clip's spectrogram (n_bands, n_frames), got shape "
                             f"{np.shape(spec)}")
    if not np.all(np.isfinite(s)):
        raise ComponentError("the spectrogram holds non-finite values")
    return s


def _edges(n_items: int, n: int, what: str) -> np.ndarray:
    """``n + 1`` increasing integer boundaries splitting ``n_items`` as evenly as possible."""
    n = int(n)
    if not 1 <= n <= n_items:
        raise ComponentError(f"cannot split {n_items} {what} into {n} groups (need 1 <= n <= "
                             f"{n_items})")
    return np.round(np.linspace(0, n_items, n + 1)).astype(int)


def _hard_masks(labels: np.ndarray, n: int) -> np.ndarray:
    """0/1 masks ``(n, ...)`` from an integer label map."""
    return (labels[None] == np.arange(n).reshape(-1, *([1] * labels.ndim))).astype(np.float64)


def _span_name(t0: int, t1: int, fps: float | None) -> str:
    if fps:
        return f"{t0 / fps:.2f}-{t1 / fps:.2f} s"
    return f"frames {t0}-{t1}"


def _band_name(b0: int, b1: int, band_frequencies) -> str:
    if band_frequencies is not None and len(band_frequencies) >= b1:
        lo, hi = float(band_frequencies[b0]), float(band_frequencies[b1 - 1])
        return f"{lo:.0f}-{hi:.0f} Hz"
    return f"bands {b0}-{b1}"


# ------------------------------------------------------------------------------ factories


def time_segments(spec, *, n: int | None = None, seconds: float | None = None,
                  onsets: bool = False, fps: float = 31.25, min_seconds: float = 0.25,
                  backtrack: bool = False) -> Components:
    """Split a clip into consecutive time segments (all bands of a frame range).

    Parameters
    ----------
    spec : array [shape=(n_bands, n_frames)] (or with leading singleton dimensions)
        The clip's (log-compressed) spectrogram.
    n : int, optional
        Fixed: the number of equal segments. Onsets: the most segments to keep (the
        ``n - 1`` strongest onsets become boundaries).
    seconds : float, optional
        Fixed: the segment length in seconds (the last segment may be shorter; one shorter
        than half a segment is merged into the one before). Ignored with ``onsets``.
        Without ``n`` and ``seconds``: 10 segments.
    onsets : bool
        Cut at onsets instead: ``librosa.onset.onset_strength(S=spec, center=False)`` (the
        spectral flux of ``spec``: the increase of each band from the previous frame,
        half-wave rectified, averaged over bands; ``spec`` is taken as the log spectrogram
        librosa expects; ``center=False`` because the frames are already centred) is
        peak-picked by ``librosa.onset.onset_detect(onset_envelope=...)``; each boundary is
        an onset frame (the first frame of the increase), or with ``backtrack`` the
        preceding minimum of the frame energy ``spec.sum(0)``. librosa's time constants are
        expressed through ``sr / hop``; the frame rate is passed as ``sr = fps * 512,
        hop_length = 512``. Segments shorter than ``min_seconds`` are merged into the one
        before. With fewer than two segments it falls back to fixed segments
        (``info["fallback"] = True``). Onsets mark starts only: a sound's end is not a
        boundary.
    fps : float
        Frames per second (names in seconds, ``seconds`` and ``min_seconds`` in frames).

    Returns
    -------
    Components of kind ``"segments"`` (fixed) or ``"onsets"``; ``info["boundaries"]``: the
    frame boundaries ``(n_components + 1,)``.
    """
    s = _as_spec(spec)
    n_frames = s.shape[1]
    kind, info = "segments", {}
    edges = None
    if onsets:
        edges = _onset_edges(s, n=n, fps=fps, min_frames=max(1, int(round(min_seconds * fps))),
                             backtrack=backtrack)
        if edges is None:
            info["fallback"] = True
        else:
            kind, info["fallback"] = "onsets", False
    if edges is None:
        if seconds is not None and not onsets:
            step = max(1, int(round(seconds * fps)))
            edges = list(range(0, n_frames, step)) + [n_frames]
            if len(edges) > 2 and edges[-1] - edges[-2] < step / 2:
                del edges[-2]
            edges = np.asarray(edges)
        else:
            edges = _edges(n_frames, min(n or 10, n_frames), "frames")
    edges = np.asarray(edges, dtype=int)
    labels = np.searchsorted(edges, np.arange(n_frames), side="right") - 1
    masks = np.broadcast_to(_hard_masks(labels, len(edges) - 1)[:, None, :],
                            (len(edges) - 1, s.shape[0], n_frames)).copy()
    names = [_span_name(a, b, fps) for a, b in zip(edges[:-1], edges[1:])]
    info["boundaries"] = edges
    return Components(masks, names, kind, info=info)


def _onset_edges(s: np.ndarray, *, n: int | None, fps: float, min_frames: int,
                 backtrack: bool):
    import librosa

    n_frames = s.shape[1]
    sr, hop = float(fps) * 512, 512
    # center=False: the frames are already centred (librosa's default shifts the envelope
    # by n_fft // (2 * hop) frames to undo its own STFT framing)
    env = librosa.onset.onset_strength(S=s, sr=sr, hop_length=hop, center=False)
    peaks = np.asarray(librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop,
                                                  units="frames"), dtype=int)
    if n is not None and len(peaks) > n - 1:
        peaks = np.sort(peaks[np.argsort(-env[peaks], kind="stable")[:max(0, n - 1)]])
    if len(peaks) == 0:
        return None
    cuts = librosa.onset.onset_backtrack(peaks, s.sum(0)) if backtrack else peaks
    edges = [0]
    for c in np.unique(cuts):
        if c - edges[-1] >= min_frames and n_frames - c >= min_frames:
            edges.append(int(c))
    edges.append(n_frames)
    return np.asarray(edges) if len(edges) > 2 else None


def frequency_bands(spec, n: int = 8, *, band_frequencies=None, fps: float | None = None
                    ) -> Components:
    """Split a clip into ``n`` contiguous groups of bands (all frames each).

    Parameters
    ----------
    spec : array [shape=(n_bands, n_frames)]
    n : int
        Number of groups (as equal in band count as possible; with log-spaced bands each
        group spans about the same number of octaves).
    band_frequencies : array [shape=(n_bands,)], optional
        Centre frequencies in Hz, for the names.

    Returns
    -------
    Components of kind ``"bands"``; ``info["boundaries"]``: band boundaries ``(n + 1,)``.
    """
    s = _as_spec(spec)
    n_bands, n_frames = s.shape
    edges = _edges(n_bands, n, "bands")
    labels = np.searchsorted(edges, np.arange(n_bands), side="right") - 1
    masks = np.broadcast_to(_hard_masks(labels, n)[:, :, None], (n, n_bands, n_frames)).copy()
    names = [_band_name(a, b, band_frequencies) for a, b in zip(edges[:-1], edges[1:])]
    return Components(masks, names, "bands", info={"boundaries": edges})


def patches(spec, n_time: int = 6, n_freq: int = 4, *, fps: float | None = 31.25,
            band_frequencies=None) -> Components:
    """Split a clip into a grid of ``n_freq`` x ``n_time`` time-frequency rectangles.

    Component ``i * n_time + j`` covers band group ``i`` (low to high) and frame group ``j``.

    Returns
    -------
    Components of kind ``"patches"``; ``info["band_boundaries"]``, ``info["frame_boundaries"]``.
    """
    s = _as_spec(spec)
    n_bands, n_frames = s.shape
    be, fe = _edges(n_bands, n_freq, "bands"), _edges(n_frames, n_time, "frames")
    bl = np.searchsorted(be, np.arange(n_bands), side="right") - 1
    fl = np.searchsorted(fe, np.arange(n_frames), side="right") - 1
    labels = bl[:, None] * n_time + fl[None, :]
    masks = _hard_masks(labels, n_freq * n_time)
    names = [f"{_span_name(fe[j], fe[j + 1], fps)}, {_band_name(be[i], be[i + 1], band_frequencies)}"
             for i in range(n_freq) for j in range(n_time)]
    return Components(masks, names, "patches",
                      info={"band_boundaries": be, "frame_boundaries": fe})
