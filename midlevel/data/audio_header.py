"""The sample-frame count a WAV (RIFF, RIFX, RF64, BW64) or AIFF/AIFC header declares.

libsndfile clamps its frame count to what a cut-off file still holds, so a truncated WAV or
AIFF decodes without complaint. :func:`declared_frames` reads the count from the header itself
(standard library only), for :mod:`midlevel.data.audio` to compare with what was decoded.
"""
from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["declared_frames"]

# WAVE format tags whose block_align is one sample frame (PCM, float, A-law, mu-law,
# extensible); compressed tags (ADPCM, GSM, ...) pack many frames per block.
_FRAME_TAGS = {0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE}
# placeholders left by streaming writers for "to the end": ffmpeg and others 0 or 0xFFFFFFFF,
# SoX 0x7FFFF000 when its output cannot be seeked (a pipe) or exceeds 4 GB
_UNKNOWN_SIZES = {0, 0xFFFFFFFF, 0x7FFFF000}


def declared_frames(path: str | Path) -> int | None:
    """Frames per channel the header declares for the sound data, or None when the file is not
    a WAV/AIFF the count can be read from (other formats, compressed WAV, placeholder sizes,
    an unreadable or inconsistent header: libsndfile judges those)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                return _wave_frames(fh, big=head[:4] == b"RIFX", rf64=head[:4] != b"RIFF"
                                    and head[:4] != b"RIFX")
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _aiff_frames(fh)
    except (OSError, struct.error):
        return None
    return None


def _chunks(fh, *, big: bool):
    """(id, size, offset of the chunk's data) of each chunk after the 12-byte form header."""
    fmt = ">4sI" if big else "<4sI"
    while len(header := fh.read(8)) == 8:
        cid, size = struct.unpack(fmt, header)
        start = fh.tell()
        yield cid, size, start
        fh.seek(start + size + (size & 1))  # chunks are padded to an even length


def _wave_frames(fh, *, big: bool, rf64: bool) -> int | None:
    """Frames from the ``data`` chunk's size (RF64/BW64: from ``ds64``) / ``fmt``'s block_align."""
    end = "<" if not big else ">"
    block_align = tag = data_size = None
    for cid, size, start in _chunks(fh, big=big):
        if cid == b"ds64" and rf64 and size >= 16:
            _riff_size, data_size = struct.unpack(end + "QQ", fh.read(16))
        elif cid == b"fmt " and size >= 16:
            tag, _channels, _rate, _bytes_per_s, block_align = struct.unpack(
                end + "HHIIH", fh.read(14))
        elif cid == b"data":
            if not (rf64 and size == 0xFFFFFFFF and data_size):
                data_size = None if size in _UNKNOWN_SIZES else size
            break
    if tag not in _FRAME_TAGS or not block_align or not data_size:
        return None
    return data_size // block_align


def _aiff_frames(fh) -> int | None:
    """``numSampleFrames`` of the ``COMM`` chunk."""
    for cid, size, start in _chunks(fh, big=True):
        if cid == b"COMM" and size >= 18:
            _channels, frames = struct.unpack(">hI", fh.read(6))
            return frames or None
    return None
