"""The contract of an attribution method, the scalar output it explains, and its reference.

A method is one class with one verb, :meth:`AttributionMethod.attribute`: it explains a
*scalar* function ``f`` (an :class:`OutputSelector`: ``(batch, 1, n_bands, n_frames)`` ->
``(batch, 1)``) at inputs ``x`` relative to a ``reference`` input (what "removing" a part of
the input means: the training background's mean spectrogram unless asked otherwise) and,
for methods that need one, a ``background`` sample of training inputs.
"""
from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from midlevel.checks import whole_number
from midlevel.errors import AttributionError


@contextlib.contextmanager
def frozen(parameters):
    """Inside: none of ``parameters`` requires gradients; after: each as it was.

    For a method whose gradients start at a layer rather than at the input (Grad-CAM): with
    frozen weights autograd records no graph for the forward pass up to that layer. Measured
    on a 10-s clip against the direct captum call, same values: 1.11-1.16x as fast on the
    ``small`` and ``paper`` backbones, 1 and 2 threads. Not used for methods that take gradients at
    the input: no gain for Integrated Gradients or Occlusion, and SHAP's DeepExplainer ran
    0.89x as fast with frozen weights (10 interleaved rounds, ``small``, 1 thread)."""
    thawed = [p for p in parameters if p.requires_grad]
    for p in thawed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in thawed:
            p.requires_grad_(True)


class LazyTables(MutableMapping):
    """Method tables by name, each built on first access: a value may be a zero-argument
    callable returning the ``pd.DataFrame``, called once when the table is read.

    Building a small DataFrame costs about as much as a Grad-CAM backward pass on a 10-s clip;
    a caller who only wants the map (faithfulness curves, timing) does not pay for it.
    """

    def __init__(self, tables=None):
        self._tables = dict(tables or {})

    def __getitem__(self, name):
        value = self._tables[name]
        if callable(value):
            value = self._tables[name] = value()
        return value

    def __setitem__(self, name, value):
        self._tables[name] = value

    def __delitem__(self, name):
        del self._tables[name]

    def __iter__(self):
        return iter(self._tables)

    def __len__(self):
        return len(self._tables)

    def __repr__(self):
        return f"LazyTables({list(self._tables)})"


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
    tables : mapping of str to pd.DataFrame
        Method-specific tidy tables (LIME components and surrogate fit, LRP conservation...);
        a value may be a zero-argument callable building the table (:class:`LazyTables`).
    padding : np.ndarray [shape=(batch,)] or None
        Attribution that fell on the zero padding of an input shorter than the model's
        window, outside ``values`` (LRP, which decomposes ``f(x)`` itself; methods relative
        to a reference give the padding none, since ``x`` and the reference share it).
    """

    values: np.ndarray
    expected: float | None = None
    tables: LazyTables = field(default_factory=LazyTables)
    padding: np.ndarray | None = None

    def __post_init__(self):
        if not isinstance(self.tables, LazyTables):
            self.tables = LazyTables(self.tables)


class AttributionMethod:
    """Base class: ``name`` (registry key), ``label`` (for reports), ``attribute``.

    Subclasses take their settings as keyword arguments and keep whatever is expensive to
    build (SHAP explainers, reference outputs) per explained function and input length, so an
    instance that explains many clips builds it once.
    """

    name: str = ""
    label: str = ""
    #: True for a method that draws nothing from torch's or numpy's global random generators
    #: (its maps depend on the inputs alone): ``Attributor`` then skips seeding them on a
    #: forked state, about 0.1 ms a call. Methods that sample keep the default.
    deterministic: bool = False
    #: True for a method whose values decompose ``f(x) - mean f(background)`` (its
    #: ``expected`` is the mean output over the background sample: SHAP's explainers,
    #: GradientShap) rather than ``f(x) - f(reference)``: listen-back then removes a part to
    #: each background input and averages (:meth:`Attributor.removal_reference`).
    baseline_is_background: bool = False

    def __init__(self, *, batch_size: int = 16, seed: int = 0, **options):
        self.batch_size = whole_number(batch_size, "batch_size", error=AttributionError)
        self.seed = whole_number(seed, "seed", least=0, error=AttributionError)
        self._cache: dict = {}
        self._keys: dict = {}

    def data_key(self, values) -> tuple:
        """:func:`fingerprint` of ``values``, remembered per tensor object beside a copy of it:
        the same object again is compared with the copy (``torch.equal``, exact, 0.5 ms for
        3 MB) instead of hashed again (3 ms), so a background an ``Attributor`` passes on
        every call costs its hash once; any edit, through a numpy view too, hashes again."""
        if not isinstance(values, torch.Tensor):
            return fingerprint(values)
        held = self._keys.get(id(values))
        if (held is not None and held[0] is values and held[1].shape == values.shape
                and held[1].dtype == values.dtype
                and torch.equal(held[1], values.detach().to(held[1].device))):
            return held[2]
        if len(self._keys) > 8:
            self._keys.clear()
        key = fingerprint(values)
        self._keys[id(values)] = (values, values.detach().clone(), key)
        return key

    def attribute(self, f: nn.Module, x: torch.Tensor, *, reference: torch.Tensor,
                  background: torch.Tensor | None = None, clips=None) -> MethodResult:
        """Explain ``f`` at ``x`` ``(batch, 1, n_bands, n_frames)``.

        ``reference``: ``(1, 1, n_bands, n_frames)``; ``background``: a sample of training
        inputs ``(n, 1, n_bands, n_frames)`` for methods that need one.
        """
        raise NotImplementedError

    def cached(self, key, make):
        """``make()`` once per ``key`` (explainers, reference outputs). Keys hold the explained
        module itself, not its ``id``: a freed module's id can be reused by a new one (the
        randomized copies of a sanity check), which must not find the old explainer."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @torch.no_grad()
    def predict(self, f: nn.Module, x: torch.Tensor) -> np.ndarray:
        """``f`` over ``x`` in batches: ``(batch,)``."""
        return torch.cat([f(x[a:a + self.batch_size])
                          for a in range(0, len(x), self.batch_size)])[:, 0].cpu().numpy()

    def reference_output(self, f: nn.Module, reference: torch.Tensor) -> float:
        """Mean of ``f`` over the reference input(s), cached per function and reference
        (its values, not only its shape: another reference of the same length gets its own
        output; audit 15a)."""
        return self.cached(("reference", f, self.data_key(reference)),
                           lambda: float(self.predict(f, reference).mean()))


