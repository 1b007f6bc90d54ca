"""The contract every post-hoc method class follows.

A method explains a scalar function ``f`` (an ``nn.Module`` mapping ``(batch, 1, n_bands,
n_frames)`` to ``(batch, 1)``, e.g. :class:`midlevel.explain.attribution.OutputSelector`) at
inputs ``x`` relative to a ``reference`` input (what "removing" a part of the input means: the
training background's mean spectrogram, never silence unless asked for).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn


@dataclass
class MethodResult:
    """What a method returns.

    Attributes
    ----------
    values : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
        Attribution per input bin (component methods spread each component's weight over its
        bins in proportion to the component's share of the bin).
    expected : float or None
        The reference output the attributions are relative to (``f(reference)`` or the
        background mean), when the method has one.
    tables : dict[str, pd.DataFrame]
        Method-specific tidy tables (LIME components and surrogate fit, LRP conservation...).
    """

    values: np.ndarray
    expected: float | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


class PosthocMethod:
    """Base class: ``name`` (registry key), ``label`` (for reports), ``attribute``."""

    name: str = ""
    label: str = ""

    def attribute(self, f: nn.Module, x: torch.Tensor, *, reference: torch.Tensor,
                  background: torch.Tensor | None = None) -> MethodResult:
        """Explain ``f`` at ``x`` ``(batch, 1, n_bands, n_frames)``.

        ``reference``: ``(1, 1, n_bands, n_frames)`` (or broadcastable); ``background``: a
        sample of training inputs ``(n, 1, n_bands, n_frames)`` for methods that need one.
        """
        raise NotImplementedError
