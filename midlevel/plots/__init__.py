"""Plots built from the package's tidy tables.

Every function takes ``ax=None`` (or ``fig=None``), draws into it (a new figure if None) and
returns what it drew; nothing here calls ``plt.show()``. Concept explanations live in
:mod:`midlevel.plots.concepts` (the view over time in :mod:`midlevel.plots.timeline`,
re-exported there; the rows a plot draws are picked by :mod:`midlevel.plots.common`);
attribution plots in ``midlevel.plots.attribution`` (imported on its own, so this package
works without it).
"""
from midlevel.plots.concepts import (  # noqa: F401
    coefficient_figure, coefficient_heatmap, concept_colors, contribution_bars, contribution_distribution,
    intervention_plot, timeline_plot,
)
