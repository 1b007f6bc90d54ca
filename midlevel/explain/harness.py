"""One faithfulness harness for every post-hoc method: perturbation curves against random.

The ranking rule (fixed before any result was measured)
-------------------------------------------------------
A map claims, for every bin (or patch), how much that bin pushes the explained output ``f`` up.
So the harness ranks bins by the **signed map value, largest first** ("most relevant first",
MoRF); "least relevant first" (LeRF) is the **exact reverse** of that order (the most negative
bins first). Ties (the zeros of a ReLU'd Grad-CAM, flat patches) are broken by a seeded random
permutation, the same for MoRF and LeRF. With ``patch=(bands, frames)`` the unit is a patch and
its value is the *sum* of the map over its bins (its claimed total contribution). The rule looks
at nothing else: not at ``f(x) - f(reference)``, not at the model, not at any curve.

Why this rule: for a method whose values are contributions to ``f(x) - f(reference)``
(integrated gradients, DeepLIFT), putting bin ``i`` back to the reference changes ``f`` by
about ``-a_i``; deleting in MoRF order lowers ``f`` fastest and in LeRF order raises it fastest,
*whatever the sign of* ``f(x) - f(reference)``. So the curves are compared in output units, and
no sign flip by ``sign(f(x) - f(reference))`` is needed (the old harness flipped the ranking by
that sign because it normalized each curve to run from 1 to 0, which needs the output to fall;
here nothing is normalized). Methods without a reference (LRP decomposes ``f(x)`` against a zero
output, Grad-CAM is positive evidence for ``f``) make the same claim, "larger pushes ``f`` up
more", and are ranked the same way. SHAP's explainers and GradientShap decompose
``f(x) - mean_j f(b_j)`` over the background sample instead: putting bin ``i`` back to each
background input in turn changes the mean output by about ``-a_i``. Deletion here puts it back
to the background's *mean*, the single input every method's curves share; that is the same
removal when ``f`` is linear, and otherwise an approximation whose size shows in the
attribution's ``expected`` (the mean output over the background) against the curves'
``reference_output`` (``f`` of the mean: on a small trained black box the two differed by more
than a clip's whole ``f(x) - f(reference)``, audit 8a). Listen-back removes to each background
input for these methods (:mod:`midlevel.explain.listen_back`); the curves do not (16 times the
forward passes).

What is measured
----------------
- **Deletion**: the first ``k`` units of an order are replaced by the ``reference`` (the same
  reference the attributions were computed against: the training background's mean, never
  silence unless that is the attributions' reference too; for SHAP and GradientShap that mean
  stands in for their background sample, above); ``f`` is recorded at fixed fractions
  ``k / n`` (``fractions``, default 0, 0.05, ..., 1). **Insertion**: the first ``k`` units are
  taken from ``x``, the rest from the reference. Insertion in one order is deletion in the
  reversed order read backwards, so insertion-MoRF is deletion-LeRF mirrored (tested): the two
  modes are reported because the field reports both, not as independent evidence.
- **Areas**, unnormalized: the trapezoid area under ``f`` over the fraction in [0, 1], in output
  units. Deletion: MoRF should lie *below* random, LeRF above. **Area between** the curves:
  deletion ``LeRF - MoRF``, insertion ``MoRF - LeRF``; positive = faithful, 0 = no better than
  chance, negative = the map ranks backwards.
- **Random orderings**: ``n_random`` (>= 5) seeded permutations per clip and their reverses
  (``2 * n_random`` random curves; each permutation and its reverse also give a random
  "area between", whose mean is 0 by symmetry: the null for the area between). The random
  permutations depend only on ``seed`` and the clip's position among the clips explained
  (``first`` + its index in the call), so every method on the same clips is compared with the
  same random orders, and each clip has its own.
- **Paired comparison against random** (:func:`compare_to_random`), per method and mode, over
  clips: ``morf_gain`` (deletion: random - MoRF area; insertion: MoRF - random),
  ``lerf_gain`` (deletion: LeRF - random; insertion: random - LeRF) and ``between_gain`` (area
  between minus the random pairs' area between); positive = better than random. Reported: mean,
  95 % percentile-bootstrap interval of the mean over clips, Wilcoxon signed-rank and one-sample
  t p-values (two-sided), the share of clips with a positive gain. ``verdict`` needs the
  interval and the paired Wilcoxon test to agree: "better than random" (lower bound > 0 and
  p < ``alpha``), "worse than random" (upper bound < 0 and p < ``alpha``), else "not
  distinguishable". With 2 or 3 clips the bootstrap interval is just their range and the
  exact test's smallest two-sided p is ``2 / 2**n`` (0.5, 0.25), so below
  :func:`min_clips` (6 clips at ``alpha = 0.05``: p = 0.031) the verdict is "too few clips
  to test (n = N, at least M needed)".

Everything comes back as tidy DataFrames. The explained ``f`` is any scalar module ``(batch, 1,
n_bands, n_frames) -> (batch, 1)``: ``OutputSelector(model, "target", i)`` for a black box or a
bottleneck's target, ``OutputSelector(model, "concept", i)`` for a bottleneck concept.

:func:`midlevel.explain.faithfulness.quantus_deletion_check` cross-checks the MoRF deletion
curve against quantus' ``PixelFlipping``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from midlevel.checks import whole_number
from midlevel.errors import AttributionError
from midlevel.explain.harness_stats import compare_to_random, min_clips

__all__ = ["DEFAULT_FRACTIONS", "HarnessResult", "morf_order", "patch_ids",
           "perturbation_curves", "curve_areas", "clip_scores", "compare_to_random",
           "min_clips", "faithfulness", "evaluate_methods", "as_maps"]

DEFAULT_FRACTIONS = np.linspace(0.0, 1.0, 21)
_ORDERS = ("morf", "lerf", "random", "random_reversed")


# ------------------------------------------------------------------------------ helpers


def as_maps(values, n: int | None = None) -> np.ndarray:
    """``(batch, 1, n_bands, n_frames)`` or ``(batch, n_bands, n_frames)`` (array, tensor,
    ``MethodResult`` or ``Attribution``) -> float64 ``(batch, n_bands, n_frames)``."""
    if not torch.is_tensor(values) and not isinstance(values, (np.ndarray, pd.DataFrame)) \
            and hasattr(values, "values"):  # MethodResult, Attribution
        values = values.values
    if torch.is_tensor(values):
        values = values.detach().cpu().numpy()
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 4:
        if a.shape[1] != 1:
            raise AttributionError(f"maps must have one channel, got shape {a.shape}")
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or (n is not None and len(a) != n):
        raise AttributionError(f"expected maps (batch, 1, n_bands, n_frames) for {n} inputs, "
                               f"got shape {np.shape(values)}")
    return a


def as_inputs(x) -> torch.Tensor:
    x = torch.as_tensor(x.detach().cpu() if torch.is_tensor(x) else np.asarray(x),
                        dtype=torch.float32)
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise AttributionError(f"expected inputs (batch, 1, n_bands, n_frames), got "
                               f"{tuple(x.shape)}")
    return x


def reference_map(reference, shape) -> torch.Tensor:
    r = torch.as_tensor(reference.detach().cpu() if torch.is_tensor(reference)
                        else np.asarray(reference), dtype=torch.float32)
    try:
        return torch.broadcast_to(r.reshape(r.shape[-2:]) if r.ndim >= 2 else r, shape).clone()
    except RuntimeError as err:
        raise AttributionError(f"reference of shape {tuple(r.shape)} does not fit inputs of "
                               f"(n_bands, n_frames) = {tuple(shape)}") from err


def patch_ids(shape: tuple[int, int], patch: tuple[int, int] | None = None) -> np.ndarray:
    """``(n_bands, n_frames)`` array of unit indices: each bin its own unit (``patch=None``) or
    tiles of ``patch = (bands, frames)`` (edge tiles smaller), numbered row-major."""
    nb, nf = shape
    if patch is None:
        return np.arange(nb * nf).reshape(nb, nf)
    pb, pf = max(1, int(patch[0])), max(1, int(patch[1]))
    cols = -(-nf // pf)
    return (np.arange(nb)[:, None] // pb) * cols + (np.arange(nf)[None, :] // pf)


def morf_order(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``values`` by decreasing value (MoRF), ties broken by a random permutation
    drawn from ``rng``; LeRF is ``order[::-1]``."""
    values = np.asarray(values, dtype=np.float64)
    return np.lexsort((rng.random(values.size), -values))


