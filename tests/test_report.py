"""Report building blocks: Markdown tables, the self-contained HTML page, the compare CLI."""
from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from midlevel.cli import build_parser
from midlevel.report.html import write_html
from midlevel.report.markdown import markdown_table
from midlevel.workflows.compare import summarize_metrics


def test_markdown_table():
    df = pd.DataFrame({"model": ["a", "b"], "r": [0.5, np.nan], "n": [3, 4]})
    text = markdown_table(df)
    lines = text.strip().splitlines()
    assert lines[0] == "| model | r | n |" and lines[1] == "|---|---|---|"
    assert lines[2] == "| a | 0.500 | 3 |" and lines[3] == "| b | - | 4 |"
    assert "more rows" in markdown_table(pd.DataFrame({"x": range(100)}), max_rows=10)
    assert "empty" in markdown_table(pd.DataFrame())
    own = pd.DataFrame({"target": ["**yes**", "`a_b`"], "note": ["|x|", "ok"]})
    assert markdown_table(own, literal=False).splitlines()[2] == "| **yes** | \\|x\\| |"
    assert "\\*\\*yes\\*\\*" in markdown_table(own)  # names shown as they are


def test_html_embeds_figures_and_audio(tmp_path):
    import matplotlib.pyplot as plt
    import soundfile as sf
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    sf.write(tmp_path / "a.wav", np.zeros(100), 22050, subtype="PCM_16")
    page = write_html(tmp_path / "r.html", "T <&>", [
        ("S", [("text", "hello <b>"), ("table", pd.DataFrame({"x": [1.23456]})),
               ("figure", ("cap", tmp_path / "f.png")), ("audio", ("snd", tmp_path / "a.wav"))])])
    html = page.read_text()
    assert "T &lt;&amp;&gt;" in html and "hello &lt;b&gt;" in html and "1.235" in html
    png = re.search(r"data:image/png;base64,([^']+)'", html).group(1)
    wav = re.search(r"data:audio/wav;base64,([^']+)'", html).group(1)
    assert base64.b64decode(png) == (tmp_path / "f.png").read_bytes()
    assert base64.b64decode(wav) == (tmp_path / "a.wav").read_bytes()


def test_summarize_metrics_over_seeds():
    m = pd.DataFrame({"model": ["joint"] * 2 + ["blackbox"], "run": ["r1", "r2", "r3"],
                      "kind": "target", "name": "valence", "r": [0.6, 0.8, 0.9],
                      "r2": [0.3, 0.5, 0.8], "rmse": [1.0, 0.8, 0.5]})
    s = summarize_metrics(m).set_index("model")
    assert s.loc["joint", "n_runs"] == 2
    assert s.loc["joint", "r"] == pytest.approx(0.7)
    assert s.loc["joint", "r_std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert np.isnan(s.loc["blackbox", "r_std"])


def test_compare_cli_is_registered():
    args = build_parser().parse_args(["compare", "runA", "runB", "--out", "rep", "--methods",
                                      "shap_deep", "ig", "--window", "8", "16", "--clips", "2"])
    assert args.runs == ["runA", "runB"] and args.window == [8, 16] and args.clips == 2
    assert args.func.__module__ == "midlevel.cli.compare"


def test_markdown_shows_names_as_they_are():
    """Audit 12a #4: report.md escaped nothing: an id's HTML was rendered, ``a,b;c`` read as
    two clips in a comma-separated list, a ``|`` in a cell (the note ``|f(x) - f(ref)|``)
    shifted a table's columns, a link to a file name with a space broke."""
    from midlevel.report.markdown import md_code, md_link, md_text
    assert md_text("<b>x</b> & *y* [z] | #") == r"&lt;b&gt;x&lt;/b&gt; &amp; \*y\* \[z\] \| \#"
    assert md_code("a,b;c") == "`a,b;c`" and md_code("a`b") == "``a`b``"
    assert md_code("`x") == "`` `x ``"
    assert md_link("audio/my song (1).wav") == "<audio/my song (1).wav>"
    table = markdown_table(pd.DataFrame({"note": ["|f(x) - f(ref)| small"], "n": [1.0]}))
    row = table.splitlines()[2]
    assert row == r"| \|f(x) - f(ref)\| small | 1.000 |"
    assert len(re.findall(r"(?<!\\)\|", row)) == 3  # two cells: three unescaped bars


def test_figures_take_names_literally_and_tick_labels_as_math(tmp_path):
    """Audit 12a #3 and its re-audit: a '$' in a name is text, in a title drawn inside a
    decorated plot and in one over an axes made before the call; a log axis's tick labels
    ($10^{4}$) still read as math, also when the figure is laid out inside the call."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from midlevel.plots.common import literal_text

    @literal_text
    def draw(*, ax):
        ax.semilogy([1, 2, 3], [1e2, 1e3, 1e4])
        ax.set_title("Pay $5 or $10")
        ax.set_xticks([1, 2, 3], [r"cost $\foo$", "Pay $5 or $10", "c"])  # concept names
        ax.figure.tight_layout()
        return ax

    fig, (ax, other) = plt.subplots(1, 2)
    fig.suptitle("$R^2$")  # the caller's own math, untouched
    other.set_ylabel(r"$\pm$ sd")
    other.set_xticks([0, 1], [r"$\alpha$", r"$\beta$"])
    draw(ax=ax)
    fig.savefig(tmp_path / "f.png")  # a '$' read as math would raise or drop the '$'
    assert ax.title.get_parse_math() is False
    assert not any(t.get_parse_math() for t in ax.get_xticklabels())
    ticks = [t for t in ax.get_yticklabels() if "10^" in t.get_text()]
    assert ticks and all(t.get_parse_math() for t in ticks)
    assert fig._suptitle.get_parse_math() and other.yaxis.label.get_parse_math()
    assert all(t.get_parse_math() for t in other.get_xticklabels())
    plt.close(fig)

    @literal_text
    def bars():
        fig, ax = plt.subplots()
        ax.bar(["Pay $5 or $10", r"cost $\foo$"], [1, 2])  # a categorical axis of names
        return fig

    fig = bars()
    fig.savefig(tmp_path / "g.png")
    assert not any(t.get_parse_math() for t in fig.axes[0].get_xticklabels())
    plt.close(fig)


def test_a_concept_named_with_dollars_is_drawn_as_written(tmp_path):
    """Re-audit 12b: at b991b14 tick labels read math, so a concept named 'cost $\\foo$'
    stopped explain ('Unknown symbol: \\foo') before its first figure."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from midlevel.plots.concepts import contribution_bars
    rows = [dict(clip="c", target="valence", concept=name, contribution=0.3, concept_value=1.0,
                 concept_baseline=0.5, baseline_prediction=1.0, prediction=1.6, weight=0.6)
            for name in (r"cost $\foo$", "Pay $5 or $10")]
    fig = contribution_bars(pd.DataFrame(rows), "c")
    fig.savefig(tmp_path / "bars.png")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any(r"$\foo$" in label for label in labels)
    plt.close(fig)


def test_an_unchecked_readable_cell_reads_as_a_dash(tmp_path):
    """Re-audit 22e: listen-back's `readable` is None where no spread was known, and the
    report printed "None" beside True/False."""
    table = pd.DataFrame({"part": ["for", "against"], "share": [0.5, np.nan],
                          "readable": [None, True]})
    md = markdown_table(table)
    assert "None" not in md and "| - |" in md.replace("|-|", "| - |")
    html = write_html(tmp_path / "r.html", "t", [("s", [("table", table)])]).read_text()
    assert "None" not in html and "<td>-</td>" in html
