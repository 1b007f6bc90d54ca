"""Models: the paper's VGG-style backbone, the concept bottleneck and the black box."""
from midlevel.models.backbone import PRESETS, Backbone, Standardize, preset  # noqa: F401
from midlevel.models.bottleneck import (  # noqa: F401
    BlackBox, ConceptBottleneck, ModelOutput, build_model, output_names,
)
from midlevel.models.layout import place  # noqa: F401
