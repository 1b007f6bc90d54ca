"""Training: ``fit`` on in-memory data, ``train`` from a data spec and the feature cache.

Modes
-----
blackbox     backbone -> targets (the paper's A2E), target loss only.
independent  concept network trained on concept ratings; head fitted on the *true* concepts.
sequential   concept network trained on concept ratings; head fitted on its *predicted* concepts.
joint        one network, loss = w * target loss + (1 - w) * concept loss (w = 0.5 in the paper).

Losses are masked: a clip missing some ratings trains only what it has. Every epoch ends with the
BatchNorm statistics re-estimated with dropout off (:mod:`midlevel.training.batchnorm`), a
whole-clip validation pass (early stopping on the mean R^2 of what the mode trains, a score that
sees level and scale, not only order) and an atomic checkpoint, so ``resume=True`` continues from the last completed epoch. Crops and dropout
are seeded from (seed, epoch), so a resumed run repeats exactly what the uninterrupted one does.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

import midlevel
from midlevel.errors import CheckpointError, TrainingError
from midlevel.models.backbone import preset as backbone_preset
from midlevel.models.bottleneck import ModelOutput, build_model
from midlevel.training import ddp
from midlevel.training.batchnorm import recalibrate_batchnorm
from midlevel.training.calibration import calibration_lines, fold_into_model
from midlevel.training.checkpoint import (
    FORMAT, MODEL_FILE, STATE_FILE, load_checkpoint, save_atomic, write_text_atomic,
)
from midlevel.training.data import (
    ClipSet, Columns, Scales, crop, window_frames, window_starts, windows,
)
from midlevel.training.head import fit_head
from midlevel.training.metrics import format_table, metrics_table, score

log = logging.getLogger("midlevel.training")

MODES = ("blackbox", "independent", "sequential", "joint")
_SCORED = {"blackbox": ("target",), "independent": ("concept",), "sequential": ("concept",),
           "joint": ("concept", "target")}


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
    eval_batch_size: int = 16
    seed: int = 0
    device: str = "cpu"            # "cpu" or "cuda"
    amp: bool = True               # bfloat16 autocast on cuda
    head_init: str = "lstsq"       # joint: start the head from least squares on the true
                                   # concepts ("lstsq") or from random weights ("random")
    recalibrate_bn: bool = True    # re-estimate BatchNorm statistics with dropout off before
                                   # every validation pass (cures dropout's variance shift)
    select_on: str = "r2"          # model selection score: "r2" (sees level and scale) or "r"
    calibrate_concepts: bool = True  # after training, recalibrate each predicted concept on
                                   # the validation split (see midlevel.training.calibration)

    @classmethod
    def from_dict(cls, values: dict, where: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TrainingError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**values)

    def backbone(self) -> dict:
        """Backbone keyword arguments: the preset, then width/last_kernel/dropout overrides."""
        args = backbone_preset(self.preset)
        if self.width is not None:
            args["width"] = self.width
        if self.last_kernel is not None:
            args["last_kernel"] = self.last_kernel
        args["dropout"] = self.dropout
        return args

    def check(self) -> None:
        if self.mode not in MODES:
            raise TrainingError(f"unknown mode '{self.mode}'; modes are {list(MODES)}")
        if not 0.0 <= self.w <= 1.0:
            raise TrainingError(f"w must lie in [0, 1], got {self.w}")
        if self.device not in ("cpu", "cuda"):
            raise TrainingError(f"device must be 'cpu' or 'cuda', got '{self.device}'")
        if self.select_on not in ("r2", "r"):
            raise TrainingError(f"select_on must be 'r2' or 'r', got '{self.select_on}'")
        if self.head_init not in ("lstsq", "random"):
            raise TrainingError(f"head_init must be 'lstsq' or 'random', got '{self.head_init}'")
        backbone_preset(self.preset)


# ----------------------------------------------------------------------------- losses


def masked_mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``true`` (0 with a graph if none)."""
    mask = torch.isfinite(true)
    diff = torch.where(mask, pred - torch.nan_to_num(true), torch.zeros_like(pred))
    return (diff ** 2).sum() / mask.sum().clamp(min=1)


