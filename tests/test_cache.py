"""Feature cache: keyed by content and front end, atomic, resumable, names bad files."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import write_tone
from midlevel.data.cache import FeatureCache
from midlevel.errors import ValidationFailed


@pytest.fixture
def clips(tmp_path):
    return [write_tone(tmp_path / "audio" / f"c{i}.wav", freq=300.0 + 100 * i, seconds=1.0)
            for i in range(4)]


def test_get_computes_once_and_reuses(tmp_path, clips):
    cache = FeatureCache(tmp_path / "cache")
    first = cache.get(clips[0])
    assert first.dtype == np.float32 and first.shape == (149, 32)  # 1 s at 31.25 fps
    entry = cache.entry(clips[0])
    assert entry.is_file()
    stamp = entry.stat().st_mtime_ns
    np.testing.assert_array_equal(cache.get(clips[0]), first)
    assert entry.stat().st_mtime_ns == stamp  # read back, not recomputed
    np.testing.assert_allclose(first, cache.compute(clips[0]))


def test_key_follows_content_and_frontend(tmp_path, clips):
    cache = FeatureCache(tmp_path / "cache")
    before = cache.get(clips[0])
    old_entry = cache.entry(clips[0])
    write_tone(clips[0], freq=2000.0, seconds=1.0)  # same path, new content
    assert cache.entry(clips[0]) != old_entry
    assert not np.allclose(cache.get(clips[0]), before)
    other = FeatureCache(tmp_path / "cache", {"name": "LogFilteredSpectrogram", "bands_per_octave": 12})
    assert other.folder != cache.folder
    assert other.get(clips[0]).shape[0] < 149


def test_unreadable_entry_is_recomputed(tmp_path, clips):
    cache = FeatureCache(tmp_path / "cache")
    good = cache.get(clips[1])
    cache.entry(clips[1]).write_bytes(b"\x93NUMPY garbage")
    np.testing.assert_allclose(cache.get(clips[1]), good)


def test_fill_resumes_and_leaves_no_temporary_files(tmp_path, clips):
    cache = FeatureCache(tmp_path / "cache")
    cache.get(clips[0])                       # as if an earlier run stopped after one clip
    (cache.folder / "ab").mkdir(parents=True, exist_ok=True)
    (cache.folder / "ab" / ".tmp-leftover.npy").write_bytes(b"half")  # a killed write
    stats = cache.fill(clips, progress=False)
    assert (stats.computed, stats.reused) == (3, 1)
    assert stats.seconds_of_audio == pytest.approx(3 * 32 / 31.25)
    assert all(cache.contains(c) for c in clips)
    assert list(cache.folder.rglob("*.tmp")) == []  # no temporary file of this run is left


def test_fill_counts_files_of_the_same_bytes_once_and_reads_each_file_once(tmp_path, clips,
                                                                          monkeypatch):
    """Two paths with the same bytes are one computation, the other reused (audit 11b #6:
    4000 'computed' for 360 entries, and a speed 10x too high); and a command that looks a
    file up several times (fill, then get) reads its bytes once (audit 11b #7), unless it
    changed, even with its modification time put back (re-audit 11 #1), or changed just now
    (racy)."""
    import os
    import shutil
    import midlevel.data.cache as cache_module
    monkeypatch.setattr(cache_module, "_DIGESTS", {})
    monkeypatch.setattr(cache_module, "RACY_S", 0.0)  # these files were written just now
    twin = tmp_path / "audio" / "twin.wav"
    shutil.copy(clips[0], twin)
    opened = []
    real_open = open
    audio = str(tmp_path / "audio")
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: (
        str(f).startswith(audio) and opened.append(str(f))) or real_open(f, *a, **k))
    cache = FeatureCache(tmp_path / "cache")
    stats = cache.fill([*clips, twin], jobs=1, progress=False)
    assert (stats.computed, stats.reused) == (4, 1)
    assert stats.seconds_of_audio == pytest.approx(4 * 32 / 31.25)
    after_fill = len(opened)
    for path in [*clips, twin]:
        cache.get(path)
    assert len(opened) == after_fill  # every entry found without reading the audio again
    entry, stamp = cache.entry(clips[1]), os.stat(clips[1])
    write_tone(clips[1], freq=2500.0, seconds=1.0)  # same size, other bytes, ...
    os.utime(clips[1], ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # ... old time (touch -r)
    assert os.stat(clips[1]).st_size == stamp.st_size
    assert cache.entry(clips[1]) != entry
    monkeypatch.setattr(cache_module, "RACY_S", 2.0)
    monkeypatch.setattr(cache_module, "_DIGESTS", {})
    before = opened.count(str(clips[1]))
    cache.entry(clips[1])
    cache.entry(clips[1])
    assert opened.count(str(clips[1])) == before + 2  # racy: changed just now


def test_fill_in_processes_matches_serial(tmp_path, clips, monkeypatch):
    import midlevel.data.cache as cache_module
    serial = FeatureCache(tmp_path / "a")
    serial.fill(clips, progress=False)
    # workers for every file: no in-process probe, any amount of work is worth them
    monkeypatch.setattr(cache_module, "WORKER_PROBE_S", 0.0)
    monkeypatch.setattr(cache_module, "WORKER_WORTH_S", -1.0)
    started = []
    real = cache_module._worker_context
    monkeypatch.setattr(cache_module, "_worker_context", lambda: started.append(1) or real())
    parallel = FeatureCache(tmp_path / "b")
    stats = parallel.fill(clips, jobs=2, progress=False)
    assert started, "the worker pool was not used"
    assert stats.computed == 4
    for c in clips:
        np.testing.assert_allclose(parallel.get(c), serial.get(c), atol=1e-6)


def test_fill_names_bad_files_and_keeps_the_rest(tmp_path, clips):
    clips[2].write_bytes(b"not audio")
    cache = FeatureCache(tmp_path / "cache")
    with pytest.raises(ValidationFailed) as info:
        cache.fill(clips, progress=False)
    assert str(clips[2]) in str(info.value)
    assert [cache.contains(c) for c in (clips[0], clips[1], clips[3])] == [True] * 3


@pytest.mark.parametrize("damage", ["cut short", "grown", "not npy"])
def test_fill_recomputes_a_damaged_entry_rather_than_counting_it_reused(tmp_path, clips, damage):
    """Audit 11 (left): an entry cut short was counted as reused by ``fill`` and recomputed
    only when read. ``fill`` now computes it again, counts it as computed, and leaves it
    whole."""
    cache = FeatureCache(tmp_path / "cache")
    cache.fill(clips, jobs=1, progress=False)
    entry = cache.entry(clips[1])
    data = entry.read_bytes()
    entry.write_bytes({"cut short": data[:len(data) // 2], "grown": data + b"\0" * 8,
                       "not npy": b"not an array"}[damage])
    stats = cache.fill(clips, jobs=1, progress=False)
    assert (stats.computed, stats.reused) == (1, 3)
    assert entry.read_bytes() == data
    np.testing.assert_allclose(cache.get(clips[1]), cache.compute(clips[1]), rtol=1e-5)


def test_a_non_finite_entry_stored_by_an_earlier_version_is_not_served(tmp_path, clips):
    """Audit 14a #2: NaN features were cached and reused on every later run. An entry that
    is not finite is computed again when read."""
    cache = FeatureCache(tmp_path / "cache")
    good = cache.get(clips[0])
    entry = cache.entry(clips[0])
    np.save(entry, np.full_like(good, np.nan))
    np.testing.assert_array_equal(cache.get(clips[0]), good)
    assert np.isfinite(np.load(entry)).all()


def test_audio_warnings_are_said_again_when_the_features_come_from_the_cache(
        tmp_path, caplog, monkeypatch):
    """Audit 22a: the very-quiet (and clipped, band-limited) warnings came from decoding
    only, so a second `train`, `features` or `evaluate` over a warm cache said nothing. They
    are kept beside the features and every fill says them, naming the file as it is named
    now; only a file with warnings has a notes file (no second write per entry), and the
    cache's version moved, so that entries of a version that kept none are computed again."""
    import shutil

    from midlevel.data import audio
    quiet = write_tone(tmp_path / "audio" / "quiet.wav", seconds=1.0, amplitude=0.0002)
    loud = write_tone(tmp_path / "audio" / "loud.wav", seconds=1.0)
    copy = tmp_path / "elsewhere" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy(quiet, copy)

    def fill(paths, **kw):
        monkeypatch.setattr(audio, "_WARNED", set())  # as in a new process
        caplog.clear()
        with caplog.at_level("WARNING", logger="midlevel"):
            stats = FeatureCache(tmp_path / "cache").fill(paths, jobs=1, progress=False, **kw)
        return stats, [r.getMessage() for r in caplog.records if "very quiet" in r.getMessage()]

    for computed in (2, 0):  # a cold cache, then a warm one
        stats, said = fill([quiet, loud])
        assert stats.computed == computed
        assert len(said) == 1 and said[0].startswith(f"{quiet}: very quiet audio")
    stats, said = fill([copy])  # the same bytes under another name: named as it is now
    assert stats.computed == 0 and len(said) == 1 and said[0].startswith(f"{copy}: ")
    assert fill([quiet, loud], warn=False)[1] == []  # torchrun's other processes
    cache = FeatureCache(tmp_path / "cache")
    assert cache.notes_file(quiet).is_file() and not cache.notes_file(loud).exists()
    with monkeypatch.context() as m:  # an entry of version 1 lives under another key
        m.setattr("midlevel.data.cache.CACHE_VERSION", 1)
        assert FeatureCache(tmp_path / "cache").key != cache.key


def test_cache_notes_name_the_file_as_given_and_an_unwritable_cache_is_named(
        tmp_path, caplog, monkeypatch):
    """Re-audit 22d: a path given as ``./x.wav`` kept the normalized name in its note (later
    fills said "./x.wav: x.wav: very quiet"); a cache that cannot be written raised a bare
    PermissionError."""
    from midlevel.data import audio
    from midlevel.errors import CacheError
    write_tone(tmp_path / "audio" / "quiet.wav", seconds=1.0, amplitude=0.0002)
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # computed, then from the cache
        monkeypatch.setattr(audio, "_WARNED", set())
        caplog.clear()
        with caplog.at_level("WARNING", logger="midlevel"):
            FeatureCache(tmp_path / "cache").fill(["./audio/quiet.wav"], jobs=1, progress=False)
        said = [r.getMessage() for r in caplog.records if "very quiet" in r.getMessage()]
        assert len(said) == 1 and said[0].startswith("./audio/quiet.wav: very quiet audio")
    from midlevel.data import cache as cache_module

    def refused(path, array):  # a read-only folder (root writes into one: simulated)
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(cache_module, "write_npy", refused)
    with pytest.raises(CacheError, match="cannot write the feature cache .* --cache"):
        FeatureCache(tmp_path / "other").get(tmp_path / "audio" / "quiet.wav")
