"""Levels of decoded audio: silence, the DC offset, the peak and the quiet-audio warning.

A signal with no sample above ``SILENCE`` once its DC offset (mean) is removed is silent and
cannot be normalized; one whose peak is below ``QUIET_DBFS`` is normalized to full scale like
music, with a warning naming the file (:func:`midlevel.data.audio.load_audio`,
:mod:`midlevel.data.validate`).
"""
from __future__ import annotations

import numpy as np

from midlevel.errors import AudioError

# No sample above SILENCE (after the DC offset is removed): silent, cannot be normalized.
# A peak below QUIET_DBFS (dB re full scale, i.e. 0.001) but above SILENCE is normalized to
# full scale like music, with a warning naming the file.
SILENCE = 1e-6
QUIET_DBFS = -60.0


def is_silent(y: np.ndarray, *, threshold: float = 1e-6) -> bool:
    """Whether no sample exceeds ``threshold`` in absolute value.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]
    threshold : float

    Returns
    -------
    bool
    """
    return y.size == 0 or float(np.max(np.abs(y))) <= threshold


def remove_dc(y: np.ndarray) -> np.ndarray:
    """Subtract the mean along the last axis (a DC offset would otherwise count in the peak
    that normalization divides by, and move every level-sensitive feature).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]

    Returns
    -------
    np.ndarray [same shape, dtype=float32]
    """
    y = np.asarray(y, dtype=np.float32)
    if y.shape[-1] == 0:
        return y
    return y - y.mean(axis=-1, dtype=np.float64, keepdims=True).astype(np.float32)


def signal_peak(y: np.ndarray, path, *, channels: np.ndarray | None = None
                ) -> tuple[np.ndarray, float]:
    """``y`` without its DC offset and its peak absolute value; :class:`AudioError` if that
    is silent, saying why (nothing above 1e-6, a constant offset only, or - given the
    ``channels`` of a mono down-mix - channels that cancel in the down-mix).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]
    channels : np.ndarray [shape=(channels, n_samples)] or None
        The channels ``y`` is the down-mix of.

    Returns
    -------
    y : np.ndarray [same shape, dtype=float32]
    peak : float
    """
    raw_peak = _peak(y)
    y = remove_dc(y)
    peak = _peak(y)
    if peak > SILENCE:
        return y, peak
    if channels is not None and channels.shape[0] > 1 and _peak(remove_dc(channels)) > SILENCE:
        raise AudioError(f"{path}: audio is silent in the mono down-mix: its channels cancel "
                         f"(anti-phase; peak {_dbfs(_peak(channels)):.1f} dBFS per channel), "
                         f"cannot normalize")
    if raw_peak > SILENCE:
        raise AudioError(f"{path}: audio is silent: it holds only a constant (DC) offset of "
                         f"{raw_peak:.3g}, cannot normalize")
    raise AudioError(f"{path}: audio is silent (no sample above {SILENCE:g}), cannot normalize")


def quiet_warning(path, peak: float, *, channels: np.ndarray | None = None) -> str | None:
    """A warning naming the file when its (DC-free) peak is below ``QUIET_DBFS``, else None.

    Parameters
    ----------
    peak : float
        Peak absolute value of the DC-free (down-mixed) signal.
    channels : np.ndarray [shape=(channels, n_samples)] or None
        The channels of a down-mix, to say when they are loud but cancel (anti-phase).
    """
    if _dbfs(peak) >= QUIET_DBFS:
        return None
    text = (f"{path}: very quiet audio: peak {_dbfs(peak):.1f} dBFS, below {QUIET_DBFS:g} "
            f"dBFS; it is normalized to full scale like music, so what it predicts may be "
            f"noise")
    if channels is not None and channels.shape[0] > 1:
        loud = _peak(remove_dc(channels))
        if _dbfs(loud) >= QUIET_DBFS:
            text += (f"; its channels (peak {_dbfs(loud):.1f} dBFS) nearly cancel in the mono "
                     f"down-mix (anti-phase)")
    return text


def _peak(y: np.ndarray) -> float:
    return float(np.max(np.abs(y))) if np.size(y) else 0.0


def _dbfs(peak: float) -> float:
    return 20.0 * float(np.log10(max(peak, 1e-12)))
