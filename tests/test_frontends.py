"""Front ends: shapes, batch consistency, parity with independent references, round trips."""
import json
import math

import numpy as np
import pytest
import torch

from midlevel.data.frontends import LogFilteredSpectrogram, LogMelSpectrogram, make_frontend
from midlevel.errors import SpecError

SR = 22050
# Max abs difference allowed on log10(1 + x) values, float32 torch vs float64 references
# (observed: about 1e-6 against the madmom-style reference, 2e-5 against librosa).
LOGFILT_ATOL = 1e-5
LOGMEL_ATOL = 1e-4


@pytest.fixture(scope="module")
def logfilt():
    return LogFilteredSpectrogram()


def _music_like(rng, seconds, sr=SR):
    """Peak-normalized noise plus a few sines, float32 [shape=(n_samples,)]."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.1 * rng.standard_normal(len(t))
    for f in (110.0, 440.0, 1234.5, 5000.0):
        y += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return (y / np.abs(y).max()).astype(np.float32)


# --------------------------------------------------------------------------------------
# an independent madmom-style reference in plain numpy (loops, no shared helpers)
# --------------------------------------------------------------------------------------
def _ref_filterbank(sr, frame_size, bands_per_octave, fmin, fmax, fref):
    """(n_bins, n_bands) filterbank and centre bins, following madmom's algorithm step by step."""
    n_bins = frame_size // 2
    bin_freqs = [k * sr / frame_size for k in range(n_bins)]
    freqs = [fref * 2.0 ** (k / bands_per_octave) for k in range(-400, 400)]
    freqs = [f for f in freqs if fmin <= f <= fmax]
    bins = []
    for f in freqs:
        # nearest bin; on an exact tie madmom takes the upper one
        best = min(range(n_bins), key=lambda k: (abs(bin_freqs[k] - f), -k))
        if best not in bins:
            bins.append(best)
    fb = np.zeros((n_bins, len(bins) - 2))
    for band in range(len(bins) - 2):
        start, center, stop = bins[band], bins[band + 1], bins[band + 2]
        for b in range(start, stop):
            if b < center:
                fb[b, band] = (b - start) / (center - start)
            else:
                fb[b, band] = 1.0 - (b - center) / (stop - center)
        fb[:, band] /= fb[:, band].sum()
    return fb, bins[1:-1]