def _clip_rngs(seed: int, i: int):
    """Independent streams per clip: random orderings (shared by all methods) and tie-breaks."""
    ss = np.random.SeedSequence([int(seed), int(i)])
    orders, ties = ss.spawn(2)
    return np.random.default_rng(orders), np.random.default_rng(ties)


@torch.no_grad()
def _predict(f: nn.Module, xs: torch.Tensor, batch_size: int, device) -> np.ndarray:
    return torch.cat([f(xs[a:a + batch_size].to(device)).reshape(-1).cpu()
                      for a in range(0, len(xs), batch_size)]).numpy().astype(np.float64)


def device_of(f: nn.Module):
    p = next(f.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


# ------------------------------------------------------------------------------ curves


def perturbation_curves(f: nn.Module, x, maps, reference, *, method: str = "method",
                        clips=None, modes=("deletion", "insertion"), fractions=None,
                        n_random: int = 5, patch: tuple[int, int] | None = None,
                        seed: int = 0, first: int = 0, batch_size: int = 64) -> pd.DataFrame:
    """MoRF, LeRF and random-order deletion / insertion curves of ``f`` (module docstring).

    Parameters
    ----------
    f : scalar module ``(batch, 1, n_bands, n_frames) -> (batch, 1)`` (put in eval mode).
    x : inputs ``(batch, 1, n_bands, n_frames)``.
    maps : attributions for ``x`` (``(batch, 1, n_bands, n_frames)``, a ``MethodResult`` or an
        ``Attribution``).
    reference : the removal reference, broadcastable to ``(n_bands, n_frames)`` (the one the
        attributions were computed against).
    fractions : increasing fractions in [0, 1] of units removed (default ``DEFAULT_FRACTIONS``);
        at fraction ``q`` the first ``round(q * n_units)`` units of an order are perturbed.
    n_random : random permutations per clip (each also reversed); at least 5.
    patch : (bands, frames) to rank and perturb whole patches.
    first : the position of ``x``'s first clip among all the clips explained: clip ``i``
        draws its random orders and tie-breaks from ``(seed, first + i)``. A caller that
        passes its clips one call at a time gives each call its clip's position, so every
        clip has its own orders (with ``first=0`` every call would reuse clip 0's).

    Returns
    -------
    pd.DataFrame: clip, method, mode, order ("morf", "lerf", "random", "random_reversed"),
    repeat, fraction, value (``f`` of the perturbed input, output units), output (``f(x)``),
    reference_output (``f(reference)``), n_units.
    """
    # one or two random orders do not make a reference
    n_random = whole_number(n_random, "n_random", least=5, error=AttributionError)
    first = whole_number(first, "first", least=0, error=AttributionError)
    bad = [m for m in modes if m not in ("deletion", "insertion")]
    if bad:
        raise AttributionError(f"modes must be 'deletion' and/or 'insertion', got {bad}")
    x = as_inputs(x)
    a = as_maps(maps, len(x))
    if a.shape[1:] != tuple(x.shape[2:]):
        raise AttributionError(f"maps of shape {a.shape[1:]} do not match inputs "
                               f"{tuple(x.shape[2:])}")
    fractions = np.asarray(DEFAULT_FRACTIONS if fractions is None else fractions, dtype=float)
    if fractions.ndim != 1 or np.any(np.diff(fractions) <= 0) or fractions.min() < 0 \
            or fractions.max() > 1:
        raise AttributionError("fractions must increase strictly within [0, 1]")
    clips = list(clips) if clips is not None else [f"clip{i}" for i in range(len(x))]
    f.eval()
    device = device_of(f)
    shape = tuple(x.shape[2:])
    ref = reference_map(reference, shape)
    groups = patch_ids(shape, patch)
    n_units = int(groups.max()) + 1
    ks = np.rint(fractions * n_units).astype(int)
    f_ref = float(_predict(f, ref[None, None], 1, device)[0])
    f_x = _predict(f, x, batch_size, device)
    rows = []
    for i, clip in enumerate(clips):
        rng_orders, rng_ties = _clip_rngs(seed, first + i)
        unit_value = np.bincount(groups.ravel(), weights=a[i].ravel(), minlength=n_units)
        morf = morf_order(unit_value, rng_ties)
        orders = [("morf", 0, morf), ("lerf", 0, morf[::-1])]
        for r in range(n_random):
            perm = rng_orders.permutation(n_units)
            orders += [("random", r, perm), ("random_reversed", r, perm[::-1])]
        xi = x[i, 0]
        for mode in modes:
            batch = []
            for _, _, idx in orders:
                rank = np.empty(n_units, dtype=np.int64)
                rank[idx] = np.arange(n_units)
                rank_map = torch.as_tensor(rank[groups])
                for k in ks:
                    chosen = rank_map < k
                    batch.append(torch.where(chosen, ref, xi) if mode == "deletion"
                                 else torch.where(chosen, xi, ref))
            values = _predict(f, torch.stack(batch).unsqueeze(1), batch_size, device)
            values = values.reshape(len(orders), len(ks))
            for (order, repeat, _), v in zip(orders, values):
                rows.append(pd.DataFrame({"clip": clip, "method": method, "mode": mode,
                                          "order": order, "repeat": repeat,
                                          "fraction": fractions, "value": v,
                                          "output": f_x[i], "reference_output": f_ref,
                                          "n_units": n_units}))
    return pd.concat(rows, ignore_index=True)


def curve_areas(curves: pd.DataFrame) -> pd.DataFrame:
    """Trapezoid area under each curve (``value`` over ``fraction``), in output units.

    Returns
    -------
    pd.DataFrame: clip, method, mode, order, repeat, area.
    """
    keys = ["clip", "method", "mode", "order", "repeat"]
    out = []
    for key, g in curves.groupby(keys, sort=False):
        g = g.sort_values("fraction")
        out.append((*key, float(np.trapezoid(g["value"].to_numpy(), g["fraction"].to_numpy()))))
    return pd.DataFrame(out, columns=keys + ["area"])


def clip_scores(areas: pd.DataFrame) -> pd.DataFrame:
    """Per clip, method and mode: the areas and the gains over random (positive = better).

    Returns
    -------
    pd.DataFrame: clip, method, mode, morf, lerf, random (mean over all ``2 * n_random``
    random curves), random_sd, between (deletion: lerf - morf; insertion: morf - lerf),
    between_random (the same for each random permutation and its reverse, averaged),
    morf_gain, lerf_gain, between_gain (see the module docstring), morf_better (MoRF beats the
    random mean: deletion below, insertion above).
    """
    keys = ["clip", "method", "mode"]
    rows = []
    for key, g in areas.groupby(keys, sort=False):
        by = {o: g[g["order"] == o].sort_values("repeat")["area"].to_numpy() for o in _ORDERS}
        rnd = np.concatenate([by["random"], by["random_reversed"]])
        sign = 1.0 if key[2] == "deletion" else -1.0  # deletion: low MoRF is good
        morf, lerf = float(by["morf"][0]), float(by["lerf"][0])
        between = sign * (lerf - morf)
        between_random = float(np.mean(sign * (by["random_reversed"] - by["random"])))
        rows.append({**dict(zip(keys, key)), "morf": morf, "lerf": lerf,
                     "random": float(rnd.mean()), "random_sd": float(rnd.std(ddof=1)),
                     "between": between, "between_random": between_random,
                     "morf_gain": sign * (float(rnd.mean()) - morf),
                     "lerf_gain": sign * (lerf - float(rnd.mean())),
                     "between_gain": between - between_random})
    out = pd.DataFrame(rows)
    out["morf_better"] = out["morf_gain"] > 0
    return out


# ------------------------------------------------------------------------------ one call


@dataclass
class HarnessResult:
    """curves, areas, scores (per clip), comparison (per method, mode, metric): tidy tables."""

    curves: pd.DataFrame
    areas: pd.DataFrame
    scores: pd.DataFrame
    comparison: pd.DataFrame

    def summary(self, mode: str = "deletion") -> pd.DataFrame:
        """One row per method for ``mode``: mean areas, share of clips where MoRF beats random,
        and the area-between gain with its interval and p-value."""
        s = self.scores[self.scores["mode"] == mode]
        per = s.groupby("method", sort=False).agg(
            n_clips=("clip", "size"), morf=("morf", "mean"), lerf=("lerf", "mean"),
            random=("random", "mean"), between=("between", "mean"),
            morf_better_share=("morf_better", "mean")).reset_index()
        c = self.comparison[(self.comparison["mode"] == mode)
                            & (self.comparison["metric"] == "between_gain")]
        c = c[["method", "ci_low", "ci_high", "p_wilcoxon", "verdict", "clips_needed"]].rename(
            columns={"ci_low": "between_gain_ci_low", "ci_high": "between_gain_ci_high",
                     "p_wilcoxon": "between_gain_p"})
        return per.merge(c, on="method", how="left")


def faithfulness(f: nn.Module, x, maps: dict, reference, *, clips=None, n_boot: int = 2000,
                 **options) -> HarnessResult:
    """The harness for several methods' maps on the same clips.

    ``maps``: method name -> maps for ``x``; ``options``: :func:`perturbation_curves` keywords
    (modes, fractions, n_random, patch, seed, batch_size).
    """
    curves = pd.concat([perturbation_curves(f, x, m, reference, method=name, clips=clips,
                                            **options) for name, m in maps.items()],
                       ignore_index=True)
    areas = curve_areas(curves)
    scores = clip_scores(areas)
    return HarnessResult(curves, areas, scores,
                         compare_to_random(scores, n_boot=n_boot, seed=options.get("seed", 0)))


def evaluate_methods(f: nn.Module, x, methods: dict, reference, *, background=None,
                     clips=None, **options) -> tuple[HarnessResult, dict]:
    """Compute each method's maps (a ``AttributionMethod`` or a callable ``(f, x, reference) ->
    maps``) and run :func:`faithfulness`. Returns ``(result, maps)``."""
    maps = {}
    x = as_inputs(x)
    for name, m in methods.items():
        if hasattr(m, "attribute"):
            maps[name] = as_maps(m.attribute(f, x, reference=reference, background=background))
        else:
            maps[name] = as_maps(m(f, x, reference))
    return faithfulness(f, x, maps, reference, clips=clips, **options), maps
