"""Shared fixtures: a seeded rng, tiny wav writers, tiny trained runs on a synthetic world, and
the real Soundtracks set when present."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import soundfile as sf

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]


def soundtracks_path() -> Path:
    """``$MIDLEVEL_SOUNDTRACKS`` or ../shared/datasets/soundtracks beside the repository."""
    env = os.environ.get("MIDLEVEL_SOUNDTRACKS")
    return Path(env) if env else REPO.parent / "shared" / "datasets" / "soundtracks"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not suffer from a busy machine)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def soundtracks_dir() -> Path:
    path = soundtracks_path()
    if not (path / "mean_ratings_set1.csv").is_file():
        pytest.skip(f"Soundtracks dataset not found at {path}")
    return path


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (dedented, leading blank lines dropped) to ``path``, making its folder."""
    import textwrap
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def write_tone(path: Path, *, freq: float = 440.0, seconds: float = 1.0, sr: int = 22050,
               channels: int = 1, amplitude: float = 0.5) -> Path:
    """Write a sine tone as 16-bit wav [shape=(n_samples, channels)]."""
    t = np.arange(int(seconds * sr)) / sr
    y = amplitude * np.sin(2 * np.pi * freq * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([y] * channels, axis=1), sr, subtype="PCM_16")
    return path


def execute_notebook(path: Path, workdir: Path, monkeypatch, settings: dict[str, str]):
    """Run a notebook with ``settings`` as environment variables; return it with its outputs.

    Asserts that no cell raised.
    """
    import nbformat
    from nbclient import NotebookClient

    pytest.importorskip("ipykernel")
    for key, value in {**settings, "MPLBACKEND": "Agg"}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    return nb


# a run's settings small enough for a test: one epoch of a narrow `small` network
TINY_RUN = {"preset": "small", "width": 0.125, "epochs": 1, "crop_seconds": 1.5,
            "eval_hop_seconds": 1.5, "batch_size": 8, "patience": 5}


def train_tiny_runs(root: Path, *, n_clips: int, seed: int, duration: float,
                    modes=("joint", "blackbox")) -> tuple[Path, Path, dict]:
    """A synthetic world of ``n_clips`` clips of ``duration`` s under ``root / "data"`` and a
    TINY_RUN of each mode on it: ``(spec path, feature cache, {mode: Run})``."""
    from midlevel.synth import synthesize
    from midlevel.training import train
    spec = synthesize(root / "data", n_clips=n_clips, seed=seed, duration=duration, n_jobs=1,
                      progress=False)
    cache = root / "cache"
    runs = {mode: train(spec, root / mode, mode=mode, config={**TINY_RUN, "mode": mode},
                        cache_dir=cache, progress=False) for mode in modes}
    return spec, cache, runs
