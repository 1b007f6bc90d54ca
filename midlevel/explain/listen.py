"""Listenable explanations: the part of a clip an attribution points at, as audio.

An attribution map over the front end's bands and frames ``(n_bands, n_frames)`` becomes a
soft mask in [0, 1] (:func:`attribution_mask`: the positive attribution scaled to its maximum,
or the top-k % of bins, smoothed). The mask is mapped from filterbank bands back to STFT bins
(:func:`bands_to_bins`: each bin takes the filterbank-weighted mean of the band masks it feeds),
applied to the clip's complex STFT computed with the front end's own frames (same frame size,
window and frame centres, so frame ``i`` of the mask is frame ``i`` of the spectrogram) and
inverted by weighted overlap-add (:func:`istft`). The complement ``(1 - mask)`` gives the rest
of the sound; masked + complement = the original clip.

For a concept bottleneck the same works for a concept's attribution ("what in this clip
sounds dissonant").
"""
from __future__ import annotations


import numpy as np
from scipy.ndimage import gaussian_filter

from midlevel.checks import real_number
from midlevel.errors import ListenError

__all__ = ["attribution_mask", "bands_to_bins", "stft", "istft", "masked_audio",
           "listenable", "ListenError"]


def _frontend(frontend):
    if isinstance(frontend, dict):
        from midlevel.data.frontends import make_frontend
        return make_frontend(frontend)
    return frontend


