"""Plots of concept explanations, drawn from the tidy tables of :mod:`midlevel.explain`.

Every function takes ``ax=None`` or ``fig=None`` and returns the Axes or Figure it drew;
``plt.show()`` is never called. Concept names come from the tables (no fixed concept set).
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit
import pandas as pd

from midlevel.plots.common import (  # noqa: F401 (re-exported: concept_colors, the units)
    CONTRIBUTION_UNITS, checked_targets, clip_rows, concept_colors, contribution_units,
    literal_text, not_empty, number, short_label,
)
from midlevel.plots.timeline import drawn_windows, timeline_plot  # noqa: F401 (re-exported)

POSITIVE, NEGATIVE = "#c0392b", "#2e6fb5"


def _new_ax(ax, figsize):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt
    # laid out when drawn: a figure saved without bbox_inches="tight" keeps its labels
    return plt.figure(figsize=figsize, layout="constrained").add_subplot(111)


def star_key(table: pd.DataFrame, pcol: str, alpha: float) -> str:
    """What a coefficient heatmap's stars mean: ``stars: p_adjusted, holm < 0.05, 0.01,
    0.001`` (the thresholds follow the table's alpha, the correction its ``attrs``)."""
    corr = table.attrs.get("correction", "none")
    return (f"stars: {pcol}" + (f", {corr}" if corr != "none" else "")
            + f" < {alpha:g}, {alpha / 5:g}, {alpha / 50:g}")


def _stars(p: float, alpha: float = 0.05) -> str:
    """``*`` p < alpha (the table's ``significant``), ``**`` < alpha / 5, ``***`` < alpha / 50:
    the usual .05 / .01 / .001 at alpha 0.05."""
    if not np.isfinite(p):
        return ""
    return ("***" if p < alpha / 50 else "**" if p < alpha / 5 else "*" if p < alpha
            else "")


@literal_text
def coefficient_heatmap(table: pd.DataFrame, *, value: str = "std_weight", ax=None,
                        annotate: bool = True, title: str | None = None,
                        stars: bool = True, mark_flags: bool = False,
                        limit: float | None = None):
    """Concepts x targets heatmap of a coefficient table.

    Parameters
    ----------
    table : a coefficient table (one method).
    value : column to colour by (``std_weight``, ``weight``, ``model_std_weight``...).
    annotate : write the value into each cell; with ``stars``, also ``*`` p < alpha, ``**``
        < alpha / 5, ``***`` < alpha / 50 on ``p_adjusted``, alpha the table's
        ``attrs["alpha"]`` (default 0.05: .05, .01, .001), so a star is where ``significant``
        is True (cells without are lighter). Use
        ``stars=False`` for the model's own weights, which are exact and have no p-value.
    mark_flags : outline and mark with ``!`` the cells whose ``flag`` is set.
    limit : the colour scale's ends, ``-limit`` and ``+limit`` (default: the largest
        ``|value|``); panels that are read side by side share one.

    Cells without a value (the data give no estimate, ``data_note``) are hatched grey and
    say "no estimate".

    Returns
    -------
    matplotlib Axes
    """
    from matplotlib.patches import Rectangle
    not_empty(table, "coefficient heatmap")
    concepts = list(dict.fromkeys(table["concept"]))
    targets = list(dict.fromkeys(table["target"]))

    def grid_of(column, fill=np.nan):
        if column not in table:
            return pd.DataFrame(fill, index=concepts, columns=targets)
        return table.pivot_table(index="concept", columns="target", values=column,
                                 aggfunc="first").reindex(index=concepts, columns=targets)

    grid = grid_of(value)
    pcol = "p_adjusted" if "p_adjusted" in table else "p_value"
    pvals = grid_of(pcol)
    alpha = float(table.attrs.get("alpha", 0.05))
    flags = (table.assign(_f=(table["flag"] != "").astype(float))
             .pivot_table(index="concept", columns="target", values="_f", aggfunc="first")
             .reindex(index=concepts, columns=targets).fillna(0.0)
             if mark_flags and "flag" in table else None)
    # a floor for the title, the rotated target names and the colour bar (one concept, one
    # target: 1.9 x 1.7 in cut them off)
    ax = _new_ax(ax, (max(3.5, 1.0 + 0.9 * len(targets)), max(3.0, 1.2 + 0.5 * len(concepts))))
    lim = limit or (float(np.nanmax(np.abs(grid.to_numpy(float))))
                    if grid.notna().any().any() else 1.0)
    im = ax.imshow(grid.to_numpy(float), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(targets)), targets, rotation=45, ha="right")
    ax.set_yticks(range(len(concepts)), concepts)
    if annotate:
        for i in range(len(concepts)):
            for j in range(len(targets)):
                v, p = grid.iat[i, j], pvals.iat[i, j]
                if not np.isfinite(v):
                    continue  # drawn by _mark_missing
                mark = _stars(p, alpha) if stars else ""
                flagged = flags is not None and flags.iat[i, j] > 0
                strong = abs(v) > 0.6 * lim
                ax.text(j, i, f"{v:.2f}{mark}{'!' if flagged else ''}", ha="center",
                        va="center", fontsize=7, color="white" if strong else "black",
                        alpha=1.0 if (mark or not stars or flagged) else 0.55,
                        fontweight="bold" if flagged else "normal")
                if flagged:
                    ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False,
                                           lw=1.6, ec="black"))
    _mark_missing(ax, grid.to_numpy(float))
    label = {"std_weight": "standardized weight", "weight": "weight",
             "model_std_weight": "standardized weight"}.get(value, value)
    ax.figure.colorbar(im, ax=ax, label=label, shrink=0.8)
    method = _fit_method(table)
    title = title or (f"{label} ({method + '; ' if method else ''}"
                      f"{star_key(table, pcol, alpha)})")
    if ax.figure.get_figwidth() < 5:  # a narrow heatmap: its title wrapped, not cut off
        import textwrap
        title = "\n".join(textwrap.fill(line, int(11 * ax.figure.get_figwidth()))
                          for line in title.split("\n"))
    ax.set_title(title, fontsize=8)
    return ax


