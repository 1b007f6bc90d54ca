"""The training configuration: every setting that decides a run (``--config YAML`` keys)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from midlevel.checks import real_number, whole_number
from midlevel.choices import MODES
from midlevel.errors import TrainingError
from midlevel.models.backbone import preset as backbone_preset


@dataclass
class TrainConfig:
    """Everything that decides a training run (``--config YAML`` holds any of these keys)."""

    mode: str = "joint"
    preset: str = "paper"          # backbone preset: "paper" or "small"
    width: float | None = None     # channel multiplier; None = the preset's
    last_kernel: int | None = None  # 3 (paper) or 1 (re-run); None = the preset's
    dropout: float = 0.3
    epochs: int = 100
    patience: int = 20             # epochs without validation improvement before stopping
    batch_size: int = 8
    lr: float = 5e-4
    weight_decay: float = 0.0
    w: float = 0.5                 # joint mode: weight of the target loss
    crop_seconds: float = 10.0     # training crop and evaluation window
    eval_hop_seconds: float | None = None  # hop between evaluation windows; None = crop
    eval_batch_size: int = 16      # windows per forward in validation and prediction: speed
                                   # and memory only, eval-mode outputs do not depend on it
    bn_batch_size: int = 16        # windows per batch of the BatchNorm re-estimation (part of
                                   # the model: see midlevel.training.batchnorm); a run stored
                                   # without it used its eval_batch_size (stored_config)
    seed: int = 0
    device: str = "cpu"            # "cpu" or "cuda"
    amp: bool = True               # bfloat16 autocast on cuda
    cpu_bf16: bool = False         # bfloat16 autocast for the training steps on a CPU with
                                   # bf16 units (AMX / AVX512-BF16); validation, BatchNorm
                                   # re-estimation, calibration and prediction stay float32
    head_init: str = "lstsq"       # joint: start the head from least squares on the true
                                   # concepts ("lstsq") or from random weights ("random")
    recalibrate_bn: bool = True    # re-estimate BatchNorm statistics with dropout off before
                                   # every validation pass (cures dropout's variance shift)
    select_on: str = "r2"          # model selection score: "r2" (sees level and scale) or "r"
    calibrate_concepts: bool = True  # after training, recalibrate each predicted concept on
                                   # the validation split (see midlevel.training.calibration)
    shrink_calibration: bool = True  # shrink each calibration slope by its bootstrap optimism
                                   # (the epoch selection and the line fitted on the same clips)
    calibration_bootstrap: int = 200  # resamples of that bootstrap
    balance: str = "none"          # binary concepts and targets: "none" or "balanced"
                                   # (positives weighted by negatives / positives per column)
    max_memory: int | str | None = None  # budget for holding every spectrogram in memory
                                   # (bytes or "2GB"); None: a quarter of this machine's RAM.
                                   # Larger datasets stream from the feature cache
    workers: int | None = None     # DataLoader worker processes when streaming; None: auto

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainingError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_stored(cls, values: dict, where: str = "config") -> "TrainConfig":
        """The config a run stored (``config.yaml``, ``model.pt``): :func:`stored_config`."""
        return cls.from_dict(stored_config(values), where)

    def backbone(self) -> dict:
        """Backbone keyword arguments: the preset, then width/last_kernel/dropout overrides."""
        args = backbone_preset(self.preset)
        if self.width is not None:
            args["width"] = self.width
        if self.last_kernel is not None:
            args["last_kernel"] = self.last_kernel
        args["dropout"] = self.dropout
        return args

    def autocast_steps(self, device) -> bool:
        """Whether the training steps on ``device`` (a ``torch.device``) run under bfloat16
        autocast: ``amp`` on CUDA, ``cpu_bf16`` on the CPU."""
        return (self.amp and device.type == "cuda") or (self.cpu_bf16 and device.type == "cpu")

    def check(self) -> None:
        """Refuse, naming the key, any setting of the wrong type or out of range (before a
        run directory is made)."""
        self._check_values()
        if self.mode not in MODES:
            raise TrainingError(f"unknown mode '{self.mode}'; modes are {list(MODES)}")
        if self.device not in ("cpu", "cuda"):
            raise TrainingError(f"device must be 'cpu' or 'cuda', got '{self.device}'")
        if self.select_on not in ("r2", "r"):
            raise TrainingError(f"select_on must be 'r2' or 'r', got '{self.select_on}'")
        if self.balance not in ("none", "balanced"):
            raise TrainingError(f"balance must be 'none' or 'balanced', got '{self.balance}'")
        if self.max_memory is not None:
            from midlevel.training.stream import parse_bytes
            parse_bytes(self.max_memory, where="max_memory")
        if self.head_init not in ("lstsq", "random"):
            raise TrainingError(f"head_init must be 'lstsq' or 'random', got '{self.head_init}'")
        if self.cpu_bf16 and self.device == "cpu" and not cpu_has_bf16():
            raise TrainingError("--bf16 (config key cpu_bf16): this CPU has no bfloat16 units "
                                "(AVX512-BF16 or AMX), where bfloat16 runs slower than "
                                "float32; train without it (--no-bf16 resumes a run trained "
                                "with it in float32)")
        backbone_preset(self.preset)

    def ignored(self) -> list[str]:
        """The settings this ``mode`` does not use that differ from their defaults, each as
        ``key value (what it is)``: ``w`` and ``head_init`` are joint-mode settings."""
        if self.mode == "joint":
            return []
        default = TrainConfig()
        return [f"{key} {getattr(self, key)!r} ({what})" for key, what in (
                ("w", "the joint mode's weight of the target loss"),
                ("head_init", "how the joint mode starts its head"))
                if getattr(self, key) != getattr(default, key)]

    def check_input(self, n_bands: int, fps: float) -> None:
        """Refuse, naming the key and its allowed range, a ``last_kernel`` larger than the last
        convolution's input for spectrograms of ``n_bands`` bands, and a ``crop_seconds`` (the
        training crop and evaluation window) shorter than the backbone's shortest input at
        ``fps`` frames per second (:func:`~midlevel.models.backbone.fewest_frames`); both
        before a run directory is made. The sizes are probed on a backbone of these settings
        at the narrowest width (the sizes do not depend on the width)."""
        from midlevel.models.backbone import Backbone, fewest_frames, last_conv_input, takes_input
        from midlevel.data.frontends import window_frames
        args = {**self.backbone(), "width": 1e-3, "dropout": 0.0}
        crop = window_frames(self.crop_seconds, fps)
        rows = last_conv_input(Backbone(**{**args, "last_kernel": 1}), n_bands, max(crop, 1024))
        if rows is None:  # the front end's bands are too few for any setting: torch names it
            return
        if args["last_kernel"] > rows[0]:
            raise TrainingError(f"last_kernel {args['last_kernel']} is larger than the last "
                                f"convolution's input ({rows[0]} rows from the front end's "
                                f"{n_bands} bands); last_kernel must be between 1 and {rows[0]}")
        model, high = Backbone(**args), crop
        while not takes_input(model, n_bands, high) and high < 2 ** 20:
            high *= 2
        if high == crop:
            return
        least = fewest_frames(model, n_bands, high)
        shortest = (least - 1) / fps  # the window of `least` frames (see window_frames)
        raise TrainingError(f"crop_seconds {self.crop_seconds:g} is shorter than the model's "
                            f"shortest input, {shortest:.3g} s ({least} frames at {fps:g} "
                            f"frames per second with last_kernel {args['last_kernel']}); "
                            f"crop_seconds must be at least "
                            f"{math.ceil(shortest * 100) / 100:g}")

    def _check_values(self) -> None:
        """Each number as its type within its range (a number written as text, as YAML
        leaves ``1e-3``, is read as that number and stored as it); each switch a bool."""
        for name, (kind, bounds) in _RANGES.items():
            check = whole_number if kind is int else real_number
            setattr(self, name, check(getattr(self, name), name, allow_none=name in _OPTIONAL,
                                      error=TrainingError, **bounds))
        for name in _BOOLEANS:
            if not isinstance(getattr(self, name), bool):
                raise TrainingError(f"{name} must be true or false, got {getattr(self, name)!r}")


# (type, bounds as midlevel.checks names them)
_RANGES = {
    "epochs": (int, {"least": 1}), "patience": (int, {"least": 1}),
    "batch_size": (int, {"least": 2}),  # BatchNorm needs two clips a batch
    "eval_batch_size": (int, {"least": 1}), "bn_batch_size": (int, {"least": 1}),
    "seed": (int, {"least": 0, "most": 2 ** 64 - 1}),  # torch's seeds are unsigned 64-bit
    "calibration_bootstrap": (int, {"least": 0}), "workers": (int, {"least": 0}),
    "lr": (float, {"above": 0}), "weight_decay": (float, {"least": 0}),
    "dropout": (float, {"least": 0, "below": 1}), "crop_seconds": (float, {"above": 0}),
    "eval_hop_seconds": (float, {"above": 0}), "width": (float, {"above": 0}),
    "last_kernel": (int, {"least": 1}), "w": (float, {"least": 0, "most": 1}),
}
_OPTIONAL = {"eval_hop_seconds", "width", "last_kernel", "workers"}
_BOOLEANS = ("amp", "cpu_bf16", "recalibrate_bn", "calibrate_concepts", "shrink_calibration")


def legacy_settings(values: dict) -> dict:
    """The settings a run's stored config ``values`` lacks because its version had no such
    key, each set to what that version did (not to today's default): ``bn_batch_size`` its
    ``eval_batch_size`` (re-estimation was batched by it); without ``recalibrate_bn`` the run
    predates BatchNorm re-estimation and selected epochs on mean r (``False``, ``"r"``); a
    run with it but without ``select_on`` selected on R^2; without ``calibrate_concepts`` or
    ``shrink_calibration`` it had no concept calibration, or an unshrunk one (``False``).
    Audit 14c: a resume of such a run took today's defaults, compared R^2 epochs with a best
    mean r, and marked weights whose BatchNorm was never re-estimated as re-estimated."""
    legacy = {}
    if "bn_batch_size" not in values and "eval_batch_size" in values:
        legacy["bn_batch_size"] = values["eval_batch_size"]
    if "recalibrate_bn" not in values:
        legacy.update(recalibrate_bn=False, select_on="r")
    if "select_on" not in values:
        legacy.setdefault("select_on", "r2")
    for key in ("calibrate_concepts", "shrink_calibration"):
        if key not in values:
            legacy[key] = False
    return {k: v for k, v in legacy.items() if k not in values}


def stored_config(values: dict) -> dict:
    """A run's stored config ``values`` with each key its version did not store set to what
    that version did (:func:`legacy_settings`), so a resumed or reloaded old run is the same
    run."""
    return {**dict(values), **legacy_settings(values)}


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (oneDNN's own test: AVX512-BF16 or
    AMX)."""
    import torch
    try:
        return bool(torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
