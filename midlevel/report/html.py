"""One self-contained HTML page: text, tables, figures and audio players embedded."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from midlevel.io import write_text
from midlevel.report.markdown import format_value


def _b64(path: Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def write_html(path, title: str, sections: list[tuple[str, list]]) -> Path:
    """Write one self-contained HTML page.

    ``sections``: (heading, items) with items ``("text", str)``, ``("table", DataFrame)``,
    ``("figure", (caption, png path))`` or ``("audio", (caption, wav path))``; figures and
    audio are embedded as base64 data URIs.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto;"
             "padding:1em}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "figure{margin:.5em 0}img{max-width:100%}figcaption{font-size:13px;color:#444}"
             ".audio{display:flex;align-items:center;gap:1em;margin:.2em 0}"
             ".audio span{min-width:420px;font-size:13px}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, items in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for kind, value in items:
            if kind == "text":
                parts.append(f"<p>{html.escape(value)}</p>")
            elif kind == "table":
                value = value.copy()
                for c in value.columns[value.dtypes == object]:  # None is no NaN to na_rep
                    value[c] = value[c].map(lambda v: "-" if v is None else v)
                parts.append(value.to_html(index=False, float_format=lambda v: format_value(v),
                                           na_rep="-", border=0))
            elif kind == "figure":
                caption, p = value
                parts.append(f"<figure><img alt='{html.escape(caption)}' "
                             f"src='data:image/png;base64,{_b64(p)}'><figcaption>"
                             f"{html.escape(caption)}</figcaption></figure>")
            elif kind == "audio":
                caption, p = value
                parts.append(f"<div class='audio'><span>{html.escape(caption)}</span>"
                             f"<audio controls src='data:audio/wav;base64,{_b64(p)}'></audio>"
                             f"</div>")
    parts.append("</body></html>")
    return write_text(path, "\n".join(parts))
