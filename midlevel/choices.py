"""The named choices the commands offer, importable without torch, pandas or captum.

Building the command line (``midlevel --help``, ``--version``, a usage error) reads these to
list its choices; the modules that act on them (:mod:`midlevel.training.config`,
:mod:`midlevel.explain.multiplicity`, :mod:`midlevel.workflows.compare`) import them from here,
so there is one definition and the parser imports none of the heavy libraries.
"""
from __future__ import annotations

__all__ = ["MODES", "CORRECTIONS", "COMPARE_METHODS"]

#: Training modes: an unconstrained black box, or a concept bottleneck trained in one of three ways.
MODES = ("blackbox", "independent", "sequential", "joint")

#: Multiple-comparison corrections of the coefficient tables' p-values and intervals.
CORRECTIONS = ("none", "bonferroni", "holm", "fdr_bh")

#: The attribution methods ``midlevel compare`` runs unless ``--methods`` names others.
COMPARE_METHODS = ("shap_deep", "shap_gradient", "integrated_gradients", "gradient_shap",
                   "deeplift", "occlusion")
