"""Captum's attribution methods as method classes: Integrated Gradients, GradientShap,
DeepLift and Occlusion, all relative to the reference input (or the background sample)."""
from __future__ import annotations

import warnings

import torch

from midlevel.checks import whole_number
from midlevel.errors import AttributionError
from midlevel.explain.attribution.base import AttributionMethod, MethodResult


class IntegratedGradients(AttributionMethod):
    """Captum ``IntegratedGradients`` from the reference, ``n_steps`` steps."""

    name, label = "integrated_gradients", "Captum IntegratedGradients"
    deterministic = True

    def __init__(self, *, n_steps: int = 32, **options):
        super().__init__(**options)
        self.n_steps = whole_number(n_steps, "n_steps", error=AttributionError)

    def attribute(self, f, x, *, reference, background=None, clips=None) -> MethodResult:
        from captum.attr import IntegratedGradients as IG
        ig = IG(f)
        values = torch.cat([ig.attribute(x[i:i + 1], baselines=reference, target=0,
                                         n_steps=self.n_steps,
                                         internal_batch_size=self.batch_size).detach()
                            for i in range(len(x))])
        return MethodResult(values.cpu().numpy(), self.reference_output(f, reference))


class GradientShap(AttributionMethod):
    """Captum ``GradientShap``: baselines drawn from the background, ``n_samples`` each."""

    name, label = "gradient_shap", "Captum GradientShap"
    baseline_is_background = True

    def __init__(self, *, n_samples: int = 32, **options):
        super().__init__(**options)
        self.n_samples = whole_number(n_samples, "n_samples", error=AttributionError)

    def attribute(self, f, x, *, reference, background=None, clips=None) -> MethodResult:
        from captum.attr import GradientShap as GS
        gs = GS(f)
        values = torch.cat([gs.attribute(x[i:i + 1], baselines=background,
                                         n_samples=self.n_samples, stdevs=0.0,
                                         target=0).detach()
                            for i in range(len(x))])
        return MethodResult(values.cpu().numpy(), self.reference_output(f, background))


class DeepLift(AttributionMethod):
    """Captum ``DeepLift`` from the reference."""

    name, label = "deeplift", "Captum DeepLift"
    deterministic = True

    def attribute(self, f, x, *, reference, background=None, clips=None) -> MethodResult:
        from captum.attr import DeepLift as DL
        dl = DL(f)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]etting forward, backward hooks.*")
            warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
            values = dl.attribute(x, baselines=reference.expand_as(x).contiguous(),
                                  target=0).detach()
        return MethodResult(values.cpu().numpy(), self.reference_output(f, reference))


class Occlusion(AttributionMethod):
    """Captum ``Occlusion``: patches of ``window`` (bands, frames) every ``stride`` replaced
    by the reference."""

    name, label = "occlusion", "Captum Occlusion"
    deterministic = True

    def __init__(self, *, window: tuple[int, int] = (16, 32),
                 stride: tuple[int, int] | None = None, **options):
        super().__init__(**options)
        self.window = whole_number(window, "window", size=2, error=AttributionError)
        self.stride = whole_number(stride or window, "stride", size=2, error=AttributionError)

    def attribute(self, f, x, *, reference, background=None, clips=None) -> MethodResult:
        from captum.attr import Occlusion as Occ
        occ = Occ(f)
        wb, wt = min(self.window[0], x.shape[2]), min(self.window[1], x.shape[3])
        sb, st = min(self.stride[0], wb), min(self.stride[1], wt)
        values = torch.cat([occ.attribute(x[i:i + 1], sliding_window_shapes=(1, wb, wt),
                                          strides=(1, sb, st), baselines=reference, target=0,
                                          perturbations_per_eval=self.batch_size).detach()
                            for i in range(len(x))])
        return MethodResult(values.cpu().numpy(), None)
