"""midlevel: explainable audio machine learning through perceptual concepts.

Layout: ``midlevel.data`` (specs, audio, front ends, feature cache), ``midlevel.synth`` (the
synthetic world), ``midlevel.models`` (backbone, bottleneck, black box), ``midlevel.training``,
``midlevel.run`` (a trained run, loaded), ``midlevel.explain`` (coefficients, contributions,
attributions), ``midlevel.workflows`` (explain and compare end to end), ``midlevel.plots``,
``midlevel.report``, ``midlevel.testing`` (the planted-event task and toys) and
``midlevel.cli``.
"""
__version__ = "0.1.0"

from midlevel.errors import (  # noqa: F401
    AudioError, CacheError, CheckpointError, DataError, MidlevelError, SpecError,
    TrainingError, ValidationFailed,
)
