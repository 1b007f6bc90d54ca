"""Levels of decoded audio: silence, the DC offset, the peak, the quiet-audio and the
hard-clipping warnings.

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
# A mono down-mix whose power is this many dB below what unrelated channels would give (their
# mean power / the channel count, :func:`cancellation_db`): the channels cancel (anti-phase;
# for two channels of equal level -7 dB is a correlation of -0.8, the down-mix 10 dB below
# the channels, where music's channels correlate positively or not at all). It is normalized
# like music, and the model reads what the channels do not share: warned about, naming the
# file. Judged against unrelated channels, ten channels with one of them playing are not
# taken for cancelling ones.
CANCEL_DB = -7.0
# Two channels of more than two whose sum is this many dB below their own power (for stereo
# the same as CANCEL_DB): a cancelling pair among unrelated channels.
PAIR_CANCEL_DB = -10.0
# A signal that loses this many dB of its power when resampled to the front end's rate: its
# content lies above the new Nyquist frequency, and what is left (the resampler's residue)
# is normalized to full scale: warned about, naming the file.
BAND_LOSS_DB = -20.0
# Hard clipping leaves flat runs at a channel's rails: CLIP_RUN or more consecutive samples
# within CLIP_TOLERANCE (of the peak) of the channel's highest or lowest value. A channel with
# CLIP_SHARE of its samples or more in such runs is warned about, naming the file: the model
# reads the clipping's distortion as part of the music. A full-scale sine has three samples
# that flat at its crests only below 1/1000 of the sample rate (44 Hz at 44.1 kHz; rounded to
# 16 bits, below 30 Hz); a mix of four tones driven 5-20 % past full scale and rounded to 16
# bits has 0.2-1.5 % of its samples there (2 % past: 0.0-0.25 %, by the tones' phases). A
# channel peaking below QUIET_DBFS is not judged: its few rounding levels are flat anyway.
# Measured on 16-bit WAV copies of the 360 Soundtracks MP3s (decoded, scaled to a 0.99 peak)
# and a synthetic world of 600 WAVs: no channel has a single such run.
# Only lossless linear samples are judged (PCM, float, ALAC; FLAC decodes to PCM): a lossy
# decoder (MP3, Vorbis, Opus) rings past the rails, leaving no flat run to see, and companded
# or ADPCM samples (mu-law, A-law) are so coarse near full scale that clean music sits flat
# there (0.11-0.17 % on re-audit 16's music). At least CLIP_MIN_RUNS runs are asked for:
# a 0.1-s kick at 40 Hz rounded to 16 bits has a few flat crests.
CLIP_RUN = 3
CLIP_TOLERANCE = 2e-5
CLIP_SHARE = 1e-3
CLIP_MIN_RUNS = 8


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


def quiet_warning(path, peak: float, *, channels: np.ndarray | None = None,
                  mix: np.ndarray | None = None) -> str | None:
    """A warning naming the file when its (DC-free) peak is below ``QUIET_DBFS``, or when
    the channels of a down-mix cancel in it (its power ``CANCEL_DB`` or more below what
    unrelated channels give, :func:`cancellation_db`), else None.

    Parameters
    ----------
    peak : float
        Peak absolute value of the DC-free (down-mixed) signal.
    channels : np.ndarray [shape=(channels, n_samples)] or None
        The channels of a down-mix, to say when they are loud but cancel (anti-phase).
    mix : np.ndarray [shape=(n_samples,)] or None
        The DC-free down-mix of ``channels`` (None: the cancellation is judged only for a
        very quiet down-mix).
    """
    if _dbfs(peak) >= QUIET_DBFS:
        if channels is None or mix is None or channels.shape[0] < 2:
            return None
        drop = cancellation_db(mix, channels)
        pair, (i, j) = (pair_cancellation_db(channels) if channels.shape[0] > 2
                        else (0.0, (0, 1)))
        if drop >= CANCEL_DB and pair >= PAIR_CANCEL_DB:
            return None
        where = (f"the down-mix's power is {-drop:.1f} dB below what unrelated channels "
                 f"would give" if drop < CANCEL_DB else
                 f"channels {i + 1} and {j + 1} cancel each other: their sum is "
                 + (f"{-pair:.1f} dB below their own power" if np.isfinite(pair) else
                    "silent"))
        return (f"{path}: its {channels.shape[0]} channels cancel in the mono down-mix "
                f"(anti-phase): {where}; it is normalized like music, so the model reads what "
                f"the channels do not share (a channel's polarity may be inverted)")
    text = (f"{path}: very quiet audio: peak {_dbfs(peak):.1f} dBFS, below {QUIET_DBFS:g} "
            f"dBFS; it is normalized to full scale like music, so what it predicts may be "
            f"noise")
    if channels is not None and channels.shape[0] > 1:
        loud = _peak(remove_dc(channels))
        if _dbfs(loud) >= QUIET_DBFS:
            text += (f"; its channels (peak {_dbfs(loud):.1f} dBFS) nearly cancel in the mono "
                     f"down-mix (anti-phase)")
    return text


def clipped_share(y: np.ndarray) -> tuple[float, int]:
    """The largest share, over channels, of samples in flat runs at the channel's rails
    (``CLIP_RUN`` or more consecutive samples within ``CLIP_TOLERANCE`` x peak of its
    maximum or its minimum), and that channel's number of such runs; channels peaking below
    ``QUIET_DBFS`` are not judged.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (channels, n_samples)], the raw decoded samples
        (before DC removal: the rails of a clipped channel are its own extremes).
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float32))
    worst = (0.0, 0)
    for channel in y:
        if channel.size < CLIP_RUN:
            continue
        hi, lo = float(channel.max()), float(channel.min())
        peak = max(abs(hi), abs(lo))
        if _dbfs(peak) < QUIET_DBFS:
            continue  # a few quantization levels: flat by rounding (warned about as quiet)
        tol = CLIP_TOLERANCE * peak
        rails = (channel >= hi - tol, channel <= lo + tol)
        if sum(np.count_nonzero(r) for r in rails) < CLIP_SHARE * channel.size:
            continue  # too few samples at the rails to matter (the common case: fast)
        samples, runs = 0, 0
        for at_rail in rails:
            edges = np.flatnonzero(np.diff(at_rail.view(np.int8), prepend=0, append=0))
            lengths = edges[1::2] - edges[::2]
            flat = lengths[lengths >= CLIP_RUN]
            samples, runs = samples + int(flat.sum()), runs + flat.size
        if samples / channel.size > worst[0]:
            worst = (samples / channel.size, runs)
    return worst


