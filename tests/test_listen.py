"""Listenable explanations: the masked audio carries its energy where the attribution is."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from midlevel.data.frontends import LogFilteredSpectrogram, LogMelSpectrogram
from midlevel.explain.listen import (
    ListenError, attribution_mask, bands_to_bins, istft, listenable, masked_audio, stft,
)
from midlevel.io import write_wav

SR = 22050


def two_tones(seconds: float = 2.0) -> np.ndarray:
    """440 Hz in the first half, 3 kHz in the second."""
    t = np.arange(int(seconds * SR)) / SR
    return (np.where(t < seconds / 2, np.sin(2 * np.pi * 440 * t), 0)
            + np.where(t >= seconds / 2, np.sin(2 * np.pi * 3000 * t), 0))


@pytest.fixture(params=["logfilt", "logmel"])
def frontend(request):
    return LogFilteredSpectrogram() if request.param == "logfilt" else LogMelSpectrogram()


def test_stft_roundtrip_on_the_front_end_frames(frontend):
    y = np.random.default_rng(0).normal(size=SR)
    S = stft(y, frontend)
    assert S.shape[1] == frontend(torch.tensor(y, dtype=torch.float32)).shape[-1]
    np.testing.assert_allclose(istft(S, frontend, len(y)), y, atol=1e-5)


def test_masked_audio_carries_its_energy_in_the_attributed_region(frontend):
    y = two_tones()
    spec = frontend(torch.tensor(y, dtype=torch.float32)).numpy()
    hz = frontend.band_frequencies
    half = spec.shape[1] // 2
    # an attribution map pointing at the 440 Hz tone (first half), negative on the other
    values = np.zeros_like(spec)
    values[(hz > 300) & (hz < 600), :half] = 1.0
    values[(hz > 2000) & (hz < 4000), half:] = -1.0
    out = listenable(y, values, frontend)
    masked, complement = out["masked"], out["complement"]
    np.testing.assert_allclose(masked + complement, y, atol=1e-5)
    bins = np.fft.rfftfreq(2048, 1 / SR)
    Sm, Sc = np.abs(stft(masked, frontend)) ** 2, np.abs(stft(complement, frontend)) ** 2
    box = np.zeros_like(Sm, bool)
    box[(bins > 300) & (bins < 600), :half] = True
    assert Sm[box].sum() / Sm.sum() > 0.95
    assert Sc[box].sum() / Sc.sum() < 0.05
    # the first half of the masked audio is loud, the second nearly silent
    n = len(y) // 2
    assert np.mean(masked[n + 2048:] ** 2) < 0.01 * np.mean(masked[:n - 2048] ** 2)


def test_bands_to_bins_weights():
    fe = LogFilteredSpectrogram()
    ones = bands_to_bins(np.ones((fe.n_bands, 3)), fe.filterbank)
    covered = fe.filterbank.numpy().sum(1) > 0
    np.testing.assert_allclose(ones[covered], 1.0, atol=1e-6)
    assert (ones[~covered] == 0).all()
    with pytest.raises(ListenError, match="bands"):
        bands_to_bins(np.ones((5, 3)), fe.filterbank)


def test_attribution_masks():
    v = np.random.default_rng(1).normal(size=(40, 50))
    pos = attribution_mask(v)
    assert pos.max() == pytest.approx(1.0) and (pos[v <= 0] == 0).all()
    top = attribution_mask(v, mode="top", top=0.1, smooth=0)
    assert top.mean() == pytest.approx(0.1, abs=0.005)
    assert v[top > 0].min() >= np.quantile(v, 0.89)
    soft = attribution_mask(v, mode="top", top=0.1)
    assert 0 <= soft.min() and soft.max() == pytest.approx(1.0)
    neg = attribution_mask(v, mode="negative")
    assert (neg[v >= 0] == 0).all()
    with pytest.raises(ListenError):
        attribution_mask(v, mode="loud")


def test_write_wav(tmp_path):
    import soundfile as sf
    p = write_wav(tmp_path / "a" / "x.wav", 2 * np.ones(100), SR)
    y, sr = sf.read(p)
    assert sr == SR and np.abs(y).max() <= 1.0


def test_mask_frame_mismatch_is_an_error():
    fe = LogFilteredSpectrogram()
    with pytest.raises(ListenError, match="frames"):
        masked_audio(two_tones(1.0), np.ones((fe.n_bands, 3)), fe)
