"""LIME over interpretable audio components: components partition (or softly split) the bins,
NMF reports a reconstruction error that falls with the rank, LIME recovers known linear
models exactly and finds the planted event, and its parts can be listened to."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from midlevel.explain.posthoc.components import (
    ComponentError, Components, frequency_bands, make_components, nmf_components, patches,
    time_segments,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _check_partition(c: Components, shape):
    assert c.masks.shape == (c.n_components, *shape)
    assert set(np.unique(c.masks)) <= {0.0, 1.0}
    np.testing.assert_array_equal(c.masks.sum(0), 1.0)  # every bin in exactly one component
    assert (c.masks.reshape(c.n_components, -1).sum(1) > 0).all()  # none empty
    assert c.hard and len(c.names) == c.n_components
    np.testing.assert_allclose(c.area.sum(), 1.0)


# ------------------------------------------------------------------------------ components


def test_hard_components_partition_the_bins(rng):
    spec = rng.random((30, 50))
    seg = time_segments(spec, n=7)
    _check_partition(seg, spec.shape)
    # each segment covers all bands of a contiguous frame range
    edges = seg.info["boundaries"]
    assert edges[0] == 0 and edges[-1] == 50 and (np.diff(edges) >= 7).all()
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        assert seg.masks[k][:, a:b].all() and seg.masks[k].sum() == 30 * (b - a)
    sec = time_segments(spec[None, None], seconds=0.5, fps=20.0)  # 10-frame segments
    _check_partition(sec, spec.shape)
    assert list(sec.info["boundaries"]) == [0, 10, 20, 30, 40, 50]
    assert sec.names[1] == "0.50-1.00 s"
    bands = frequency_bands(spec, 4)
    _check_partition(bands, spec.shape)
    assert (bands.masks[0][:8].all() and not bands.masks[0][8:].any())
    grid = patches(spec, n_time=5, n_freq=3)
    _check_partition(grid, spec.shape)
    assert grid.n_components == 15
    assert grid.masks[3 * 5 - 1][20:, 40:].all()  # the last patch: top bands, last frames


def test_onset_segments_start_at_the_onsets(rng):
    spec = 0.01 * rng.random((40, 100))
    for a in (20, 50, 80):
        spec[:, a:a + 8] += 1.0
    seg = time_segments(spec, onsets=True, fps=31.25, min_seconds=0.1)
    assert seg.kind == "onsets" and not seg.info["fallback"]
    assert list(seg.info["boundaries"]) == [0, 20, 50, 80, 100]
    _check_partition(seg, spec.shape)
    # at most n segments: the n - 1 strongest onsets (the loudest burst at 50)
    spec[:, 50:58] += 1.0
    two = time_segments(spec, onsets=True, n=2, min_seconds=0.1)
    assert list(two.info["boundaries"]) == [0, 50, 100]
    # nothing to detect: fixed segments, said so
    flat = time_segments(np.ones((4, 50)), onsets=True, n=5)
    assert flat.kind == "segments" and flat.info["fallback"] and flat.n_components == 5


def test_nmf_masks_sum_to_one_and_the_error_falls_with_the_rank(rng):
    # a spectrogram made of 3 non-negative parts (on a tiny floor), log-compressed as the
    # front end does
    W0, H0 = rng.random((40, 3)) ** 3, rng.random((3, 60)) ** 3
    spec = np.log10(1 + W0 @ H0 + 1e-3)
    errors = []
    for r in (1, 2, 3):
        c = nmf_components(spec, rank=r)
        assert c.kind == "nmf" and c.n_components == r
        assert c.W.shape == (40, r) and c.H.shape == (r, 60)
        assert c.masks.min() >= 0 and c.masks.max() <= 1
        np.testing.assert_allclose(c.masks.sum(0), 1.0, atol=1e-9)
        V = 10 ** spec - 1  # the factored magnitude: the compression undone
        np.testing.assert_allclose(c.error, np.linalg.norm(V - c.W @ c.H) / np.linalg.norm(V),
                                   rtol=1e-6)
        errors.append(c.error)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02
    # rank rule: the smallest rank reaching the tolerance
    auto = nmf_components(spec, tol=0.05)
    assert auto.n_components == 3 and auto.error <= 0.05
    assert auto.info["errors"][2] > 0.05
    # factoring the compressed values instead needs more than 3 parts
    raw = nmf_components(spec, rank=3, compressed=False)
    assert raw.info["domain"] == "as given" and raw.error > 3 * errors[2]


def test_components_reject_bad_input(rng):
    with pytest.raises(ComponentError, match="sum to 1"):
        Components(np.zeros((2, 3, 4)), ["a", "b"], "bands")
    with pytest.raises(ComponentError, match="unknown component kind"):
        make_components("stems", rng.random((5, 6)))
    with pytest.raises(ComponentError, match="non-negative"):
        nmf_components(-np.ones((5, 6)))
    with pytest.raises(ComponentError, match="cannot split"):
        frequency_bands(rng.random((5, 6)), 9)
