"""A tiny in-memory dataset with known structure for the training tests.

Spectrograms of 40 bands: concept k raises the level of band group k (bands 10k..10k+9), so a
CNN can read each concept; targets are a known linear map of the concepts. Clip lengths vary
(20 to 90 frames at 31.25 fps); crops of 1 s (32 frames) pad the shortest clips.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.training.config import TrainConfig
from midlevel.training.data import Columns

FPS = 31.25
WEIGHTS = np.array([[1.0, -0.5], [0.5, 1.0], [-1.0, 0.3]])  # (n_concepts, n_targets)


def toy_data(n_clips: int = 32, seed: int = 0, n_bands: int = 40):
    """Returns (table, features, columns): splits 60/20/20 %, concepts k0..k2, targets t0, t1."""
    rng = np.random.default_rng(seed)
    clips = [f"c{i:03d}" for i in range(n_clips)]
    concepts = rng.uniform(-1, 1, size=(n_clips, 3))
    features = {}
    for i, clip in enumerate(clips):
        n_frames = 20 if i < 2 else int(rng.integers(40, 90))
        spec = rng.normal(0, 0.3, size=(n_bands, n_frames)) + 1.0
        for k in range(3):
            spec[10 * k:10 * k + 10] += concepts[i, k]
        features[clip] = spec.astype(np.float32)
    n_tr, n_va = int(0.6 * n_clips), int(0.2 * n_clips)
    split = ["train"] * n_tr + ["validation"] * n_va + ["test"] * (n_clips - n_tr - n_va)
    table = pd.DataFrame({"path": [f"/nowhere/{c}.wav" for c in clips], "split": split},
                         index=pd.Index(clips, name="clip"))
    for k in range(3):
        table[f"k{k}"] = 5 + 2 * concepts[:, k]
    targets = concepts @ WEIGHTS
    for j in range(2):
        table[f"t{j}"] = 3 + targets[:, j]
    columns = Columns(["k0", "k1", "k2"], [{"name": "t0", "kind": "regression"},
                                           {"name": "t1", "kind": "regression"}])
    return table, features, columns


def toy_config(**kw) -> TrainConfig:
    """Tiny, fast settings: width 0.125, 1 s crops, batch 4, 2 epochs, BatchNorm
    re-estimation and evaluation in batches of 64 windows."""
    values = dict(preset="small", width=0.125, crop_seconds=1.0, batch_size=4, epochs=2,
                  lr=3e-3, patience=10, eval_batch_size=64, bn_batch_size=64)
    values.update(kw)
    return TrainConfig(**values)


TAG_WEIGHTS = np.array([[2.0, -2.0], [-1.5, 2.5]])  # (binary concepts, tag targets), log-odds


def toy_tag_data(n_clips: int = 40, seed: int = 0, n_bands: int = 40):
    """Mixed concepts and tag targets: (table, features, columns).

    Concepts ``k0`` (a rating: band group 0's level) and ``b0``, ``b1`` (binary: band groups 1
    and 2 are raised when present); targets ``t0`` (regression on all three) and the
    multi-label group ``mood`` = ``mood=up``, ``mood=down``, drawn from the logistic map
    ``TAG_WEIGHTS`` of the binary concepts (intercept ``-0.5``)."""
    rng = np.random.default_rng(seed)
    clips = [f"c{i:03d}" for i in range(n_clips)]
    k0 = rng.uniform(-1, 1, n_clips)
    tags = (rng.random((n_clips, 2)) < 0.5).astype(float)
    features = {}
    for i, clip in enumerate(clips):
        spec = rng.normal(0, 0.3, size=(n_bands, int(rng.integers(40, 90)))) + 1.0
        spec[0:10] += k0[i]
        spec[10:20] += 1.5 * tags[i, 0]
        spec[20:30] += 1.5 * tags[i, 1]
        features[clip] = spec.astype(np.float32)
    n_tr, n_va = int(0.6 * n_clips), int(0.2 * n_clips)
    split = ["train"] * n_tr + ["validation"] * n_va + ["test"] * (n_clips - n_tr - n_va)
    table = pd.DataFrame({"path": [f"/nowhere/{c}.wav" for c in clips], "split": split},
                         index=pd.Index(clips, name="clip"))
    table["k0"] = 5 + 2 * k0
    table["b0"], table["b1"] = tags[:, 0], tags[:, 1]
    table["t0"] = 3 + k0 + tags[:, 0] - tags[:, 1]
    prob = 1 / (1 + np.exp(-(-0.5 + tags @ TAG_WEIGHTS)))
    draws = (rng.random((n_clips, 2)) < prob).astype(float)
    table["mood=up"], table["mood=down"] = draws[:, 0], draws[:, 1]
    columns = Columns(["k0", "b0", "b1"],
                      [{"name": "t0", "kind": "regression"},
                       {"name": "mood=up", "kind": "binary", "group": "mood"},
                       {"name": "mood=down", "kind": "binary", "group": "mood"}],
                      ["regression", "binary", "binary"])
    return table, features, columns
