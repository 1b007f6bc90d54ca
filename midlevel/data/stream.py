"""Spectrograms read from the feature cache on demand, through memory-mapped ``.npy`` files.

:class:`MappedFeatures` is a mapping clip -> spectrogram like the dict of arrays training takes,
but holds only file names: ``features[clip]`` reads one clip, :meth:`MappedFeatures.crop` only
the frames of one crop (the file is memory-mapped, the frames copied out and the mapping closed,
so nothing stays resident in the process), and :meth:`MappedFeatures.nbytes` sums the sizes
from the files' headers without reading any data. Training decides from that sum whether to
hold everything in memory or to stream (:mod:`midlevel.training.stream`). :class:`CachedSpecs` is
the list-like view of a split's spectrograms that ``Run.data`` returns, read one clip at a time.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from midlevel.errors import CacheError


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file from its header (no data read)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(fh)
    except (OSError, ValueError) as exc:
        raise CacheError(f"{path}: cannot read the cached spectrogram's header ({exc})") from exc
    return tuple(shape), np.dtype(dtype)


class MappedFeatures(Mapping):
    """clip -> spectrogram ``(n_bands, n_frames)`` float32 read from its ``.npy`` file.

    Parameters
    ----------
    files : mapping clip -> path of a ``.npy`` file (the feature cache's entries, see
        :meth:`from_cache`).
    """

    def __init__(self, files: Mapping):
        self.files = {str(clip): Path(path) for clip, path in files.items()}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._itemsize: dict[str, int] = {}

    @classmethod
    def from_cache(cls, cache, paths) -> "MappedFeatures":
        """The entries of a filled :class:`~midlevel.data.cache.FeatureCache` for ``paths``
        (a Series clip -> audio path); CacheError naming an audio file without an entry."""
        files = {}
        for clip, path in paths.items():
            entry = cache.entry(path)
            if not entry.is_file():
                raise CacheError(f"{path}: no cached spectrogram (run `midlevel features` or "
                                 f"FeatureCache.fill first)")
            files[str(clip)] = entry
        return cls(files)

    def __getitem__(self, clip) -> np.ndarray:
        path = self.files[str(clip)]
        try:
            return np.load(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CacheError(f"{path}: cannot read the cached spectrogram of clip '{clip}' "
                             f"({exc})") from exc

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def shape(self, clip) -> tuple[int, ...]:
        """The spectrogram's shape, from the file header."""
        clip = str(clip)
        if clip not in self._shapes:
            shape, dtype = _header(self.files[clip])
            self._shapes[clip], self._itemsize[clip] = shape, dtype.itemsize
        return self._shapes[clip]

    def nbytes(self, clips=None) -> int:
        """Bytes the spectrograms of ``clips`` (default all) take in memory as float32."""
        total = 0
        for clip in (self.files if clips is None else clips):
            total += int(np.prod(self.shape(clip))) * 4
        return total

    def crop(self, clip, start: int, n_frames: int) -> np.ndarray:
        """Frames ``start .. start + n_frames`` (fewer at the clip's end) of one clip:
        ``(n_bands, <= n_frames)`` float32, read through a memory map that is closed again."""
        path = self.files[str(clip)]
        try:
            mapped = np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:
            raise CacheError(f"{path}: cannot map the cached spectrogram of clip '{clip}' "
                             f"({exc})") from exc
        out = np.array(mapped[:, max(0, start):max(0, start) + n_frames], dtype=np.float32)
        del mapped  # the last reference: the file is unmapped here, nothing stays resident
        return out


class MappedSpecs:
    """The spectrograms of some clips of a :class:`MappedFeatures`, read one at a time:
    ``specs[i]`` is clip ``i``'s ``(n_bands, n_frames)`` float32 tensor, :meth:`crop` reads one
    crop only (zero-padded at the clip's end), :meth:`subset` is a lazy view of some clips."""

    def __init__(self, features: MappedFeatures, clips):
        self.features, self.clips = features, [str(c) for c in clips]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.features[self.clips[i]], dtype=np.float32))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def subset(self, idx) -> "MappedSpecs":
        return MappedSpecs(self.features, [self.clips[i] for i in idx])

    def crop(self, i: int, start: int, n_frames: int) -> torch.Tensor:
        piece = torch.from_numpy(self.features.crop(self.clips[i], start, n_frames))
        if piece.shape[1] < n_frames:
            piece = torch.nn.functional.pad(piece, (0, n_frames - piece.shape[1]))
        return piece


class CachedSpecs(Sequence):
    """The spectrograms of a list of audio files, read from a filled
    :class:`~midlevel.data.cache.FeatureCache` one at a time as they are indexed: ``specs[i]`` is
    file ``i``'s ``(n_bands, n_frames)`` float32 array, a slice or :meth:`subset` is a view of
    some files, and nothing is held between reads, so a split of any size costs one clip's
    memory (what ``Run.data`` returns; an unreadable entry is recomputed by the cache). Each
    read is a new array: changing one in place does not change what the next read gives."""

    def __init__(self, cache, paths):
        self.cache, self.paths = cache, [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return CachedSpecs(self.cache, self.paths[i])
        return np.asarray(self.cache.get(self.paths[i]), dtype=np.float32)

    def subset(self, idx) -> "CachedSpecs":
        return CachedSpecs(self.cache, [self.paths[i] for i in idx])

    def n_frames(self) -> list[int]:
        """Each spectrogram's frame count, from its cache file's header (no data read; an
        entry whose header cannot be read is read, so recomputed, by the cache)."""
        counts = []
        for p in self.paths:
            try:
                counts.append(_header(self.cache.entry(p))[0][-1])
            except CacheError:
                counts.append(self.cache.get(p).shape[-1])
        return counts

    def __repr__(self) -> str:
        return f"CachedSpecs({len(self)} files)"
