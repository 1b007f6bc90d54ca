"""The VGG-style CNN of Chowdhury et al. (ISMIR 2019), with a width multiplier.

Every nonlinearity, pool and dropout is its own ``nn`` module and nothing is in-place, so
forward hooks (SHAP DeepExplainer, Captum DeepLift/LRP) see every operation.
"""
from __future__ import annotations

import torch
from torch import nn

from midlevel.errors import TrainingError

# name -> keyword arguments of Backbone. "paper": the published network (~5 M parameters with
# its heads); "small": a quarter of the channels (~0.3 M), for quick CPU runs and tests.
PRESETS: dict[str, dict] = {
    "paper": {"width": 1.0, "last_kernel": 3},
    "small": {"width": 0.25, "last_kernel": 3},
}

# (out_channels, kernel, stride, padding) of every conv; "pool" = max-pool 2 then dropout.
_LAYERS = [(64, 5, 2, 2), (64, 3, 1, 1), "pool", (128, 3, 1, 1), (128, 3, 1, 1), "pool",
           (256, 3, 1, 1), (256, 3, 1, 1), (384, 3, 1, 1), (512, 3, 1, 1), (256, None, 1, 0)]


def preset(name: str) -> dict:
    """Backbone keyword arguments of the preset ``name`` ("paper" or "small")."""
    if name not in PRESETS:
        raise TrainingError(f"unknown preset '{name}'; presets are {sorted(PRESETS)}")
    return dict(PRESETS[name])


class Standardize(nn.Module):
    """``(x - mean) / std`` with one dataset-wide mean and std, kept as buffers."""

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Backbone(nn.Module):
    """Spectrogram -> embedding.

    Parameters
    ----------
    width : channel multiplier (1.0 = the paper's 64...512 channels).
    dropout : dropout after each max-pool (0.3 in the paper).
    last_kernel : kernel of the last conv (3 in the paper, 1 in a later re-run).

    Shapes: ``(batch, 1, n_bands, n_frames)`` -> ``(batch, out_features)``; needs at least
    about 20 bands and 20 frames.
    """

    def __init__(self, width: float = 1.0, dropout: float = 0.3, last_kernel: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for spec in _LAYERS:
            if spec == "pool":
                layers += [nn.MaxPool2d(2), nn.Dropout(dropout)]
                continue
            out, kernel, stride, pad = spec
            out = max(4, int(round(out * width)))
            layers += [nn.Conv2d(channels, out, kernel or last_kernel, stride, pad, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.layers = nn.Sequential(*layers)
        self.out_features = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