def target_loss(outputs: torch.Tensor, targets: torch.Tensor, layout: list[tuple]) -> torch.Tensor:
    """Mean over target groups: one pooled masked MSE for the regression targets, one
    cross-entropy per class target (missing labels ignored).

    outputs ``(batch, n_outputs)``, targets ``(batch, n_targets)``; ``layout`` from
    :func:`output_layout`.
    """
    reg = [(j, s.start) for j, kind, s in layout if kind == "regression"]
    parts = []
    if reg:
        cols, units = zip(*reg)
        parts.append(masked_mse(outputs[:, list(units)], targets[:, list(cols)]))
    for j, kind, s in layout:
        if kind == "class":
            labels = torch.nan_to_num(targets[:, j], nan=-100).long()
            ce = torch.nn.functional.cross_entropy(outputs[:, s], labels, ignore_index=-100,
                                                   reduction="sum")
            parts.append(ce / (labels != -100).sum().clamp(min=1))
    return torch.stack(parts).mean() if parts else outputs.sum() * 0.0


def output_layout(targets: list[dict]) -> list[tuple[int, str, slice]]:
    """(target column, kind, slice of output units) per target."""
    layout, start = [], 0
    for j, t in enumerate(targets):
        kind = t.get("kind", "regression")
        n = len(t["classes"]) if kind == "class" else 1
        layout.append((j, kind, slice(start, start + n)))
        start += n
    return layout


def decode_targets(outputs: np.ndarray, layout: list[tuple]) -> np.ndarray:
    """``(n, n_outputs)`` unscaled outputs -> ``(n, n_targets)`` values (class: argmax code)."""
    out = np.empty((outputs.shape[0], len(layout)))
    for j, kind, s in layout:
        out[:, j] = outputs[:, s].argmax(1) if kind == "class" else outputs[:, s.start]
    return out


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict_specs(model, specs: list[torch.Tensor], n_frames: int, hop: int, *,
                  device: torch.device, batch_size: int = 16, amp: bool = False,
                  per_window: bool = False):
    """Run ``model`` over windows of each spectrogram.

    Returns ``(concepts, outputs)`` in rating units, each ``(n_clips, n)`` (concepts
    ``(n_clips, 0)`` for a black box), the mean over a clip's windows; with ``per_window`` a
    list per clip of ``(starts, concepts (n_windows, n), outputs (n_windows, n))``.
    """
    model.eval()
    items = []  # (clip index, start, window)
    for i, s in enumerate(specs):
        w, starts = windows(s, n_frames, hop)
        items += [(i, st, w[k]) for k, st in enumerate(starts)]
    n_c, n_o = len(model.concept_names), len(model.output_names)
    c_all, o_all = np.zeros((len(items), n_c)), np.zeros((len(items), n_o))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")
    for a in range(0, len(items), batch_size):
        x = torch.stack([it[2] for it in items[a:a + batch_size]]).to(device)
        with autocast:
            out = model(x)
        out = model.unscale(ModelOutput(None if out.concepts is None else out.concepts.float(),
                                        out.targets.float()))
        if out.concepts is not None:
            c_all[a:a + len(x)] = out.concepts.cpu().numpy()
        o_all[a:a + len(x)] = out.targets.cpu().numpy()
    owner = np.array([it[0] for it in items])
    if per_window:
        return [([it[1] for it in items if it[0] == i], c_all[owner == i], o_all[owner == i])
                for i in range(len(specs))]
    concepts = np.stack([c_all[owner == i].mean(0) for i in range(len(specs))]) if specs else c_all
    outputs = np.stack([o_all[owner == i].mean(0) for i in range(len(specs))]) if specs else o_all
    return concepts, outputs


