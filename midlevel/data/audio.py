"""Reading audio files: decode (soundfile), down-mix, remove the DC offset, resample,
peak-normalize.

Every failure is an :class:`~midlevel.errors.AudioError` whose message starts with the file.
soundfile (libsndfile >= 1.1) decodes wav, flac, ogg and mp3.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from midlevel.data.audio_header import declared_frames
from midlevel.data.loudness import (  # noqa: F401  (re-exported)
    BAND_LOSS_DB, QUIET_DBFS, SILENCE, band_loss_db, clipping_warning, is_silent,
    judges_clipping, quiet_warning, remove_dc, signal_peak,
)
from midlevel.errors import ArgumentError, AudioError

__all__ = ["AudioInfo", "audio_info", "load_audio", "prepare_samples", "check_finite",
           "resample", "is_silent", "remove_dc", "signal_peak", "quiet_warning",
           "DECODE_VERSION", "QUIET_DBFS"]

log = logging.getLogger(__name__)

# A decoder that stops before this fraction of the length the header declares reports a
# truncated file. mp3 headers without a frame count give an estimate (a few hundredths of
# a second off), so the margin is generous; a cut-off file whose header gives the exact
# count (LAME/Xing, flac) is caught. libsndfile clamps a WAV's or AIFF's count to what the
# file holds, so theirs is read from the header (audio_header.declared_frames) and any
# missing frame is a truncation.
_TRUNCATED_FRACTION = 0.9

# Bumped whenever what load_audio returns for a file changes, so the feature cache
# (data/cache.py puts it in its key) recomputes features decoded the old way.
# 2: the DC offset is removed before peak normalization; truncated WAV/AIFF are refused.
DECODE_VERSION = 2

_WARNED: set[str] = set()  # quiet-audio warnings already logged by this process


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about its audio.

    Attributes
    ----------
    path : str
    sample_rate : int
        Hz.
    channels : int
    frames : int
        Samples per channel (for mp3 files without a frame-count header, an estimate).
    duration : float
        Seconds, ``frames / sample_rate``.
    format : str
        Container format as libsndfile names it ("WAV", "FLAC", "OGG", "MP3", ...).
    subtype : str
        Sample format as libsndfile names it ("PCM_16", "FLOAT", "VORBIS", ...).
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    format: str
    subtype: str = ""


def audio_info(path) -> AudioInfo:
    """Read an audio file's header.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        If the file is missing, empty or cannot be decoded, or is a WAV/AIFF whose header
        declares more frames than the file holds (truncated).
    """
    path = _checked_file(path)
    try:
        info = sf.info(str(path))
    except RuntimeError as err:
        raise _undecodable(path, err) from err
    header = declared_frames(path)  # libsndfile clamps a WAV/AIFF's count to what it holds
    if header is not None and header > info.frames:
        raise _truncated(path, int(info.frames), header)
    return AudioInfo(path=str(path), sample_rate=int(info.samplerate),
                     channels=int(info.channels), frames=int(info.frames),
                     duration=float(info.frames / info.samplerate), format=str(info.format),
                     subtype=str(info.subtype))


def load_audio(path, *, sample_rate: int | None = 22050, mono: bool = True,
               normalize: bool = True, offset: float = 0.0,
               duration: float | None = None) -> np.ndarray:
    """Load an audio file as float32, optionally mono, resampled and peak-normalized.

    Parameters
    ----------
    path : str or os.PathLike
        wav, flac, ogg or mp3 file.
    sample_rate : int or None
        Target sample rate in Hz; None keeps the file's rate.
    mono : bool
        Average the channels.
    normalize : bool
        Remove the DC offset (the mean of each channel, or of the mono down-mix), then divide
        by the peak absolute value, so that ``max |y| == 1``. Silent audio is an error (saying
        when a constant offset or channels that cancel in the down-mix made it so); a peak
        below ``QUIET_DBFS`` (-60 dBFS) is logged as a warning naming the file.
    offset : float
        Start reading this many seconds into the file.
    duration : float or None
        Read at most this many seconds (None: to the end).

    Returns
    -------
    y : np.ndarray [shape=(n_samples,) if mono else (channels, n_samples), dtype=float32]

    Raises
    ------
    AudioError
        If the file is missing, undecodable, truncated, holds no samples, holds non-finite
        samples, or (with ``normalize``) is silent.
    """
    path = _checked_file(path)
    frames, sr, subtype = _decode(path, offset=offset, duration=duration)
    y = _downmix(frames) if mono else np.ascontiguousarray(frames.T)
    return prepare_samples(y, path, rate=sr, sample_rate=sample_rate, normalize=normalize,
                           channels=frames.T if mono else None,
                           clipping=judges_clipping(subtype))


def prepare_samples(y: np.ndarray, source, *, rate: float, sample_rate: float | None,
                    normalize: bool = True, channels: np.ndarray | None = None,
                    warn_once: bool = True, clipping: bool = True) -> np.ndarray:
    """What :func:`load_audio` does after decoding (and what an in-memory waveform goes
    through, :mod:`midlevel.data.inputs`): warn when hard-clipped, remove the DC offset,
    refuse silence, warn when very quiet, resample, peak-normalize.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (channels, n_samples), dtype=float32], finite.
    source : the file or item the messages name.
    rate, sample_rate : ``y``'s rate and the rate to return (None: ``rate``), in Hz.
    normalize : see :func:`load_audio`.
    channels : np.ndarray [shape=(channels, n_samples)] the mono ``y`` is the down-mix of.
    warn_once : log a quiet-audio warning once per message and process (a command may read
        a file twice: predictions, then its timeline); False: every time.
    clipping : judge hard clipping (:func:`~midlevel.data.loudness.judges_clipping`: False
        for lossy or companded samples, where flat runs do not show it).

    Returns
    -------
    np.ndarray [shape=(..., n_samples at sample_rate), dtype=float32]
    """
    if normalize:
        # clipping is judged on the raw channels, whose rails are their own extremes
        if clipping:
            _warn(clipping_warning(source, channels if channels is not None else y), warn_once)
        # the peak is taken at the source's rate (resampling keeps the level within a few %)
        y, peak = signal_peak(y, source, channels=channels)
        mix = y if channels is not None and y.ndim == 1 else None
        _warn(quiet_warning(source, peak, channels=channels, mix=mix), warn_once)
    if sample_rate is not None and sample_rate != rate:
        before, y = y, resample(y, orig_sr=rate, target_sr=sample_rate)
        if not np.isfinite(y).all():
            raise AudioError(f"{source}: audio overflows when resampled from {rate:g} to "
                             f"{sample_rate:g} Hz (peak {float(np.max(np.abs(before))):.3g}): "
                             f"samples this large are not audio (a corrupt file?)")
        if (loss := band_loss_db(before, y)) < BAND_LOSS_DB:
            _warn(f"{source}: its content lies above {sample_rate / 2:g} Hz, the highest "
                  f"frequency at the front end's {sample_rate:g} Hz: resampled, it keeps "
                  f"{10 ** (loss / 10):.2g} of its power ({loss:.1f} dB), and what is left "
                  f"is normalized like music", warn_once)
    if normalize:
        y = _peak_normalize(y, source)
    return y


def _warn(message: str | None, warn_once: bool) -> None:
    """Log ``message`` as a warning (with ``warn_once``, once per process); inside
    :func:`kept_warnings`, keep it instead."""
    if message and _KEPT is not None:
        _KEPT.append(message)
    elif message and not (warn_once and message in _WARNED):
        _WARNED.add(message)
        log.warning("%s", message)


def warn(message: str) -> None:
    """Log a warning about a file's audio once per process (what :func:`kept_warnings`
    kept, said later: the feature cache repeats them for the files it read before)."""
    _warn(message, True)


_KEPT: list[str] | None = None


@contextlib.contextmanager
def kept_warnings():
    """Inside the block, the warnings about the audio decoded (very quiet, clipped,
    band-limited) are kept in the list the block gets, not logged."""
    global _KEPT
    outer, _KEPT = _KEPT, []
    try:
        yield _KEPT
    finally:
        _KEPT = outer


def resample(y: np.ndarray, *, orig_sr: float, target_sr: float) -> np.ndarray:
    """Band-limited resampling along the last axis (soxr, high quality).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]
    orig_sr, target_sr : float
        Sample rates in Hz.

    Returns
    -------
    y_hat : np.ndarray [shape=(..., round(n_samples * target_sr / orig_sr)), dtype=float32]
        (soxr's length: the product rounded to the nearest sample, 1001 samples from
        22050 to 16000 Hz give 726)
    """
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr:
        return y
    # soxr wants (n_samples, channels); called directly it avoids librosa's ~4 s first-call
    # import cost in every worker process.
    flat = y.reshape(-1, y.shape[-1])
    out = soxr.resample(np.ascontiguousarray(flat.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T).reshape(*y.shape[:-1], -1)


def _checked_file(path) -> Path:
    """The path, if it names a non-empty regular file."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    return path


