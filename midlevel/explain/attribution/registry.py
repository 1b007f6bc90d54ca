"""Which attribution methods exist: names, aliases, labels, and one class per method."""
from __future__ import annotations

import functools
import inspect

from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import AttributionMethod
from midlevel.explain.attribution.captum import (
    DeepLift, GradientShap, IntegratedGradients, Occlusion,
)
from midlevel.explain.attribution.gradcam import GradCAM
from midlevel.explain.attribution.lime import (
    LimeBands, LimeNMF, LimeOnsets, LimePatches, LimeSegments,
)
from midlevel.explain.attribution.lrp import LRP
from midlevel.explain.attribution.shap import ShapDeep, ShapGradient

CLASSES: dict[str, type[AttributionMethod]] = {
    cls.name: cls for cls in (ShapDeep, ShapGradient, IntegratedGradients, GradientShap,
                              DeepLift, Occlusion, LRP, GradCAM, LimeSegments, LimeOnsets,
                              LimeBands, LimePatches, LimeNMF)}
METHODS = tuple(CLASSES)
ALIASES = {"shap": "shap_deep", "deep_shap": "shap_deep", "deepshap": "shap_deep",
           "deep": "shap_deep", "gradient_explainer": "shap_gradient",
           "expected_gradients": "shap_gradient", "ig": "integrated_gradients",
           "gradshap": "gradient_shap", "deep_lift": "deeplift", "grad_cam": "gradcam",
           "lime": "lime_segments"}
LABELS = {name: cls.label for name, cls in CLASSES.items()}


def resolve_method(method: str) -> str:
    """Canonical method name (accepts the aliases in ``ALIASES``, any case, ``-`` for ``_``)."""
    key = str(method).lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in CLASSES:
        raise AttributionError(f"unknown attribution method '{method}'; methods are "
                               f"{list(METHODS)} (aliases {sorted(ALIASES)})")
    return key


@functools.lru_cache(maxsize=1)
def known_options() -> frozenset[str]:
    """Every setting some method class takes by name (its ``__init__`` and its bases'): the
    options one call may pass to several methods, each taking what it uses."""
    names = set()
    for cls in CLASSES.values():
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            names.update(p.name for p in inspect.signature(init).parameters.values()
                         if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
    return frozenset(names)


def make_method(method: str, **options) -> AttributionMethod:
    """An instance of ``method``'s class with ``options`` (each class takes what it uses).

    An option no method takes (a misspelled ``n_step``, a dict passed as ``options=``) is
    refused by name with the known ones: silently ignored, it would look as if it had acted."""
    unknown = sorted(set(options) - known_options())
    if unknown:
        raise AttributionError(f"unknown attribution option(s) {unknown}; the methods take "
                               f"{sorted(known_options())}")
    return CLASSES[resolve_method(method)](**options)