def _predict_sharded(ctx, model, specs, n_frames, hop, config):
    """:func:`predict_specs` with the clips shared out over the processes."""
    mine = list(range(ctx.rank, len(specs), ctx.world))
    c, o = predict_specs(model, [specs[i] for i in mine], n_frames, hop, device=ctx.device,
                         batch_size=config.eval_batch_size, amp=config.amp)
    n_c, n_o = len(model.concept_names), len(model.output_names)
    concepts, outputs = np.zeros((len(specs), n_c)), np.zeros((len(specs), n_o))
    for idx, cc, oo in ddp.gather(ctx, (mine, c.reshape(len(mine), n_c), o.reshape(len(mine), n_o))):
        concepts[idx], outputs[idx] = cc, oo
    return concepts, outputs


def evaluate_split(ctx, model, rows: pd.DataFrame, specs, columns: Columns, split: str,
                   n_frames: int, hop: int, config: TrainConfig) -> pd.DataFrame:
    """Metrics of ``model`` on the clips ``rows`` (annotations rows) in rating units."""
    concepts, outputs = _predict_sharded(ctx, model, specs, n_frames, hop, config)
    layout = output_layout(columns.targets)
    tables = []
    if model.concept_names:
        tables.append(metrics_table(split, "concept", columns.concepts,
                                    rows[columns.concepts].to_numpy(np.float64), concepts))
    if columns.targets:
        tables.append(metrics_table(split, "target", columns.target_names,
                                    rows[columns.target_names].to_numpy(np.float64),
                                    decode_targets(outputs, layout),
                                    [kind == "class" for _, kind, _ in layout]))
    return pd.concat(tables, ignore_index=True)


# ----------------------------------------------------------------------------- training


def fit(table: pd.DataFrame, features, columns: Columns, out: str | Path,
        config: TrainConfig | None = None, *, fps: float, frontend: dict | None = None,
        data: dict | None = None, resume: bool = False, overwrite: bool = False,
        progress: bool = True):
    """Train on in-memory data and write the run directory ``out``.

    Parameters
    ----------
    table : annotations [index=clip; columns split, *concepts, *targets] (see ARCHITECTURE.md).
    features : mapping clip -> spectrogram ``(n_bands, n_frames)`` (array or tensor).
    columns : which concepts and targets to learn.
    config : :class:`TrainConfig` (default: the defaults).
    fps : frames per second of the spectrograms (31.25 for the paper front end).
    frontend : the front end's ``config()``, stored so predictions use the same features.
    data : provenance stored with the model (spec path, root...).
    resume : continue from ``out/checkpoint.pt`` if there is one.
    overwrite : replace an existing run directory.

    Returns
    -------
    Run (see :func:`midlevel.training.load_run`); under DDP every process returns it.
    """
    config = config or TrainConfig()
    config.check()
    owned = not torch.distributed.is_initialized()  # else the caller owns the group
    ctx = ddp.setup(config.device)
    try:
        return _fit(ctx, table, features, columns, Path(out), config, fps=fps,
                    frontend=frontend, data=data or {}, resume=resume, overwrite=overwrite,
                    progress=progress)
    finally:
        if owned:
            ddp.teardown(ctx)


def _prepare_dir(ctx, out: Path, resume: bool, overwrite: bool) -> None:
    if ctx.main:
        if out.exists() and any(out.iterdir()) and not resume:
            if not overwrite:
                raise CheckpointError(f"{out}: run directory exists; pass --overwrite to replace "
                                      f"it or --resume to continue it")
            if not (out / "config.yaml").is_file():
                raise CheckpointError(f"{out}: not a run directory (no config.yaml); refusing "
                                      f"to delete it")
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    ddp.barrier(ctx)


def _fit(ctx, table, features, columns, out, config, *, fps, frontend, data, resume,
         overwrite, progress):
    mode = config.mode
    if mode != "blackbox" and not columns.concepts:
        raise TrainingError(f"mode '{mode}' trains a concept bottleneck, but the data has no "
                            f"concept columns; add concepts to the spec or use --mode blackbox")
    if mode == "blackbox" and not columns.targets:
        raise TrainingError("mode 'blackbox' needs target columns, but the data has none")
    missing = [c for c in ["split", *columns.concepts, *columns.target_names] if c not in table]
    if missing:
        raise TrainingError(f"annotations table lacks column(s) {missing}")
    _prepare_dir(ctx, out, resume, overwrite)
    handler = _log_to_file(ctx, out / "train.log")
    try:
        return _train_and_finish(ctx, table, features, columns, out, config, fps=fps,
                                 frontend=frontend, data=data, resume=resume, progress=progress)
    finally:
        if handler is not None:
            logging.getLogger("midlevel").removeHandler(handler)
            handler.close()


