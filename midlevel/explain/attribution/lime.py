"""LIME over interpretable audio components (time segments, bands, patches, NMF parts).

For one clip ``x`` ``(1, 1, n_bands, n_frames)`` and its :class:`~.components.Components`
(masks ``m_k`` summing to 1 at every bin), a binary vector ``z`` over the components keeps
the components with ``z_k = 1`` and removes the others *to the reference* (the training
background's mean spectrogram, never silence)::

    x_z = reference + (x - reference) * sum_k z_k m_k

(for hard partitions: the removed bins take the reference's values, the kept ones the
clip's). ``f(x_z)`` is evaluated for ``n_samples`` vectors ``z`` (the first is all ones, the
clip itself; the others have independent fair-coin entries) and a weighted linear surrogate
``f(x_z) ~ b + sum_k w_k z_k`` is fitted, each sample weighted by LIME's exponential kernel
on the cosine distance between ``z`` and the all-ones vector,
``exp(-d^2 / (2 kernel_width^2))`` with ``d = 1 - cos(z, 1)`` (lime_image's kernel and
default width 0.25). ``w_k`` is component ``k``'s weight: how much keeping it moves ``f``
above the reference (``w_k > 0``: evidence for a higher output).

Library: Captum's :class:`captum.attr.LimeBase` draws the samples (through its
``perturb_func`` hook, seeded), maps them to inputs (``from_interp_rep_transform``: the
formula above, which covers soft NMF masks that Captum's ``Lime`` feature-mask
transform cannot), batches the forward passes and fits the surrogate (Captum's
``SkLearnLinearRegression``, weighted least squares, or ``SkLearnRidge`` when
``alpha > 0``). Captum is already a dependency; the ``lime`` package's
``LimeBase.explain_instance_with_data`` would also return R^2, but adds an unmaintained
dependency and leaves sampling and batching to the caller. The surrogate's weighted R^2 is
computed here from the exact samples, outputs and kernel weights Captum fitted on
(:class:`WeightedLinearSurrogate`).

Stability: the whole procedure is repeated ``n_repeats`` times with independent samples;
the reported weight is the mean over repeats, ``weight_std`` its standard deviation, and
``stability`` the mean Spearman correlation of the weight vectors between pairs of repeats.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import torch
from captum._utils.models.linear_model import SkLearnLinearModel
from captum.attr import LimeBase
from scipy.stats import rankdata, spearmanr
from torch import nn

from midlevel.checks import real_number, whole_number
from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import MethodResult, AttributionMethod
from midlevel.explain.attribution.components import ComponentError, Components
from midlevel.explain.attribution.nmf import make_components

__all__ = ["Lime", "LimeSegments", "LimeOnsets", "LimeBands", "LimePatches", "LimeNMF",
           "WeightedLinearSurrogate", "perturb"]


# ------------------------------------------------------------------------------ surrogate


class WeightedLinearSurrogate(SkLearnLinearModel):
    """Captum's scikit-learn linear surrogate that also records its weighted fit.

    ``alpha == 0``: ``sklearn.linear_model.LinearRegression`` (weighted least squares);
    ``alpha > 0``: ``Ridge(alpha)``. After ``fit``: ``r2_`` (weighted coefficient of
    determination of the surrogate on its own samples, LIME's ``score``), ``intercept_``,
    ``coef_`` ``(n_components,)``.
    """

    def __init__(self, alpha: float = 0.0):
        if alpha > 0:
            super().__init__("linear_model.Ridge", alpha=float(alpha))
        else:
            super().__init__("linear_model.LinearRegression")

    def fit(self, train_data, **kwargs):
        out = super().fit(train_data, **kwargs)
        z, y, w = (torch.cat(t).double() for t in zip(*train_data))
        coef = self.representation().double().flatten()
        intercept = self.bias().double().flatten()
        pred = z @ coef + intercept
        w = w / w.sum()
        mean = (w * y).sum()
        ss_tot = float((w * (y - mean) ** 2).sum())
        ss_res = float((w * (y - pred) ** 2).sum())
        self.r2_ = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res < 1e-20 else np.nan)
        self.coef_ = coef.numpy()
        self.intercept_ = float(intercept[0])
        return out


# ------------------------------------------------------------------------------ perturbation


def perturb(x: torch.Tensor, reference: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``reference + (x - reference) * keep``: removed shares of each bin go to the reference.

    Parameters
    ----------
    x : torch.Tensor [shape=(1, 1, n_bands, n_frames)]
    reference : torch.Tensor broadcastable to ``x``
    keep : torch.Tensor [shape=(n, n_bands, n_frames)] kept share of each bin

    Returns
    -------
    torch.Tensor [shape=(n, 1, n_bands, n_frames)]
    """
    return reference + (x - reference) * keep.unsqueeze(1)


def _kernel(z: torch.Tensor, width: float) -> torch.Tensor:
    """LIME's exponential kernel on the cosine distance of ``z`` ``(n, K)`` to all ones."""
    z = z.double()
    k = z.shape[-1]
    cos = torch.sqrt(z.sum(-1) / k)  # cos(z, 1) for binary z; 0 for z = 0
    d = 1.0 - cos
    return torch.exp(-d ** 2 / (2 * width ** 2))


def _reference_tensor(reference, x: torch.Tensor) -> torch.Tensor:
    ref = torch.as_tensor(reference, dtype=x.dtype, device=x.device)
    while ref.ndim < 4:
        ref = ref.unsqueeze(0)
    try:
        torch.broadcast_shapes(ref.shape, x[:1].shape)
    except RuntimeError as err:
        raise ComponentError(f"reference of shape {tuple(ref.shape)} does not broadcast to "
                             f"a clip of shape {tuple(x[:1].shape)}") from err
    return ref


# ------------------------------------------------------------------------------ method


class Lime(AttributionMethod):
    """LIME over interpretable components of each clip, with fit and stability reported.

    Parameters
    ----------
    components : str or callable
        A factory name of :func:`~.components.make_components` (``"segments"``,
        ``"onsets"``, ``"bands"``, ``"patches"``, ``"nmf"``) or a callable
        ``spec (n_bands, n_frames) -> Components``.
    n_samples : int
        Perturbed inputs per repeat (the first is the clip itself).
    kernel_width : float
        Width of the exponential kernel on the cosine distance in component space.
    seed : int
        Repeat ``r`` of clip ``i`` draws from ``torch.Generator().manual_seed(seed +
        1000 * i + r)``.
    n_repeats : int
        Independent samplings per clip (stability; >= 2 for a stability value).
    alpha : float
        0: weighted least squares; > 0: ridge penalty of the surrogate.
    batch_size : int
        Perturbed inputs per forward pass of ``f``.
    component_options : dict
        Passed to the factory (``n``, ``seconds``, ``n_time``, ``n_freq``, ``rank``,
        ``compressed``...).
    frontend : optional front end; gives ``fps``, ``band_frequencies`` (names) and
        ``log_mul`` (NMF) to the factory.

    Attributes (after :meth:`attribute`)
    ------------------------------------
    components_ : list[Components], one per clip.
    weights_ : list[np.ndarray [shape=(n_repeats, n_components)]] per clip and repeat.
    """

    name = "lime"
    label = "LIME"

    def __init__(self, components="segments", *, n_samples: int = 256,
                 kernel_width: float = 0.25, seed: int = 0, n_repeats: int = 3,
                 alpha: float = 0.0, batch_size: int = 64, component_options: dict | None = None,
                 frontend=None, **options):
        super().__init__(batch_size=batch_size, seed=seed)
        self.components = components
        self.n_samples = whole_number(n_samples, "n_samples (lime_samples)", error=AttributionError)
        self.kernel_width = real_number(kernel_width, "kernel_width", above=0,
                                        error=AttributionError)
        self.n_repeats = whole_number(n_repeats, "n_repeats", error=AttributionError)
        self.alpha = real_number(alpha, "alpha (the surrogate's ridge penalty)", least=0,
                                 error=AttributionError)
        self.component_options = component_options
        self.frontend = frontend

    # ---------------------------------------------------------------- helpers

    @property
    def kind(self) -> str:
        c = self.components
        return c if isinstance(c, str) else getattr(c, "__name__", "callable")

    def make_components(self, spec) -> Components:
        """The components of one clip's spectrogram ``(n_bands, n_frames)``."""
        opts = {}
        fe = self.frontend
        if fe is not None:
            opts.update(fps=float(fe.fps), band_frequencies=np.asarray(fe.band_frequencies))
            if hasattr(fe, "log_mul"):
                opts["log_mul"] = float(fe.log_mul)
        opts.update(self.component_options or {})
        return make_components(self.components, spec, **opts)

    def _fit_once(self, f, x, ref, comps: Components, seed: int):
        K = comps.n_components
        masks = torch.as_tensor(comps.masks, dtype=x.dtype, device=x.device)

        def sample(original_inp, **kwargs):
            gen = torch.Generator().manual_seed(int(seed))
            yield torch.ones(1, K, dtype=torch.long, device=x.device)
            while True:
                z = torch.bernoulli(torch.full((1, K), 0.5), generator=gen).long()
                yield z.to(x.device)

        def to_input(z, original_inp, **kwargs):
            keep = torch.tensordot(z.to(masks.dtype), masks, dims=([1], [0]))
            return perturb(original_inp, ref, keep)

        def similarity(original_inp, perturbed_inp, z, **kwargs):
            return _kernel(z, self.kernel_width)

        surrogate = WeightedLinearSurrogate(self.alpha)
        lime = LimeBase(f, interpretable_model=surrogate, similarity_func=similarity,
                        perturb_func=sample, perturb_interpretable_space=True,
                        from_interp_rep_transform=to_input, to_interp_rep_transform=None)
        lime.attribute(x, n_samples=int(self.n_samples),
                       perturbations_per_eval=int(self.batch_size))
        return surrogate.coef_.copy(), surrogate.intercept_, surrogate.r2_

    # ---------------------------------------------------------------- main

    @torch.no_grad()
    def attribute(self, f: nn.Module, x: torch.Tensor, *, reference: torch.Tensor,
                  background: torch.Tensor | None = None, clips: list[str] | None = None
                  ) -> MethodResult:
        """Explain ``f`` at each clip of ``x`` ``(batch, 1, n_bands, n_frames)``.

        Parameters
        ----------
        f : nn.Module ``(n, 1, n_bands, n_frames) -> (n, 1)``
        reference : ``(1, 1, n_bands, n_frames)`` or broadcastable: removed parts take it.
        background : unused (LIME needs only the reference).
        clips : names for the tables (default ``clip0``, ``clip1``...).

        Returns
        -------
        MethodResult with ``values`` ``(batch, 1, n_bands, n_frames)`` (each component's
        mean weight spread over its bins, :meth:`Components.spread`; a clip's map sums to
        the sum of its weights), ``expected = f(reference)`` and tables:

        - ``components``: clip, component, name, kind, weight (mean over repeats),
          weight_std (over repeats), rank (1 = strongest evidence for the clip's
          deviation from the reference: decreasing ``weight * sign(f(x) - f(ref))``;
          weights equal up to float rounding, ``TIE_RTOL``, share the best rank),
          area (share of the clip's bins);
        - ``fit``: clip, kind, n_components, n_samples, n_repeats, r2 (mean surrogate
          weighted R^2 over repeats), r2_min, stability (mean pairwise Spearman of the
          weights between repeats, rounding-level differences tied; NaN for one repeat or
          one component), intercept (mean),
          f_x, f_ref, surrogate_x (intercept + sum of weights: the surrogate at the clip),
          nmf_error (relative reconstruction error for NMF, else NaN), seconds.
        """
        x = torch.as_tensor(x)
        if x.ndim != 4 or x.shape[1] != 1:
            raise ComponentError(f"x must be (batch, 1, n_bands, n_frames), got "
                                 f"{tuple(x.shape)}")
        f = f.eval() if isinstance(f, nn.Module) else f
        ref = _reference_tensor(reference, x)
        clips = list(clips) if clips is not None else [f"clip{i}" for i in range(len(x))]
        f_ref = float(f(ref.expand_as(x[:1]).contiguous())[0, 0])
        values = np.zeros(x.shape, dtype=np.float32)
        comp_rows, fit_rows = [], []
        self.components_, self.weights_ = [], []
        for i in range(len(x)):
            t0 = time.perf_counter()
            xi = x[i:i + 1]
            comps = self.make_components(xi[0, 0].detach().cpu().numpy())
            if comps.shape != tuple(xi.shape[-2:]):
                raise ComponentError(f"components of shape {comps.shape} for a clip of shape "
                                     f"{tuple(xi.shape[-2:])}")
            fits = [self._fit_once(f, xi, ref, comps, self.seed + 1000 * i + r)
                    for r in range(int(self.n_repeats))]
            W = np.stack([c for c, _, _ in fits])  # (n_repeats, K)
            w = W.mean(0)
            f_x = float(f(xi)[0, 0])
            direction = 1.0 if f_x >= f_ref else -1.0
            # tied weights (equal up to float rounding: TIE_RTOL) share the best rank
            rank = rankdata(-direction * _snapped(w, W), method="min").astype(int)
            values[i, 0] = comps.spread(w)
            seconds = time.perf_counter() - t0
            self.components_.append(comps)
            self.weights_.append(W)
            comp_rows.append(pd.DataFrame({
                "clip": clips[i], "component": np.arange(comps.n_components),
                "name": comps.names, "kind": comps.kind, "weight": w,
                "weight_std": W.std(0, ddof=1) if len(W) > 1 else np.nan, "rank": rank,
                "area": comps.area}))
            r2 = np.array([r for _, _, r in fits], dtype=float)
            fit_rows.append({
                "clip": clips[i], "kind": comps.kind, "n_components": comps.n_components,
                "n_samples": int(self.n_samples), "n_repeats": int(self.n_repeats),
                "r2": float(np.mean(r2)), "r2_min": float(np.min(r2)),
                "stability": _stability(W), "intercept": float(np.mean([b for _, b, _ in fits])),
                "f_x": f_x, "f_ref": f_ref,
                "surrogate_x": float(np.mean([b for _, b, _ in fits]) + w.sum()),
                "nmf_error": comps.error if comps.error is not None else np.nan,
                "seconds": seconds})
        return MethodResult(values=values, expected=f_ref,
                            tables={"components": pd.concat(comp_rows, ignore_index=True),
                                    "fit": pd.DataFrame(fit_rows)})


TIE_RTOL = 1e-6  # of the largest |weight|: closer weights are ties (float rounding is ~1e-7)


def _snapped(values: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``values`` (a vector, or rows of one) with each chain of neighbours within ``TIE_RTOL``
    times the largest ``|W|`` set to its first value: rounding noise becomes ties (audit 15a:
    an exact fit with three zero weights read stability 0.47-0.67, the rank noise of 1e-7)."""
    values = np.array(values, dtype=float)
    tol = TIE_RTOL * float(np.max(np.abs(W))) if W.size else 0.0
    if tol <= 0:
        return values
    for row in np.atleast_2d(values):
        order = np.argsort(row, kind="stable")
        before = row[order]
        snapped = before.copy()
        for i in range(1, len(before)):
            if before[i] - before[i - 1] <= tol:
                snapped[i] = snapped[i - 1]     # a chain of close neighbours is one tie
        row[order] = snapped
    return values


def _stability(W: np.ndarray) -> float:
    """Mean Spearman correlation of the repeats' weight vectors, pairwise (ties: _snapped)."""
    if len(W) < 2 or W.shape[1] < 2:
        return float("nan")
    W = _snapped(W, W)
    rs = []
    for a, b in itertools.combinations(range(len(W)), 2):
        if np.ptp(W[a]) == 0 or np.ptp(W[b]) == 0:
            rs.append(1.0 if np.allclose(W[a], W[b]) else 0.0)
        else:
            rs.append(float(spearmanr(W[a], W[b]).statistic))
    return float(np.mean(rs))


# The registered variants take their sample count as ``lime_samples`` (default 256): the
# ``n_samples`` an Attributor passes to every method is SHAP's and GradientShap's.


class LimeSegments(Lime):
    """LIME over fixed time segments (12 by default)."""

    name, label = "lime_segments", "LIME (time segments)"

    def __init__(self, *, lime_samples: int = 256, n_samples=None, **options):
        super().__init__("segments", n_samples=lime_samples, **options)


class LimeOnsets(Lime):
    """LIME over onset-aligned time segments."""

    name, label = "lime_onsets", "LIME (onset segments)"

    def __init__(self, *, lime_samples: int = 256, n_samples=None, **options):
        super().__init__("onsets", n_samples=lime_samples, **options)


class LimeBands(Lime):
    """LIME over contiguous frequency bands."""

    name, label = "lime_bands", "LIME (frequency bands)"

    def __init__(self, *, lime_samples: int = 256, n_samples=None, **options):
        super().__init__("bands", n_samples=lime_samples, **options)


class LimePatches(Lime):
    """LIME over time-frequency patches."""

    name, label = "lime_patches", "LIME (time-frequency patches)"

    def __init__(self, *, lime_samples: int = 256, n_samples=None, **options):
        super().__init__("patches", n_samples=lime_samples, **options)


class LimeNMF(Lime):
    """LIME over NMF components of the clip's own magnitude spectrogram, rank 8 unless
    ``component_options={"rank": ...}`` says otherwise (``{"rank": None}``: the smallest rank
    reaching the relative error ``tol``; on a spectrogram with a random noise floor that rule
    picks a low rank that lumps a short event with the noise; on real clips it chose 7-12)."""

    name, label = "lime_nmf", "LIME (NMF components)"

    def __init__(self, *, component_options: dict | None = None, lime_samples: int = 256,
                 n_samples=None, **options):
        super().__init__("nmf", component_options={"rank": 8, **(component_options or {})},
                         n_samples=lime_samples, **options)