def _undecodable(path: Path, err: Exception) -> AudioError:
    said = str(err)
    if "does not exist or is not a regular file" in said and Path(path).is_file():
        # libsndfile's text for a regular file whose format it cannot recognize
        said = "it recognizes no audio format in the file"
    return AudioError(f"{path}: cannot decode audio (corrupt or unsupported format; "
                      f"libsndfile says: {said})")


def _truncated(path: Path, end: int, declared: int) -> AudioError:
    return AudioError(f"{path}: file looks truncated (decoded {end} of {declared} "
                      f"samples the header declares)")


def _decode(path: Path, *, offset: float, duration: float | None
            ) -> tuple[np.ndarray, int, str]:
    """Decode ``[offset, offset + duration)`` seconds: (n_samples, channels) float32, the rate
    and libsndfile's sample format ("PCM_16", "MPEG_LAYER_III", ...)."""
    if offset < 0 or (duration is not None and duration < 0):
        raise ArgumentError(f"offset and duration must be >= 0, got {offset} and {duration}")
    try:
        with sf.SoundFile(str(path)) as f:
            # libsndfile clamps a WAV/AIFF's count to what the file holds: take the header's
            header = declared_frames(path)
            sr, declared, subtype = f.samplerate, max(f.frames, header or 0), str(f.subtype)
            start = round(offset * sr)
            stop = declared if duration is None else start + round(duration * sr)
            if start >= f.frames and f.frames < declared:
                raise _truncated(path, f.frames, declared)
            if start >= declared > 0:
                raise AudioError(f"{path}: offset {offset} s is past the end "
                                 f"({declared / sr:.2f} s)")
            if start:
                f.seek(start)
            y = f.read(max(stop - start, 0), dtype="float32", always_2d=True)
    except RuntimeError as err:
        raise _undecodable(path, err) from err
    _check_decoded(path, y, end=start + len(y), stop=stop, declared=declared,
                   exact=header is not None)
    return y, sr, subtype


