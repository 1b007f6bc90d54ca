"""Significance levels: the one check of ``alpha`` and the name of its interval (shared by the
statistics and the flags, which read each other's results)."""
from __future__ import annotations

import numpy as np

from midlevel.errors import ArgumentError


def check_alpha(alpha) -> float:
    """``alpha`` as a float strictly between 0 and 1; ArgumentError naming it otherwise (at
    1 or above ``ci_low > ci_high`` and every effect is "significant", at 0 the intervals are
    infinite)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and 0 < value < 1):
        raise ArgumentError(f"alpha (--alpha) must lie strictly between 0 and 1 (the intervals "
                            f"have level 1 - alpha), got {alpha}")
    return value


def ci_label(alpha: float) -> str:
    """The interval's name for ``alpha``: "95 % CI" at 0.05, "50 % CI" at 0.5."""
    return f"{100 * (1 - float(alpha)):.6g} % CI"
