"""Markdown rendering of tidy tables (the report and the benchmarks use it)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def format_value(v) -> str:
    """A cell for a report: floats to 3 decimals (3 significant digits when tiny or huge)."""
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "-"
        return f"{v:.3g}" if abs(v) >= 1000 or abs(v) < 0.001 and v != 0 else f"{v:.3f}"
    return str(v)


def markdown_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    """A pipe table (no extra dependency); long tables are cut with a note."""
    if df is None or len(df) == 0:
        return "_(empty)_\n"
    d = df.head(max_rows)
    lines = ["| " + " | ".join(str(c) for c in d.columns) + " |",
             "|" + "|".join("---" for _ in d.columns) + "|"]
    for _, row in d.iterrows():
        lines.append("| " + " | ".join(format_value(v) for v in row.to_numpy()) + " |")
    if len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows in the CSV_")
    return "\n".join(lines) + "\n"