def _frames(frontend, n_samples: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(frame_size, frame start samples, window) of the front end's frames."""
    fe = _frontend(frontend)
    if hasattr(fe, "frame_size"):  # LogFilteredSpectrogram: centres int(i * hop), np.hanning
        from midlevel.data.frontends import frame_centers
        size = int(fe.frame_size)
        centers = frame_centers(n_samples, hop=fe.hop)
        return size, centers - size // 2, np.hanning(size)
    if hasattr(fe, "mel"):  # LogMelSpectrogram: torch centred frames, periodic Hann
        size = int(fe.mel.spectrogram.n_fft)
        hop = int(fe.hop)
        centers = np.arange(fe.num_frames(n_samples)) * hop
        return size, centers - size // 2, np.hanning(size + 1)[:-1]
    raise ListenError(f"front end {type(fe).__name__} has no known framing")


def stft(y: np.ndarray, frontend) -> np.ndarray:
    """Complex STFT on the front end's frames.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    frontend : a front end module or its ``config()`` dict.

    Returns
    -------
    S : np.ndarray [shape=(frame_size // 2 + 1, n_frames), dtype=complex]
    """
    y = np.asarray(y, dtype=np.float64)
    size, starts, window = _frames(frontend, len(y))
    padded = np.pad(y, (size, size))
    idx = (starts + size)[:, None] + np.arange(size)[None, :]
    return np.fft.rfft(padded[idx] * window, axis=1).T


def istft(S: np.ndarray, frontend, length: int) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add (exact for an unmodified STFT).

    Returns
    -------
    y : np.ndarray [shape=(length,), dtype=float32]
    """
    size, starts, window = _frames(frontend, length)
    if S.shape[1] != len(starts):
        raise ListenError(f"STFT has {S.shape[1]} frames, a {length}-sample clip has "
                          f"{len(starts)}")
    frames = np.fft.irfft(S.T, n=size, axis=1) * window
    num = np.zeros(length + 2 * size)
    den = np.zeros(length + 2 * size)
    for s, f in zip(starts + size, frames):
        num[s:s + size] += f
        den[s:s + size] += window ** 2
    num, den = num[size:size + length], den[size:size + length]
    return np.where(den > 1e-8, num / np.maximum(den, 1e-8), 0.0).astype(np.float32)


def bands_to_bins(band_mask: np.ndarray, filterbank) -> np.ndarray:
    """Map a mask over filterbank bands to FFT bins.

    Each bin's mask is the mean of the band masks weighted by how much the bin feeds each band
    (the filterbank row, normalized to sum 1); bins feeding no band get 0 (the model never saw
    them, so no attribution reaches them).

    Parameters
    ----------
    band_mask : np.ndarray [shape=(n_bands, n_frames)]
    filterbank : array [shape=(n_fft_bins, n_bands)] (``frontend.filterbank``)

    Returns
    -------
    bin_mask : np.ndarray [shape=(n_fft_bins, n_frames)]
    """
    fb = np.asarray(filterbank.detach().cpu() if hasattr(filterbank, "detach") else filterbank,
                    dtype=np.float64)
    band_mask = np.asarray(band_mask, dtype=np.float64)
    if fb.shape[1] != band_mask.shape[0]:
        raise ListenError(f"mask has {band_mask.shape[0]} bands, filterbank {fb.shape[1]}")
    row = fb.sum(1, keepdims=True)
    weights = np.divide(fb, row, out=np.zeros_like(fb), where=row > 0)
    return weights @ band_mask


def attribution_mask(values: np.ndarray, *, mode: str = "positive", top: float = 0.1,
                     smooth: float | None = None) -> np.ndarray:
    """Soft mask in [0, 1] from an attribution map.

    Parameters
    ----------
    values : np.ndarray [shape=(n_bands, n_frames)]
    mode : "positive": positive attribution divided by its maximum; "negative": the same for
        the negative attribution; "top": 1 on the ``top`` fraction of bins with the largest
        (positive) attribution, 0 elsewhere.
    smooth : Gaussian smoothing (in bins and frames) of the mask; default 1.0 for "top",
        none otherwise.
    """
    v = np.asarray(values, dtype=np.float64)
    if mode == "positive" or mode == "negative":
        p = np.clip(v if mode == "positive" else -v, 0, None)
        mask = p / p.max() if p.max() > 0 else np.zeros_like(p)
    elif mode == "top":
        top = real_number(top, "top", above=0, most=1, error=ListenError)
        k = max(1, int(round(top * v.size)))
        threshold = np.partition(v.ravel(), v.size - k)[v.size - k]
        mask = ((v >= threshold) & (v > 0)).astype(np.float64)
        smooth = 1.0 if smooth is None else smooth
    else:
        raise ListenError(f"mask mode must be 'positive', 'negative' or 'top', got '{mode}'")
    if smooth:
        mask = gaussian_filter(mask, smooth)
        mask = mask / mask.max() if mask.max() > 0 else mask
    return np.clip(mask, 0.0, 1.0)


def masked_audio(y: np.ndarray, band_mask: np.ndarray, frontend) -> tuple[np.ndarray, np.ndarray]:
    """Apply a band mask ``(n_bands, n_frames)`` to a waveform; return (masked, complement)."""
    fe = _frontend(frontend)
    y = np.asarray(y, dtype=np.float64)
    S = stft(y, fe)
    if band_mask.shape[1] != S.shape[1]:
        raise ListenError(f"mask has {band_mask.shape[1]} frames, the clip's STFT {S.shape[1]}")
    m = bands_to_bins(band_mask, fe.filterbank)
    if m.shape[0] < S.shape[0]:  # madmom's filterbank drops the Nyquist bin
        m = np.concatenate([m, np.repeat(m[-1:], S.shape[0] - m.shape[0], 0)])
    m = np.clip(m, 0.0, 1.0)
    return istft(S * m, fe, len(y)), istft(S * (1 - m), fe, len(y))


def listenable(y: np.ndarray, values: np.ndarray, frontend, *, mode: str = "positive",
               top: float = 0.1, smooth: float | None = None) -> dict:
    """The listenable explanation of one attribution map.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)] the clip at the front end's sample rate.
    values : np.ndarray [shape=(n_bands, n_frames)] attribution on the clip's spectrogram.

    Returns
    -------
    dict with ``masked`` and ``complement`` waveforms ``(n_samples,)`` and ``mask``
    ``(n_bands, n_frames)``.
    """
    values = np.asarray(values)
    if values.ndim == 4:
        values = values[0, 0]
    mask = attribution_mask(values, mode=mode, top=top, smooth=smooth)
    masked, complement = masked_audio(y, mask, frontend)
    return {"masked": masked, "complement": complement, "mask": mask}
