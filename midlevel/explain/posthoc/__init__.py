"""Post-hoc explanation methods for spectrogram models, one class per method.

Every method explains a *scalar* function ``f`` of a spectrogram batch (an
:class:`~midlevel.explain.attribution.OutputSelector`: ``(batch, 1, n_bands, n_frames)`` ->
``(batch, 1)``) and returns a :class:`~midlevel.explain.posthoc.base.MethodResult`.
"""
