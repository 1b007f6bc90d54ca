"""Grad-CAM (Selvaraju et al. 2017) on a conv layer, upsampled to the spectrogram's bins.

The map is captum's ``LayerGradCam`` at ``layer`` (default: the output of the last conv block,
i.e. the activation after the last ``Conv2d``; on the backbone the ReLU after the last
conv/BatchNorm): the channels' activations weighted by their spatially averaged gradients of
``f`` and summed over channels, with a ReLU (``relu=True``, the published method: only evidence
*for* a higher ``f``) or signed (``relu=False``). The coarse map (on the paper backbone about
1/16 of the bands and frames of the input) is upsampled to ``(n_bands, n_frames)`` with
``torch.nn.functional.interpolate`` (``interpolate_mode``, default bilinear; captum's
``LayerAttribution.interpolate`` is the same call).

Resolution and receptive field: on the backbone with ``last_kernel=3`` a unit of the last block
sees about 111 x 111 input bins. On a 10 s paper input (149 x 313) the last block's grid is
16 x 37; on the 32 x 48 planted-event toy it is 2 x 4 and each unit sees the whole input, so the
map carries almost no position there (measured 1.5x the event box's area share; an earlier block,
``layer="model.backbone.layers.10"``, 8 x 12, gives 7x). The same field makes the map's
position unreliable at clip size too: three event models trained alike from seeds 0-2, each
computing the event (R^2 0.90-0.92), got 5.6x, 0.00x and 3.0x, where Integrated Gradients got
9.7-11.7x (``benchmarks/event_deletion.py``); three more, trained to be right along the deletion
path too (seeds 3-5, ``benchmarks/posthoc_faithfulness.py``), got 3.8x, 0.98x and 2.6x, where
Integrated Gradients got 9.6-17x. On the second, checked apart from that script, even
the signed map (``relu=False``) has almost nothing in the box (mean 4e-6 against 2e-3 over the
clip): with units this wide, the evidence can sit in units away from the box.

Grad-CAM has no reference and no completeness: its values are not in output units and do not
sum to anything (``MethodResult.expected`` is None). ``tables["gradcam"]``: clip, layer,
cam_bands, cam_frames (the coarse map's size), field_bands, field_frames (how many input bins
one unit of the layer sees, :func:`receptive_field`; set them beside the input's size before
reading a position off the map), positive_sum, negative_sum.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import (
    AttributionMethod, MethodResult, WindowedOutput, frozen,
)

__all__ = ["GradCAM", "last_conv_block", "receptive_field"]

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)


def last_conv_block(f: nn.Module) -> tuple[str, nn.Module]:
    """``(name, module)`` of the output of the last conv block of ``f``: the first activation
    after the last ``Conv2d`` (in registration order, which is forward order on the package's
    models), else the last module before the next pool/linear/flatten, else the conv itself."""
    leaves = [(n, m) for n, m in f.named_modules() if next(m.children(), None) is None]
    convs = [i for i, (_, m) in enumerate(leaves) if isinstance(m, nn.Conv2d)]
    if not convs:
        raise AttributionError("Grad-CAM needs a Conv2d layer; the model has none")
    i = convs[-1]
    chosen = leaves[i]
    for n, m in leaves[i + 1:]:
        if isinstance(m, _ACTIVATIONS):
            return n, m
        if isinstance(m, (nn.Linear, nn.Flatten, nn.MaxPool2d, nn.AvgPool2d,
                          nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            break
        chosen = (n, m)
    return chosen


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def receptive_field(f: nn.Module, layer: str) -> tuple[int, int] | None:
    """``(bands, frames)``: how many input bins one unit of ``layer`` sees, from the kernels,
    strides and dilations of the conv and pooling leaves up to it (in registration order, the
    forward order of the package's sequential backbones). None when a leaf before it changes
    the grid in another way (adaptive pooling, upsampling, a layer not found): a field this
    walk cannot compute is not guessed."""
    field, jump = [1, 1], [1, 1]
    for name, m in f.named_modules():
        if next(m.children(), None) is not None:
            continue
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, st = _pair(m.kernel_size), _pair(m.stride or m.kernel_size)
            d = _pair(getattr(m, "dilation", 1))
            for a in range(2):
                field[a] += (k[a] - 1) * d[a] * jump[a]
                jump[a] *= st[a]
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Upsample,
                            nn.ConvTranspose2d)):
            return None
        if name == layer:
            return field[0], field[1]
    return None


class GradCAM(AttributionMethod):
    """Grad-CAM of a scalar ``f`` at a conv layer, upsampled to the input's bands and frames.

    Parameters
    ----------
    layer : an ``nn.Module`` inside ``f``, its name (``f.get_submodule``), or None (the last
        conv block's output, :func:`last_conv_block`).
    relu : keep only positive evidence (the published Grad-CAM) or return the signed map.
    interpolate_mode : ``F.interpolate`` mode for the upsampling ("bilinear", "nearest"...).
    batch_size : inputs per backward pass.
    """

    name = "gradcam"
    label = "Grad-CAM (captum, last conv block)"
    deterministic = True

    def __init__(self, *, layer=None, relu: bool = True, interpolate_mode: str = "bilinear",
                 batch_size: int = 16, **options):
        super().__init__(batch_size=batch_size)
        self.layer = layer
        self.relu = bool(relu)
        self.interpolate_mode = interpolate_mode
        self.batch_size = int(batch_size)

    def _layer(self, f: nn.Module) -> tuple[str, nn.Module]:
        if self.layer is None:
            cached = getattr(self, "_last_block", None)
            if cached is None or cached[0] is not f:
                self._last_block = (f, last_conv_block(f))
            return self._last_block[1]
        if isinstance(self.layer, str):
            return self.layer, f.get_submodule(self.layer)
        name = next((n for n, m in f.named_modules() if m is self.layer), None)
        if name is None:
            raise AttributionError("the Grad-CAM layer is not a submodule of the explained model")
        return name, self.layer

    def attribute(self, f: nn.Module, x: torch.Tensor, *, reference: torch.Tensor = None,
                  background: torch.Tensor | None = None, clips=None) -> MethodResult:
        """Upsampled Grad-CAM maps ``(batch, 1, n_bands, n_frames)`` (``reference`` and
        ``background`` are not used: Grad-CAM has no reference).

        For a :class:`~midlevel.explain.attribution.base.WindowedOutput` (the mean over
        ``predict``'s windows) each window gets its own Grad-CAM, upsampled to the window and
        placed at its frames; the clip's map is their sum over the number of windows (the
        output is their mean).
        """
        from captum.attr import LayerGradCam
        if isinstance(f, WindowedOutput):
            return self._windowed(f, x)

        name, layer = self._layer(f)
        x = torch.as_tensor(x, dtype=torch.float32).detach()
        # f's parameters, listed once per function (module.to moves a parameter in place, so
        # the first one's device follows the model)
        params = self.cached(("parameters", f), lambda: list(f.parameters()))
        device = params[0].device if params else torch.device("cpu")
        was_training = f.training
        if was_training:
            f.eval()
        try:
            cam = self.cached(("layer_gradcam", f, layer), lambda: LayerGradCam(f, layer))
            with frozen(params):  # no graph for the forward pass up to the layer
                parts = [cam.attribute(x[a:a + self.batch_size].to(device), target=0,
                                       relu_attributions=self.relu).detach().cpu()
                         for a in range(0, len(x), self.batch_size)]
            coarse = parts[0] if len(parts) == 1 else torch.cat(parts)
        finally:
            if was_training:
                f.train()
        kw = {} if self.interpolate_mode in ("nearest", "area") else {"align_corners": False}
        up = F.interpolate(coarse, size=tuple(x.shape[-2:]), mode=self.interpolate_mode, **kw)
        values = up.numpy().astype(np.float32, copy=False)
        shape = tuple(coarse.shape[-2:])

        def table() -> pd.DataFrame:
            flat = values.reshape(len(values), -1)
            fb, ff = receptive_field(f, name) or (np.nan, np.nan)
            return pd.DataFrame({"clip": [f"clip{i}" for i in range(len(values))],
                                 "layer": name, "cam_bands": shape[0], "cam_frames": shape[1],
                                 "field_bands": fb, "field_frames": ff,
                                 "positive_sum": np.clip(flat, 0, None).sum(1),
                                 "negative_sum": np.clip(flat, None, 0).sum(1)})
        return MethodResult(values=values, expected=None, tables={"gradcam": table})

    def _windowed(self, f: "WindowedOutput", x) -> MethodResult:
        from midlevel.training.data import window_starts
        x = torch.as_tensor(x, dtype=torch.float32).detach()
        n, total = f.n_frames, x.shape[-1]
        if total < n:
            x = F.pad(x, (0, n - total))
        starts = window_starts(x.shape[-1], n, f.hop)
        values = np.zeros(tuple(x.shape), dtype=np.float32)
        parts = []
        for s in starts:
            part = self.attribute(f.f, x[..., s:s + n])
            values[..., s:s + n] += part.values
            parts.append((s, part))
        values /= len(starts)

        def table() -> pd.DataFrame:
            return pd.concat([p.tables["gradcam"].assign(window_start=s) for s, p in parts],
                             ignore_index=True)
        return MethodResult(values=values[..., :total], expected=None,
                            tables={"gradcam": table})
