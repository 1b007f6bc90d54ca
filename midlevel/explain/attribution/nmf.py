"""NMF components of a clip's own magnitude spectrogram: parts that are simple, sparse and
separable, the stand-in for source separation (no pretrained separator can be shipped), and
the registry of component kinds (:func:`make_components`)."""
from __future__ import annotations

import inspect
import warnings

import numpy as np

from midlevel.explain.attribution.components import (
    ComponentError, Components, _as_spec, frequency_bands, patches, time_segments,
)


def nmf_components(spec, rank: int | None = None, *, compressed: bool = True,
                   log_mul: float = 1.0, tol: float = 0.3, max_rank: int = 12,
                   max_iter: int = 1000, seed: int = 0, band_frequencies=None,
                   fps: float | None = None) -> Components:
    """NMF of the clip's own magnitude spectrogram, as soft components.

    Which values are factored: the front end's output is ``log10(1 + log_mul * M)`` of the
    filterbank magnitude ``M``. With ``compressed=True`` (the default, for front-end output)
    the compression is undone, ``V = (10 ** spec - 1) / log_mul``, and ``V ~ W H`` is
    factored: NMF's model, a spectrogram as a *sum* of non-negative parts, holds for
    magnitudes (sounds add, approximately, in magnitude) but not for their logarithms; and
    the component masks are then shares of the magnitude, which is what a soft STFT mask
    applies when a component is turned back into audio (:mod:`~.listen_back`), so what you
    hear is what was factored. ``compressed=False`` factors ``spec`` as given (a magnitude,
    or a toy input that is not log-compressed). Negative values (rounding) are set to 0.

    Masks: ``m_k = W[:, k] H[k] / (W H)`` (each bin split between the components in
    proportion to their part of its reconstruction; bins reconstructed as 0 are split
    equally). Components are ordered by their energy ``sum(W[:, k] H[k])``, largest first.

    Rank: ``rank`` if given; otherwise the smallest rank in ``1..max_rank`` whose relative
    reconstruction error ``||V - W H||_F / ||V||_F`` is at most ``tol`` (``max_rank`` if none
    reaches it), found by binary search over the rank (the error decreases with the rank, up
    to NMF's local optima). Errors of every rank tried are in ``info["errors"]``. On six 10-s
    Soundtracks clips the magnitude error was 0.27-0.40 at rank 8, and ``tol=0.3`` chose
    ranks 7-12; the error on the compressed spectrogram (``info["error_spectrogram"]``) is
    smaller there (0.24-0.31 at rank 8), larger on clips with quiet noise floors.

    Parameters
    ----------
    spec : array [shape=(n_bands, n_frames)], non-negative.
    rank : int, optional
    tol, max_rank : the rank rule above.
    max_iter, seed : passed to ``sklearn.decomposition.NMF`` (``init="nndsvda"``, Frobenius
        loss, coordinate descent, ``tol=1e-4``; deterministic for a seed; a fit that stops
        at ``max_iter`` sets ``info["converged"] = False``).

    Returns
    -------
    Components of kind ``"nmf"`` with ``W`` ``(n_bands, rank)``, ``H`` ``(rank, n_frames)``,
    ``error`` (relative error in the factored domain) and ``info``: ``domain``
    ("magnitude" or "as given"), ``error_spectrogram`` (relative error of the
    reconstruction on the model's input, ``log10(1 + log_mul W H)`` against ``spec``, when
    ``compressed``; else equal to ``error``), ``errors`` {rank: error}, ``rank_rule``,
    ``converged``.
    """
    s = _as_spec(spec)
    if s.min() < -1e-6:
        raise ComponentError(f"NMF needs a non-negative spectrogram, minimum {s.min():.3g}")
    V = (10.0 ** s - 1.0) / float(log_mul) if compressed else s
    V = np.clip(V, 0.0, None)
    norm = float(np.linalg.norm(V))
    if norm == 0:
        raise ComponentError("NMF of an all-zero spectrogram (a silent clip) has no components")
    limit = min(s.shape)
    if rank is not None:
        if not 1 <= int(rank) <= limit:
            raise ComponentError(f"NMF rank must lie in 1..{limit}, got {rank}")
        rule = "given"
    else:
        rule = f"smallest rank <= {min(int(max_rank), limit)} with error <= {tol}"
    fits = {}

    def fit(r: int) -> float:
        if r not in fits:
            W_, H_, ok_ = _nmf(V, r, max_iter=max_iter, seed=seed)
            fits[r] = (W_, H_, ok_, float(np.linalg.norm(V - W_ @ H_) / norm))
        return fits[r][3]

    if rank is not None:
        chosen = int(rank)
        fit(chosen)
    else:  # binary search, taking the error to decrease with the rank
        lo, hi = 1, min(int(max_rank), limit)
        if fit(hi) > tol:
            chosen = hi
        else:
            while lo < hi:
                mid = (lo + hi) // 2
                if fit(mid) <= tol:
                    hi = mid
                else:
                    lo = mid + 1
            chosen = hi
    W, H, converged, _ = fits[chosen]
    errors = {r: fits[r][3] for r in sorted(fits)}
    parts = W[:, :, None] * H[None, :, :]  # (B, r, T)
    energy = parts.sum(axis=(0, 2))
    order = np.argsort(-energy, kind="stable")
    W, H, parts = W[:, order], H[order], parts[:, order]
    total = parts.sum(1)
    k = W.shape[1]
    masks = np.where(total[None] > 1e-12 * max(total.max(), 1e-300),
                     np.moveaxis(parts, 1, 0) / np.maximum(total, 1e-300)[None], 1.0 / k)
    masks = masks / masks.sum(0, keepdims=True)
    recon = W @ H
    err_spec = (float(np.linalg.norm(np.log10(1 + log_mul * recon) - s) / np.linalg.norm(s))
                if compressed else errors[k])
    names = []
    for j in range(k):
        centre = int(round(np.average(np.arange(s.shape[0]), weights=W[:, j] + 1e-300)))
        where = (f"~{float(band_frequencies[centre]):.0f} Hz"
                 if band_frequencies is not None and len(band_frequencies) == s.shape[0]
                 else f"~band {centre}")
        names.append(f"nmf {j + 1} ({where})")
    return Components(masks, names, "nmf", W=W, H=H, error=errors[k],
                      info={"domain": "magnitude" if compressed else "as given",
                            "error_spectrogram": err_spec, "errors": errors,
                            "rank_rule": rule, "converged": converged})


