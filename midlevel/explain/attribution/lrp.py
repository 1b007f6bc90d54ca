"""Layer-wise relevance propagation (LRP) through zennit, for the VGG-style spectrogram CNN.

What is propagated
------------------
The relevance at the output is the explained output itself, ``R = f(x)``; each layer hands its
relevance down to its inputs by a rule, and the input map ``R`` ``(batch, 1, n_bands,
n_frames)`` decomposes ``f(x)``. LRP has no reference input: its root is a zero output, so
``MethodResult.expected`` is 0 (with ``zero_bias``) and the ``reference`` of the contract is used
only for the ``zbox`` first-layer bounds. The map is relevance for ``f(x)``, not a contribution to
``f(x) - f(reference)`` as with integrated gradients, DeepLIFT or SHAP.

How the backbone is canonized
-----------------------------
- ``Standardize`` (``(x - mean) / std``, elementwise) gets zennit's ``Pass`` rule: the relevance
  of a standardized bin is the relevance of the raw bin. Without it autograd would scale every
  relevance by ``1 / std`` and the map would no longer sum to ``f(x)`` (measured: 3.6x off).
- Every ``BatchNorm2d`` is merged into the ``Conv2d`` before it (zennit
  ``SequentialMergeBatchNorm``; the backbone is an ``nn.Sequential`` of ``Conv2d(bias=False) ->
  BatchNorm2d -> ReLU`` in forward order, which is what that canonizer needs). The merged conv
  gets a bias; the canonizer undoes the merge on exit (the model's outputs are unchanged; the
  merged network's outputs differ from the original's by float32 rounding, ~1e-4).
- ReLU: ``Pass`` (relevance flows through unchanged); Dropout is the identity in eval mode (the
  model is put in eval mode for the call and its mode restored); max-pool: the gradient
  (winner takes all); adaptive average pool: zennit's ``Norm`` rule; Flatten: the identity.
- Any other leaf module raises :class:`~midlevel.explain.attribution.AttributionError`: an
  unknown module would be crossed by the plain gradient and silently break conservation.

Rules (``composite=``)
----------------------
=========================  ==============================================================
``"epsilon_plus"``         z+ (zennit ``ZPlus``: positive contributions, both input signs) in
                           every conv including the first; epsilon in linear layers (default)
``"epsilon_plus_flat"``    as above with the ``Flat`` rule in the first conv (input-independent
                           spreading over the receptive field: blurrier)
``"epsilon_gamma_box"``    z^B (``ZBox``) in the first conv, gamma (0.25) in the others,
                           epsilon in linear layers; bounds from ``bounds`` or from the min and
                           max of the inputs, the reference and the background
``"epsilon_alpha2_beta1"`` alpha=2, beta=1 in every conv, epsilon in linear layers
=========================  ==============================================================

Measured on the planted-event task (``EventTask``, 30 clips with a clear event):
``epsilon_plus`` puts 13.7x (min 8.4x) the event box's area share of positive relevance in the
box; ``epsilon_plus_flat`` 8.1x; ``epsilon_gamma_box`` 0.55x and, with ``zero_bias``, an
unstable conservation (errors up to 20x ``f(x)``: the merged BatchNorm biases keep units active
whose bias-free pre-activation, the gamma rule's denominator, is near zero). Under cascading
parameter randomization the z+ maps change little (see :mod:`~midlevel.explain.sanity`).

``zero_bias=True`` (default) makes every rule ignore the biases (including the ones the
BatchNorm merge creates), so each layer conserves relevance and ``sum(R) = f(x)`` up to the
stabilizers: the map distributes all of ``f(x)`` over the input. With ``zero_bias=False`` the
biases absorb part of the relevance (about 20 % on the event-task model) and ``sum(R)``
falls short of ``f(x)`` by that much; the conservation table reports it either way.

A clip shorter than the model's window is padded with zeros (silence) to the window, as
``predict`` pads it (:class:`~midlevel.explain.attribution.base.WindowedOutput`). The model
reads the padding too, and relevance reaches it: that share of ``f(x)`` is not on the clip's
bins. It is propagated here on the padded input and reported as ``padding_relevance`` (the
map covers the clip's frames only, so its sum, and the additivity gap of the attribution
summary, fall short of ``f(x)`` by it: the padding took 66-90 % of ``f(x)`` on 3-s clips of
a 10-s window of a small trained model, audit 8a). Before, it was dropped in the padding's
backward and read as a conservation error of that size.

Over the windows ``predict`` averages (:class:`~midlevel.explain.attribution.base.
WindowedOutput`), each window is propagated from its own share ``f_w / n_windows`` of the mean
and the windows' maps are added where they lie: the mean is a linear layer without bias, whose
rule hands each window exactly that share.

With ``zero_bias`` a layer's relevance is spread in proportion to its inputs' bias-free
contributions ``z_j``, divided by their sum: where that sum is near 0 while the output is not
(a head whose bias carries ``f(x)``), relevance of both signs is magnified without bound while
the map still sums to ``f(x)`` (``f = W x + b``: the map is ``W x * f / (W x)``, 700x ``W x``
where ``W x`` is 0.001; audit 15a). The conservation table's ``amplification`` (the map's
absolute relevance over ``|f(x)|``) shows it, and with ``zero_bias`` a warning names clips
above ``AMPLIFIED`` (10x; trained event-task models read 1.00-1.51). Without ``zero_bias`` a
large ratio is evidence of both signs that cancels, as the map shows it.

Conservation table (``tables["conservation"]``): clip, method, composite, zero_bias, output
(``f(x)`` of the untouched model), relevance_sum (over the clip's bins), padding_relevance
(over the padding of a clip shorter than the window, else 0), absolute_error
``|relevance_sum + padding_relevance - output|``, relative_error (``absolute_error /
|output|``; large when ``f(x)`` is near 0, read the absolute error there), amplification
(``sum |R| / |output|``, padding included: 1 where every bin's relevance has the output's sign).

captum's ``LRP`` is not used: it has no rule for ``Standardize`` (it raises), applies the
epsilon rule to BatchNorm instead of merging it, and offers no z+/z^B first-layer choice.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import (
    AttributionMethod, MethodResult, WindowedOutput, output_description,
)
from midlevel.models.backbone import Standardize

__all__ = ["LRP", "COMPOSITES", "lrp_composite", "unsupported_modules"]

COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1")

# leaf modules LRP knows how to cross on this package's models
_PASSIVE = (nn.Dropout, nn.Flatten, nn.Identity)


def unsupported_modules(f: nn.Module) -> list[str]:
    """Names of the leaf modules of ``f`` that no LRP rule here covers (empty = all covered)."""
    from zennit.types import Activation, AvgPool, BatchNorm, Convolution, Linear, MaxPool
    known = (Standardize, Convolution, Linear, BatchNorm, Activation, AvgPool, MaxPool) + _PASSIVE
    bad = []
    for name, m in f.named_modules():
        if next(m.children(), None) is None and not isinstance(m, known):
            bad.append(f"{name or '<root>'} ({type(m).__name__})")
    return bad


def lrp_composite(composite: str = "epsilon_plus", *, epsilon: float = 1e-6,
                  gamma: float = 0.25, stabilizer: float = 1e-6, zero_bias: bool = True,
                  low=None, high=None):
    """The zennit composite for ``composite`` (see the module docstring), with the
    ``Standardize`` pass rule and the BatchNorm-merging canonizer.

    ``low``, ``high``: bounds of the *standardized* input for ``"epsilon_gamma_box"``.
    """
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite
    from zennit.rules import AlphaBeta, Epsilon, Flat, Gamma, Norm, Pass, ZBox, ZPlus
    from zennit.types import Activation, AvgPool, BatchNorm, Convolution

    if composite not in COMPOSITES:
        raise AttributionError(f"unknown LRP composite '{composite}'; composites are "
                               f"{list(COMPOSITES)}")
    zp = {"zero_params": ["bias"] if zero_bias else None}
    base = [(Standardize, Pass()), (Activation, Pass()), (AvgPool, Norm(stabilizer=stabilizer)),
            (BatchNorm, Pass())]
    linear = (nn.Linear, Epsilon(epsilon=epsilon, **zp))
    canonizers = [SequentialMergeBatchNorm()]
    if composite == "epsilon_plus":
        return LayerMapComposite(base + [(Convolution, ZPlus(stabilizer=stabilizer, **zp)), linear],
                                 canonizers=canonizers)
    if composite == "epsilon_alpha2_beta1":
        return LayerMapComposite(base + [(Convolution, AlphaBeta(alpha=2, beta=1,
                                                                 stabilizer=stabilizer, **zp)),
                                         linear], canonizers=canonizers)
    if composite == "epsilon_plus_flat":
        layer_map = base + [(Convolution, ZPlus(stabilizer=stabilizer, **zp)), linear]
        first = [(Convolution, Flat(stabilizer=stabilizer, **zp))]
    else:  # epsilon_gamma_box
        if low is None or high is None:
            raise AttributionError("the epsilon_gamma_box composite needs input bounds low, high")
        layer_map = base + [(Convolution, Gamma(gamma=gamma, stabilizer=stabilizer, **zp)), linear]
        first = [(Convolution, ZBox(low=low, high=high, stabilizer=stabilizer, **zp))]
    return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=first,
                                         canonizers=canonizers)


# relevance of both signs this many times |f(x)| is read as the bias-free denominators'
# instability, not as evidence (a linear head whose bias carries f(x) while W x is near 0:
# 700x on audit 15a's closed-form case)
AMPLIFIED = 10.0


def _warn_amplified(table: pd.DataFrame, output: str | None = None) -> None:
    """With ``zero_bias``, warn, naming the ``output`` explained (``"target 'fear'"``) and the
    clips, where the map's absolute relevance exceeds ``AMPLIFIED`` times ``|f(x)|`` (without
    it, a large ratio is evidence of both signs that cancels, which the map shows as it is)."""
    import logging
    big = table[(table["amplification"] > AMPLIFIED) & table["zero_bias"].astype(bool)]
    if len(big):
        logging.getLogger("midlevel").warning(
            "LRP%s: on %d clip(s) (%s) the relevance of both signs sums to more than %gx |f(x)| "
            "(up to %.3g x): with biases ignored, a layer whose bias-free sum is near zero while "
            "its output is not magnifies its relevance; compare with zero_bias=False before "
            "reading the map", f" of {output}" if output else "", len(big),
            ", ".join(big["clip"].astype(str)[:5]), AMPLIFIED,
            float(big["amplification"].max()))


def _standardizer(f: nn.Module) -> Standardize | None:
    return next((m for m in f.modules() if isinstance(m, Standardize)), None)


class LRP(AttributionMethod):
    """LRP of a scalar ``f`` with a zennit composite (BatchNorm merged, Standardize passed).

    Parameters
    ----------
    composite : one of ``COMPOSITES`` (default ``"epsilon_plus"``).
    zero_bias : rules ignore biases, so relevance is conserved (``sum(R) = f(x)``).
    epsilon : the epsilon of the linear layers' rule; gamma : of the gamma rule.
    bounds : (low, high) of the raw input for the z^B rule (default: min and max of the inputs,
        the reference and the background).
    batch_size : inputs per backward pass.
    """

    name = "lrp"
    label = "LRP (zennit)"
    deterministic = True

    def __init__(self, *, composite: str = "epsilon_plus", zero_bias: bool = True,
                 epsilon: float = 1e-6, gamma: float = 0.25, stabilizer: float = 1e-6,
                 bounds: tuple[float, float] | None = None, batch_size: int = 16, **options):
        super().__init__(batch_size=batch_size)
        if composite not in COMPOSITES:
            raise AttributionError(f"unknown LRP composite '{composite}'; composites are "
                                   f"{list(COMPOSITES)}")
        self.composite = composite
        self.zero_bias = bool(zero_bias)
        self.epsilon, self.gamma, self.stabilizer = float(epsilon), float(gamma), float(stabilizer)
        self.bounds = bounds
        self.batch_size = int(batch_size)
        self.label = f"LRP (zennit {composite}{', biases ignored' if zero_bias else ''})"

    def _bounds(self, f, x, reference, background):
        if self.composite != "epsilon_gamma_box":
            return None, None
        if self.bounds is not None:
            lo, hi = (float(v) for v in self.bounds)
        else:
            parts = [x, torch.as_tensor(reference)] + ([] if background is None
                                                       else [torch.as_tensor(background)])
            lo = min(float(p.min()) for p in parts)
            hi = max(float(p.max()) for p in parts)
        std = _standardizer(f)
        if std is not None:  # the first conv sees standardized inputs
            lo, hi = ((v - float(std.mean)) / float(std.std) for v in (lo, hi))
        return torch.tensor(lo), torch.tensor(hi)

    def _windowed(self, f: WindowedOutput, x: torch.Tensor, composite, device) -> np.ndarray:
        """Relevance of the window mean ``predict`` reports: each window's network output
        ``f_w`` propagated with the relevance ``f_w / n_windows`` (the mean is a linear layer
        without bias: its z-rule gives each window exactly its share), and the windows' maps
        added back where they lie in the clip (overlapping frames get both). Crossing the mean
        with the gradient gave every window ``f / n_windows`` instead: a window pushing the
        output down got positive relevance (audit 15a)."""
        from zennit.attribution import Gradient
        out = np.zeros(tuple(x.shape), dtype=np.float32)
        with Gradient(model=f.f, composite=composite) as attributor:
            for i in range(len(x)):
                windows, starts = f.windows(x[i:i + 1])
                n = len(starts)
                for a in range(0, n, self.batch_size):
                    wb = windows[a:a + self.batch_size].to(device).clone().requires_grad_(True)
                    _, relevance = attributor(wb, lambda o: o / n)
                    for k, r in enumerate(relevance.detach().cpu().numpy()):
                        s = starts[a + k]
                        out[i, ..., s:s + f.n_frames] += r
        return out

    def attribute(self, f: nn.Module, x: torch.Tensor, *, reference: torch.Tensor,
                  background: torch.Tensor | None = None, clips=None) -> MethodResult:
        """Relevance maps ``(batch, 1, n_bands, n_frames)`` for ``f(x)``; see the module
        docstring for the rules and the conservation table."""
        from zennit.attribution import Gradient

        bad = unsupported_modules(f)
        if bad:
            raise AttributionError(f"LRP has no rule for the module(s) {bad}; supported are "
                                   f"Standardize, Conv, Linear, BatchNorm, activations, pools, "
                                   f"Dropout, Flatten")
        x = torch.as_tensor(x, dtype=torch.float32).detach()
        n_frames = x.shape[-1]
        if isinstance(f, WindowedOutput):
            # a clip shorter than the window is padded here, not inside f, so the relevance
            # that reaches the padding is kept and reported, not dropped
            x = f.padded(x)
        p = next(f.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        was_training = f.training
        f.eval()
        try:
            with torch.no_grad():
                out = torch.cat([f(x[a:a + self.batch_size].to(device))
                                 for a in range(0, len(x), self.batch_size)])[:, 0].cpu()
            low, high = self._bounds(f, x, reference, background)
            composite = lrp_composite(self.composite, epsilon=self.epsilon, gamma=self.gamma,
                                      stabilizer=self.stabilizer, zero_bias=self.zero_bias,
                                      low=low, high=high)
            if isinstance(f, WindowedOutput):
                full = self._windowed(f, x, composite, device)
            else:
                maps = []
                with Gradient(model=f, composite=composite) as attributor:
                    for a in range(0, len(x), self.batch_size):
                        xb = x[a:a + self.batch_size].to(device).clone().requires_grad_(True)
                        _, relevance = attributor(xb, lambda o: o)  # R at the output = f(x)
                        maps.append(relevance.detach().cpu())
                full = torch.cat(maps).numpy().astype(np.float32)
        finally:
            f.train(was_training)
        values = np.ascontiguousarray(full[..., :n_frames])
        total = values.reshape(len(values), -1).sum(1).astype(np.float64)
        padding = full[..., n_frames:].reshape(len(full), -1).sum(1).astype(np.float64)
        output = out.numpy().astype(np.float64)
        err = np.abs(total + padding - output)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(np.abs(output) > 0, err / np.abs(output), np.inf)
        spread = np.abs(full).reshape(len(full), -1).sum(1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            amplification = np.where(np.abs(output) > 0, spread / np.abs(output), np.inf)
        names = (list(clips) if clips is not None and len(clips) == len(values)
                 else [f"clip{i}" for i in range(len(values))])
        table = pd.DataFrame({"clip": names, "method": self.name,
                              "composite": self.composite, "zero_bias": self.zero_bias,
                              "output": output, "relevance_sum": total,
                              "padding_relevance": padding,
                              "absolute_error": err, "relative_error": rel,
                              "amplification": amplification})
        _warn_amplified(table, output_description(f))
        return MethodResult(values=values, expected=0.0 if self.zero_bias else None,
                            tables={"conservation": table}, padding=padding)