def fingerprint(values) -> tuple:
    """A cache key of an array's values: shape, dtype and a digest of its bytes (None for
    None), so that a cached explainer or output is reused only for the same data."""
    import hashlib
    if values is None:
        return (None,)
    a = np.ascontiguousarray(torch.as_tensor(values).detach().cpu().numpy())
    # the values themselves (1 ms a megabyte): a key remembered by a tensor's version counter
    # missed edits made through a numpy view; AttributionMethod.data_key memoizes it exactly
    return a.shape, str(a.dtype), hashlib.blake2b(memoryview(a.reshape(-1)).cast("B"),
                                                  digest_size=16).hexdigest()


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


def output_units(model: nn.Module, kind: str, index: int) -> tuple[str, tuple | None]:
    """The units of one scalar output of ``model`` and how to reach those ``Run.predict``
    reports: ``(units, (offset, scale, rating_units) or None)``.

    A midlevel model computes z-scored regression targets and rating concepts ("standardized";
    ``predict`` reports ``mean + std * output`` from the model's ``target_mean`` /
    ``target_std`` or ``concept_mean`` / ``concept_std`` buffers: "rating"), the logits of
    binary targets and binary concepts ("logit"; ``predict`` reports their probabilities, not
    a linear map of them, so they stay logits) and a class's logit centred on its class group
    ("centred logit", :class:`OutputSelector`). A module without those buffers: "model",
    None.
    """
    prefix = "target" if kind == "target" else "concept"
    mean, std = getattr(model, f"{prefix}_mean", None), getattr(model, f"{prefix}_std", None)
    if mean is None or std is None or not 0 <= index < len(mean):
        return "model", None
    if kind == "target":
        from midlevel.models.bottleneck import output_layout
        if class_group(model, index) is not None:
            return "centred logit", None
        logit = any(k != "regression" and s.start <= index < s.stop
                    for _, k, s in output_layout(getattr(model, "targets", [])))
    else:
        kinds = list(getattr(model, "concept_kinds", None) or [])
        logit = index < len(kinds) and kinds[index] == "binary"
    if logit:
        return "logit", None
    return "standardized", (float(mean[index]), float(std[index]), "rating")


class RatingOutput(nn.Module):
    """``offset + scale * f(x)``: a scalar output ``f`` in the units ``Run.predict`` reports
    (``(offset, scale, units)`` from :func:`output_units`), for tables a user reads (listen-back
    outputs, perturbation curves) in the same units as the attributions."""

    def __init__(self, f: nn.Module, offset: float = 0.0, scale: float = 1.0):
        super().__init__()
        self.f, self.offset, self.scale = f, float(offset), float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.offset + self.scale * self.f(x)


