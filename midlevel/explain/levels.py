"""Significance levels: the one check of ``alpha`` and the name of its interval (shared by the
statistics and the flags, which read each other's results)."""
from __future__ import annotations

from midlevel.checks import real_number


def check_alpha(alpha) -> float:
    """``alpha`` as a float strictly between 0 and 1 (the intervals have level 1 - alpha: at
    1 or above ``ci_low > ci_high`` and every effect is "significant", at 0 the intervals are
    infinite); ArgumentError naming it otherwise."""
    return real_number(alpha, "alpha (--alpha)", above=0, below=1)


def ci_label(alpha: float) -> str:
    """The interval's name for ``alpha``: "95 % CI" at 0.05, "50 % CI" at 0.5."""
    return f"{100 * (1 - float(alpha)):.6g} % CI"
