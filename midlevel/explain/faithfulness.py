"""Faithfulness of attributions: are the bins an explanation points at the ones the model uses?

- :func:`deletion_curves` / :func:`insertion_curves`: remove (insert) input bins in the order
  of decreasing attribution, replacing them with a baseline, and follow the explained output;
  the same with random orders as the reference. :func:`curve_areas` gives the areas: a
  faithful attribution has a *smaller* deletion area and a *larger* insertion area than random.
- :func:`randomization_check`: the model-parameter randomization sanity check (Adebayo et al.
  2018): re-initialize the weights (cascading from the top, or all at once) and measure how
  much the maps still resemble the original ones (rank correlation); an explanation that does
  not change is not explaining the model.
- :func:`event_share`: on data where the deciding event sits in a known time-frequency box,
  the share of (positive) attribution inside the box, against the box's share of the input.
- :func:`completeness`: the bottleneck's accuracy over the black box's, per target.
The controlled task with a known deciding event lives in :mod:`midlevel.testing.events`.

All results are tidy DataFrames.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from midlevel.errors import ArgumentError
from torch import nn

from midlevel.explain.attribution.attributor import Attributor
from midlevel.explain.attribution.base import OutputSelector, resolve_output
from midlevel.explain.attribution.result import Attribution

__all__ = ["deletion_curves", "insertion_curves", "perturbation_curves", "curve_areas",
           "area_summary", "randomization_check", "event_share", "completeness"]


# ------------------------------------------------------------------------------ deletion


def _selector(model: nn.Module, attr: Attribution) -> OutputSelector:
    if isinstance(model, OutputSelector):
        return model.eval()
    kind, index, _ = resolve_output(model, f"{attr.output_kind}:{attr.output}"
                                    if hasattr(model, "output_names") else None)
    return OutputSelector(model, kind, index).eval()


def _baseline_map(baseline, shape) -> torch.Tensor:
    if isinstance(baseline, (int, float)):
        return torch.full(shape, float(baseline))
    b = torch.as_tensor(baseline, dtype=torch.float32)
    return b.reshape(b.shape[-2:]).expand(shape).clone() if b.numel() > 1 else torch.full(
        shape, float(b))


@torch.no_grad()
def perturbation_curves(model: nn.Module, attr: Attribution, *, mode: str = "deletion",
                        steps: int = 20, baseline=0.0, n_random: int = 2, seed: int = 0,
                        batch_size: int = 16, min_span: float = 1e-8,
                        patch: tuple[int, int] | None = None) -> pd.DataFrame:
    """Deletion or insertion curves of ``attr`` and of ``n_random`` random orders.

    Bins are ranked by decreasing attribution towards the clip's deviation from the fully
    perturbed input, i.e. by ``a * sign(f(x) - f(baseline))`` (plain decreasing attribution
    when the clip's output lies above the baseline's; ties broken at random). At fraction ``f`` of
    ``steps + 1`` equally spaced fractions in [0, 1], the first ``f`` of the bins are replaced
    by ``baseline`` (deletion) or taken from the input with the rest at the baseline
    (insertion), and the explained output is recorded.

    Parameters
    ----------
    model : the explained model (or an ``OutputSelector``); the output is ``attr``'s.
    attr : Attribution
    baseline : float or a ``(n_bands, n_frames)`` map: the value of a removed bin
        (0 = silence for log-magnitude spectrograms).
    patch : (bands, frames): rank and remove whole patches (by their summed attribution)
        instead of single bins; fewer isolated holes, so the perturbed inputs stay closer to
        real spectrograms. Fractions then count patches.
    min_span : clips whose output barely moves between the unperturbed and the fully
        perturbed input (``|v_start - v_end| < min_span``) get NaN normalized curves: there is
        nothing to delete, and normalizing would blow the curve up. A good choice is a tenth
        of the output's spread over the background.

    Returns
    -------
    pd.DataFrame with columns clip, method, output, mode, order ("attribution" or
    "random"), repeat, fraction, value (model output) and normalized: ``(value - v_end) /
    (v_start - v_end)`` where ``v_start`` and ``v_end`` are the outputs of the unperturbed and
    the fully perturbed input (deletion: ``v_start`` = the clip's output), so every curve goes
    from 1 to 0 (insertion: from 0 to 1); span = ``v_start - v_end``.
    """
    if mode not in ("deletion", "insertion"):
        raise ArgumentError(f"mode must be 'deletion' or 'insertion', got '{mode}'")
    sel = _selector(model, attr)
    rng = np.random.default_rng(seed)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    rows = []
    for i, clip in enumerate(attr.clips):
        x = torch.as_tensor(attr.inputs[i, 0])
        groups = _patch_ids(x.shape, patch)
        a = np.bincount(groups.ravel(), weights=attr.maps[i].ravel().astype(np.float64))
        n = a.size
        base = _baseline_map(baseline, x.shape)
        # Rank by evidence *for the clip's deviation from the fully perturbed input*: when the
        # clip's output lies below that reference, the bins that hold it down (negative
        # attribution) are the ones whose removal moves the output towards the end point.
        ends = sel(torch.stack([x, base]).unsqueeze(1))[:, 0]
        direction = 1.0 if float(ends[0] - ends[1]) >= 0 else -1.0
        orders = [("attribution", 0, np.lexsort((rng.random(n), -direction * a)))]
        orders += [("random", r, rng.permutation(n)) for r in range(n_random)]
        for order, repeat, idx in orders:
            batch = []
            for f in fractions:
                k = int(round(f * n))
                chosen = np.zeros(n, dtype=bool)
                chosen[idx[:k]] = True
                keep = torch.as_tensor(chosen[groups])
                if mode == "deletion":
                    batch.append(torch.where(keep, base, x))
                else:
                    batch.append(torch.where(keep, x, base))
            xs = torch.stack(batch).unsqueeze(1)
            values = torch.cat([sel(xs[a0:a0 + batch_size])
                                for a0 in range(0, len(xs), batch_size)])[:, 0].numpy()
            full, empty = (values[0], values[-1]) if mode == "deletion" else (values[-1], values[0])
            span = full - empty
            norm = ((values - empty) / span if abs(span) >= max(min_span, 1e-12)
                    else np.full_like(values, np.nan))
            rows.append(pd.DataFrame({"clip": clip, "method": attr.method, "output": attr.output,
                                      "mode": mode, "order": order, "repeat": repeat,
                                      "fraction": fractions, "value": values,
                                      "normalized": norm, "span": span}))
    return pd.concat(rows, ignore_index=True)


def _patch_ids(shape, patch) -> np.ndarray:
    """``(n_bands, n_frames)`` array of patch indices (each bin its own patch if None)."""
    nb, nf = shape
    if patch is None:
        return np.arange(nb * nf).reshape(nb, nf)
    pb, pf = max(1, int(patch[0])), max(1, int(patch[1]))
    cols = -(-nf // pf)
    return (np.arange(nb)[:, None] // pb) * cols + (np.arange(nf)[None, :] // pf)


def deletion_curves(model, attr: Attribution, **kwargs) -> pd.DataFrame:
    """:func:`perturbation_curves` with ``mode="deletion"`` (lower area = more faithful)."""
    return perturbation_curves(model, attr, mode="deletion", **kwargs)


def insertion_curves(model, attr: Attribution, **kwargs) -> pd.DataFrame:
    """:func:`perturbation_curves` with ``mode="insertion"`` (higher area = more faithful)."""
    return perturbation_curves(model, attr, mode="insertion", **kwargs)


def curve_areas(curves: pd.DataFrame) -> pd.DataFrame:
    """Area under each normalized curve (trapezoid over fraction in [0, 1]).

    Returns
    -------
    pd.DataFrame: clip, method, output, mode, order, area (random orders averaged over repeats).
    """
    def area(g):
        g = g.sort_values("fraction")
        y, x = g["normalized"].to_numpy(), g["fraction"].to_numpy()
        return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)  # NaN if the clip was skipped

    keys = ["clip", "method", "output", "mode", "order"]
    per = (curves.groupby(keys + ["repeat"], sort=False).apply(area, include_groups=False)
           .rename("area").reset_index())
    return per.groupby(keys, sort=False)["area"].mean().reset_index()  # NaN stays NaN


def area_summary(areas: pd.DataFrame) -> pd.DataFrame:
    """Per method, output and mode: mean area of the attribution order and of random orders,
    their difference (attribution - random) and the share of clips where attribution beats
    random (deletion: smaller; insertion: larger). Clips without a valid curve (NaN area)
    are left out; n_clips counts the others."""
    wide = areas.dropna(subset=["area"]).pivot_table(
        index=["method", "output", "mode", "clip"], columns="order", values="area").reset_index()
    if len(wide) == 0:
        return pd.DataFrame(columns=["method", "output", "mode", "n_clips", "attribution",
                                     "random", "better_share", "difference"])
    better = np.where(wide["mode"] == "deletion", wide["attribution"] < wide["random"],
                      wide["attribution"] > wide["random"])
    wide["better"] = better
    out = wide.groupby(["method", "output", "mode"], sort=False).agg(
        n_clips=("clip", "size"), attribution=("attribution", "mean"),
        random=("random", "mean"), better_share=("better", "mean")).reset_index()
    out["difference"] = out["attribution"] - out["random"]
    return out


# ------------------------------------------------------------------------------ randomization


def _parameterized_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def _randomize(module: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            std = float(p.std()) if p.numel() > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=gen) * (std or 0.1))


def _map_similarity(a: np.ndarray, b: np.ndarray) -> dict:
    a, b = a.ravel(), b.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        rank_abs = spearmanr(np.abs(a), np.abs(b)).statistic
        rank = spearmanr(a, b).statistic
        pearson = np.corrcoef(a, b)[0, 1] if a.std() > 0 and b.std() > 0 else np.nan
    k = max(1, a.size // 10)
    top_a, top_b = set(np.argsort(-np.abs(a))[:k]), set(np.argsort(-np.abs(b))[:k])
    return {"spearman_abs": float(rank_abs), "spearman": float(rank), "pearson": float(pearson),
            "top10_overlap": len(top_a & top_b) / k}


def randomization_check(model: nn.Module, attr: Attribution, *, cascade: bool = False,
                        background=None, seed: int = 0, **options) -> pd.DataFrame:
    """Model-parameter randomization test: how similar are maps of a randomized model?

    The model is deep-copied; with ``cascade`` the conv/linear layers are re-initialized one
    at a time from the output down (one map per stage), otherwise all at once. Weights are
    redrawn as Gaussian noise with each tensor's own standard deviation.

    Parameters
    ----------
    model : the explained model.
    attr : the original Attribution (its inputs, method and output are reused).
    background, options : passed to :class:`Attributor` (as for the original).

    Returns
    -------
    pd.DataFrame: clip, method, output, stage (layer randomized last; "all" without cascade),
    n_randomized, spearman_abs, spearman, pearson, top10_overlap (share of the top 10 % bins
    by |attribution| kept). Values near 1 mean the explanation ignores the weights.
    """
    rand = copy.deepcopy(model).eval()
    layers = _parameterized_layers(rand)[::-1]
    gen = torch.Generator().manual_seed(seed)
    output = f"{attr.output_kind}:{attr.output}" if hasattr(model, "output_names") else None
    stages = [(name, [m]) for name, m in layers] if cascade else [("all", [m for _, m in layers])]
    options.setdefault("check_additivity", False)
    rows, done = [], 0
    for stage, modules in stages:
        for m in modules:
            _randomize(m, gen)
        done += len(modules)
        new = Attributor(rand, attr.method, output=output, background=background,
                         **options).attribute(attr.inputs, clips=attr.clips)
        for i, clip in enumerate(attr.clips):
            rows.append({"clip": clip, "method": attr.method, "output": attr.output,
                         "stage": stage, "n_randomized": done,
                         **_map_similarity(attr.maps[i], new.maps[i])})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------ events


def event_share(attr: Attribution, box, *, positive: bool = True) -> pd.DataFrame:
    """Share of attribution inside a known event box, against the box's share of the input.

    Parameters
    ----------
    box : (band_start, band_stop, frame_start, frame_stop), half-open index ranges, one for
        all clips or one per clip (a list).
    positive : use positive attribution only (else absolute values).

    Returns
    -------
    pd.DataFrame: clip, method, output, share (attribution inside / total), area_share (box
    bins / all bins), ratio = share / area_share (1 = no better than uniform).
    """
    boxes = box if isinstance(box, list) else [box] * len(attr.clips)
    rows = []
    for i, clip in enumerate(attr.clips):
        m = attr.maps[i]
        w = np.clip(m, 0, None) if positive else np.abs(m)
        b0, b1, f0, f1 = (int(v) for v in boxes[i])
        inside = float(w[b0:b1, f0:f1].sum())
        total = float(w.sum())
        area = (b1 - b0) * (f1 - f0) / m.size
        share = inside / total if total > 0 else np.nan
        rows.append({"clip": clip, "method": attr.method, "output": attr.output, "share": share,
                     "area_share": area, "ratio": share / area if area > 0 else np.nan})
    return pd.DataFrame(rows)


def completeness(metrics: pd.DataFrame, *, bottleneck: str = "bottleneck",
                 blackbox: str = "blackbox", metric: str = "r") -> pd.DataFrame:
    """The bottleneck's accuracy over the black box's, per target.

    Parameters
    ----------
    metrics : tidy table with columns model (labels of the two systems), name (target) and
        the ``metric`` column (e.g. r or r2; several rows per model and name are averaged,
        e.g. over seeds); only rows with ``kind == "target"`` are used if there is a kind.

    Returns
    -------
    pd.DataFrame: name, <metric>_bottleneck, <metric>_blackbox, completeness (ratio), plus
    a final "mean" row.
    """
    m = metrics
    if "kind" in m:
        m = m[m["kind"] == "target"]
    wide = m.groupby(["name", "model"])[metric].mean().unstack("model")
    if bottleneck not in wide or blackbox not in wide:
        raise ArgumentError(f"metrics need rows for models '{bottleneck}' and '{blackbox}', have "
                         f"{list(wide.columns)}")
    out = pd.DataFrame({f"{metric}_bottleneck": wide[bottleneck],
                        f"{metric}_blackbox": wide[blackbox]})
    out["completeness"] = out[f"{metric}_bottleneck"] / out[f"{metric}_blackbox"]
    out = out.reset_index()
    mean = {"name": "mean", **{c: out[c].mean() for c in out.columns[1:3]}}
    mean["completeness"] = mean[f"{metric}_bottleneck"] / mean[f"{metric}_blackbox"]
    return pd.concat([out, pd.DataFrame([mean])], ignore_index=True)