def _log_to_file(ctx, path: Path):
    """Log to ``RUN/train.log`` on rank 0; other ranks only log warnings."""
    if not ctx.main:
        logging.getLogger("midlevel").setLevel(logging.WARNING)
        return None
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("midlevel")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def _train_and_finish(ctx, table, features, columns, out, config, *, fps, frontend, data,
                      resume, progress):
    mode = config.mode
    n_frames = window_frames(config.crop_seconds, fps)
    hop = max(1, int(round((config.eval_hop_seconds or config.crop_seconds) * fps)))
    splits = {s: table[table["split"] == s] for s in ("train", "validation", "test")}
    if len(splits["train"]) == 0:
        raise TrainingError("the training split is empty")
    scales = Scales.fit(splits["train"], features, columns)
    sets = {s: ClipSet(rows, features, columns, scales, fps=fps) for s, rows in splits.items()}
    for s, clips in sets.items():
        if clips.n_short(n_frames):
            log.info("%d of %d %s clips are shorter than %.1f s: padded with silence",
                     clips.n_short(n_frames), len(clips), s, config.crop_seconds)
    train_set = sets["train"]

    torch.manual_seed(config.seed)  # initial weights
    model = build_model("blackbox" if mode == "blackbox" else "bottleneck", columns.concepts,
                        columns.targets, config.backbone())
    _set_scales(model, scales, columns)
    if mode == "joint" and config.head_init == "lstsq":
        _init_head(model, train_set, columns)
    if mode in ("independent", "sequential"):
        for p in model.head_layer.parameters():
            p.requires_grad_(False)
    model.to(ctx.device)
    net = model
    if ctx.distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                                 lr=config.lr, weight_decay=config.weight_decay)

    state = {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "best_state": None,
             "bad_epochs": 0, "history": [], "finished": False}
    if resume and (out / STATE_FILE).is_file():
        ckpt = load_checkpoint(out / STATE_FILE)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        log.info("resuming %s after epoch %d", out, state["epoch"])
    elif ctx.main:
        write_text_atomic(yaml.safe_dump({"config": dataclasses.asdict(config), "data": data,
                                          "frontend": frontend, "fps": fps,
                                          "concepts": columns.concepts,
                                          "targets": columns.targets}, sort_keys=False),
                          out / "config.yaml")
    log.info("%s: %s mode, %d train / %d validation / %d test clips, %d parameters", out, mode,
             len(train_set), len(sets["validation"]), len(sets["test"]),
             sum(p.numel() for p in model.parameters()))

    layout = output_layout(columns.targets)
    amp = config.amp and ctx.device.type == "cuda"
    epochs = tqdm(range(state["epoch"], config.epochs), desc=f"train {mode}", unit="epoch",
                  initial=state["epoch"], total=config.epochs, disable=not (progress and ctx.main))
    for epoch in epochs:
        if state["finished"]:
            break
        t0 = time.time()
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(train_set))
        offsets = train_set.crop_offsets(n_frames, rng)
        torch.manual_seed(config.seed * 100_003 + epoch * 101 + ctx.rank)
        batches = [order[a:a + config.batch_size] for a in range(0, len(order), config.batch_size)]
        batches = [b for b in batches if len(b) >= max(2, ctx.world)]  # BatchNorm needs 2
        net.train()
        sums = np.zeros(3)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                   disable=not (progress and ctx.main))
        for b, idx in enumerate(bar):
            x, c, y = train_set.batch(idx[ctx.rank::ctx.world], offsets, n_frames)
            x, c, y = x.to(ctx.device), c.to(ctx.device), y.to(ctx.device)
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=amp):
                o = net(x)
            lt = target_loss(o.targets.float(), y, layout)
            lc = masked_mse(o.concepts.float(), c) if o.concepts is not None else lt * 0.0
            loss = {"blackbox": lt, "joint": config.w * lt + (1 - config.w) * lc}.get(mode, lc)
            value = ddp.mean_scalar(ctx, float(loss.detach()))
            if not math.isfinite(value):
                raise TrainingError(f"non-finite loss ({value}) at epoch {epoch + 1}, batch "
                                    f"{b + 1}; check the data for extreme values or lower the "
                                    f"learning rate (now {config.lr})")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums += [value, float(lc.detach()), float(lt.detach())]
            bar.set_postfix(loss=f"{sums[0] / (b + 1):.4f}")
        model.eval()
        if config.recalibrate_bn:
            _recalibrate(ctx, model, train_set.specs, n_frames, hop, config)
        if len(sets["validation"]):
            val = evaluate_split(ctx, model, splits["validation"], sets["validation"].specs,
                                 columns, "validation", n_frames, hop, config)
            val_score = score(val, _SCORED[mode], metric=config.select_on)
        else:
            val_score = float(epoch)  # no validation split: the last epoch is the best
        n_b = max(1, len(batches))
        state["history"].append({"epoch": epoch + 1, "loss": sums[0] / n_b,
                                 "concept_loss": sums[1] / n_b, "target_loss": sums[2] / n_b,
                                 "val_score": val_score, "seconds": time.time() - t0})
        state["epoch"] = epoch + 1
        if val_score > state["best_score"]:
            state.update(best_score=val_score, best_epoch=epoch + 1, bad_epochs=0,
                         best_state=copy.deepcopy(_cpu_state(model)))
        else:
            state["bad_epochs"] += 1
            state["finished"] = state["bad_epochs"] >= config.patience
        epochs.set_postfix(loss=f"{state['history'][-1]['loss']:.4f}", val=f"{val_score:.3f}")
        log.info("epoch %d: loss %.4f, validation score %.4f%s", epoch + 1,
                 state["history"][-1]["loss"], val_score,
                 " (early stop)" if state["finished"] else "")
        if ctx.main:
            save_atomic({"format": FORMAT, "model": _cpu_state(model),
                         "optimizer": optimizer.state_dict(), "state": state},
                        out / STATE_FILE)
            write_text_atomic(pd.DataFrame(state["history"]).to_csv(index=False),
                              out / "history.csv")
        ddp.barrier(ctx)
    epochs.close()
    return _finish(ctx, model, state, sets, splits, columns, out, config, n_frames, hop,
                   scales=scales, fps=fps, frontend=frontend, data=data)


