"""Training data that streams from the feature cache (placeholder; filled in below)."""
from __future__ import annotations

import re

from midlevel.errors import TrainingError

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "t": 1e12, "tb": 1e12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}


def parse_bytes(value, *, where: str = "max_memory") -> int:
    """``2GB``, ``512MiB``, ``1.5e9`` or an int -> bytes; TrainingError naming ``where``."""
    if isinstance(value, bool):
        raise TrainingError(f"{where}: expected bytes or a size such as '2GB', got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise TrainingError(f"{where}: a memory budget cannot be negative, got {value!r}")
        return int(value)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise TrainingError(f"{where}: expected bytes or a size such as '2GB' or '512MiB', got "
                            f"{value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
