"""midlevel: explainable audio machine learning through perceptual concepts.

Layout: ``midlevel.data`` (specs, audio, front ends, feature cache, synthetic world),
``midlevel.models`` (backbone, bottleneck, black box), ``midlevel.training``,
``midlevel.explain`` (coefficients, contributions, attributions), ``midlevel.plots``,
``midlevel.report`` and ``midlevel.cli``.
"""
__version__ = "0.1.0"

from midlevel.errors import (  # noqa: F401
    AudioError, CacheError, CheckpointError, DataError, MidlevelError, SpecError,
    TrainingError, ValidationFailed,
)
