"""SHAP's explainers as method classes: DeepExplainer and GradientExplainer.

Both are built once per explained function, input length and background (the explainer and
its expected value: building them runs the whole background through the model) and reused for
every later clip explained by the same instance with the same background.
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

from midlevel.checks import whole_number
from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import AttributionMethod, MethodResult


class ShapDeep(AttributionMethod):
    """SHAP ``DeepExplainer`` (DeepLIFT with a background distribution; additive: the
    attributions sum to the output minus the background mean)."""

    name, label = "shap_deep", "SHAP DeepExplainer"
    deterministic = True
    baseline_is_background = True

    def __init__(self, *, check_additivity: bool = True, **options):
        super().__init__(**options)
        self.check_additivity = check_additivity

    def attribute(self, f, x, *, reference, background=None, clips=None) -> MethodResult:
        import shap

        def make():
            with torch.no_grad():
                explainer = shap.DeepExplainer(f, background)
            return explainer, float(np.ravel(explainer.expected_value)[0])

        with shap_leftovers_removed(f):
            explainer, expected = self.cached(
                ("explainer", f, x.shape[-1], self.data_key(background)), make)
            with warnings.catch_warnings():
                # our Standardize module is affine: SHAP's pass-through of unknown modules
                # is exact
                warnings.filterwarnings("ignore", message="unrecognized nn.Module")
                values = [explainer.shap_values(x[i:i + 1],
                                                check_additivity=self.check_additivity)
                          for i in range(len(x))]
        return MethodResult(np.concatenate(values).reshape(x.shape), expected)


@contextlib.contextmanager
def shap_leftovers_removed(f: torch.nn.Module):
    """Inside: SHAP's DeepExplainer may hang what its forward hooks saw on ``f``'s modules
    (``module.x``, ``module.y``, as parameters); after: every parameter it added is removed.

    SHAP removes them only from modules inside torch's containers, so on a model whose
    layers sit in modules of its own they stayed: the user's model gained 22 trainable
    parameters (29 -> 51), its ``state_dict`` no longer loaded into a fresh copy of the run,
    and every cache keyed by its weights missed (audit 23b)."""
    before = {module: set(module._parameters) for module in f.modules()}
    try:
        yield
    finally:
        for module in f.modules():
            for name in ("x", "y"):
                if name in module._parameters and name not in before.get(module, ()):
                    del module._parameters[name]


class ShapGradient(AttributionMethod):
    """SHAP ``GradientExplainer`` (expected gradients over the background)."""

    name, label = "shap_gradient", "SHAP GradientExplainer"
    baseline_is_background = True

    def __init__(self, *, n_samples: int = 32, **options):
        super().__init__(**options)
        self.n_samples = whole_number(n_samples, "n_samples", error=AttributionError)

    def attribute(self, f, x, *, reference, background=None, clips=None) -> MethodResult:
        import shap

        def make():
            with torch.no_grad():  # the constructor only reads the output's shape
                explainer = shap.GradientExplainer(f, background, batch_size=self.batch_size)
            return explainer, float(self.predict(f, background).mean())

        explainer, expected = self.cached(
            ("explainer", f, x.shape[-1], self.data_key(background)), make)
        values = explainer.shap_values(x, nsamples=self.n_samples, rseed=self.seed)
        return MethodResult(np.asarray(values).reshape(x.shape), expected)
