"""The Python API's audio inputs (``Run.predict``, ``Run.spectrogram``, ``explain_clips``):
paths, waveform arrays, spectrogram arrays, and the names of a batch of them.

A path is read by :func:`midlevel.data.audio.load_audio`, as every command reads it. A waveform
array goes through what ``load_audio`` does to a decoded file: it is a mono ``(n_samples,)``
array of floats (any float dtype) or of PCM integers, scaled to ``[-1, 1)`` by the dtype's full
range as soundfile reads PCM (``int16 / 32768``, ``int32 / 2**31``, ``int8 / 128``; ``uint8`` is
8-bit WAV's offset binary, ``(x - 128) / 128``; int64, other unsigned, bool, complex and object
arrays are refused: int64 is no PCM format, and NumPy makes it from a list of Python ints whose
range would read as silence). Its DC offset is removed, NaN and silence are refused, a peak
below -60 dBFS is warned about, and it is resampled from its ``sample_rate`` (default: the front
end's) to the front end's rate and peak-normalized, exactly as a file is.

A 2-D array is a spectrogram ``(n_bands, n_frames)`` only when its first dimension is the
front end's band count; any other 2-D array (a stereo ``(n, 2)`` or ``(2, n)`` waveform, a
transposed spectrogram) is refused, saying how to pass it. Every failure is an
:class:`~midlevel.errors.AudioError` whose message starts with the item's name.
"""
from __future__ import annotations

import os
from collections import Counter

import numpy as np
import torch

from midlevel.checks import real_number
from midlevel.data.audio import check_finite, load_audio, prepare_samples
from midlevel.data.stream import CachedSpecs
from midlevel.errors import ArgumentError, AudioError

__all__ = ["is_path", "batch_items", "item_names", "item_spectrogram", "item_waveform", "as_array",
           "array_waveform", "array_spectrogram", "shape_message"]


def is_path(item) -> bool:
    """Whether ``item`` names a file (a str or an ``os.PathLike``) rather than holding audio."""
    return isinstance(item, (str, os.PathLike))


def batch_items(audio) -> list:
    """The inputs of a call: a list, a tuple or a :class:`~midlevel.data.stream.CachedSpecs`
    (left lazy) is a batch of inputs, anything else one input.

    Raises
    ------
    ArgumentError
        For a list or tuple of plain numbers (every item a number: a waveform given as a
        list, which would be read as one input per sample).
    """
    if isinstance(audio, CachedSpecs):  # a split's spectrograms, read as they are used
        return audio
    if not isinstance(audio, (list, tuple)):
        return [audio]
    if audio and all(isinstance(a, (int, float, np.number)) and not isinstance(a, bool)
                     for a in audio):
        raise ArgumentError(f"a list of {len(audio)} numbers is a batch of {len(audio)} inputs, "
                            f"one per number: pass np.asarray(samples, dtype=np.float32) for "
                            f"one waveform")
    return list(audio)


def item_names(items: list, names=None) -> list:
    """The clip names of a batch of inputs.

    Parameters
    ----------
    items : the inputs (paths or arrays).
    names : one name per item (a str for a single item), or None: the path for a path,
        ``clip<i>`` for the i-th item when it is an array.

    Raises
    ------
    ArgumentError
        When ``names`` has another length than ``items``, or repeats a name (rows of two
        clips would be merged under it).
    """
    if names is None:
        if isinstance(items, CachedSpecs):  # arrays: named without reading them
            return [f"clip{i}" for i in range(len(items))]
        return [str(a) if is_path(a) else f"clip{i}" for i, a in enumerate(items)]
    names = [names] if isinstance(names, str) else list(names)
    if len(names) != len(items):
        raise ArgumentError(f"names: {len(names)} name(s) for {len(items)} audio input(s); "
                            f"give one name per input")
    repeated = [f"{n!r} ({k} times)" for n, k in Counter(names).items() if k > 1]
    if repeated:
        raise ArgumentError(f"names: each input needs its own name, repeated: "
                            f"{', '.join(repeated[:10])}"
                            + (f" and {len(repeated) - 10} more" if len(repeated) > 10 else ""))
    return names


def item_waveform(item, name: str, *, frontend, sample_rate=None) -> np.ndarray:
    """A path or a mono waveform array as the front end's input.

    Parameters
    ----------
    item : a path, or an array-like [shape=(n_samples,)] (see the module docstring).
    name : what the messages call an array.
    frontend : the run's front end (its ``sample_rate`` is the rate returned); None for a run
        that stores none (AudioError: it takes spectrograms only).
    sample_rate : an array's rate in Hz (None: the front end's); a file's rate is its own.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32] at the front end's rate, peak 1.
    """
    if frontend is None:
        raise AudioError(f"{item if is_path(item) else name}: this run stores no front end "
                         f"(it was trained on features given directly): pass spectrograms")
    if is_path(item):
        return load_audio(item, sample_rate=frontend.sample_rate)
    rate = real_number(sample_rate, "sample_rate", above=0, unit="Hz", allow_none=True)
    return array_waveform(item, name, rate=rate or frontend.sample_rate,
                          sample_rate=frontend.sample_rate)


