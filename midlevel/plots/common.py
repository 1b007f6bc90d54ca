"""What the concept plots share: a colour per concept, and the rows a plot draws, picked from a
tidy explanation table (one clip's, the targets asked for; every unknown name, and an empty
table, is an ExplainError naming what the table holds: an empty panel under a name would read
as a contribution of zero). Every figure is drawn with its text taken literally
(:func:`literal_text`)."""
from __future__ import annotations

import functools

import pandas as pd

from midlevel.errors import ExplainError

CONTRIBUTION_UNITS = {"regression": "rating points", "logit": "logit", "binary": "log-odds"}
"""What a contribution to each ``output_kind`` is in (the axis label of the contribution
plots)."""


def literal_text(draw):
    """Decorate a function that draws a figure so that every text it writes is taken
    literally: clip, concept, target and run names come from users, and a ``$`` in one
    (``"Pay $5 or $10"``) must not switch matplotlib into math mode (a parse error that
    stops the command, or the text between two ``$`` set in italics without them).

    Texts it makes are literal (matplotlib's ``text.parse_math`` off while it draws), and so
    are texts of axes made before the call that it sets (a title), while a caller's own
    texts it does not touch stay as they were. Tick labels that matplotlib writes (a log
    axis's ``$10^{4}$``) read math, those the function gives (concept names on a heatmap's
    axis: ``set_xticks(ticks, labels)``, a fixed, function or category formatter) do not.
    A figure must be saved after the call."""
    @functools.wraps(draw)
    def drawing(*args, **kwargs):
        import matplotlib
        import matplotlib.category
        import matplotlib.ticker
        labelled = (matplotlib.ticker.FixedFormatter, matplotlib.ticker.FuncFormatter,
                    matplotlib.category.StrCategoryFormatter)  # labels the function gives
        given = _figures([kwargs.get("ax"), kwargs.get("fig")])
        before = {id(t): (t.get_text(), t.get_parse_math()) for fig in given
                  for t in _texts(fig)}
        for fig in given:  # literal while it draws (a layout inside it draws them)
            for text in _texts(fig):
                text.set_parse_math(False)
        with matplotlib.rc_context({"text.parse_math": False}):
            result = draw(*args, **kwargs)
        for fig in _figures([result, *given]):
            ticks = {}
            for ax in fig.axes:
                for axis in (ax.xaxis, ax.yaxis):
                    for which, formatter in ((axis.majorTicks, axis.get_major_formatter()),
                                             (axis.minorTicks, axis.get_minor_formatter())):
                        fixed = isinstance(formatter, labelled)
                        for tick in which:
                            ticks[id(tick.label1)] = ticks[id(tick.label2)] = not fixed
                    ticks[id(axis.offsetText)] = True
            for text in _texts(fig):
                was = before.get(id(text))
                if was is not None and was[0] == text.get_text():  # the caller's own
                    text.set_parse_math(was[1])
                elif id(text) in ticks:
                    text.set_parse_math(ticks[id(text)])
                else:  # made or set by the call
                    text.set_parse_math(False)
        return result
    return drawing


def _figures(things) -> set:
    """The matplotlib figures among ``things`` (figures, axes, nested lists and tuples)."""
    found = set()
    for thing in things:
        if isinstance(thing, (list, tuple)):
            found |= _figures(thing)
        elif hasattr(thing, "savefig"):
            found.add(thing)
        elif hasattr(getattr(thing, "figure", None), "savefig"):
            found.add(thing.figure)
    return found


def _texts(fig) -> list:
    """Every text artist of ``fig``."""
    from matplotlib.text import Text
    return fig.findobj(Text)


def as_written(*texts) -> None:
    """Take these matplotlib text artists literally (as :func:`literal_text` does), for
    texts a caller writes itself (a title over a map drawn by a decorated function)."""
    for text in texts:
        text.set_parse_math(False)


def short_label(text, width: int = 40) -> str:
    """``text`` for a title or a legend: at most ``width`` characters, cut with an ellipsis
    (a clip named by a 240-character file stem would push the axes out of the figure)."""
    text = str(text)
    return text if len(text) <= width else text[:width - 1] + "\u2026"


def number(value: float) -> str:
    """A value for a label: 2 decimals, or 3 significant digits below 0.01 and from 10000 up
    (a concept rated in small units read "0.00 vs 0.00")."""
    value = float(value)
    return f"{value:.2f}" if value == 0 or 0.01 <= abs(value) < 1e4 else f"{value:.3g}"


def contribution_units(rows: pd.DataFrame) -> str:
    """The units of the contributions in ``rows`` (one target's): by their ``output_kind``,
    rating points where the table has none."""
    kind = rows["output_kind"].iloc[0] if "output_kind" in rows and len(rows) else "regression"
    return CONTRIBUTION_UNITS.get(kind, kind)


def concept_colors(concepts) -> dict[str, tuple]:
    """A fixed colour per concept (tab10 / tab20 in the given order)."""
    import matplotlib
    names = list(dict.fromkeys(concepts))
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(names)}


def _listing(names: list, most: int = 8) -> str:
    """``names`` as a short list for a message (at most ``most``, then how many more)."""
    shown = [str(n) for n in names[:most]]
    return str(shown) + (f" and {len(names) - most} more" if len(names) > most else "")


def not_empty(table: pd.DataFrame, what: str) -> None:
    """ExplainError naming ``what`` (the plot) where ``table`` has no rows."""
    if table is None or not len(table):
        raise ExplainError(f"{what}: the table has no rows to draw")


def clip_rows(table: pd.DataFrame, clip, what: str, *,
              several: str = "first") -> tuple[pd.DataFrame, object]:
    """``(rows, clip)``: the rows of ``clip`` (compared as text, so a name read back from a CSV
    as a number still matches); ExplainError naming the table's clips for one it lacks.
    ``clip`` None: the only clip; with several, the first (``several="first"``) or an
    ExplainError naming them (``"refuse"``). A table without a ``clip`` column is one clip."""
    not_empty(table, what)
    if "clip" not in table:
        return table, clip
    clips = list(dict.fromkeys(table["clip"]))
    if clip is None:
        if len(clips) > 1 and several == "refuse":
            raise ExplainError(f"{what}: the table holds {len(clips)} clips "
                               f"({_listing(clips)}); pick one with clip=")
        clip = clips[0]
    rows = table[table["clip"].astype(str) == str(clip)]
    if not len(rows):
        raise ExplainError(f"{what}: clip {str(clip)!r} is not in the table; its clips are "
                           f"{_listing(clips)}")
    return rows, clip


def checked_targets(rows: pd.DataFrame, targets, what: str) -> list:
    """The targets to draw: ``targets`` (default every target of ``rows``), each of them in
    ``rows``; ExplainError naming the unknown ones and those present."""
    not_empty(rows, what)
    present = list(dict.fromkeys(rows["target"]))
    names = present if targets is None else [targets] if isinstance(targets, str) \
        else list(targets)  # one name given as a string, not its letters
    unknown = [n for n in names if n not in present]
    if unknown:
        raise ExplainError(f"{what} targets {unknown} are not in the table; its targets are "
                           f"{_listing(present)}")
    if not names:
        raise ExplainError(f"{what}: no targets to draw (targets=[])")
    return names
