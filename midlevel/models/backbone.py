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


def takes_input(model: nn.Module, n_bands: int, n_frames: int) -> bool:
    """Whether ``model`` takes an input ``(1, 1, n_bands, n_frames)``: one forward of zeros in
    eval mode (its mode is restored); False where a kernel or pool no longer fits."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, n_bands, n_frames, device=device))
    except RuntimeError:  # torch: "Kernel size can't be greater than actual input size", ...
        return False
    finally:
        model.train(was_training)
    return True


def fewest_frames(model: nn.Module, n_bands: int, high: int) -> int:
    """The fewest frames ``model`` takes with ``n_bands`` bands (its convolutions and pools
    shrink the input until a kernel no longer fits), by bisection with :func:`takes_input`
    between none and ``high`` frames, which it must take."""
    low = 0
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if takes_input(model, n_bands, mid) else (mid, high)
    return high


def last_conv_input(backbone: Backbone, n_bands: int, n_frames: int) -> tuple[int, int] | None:
    """``(rows, frames)`` of the input of ``backbone``'s last convolution (the one of
    ``last_kernel``, without padding) for an input of ``n_bands`` x ``n_frames``; None where an
    earlier layer no longer fits."""
    last = [m for m in backbone.modules() if isinstance(m, nn.Conv2d)][-1]
    seen = []
    handle = last.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0].shape))
    try:
        takes_input(backbone, n_bands, n_frames)
    finally:
        handle.remove()
    return (int(seen[0][2]), int(seen[0][3])) if seen else None