def _ref_logfilt(y, sr=SR, frame_size=2048, fps=31.25, bands_per_octave=24, fmin=20.0,
                 fmax=16000.0, fref=440.0, log_mul=1.0):
    """madmom's LogarithmicFilteredSpectrogram of a 1-D signal: (n_bands, n_frames)."""
    hop = sr / fps
    n_frames = math.ceil(len(y) / hop)
    window = np.hanning(frame_size)
    fb, _ = _ref_filterbank(sr, frame_size, bands_per_octave, fmin, fmax, fref)
    spec = np.zeros((n_frames, frame_size // 2))
    for i in range(n_frames):
        start = int(i * hop) - frame_size // 2
        frame = np.zeros(frame_size)
        for j in range(frame_size):
            if 0 <= start + j < len(y):
                frame[j] = y[start + j]
        spec[i] = np.abs(np.fft.rfft(frame * window))[: frame_size // 2]
    return np.log10(log_mul * (spec @ fb) + 1.0).T


# --------------------------------------------------------------------------------------
# LogFilteredSpectrogram
# --------------------------------------------------------------------------------------
def test_paper_defaults_give_149_bands_313_frames(logfilt):
    assert logfilt.n_bands == 149
    assert logfilt.hop == pytest.approx(705.6)
    assert logfilt.fps == pytest.approx(31.25)
    out = logfilt(torch.zeros(10 * SR))
    assert out.shape == (149, 313)
    assert out.dtype == torch.float32
    assert logfilt.num_frames(10 * SR) == 313


@pytest.mark.parametrize("n_samples", [1, 705, 706, 1411, 2048, 12345])
def test_num_frames_matches_output(logfilt, n_samples):
    assert logfilt(torch.zeros(n_samples)).shape[-1] == logfilt.num_frames(n_samples)
    assert logfilt.num_frames(n_samples) == math.ceil(n_samples / 705.6)


def test_batch_dims_are_preserved(logfilt, rng):
    y = torch.from_numpy(rng.standard_normal((2, 3, 3 * SR)).astype(np.float32))
    assert logfilt(y).shape == (2, 3, 149, logfilt.num_frames(3 * SR))


def test_batched_equals_item_by_item(logfilt, rng):
    y = torch.from_numpy(rng.standard_normal((2, 3, 2 * SR)).astype(np.float32))
    batched = logfilt(y)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(batched[i, j], logfilt(y[i, j]), rtol=0, atol=1e-5)


def test_filterbank_matches_independent_madmom_reference(logfilt):
    ref_fb, ref_centers = _ref_filterbank(SR, 2048, 24, 20.0, 16000.0, 440.0)
    assert ref_fb.shape == (1024, 149) == tuple(logfilt.filterbank.shape)
    np.testing.assert_allclose(logfilt.filterbank.numpy(), ref_fb, rtol=0, atol=1e-6)
    np.testing.assert_allclose(logfilt.band_frequencies, np.array(ref_centers) * SR / 2048)
    np.testing.assert_allclose(logfilt.filterbank.sum(0).numpy(), 1.0, atol=1e-5)


def test_spectrogram_matches_independent_madmom_reference(logfilt, rng):
    y = _music_like(rng, 3.0)
    ours = logfilt(torch.from_numpy(y)).numpy()
    ref = _ref_logfilt(y.astype(np.float64))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < LOGFILT_ATOL


def test_reference_parity_with_non_default_parameters(rng):
    args = dict(sr=16000, frame_size=1024, fps=50.0, bands_per_octave=12, fmin=60.0,
                fmax=6000.0, fref=432.0, log_mul=3.0)
    fe = LogFilteredSpectrogram(sample_rate=16000, frame_size=1024, fps=50.0,
                                bands_per_octave=12, fmin=60.0, fmax=6000.0, fref=432.0,
                                log_mul=3.0)
    y = _music_like(rng, 1.3, sr=16000)
    ref = _ref_logfilt(y.astype(np.float64), **args)
    assert np.abs(fe(torch.from_numpy(y)).numpy() - ref).max() < LOGFILT_ATOL


@pytest.mark.parametrize("band", [5, 30, 60, 90, 120, 145])
def test_sine_at_band_centre_peaks_in_that_band(logfilt, band):
    f = logfilt.band_frequencies[band]
    y = np.sin(2 * np.pi * f * np.arange(2 * SR) / SR).astype(np.float32)
    energy = logfilt(torch.from_numpy(y)).mean(-1)
    assert int(energy.argmax()) == band


@pytest.mark.parametrize("freq", [100.0, 261.6, 440.0, 1000.0, 3000.0, 7040.0])
def test_sine_peaks_in_band_with_nearest_centre(logfilt, freq):
    y = np.sin(2 * np.pi * freq * np.arange(2 * SR) / SR).astype(np.float32)
    energy = logfilt(torch.from_numpy(y)).mean(-1)
    nearest = int(np.argmin(np.abs(logfilt.band_frequencies - freq)))
    assert int(energy.argmax()) == nearest


def test_log_mul_scales_inside_log(rng):
    y = torch.from_numpy(_music_like(rng, 1.0))
    lin = 10 ** LogFilteredSpectrogram()(y) - 1
    lin10 = 10 ** LogFilteredSpectrogram(log_mul=10.0)(y) - 1
    torch.testing.assert_close(lin10, 10 * lin, rtol=1e-3, atol=1e-3)


def test_frames_to_seconds(logfilt):
    assert logfilt.frames_to_seconds(0) == 0.0
    assert logfilt.frames_to_seconds(625) == pytest.approx(20.0)
    np.testing.assert_allclose(logfilt.frames_to_seconds(np.arange(3)), [0, 0.032, 0.064])


def test_filterbank_and_window_follow_device_but_stay_out_of_state_dict(logfilt):
    assert logfilt.state_dict() == {}
    assert {name for name, _ in logfilt.named_buffers()} == {"filterbank", "window"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_matches_cpu(rng):
    fe = LogFilteredSpectrogram()
    y = torch.from_numpy(_music_like(rng, 3.0))
    torch.testing.assert_close(fe.cuda()(y.cuda()).cpu(), LogFilteredSpectrogram()(y),
                               rtol=0, atol=LOGFILT_ATOL)


# --------------------------------------------------------------------------------------
# LogMelSpectrogram
# --------------------------------------------------------------------------------------
def test_logmel_shapes_and_batch_consistency(rng):
    fe = LogMelSpectrogram()
    assert fe(torch.zeros(10 * SR)).shape == (128, 313) == (fe.n_bands, fe.num_frames(10 * SR))
    y = torch.from_numpy(rng.standard_normal((2, 3, SR)).astype(np.float32))
    batched = fe(y)
    assert batched.shape == (2, 3, 128, fe.num_frames(SR))
    torch.testing.assert_close(batched[1, 2], fe(y[1, 2]), rtol=0, atol=1e-5)


def test_logmel_matches_librosa(rng):
    librosa = pytest.importorskip("librosa")
    fe = LogMelSpectrogram()
    y = _music_like(rng, 3.0)
    ref = librosa.feature.melspectrogram(
        y=y.astype(np.float64), sr=SR, n_fft=2048, hop_length=705, n_mels=128, fmin=20.0,
        fmax=SR / 2, power=1.0, htk=True, norm=None, center=True, pad_mode="constant",
        window="hann")
    ours = fe(torch.from_numpy(y)).numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - np.log10(1 + ref)).max() < LOGMEL_ATOL


def test_logmel_attributes():
    fe = LogMelSpectrogram()
    assert fe.hop == 705.0 and fe.fps == pytest.approx(SR / 705)
    assert tuple(fe.filterbank.shape) == (1025, 128)
    assert len(fe.band_frequencies) == 128
    assert np.all(np.diff(fe.band_frequencies) > 0) and fe.band_frequencies[-1] < SR / 2
    # the peak of each mel filter lies at its centre frequency (within one FFT bin)
    peak_hz = fe.filterbank.argmax(0).numpy() * SR / 2048
    assert np.abs(peak_hz - fe.band_frequencies).max() <= SR / 2048


# --------------------------------------------------------------------------------------
# config round trips
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("frontend", [
    LogFilteredSpectrogram(), LogFilteredSpectrogram(fps=50, bands_per_octave=12),
    LogMelSpectrogram(), LogMelSpectrogram(n_mels=64, hop_length=512)])
def test_make_frontend_round_trip(frontend, rng):
    config = frontend.config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = make_frontend(config)
    assert type(rebuilt) is type(frontend) and rebuilt.config() == config
    y = torch.from_numpy(_music_like(rng, 0.5))
    torch.testing.assert_close(rebuilt(y), frontend(y), rtol=0, atol=0)


def test_config_holds_every_constructor_argument():
    assert LogFilteredSpectrogram().config() == {
        "name": "LogFilteredSpectrogram", "sample_rate": 22050, "frame_size": 2048,
        "fps": 31.25, "bands_per_octave": 24, "fmin": 20.0, "fmax": 16000.0, "log_mul": 1.0,
        "fref": 440.0}
    assert set(LogMelSpectrogram().config()) == {
        "name", "sample_rate", "n_fft", "hop_length", "n_mels", "fmin", "fmax", "log_mul"}


def test_make_frontend_rejects_unknown_name():
    with pytest.raises(SpecError, match="CQTSpectrogram"):
        make_frontend({"name": "CQTSpectrogram"})
    with pytest.raises(SpecError, match="None"):
        make_frontend({"sample_rate": 22050})


def test_make_frontend_rejects_unknown_argument():
    with pytest.raises(SpecError, match="n_mels"):
        make_frontend({"name": "LogFilteredSpectrogram", "n_mels": 128})


@pytest.mark.parametrize("fps, n_samples", [
    (31.25, 22050 * 3),      # hop 705.6: frames repeat every 5 (3528 samples), strided views
    (31.25, 22050 * 9 + 17),  # several blocks, the last one short and out of phase
    (31.25, 1000),           # fewer frames than one period
    (30.0, 22050 * 3),       # an integer hop (735): period 1
    (31.3, 22050 * 3),       # hop 704.47...: no period within 64 frames, gathered by index
])
def test_blocked_path_gives_the_same_spectrogram(rng, fps, n_samples):
    """One torch thread and no autograd take the block-by-block path: same numbers."""
    import torch
    from midlevel.data.frontends import LogFilteredSpectrogram, frame_centers
    fe = LogFilteredSpectrogram(fps=fps).eval()
    if n_samples > 22050:
        period = {31.25: (5, 3528), 30.0: (1, 735), 31.3: None}[fps]
        assert fe._frame_period(frame_centers(n_samples, hop=fe.hop)) == period
    y = torch.as_tensor(rng.normal(size=n_samples).astype(np.float32))
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            blocked = fe(y)
        whole = fe(y.clone().requires_grad_(True)).detach()  # autograd: the whole-clip path
    finally:
        torch.set_num_threads(old)
    assert blocked.shape == whole.shape
    np.testing.assert_allclose(blocked.numpy(), whole.numpy(), atol=1e-5)


def test_blocked_path_reads_a_waveform_that_is_a_view_of_a_larger_tensor(rng):
    """A row of a batch (a view with a storage offset) or a strided slice gives the same
    spectrogram as a fresh copy of it on the block-by-block path."""
    import torch
    from midlevel.data.frontends import LogFilteredSpectrogram
    fe = LogFilteredSpectrogram().eval()
    batch = torch.as_tensor(rng.normal(size=(3, 22050 * 10)).astype(np.float32))  # 3 blocks
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            for view in (batch[1], batch[2], batch[:, ::2][1]):
                np.testing.assert_array_equal(fe(view).numpy(), fe(view.clone()).numpy())
    finally:
        torch.set_num_threads(old)


def test_front_ends_take_numpy_waveforms_and_name_what_they_cannot():
    """Audit 22b: docs/ARCHITECTURE.md's waveform contract includes np.ndarray, and both front
    ends met one with a bare AttributeError."""
    from midlevel.errors import ArgumentError
    y = np.random.default_rng(0).standard_normal((2, 22050)).astype(np.float32)
    for fe in (LogFilteredSpectrogram(), LogMelSpectrogram()):
        torch.testing.assert_close(fe(y), fe(torch.from_numpy(y)))
        pcm = (y * 1000).astype(np.int16)  # PCM integers read as Run.predict reads them
        torch.testing.assert_close(fe(pcm), fe(torch.from_numpy(pcm / 32768.0).float()))
        with pytest.raises(ArgumentError, match="not list"):
            fe([0.0] * 100)
