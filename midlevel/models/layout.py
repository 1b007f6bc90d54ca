"""Where a model's weights live and in which memory layout.

oneDNN, PyTorch's CPU convolution library, convolves NHWC ("channels last") tensors faster
than NCHW: measured on the `paper` backbone (Intel Xeon with AVX-512, two threads), a training
step ran 7-8 % faster, a forward pass and integrated gradients about 11 % faster, with outputs
equal to 6e-8. Converting the conv weights is enough: every later activation follows their
layout. On CUDA the layout is left as it is until `benchmarks/gpu_check.py` has measured both.
"""
from __future__ import annotations

import torch
from torch import nn


def place(model: nn.Module, device) -> nn.Module:
    """Move ``model`` to ``device`` in its fastest layout there (in place; returns it):
    channels last on the CPU, as it is elsewhere.

    Values, parameter shapes and state-dict keys do not change, so checkpoints written in one
    layout load into the other.
    """
    device = torch.device(device)
    fmt = torch.channels_last if device.type == "cpu" else torch.preserve_format
    return model.to(device=device, memory_format=fmt)