def judges_clipping(subtype: str | None) -> bool:
    """Whether samples of libsndfile's ``subtype`` ("PCM_16", "FLOAT", "MPEG_LAYER_III", ...)
    can show hard clipping as flat runs: lossless linear ones, and unknown ones (None or ""
    for arrays given in memory)."""
    return (not subtype or subtype.startswith(("PCM_", "ALAC_"))
            or subtype in ("FLOAT", "DOUBLE"))


def clipping_warning(path, y: np.ndarray) -> str | None:
    """A warning naming the file when a channel of ``y`` (raw samples, see
    :func:`clipped_share`) holds ``CLIP_SHARE`` or more of its samples in ``CLIP_MIN_RUNS``
    or more flat runs at its rails, as hard clipping (or a square wave) leaves them; else
    None. Call it on samples :func:`judges_clipping` accepts."""
    share, runs = clipped_share(y)
    if share < CLIP_SHARE or runs < CLIP_MIN_RUNS:
        return None
    return (f"{path}: looks hard-clipped: {100 * share:.2g} % of a channel's samples sit in "
            f"{runs} flat runs at its highest or lowest value; the model reads the "
            f"clipping's distortion as part of the music")


def cancellation_db(mix: np.ndarray, channels: np.ndarray) -> float:
    """The power of the DC-free down-mix ``mix`` ``(n_samples,)`` relative to what unrelated
    DC-free ``channels`` ``(k, n_samples)`` give (their mean power / k), in dB: about 0 for
    unrelated channels (or one channel playing among silent ones), ``10 log10 k`` for
    identical ones, -inf for channels that cancel exactly."""
    frames = _frames(channels)
    n, k = max(frames.shape[0], 1), max(frames.shape[1], 1)
    # (n_samples, channels), as decoded: one dot product over the clip gives the channels'
    # summed squares with no copy of the clip, and every 64th sample their DC offsets, which
    # matter only when large (0.5 ms for 30 s of stereo; a float64 copy took 19 ms)
    square = _power(frames)
    mean = channel_means(frames)
    power = square - float(np.sum(mean ** 2)) / k
    return _db(_power(mix)) - _db(max(power, 0.0) / k)