def _recalibrate(ctx, model, specs, n_frames: int, hop: int, config: TrainConfig) -> None:
    """Re-estimate the BatchNorm statistics on the training clips' evaluation windows with
    dropout off (see :mod:`midlevel.training.batchnorm`); the windows are shared out over the
    processes and the sums added up."""
    items = [(i, st) for i, s in enumerate(specs)
             for st in window_starts(s.shape[1], n_frames, hop)][ctx.rank::ctx.world]
    size = config.eval_batch_size
    batches = (torch.stack([crop(specs[i], st, n_frames) for i, st in items[a:a + size]])
               .unsqueeze(1) for a in range(0, len(items), size))
    recalibrate_batchnorm(model, batches, device=ctx.device, autocast=config.amp,
                          reduce=(lambda t: ddp.sum_tensor(ctx, t)) if ctx.distributed else None)


def _calibrate_concepts(ctx, model, sets, columns, scales, n_frames, hop, config):
    """Recalibrate the predicted concepts on the validation split and fold the lines into the
    model (:mod:`midlevel.training.calibration`). Returns ``{concept: line}`` (scaled units)
    or None when not done."""
    val = sets["validation"]
    if model.kind != "bottleneck" or not config.calibrate_concepts or len(val) == 0:
        return None
    pred, _ = _predict_sharded(ctx, model, val.specs, n_frames, hop, config)
    lines = calibration_lines((pred - scales.concept_mean) / scales.concept_std,
                              val.concepts.numpy().astype(np.float64))
    fold_into_model(model, lines, compensate_head=config.mode == "joint")
    for name, ln in zip(columns.concepts, lines):
        log.info("concept %s: validation calibration slope %.3f, intercept %.3f (%d clips)%s",
                 name, ln["slope"], ln["intercept"], ln["n"],
                 "" if ln["applied"] else ": not applied (slope not clearly positive or too "
                 "few clips)")
    return dict(zip(columns.concepts, lines))