def _downmix(frames: np.ndarray) -> np.ndarray:
    """Average the channels of (n_samples, channels) frames (faster than ``mean(axis=1)``)."""
    y = frames[:, 0].copy()
    for channel in range(1, frames.shape[1]):
        y += frames[:, channel]
    if frames.shape[1] > 1:
        y /= frames.shape[1]
    return y


def _check_decoded(path: Path, y: np.ndarray, *, end: int, stop: int, declared: int,
                   exact: bool = False) -> None:
    """Raise for no samples, a decoder that stopped too early, or non-finite samples.

    ``exact``: the header's count is exact (WAV, AIFF), so any frame short is a truncation;
    otherwise (an mp3's estimate) only a shortfall beyond ``_TRUNCATED_FRACTION`` is.
    """
    if len(y) == 0:
        raise AudioError(f"{path}: no audio samples could be decoded")
    if end < stop and end < (1.0 if exact else _TRUNCATED_FRACTION) * declared:
        raise _truncated(path, end, declared)
    if not np.isfinite(y).all() and not np.isnan(y).any() and _subtype(path) == "DOUBLE":
        raise AudioError(f"{path}: audio holds samples beyond the float32 range (|x| > "
                         f"{np.finfo(np.float32).max:.3g}; 64-bit float samples are read as "
                         f"32-bit): values this large are not audio (a corrupt file?)")
    check_finite(y, path)


def _subtype(path: Path) -> str:
    """libsndfile's sample format of ``path`` ("PCM_16", "FLOAT", "DOUBLE", ...)."""
    try:
        return str(sf.info(str(path)).subtype)
    except RuntimeError:
        return ""


def check_finite(y: np.ndarray, source) -> None:
    """:class:`AudioError` naming ``source`` if any sample of ``y`` is NaN or infinite."""
    if not np.isfinite(y).all():
        raise AudioError(f"{source}: audio holds NaN or infinite samples")


def _peak_normalize(y: np.ndarray, path: Path) -> np.ndarray:
    """Divide by the peak absolute value; silent audio is an error."""
    if is_silent(y):
        raise AudioError(f"{path}: audio is silent (no sample above 1e-6), cannot normalize")
    return y / np.max(np.abs(y))


def check_inputs(paths) -> list:
    """Open every file's header before any work is done; :class:`AudioError` naming every
    file that is missing, empty or cannot be read (so a command fails before writing
    anything). Returns the :class:`AudioInfo` of each file."""
    infos, bad = [], []
    for p in paths:
        try:
            infos.append(audio_info(p))
        except AudioError as exc:
            bad.append(str(exc))
    if bad:
        raise AudioError(f"{len(bad)} input file(s) cannot be read, nothing was written:\n  "
                         + "\n  ".join(bad))
    return infos
