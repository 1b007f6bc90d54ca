"""Explanations of concept-bottleneck models (and, in ``attribution``, of black boxes).

Concept explanations (tidy pandas tables throughout):

- :mod:`~midlevel.explain.coefficients`: the head's weights with statsmodels statistics
  (``run_coefficients``, ``fit_ols``, ``bootstrap_ols``) and ground-truth checks;
- :mod:`~midlevel.explain.contributions`: per-clip contributions ``w * (c - baseline)``
  (``LinearHead``, ``explain_clips``, ``contributions``, ``baseline_concepts``);
- :mod:`~midlevel.explain.timeline`: contributions over time and change localization;
- :mod:`~midlevel.explain.interventions`: test-time interventions and intervention curves.
"""
from midlevel.explain.coefficients import (  # noqa: F401
    CoefficientResult, bootstrap_ols, compare_to_truth, fit_ols, run_coefficients,
)
from midlevel.explain.contributions import (  # noqa: F401
    LinearHead, baseline_concepts, contributions, explain_clips, split_predictions,
)
from midlevel.explain.interventions import intervene, intervention_curve  # noqa: F401
from midlevel.explain.timeline import contributions_over_time, locate_change  # noqa: F401