def _init_head(model, train: ClipSet, columns: Columns) -> None:
    """Joint mode: start the head from the least-squares map of true concepts to targets.

    With random weights the small concept -> target head needs thousands of steps at the
    paper's learning rate before the target loss helps; this start is the independent mode's
    head, which joint training then adapts to the predicted concepts.
    """
    try:
        weight, bias = fit_head(train.concepts.numpy().astype(np.float64),
                                train.targets.numpy().astype(np.float64), columns.targets)
    except TrainingError as exc:
        log.info("head starts from random weights: %s", exc)
        return
    with torch.no_grad():
        model.head_layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        model.head_layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


def _set_scales(model, scales: Scales, columns: Columns) -> None:
    """Copy the training split's statistics into the model (per output unit for targets)."""
    layout = output_layout(columns.targets)
    n_o = len(model.output_names)
    t_mean, t_std = np.zeros(n_o), np.ones(n_o)
    for j, kind, s in layout:
        if kind == "regression":
            t_mean[s], t_std[s] = scales.target_mean[j], scales.target_std[j]
    model.set_scales(input_mean=scales.input_mean, input_std=scales.input_std,
                     concept_mean=scales.concept_mean if model.concept_names else None,
                     concept_std=scales.concept_std if model.concept_names else None,
                     target_mean=t_mean, target_std=t_std)


def _cpu_state(model) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _finish(ctx, model, state, sets, splits, columns, out, config, n_frames, hop, *, scales,
            fps, frontend, data):
    """Best weights back, head fitted (independent / sequential), metrics, model.pt."""
    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    model.eval()
    calibration = _calibrate_concepts(ctx, model, sets, columns, scales, n_frames, hop, config)
    design = None
    if config.mode in ("independent", "sequential"):
        train = sets["train"]
        if config.mode == "independent":
            X, source = train.concepts.numpy().astype(np.float64), "true concepts"
        else:
            pred, _ = _predict_sharded(ctx, model, train.specs, n_frames, hop, config)
            X = (pred - scales.concept_mean) / scales.concept_std
            source = "predicted concepts"
        Y = train.targets.numpy().astype(np.float64)
        weight, bias = fit_head(X, Y, columns.targets)
        with torch.no_grad():
            model.head_layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            model.head_layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        design = {"clips": train.clips, "X": X, "Y": Y, "source": source,
                  "units": "z-scored with the training split's mean and std"}
    tables = [evaluate_split(ctx, model, splits[s], sets[s].specs, columns, s, n_frames, hop,
                             config)
              for s in ("train", "validation", "test") if len(sets[s])]
    metrics = pd.concat(tables, ignore_index=True)
    if ctx.main:
        save_atomic({"format": FORMAT, "version": midlevel.__version__,
                     "torch": torch.__version__, "kind": model.kind, "mode": config.mode,
                     "init_args": model.init_args, "state_dict": _cpu_state(model),
                     "config": dataclasses.asdict(config), "data": data, "frontend": frontend,
                     "fps": fps, "scales": scales.to_dict(), "head_design": design,
                     "bn_recalibrated": bool(config.recalibrate_bn),
                     "concept_calibration": calibration,
                     "epochs": state["epoch"], "best_epoch": state["best_epoch"]},
                    out / MODEL_FILE)
        write_text_atomic(metrics.to_csv(index=False), out / "metrics.csv")
        log.info("best epoch %d of %d; metrics in %s\n%s", state["best_epoch"], state["epoch"],
                 out / "metrics.csv", format_table(metrics))
    ddp.barrier(ctx)
    from midlevel.training.run import load_run
    return load_run(out)