def item_spectrogram(item, name: str, *, frontend, fps: float | None = None,
                     sample_rate=None) -> tuple[torch.Tensor, float]:
    """A path, a waveform array or a spectrogram array as a spectrogram, and its seconds.

    Parameters
    ----------
    item, name, frontend, sample_rate : see :func:`item_waveform`; a 2-D array is a
        spectrogram, checked by :func:`array_spectrogram` (against the front end's band
        count; any band count without a front end).
    fps : frames per second of a spectrogram (default: the front end's).

    Returns
    -------
    spectrogram : torch.Tensor [shape=(n_bands, n_frames), dtype=float32]
    seconds : float, the audio's duration (a spectrogram's: frames / fps).
    """
    if not is_path(item):
        arr = as_array(item, name)
        if arr.ndim == 2:
            bands = frontend.n_bands if frontend is not None else None
            spec = array_spectrogram(arr, name, n_bands=bands)
            return torch.as_tensor(spec), spec.shape[1] / (fps or frontend.fps)
        item = arr
    y = item_waveform(item, name, frontend=frontend, sample_rate=sample_rate)
    with torch.no_grad():
        return frontend(torch.as_tensor(y)), len(y) / frontend.sample_rate


def as_array(item, name: str) -> np.ndarray:
    """``item`` (an array, a CPU tensor, a list of numbers) as a numpy array; AudioError naming
    ``name`` when it is no array of numbers."""
    try:
        arr = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
    except (TypeError, ValueError, RuntimeError) as exc:  # ragged lists, tensors with grad
        raise AudioError(f"{name}: not an array of samples ({exc})") from exc
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"{name}: an array of {arr.dtype} is not audio (expected float "
                         f"samples, or PCM integers)")
    return arr


def _float_samples(arr: np.ndarray, name: str) -> np.ndarray:
    """Float32 samples of a float or PCM-integer array (see the module docstring)."""
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype.kind == "i" and arr.dtype.itemsize <= 4:
        return (arr / float(2 ** (8 * arr.dtype.itemsize - 1))).astype(np.float32)
    if arr.dtype.kind == "i":  # NumPy's default integer: its full range would read as silence
        raise AudioError(f"{name}: {arr.dtype} samples are no PCM format (numpy makes int64 "
                         f"from a list of Python ints): cast them to the type they were read "
                         f"as, e.g. np.asarray(samples, dtype=np.int16), or to floats in "
                         f"[-1, 1]")
    if arr.dtype == np.uint8:
        return ((arr.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise AudioError(f"{name}: {arr.dtype} samples are no PCM format (use float samples, a "
                     f"int8, int16, int32 or uint8)")


def array_waveform(item, name: str, *, rate: float, sample_rate: float) -> np.ndarray:
    """A mono waveform array prepared as a decoded file is.

    Parameters
    ----------
    item : array-like [shape=(n_samples,)], floats or PCM integers.
    name : what the messages call it (the clip's name).
    rate : its sample rate in Hz.
    sample_rate : the rate to return (the front end's), in Hz.

    Returns
    -------
    np.ndarray [shape=(n_samples * sample_rate / rate,), dtype=float32], DC-free, peak 1.

    Raises
    ------
    AudioError
        Naming ``name``: not 1-D (see :func:`shape_message`), empty, NaN or infinite samples,
        silent.
    """
    arr = as_array(item, name)
    if arr.ndim != 1:
        raise AudioError(shape_message(arr.shape, name))
    if arr.size == 0:
        raise AudioError(f"{name}: empty waveform (0 samples)")
    y = _float_samples(arr, name)
    check_finite(y, name)
    return prepare_samples(y, name, rate=rate, sample_rate=sample_rate, warn_once=False)


def array_spectrogram(item, name: str, *, n_bands: int | None) -> np.ndarray:
    """A spectrogram array checked against the front end.

    Parameters
    ----------
    item : array-like [shape=(n_bands, n_frames)], finite floats.
    name : what the messages call it.
    n_bands : the front end's band count (None: any).

    Returns
    -------
    np.ndarray [shape=(n_bands, n_frames), dtype=float32]

    Raises
    ------
    AudioError
        Naming ``name``: another shape, no frames, NaN or infinite values.
    """
    arr = as_array(item, name)
    if arr.ndim != 2 or arr.shape[0] != (n_bands or arr.shape[0]) or arr.shape[0] == 0:
        raise AudioError(shape_message(arr.shape, name, n_bands=n_bands))
    if arr.shape[1] == 0:
        raise AudioError(f"{name}: empty spectrogram ({arr.shape[0]} bands, 0 frames)")
    if not np.isfinite(arr).all():
        raise AudioError(f"{name}: spectrogram holds NaN or infinite values")
    return arr.astype(np.float32, copy=False)


def shape_message(shape: tuple, name: str, *, n_bands: int | None = None) -> str:
    """Why an array of ``shape`` is neither a mono waveform nor (given the front end's
    ``n_bands``) a spectrogram, and how to pass it."""
    if len(shape) != 2:
        return (f"{name}: expected a mono waveform (n_samples,) or a spectrogram (n_bands, "
                f"n_frames), got an array of shape {tuple(shape)}")
    what = "a mono waveform"
    if n_bands is not None:
        what = (f"a spectrogram: its first dimension ({shape[0]}) is not the {n_bands} bands "
                f"of the run's front end (a spectrogram is (n_bands, n_frames))")
    return (f"{name}: a 2-D array of shape {tuple(shape)} is not {what}; a stereo waveform "
            f"must be mixed down to mono first: y.mean(axis=1) for (n_samples, 2), "
            f"y.mean(axis=0) for (2, n_samples)")
