"""Fits without an estimate, detected so that no artefact of where the optimizer stopped, or of
float rounding, is read as evidence (see :mod:`midlevel.explain.statistics`, column
``data_note``): logistic and multinomial fits with perfect (or quasi-complete) separation or
without convergence, least-squares fits of a target without variance or with no residual
variance (:func:`ols_note`), and the weights of concepts the clips cannot tell apart
(:func:`dependent_concepts`)."""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd

from midlevel.errors import ExplainError

# the columns a fit without an estimate (see ``separated``) leaves NaN
EVIDENCE = ["weight", "std_weight", "se", "ci_low", "ci_high", "std_ci_low", "std_ci_high",
            "stat", "p_value", "r2", "intercept"]
NOT_CONVERGED = "the fit did not converge: no estimate, no interval"
# relative tolerance of :func:`ols_note`: a spread below RTOL of the values' size (target) or
# of the target's spread (residuals) is float rounding, not variance
RTOL = 1e-8


def separation_note(source: str = "ratings") -> str:
    """``data_note`` of a fit whose classes ``source`` (the concept values fitted on)
    separate."""
    return (f"the {source} separate the classes perfectly: the data's estimate is unbounded, "
            f"no interval")


@contextlib.contextmanager
def quiet():
    """Warnings (Python's and numpy's floating-point ones) silenced inside the block."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def fit_quietly(model, **kwargs):
    """``model.fit(**kwargs)`` with statsmodels' warnings caught rather than printed.

    Returns ``(result, separation)``: ``result`` None where statsmodels refused to fit
    (older versions raise ``PerfectSeparationError``), ``separation`` whether it signalled
    perfect separation (a warning or that error).
    """
    from statsmodels.tools import sm_exceptions
    signal = tuple(getattr(sm_exceptions, name) for name in
                   ("PerfectSeparationWarning", "PerfectSeparationError")
                   if hasattr(sm_exceptions, name))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = model.fit(**kwargs)
        except signal:
            return None, True
    return res, any(issubclass(w.category, signal) for w in caught)


def logistic_note(res, design: np.ndarray, codes: np.ndarray, warned: bool,
                   source: str = "ratings") -> str:
    """``data_note`` of a logistic / multinomial fit: "" when its estimate stands,
    :func:`separation_note` where the classes are separated (statsmodels' signal or
    :func:`separated`, which also catches the quasi-complete separation statsmodels misses),
    ``NOT_CONVERGED`` where the optimizer did not converge."""
    if warned or res is None or separated(design, codes):
        return separation_note(source)
    retvals = getattr(res, "mle_retvals", None) or {}
    if not retvals.get("converged", getattr(res, "converged", True)):
        return NOT_CONVERGED
    return ""


def ols_note(y: np.ndarray, resid: np.ndarray | None = None) -> str:
    """``data_note`` of a least-squares fit of a target ``y`` ``(n,)`` on the concepts, with
    residuals ``resid`` ``(n,)`` (None: not fitted yet): "" when its estimate stands.

    A target without variance on the fit's clips (its sd at most ``RTOL`` times its largest
    absolute value) leaves nothing to explain; a fit without residual variance (the residuals'
    root mean square at most ``RTOL`` times the target's sd: R^2 = 1 up to float rounding, the
    target a linear function of the concepts) has standard errors, t statistics and p-values
    made of rounding noise. Neither gives an estimate, interval or p-value.
    """
    y = np.asarray(y, dtype=float)
    sd = float(y.std()) if len(y) else 0.0
    if sd <= RTOL * float(np.abs(y).max(initial=0.0)):
        return (f"the target has no variance on the fit's {len(y)} clips (every value "
                f"{y[0]:.6g}): nothing to explain, no estimate" if len(y) else
                "the target has no values: no estimate")
    if resid is not None:
        rms = float(np.sqrt(np.mean(np.square(np.asarray(resid, dtype=float)))))
        if rms <= RTOL * sd:
            return ("the concepts fit the target exactly (R^2 = 1, no residual variance): "
                    "standard errors and p-values would be rounding noise, no estimate")
    return ""


def separated(design: np.ndarray, codes: np.ndarray, *, tol: float = 1e-6) -> bool:
    """Whether a linear function of the concepts separates the classes, completely or
    quasi-completely, so that the logistic (two classes) or multinomial (more) maximum-
    likelihood estimate does not exist (Albert & Anderson, *Biometrika* 71, 1984).

    Parameters
    ----------
    design : np.ndarray [shape=(n_clips, 1 + n_concepts)], the intercept column first.
    codes : np.ndarray [shape=(n_clips,)], class codes (0/1 for a binary target).
    tol : the largest margin per clip still read as 0 (the solver's tolerance).

    The linear program of Konis (2007; R's safeBinaryRegression), for any number of classes:
    coefficient vectors ``b_c`` per class (the first class's fixed at 0, every entry within
    [-1, 1]) under which every clip's own class scores at least as high as every other,
    ``(b_{c_i} - b_l) . x_i >= 0``, maximizing the sum of those margins. A positive maximum is
    a direction along which the likelihood rises for ever. The concepts are standardized first
    (separation does not depend on their scale or origin).
    """
    from scipy.optimize import linprog
    x = np.asarray(design, dtype=float)[:, 1:]
    sd = x.std(axis=0)
    z = np.hstack([np.ones((len(x), 1)),
                   np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)])
    _, y = np.unique(np.asarray(codes), return_inverse=True)
    n_classes = int(y.max()) + 1 if len(y) else 0
    if n_classes < 2:
        return False
    own = np.eye(n_classes)[y][:, 1:]                     # (n, J - 1): b_0 = 0
    blocks = []
    for other in range(n_classes):
        rows = y != other
        diff = own[rows] - np.eye(n_classes)[other, 1:]    # (n_rows, J - 1)
        blocks.append((diff[:, :, None] * z[rows][:, None, :]).reshape(rows.sum(), -1))
    margins = np.vstack(blocks)                             # (n (J - 1), (J - 1) p)
    res = linprog(-margins.sum(axis=0), A_ub=-margins, b_ub=np.zeros(len(margins)),
                  bounds=(-1, 1), method="highs")
    return bool(res.status == 0 and -res.fun > tol * len(margins))


def without_estimate(table: pd.DataFrame) -> pd.Series:
    """Rows without an estimate of the data (a ``data_note``)."""
    if "data_note" not in table:
        return pd.Series(False, index=table.index)
    return table["data_note"].fillna("").astype(str) != ""


def no_estimate_lines(table: pd.DataFrame) -> list[str]:
    """One line per target whose rows carry a ``data_note`` (no estimate), saying why."""
    noted = table[without_estimate(table)]
    return [f"{target}: {note} (its {len(g)} weights: no estimate of the data, column "
            f"data_note)" for (target, note), g in
            noted.groupby(["target", "data_note"], sort=False)]


# the cells of statsmodels' summary that hold the wall clock, not the fit
CLOCK_LABELS = ("Date:", "Time:")


def without_clock(summary):
    """statsmodels' ``Summary`` with its ``Date:`` and ``Time:`` entries blanked (label and
    value), so that the same fit writes the same text whenever it is run."""
    for table in getattr(summary, "tables", []):
        for row in table:
            cells = list(row)
            for i, cell in enumerate(cells[:-1]):
                if str(cell.data).strip() in CLOCK_LABELS:
                    cell.data = ""
                    cells[i + 1].data = ""
    return summary


def fit_summary(res, alpha: float, note: str) -> str:
    """statsmodels' summary text of a fit, headed by its ``data_note``; a warning statsmodels
    gives while summarizing (the F test's "covariance of constraints does not have full
    rank", for one) is written under the fit it belongs to, not printed on its own without
    the target's name."""
    text = ""
    if res is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            text = str(without_clock(res.summary(alpha=alpha)))
        said = list(dict.fromkeys(str(w.message) for w in caught))
        text += "".join(f"\nstatsmodels, summarizing this fit: {m}" for m in said)
    return (f"NOTE: {note}; the numbers below are not evidence.\n{text}" if note else text)


def nan_fit(n_concepts: int):
    """NaN ``params, bse, ci, stat, p`` of a fit that has none (intercept first)."""
    nan = np.full(n_concepts + 1, np.nan)
    return nan, nan, np.full((n_concepts + 1, 2), np.nan), nan, nan


def note_rows(rows: list[dict], note: str) -> list[dict]:
    """``rows`` with ``data_note`` set; where ``note`` is not empty, without the estimate
    (``EVIDENCE`` columns NaN), so that no weight, interval or p-value reads as evidence."""
    for row in rows:
        row["data_note"] = note
        if note:
            row.update({k: np.nan for k in EVIDENCE})
    return rows


# the columns a concept whose effect the clips cannot identify leaves NaN (the fit's r2 and
# intercept stand: they do not depend on how the shared effect is split)
CONCEPT_EVIDENCE = ["weight", "std_weight", "se", "ci_low", "ci_high", "std_ci_low",
                    "std_ci_high", "stat", "p_value"]


def _unit_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The intercept-first design of ``x`` ``(n, k)``, its columns' lengths (1 for a zero
    column) and the relative singular-value tolerance below which the scaled columns count
    as dependent (shared by :func:`least_squares` and :func:`dependent_concepts`)."""
    design = np.hstack([np.ones((len(x), 1)), np.asarray(x, dtype=float)])
    norms = np.linalg.norm(design, axis=0)
    return design, np.where(norms > 0, norms, 1.0), max(design.shape) * np.finfo(float).eps * 1e3


class RankDeficient(ExplainError):
    """A least-squares design whose columns are linearly dependent (:func:`least_squares`)."""


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Intercept-first least-squares coefficients of ``y`` ``(n,)`` or ``(n, m)`` on ``x``
    ``(n, k)``, solved on columns scaled to unit length and scaled back, so the same in any
    units of the concepts. :class:`RankDeficient` where the columns are linearly dependent
    (judged on the scaled columns, as :func:`dependent_concepts` does): a bootstrap resample
    of fewer distinct clips than coefficients, for one. ``np.linalg.lstsq`` would return its
    minimum-norm solution there, which depends on the units (audit 12b: intervals of 10
    held-out clips and 7 concepts moved with the units; 86 % of their resamples were
    rank-deficient)."""
    design, norms, tol = _unit_columns(x)
    coef, _, rank, s = np.linalg.lstsq(design / norms, y, rcond=None)
    if rank < design.shape[1] or (s.size and s.min() <= tol * s.max()):
        raise RankDeficient(f"rank-deficient least squares: {design.shape[1]} coefficients, "
                            f"{len(np.unique(design, axis=0))} distinct rows")
    return coef / (norms[:, None] if coef.ndim == 2 else norms)


def dependent_concepts(x: np.ndarray, names: list[str]) -> tuple[list[int], dict[str, str]]:
    """Concepts whose own effects the clips cannot tell apart: those in an exact linear
    dependency with other concepts or with the intercept (one column read under two names;
    tags that sum to 1; a concept constant on the clips). Their weights are not unique (any
    split of the shared effect fits the clips equally well), so a fit reports whatever split
    its solver lands on, with meaningless intervals, and a multinomial fit's singular Hessian
    corrupts the other concepts' standard errors too.

    Parameters
    ----------
    x : np.ndarray [shape=(n_clips, n_concepts)], the concept values fitted on.
    names : the concepts' names.

    Returns
    -------
    kept : indices of the concepts to fit: each concept in order, unless it is a linear
        function of the intercept and the concepts kept before it. The kept concepts span
        what all of them span, so the fit's other weights, their intervals, R^2 and
        predictions are those of the full fit where it has them.
    notes : a ``data_note`` per concept in a dependency (kept ones too), naming the others.
    """
    design, norms, tol = _unit_columns(x)
    d = design / norms                                        # scale-free

    def rank(cols: list[int]) -> int:
        s = np.linalg.svd(d[:, cols], compute_uv=False)
        return int((s > tol * s.max()).sum()) if s.size and s.max() > 0 else 0

    kept, parent = [0], list(range(d.shape[1]))               # column 0: the intercept

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for j in range(1, d.shape[1]):
        if rank(kept + [j]) > len(kept):
            kept.append(j)
            continue
        coef = np.linalg.lstsq(d[:, kept], d[:, j], rcond=None)[0]
        for k in np.asarray(kept)[np.abs(coef) > 1e-6]:       # the concepts it repeats
            parent[root(int(k))] = root(j)
        parent[root(j)] = root(j)
    groups: dict[int, list[int]] = {}
    for j in range(d.shape[1]):
        groups.setdefault(root(j), []).append(j)
    notes = {}
    for members in groups.values():
        concepts = [names[j - 1] for j in members if j > 0]
        if len(members) < 2 or not concepts:
            continue
        if members == [0, members[-1]] and len(concepts) == 1:
            note = (f"{concepts[0]} is constant on the fit's clips: the data cannot tell its "
                    f"effect from the intercept, no estimate")
        else:
            what = ", ".join(concepts) + (" and a constant" if 0 in members else "")
            note = (f"linearly dependent concepts ({what}; e.g. one column read under two "
                    f"names, or tags that sum to 1): the data cannot tell their effects "
                    f"apart, no estimate")
        notes.update({c: note for c in concepts})
    return [j - 1 for j in kept[1:]], notes


def with_dependent(rows: list[dict], names: list[str], notes: dict[str, str]) -> list[dict]:
    """The rows of a fit on the kept concepts (:func:`dependent_concepts`), one per fitted
    concept and unit, as rows of every concept in ``names`` order: a concept in ``notes``
    without its estimate (``CONCEPT_EVIDENCE`` NaN), its note in ``data_note``."""
    if not notes:
        return rows
    units: dict[str, dict[str, dict]] = {}
    for row in rows:
        units.setdefault(row["target"], {})[row["concept"]] = row
    out = []
    for by_concept in units.values():
        template = next(iter(by_concept.values()))
        for name in names:
            row = dict(by_concept.get(name) or {**template, "concept": name,
                                                 "std_scale": np.nan})
            if name in notes:
                row.update({k: np.nan for k in CONCEPT_EVIDENCE})
                row.update(data_note=notes[name], _draws=None)
            out.append(row)
    return out


def dependent_text(names: list[str], kept: list[int], notes: dict[str, str]) -> str:
    """The note heading a statsmodels summary of a fit on the kept concepts only
    (:func:`dependent_concepts`): which concepts it leaves out, and that the kept concepts of
    a dependency carry the shared effect there, not their own."""
    fitted = {names[j] for j in kept}
    left_out = [n for n in names if n not in fitted]
    shared = [n for n in names if n in notes and n in fitted]
    return (f"NOTE: linearly dependent concepts; this fit leaves out {', '.join(left_out)}"
            + (f", so the weight of {', '.join(shared)} below is a shared effect, not its "
               f"own" if shared else "") + "; the table gives none of them an estimate.\n")