def _frames(channels: np.ndarray) -> np.ndarray:
    """``channels`` ``(k, n_samples)`` as ``(n_samples, k)`` float32: the decoded layout, a
    view where ``channels`` is the transpose of what the decoder gave (no copy)."""
    return np.asarray(channels, dtype=np.float32).reshape(-1, np.shape(channels)[-1]).T


def channel_means(frames: np.ndarray, step: int = 64) -> np.ndarray:
    """Each channel's mean (DC offset) of ``frames`` ``(n_samples, channels)``, from every
    ``step``-th sample: a DC offset that matters for a power is large against the signal, and
    a 1/64 sample of a clip finds it to about 1 % of the signal's sd (the full sum over the
    clip's rows cost more than the rest of the check)."""
    return np.asarray(frames[::step], dtype=np.float64).mean(axis=0) if len(frames) else \
        np.zeros(frames.shape[1])


def pair_cancellation_db(channels: np.ndarray) -> tuple[float, tuple[int, int]]:
    """The lowest power of the sum of two DC-free channels relative to their own summed
    power, in dB, and the pair: 0 for unrelated channels (or a silent one), 10 log10 2 for
    identical ones, -inf for a pair that cancels exactly. Judged for files of more than two
    channels, where a cancelling pair hides among unrelated channels in the whole down-mix
    (re-audit 14: left and right cancelling among six channels read -1.75 dB)."""
    frames = _frames(channels)
    n, k = max(frames.shape[0], 1), frames.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        gram = (frames.T @ frames).astype(np.float64) / n
    mean = channel_means(frames)
    cov = gram - np.outer(mean, mean)
    power = np.diag(cov)
    best, pair = 0.0, (0, 1)
    for a in range(k):
        for b in range(a + 1, k):
            both = power[a] + power[b]
            if not np.isfinite(both) or both <= 0:
                continue
            ratio = _db(max(both + 2 * cov[a, b], 0.0)) - _db(both)
            if ratio < best:
                best, pair = ratio, (a, b)
    return best, pair


def band_loss_db(source: np.ndarray, resampled: np.ndarray) -> float:
    """The power of ``resampled`` relative to ``source`` (both ``(..., n_samples)``), in dB:
    about 0 unless the signal's content lies above the new Nyquist frequency."""
    return _db(_power(resampled)) - _db(_power(source))


def _power(y: np.ndarray) -> float:
    """Mean square of ``y``: a float32 dot product (a few % of a clip's front end; a float64
    copy of the clip cost half of it), in float64 where float32 overflows (samples near
    1e19)."""
    flat = np.ascontiguousarray(y, dtype=np.float32).ravel()
    if flat.size == 0:
        return 0.0
    with np.errstate(over="ignore"):
        power = float(np.dot(flat, flat)) / flat.size
    if not np.isfinite(power):
        power = float(np.mean(np.square(flat, dtype=np.float64)))
    return power


def _db(power: float) -> float:
    return 10.0 * float(np.log10(power)) if power > 0 else -np.inf


def _peak(y: np.ndarray) -> float:
    return float(np.max(np.abs(y))) if np.size(y) else 0.0


def _dbfs(peak: float) -> float:
    return 20.0 * float(np.log10(max(peak, 1e-12)))
