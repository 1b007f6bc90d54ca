"""The result of a coefficient fit, or of a run's two questions: its tidy table (columns of
:data:`midlevel.explain.statistics.COLUMNS` for a fit, of
:data:`midlevel.explain.coefficients.RUN_COLUMNS` for a run), the statsmodels summaries, the
leakage diagnostic, and how they are written and shown."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.explain.multiplicity import interval_lines, uncorrected_note
from midlevel.explain.separation import no_estimate_lines, without_estimate
from midlevel.io import save_figure, write_csv, write_text

FILES = ("coefficients.csv", "coefficients_summary.txt", "coefficients.png", "leakage.csv")
"""The files :meth:`CoefficientResult.write` writes into its folder."""


@dataclass
class CoefficientResult:
    """Coefficients of one fit, or of a run (both questions, see the module docstring).

    Attributes
    ----------
    table : pd.DataFrame
        Tidy, one row per (target, concept); ``COLUMNS`` for a fit, ``RUN_COLUMNS`` for a run.
    summaries : dict[str, str]
        statsmodels summary text per ``"method: target"``.
    leakage : pd.DataFrame or None
        The leakage diagnostic of a joint or sequential run (:mod:`midlevel.explain.leakage`).
    """

    table: pd.DataFrame
    summaries: dict[str, str] = field(default_factory=dict)
    leakage: pd.DataFrame | None = None

    def summary_text(self) -> str:
        """The flags, the leakage diagnostic and every statsmodels summary, with headings."""
        choice = [self.table.attrs["data_choice"]] if self.table.attrs.get("data_choice") \
            else []
        parts = [f"{'=' * 78}\nwhat the data show\n{'=' * 78}\n"
                 + "\n".join([self.description()] + choice + interval_lines(self.table)
                              + self.caveat_lines())
                 + "\n"]
        missing = no_estimate_lines(self.table)
        if missing:
            parts.append(f"{'=' * 78}\nwhere the data give no estimate\n{'=' * 78}\n"
                         + "\n".join(missing) + "\n")
        if "flag" in self.table:
            from midlevel.explain.flags import flag_summary
            parts.append(f"{'=' * 78}\nwhere the model departs from what the data show\n"
                         f"{'=' * 78}\n{flag_summary(self.table)}\n")
        if self.leakage is not None and len(self.leakage):
            from midlevel.explain.leakage import leakage_summary
            parts.append(f"{'=' * 78}\nleakage diagnostic (held-out clips)\n{'=' * 78}\n"
                         f"{leakage_summary(self.leakage)}\n")
        note = uncorrected_note(self.table.attrs.get("correction"))
        for key, text in self.summaries.items():
            parts.append(f"{'=' * 78}\n{key}\n{'=' * 78}\n{note}{text}\n")
            note = ""
        return "\n".join(parts)

    def summary_lines(self, *, most: int = 8) -> list[str]:
        """What a terminal shows of a run's table: both questions, the flags (at most
        ``most`` reasons) and the leakage diagnostic."""
        t = self.table
        alpha = t.attrs.get("alpha", 0.05)
        lines = []
        if "mode" in t and len(t):
            classes = "versus" in t and bool((t["versus"].astype(str) != "").any())
            rows = f"{t['target'].nunique()} " + ("target rows (a class target: one per class "
                                                   "against its base)" if classes else "targets")
            lines.append(f"{t['mode'].iloc[0]} run, {t['concept'].nunique()} concepts x {rows}")
        if "model_weight" in t:
            lines.append("what the model does: model_weight, the head's own weights (exact)")
        noted = without_estimate(t)
        estimated = len(t) - int(noted.sum())
        lines.append(f"what the data show: {self.description()}")
        if t.attrs.get("data_choice"):
            lines.append(f"  ({t.attrs['data_choice']})")
        lines.append(f"  {int(t['significant'].sum())} of {estimated} associations significant "
                     f"at alpha={alpha} (correction: {t.attrs.get('correction', 'none')})"
                     + (f"; {int(noted.sum())} without an estimate" if noted.any() else ""))
        lines += ["  " + ln.strip() for ln in interval_lines(t)]
        lines += ["  " + ln for ln in self.caveat_lines()]
        r2 = t.groupby("target", sort=False)["r2"].first()
        methods = t.groupby("target", sort=False)["method"].first().astype(str)
        pseudo = {k for k, m in methods.items() if "logit" in m or "GLM" in m}
        lines.append("  R^2 per target: " + ", ".join(
            (f"{k} {v:.2f}" if np.isfinite(v) else f"{k} -") + (" (pseudo)" if k in pseudo
                                                                 else "")
            for k, v in r2.items())
            + ("; (pseudo): McFadden's pseudo-R^2 of a logistic fit" if pseudo else ""))
        lines += ["  " + ln for ln in no_estimate_lines(t)]
        if "flag" in t:
            from midlevel.explain.flags import flag_summary
            lines += flag_summary(t, most=most).splitlines()
        if self.leakage is not None and len(self.leakage):
            from midlevel.explain.leakage import leakage_summary
            lines.append("leakage diagnostic (head on predicted vs true concepts):")
            lines += ["  " + ln for ln in leakage_summary(self.leakage).splitlines()]
        return lines

    def caveat_lines(self) -> list[str]:
        """What the data's weights are, and where this fit's clips say they are less than
        that (:mod:`midlevel.explain.caveats`; ``attrs["caveats"]``)."""
        from midlevel.explain.caveats import chance_line
        t = self.table
        if "weight" not in t or not len(t):
            return []
        return (["the data's weights are linear associations among these clips, other "
                 "concepts held fixed, not causal effects"]
                + chance_line(t) + list(t.attrs.get("caveats") or []))

    def description(self) -> str:
        """The fit's estimator in a sentence (``attrs["method"]``; else the rows' ``method``
        labels)."""
        return self.table.attrs.get("method") or ", ".join(self.methods())

    def methods(self) -> list[str]:
        """The estimators of the rows (``method`` column), in order."""
        return list(dict.fromkeys(self.table["method"]))

    def primary(self) -> pd.DataFrame:
        """The table of the fit (every estimator of it: OLS, GLM and multinomial rows)."""
        return self.table

    def flagged(self) -> pd.DataFrame:
        """The rows whose model weight departs from what the data show."""
        return self.table[self.table["flag"] != ""] if "flag" in self.table else \
            self.table.iloc[:0]

    def write(self, out_dir: str | Path, *, heatmap: bool = True) -> dict[str, Path]:
        """Write ``coefficients.csv``, ``coefficients_summary.txt``, ``coefficients.png`` and,
        for a run with a leakage diagnostic, ``leakage.csv`` (``FILES``: those an earlier
        table left in ``out_dir`` are removed first)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # an earlier table's files go first: a kill part-way leaves fewer files, never this
        # table beside an earlier one's figure or another run's leakage.csv
        for name in FILES:
            (out / name).unlink(missing_ok=True)
        paths = {"csv": out / "coefficients.csv", "summary": out / "coefficients_summary.txt"}
        write_csv(self.table, paths["csv"])
        write_text(paths["summary"], self.summary_text())
        if self.leakage is not None and len(self.leakage):
            paths["leakage"] = out / "leakage.csv"
            write_csv(self.leakage, paths["leakage"])
        if heatmap:
            import matplotlib.pyplot as plt
            from midlevel.plots.concepts import coefficient_figure, coefficient_heatmap
            fig = (coefficient_figure(self.table) if "model_weight" in self.table
                   else coefficient_heatmap(self.primary()).figure)
            paths["heatmap"] = out / "coefficients.png"
            save_figure(fig, paths["heatmap"], dpi=120, bbox_inches="tight")
            plt.close(fig)
        return paths