def _mark_missing(ax, grid: np.ndarray) -> None:
    """Hatch the cells of ``grid`` ``(n_concepts, n_targets)`` that hold no value (NaN) and
    write "no estimate" in them, so that they do not read as blank (or as zero)."""
    from matplotlib.patches import Rectangle
    for i, j in zip(*np.nonzero(~np.isfinite(grid))):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, facecolor="#e6e6e6",
                               edgecolor="#9a9a9a", hatch="///", lw=0.0))
        ax.text(j, i, "no\nestimate", ha="center", va="center", fontsize=6, color="#555555")


def _fit_method(table: pd.DataFrame) -> str:
    """The data's estimator in words: the fit's description (``attrs["method"]``), else the
    rows' ``method`` labels."""
    if table.attrs.get("method"):
        return str(table.attrs["method"])
    return ", ".join(dict.fromkeys(table["method"].astype(str))) if "method" in table else ""


@literal_text
def coefficient_figure(table: pd.DataFrame, *, fig=None):
    """Both questions of a run's coefficient table side by side (into ``fig``, a new figure
    if None).

    Left, *what the model does*: the head's standardized weights (exact; flagged cells, where
    the model departs from the data, outlined and marked ``!``). Right, *what the data show*:
    the data's standardized estimates with significance stars.

    Returns
    -------
    matplotlib Figure
    """
    import textwrap

    import matplotlib.pyplot as plt
    n_t = table["target"].nunique()
    n_c = table["concept"].nunique()
    not_empty(table, "coefficient figure")
    if fig is None:
        fig = plt.figure(figsize=(max(6.0, 2.0 + 1.8 * n_t), max(3.6, 1.8 + 0.5 * n_c)))
    left, right = fig.subplots(1, 2)
    mode = table["mode"].iloc[0] if "mode" in table and len(table) else ""
    both = np.abs(table[["model_std_weight", "std_weight"]].to_numpy(float))
    limit = float(np.nanmax(both)) if np.isfinite(both).any() else None  # one colour scale
    coefficient_heatmap(table, value="model_std_weight", ax=left, stars=False, mark_flags=True,
                        limit=limit,
                        title=f"what the model does: the {mode} head's weights\n(exact; "
                              f"! = departs from the data)")
    method = _fit_method(table)
    pcol = "p_adjusted" if "p_adjusted" in table else "p_value"
    key = star_key(table, pcol, float(table.attrs.get("alpha", 0.05)))  # (audit 21c: lost)
    coefficient_heatmap(table, value="std_weight", ax=right, limit=limit,
                        title="what the data show\n" + "\n".join(textwrap.wrap(method, 60))
                              + f"\n({key})")
    fig.tight_layout()
    return fig


