"""``Attributor``: one method for one scalar output of a model, and ``attribute`` (one call).

It resolves the output, builds the :class:`~midlevel.explain.attribution.base.OutputSelector`,
the reference (``baseline``) and background inputs, times the method's ``attribute`` and wraps
the values into an :class:`~midlevel.explain.attribution.result.Attribution`.
"""
from __future__ import annotations

import contextlib
import importlib
import time

import numpy as np
import torch
from torch import nn

from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import (
    OutputSelector, RatingOutput, WindowedOutput, output_units, resolve_output,
)
from midlevel.explain.attribution.registry import make_method, resolve_method
from midlevel.explain.attribution.result import Attribution
from midlevel.training.data import fit_frames


class Attributor:
    """One attribution method for one scalar output of a model; one verb: :meth:`attribute`.

    Parameters
    ----------
    model : nn.Module
        A midlevel model, or any module mapping ``(batch, 1, n_bands, n_frames)`` to
        ``(batch, n_outputs)`` / ``ModelOutput``. It is put in eval mode.
    method : str
        One of ``METHODS`` (or an alias).
    output : see :func:`~midlevel.explain.attribution.base.resolve_output`.
    background : torch.Tensor [shape=(n, 1, n_bands, n_frames')] or None
        Reference sample (SHAP, GradientShap, baselines); cropped or tiled to each input's
        length. None: a silent (all-zero) reference.
    baseline : "mean" (of the background), "zero", a float, or a tensor broadcastable to
        one input: the reference of IG, DeepLift and Occlusion.
    fps, band_frequencies : axis metadata copied into the result.
    windows : ``(n_frames, hop)`` (:meth:`midlevel.run.Run.window`): explain the mean over the
        windows that ``Run.predict`` averages, i.e. the number it reports for the whole clip
        (in the model's own units, z-scored for a regression output; the result's
        ``in_rating_units()`` is in ``predict``'s); None: the model on the input as one window.
    autocast : bfloat16 autocast around the method on a CUDA device (faster, less exact;
        ignored on the CPU).
    options : the method's settings (``n_steps``, ``n_samples``, ``window``, ``stride``,
        ``check_additivity``, ``batch_size``, ``seed``; each class takes what it uses).
    """

    def __init__(self, model: nn.Module, method: str = "shap_deep", *, output=None,
                 background: torch.Tensor | None = None, baseline="mean",
                 fps: float | None = None, band_frequencies=None,
                 windows: tuple[int, int] | None = None, autocast: bool = False, **options):
        self.method = resolve_method(method)
        model.eval()
        self.model = model
        self._first_parameter = next(model.parameters(), None)  # its device: see ``device``
        self.kind, self.index, self.output = resolve_output(model, output)
        self.selector = OutputSelector(model, self.kind, self.index).eval()
        self.units, self.rating = output_units(model, self.kind, self.index)
        if windows is not None:
            self.selector = WindowedOutput(self.selector, *windows).eval()
        self.background = None if background is None else torch.as_tensor(
            background, dtype=torch.float32)
        if self.background is not None and self.background.ndim == 3:
            self.background = self.background.unsqueeze(1)
        self.baseline = baseline
        self.fps, self.band_frequencies = fps, band_frequencies
        self.options = options
        self.seed = int(options.get("seed", 0))
        self.impl = make_method(self.method, **options)
        self.autocast = bool(autocast)
        self._inputs: dict = {}

    @property
    def rating_selector(self) -> torch.nn.Module:
        """The explained output in the units ``Run.predict`` reports (:attr:`selector` when
        they are its own): for tables a user reads beside
        :meth:`Attribution.in_rating_units`."""
        if self.rating is None:
            return self.selector
        return RatingOutput(self.selector, *self.rating[:2]).eval()

    @property
    def device(self) -> torch.device:
        """Where the model's parameters live; inputs are moved there, results come back.

        Read from the model's first parameter, kept at construction (``module.to`` moves a
        parameter's data in place, so this follows the model; walking ``parameters()`` on
        every call costs as much as a Grad-CAM map's upsampling)."""
        p = self._first_parameter
        return p.device if p is not None else torch.device("cpu")

    def background_for(self, x: torch.Tensor) -> torch.Tensor:
        """The background cropped or tiled to ``x``'s length, on the model's device (built
        once per length)."""
        key = ("background", tuple(x.shape[1:]))
        if key not in self._inputs:
            self._inputs[key] = self._background_for(x)
        return self._inputs[key]

    def _background_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.background is None:
            return torch.zeros((2,) + tuple(x.shape[1:]), device=self.device)
        bg = fit_frames(self.background, x.shape[-1])
        if bg.shape[1:] != x.shape[1:]:
            raise AttributionError(f"background shape {tuple(bg.shape[1:])} does not match the "
                                   f"input's {tuple(x.shape[1:])}")
        return bg.to(self.device)

    def reference_for(self, x: torch.Tensor) -> torch.Tensor:
        """The reference input ``(1, 1, n_bands, n_frames)`` (``baseline``; built once per
        length)."""
        key = ("reference", tuple(x.shape[1:]))
        if key not in self._inputs:
            self._inputs[key] = self._reference_for(x)
        return self._inputs[key]

    def removal_reference(self, x: torch.Tensor) -> torch.Tensor:
        """What the method's values are relative to, as inputs to remove evidence to:
        :meth:`background_for` ``(n, 1, n_bands, n_frames)`` for a method whose ``expected`` is
        the mean output over the background (``baseline_is_background``: SHAP, GradientShap;
        ``f(reference)`` differs from that mean wherever ``f`` is not linear), else
        :meth:`reference_for` ``(1, 1, n_bands, n_frames)``. Listen-back averages ``f`` over
        these inputs (:func:`midlevel.explain.listen_back.listen_back`)."""
        if getattr(self.impl, "baseline_is_background", False):
            return self.background_for(x)
        return self.reference_for(x)

    def _reference_for(self, x: torch.Tensor) -> torch.Tensor:
        b = self.baseline
        if isinstance(b, str):
            if b == "mean":
                return self.background_for(x).mean(0, keepdim=True)
            if b == "zero":
                return torch.zeros((1,) + tuple(x.shape[1:]), device=self.device)
            raise AttributionError(f"baseline must be 'mean', 'zero', a number or a tensor, "
                                   f"got '{b}'")
        if isinstance(b, (int, float)):
            return torch.full((1,) + tuple(x.shape[1:]), float(b), device=self.device)
        b = torch.as_tensor(b, dtype=torch.float32)
        b = fit_frames(b.reshape((1,) + tuple(x.shape[1:-1]) + (b.shape[-1],)), x.shape[-1])
        return b.to(self.device)

    def _seeded(self, xd, reference, background, clips, cuda):
        """The method under torch and numpy seeded with ``seed``, on forked generators: the
        caller's random state is left as it was (and torch.manual_seed's lazy CUDA seeding,
        1 ms a call on a CPU, is not paid)."""
        numpy_state = np.random.get_state()  # captum's GradientShap and SHAP draw from numpy
        try:
            with torch.random.fork_rng(devices=cuda):
                torch.default_generator.manual_seed(self.seed)
                np.random.seed(self.seed)
                if cuda:
                    torch.cuda.manual_seed(self.seed)
                return self.impl.attribute(self.selector, xd, reference=reference,
                                           background=background, clips=clips)
        finally:
            np.random.set_state(numpy_state)

    def attribute(self, x, *, clips=None) -> Attribution:
        """Attribute the output for ``x`` ``(batch, 1, n_bands, n_frames)`` (or
        ``(n_bands, n_frames)`` / ``(batch, n_bands, n_frames)``).

        Runs on the model's device; explainers (SHAP) and reference outputs are built on the
        first call for an input length and reused by later calls of this ``Attributor``.
        """
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32)
        x = x.detach().cpu()
        if x.ndim == 2:
            x = x[None, None]
        elif x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] != 1:
            raise AttributionError(f"expected inputs of shape (batch, 1, n_bands, n_frames), "
                                   f"got {tuple(x.shape)}")
        clips = _clip_names(clips, len(x))
        if self.method.startswith("shap"):
            import shap  # noqa: F401  (imported before the clock starts: it takes seconds)
        else:
            import captum.attr  # noqa: F401
        # torch imports this module (and sympy), about 0.6 s, on the first max_unpool2d of a
        # process (DeepLift, SHAP Deep, LRP and LIME reach it): not part of any method's cost,
        # it made the first model a compare explained look 10-20x slower than the next
        importlib.import_module("torch.fx.experimental.symbolic_shapes")
        xd = x.to(self.device)
        reference, background = self.reference_for(xd), self.background_for(xd)
        cuda = [xd.device] if xd.device.type == "cuda" else []
        start = time.perf_counter()
        # entering a disabled autocast context costs ~30 us a call: only enter it when it acts
        amp = (torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast and cuda
               else contextlib.nullcontext())
        with amp:
            if self.impl.deterministic:
                result = self.impl.attribute(self.selector, xd, reference=reference,
                                             background=background, clips=clips)
            else:
                result = self._seeded(xd, reference, background, clips, cuda)
        seconds = time.perf_counter() - start
        values = np.asarray(result.values, dtype=np.float32)
        if values.ndim == x.ndim + 1:  # SHAP stacks outputs on a last axis
            values = values[..., 0]
        values = values.reshape(x.shape)
        options = {"n_steps": getattr(self.impl, "n_steps", None),
                   "n_samples": getattr(self.impl, "n_samples", None),
                   "window": getattr(self.impl, "window", None),
                   "stride": getattr(self.impl, "stride", None),
                   "n_background": 0 if self.background is None else len(self.background)}
        return Attribution(values=values, inputs=x.numpy(), predictions=None,
                           predict_fn=lambda: self.impl.predict(self.selector, xd),
                           expected=result.expected, method=self.method, output=self.output,
                           output_kind=self.kind, seconds=seconds, fps=self.fps,
                           band_frequencies=self.band_frequencies,
                           clips=list(clips) if clips is not None else [], options=options,
                           tables=result.tables, units=self.units, rating=self.rating,
                           padding=result.padding)


def _clip_names(clips, batch: int) -> list[str] | None:
    """``clips`` as one distinct name per input (AttributionError otherwise: a wrong count
    failed later in a marginal's IndexError, and repeated names merged rows; audit 23b)."""
    if clips is None:
        return None
    names = [clips] if isinstance(clips, str) else [str(c) for c in clips]
    if len(names) != batch:
        raise AttributionError(f"clips: {len(names)} name(s) for {batch} input(s); give one "
                               f"name per input")
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise AttributionError(f"clips: names repeated ({', '.join(repeated)}); give each "
                               f"input its own")
    return names


def attribute(model: nn.Module, x, *, method: str = "shap_deep", output=None,
              background=None, clips=None, **options) -> Attribution:
    """Attribute one output of ``model`` for spectrograms ``x`` (see :class:`Attributor`).

    Returns
    -------
    Attribution with ``values`` shaped like ``x`` (``(batch, 1, n_bands, n_frames)``).
    """
    return Attributor(model, method, output=output, background=background,
                      **options).attribute(x, clips=clips)
