"""One clip's concept contributions over time, under its spectrogram (the table of
:func:`midlevel.explain.timeline.contributions_over_time`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.plots.common import (
    checked_targets, clip_rows, concept_colors, contribution_units, literal_text, short_label,
)


@literal_text
def timeline_plot(spectrogram, table: pd.DataFrame, *, fps: float, targets=None,
                  clip=None, band_frequencies=None, change_time: float | None = None,
                  show_concepts: bool = True, fig=None):
    """Contributions over time, aligned under the clip's spectrogram (a last window crowded
    onto the one before it is not drawn: :func:`drawn_windows`).

    Parameters
    ----------
    spectrogram : array [shape=(n_bands, n_frames)] of the clip drawn.
    table : timeline contributions (``contributions_over_time``), with ``time``.
    fps : frames per second of ``spectrogram``.
    targets : targets to draw, a panel each (default all): output units of the table
        (ExplainError for one it lacks).
    clip : the clip to draw, the one ``spectrogram`` shows (default: the table's only clip;
        a table of several clips, as ``timeline.csv``, needs it: ExplainError naming them).
    band_frequencies : Hz per band, for the y ticks (optional).
    change_time : draw a dashed line at this time (e.g. a known concept change).
    show_concepts : add a panel of the concept values over time.

    A curve of a single window (a clip no longer than the window) is drawn as a dot; NaN
    values leave a gap. An empty table is an ExplainError.

    Returns
    -------
    matplotlib Figure (axes: spectrogram, [concepts], one per target; shared time axis).
    """
    import matplotlib.pyplot as plt
    spec = np.asarray(spectrogram)
    table, clip = clip_rows(table, clip, "timeline", several="refuse")
    names = checked_targets(table, targets, "timeline")
    concepts = list(dict.fromkeys(table["concept"]))
    colors = concept_colors(concepts)
    table = drawn_windows(table)
    n_panels = 1 + int(show_concepts) + len(names)
    if fig is None:
        fig = plt.figure(figsize=(9, 2.2 + 1.5 * (n_panels - 1)))
    axes = fig.subplots(n_panels, 1, sharex=True, squeeze=False)[:, 0]
    duration = spec.shape[1] / fps
    # frame k is centred at k / fps and band i at tick i: each cell is drawn around its centre
    # (half a frame, 16 ms at 31.25 fps, after the curves and half a band above its tick
    # before)
    axes[0].imshow(spec, origin="lower", aspect="auto", cmap="magma",
                   extent=(-0.5 / fps, duration - 0.5 / fps, -0.5, spec.shape[0] - 0.5))
    if band_frequencies is not None:
        bf = np.asarray(band_frequencies)
        ticks = [i for i in np.linspace(0, len(bf) - 1, 5).astype(int)]
        axes[0].set_yticks(ticks, [f"{bf[i]:.0f}" for i in ticks])
        axes[0].set_ylabel("Hz")
    else:
        axes[0].set_ylabel("band (index)")
    axes[0].set_title(f"{short_label(clip) if clip is not None else ''}: contributions over "
                      f"time (window centres)", fontsize=9)
    panel = 1
    if show_concepts:
        first = table[table["target"] == names[0]]
        for c in concepts:
            _curve(axes[panel], first[first["concept"] == c], "concept_value", colors[c], c)
        binary = "concept_kind" in first and (first["concept_kind"] == "binary").any()
        axes[panel].set_ylabel("concept value\n(rating" + ("; tags: p)" if binary else ")"),
                               fontsize=8)
        axes[panel].legend(fontsize=6, ncol=min(4, len(concepts)), loc="upper left",
                           bbox_to_anchor=(1.0, 1.0))
        panel += 1
    for target in names:
        ax = axes[panel]
        r = table[table["target"] == target]
        for c in concepts:
            _curve(ax, r[r["concept"] == c], "contribution", colors[c],
                   c if not show_concepts else None)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel(f"{target}\n({contribution_units(r)})", fontsize=8)
        panel += 1
    if not show_concepts and names:
        axes[1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if change_time is not None:
        for ax in axes:
            ax.axvline(change_time, color="white" if ax is axes[0] else "black", ls="--", lw=1)
    axes[-1].set_xlabel("time (s)")
    axes[-1].set_xlim(0, duration)
    fig.tight_layout()
    return fig


def _curve(ax, rows: pd.DataFrame, column: str, color, label) -> None:
    """One concept's ``column`` over time; a dot where it has a single window (a line through
    one point draws nothing, which would read as no contribution)."""
    rows = rows.sort_values("time")
    ax.plot(rows["time"], rows[column], color=color, lw=1.2, label=label,
            marker="o" if len(rows) == 1 else None, ms=5)


def drawn_windows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a timeline table drawn as curves: all but a last window crowded onto the
    one before it. The last window ends at the clip's end, so it can start a fraction of a hop
    after the previous one; drawn, its point sits just beside that one's and the curve ends in
    a near-vertical hook. It is left out of the figure (not of the table) when its centre is
    within half a hop (the median spacing of the other centres) of the previous one."""
    times = np.sort(table["time"].unique())
    if len(times) < 3:
        return table
    hop = float(np.median(np.diff(times[:-1])))
    if times[-1] - times[-2] < hop / 2:
        return table[table["time"] != times[-1]]
    return table
