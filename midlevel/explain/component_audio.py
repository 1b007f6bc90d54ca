"""A clip's components as audio: one component (a LIME component; NMF: its soft share of the
magnitude, i.e. the NMF separation of the clip) through the clip's own STFT
(:func:`component_audio`), and the top components of a LIME explanation written as wavs with a
table beside them (:func:`top_component_wavs`), all scaled by one factor so that none is
clipped (:func:`midlevel.explain.listen_back.common_gain`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.explain.attribution.components import ComponentError, Components
from midlevel.explain.listen import masked_audio
from midlevel.explain.listen_back import _frontend, common_gain
from midlevel.io import write_csv, write_wav

__all__ = ["component_audio", "top_component_wavs", "components_csv"]


def component_audio(y: np.ndarray, components: Components, k: int, frontend, *,
                    path=None) -> np.ndarray:
    """Component ``k`` of a clip as audio.

    The component's mask (hard: its bins; NMF: its soft share of each bin's magnitude, i.e.
    the NMF separation of the clip) is applied to the clip's STFT through the front end's
    filterbank (:func:`midlevel.explain.listen.masked_audio`). With ``path`` the audio is
    also written there (16-bit wav, atomically).

    Returns
    -------
    audio : np.ndarray [shape=(n_samples,), dtype=float32]
    """
    fe = _frontend(frontend)
    if not 0 <= int(k) < components.n_components:
        raise ComponentError(f"component {k} out of range (0..{components.n_components - 1})")
    audio = masked_audio(np.asarray(y, dtype=np.float64), components.masks[int(k)], fe)[0]
    if path is not None:
        write_wav(path, audio, fe.sample_rate)
    return audio


def top_component_wavs(y: np.ndarray, components: Components, weights, frontend, out_dir, *,
                       top: int = 3, clip: str = "clip", direction: float = 1.0) -> pd.DataFrame:
    """Write the ``top`` components with the most evidence as wavs, with a table beside them.

    Components are ranked by decreasing ``weight * direction`` (``direction = sign(f(x) -
    f(ref))`` ranks by evidence for the clip's deviation from the reference, as
    ``Lime``'s ``rank`` column; the default 1 ranks by evidence for a higher output).
    Files: ``{clip}_top{rank}_component{k}.wav`` (all multiplied by one :func:`common_gain`
    of the clip and the components) and ``{clip}_components.csv``.

    Returns
    -------
    pd.DataFrame: clip, rank, component, name, kind, weight, area, gain, path (the wav's path;
    the CSV beside the wavs gives its file name).
    """
    fe = _frontend(frontend)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (components.n_components,):
        raise ComponentError(f"need {components.n_components} weights, got shape {w.shape}")
    order = [int(k) for k in np.argsort(-np.sign(direction or 1.0) * w, kind="stable")[:int(top)]]
    audio = {k: component_audio(y, components, k, fe) for k in order}
    gain = common_gain([np.asarray(y), *audio.values()])
    wavs = [Path(out_dir) / f"{clip}_top{rank}_component{k}.wav"
            for rank, k in enumerate(order, start=1)]
    rows = []
    for (rank, k), wav in zip(enumerate(order, start=1), wavs):
        path = write_wav(wav, gain * audio[k], fe.sample_rate)
        rows.append({"clip": clip, "rank": rank, "component": k,
                     "name": components.names[k], "kind": components.kind,
                     "weight": float(w[k]), "area": float(components.area[k]),
                     "gain": gain, "path": str(path)})
    table = pd.DataFrame(rows)
    # the file beside the wavs names them by file name: it stays right when the folder moves
    write_csv(table.assign(path=[w.name for w in wavs]), components_csv(out_dir, clip))
    return table


def components_csv(out_dir, clip: str) -> Path:
    """The table :func:`top_component_wavs` writes beside the component wavs of ``clip``."""
    return Path(out_dir) / f"{clip}_components.csv"
