"""Where the model departs from what the data show: one flag per (target, concept).

Each row of a coefficient table holds the weight the model uses (``model_weight``, exact) and
the data's estimate with its interval (``weight``, ``ci_low``, ``ci_high``). A weight is
flagged when the model's weight lies outside the data's interval, the one the table shows (with
a multiple-comparison correction, the corrected interval: see
:mod:`midlevel.explain.multiplicity`), and

- ``unsupported``: the data do not detect an association (the interval contains 0; that is not
  evidence of no effect, only of none large enough to tell from noise), yet the model's
  standardized weight is at least ``materiality`` and outside the interval: it leans on the
  concept more than the data support, typically one predicted concept carrying another's signal
  or the target's own (compensation / leakage);
- ``opposite sign``: the data show an effect of the other sign, the model's standardized
  weight is at least ``materiality`` and more than ``materiality`` away from the interval;
- ``compensation``: the data show an effect and the model's standardized weight is more than
  ``materiality`` away from the interval, on the same side of 0 as the data's or near 0 (it
  over- or under-uses the concept, usually to make up for errors in the predicted concepts; a
  weight of about 0 on a clear effect is the strongest under-use).

Where the data show an effect, every weight more than ``materiality`` (standardized) away from
the interval is flagged, whatever its sign: the flag grows with the gap.

One flag says something else: ``no training spread`` marks every weight on a concept whose
ratings do not vary among the run's training clips (:func:`mark_untrained`). Training had
nothing to learn its effect from, so the weight is whatever the fit left there: neither an
effect nor compensation, whatever the data's interval.

Standardized = weight x sd(concept) / sd(target) on the clips of the data's fit. The default
``materiality`` of 0.05 is half of what is usually called a small standardized effect (0.1): a
model weight smaller than that, or within it of the data's interval, is not flagged, so the
flag does not fire on every negligible or imprecise weight.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.checks import real_number
from midlevel.explain.levels import check_alpha, ci_label

MATERIALITY = 0.05
NO_TRAINING_SPREAD = "no training spread"
FLAGS = ("unsupported", "opposite sign", "compensation", NO_TRAINING_SPREAD)


def check_materiality(materiality) -> float:
    """``materiality`` (a standardized margin) as a finite float of at least 0; ArgumentError
    naming it otherwise."""
    return real_number(materiality, "materiality (--materiality)", least=0)


def flag_weights(table: pd.DataFrame, *, materiality: float = MATERIALITY,
                 alpha: float | None = None) -> pd.DataFrame:
    """Add ``flag`` ("" or one of ``FLAGS``) and ``flag_reason`` (a sentence) to a coefficient
    table with ``model_weight``, ``weight``, ``ci_low``, ``ci_high`` and ``std_scale``.

    ``alpha``: 1 - the level of the table's intervals, as the reasons name them (default: the
    table's ``attrs["ci_alpha"]``, the level of a corrected interval, else ``attrs["alpha"]``,
    else 0.05). Rows without an interval (NaN, e.g. a ``data_note``
    saying the data give no estimate) are not flagged.

    Returns a copy of ``table``.
    """
    materiality = check_materiality(materiality)
    if alpha is None:
        alpha = table.attrs.get("ci_alpha", table.attrs.get("alpha", 0.05))
    alpha = check_alpha(alpha)
    out = table.copy()
    m, est = out["model_weight"].to_numpy(float), out["weight"].to_numpy(float)
    lo, hi = out["ci_low"].to_numpy(float), out["ci_high"].to_numpy(float)
    scale = np.abs(out["std_scale"].to_numpy(float))
    known = np.isfinite(m) & np.isfinite(lo) & np.isfinite(hi)
    outside = known & ((m < lo) | (m > hi))
    no_effect = (lo <= 0) & (hi >= 0)
    gap = np.minimum(np.abs(m - lo), np.abs(m - hi)) * scale
    opposite = m * est < 0
    flags = np.full(len(out), "", dtype=object)
    flags[outside & no_effect & (np.abs(m) * scale >= materiality)] = "unsupported"
    # where the data show an effect, the gap to the interval decides (a model weight of about
    # 0 for a clear effect is the strongest under-use); of the gapped ones, those of the other
    # sign and material size are named so
    departs = outside & ~no_effect & (gap >= materiality)
    flags[departs] = "compensation"
    flags[departs & opposite & (np.abs(m) * scale >= materiality)] = "opposite sign"
    out["flag"] = flags
    correlated = set(table.attrs.get("correlated") or ())   # the caveats' VIF line
    out["flag_reason"] = [_reason(f, row, alpha, correlated) for f, (_, row) in
                          zip(flags, out.iterrows())]
    return out


def mark_untrained(table: pd.DataFrame, constant: dict[str, float]) -> pd.DataFrame:
    """Flag every row of a concept in ``constant`` (concept -> its one rating among the
    training clips) ``no training spread``, whatever :func:`flag_weights` said, with a reason
    naming the value. Returns a copy of ``table`` (flagged by :func:`flag_weights`)."""
    out = table.copy()
    rows = out["concept"].isin(list(constant))
    for i in out.index[rows]:
        row = out.loc[i]
        value = constant[row["concept"]]
        rated = (f"all {value:.4g}" if np.isfinite(value) else "no rating at all")
        data = ""
        if np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
            data = (f" (on all rated clips the data show {row['weight']:+.3g}, "
                    f"{row['ci_low']:+.3g} to {row['ci_high']:+.3g})")
        out.loc[i, "flag"] = NO_TRAINING_SPREAD
        out.loc[i, "flag_reason"] = (
            f"{row['target']}: the model uses {row['model_weight']:+.3g}{_outcome(row)} per "
            f"point of {row['concept']}, but the training clips' ratings of {row['concept']} "
            f"do not vary ({rated}): training could not learn its effect, so this weight is "
            f"neither an effect nor compensation{data}. Rate {row['concept']} on training "
            f"clips that differ in it, or split the data so that they do.")
    return out


def _outcome(row) -> str:
    """What a class or tag row's weight changes, for its sentence ("" for a rating target,
    whose weight is in its rating points)."""
    target, base = str(row["target"]), str(row.get("versus") or "")
    if base and base != "nan":
        return f" in the log-odds of {target.split('=', 1)[-1]} versus {base}"
    method = str(row.get("method", ""))
    return f" in the log-odds of {target}" if "GLM" in method or "logit" in method else ""


def _reason(flag: str, row, alpha: float = 0.05, correlated=frozenset()) -> str:
    if not flag:
        return ""
    unit = ("per unit of probability of" if row.get("concept_kind") == "binary"
            else "per point of")
    model = f"the model uses {row['model_weight']:+.3g}{_outcome(row)} {unit} {row['concept']}"
    data = (f"the data show {row['weight']:+.3g} "
            f"({ci_label(alpha)} {row['ci_low']:+.3g} to {row['ci_high']:+.3g})")
    # rater noise in correlated concepts biases the data's estimate (audit 14b): said on the
    # concepts the summary's VIF line names
    biased = (f"; {row['concept']} is correlated with other concepts (the summary's VIF line), "
              f"so rater noise may have biased the data's estimate instead"
              if row["concept"] in correlated else "")
    if flag == "unsupported":
        return (f"{row['target']}: {model}, but {data}: the data do not detect an "
                f"association with {row['concept']}, and the model's weight lies outside that "
                f"interval. The model may lean on this concept to carry another concept's "
                f"signal or the target's own (compensation / leakage){biased}; do not read "
                f"it as an effect.")
    if flag == "opposite sign":
        return (f"{row['target']}: {model}, but {data}, the other sign. The weight does not "
                f"follow the data's association: read it as compensation between predicted "
                f"concepts{biased}.")
    return (f"{row['target']}: {model}, far outside what {data[4:]}: the model over- or "
            f"under-uses {row['concept']}, likely compensating for errors in the predicted "
            f"concepts{biased}.")


def flag_summary(table: pd.DataFrame, *, most: int | None = None) -> str:
    """Lines for a terminal: how many weights are flagged, and why (at most ``most`` reasons,
    the largest departures first); then the weights on concepts without spread in training,
    counted apart (they depart from nothing: they are no effect)."""
    untrained = table[table["flag"] == NO_TRAINING_SPREAD]
    text = _departures(table[table["flag"] != NO_TRAINING_SPREAD], most)
    if untrained.empty:
        return text
    concepts = ", ".join(dict.fromkeys(untrained["concept"].astype(str)))
    lines = [text, f"{len(untrained)} model weights are on concepts whose ratings do not vary "
                   f"among the training clips ({concepts}): training could not learn their "
                   f"effect; read none of them as one:"]
    shown = untrained if most is None else untrained.iloc[:most]
    lines += [f"  [{NO_TRAINING_SPREAD}] {r}" for r in shown["flag_reason"]]
    if len(shown) < len(untrained):
        lines.append(f"  ... and {len(untrained) - len(shown)} more (coefficients.csv, column "
                     f"flag_reason)")
    return "\n".join(lines)


def _departures(table: pd.DataFrame, most: int | None) -> str:
    """:func:`flag_summary`'s lines for the departures from what the data show."""
    flagged = table[table["flag"] != ""]
    unknown = ~(np.isfinite(table["ci_low"].to_numpy(float))
                & np.isfinite(table["ci_high"].to_numpy(float)))
    if flagged.empty:
        if unknown.any():
            return (f"No weight of the model departs from what the data show among the "
                    f"{int((~unknown).sum())} with an interval of the data; "
                    f"{int(unknown.sum())} could not be compared (no estimate of the data"
                    + ("; see data_note" if "data_note" in table else "") + ").")
        return "No weight of the model departs from what the data show."
    gap = ((flagged["model_weight"] - flagged["weight"]) * flagged["std_scale"]).abs()
    flagged = flagged.loc[gap.sort_values(ascending=False).index]
    counts = flagged["flag"].value_counts()
    lines = [f"{len(flagged)} of {len(table)} model weights depart from what the data show ("
             + ", ".join(f"{n} {f}" for f, n in counts.items()) + "):"]
    shown = flagged if most is None else flagged.iloc[:most]
    if unknown.any():
        lines[0] = lines[0][:-1] + (
            f"; {int(unknown.sum())} could not be compared, the data giving no estimate"
            + (" (see data_note)" if "data_note" in table else "") + ":")
    lines += [f"  [{f}] {r}" for f, r in zip(shown["flag"], shown["flag_reason"])]
    if len(shown) < len(flagged):
        lines.append(f"  ... and {len(flagged) - len(shown)} more (coefficients.csv, column "
                     f"flag_reason)")
    return "\n".join(lines)
