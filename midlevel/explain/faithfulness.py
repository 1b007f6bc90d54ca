"""Faithfulness beside the harness (:mod:`midlevel.explain.harness`): attribution inside a known
deciding event, the completeness of a bottleneck against a black box, and a cross-check of the
harness's deletion curve against quantus, the field's metrics library.

- :func:`box_share` / :func:`event_share`: on data where the deciding event sits in a known
  time-frequency box (:class:`midlevel.testing.events.EventTask`), the share of (positive)
  attribution inside the box, against the box's share of the input;
- :func:`completeness`: the bottleneck's accuracy over the black box's, per target;
- :func:`quantus_deletion_check`: the MoRF deletion curve against quantus ``PixelFlipping``
  with the same reference (a custom perturbation function, since quantus' baselines are a
  constant or a statistic of the image, not a per-bin reference map). quantus is an optional
  dependency (``pip install midlevel[bench]``).

All results are tidy DataFrames.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from midlevel.errors import ArgumentError, AttributionError
from midlevel.explain.harness import as_inputs, as_maps, device_of, perturbation_curves, reference_map
from midlevel.training.metrics import SORTS

__all__ = ["box_share", "event_share", "completeness", "quantus_deletion_check"]


def box_share(maps, box, *, method: str = "method", clips=None,
              positive: bool = True) -> pd.DataFrame:
    """Share of positive (or absolute) attribution inside a known box, against its area share.

    ``box``: (band_start, band_stop, frame_start, frame_stop), half-open, one for all clips or a
    list with one per clip. Returns clip, method, share, area_share, ratio (share / area_share;
    1 = no better than uniform).
    """
    a = as_maps(maps)
    boxes = box if isinstance(box, list) else [box] * len(a)
    clips = list(clips) if clips is not None else [f"clip{i}" for i in range(len(a))]
    rows = []
    for i, m in enumerate(a):
        w = np.clip(m, 0, None) if positive else np.abs(m)
        b0, b1, f0, f1 = (int(v) for v in boxes[i])
        total = float(w.sum())
        area = (b1 - b0) * (f1 - f0) / m.size
        share = float(w[b0:b1, f0:f1].sum()) / total if total > 0 else np.nan
        rows.append({"clip": clips[i], "method": method, "share": share, "area_share": area,
                     "ratio": share / area if area > 0 else np.nan})
    return pd.DataFrame(rows)


def event_share(attr, box, *, positive: bool = True) -> pd.DataFrame:
    """:func:`box_share` of an :class:`~midlevel.explain.attribution.result.Attribution`, with
    its method and output: clip, method, output, share, area_share, ratio."""
    table = box_share(attr.maps, box, method=attr.method, clips=attr.clips, positive=positive)
    table.insert(2, "output", attr.output)
    return table


MIN_REFERENCE = 0.1
"""The black box's accuracy below which a completeness ratio is not given: a ratio over a
chance-level denominator (r 0.015 gave -7.5, r -0.12 gave 4.0) says nothing."""


def completeness(metrics: pd.DataFrame, *, bottleneck: str = "bottleneck",
                 blackbox: str = "blackbox", metric: str = "r",
                 min_reference: float = MIN_REFERENCE,
                 kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """The bottleneck's accuracy over the black box's, per target.

    Parameters
    ----------
    metrics : tidy table with columns model (labels of the two systems), name (target) and
        the ``metric`` column (e.g. r or r2; several rows per model and name are averaged,
        e.g. over seeds); only rows with ``kind == "target"`` are used if there is a kind.
    min_reference : the ratio is given only where the black box's ``metric`` is at least
        this (default 0.1): below it the denominator is chance level, and the ratio's size
        and sign say nothing; ``note`` then says why it is missing.
    kinds : target name -> "regression", "binary" or "class" (as in the spec; a name not
        listed is a rating). A summary row averages one sort of target only, as the rows of
        ``evaluate`` (:data:`midlevel.training.metrics.SORTS`): an r of ratings and a
        point-biserial r of tag probabilities are not one quantity. None: every target is
        taken as one sort.

    Returns
    -------
    pd.DataFrame: name, <metric>_bottleneck, <metric>_blackbox, completeness (ratio, NaN
    where there is none), note (why there is none: a target only one model has, a
    ``metric`` that is not defined, e.g. r of a class target, or a black box below
    ``min_reference``; and, beside a negative ratio, that the bottleneck's ``metric`` has
    the opposite sign of the black box's), n_targets (1 where the row has a ratio); plus
    summary rows: the mean ``metric`` of each model over exactly the targets with a ratio
    (``n_targets`` of them, named in its note), named ``mean`` when the table's targets are
    all of one sort, else ``mean:ratings`` and ``mean:binary`` (one per sort that has a
    target with a ratio; class targets never have one); none when no target has a ratio.
    """
    m = metrics
    if "kind" in m:
        m = m[m["kind"] == "target"]
    wide = m.groupby(["name", "model"])[metric].mean().unstack("model")
    if bottleneck not in wide or blackbox not in wide:
        raise ArgumentError(f"metrics need rows for models '{bottleneck}' and '{blackbox}', have "
                         f"{list(wide.columns)}")
    has = {model: set(m.loc[m["model"] == model, "name"]) for model in (bottleneck, blackbox)}
    out = pd.DataFrame({f"{metric}_bottleneck": wide[bottleneck],
                        f"{metric}_blackbox": wide[blackbox]}).reset_index()
    mine, reference = out[f"{metric}_bottleneck"], out[f"{metric}_blackbox"]
    defined = mine.notna() & (reference >= min_reference)
    out["completeness"] = (mine / reference).where(defined)
    out["note"] = [_completeness_note(name, has, bottleneck, blackbox, metric, b, r,
                                      min_reference)
                   for name, b, r in zip(out["name"], mine, reference)]
    out["n_targets"] = defined.astype(int)
    sorts = [None if kinds is None else SORTS.get(kinds.get(str(n), "regression"), "ratings")
             for n in out["name"]]
    present = list(dict.fromkeys(sorts))
    summaries = []
    for sort in present:
        kept = out[defined & pd.Series([s == sort for s in sorts], index=out.index)]
        if kept.empty:
            continue
        b, r = kept[f"{metric}_bottleneck"].mean(), kept[f"{metric}_blackbox"].mean()
        noun = f"{_SORT_NOUN[sort]} " if sort else ""
        summaries.append({
            "name": "mean" if len(present) == 1 else f"mean:{sort}",
            f"{metric}_bottleneck": b, f"{metric}_blackbox": r, "completeness": b / r,
            "n_targets": len(kept),
            "note": f"over the {len(kept)} {noun}target(s) with a ratio: "
                    f"{', '.join(map(str, kept['name']))}"})
    if summaries:
        out = pd.concat([out, pd.DataFrame(summaries)], ignore_index=True)
    return out


_SORT_NOUN = {"ratings": "rating", "binary": "binary", "classes": "class"}


def _completeness_note(name, has, bottleneck, blackbox, metric, b, r, min_reference) -> str:
    """Why a target has no completeness ratio ("" where it has one)."""
    for model, other in ((bottleneck, blackbox), (blackbox, bottleneck)):
        if name not in has[other]:
            return f"no ratio: only the {model} has the target '{name}'"
    for model, value in ((bottleneck, b), (blackbox, r)):
        if not np.isfinite(value):
            return f"no ratio: the {model}'s {metric} of '{name}' is not defined"
    if r < min_reference:
        return (f"no ratio: the black box's {metric} {r:.3g} is below {min_reference:g} "
                f"(chance level)")
    if b < 0:
        return (f"negative: the bottleneck's {metric} {b:.3g} has the opposite sign of the "
                f"black box's {r:.3g} (its predictions run against the target), not a "
                f"share of the black box's accuracy")
    return ""


def quantus_deletion_check(f: nn.Module, x, maps, reference, *, steps: int = 16,
                           batch_size: int = 64) -> pd.DataFrame:
    """MoRF deletion curve of :func:`perturbation_curves` against quantus ``PixelFlipping``.

    quantus perturbs ``n_bins / steps`` bins per step in ``argsort(-a)`` order and records the
    model's output (``softmax=False``, ``normalise=False``, ``abs=False``); its perturbation
    function is replaced by one that writes the reference's values into the chosen bins. Maps
    should have no ties (the two tie-breaks differ). ``n_bands * n_frames`` must be a multiple
    of ``steps``.

    Returns
    -------
    pd.DataFrame: clip, max_abs_difference (between the two curves at fractions 1/steps ... 1),
    area_harness, area_quantus (trapezoid over those fractions), quantus_version.
    """
    import quantus

    x = as_inputs(x)
    a = as_maps(maps, len(x))
    nb, nf = x.shape[2:]
    n = nb * nf
    if n % steps:
        raise AttributionError(f"{n} bins are not a multiple of steps={steps}")
    ref_flat = reference_map(reference, (nb, nf)).numpy().reshape(-1)

    def to_reference(arr, indices, **kwargs):
        out = arr.copy()
        out[np.arange(len(arr))[:, None], indices] = ref_flat[indices]
        return out

    f.eval()
    metric = quantus.PixelFlipping(features_in_step=n // steps, normalise=False, abs=False,
                                   perturb_func=to_reference, disable_warnings=True,
                                   display_progressbar=False)
    q = np.asarray(metric(model=f, x_batch=x.numpy(), y_batch=np.zeros(len(x), dtype=int),
                          a_batch=a[:, None].astype(np.float32), softmax=False,
                          channel_first=True, device=str(device_of(f)), batch_size=batch_size),
                   dtype=float)
    fr = np.arange(1, steps + 1) / steps
    ours = perturbation_curves(f, x, a, reference, modes=("deletion",), fractions=fr,
                               n_random=5)
    ours = ours[ours["order"] == "morf"]
    rows = []
    for i in range(len(x)):
        mine = ours[ours["clip"] == f"clip{i}"].sort_values("fraction")["value"].to_numpy()
        rows.append({"clip": f"clip{i}", "max_abs_difference": float(np.abs(mine - q[i]).max()),
                     "area_harness": float(np.trapezoid(mine, fr)),
                     "area_quantus": float(np.trapezoid(q[i], fr)),
                     "quantus_version": quantus.__version__})
    return pd.DataFrame(rows)