@literal_text
def contribution_bars(table: pd.DataFrame, clip: str | None = None, *, targets=None,
                      fig=None, ncols: int | None = None, sort: bool = True):
    """Bar chart of one clip's concept contributions, a panel per target.

    Bars are sorted by contribution and coloured by sign (red up, blue down); each panel's
    title gives baseline -> prediction, the y labels each concept's value against its
    baseline.

    Parameters
    ----------
    table : contributions table (``explain_clips``); ``clip`` picks its rows (default: the
        first clip).
    targets : targets (output units) to draw, default all in the table.

    An unknown clip or target, or an empty table, is an ExplainError naming those the table
    holds. A NaN contribution has no bar, "NaN" is written in its place, and the x range
    follows the other bars.

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt
    rows, clip = clip_rows(table, clip, "contribution bars")
    names = checked_targets(rows, targets, "contribution bars")
    n = len(names)
    ncols = ncols or min(4, n)
    nrows = int(np.ceil(n / ncols))
    n_c = rows["concept"].nunique()
    if fig is None:
        # one panel of 4.2 in ran its x tick labels together: 5.5 in at least
        fig = plt.figure(figsize=(max(5.5, 4.2 * ncols), (0.9 + 0.28 * n_c) * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, target in zip(axes.ravel(), names):
        r = rows[rows["target"] == target]
        if sort:
            r = r.sort_values("contribution")
        vals = r["contribution"].to_numpy()
        ax.barh(range(len(r)), vals, color=[POSITIVE if v > 0 else NEGATIVE for v in vals])
        kinds = r["concept_kind"] if "concept_kind" in r else ["regression"] * len(r)
        ax.set_yticks(range(len(r)), [
            f"{c} ({'p ' if k == 'binary' else ''}{number(v)} vs {number(b)})"
            for c, v, b, k in zip(r["concept"], r["concept_value"], r["concept_baseline"],
                                  kinds)], fontsize=7)
        ax.axvline(0, color="black", lw=0.8)
        base, pred = r["baseline_prediction"].iloc[0], r["prediction"].iloc[0]
        kind = r["output_kind"].iloc[0] if "output_kind" in r else "regression"
        if kind == "binary":
            # a tag: contributions add up in log-odds; the title gives the probabilities
            pb, pp = expit(base), expit(pred)
            ax.set_title(f"{target}: P {pb:.2f} \u2192 {pp:.2f}", fontsize=9)
        elif kind == "logit":
            # a class: its logit, and its probability (audit 23c: a panel gave logits only)
            p = (f" (P {r['baseline_probability'].iloc[0]:.2f} \u2192 "
                 f"{r['probability'].iloc[0]:.2f})") if "probability" in r else ""
            ax.set_title(f"{target}: logit {number(base)} \u2192 {number(pred)}{p}",
                         fontsize=9)
        else:
            ax.set_title(f"{target}: {number(base)} \u2192 {number(pred)}", fontsize=9)
        ax.set_xlabel(f"contribution ({contribution_units(r)})", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        known = np.isfinite(vals)
        for i in np.flatnonzero(~known):  # no bar: say so, not a contribution of 0
            ax.text(0, i, " NaN", va="center", ha="left", fontsize=7, color="grey")
        lim = max(1e-6, float(np.abs(vals[known]).max()) if known.any() else 0.0) * 1.15
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-0.6, len(r) - 0.4)  # every row, a NaN one too
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{short_label(clip)}: concept contributions\n(baseline \u2192 prediction; "
                 f"concept value vs baseline)" if clip is not None else
                 "concept contributions", fontsize=10)
    fig.tight_layout()
    return fig


@literal_text
def contribution_distribution(dataset: pd.DataFrame, target: str, *,
                              clip_table: pd.DataFrame | None = None, clip: str | None = None,
                              ax=None):
    """Distribution of each concept's contribution to ``target`` over a dataset, one clip
    marked (the paper's dataset view).

    Parameters
    ----------
    dataset : contributions table of many clips.
    target : output unit to show.
    clip_table : contributions of the clip(s) to mark (default: ``dataset`` itself).
    clip : the clip to mark (default: the first clip of ``clip_table``, if given).

    An unknown target or clip, or an empty table, is an ExplainError naming those the table
    holds.

    Returns
    -------
    matplotlib Axes
    """
    checked_targets(dataset, [target], "contribution distribution")
    rows = dataset[dataset["target"] == target]
    concepts = list(dict.fromkeys(rows["concept"]))
    ax = _new_ax(ax, (1.2 + 0.8 * len(concepts), 3.6))
    data = [rows.loc[rows["concept"] == c, "contribution"].to_numpy(float) for c in concepts]
    missing = [int(np.isnan(d).sum()) for d in data]
    data = [d[~np.isnan(d)] for d in data]  # one NaN emptied the whole box (audit 21c)
    ax.boxplot(data, positions=range(len(concepts)), widths=0.6, showfliers=False)
    for i, n in enumerate(missing):
        if n:
            ax.annotate(f"{n} NaN", (i, 0), xycoords=("data", "axes fraction"),
                        xytext=(0, 2), textcoords="offset points", ha="center", fontsize=6)
    colors = concept_colors(concepts)
    rng = np.random.default_rng(0)
    for i, (c, d) in enumerate(zip(concepts, data)):
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(d)), d, s=4, alpha=0.35, color=colors[c])
    marked = clip_table if clip_table is not None else (dataset if clip is not None else None)
    if marked is not None:
        m, clip = clip_rows(marked, clip, "contribution distribution (the marked clip)")
        checked_targets(m, [target], f"contribution distribution (clip {clip})")
        m = m[m["target"] == target]
        xs = [concepts.index(c) for c in m["concept"] if c in concepts]
        ax.scatter(xs, m.loc[m["concept"].isin(concepts), "contribution"], marker="D", s=40,
                   color="black", zorder=5, label=short_label(clip))
        ax.legend(fontsize=7, loc="best")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xticks(range(len(concepts)), concepts, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel(f"contribution to {target} ({contribution_units(rows)})")
    ax.set_title(f"{target}: contributions over {rows['clip'].nunique() if 'clip' in rows else ''}"
                 f" clips" + (f", {clip} marked" if clip is not None else ""), fontsize=9)
    return ax


@literal_text
def intervention_plot(curve: pd.DataFrame, *, target: str = "mean", ax=None,
                      units: str = "rating points"):
    """Task error against the number of concepts replaced by true ratings.

    ``curve``: table of :func:`midlevel.explain.interventions.intervention_curve` (random
    and/or greedy). Random orders are drawn as their mean with a 10-90 % band. ``target``:
    one of the curve's targets, drawn as its RMSE, or "mean": the mean over the targets of
    their relative RMSE (RMSE / the sd of the true values; a table written before it had
    that column: its mean RMSE); ``units``: a target's RMSE units, for the y label (a tag's
    error is a root Brier score, in probability).

    Returns
    -------
    matplotlib Axes
    """
    checked_targets(curve, [target], "intervention plot")
    ax = _new_ax(ax, (5, 3.5))
    rows = curve[curve["target"] == target]
    relative = target == "mean" and "relative_rmse" in rows
    if relative:
        rows = rows.assign(rmse=rows["relative_rmse"])
    rand = rows[rows["order"] == "random"]
    if len(rand):
        g = rand.groupby("n_replaced")["rmse"]
        x = g.mean().index.to_numpy()
        ax.plot(x, g.mean(), "o-", color="grey", label="random order (mean)")
        ax.fill_between(x, g.quantile(0.1), g.quantile(0.9), color="grey", alpha=0.25)
    greedy = rows[rows["order"] == "greedy"].sort_values("n_replaced")
    if len(greedy):
        ax.plot(greedy["n_replaced"], greedy["rmse"], "s-", color=POSITIVE, label="greedy order")
        for x, y, c in zip(greedy["n_replaced"], greedy["rmse"], greedy["concept"]):
            if isinstance(c, str) and c:  # (the first row's empty name reads back as NaN)
                ax.annotate(c, (x, y), fontsize=6, rotation=30, xytext=(2, 4),
                            textcoords="offset points")
    ax.set_xlabel("concepts replaced by true ratings")
    if relative:
        ax.set_ylabel("mean over the targets of\nRMSE / sd of the ratings (1: their mean)",
                      fontsize=8)
    else:
        what = "mean RMSE over the targets" if target == "mean" else f"RMSE of {target}"
        ax.set_ylabel(f"{what} ({units})")
    ax.set_title("test-time intervention", fontsize=9)
    ax.legend(fontsize=7)
    return ax
