"""Plots of spectrogram attributions (from :class:`midlevel.explain.attribution.Attribution`
or plain arrays) and of faithfulness curves.

Every function takes ``ax=None`` (a new figure if None), draws into it and returns what it drew;
nothing here calls ``plt.show()``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.plots.common import literal_text

__all__ = ["attribution_map", "time_curve", "frequency_profile", "attribution_figure",
           "perturbation_plot", "sanity_plot", "spectrogram_plot"]


def _ax(ax, figsize=(7, 3.5)):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax


def _map_and_axes(attr, clip, fps, band_frequencies):
    """(values (n_bands, n_frames), seconds per frame, Hz per band or None, title)."""
    if hasattr(attr, "maps"):
        i = attr.clips.index(clip) if isinstance(clip, str) else int(clip)
        values = attr.maps[i]
        fps = fps or attr.fps
        hz = band_frequencies if band_frequencies is not None else attr.band_frequencies
        title = f"{attr.clips[i]}: {attr.method} for {attr.output}"
    else:
        values = np.asarray(attr)
        values = values.reshape(values.shape[-2:])
        hz, title = band_frequencies, None
    secs = np.arange(values.shape[1]) / fps if fps else np.arange(values.shape[1], dtype=float)
    if hz is not None and len(hz) != values.shape[0]:
        hz = None
    return values, secs, (None if hz is None else np.asarray(hz, float)), title, bool(fps)


_UNITS = {"rating": "rating points", "logit": "logit", "standardized": "standard deviations",
          "model": "output units"}


def attribution_label(attr) -> str:
    """``"attribution (rating points)"``: the axis label of an attribution, in its ``units``
    (an Attribution's; a plain array has none). Grad-CAM's values are relative; occlusion's
    are each bin's patch's removal effect (audit 21c: both were labelled as shares of the
    output)."""
    units = getattr(attr, "units", None)
    if units == "relative":
        return "attribution (relative, not in output units)"
    if getattr(attr, "method", None) == "occlusion" and units:
        return f"its patch's removal effect ({_UNITS.get(units, units)})"
    return f"attribution ({_UNITS.get(units, units)})" if units else "attribution"


def sum_label(attr, over: str) -> str:
    """The axis label of an attribution's sums over ``over`` ("bands", "frames"): its
    :func:`attribution_label` where the map is additive, else says that the sums are not
    (occlusion counts a patch's effect once per bin it covers; Grad-CAM is relative)."""
    if getattr(attr, "additive", True):
        return attribution_label(attr)
    return f"sum over {over} (not additive)"


def _few_ticks(axis) -> None:
    """Three ticks at most, labelled with two significant digits (``-0.006``, ``0``), on a
    narrow axis, so that labels such as ``-0.0025`` and ``0.0000`` do not run into each
    other (nor into an offset text)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator
    axis.set_major_locator(MaxNLocator(nbins=2))
    axis.set_major_formatter(FuncFormatter(
        lambda v, _: "0" if not v else f"{v:.2g}" if abs(v) < 100 else f"{v:.0f}"))
    axis.set_tick_params(labelsize=7)


def _edges(centres: np.ndarray, log: bool) -> np.ndarray:
    c = np.log(centres) if log else centres
    if len(c) == 1:
        e = np.array([c[0] - 0.5, c[0] + 0.5])
    else:
        mid = (c[1:] + c[:-1]) / 2
        e = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _mesh(ax, values, secs, hz, **kwargs):
    t_edges = _edges(secs, False)
    if hz is not None and np.all(hz > 0):
        f_edges = _edges(hz, True)
        mesh = ax.pcolormesh(t_edges, f_edges, values, shading="flat", **kwargs)
        ax.set_yscale("log")
        ax.set_ylabel("frequency (Hz)")
    else:
        mesh = ax.pcolormesh(t_edges, np.arange(values.shape[0] + 1) - 0.5, values,
                             shading="flat", **kwargs)
        ax.set_ylabel("band")
    return mesh


@literal_text
def attribution_map(attr, clip=0, *, fps: float | None = None, band_frequencies=None,
                    ax=None, cmap: str = "RdBu_r", vmax: float | None = None,
                    colorbar: bool = True, spectrogram: bool = False):
    """Attribution over the spectrogram, diverging colours centred at zero.

    Parameters
    ----------
    attr : Attribution, or an array ``(n_bands, n_frames)`` (or ``(1, 1, n_bands, n_frames)``).
    clip : index or name of the clip in ``attr``.
    fps, band_frequencies : axes in seconds and Hz (default: from ``attr``).
    vmax : symmetric colour limit (default: the 99.5th percentile of |attribution|).
    spectrogram : overlay the input's contours (Attribution only).

    Returns
    -------
    matplotlib.collections.QuadMesh
    """
    from matplotlib.colors import TwoSlopeNorm
    ax = _ax(ax)
    values, secs, hz, title, has_fps = _map_and_axes(attr, clip, fps, band_frequencies)
    # a sparse map's 99.5th percentile is 0: its largest value then sets the scale
    vmax = vmax or float(np.percentile(np.abs(values), 99.5)) or \
        float(np.nanmax(np.abs(values), initial=0.0)) or 1e-12
    mesh = _mesh(ax, values, secs, hz, cmap=cmap,
                 norm=TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax), rasterized=True)
    if spectrogram and hasattr(attr, "inputs"):
        i = attr.clips.index(clip) if isinstance(clip, str) else int(clip)
        y = hz if hz is not None and np.all(hz > 0) else np.arange(values.shape[0])
        ax.contour(secs, y, attr.inputs[i, 0], levels=4, colors="k", linewidths=0.3, alpha=0.5)
    ax.set_xlabel("time (s)" if has_fps else "frame")
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=attribution_label(attr), pad=0.01)
    return mesh


@literal_text
def spectrogram_plot(spec, *, fps: float | None = None, band_frequencies=None, ax=None,
                     cmap: str = "magma"):
    """The input spectrogram ``(n_bands, n_frames)`` with the same axes as the maps."""
    ax = _ax(ax)
    values, secs, hz, _, has_fps = _map_and_axes(np.asarray(spec), 0, fps, band_frequencies)
    mesh = _mesh(ax, values, secs, hz, cmap=cmap, rasterized=True)
    ax.set_xlabel("time (s)" if has_fps else "frame")
    return mesh


@literal_text
def time_curve(attr, clip=0, *, fps: float | None = None, ax=None, split: bool = True,
               label: str | None = None):
    """Attribution summed over bands, per frame (net, and positive / negative parts).

    Returns
    -------
    list of matplotlib Line2D
    """
    ax = _ax(ax, (7, 2.5))
    values, secs, _, title, has_fps = _map_and_axes(attr, clip, fps, None)
    lines = ax.plot(secs, values.sum(0), color="k", lw=1.2, label=label or "net")
    if split:
        lines += ax.plot(secs, np.clip(values, 0, None).sum(0), color="tab:red", lw=0.8,
                         label="positive")
        lines += ax.plot(secs, np.clip(values, None, 0).sum(0), color="tab:blue", lw=0.8,
                         label="negative")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlabel("time (s)" if has_fps else "frame")
    ax.set_ylabel(sum_label(attr, "bands"))
    ax.legend(fontsize=7, loc="upper right")
    return lines


@literal_text
def frequency_profile(attr, clip=0, *, band_frequencies=None, ax=None, split: bool = True,
                      label: str | None = None):
    """Attribution summed over frames, per band (x: attribution, y: frequency in Hz).

    Returns
    -------
    list of matplotlib Line2D
    """
    ax = _ax(ax, (3, 4))
    values, _, hz, _, _ = _map_and_axes(attr, clip, None, band_frequencies)
    y = hz if hz is not None and np.all(hz > 0) else np.arange(values.shape[0])
    lines = ax.plot(values.sum(1), y, color="k", lw=1.2, label=label or "net")
    if split:
        lines += ax.plot(np.clip(values, 0, None).sum(1), y, color="tab:red", lw=0.8,
                         label="positive")
        lines += ax.plot(np.clip(values, None, 0).sum(1), y, color="tab:blue", lw=0.8,
                         label="negative")
    if hz is not None and np.all(hz > 0):
        ax.set_yscale("log")
        ax.set_ylabel("frequency (Hz)")
    else:
        ax.set_ylabel("band")
    ax.axvline(0, color="0.6", lw=0.5)
    ax.set_xlabel(sum_label(attr, "frames"))
    _few_ticks(ax.xaxis)
    ax.legend(fontsize=7, loc="lower right")
    return lines


@literal_text
def attribution_figure(attr, clip=0, *, fig=None, vmax=None):
    """Map, time curve and frequency profile of one clip in one figure, with a colour bar in
    the attribution's units.

    Returns
    -------
    matplotlib Figure (``fig.axes``: the map, the frequency profile, the time curve, the
    colour bar).
    """
    import matplotlib.pyplot as plt
    fig = fig or plt.figure(figsize=(9, 5), constrained_layout=True)
    gs = fig.add_gridspec(2, 2, width_ratios=[4, 1], height_ratios=[3, 1.2])
    ax_map = fig.add_subplot(gs[0, 0])
    ax_freq = fig.add_subplot(gs[0, 1], sharey=ax_map)
    ax_time = fig.add_subplot(gs[1, 0], sharex=ax_map)
    mesh = attribution_map(attr, clip, ax=ax_map, vmax=vmax, colorbar=False)
    frequency_profile(attr, clip, ax=ax_freq, split=False)
    time_curve(attr, clip, ax=ax_time)
    fig.colorbar(mesh, ax=[ax_map, ax_freq], label=attribution_label(attr), pad=0.01,
                 shrink=0.9)
    ax_freq.set_ylabel("")
    ax_map.set_xlabel("")
    return fig


@literal_text
def perturbation_plot(curves: pd.DataFrame, *, mode: str = "deletion", ax=None,
                      units: str | None = None):
    """Mean deletion (or insertion) curves of the harness, in output units: MoRF solid and
    LeRF dotted per method, the random orders dashed grey.

    Parameters
    ----------
    curves : :func:`midlevel.explain.harness.perturbation_curves` (concatenated over methods;
        columns clip, method, mode, order, repeat, fraction, value).
    units : the units of ``value``, for the y label: an Attribution's ``units`` ("rating",
        "logit", "standardized", "model") or any text.

    Returns
    -------
    list of matplotlib Line2D
    """
    ax = _ax(ax, (5, 3.5))
    d = curves[curves["mode"] == mode]
    lines = []
    colors = {}
    for (method, order), g in d.groupby(["method", "order"], sort=False):
        mean = g.groupby("fraction")["value"].mean()
        if order.startswith("random"):
            if not any(line.get_label() == "random" for line in lines):
                lines += ax.plot(mean.index, d[d["order"].str.startswith("random")].groupby(
                    "fraction")["value"].mean().values, color="0.5", ls="--", label="random")
            continue
        style = {"ls": "-" if order == "morf" else ":", "label": f"{method} {order.upper()}"}
        if method in colors:
            style["color"] = colors[method]
        lines += ax.plot(mean.index, mean.values, **style)
        colors[method] = lines[-1].get_color()
    ax.set_xlabel(f"fraction of the input {'removed' if mode == 'deletion' else 'inserted'}")
    ax.set_ylabel(f"model output ({_UNITS.get(units, units)})" if units else "model output")
    ax.set_title(f"{mode} curves", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return lines


@literal_text
def sanity_plot(cascade: pd.DataFrame, floors: pd.DataFrame, *, similarity: str = "spearman_abs",
                fig=None):
    """Cascading randomization: per method, the mean similarity of the maps to the trained
    ones after each stage (top layer down), and the two floors (trained map vs an input-only
    map, independent randomizations against each other) as horizontal lines.

    Parameters
    ----------
    cascade, floors : ``SanityResult.cascade`` and ``.floors`` (concatenated over methods).

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt
    methods = list(dict.fromkeys(cascade["method"]))
    fig = fig or plt.figure(figsize=(3.2 * len(methods), 3.4), constrained_layout=True)
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    low = -0.2
    for ax, method in zip(axes, methods):
        c = cascade[cascade["method"] == method]
        mean = c.groupby("stage", sort=False)[similarity].mean()
        ax.plot(range(len(mean)), mean.values, marker="o", ms=3, label="trained vs randomized")
        fl = floors[(floors["method"] == method) & (floors["similarity"] == similarity)]
        shown = [mean.values]
        for col, style in (("trained_vs_input", "--"), ("random_vs_random", ":")):
            if col in fl:
                ax.axhline(fl[col].mean(), color="0.4", ls=style, lw=1,
                           label=col.replace("_", " "))
                shown.append([fl[col].mean()])
        # stages numbered from the top layer down (their names: the cascade table's 'stage')
        ax.set_xticks(range(len(mean)), [str(k + 1) for k in range(len(mean))], fontsize=6)
        ax.set_xlabel("layers randomized, from the top (stage)", fontsize=7)
        ax.set_title(method, fontsize=8)
        finite = np.concatenate([np.asarray(v, float) for v in shown])
        finite = finite[np.isfinite(finite)]
        low = min(low, float(finite.min()) - 0.05) if len(finite) else low  # never cut off
    for ax in axes:
        ax.set_ylim(low, 1.05)
    axes[0].set_ylabel(similarity.replace("_", " "))
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=6, loc="outside lower center",
               ncol=3)
    return fig