def _nmf(V: np.ndarray, r: int, *, max_iter: int, seed: int):
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    model = NMF(n_components=r, init="nndsvda", max_iter=max_iter, random_state=seed,
                tol=1e-4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        W = model.fit_transform(V)
    ok = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return W, model.components_, ok


FACTORIES = {"segments": time_segments, "onsets": time_segments, "bands": frequency_bands,
             "patches": patches, "nmf": nmf_components}


def make_components(kind, spec, **options) -> Components:
    """Components of one clip by factory name (or a callable ``spec -> Components``).

    ``options`` are passed to the factory; those it does not take (e.g. ``fps`` for NMF when
    given to every kind) are dropped. ``"onsets"`` is ``time_segments(onsets=True)``.
    """
    if callable(kind):
        fn, name = kind, getattr(kind, "__name__", "callable")
    else:
        name = str(kind).lower()
        if name not in FACTORIES:
            raise ComponentError(f"unknown component kind '{kind}'; kinds are "
                                 f"{sorted(FACTORIES)} or a callable spec -> Components")
        fn = FACTORIES[name]
        if name == "onsets":
            options = {**options, "onsets": True}
    params = inspect.signature(fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        options = {k: v for k, v in options.items() if k in params}
    out = fn(spec, **options)
    if not isinstance(out, Components):
        raise ComponentError(f"component factory {name} returned {type(out).__name__}, "
                             f"not Components")
    return out
