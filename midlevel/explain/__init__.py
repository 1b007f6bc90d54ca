"""Explanations of concept-bottleneck models (and, in ``attribution``, of black boxes).

Concept explanations (tidy pandas tables throughout):

- :mod:`~midlevel.explain.coefficients`: both questions of a head's weights, what the model
  does and what the data show (``run_coefficients``), with :mod:`~.evidence`, :mod:`~.flags`,
  :mod:`~.leakage` and the statistics primitives of :mod:`~.statistics`;
- :mod:`~midlevel.explain.head`: per-clip contributions ``w * (c - baseline)``
  (``LinearHead``, ``explain_clips``, ``contributions``, ``baseline_concepts``);
- :mod:`~midlevel.explain.timeline`: contributions over time and change localization;
- :mod:`~midlevel.explain.interventions`: test-time interventions and intervention curves;
- :mod:`~midlevel.explain.truth`: the synthetic world's true map, and recovery figures.

Post-hoc explanations: :mod:`~midlevel.explain.attribution` (one class per method),
:mod:`~midlevel.explain.faithfulness`, :mod:`~midlevel.explain.listen`.

Names are imported on first use (PEP 562).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "CoefficientResult": "coefficient_result", "bootstrap_ols": "bootstrap",
    "fit_ols": "statistics",
    "compare_to_truth": "truth", "run_coefficients": "coefficients",
    "LinearHead": "head", "baseline_concepts": "head", "contributions": "head",
    "explain_clips": "head", "intervene": "interventions",
    "intervention_curve": "interventions", "contributions_over_time": "timeline",
    "locate_change": "timeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"midlevel.explain.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'midlevel.explain' has no attribute '{name}'")
