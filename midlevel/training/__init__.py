"""Training, evaluation and prediction.

``train(spec, out, mode=...)`` trains from a data spec; ``fit(table, features, columns, out,
config, fps=...)`` from in-memory data; ``load_run(out)`` gives a :class:`midlevel.run.Run`
whose ``predict`` returns a DataFrame and whose ``evaluate`` gives the metrics table.

Names are imported on first use (PEP 562), so importing one module of this package does not
import all of them: modules inside the package import from the module that defines a name.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Columns": "midlevel.training.data", "MODES": "midlevel.training.config",
    "TrainConfig": "midlevel.training.config", "fit": "midlevel.training.loop",
    "format_table": "midlevel.training.metrics", "metrics_table": "midlevel.training.metrics",
    "train": "midlevel.training.from_spec", "Run": "midlevel.run", "load_run": "midlevel.run",
    "evaluate": "midlevel.training.from_spec",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'midlevel.training' has no attribute '{name}'")
