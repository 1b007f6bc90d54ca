"""Attribution on spectrogram inputs: one class per method, one verb, one result type.

Any model taking ``(batch, 1, n_bands, n_frames)`` spectrograms works: a ``BlackBox`` or a
``ConceptBottleneck`` (explaining a target unit, or a concept unit of the bottleneck), or any
``nn.Module`` returning a tensor ``(batch, n_outputs)`` or a ``ModelOutput``.

===========================  ===================================================================
``shap_deep``                SHAP ``DeepExplainer`` (:class:`~.shap.ShapDeep`; additive:
                             attributions sum to output minus the background mean)
``shap_gradient``            SHAP ``GradientExplainer`` (:class:`~.shap.ShapGradient`)
``integrated_gradients``     Captum ``IntegratedGradients`` from the reference
``gradient_shap``            Captum ``GradientShap`` (baselines drawn from the background)
``deeplift``                 Captum ``DeepLift`` from the reference
``occlusion``                Captum ``Occlusion`` with a ``window`` (bands, frames) and ``stride``
``lrp``                      LRP through zennit, BatchNorm merged (:class:`~.lrp.LRP`; its
                             conservation error is reported)
``gradcam``                  Grad-CAM on the last conv block, upsampled to bands and frames
                             (:class:`~.gradcam.GradCAM`)
``lime_segments``,           LIME (captum ``LimeBase``) over interpretable components: time
``lime_onsets``,             segments, onset-aligned segments, frequency bands, patches, NMF
``lime_bands``,              parts of the clip's own spectrogram (:mod:`~.lime`,
``lime_patches``,            :mod:`~.components`, :mod:`~.nmf`); each component can be
``lime_nmf``                 written as audio
===========================  ===================================================================

The background (reference distribution) should come from the training split
(:meth:`midlevel.run.Run.background`); the reference input defaults to its mean.

Units: an attribution is made on the output as the model computes it ("standardized", the
z-scored rating of a regression target or concept; "logit" for a tag or a binary concept;
"centred logit" for a class: its logit minus its classes' mean, which the probabilities
fix); ``attr.in_rating_units()`` gives the units ``Run.predict`` reports (``mean + std *
z``, attributions times ``std``, exact), as every file the workflows write.

Example
-------
>>> attr = attribute(model, x, method="shap_deep", background=bg, output="valence",
...                  fps=31.25, band_frequencies=fe.band_frequencies)
>>> attr.values.shape  # x of shape (batch, 1, n_bands, n_frames); a 2-D or 3-D x gains axes
(batch, 1, n_bands, n_frames)
>>> attr.in_rating_units().time_marginal()  # tidy: clip, method, output, units, frame, ...

Names are imported on first use (PEP 562).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Attribution": "result", "MethodResult": "base", "AttributionMethod": "base",
    "OutputSelector": "base", "resolve_output": "base", "output_units": "base",
    "RatingOutput": "base", "METHODS": "registry",
    "ALIASES": "registry", "LABELS": "registry", "CLASSES": "registry",
    "resolve_method": "registry", "make_method": "registry", "Attributor": "attributor",
    "attribute": "attributor", "AttributionError": None,
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name == "AttributionError":
        from midlevel.errors import AttributionError
        return AttributionError
    if name in _EXPORTS:
        module = importlib.import_module(f"midlevel.explain.attribution.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'midlevel.explain.attribution' has no attribute '{name}'")