class OutputSelector(nn.Module):
    """``model`` reduced to one scalar output: ``(batch, 1, n_bands, n_frames)`` -> ``(batch, 1)``.

    For a bottleneck with ``kind="concept"`` only the path to the concept is run
    (``features`` -> ``concepts``); otherwise the whole forward. The wrapped model is a child
    module, so SHAP and Captum hooks see every layer.

    A class's unit is its logit minus the mean of its class group's logits (``classes``: the
    group's output slice, else None): a softmax is unchanged by a shift every class's logit
    shares, so the raw logit of one class is not fixed by the probabilities ``predict``
    reports; two models predicting alike explained it differently (a total turned from
    -0.04 to +0.41, maps r = 0.01; audit 23c). The centred logit is ``log p_k`` minus the
    mean of the group's ``log p``: fixed by the probabilities.
    """

    def __init__(self, model: nn.Module, kind: str = "target", index: int = 0):
        super().__init__()
        self.model = model
        self.kind = kind
        self.index = int(index)
        self.classes = class_group(model, self.index) if kind == "target" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        if self.kind == "concept":
            out = m.concepts(m.features(x))
        else:
            out = m(x)
            if hasattr(out, "targets"):
                out = out.targets
        if self.classes is not None:
            return out[:, self.index:self.index + 1] - out[:, self.classes].mean(
                1, keepdim=True)
        return out[:, self.index:self.index + 1]


def class_group(model: nn.Module, index: int) -> slice | None:
    """The output slice of the class target whose unit ``index`` is, else None."""
    from midlevel.models.bottleneck import output_layout
    for _, kind, units in output_layout(getattr(model, "targets", None) or []):
        if kind == "class" and units.start <= index < units.stop:
            return units
    return None




def output_description(f: nn.Module) -> str | None:
    """``"target 'fear'"`` or ``"concept 'melodiousness'"``: the output an explained
    function ``f`` selects, found through the wrappers that hold it as ``.f``
    (:class:`RatingOutput`, :class:`WindowedOutput`); None when ``f`` holds no
    :class:`OutputSelector`."""
    for _ in range(8):
        if isinstance(f, OutputSelector):
            model = f.model
            names = list(getattr(model, "concept_names" if f.kind == "concept"
                                 else "output_names", None) or [])
            unit = f"'{names[f.index]}'" if f.index < len(names) else str(f.index)
            return f"{'concept' if f.kind == 'concept' else 'target'} {unit}"
        f = getattr(f, "f", None)
        if not isinstance(f, nn.Module):
            return None
    return None


class WindowedOutput(nn.Module):
    """``f`` over the windows :meth:`midlevel.run.Run.predict` uses, averaged: the number
    ``predict`` reports for a whole clip (``(batch, 1, n_bands, T)`` -> ``(batch, 1)``).

    Windows of ``n_frames`` start every ``hop`` frames, the last one ending at the clip's end
    (:func:`midlevel.training.data.window_starts`); a clip shorter than a window is padded with
    zeros as in prediction. The windows of a clip go through ``f`` as one batch (sample-major),
    and only slicing, padding and a mean are added to ``f``, so gradient and hook-based
    methods see the same network, each module called once.
    """

    def __init__(self, f: nn.Module, n_frames: int, hop: int):
        super().__init__()
        self.f, self.n_frames, self.hop = f, int(n_frames), int(hop)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` zero-padded at the end to one window when it is shorter, as prediction pads
        it; otherwise ``x`` itself."""
        if x.shape[-1] < self.n_frames:
            x = nn.functional.pad(x, (0, self.n_frames - x.shape[-1]))
        return x

    def windows(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """``(windows, starts)``: ``x`` ``(batch, 1, n_bands, T)`` padded to one window where
        shorter, cut into the windows ``predict`` averages, stacked sample-major
        ``(batch * n_windows, 1, n_bands, n_frames)``; ``starts``: each window's first frame."""
        from midlevel.training.data import window_starts
        n = self.n_frames
        x = self.padded(x)
        starts = window_starts(x.shape[-1], n, self.hop)
        w = torch.stack([x[..., s:s + n] for s in starts], dim=1)
        return w.reshape((-1,) + tuple(w.shape[2:])), list(starts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # windows stacked sample-major into the batch, so every module runs once per forward
        # (hook-based methods such as SHAP DeepExplainer keep one activation per module)
        w, starts = self.windows(x)
        return self.f(w).reshape(x.shape[0], len(starts), -1).mean(1)
