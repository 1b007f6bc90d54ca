"""Attribution on spectrogram inputs: SHAP and Captum behind one interface.

Any model taking ``(batch, 1, n_bands, n_frames)`` spectrograms works: a ``BlackBox`` or a
``ConceptBottleneck`` (explaining a target unit, or a concept unit of the bottleneck), or any
``nn.Module`` returning a tensor ``(batch, n_outputs)`` or a ``ModelOutput``.

Methods (``method=``):

===========================  ===================================================================
``shap_deep``                SHAP ``DeepExplainer`` (DeepLIFT with a background distribution;
                             additive: attributions sum to output minus the background mean)
``shap_gradient``            SHAP ``GradientExplainer`` (expected gradients)
``integrated_gradients``     Captum ``IntegratedGradients`` from a baseline
``gradient_shap``            Captum ``GradientShap`` (baselines drawn from the background)
``deeplift``                 Captum ``DeepLift`` from a baseline
``occlusion``                Captum ``Occlusion`` with a ``window`` (bands, frames) and ``stride``
===========================  ===================================================================

The background (reference distribution) should come from the training split
(:func:`training_background`); baselines default to its mean.

Example
-------
>>> attr = attribute(model, x, method="shap_deep", background=bg, output="valence",
...                  fps=31.25, band_frequencies=fe.band_frequencies)
>>> attr.values.shape == x.shape
True
>>> attr.time_marginal()       # tidy: clip, method, output, frame, seconds, attribution
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from midlevel.errors import MidlevelError

__all__ = ["METHODS", "ALIASES", "Attribution", "Attributor", "OutputSelector", "attribute",
           "resolve_method", "resolve_output", "training_background", "fit_frames"]

METHODS = ("shap_deep", "shap_gradient", "integrated_gradients", "gradient_shap", "deeplift",
           "occlusion")
ALIASES = {"shap": "shap_deep", "deep_shap": "shap_deep", "deepshap": "shap_deep",
           "deep": "shap_deep", "gradient_explainer": "shap_gradient",
           "expected_gradients": "shap_gradient", "ig": "integrated_gradients",
           "gradshap": "gradient_shap", "deep_lift": "deeplift"}
LABELS = {"shap_deep": "SHAP DeepExplainer", "shap_gradient": "SHAP GradientExplainer",
          "integrated_gradients": "Captum IntegratedGradients",
          "gradient_shap": "Captum GradientShap", "deeplift": "Captum DeepLift",
          "occlusion": "Captum Occlusion"}


class AttributionError(MidlevelError):
    """An attribution could not be computed (bad method, output, shapes)."""


def resolve_method(method: str) -> str:
    """Canonical method name (accepts the aliases in ``ALIASES``, any case, ``-`` for ``_``)."""
    key = str(method).lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise AttributionError(f"unknown attribution method '{method}'; methods are "
                               f"{list(METHODS)} (aliases {sorted(ALIASES)})")
    return key


# ------------------------------------------------------------------------------ outputs


def resolve_output(model: nn.Module, output=None) -> tuple[str, int, str]:
    """Which scalar output to explain: ``(kind, index, name)``, kind "target" or "concept".

    ``output``: None (the first target unit), an output-unit name (``model.output_names``),
    a concept name (bottleneck), ``"concept:NAME"`` / ``"target:NAME"``, or an int (target
    unit index).
    """
    targets = list(getattr(model, "output_names", []))
    concepts = list(getattr(model, "concept_names", []))
    if output is None:
        return "target", 0, targets[0] if targets else "output0"
    if isinstance(output, (int, np.integer)):
        i = int(output)
        if targets and not 0 <= i < len(targets):
            raise AttributionError(f"output index {i} out of range for outputs {targets}")
        return "target", i, targets[i] if targets else f"output{i}"
    name = str(output)
    kind = None
    if ":" in name:
        kind, name = name.split(":", 1)
    if kind in (None, "target") and name in targets:
        return "target", targets.index(name), name
    if kind in (None, "concept") and name in concepts:
        return "concept", concepts.index(name), name
    raise AttributionError(f"model has no output '{output}'; targets are {targets}, concepts "
                           f"are {concepts or 'none (black box)'}")


class OutputSelector(nn.Module):
    """``model`` reduced to one scalar output: ``(batch, 1, n_bands, n_frames)`` -> ``(batch, 1)``.

    For a bottleneck with ``kind="concept"`` only the path to the concept is run
    (``features`` -> ``concepts``); otherwise the whole forward. The wrapped model is a child
    module, so SHAP and Captum hooks see every layer.
    """

    def __init__(self, model: nn.Module, kind: str = "target", index: int = 0):
        super().__init__()
        self.model = model
        self.kind = kind
        self.index = int(index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.kind == "concept":
            out = m.concepts(m.features(x))
        else:
            out = m(x)
            if hasattr(out, "targets"):
                out = out.targets
        return out[:, self.index:self.index + 1]


# ------------------------------------------------------------------------------ results


@dataclass
class Attribution:
    """Attributions of one scalar output for a batch of spectrograms.

    Attributes
    ----------
    values : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
        Attribution per input bin, same shape as ``inputs``.
    inputs : np.ndarray [shape=(batch, 1, n_bands, n_frames)]
    predictions : np.ndarray [shape=(batch,)]
        The explained output (model units) for each input.
    expected : float or None
        The reference output (mean over the background for SHAP, the baseline's output
        for IG/DeepLift); for additive methods ``values.sum() ~ predictions - expected``.
    method, output, output_kind : str
    seconds : float
        Wall time of the attribution call (all inputs).
    fps : float or None; band_frequencies : np.ndarray [shape=(n_bands,)] or None
    clips : list[str]
    """

    values: np.ndarray
    inputs: np.ndarray
    predictions: np.ndarray
    expected: float | None
    method: str
    output: str
    output_kind: str
    seconds: float
    fps: float | None = None
    band_frequencies: np.ndarray | None = None
    clips: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.clips:
            self.clips = [f"clip{i}" for i in range(len(self.values))]

    @property
    def ms_per_clip(self) -> float:
        return 1000.0 * self.seconds / max(1, len(self.values))

    @property
    def maps(self) -> np.ndarray:
        """``(batch, n_bands, n_frames)`` view of ``values``."""
        return self.values[:, 0]

    def frame_seconds(self) -> np.ndarray:
        n = self.values.shape[-1]
        return np.arange(n) / self.fps if self.fps else np.full(n, np.nan)

    def band_hz(self) -> np.ndarray:
        n = self.values.shape[-2]
        if self.band_frequencies is not None and len(self.band_frequencies) == n:
            return np.asarray(self.band_frequencies, dtype=float)
        return np.full(n, np.nan)

    def additivity_gap(self) -> np.ndarray:
        """``predictions - expected - values.sum()`` per input (NaN if no reference)."""
        if self.expected is None:
            return np.full(len(self.values), np.nan)
        return self.predictions - self.expected - self.values.reshape(len(self.values), -1).sum(1)

    def _keys(self, n: int, i: int) -> dict:
        return {"clip": self.clips[i], "method": self.method, "output": self.output,
                "output_kind": self.output_kind}

    def time_marginal(self) -> pd.DataFrame:
        """Tidy per-frame sums over bands: clip, method, output, output_kind, frame, seconds,
        attribution, positive, negative."""
        secs = self.frame_seconds()
        frames = []
        for i, m in enumerate(self.maps):
            frames.append(pd.DataFrame({**self._keys(m.shape[1], i), "frame": np.arange(m.shape[1]),
                                        "seconds": secs, "attribution": m.sum(0),
                                        "positive": np.clip(m, 0, None).sum(0),
                                        "negative": np.clip(m, None, 0).sum(0)}))
        return pd.concat(frames, ignore_index=True)

    def frequency_marginal(self) -> pd.DataFrame:
        """Tidy per-band sums over frames: clip, method, output, output_kind, band, hz,
        attribution, positive, negative."""
        hz = self.band_hz()
        frames = []
        for i, m in enumerate(self.maps):
            frames.append(pd.DataFrame({**self._keys(m.shape[0], i), "band": np.arange(m.shape[0]),
                                        "hz": hz, "attribution": m.sum(1),
                                        "positive": np.clip(m, 0, None).sum(1),
                                        "negative": np.clip(m, None, 0).sum(1)}))
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """One row per clip: prediction, expected, total attribution, additivity gap, ms."""
        total = self.values.reshape(len(self.values), -1).sum(1)
        return pd.DataFrame({"clip": self.clips, "method": self.method, "output": self.output,
                             "output_kind": self.output_kind, "prediction": self.predictions,
                             "expected": np.nan if self.expected is None else self.expected,
                             "total": total, "additivity_gap": self.additivity_gap(),
                             "ms_per_clip": self.ms_per_clip})

    def save(self, path) -> None:
        """Write an ``.npz`` with values, inputs, predictions and the metadata."""
        np.savez_compressed(path, values=self.values.astype(np.float32),
                            inputs=self.inputs.astype(np.float32), predictions=self.predictions,
                            expected=np.nan if self.expected is None else self.expected,
                            method=self.method, output=self.output, output_kind=self.output_kind,
                            seconds=self.seconds, fps=np.nan if self.fps is None else self.fps,
                            band_frequencies=self.band_hz(), clips=np.array(self.clips))

    @classmethod
    def load(cls, path) -> "Attribution":
        with np.load(path, allow_pickle=False) as z:
            fps = float(z["fps"])
            hz = z["band_frequencies"]
            expected = float(z["expected"])
            return cls(values=z["values"], inputs=z["inputs"], predictions=z["predictions"],
                       expected=None if np.isnan(expected) else expected,
                       method=str(z["method"]), output=str(z["output"]),
                       output_kind=str(z["output_kind"]), seconds=float(z["seconds"]),
                       fps=None if np.isnan(fps) else fps,
                       band_frequencies=None if np.isnan(hz).all() else hz,
                       clips=[str(c) for c in z["clips"]])


# ------------------------------------------------------------------------------ background


def fit_frames(x: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Crop (from the start) or tile ``(..., n_frames')`` to ``(..., n_frames)``."""
    t = x.shape[-1]
    if t == n_frames:
        return x
    if t > n_frames:
        return x[..., :n_frames]
    reps = -(-n_frames // t)
    return torch.cat([x] * reps, dim=-1)[..., :n_frames]


def training_background(run, n: int = 16, *, n_frames: int | None = None, seed: int = 0,
                        cache_dir=None, spec=None, root=None) -> torch.Tensor:
    """Background sample from the training split of a run's data spec.

    Random crops of ``n_frames`` (default: the run's training crop) from ``n`` random
    training clips, as ``(n, 1, n_bands, n_frames)`` raw front-end output.

    Parameters
    ----------
    run : a ``Run`` (see ``midlevel.training.load_run``).
    spec : data spec path or ``DataSpec`` (default: the one stored with the run).
    cache_dir : the feature cache the run was trained from (default: the cache's default).
    """
    from midlevel.data.cache import FeatureCache
    from midlevel.data.spec import DataSpec, load_annotations, load_spec
    stored = run.info.get("data") or {}
    if spec is None and root is None and stored.get("root"):
        root = stored["root"]  # the root the run was trained with
    spec = spec or stored.get("spec")
    if not spec:
        raise AttributionError(f"{run.path}: no data spec stored with the run; pass spec= to "
                               f"draw a background from its training split")
    if not isinstance(spec, DataSpec):
        spec = load_spec(spec, root=root)
    table = load_annotations(spec)
    train = table[table["split"] == "train"]
    if len(train) == 0:
        raise AttributionError(f"spec '{spec.name}' has an empty training split")
    rng = np.random.default_rng(seed)
    clips = rng.choice(len(train), size=min(n, len(train)), replace=False)
    cache = FeatureCache(cache_dir, run.frontend)
    from midlevel.training.data import window_frames
    n_frames = n_frames or window_frames(run.config.crop_seconds, run.fps)
    out = []
    for k in range(n):
        spec_k = torch.as_tensor(np.asarray(cache.get(train["path"].iloc[clips[k % len(clips)]])),
                                 dtype=torch.float32)
        room = max(0, spec_k.shape[-1] - n_frames)
        start = int(rng.integers(0, room + 1))
        out.append(fit_frames(spec_k[:, start:start + n_frames], n_frames))
    return torch.stack(out).unsqueeze(1)


# ------------------------------------------------------------------------------ attributor


class Attributor:
    """One attribution method for one scalar output of a model; one verb: :meth:`attribute`.

    Parameters
    ----------
    model : nn.Module
        A midlevel model, or any module mapping ``(batch, 1, n_bands, n_frames)`` to
        ``(batch, n_outputs)`` / ``ModelOutput``. It is put in eval mode.
    method : str
        One of ``METHODS`` (or an alias).
    output : see :func:`resolve_output`.
    background : torch.Tensor [shape=(n, 1, n_bands, n_frames')] or None
        Reference sample (SHAP, GradientShap, baselines); cropped or tiled to each input's
        length. None: a silent (all-zero) reference.
    baseline : "mean" (of the background), "zero", a float, or a tensor broadcastable to
        one input. Used by IG, DeepLift and Occlusion.
    n_steps : int
        Integration steps (IG).
    n_samples : int
        Samples per input (SHAP GradientExplainer, GradientShap).
    window, stride : (bands, frames)
        Occlusion patch and its stride (default stride = window).
    check_additivity : bool
        Let SHAP DeepExplainer assert that attributions sum to the output difference.
    batch_size : int
        Internal batch size (IG, occlusion, GradientExplainer).
    fps, band_frequencies : axis metadata copied into the result.
    """

    def __init__(self, model: nn.Module, method: str = "shap_deep", *, output=None,
                 background: torch.Tensor | None = None, baseline="mean", n_steps: int = 32,
                 n_samples: int = 32, window: tuple[int, int] = (16, 32),
                 stride: tuple[int, int] | None = None, check_additivity: bool = True,
                 batch_size: int = 16, seed: int = 0, fps: float | None = None,
                 band_frequencies=None):
        self.method = resolve_method(method)
        model.eval()
        self.model = model
        self.kind, self.index, self.output = resolve_output(model, output)
        self.selector = OutputSelector(model, self.kind, self.index).eval()
        self.background = None if background is None else torch.as_tensor(
            background, dtype=torch.float32)
        if self.background is not None and self.background.ndim == 3:
            self.background = self.background.unsqueeze(1)
        self.baseline = baseline
        self.n_steps, self.n_samples = int(n_steps), int(n_samples)
        self.window = tuple(int(v) for v in window)
        self.stride = tuple(int(v) for v in (stride or window))
        self.check_additivity = check_additivity
        self.batch_size = int(batch_size)
        self.seed = seed
        self.fps = fps
        self.band_frequencies = band_frequencies
        self._cache: dict = {}

    # --------------------------------------------------------------------- helpers
    @property
    def device(self) -> torch.device:
        """Where the model's parameters live; inputs are moved there, results come back."""
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _background_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.background is None:
            return torch.zeros((2,) + tuple(x.shape[1:]), device=self.device)
        bg = fit_frames(self.background, x.shape[-1])
        if bg.shape[1:] != x.shape[1:]:
            raise AttributionError(f"background shape {tuple(bg.shape[1:])} does not match the "
                                   f"input's {tuple(x.shape[1:])}")
        return bg.to(self.device)

    def _baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        b = self.baseline
        if isinstance(b, str):
            if b == "mean":
                return self._background_for(x).mean(0, keepdim=True)
            if b == "zero":
                return torch.zeros((1,) + tuple(x.shape[1:]), device=self.device)
            raise AttributionError(f"baseline must be 'mean', 'zero', a number or a tensor, "
                                   f"got '{b}'")
        if isinstance(b, (int, float)):
            return torch.full((1,) + tuple(x.shape[1:]), float(b), device=self.device)
        b = torch.as_tensor(b, dtype=torch.float32)
        b = fit_frames(b.reshape((1,) + tuple(x.shape[1:-1]) + (b.shape[-1],)), x.shape[-1])
        return b.to(self.device)

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device)
        return torch.cat([self.selector(x[a:a + self.batch_size])
                          for a in range(0, len(x), self.batch_size)])[:, 0].cpu().numpy()

    def _cached(self, key, make):
        """Explainers and reference outputs, built once per method and input length."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # --------------------------------------------------------------------- the verb
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
        torch.manual_seed(self.seed)
        if self.method.startswith("shap"):
            import shap  # noqa: F401  (imported before the clock starts: it takes seconds)
        else:
            import captum.attr  # noqa: F401
        start = time.perf_counter()
        values, expected = getattr(self, "_" + self.method)(x.to(self.device))
        seconds = time.perf_counter() - start
        if torch.is_tensor(values):
            values = values.detach().cpu().numpy()
        values = np.asarray(values, dtype=np.float32)
        if values.ndim == x.ndim + 1:  # SHAP stacks outputs on a last axis
            values = values[..., 0]
        values = values.reshape(x.shape)
        options = {"n_steps": self.n_steps, "n_samples": self.n_samples,
                   "window": self.window, "stride": self.stride,
                   "n_background": 0 if self.background is None else len(self.background)}
        return Attribution(values=values, inputs=x.numpy(), predictions=self._predict(x),
                           expected=expected, method=self.method, output=self.output,
                           output_kind=self.kind, seconds=seconds, fps=self.fps,
                           band_frequencies=self.band_frequencies,
                           clips=list(clips) if clips is not None else [], options=options)

    # --------------------------------------------------------------------- methods
    def _shap_deep(self, x):
        import shap

        def make():
            with torch.no_grad():
                explainer = shap.DeepExplainer(self.selector, self._background_for(x))
            return explainer, float(np.ravel(explainer.expected_value)[0])

        explainer, expected = self._cached(("shap_deep", x.shape[-1]), make)
        with warnings.catch_warnings():
            # our Standardize module is affine: SHAP's pass-through of unknown modules is exact
            warnings.filterwarnings("ignore", message="unrecognized nn.Module")
            values = [explainer.shap_values(x[i:i + 1], check_additivity=self.check_additivity)
                      for i in range(len(x))]
        return np.concatenate(values), expected

    def _shap_gradient(self, x):
        import shap

        def make():
            bg = self._background_for(x)
            with torch.no_grad():  # the constructor only reads the output's shape
                explainer = shap.GradientExplainer(self.selector, bg,
                                                   batch_size=self.batch_size)
            return explainer, float(self._predict(bg).mean())

        explainer, expected = self._cached(("shap_gradient", x.shape[-1]), make)
        values = explainer.shap_values(x, nsamples=self.n_samples, rseed=self.seed)
        return values, expected

    def _reference(self, x, base) -> float:
        return self._cached(("reference", self.method, x.shape[-1]),
                            lambda: float(self._predict(base).mean()))

    def _integrated_gradients(self, x):
        from captum.attr import IntegratedGradients
        base = self._baseline_for(x)
        ig = IntegratedGradients(self.selector)
        values = torch.cat([ig.attribute(x[i:i + 1], baselines=base, target=0,
                                         n_steps=self.n_steps,
                                         internal_batch_size=self.batch_size).detach()
                            for i in range(len(x))])
        return values, self._reference(x, base)

    def _gradient_shap(self, x):
        from captum.attr import GradientShap
        bg = self._background_for(x)
        gs = GradientShap(self.selector)
        values = torch.cat([gs.attribute(x[i:i + 1], baselines=bg, n_samples=self.n_samples,
                                         stdevs=0.0, target=0).detach()
                            for i in range(len(x))])
        return values, self._reference(x, bg)

    def _deeplift(self, x):
        from captum.attr import DeepLift
        base = self._baseline_for(x)
        dl = DeepLift(self.selector)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]etting forward, backward hooks.*")
            warnings.filterwarnings("ignore", message=".*did not already require gradients.*")
            values = dl.attribute(x, baselines=base.expand_as(x).contiguous(), target=0).detach()
        return values, self._reference(x, base)

    def _occlusion(self, x):
        from captum.attr import Occlusion
        base = self._baseline_for(x)
        occ = Occlusion(self.selector)
        wb, wt = min(self.window[0], x.shape[2]), min(self.window[1], x.shape[3])
        sb, st = min(self.stride[0], wb), min(self.stride[1], wt)
        values = torch.cat([occ.attribute(x[i:i + 1], sliding_window_shapes=(1, wb, wt),
                                          strides=(1, sb, st), baselines=base, target=0,
                                          perturbations_per_eval=self.batch_size).detach()
                            for i in range(len(x))])
        return values, None


def attribute(model: nn.Module, x, *, method: str = "shap_deep", output=None,
              background=None, clips=None, **options) -> Attribution:
    """Attribute one output of ``model`` for spectrograms ``x`` (see :class:`Attributor`).

    Returns
    -------
    Attribution with ``values`` shaped like ``x`` (``(batch, 1, n_bands, n_frames)``).
    """
    return Attributor(model, method, output=output, background=background,
                      **options).attribute(x, clips=clips)
