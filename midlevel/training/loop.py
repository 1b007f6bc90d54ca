"""The training loop: ``fit`` for every mode (see :mod:`midlevel.training.strategies`), on
spectrograms held in memory or streamed from the feature cache (chosen from the dataset's size
and ``max_memory``, see :mod:`midlevel.training.stream`; the same batches either way).

Losses are masked: a clip missing some ratings trains only what it has. Every epoch ends with the
BatchNorm statistics re-estimated with dropout off (:mod:`midlevel.training.batchnorm`), a
whole-clip validation pass (early stopping on the mean R^2 of what the mode trains, a score
that sees level and scale, not only order) and an atomic checkpoint, so ``resume=True``
continues from the last completed epoch. Crops and dropout are seeded from (seed, epoch), so a
resumed run repeats exactly what the uninterrupted one does. At the end the best epoch's
weights come back, the predicted concepts are recalibrated on the calibration split (the
validation split where the spec has none; :mod:`midlevel.training.concept_lines`), a
closed-form head is fitted (independent, sequential), and ``model.pt`` and ``metrics.csv`` are
written (:mod:`midlevel.run`).
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from midlevel.data.spec import SPLITS
from midlevel.errors import CheckpointError, TrainingError
from midlevel.io import write_csv, write_yaml
from midlevel.models.bottleneck import build_model, output_layout
from midlevel.models.layout import place
from midlevel.run import load_run
from midlevel.training.checkpoint import (
    CONFIG_FILE, STATE_FILE, cpu_state, read_checkpoint, software_versions, write_history,
    write_model, write_state,
)
from midlevel.training import ddp
from midlevel.training.batchnorm import recalibrate_batchnorm
from midlevel.training.calibration import keep_epoch
from midlevel.training.concept_lines import calibrate_concepts
from midlevel.training.config import TrainConfig
from midlevel.data.frontends import window_frames
from midlevel.training.data import ClipSet, window_starts
from midlevel.training.scales import Scales
from midlevel.training.evaluation import evaluate_split, split_metrics, split_predictions
from midlevel.training.losses import binary_terms, loss_counts
from midlevel.training.metrics import format_table, score
from midlevel.training.precheck import check_before_start
from midlevel.training.datarecord import audio_keys, fingerprints, recorded_only, write_splits
from midlevel.training.rundir import (check_resume, run_directory, stored_record,
                                      warn_on_resume)
from midlevel.training.strategies import strategy
from midlevel.training.stream import choose_storage, make_loader, stopping_workers_on_error

log = logging.getLogger("midlevel.training")


def fit(table: pd.DataFrame, features, columns, out: str | Path,
        config: TrainConfig | None = None, *, fps: float, frontend: dict | None = None,
        data: dict | None = None, resume: bool = False, overwrite: bool = False,
        progress: bool = True):
    """Train and write the run directory ``out``.

    Parameters
    ----------
    table : annotations [index=clip; columns split, *concepts, *targets] (see ARCHITECTURE.md).
    features : mapping clip -> spectrogram ``(n_bands, n_frames)`` (array or tensor), or a
        :class:`~midlevel.data.stream.MappedFeatures` of the feature cache's files: held in
        memory when they fit ``config.max_memory``, else streamed.
    columns : :class:`midlevel.training.data.Columns`, which concepts and targets to learn.
    config : :class:`TrainConfig` (default: the defaults).
    fps : frames per second of the spectrograms (31.25 for the paper front end).
    frontend : the front end's ``config()``, stored so predictions use the same features.
    data : provenance stored with the model (spec path, root...).
    resume : continue from ``out/checkpoint.pt`` if there is one.
    overwrite : replace an existing run directory.

    Returns :class:`midlevel.run.Run` (under DDP every process returns it). The caller's
    torch random state is left as it was (training draws from forked generators; audit 23b).
    """
    config = config or TrainConfig()
    config.check()
    owned = not torch.distributed.is_initialized()  # else the caller owns the group
    ctx = ddp.setup(config.device)
    try:
        with torch.random.fork_rng(devices=ctx.cuda_devices):  # the caller's state kept
            out = Path(out)
            mode = strategy(config.mode)
            mode.check(columns)
            missing = [c for c in ["split", *columns.concepts, *columns.target_names]
                       if c not in table]
            if missing:
                raise TrainingError(f"annotations table lacks column(s) {missing}")
            check_before_start(ctx, table, features, columns, config, fps)
            if resume:  # refused before the run directory is touched
                check_resume(out, config, columns, table, features)
            with run_directory(ctx, out, resume=resume, overwrite=overwrite):
                trainer = Trainer(ctx, table, features, columns, out, config, fps=fps,
                                  frontend=frontend, data=data or {})
                trainer.start(resume)
                trainer.train(progress)
                run = trainer.finish()
    except BaseException as exc:
        if owned:
            ddp.teardown(ctx, failed=True)
        lost = ddp.peer_lost(ctx, exc)
        if lost is not None:
            raise lost from exc
        raise
    if owned:
        ddp.teardown(ctx)
    return run


def make_adam(params, *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel (one kernel for all parameters instead of a Python loop over
    them: the loop was 15 % of a ``paper`` step on the CPU), falling back to the multi-tensor
    ``foreach`` implementation where the fused one is not available."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)


class Trainer:
    """One training run: data, model, optimizer and early-stopping state."""

    def __init__(self, ctx, table, features, columns, out: Path, config: TrainConfig, *,
                 fps: float, frontend: dict | None, data: dict):
        self.ctx, self.columns, self.out, self.config = ctx, columns, out, config
        self.fps, self.frontend, self.split_column = fps, frontend, table["split"]
        names = [*columns.concepts, *columns.target_names]
        self.data = {**data, **fingerprints(table, names), "versions": software_versions()}
        self.audio = audio_keys(features)  # before features may be read into memory
        self.strategy = strategy(config.mode)
        self.n_frames = window_frames(config.crop_seconds, fps)
        self.hop = max(1, int(round((config.eval_hop_seconds or config.crop_seconds) * fps)))
        self.splits = {s: table[table["split"] == s] for s in SPLITS}
        if len(self.splits["train"]) == 0:
            raise TrainingError("the training split is empty")
        features, self.streamed = choose_storage(
            features, [c for rows in self.splits.values() for c in rows.index], config, ctx)
        self._loader, self.progress = None, False
        self._features = features
        self._use_scales(Scales.fit(self.splits["train"], features, columns))
        for s, clips in self.sets.items():
            if clips.n_short(self.n_frames):
                log.info("%d of %d %s clips are shorter than %.1f s: padded with silence",
                         clips.n_short(self.n_frames), len(clips), s, config.crop_seconds)
        self.terms = binary_terms(columns, self.train_set.concepts.numpy(),
                                  self.train_set.targets.numpy(), config.balance).to(ctx.device)
        torch.manual_seed(config.seed)  # initial weights
        self.model = build_model(self.strategy.model_kind, columns.concepts, columns.targets,
                                 config.backbone(), concept_kinds=columns.concept_kinds,
                                 concept_groups=columns.concept_groups)
        self.scales.apply_to(self.model, columns)
        self.strategy.prepare(self.model, self.train_set, columns, config)
        place(self.model, ctx.device)
        self.net = self.model
        if ctx.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        self.optimizer = make_adam([p for p in self.model.parameters() if p.requires_grad],
                                   lr=config.lr, weight_decay=config.weight_decay)
        self.state = {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "best_state": None,
                      "bad_epochs": 0, "history": [], "finished": False,
                      "validation_predictions": []}

    def start(self, resume: bool) -> None:
        """Continue from ``checkpoint.pt`` (``resume``), or start; either way write
        ``config.yaml`` (on a resume: the settings and data record of the resume, which
        ``check_resume`` found to be the run's data, as ``model.pt`` will have them) and, on a
        start, ``splits.csv``."""
        out, config = self.out, self.config
        resumed = resume and (out / STATE_FILE).is_file()
        if resumed:
            ckpt = read_checkpoint(out / STATE_FILE)
            try:
                self.model.load_state_dict(ckpt["model"])
                self.optimizer.load_state_dict(ckpt["optimizer"])
            except (RuntimeError, ValueError, KeyError) as exc:  # a model of other columns
                raise CheckpointError(f"{out / STATE_FILE}: does not fit the model of these "
                                      f"data and settings ({exc})") from exc
            self.state = ckpt["state"]
            stored = Scales.from_model(self.model, self.columns, self.scales)
            if not stored.close_to(self.scales):  # fitted by an older rule (a column
                self._use_scales(stored)         # without spread): train on as begun
            # None: a checkpoint of a version that kept no validation predictions
            self.state.setdefault("validation_predictions", None)
            log.info("resuming %s after epoch %d", out, self.state["epoch"])
            self.data = recorded_only(self.data, (stored_record(out) or {}).get("data") or {})
            warn_on_resume(self.ctx, self.out, self.state, self.config)
        if self.ctx.main:
            write_yaml(out / CONFIG_FILE, {"config": dataclasses.asdict(config),
                                           "data": self.data, "frontend": self.frontend,
                                           "fps": self.fps, "concepts": self.columns.concepts,
                                           "concept_kinds": self.columns.concept_kinds,
                                           "targets": self.columns.targets}, sort_keys=False)
            if not resumed:
                write_splits(out, self.split_column.to_frame(), self.audio)
        log.info("%s: %s mode, %s clips, %d parameters, seed %d, %d torch thread(s)%s", out,
                 config.mode, " / ".join(f"{len(self.sets[s])} {s}" for s in SPLITS
                                         if s != "calibration" or len(self.sets[s])),
                 sum(p.numel() for p in self.model.parameters()), config.seed,
                 torch.get_num_threads(), ", bfloat16 training steps"
                 if config.autocast_steps(self.ctx.device) else "")

    def _use_scales(self, scales: Scales) -> None:
        """Scale the clips' labels by ``scales`` (the model's buffers hold them too)."""
        self.scales = scales
        self.sets = {s: ClipSet(rows, self._features, self.columns, scales, fps=self.fps)
                     for s, rows in self.splits.items()}
        self.train_set = self.sets["train"]

    def train(self, progress: bool) -> None:
        """Epochs until ``config.epochs`` or early stopping."""
        state, config, ctx = self.state, self.config, self.ctx
        self.progress = progress and ctx.main  # bars of the BatchNorm pass and the metrics too
        epochs = tqdm(range(state["epoch"], config.epochs), desc=f"train {config.mode}",
                      unit="epoch", initial=state["epoch"], total=config.epochs,
                      disable=not (progress and ctx.main))
        # on any error (a SIGTERM to the process group too) a streaming loader's workers stop
        with stopping_workers_on_error(lambda: self._loader and self._loader[0]):
            for epoch in epochs:
                if state["finished"]:
                    break
                t0 = time.time()
                losses, n_batches = self._epoch(epoch, progress)
                val_score = self._validate(epoch)
                state["history"].append({"epoch": epoch + 1, "loss": losses[0] / n_batches,
                                         "concept_loss": losses[1] / n_batches,
                                         "target_loss": losses[2] / n_batches,
                                         "val_score": val_score, "seconds": time.time() - t0,
                                         "processes": ctx.world, "threads": torch.get_num_threads(),
                                         "bf16": bool(config.autocast_steps(ctx.device))})
                state["epoch"] = epoch + 1
                if math.isnan(val_score):
                    log.warning("epoch %d: no validation score (NaN: no column the %s mode is "
                                "selected on gave a %s, e.g. for constant predictions); the epoch "
                                "counts as not improving", epoch + 1, config.mode, config.select_on)
                if val_score > state["best_score"]:
                    state.update(best_score=val_score, best_epoch=epoch + 1, bad_epochs=0,
                                 best_state=copy.deepcopy(cpu_state(self.model)))
                else:
                    state["bad_epochs"] += 1
                    state["finished"] = state["bad_epochs"] >= config.patience
                epochs.set_postfix(loss=f"{state['history'][-1]['loss']:.4f}",
                                   val=f"{val_score:.3f}")
                log.info("epoch %d: loss %.4f, validation score %.4f%s", epoch + 1,
                         state["history"][-1]["loss"], val_score,
                         " (early stop)" if state["finished"] else "")
                if ctx.main:
                    write_state(self.out, model=self.model, optimizer=self.optimizer, state=state)
                    write_history(self.out, state["history"])
                ddp.barrier(ctx)
        epochs.close()
        self._loader = None  # a streaming DataLoader's workers end here

    def _epoch(self, epoch: int, progress: bool) -> tuple[np.ndarray, int]:
        """One pass over the training crops; returns the loss sums and the batch count."""
        config, ctx, train_set = self.config, self.ctx, self.train_set
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(len(train_set))
        offsets = train_set.crop_offsets(self.n_frames, rng)
        seed = (config.seed * 100_003 + epoch * 101 + ctx.rank) % 2 ** 64  # torch's range
        torch.default_generator.manual_seed(seed)  # not torch.manual_seed: its lazy CUDA
        if ctx.device.type == "cuda":              # seeding costs 1 ms on a CPU-only run
            torch.cuda.manual_seed(seed)
        batches = [order[a:a + config.batch_size]
                   for a in range(0, len(order), config.batch_size)]
        least = max(2, ctx.world)  # BatchNorm needs 2 clips, each process 1
        if batches and len(batches[-1]) < least and ctx.main and epoch == self.state["epoch"]:
            log.info("each epoch leaves out its last %d training clip(s) (a batch of fewer "
                     "than %d), other ones each epoch", len(batches[-1]), least)
        batches = [b for b in batches if len(b) >= least]
        layout = output_layout(self.columns.targets)
        amp = config.autocast_steps(ctx.device)
        self.net.train()
        sums = np.zeros(3)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                   disable=not (progress and ctx.main))
        for b, (x, c, y) in enumerate(self._batches(batches, offsets, bar)):
            x, c, y = x.to(ctx.device), c.to(ctx.device), y.to(ctx.device)
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=amp):
                o = self.net(x)
            loss, lc, lt = self.strategy.loss(o, c, y, layout, config, self.terms,
                                              counts=self._global_counts(c, y, layout))
            # all three averaged over the processes alike, so that history.csv's concept and
            # target losses combine to its loss as they do in one process
            value, value_c, value_t = ddp.mean_values(ctx, [loss, lc, lt])
            if not math.isfinite(value):
                raise TrainingError(f"non-finite loss ({value}) at epoch {epoch + 1}, batch "
                                    f"{b + 1}; check the data for extreme values or lower the "
                                    f"learning rate (now {config.lr})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            sums += [value, value_c, value_t]
            bar.set_postfix(loss=f"{sums[0] / (b + 1):.4f}")
        return sums, max(1, len(batches))

    def _global_counts(self, c, y, layout):
        """DDP: the mean over the processes of the batch's label counts, the losses'
        denominators (:mod:`midlevel.training.losses`); alone: None (the batch's own)."""
        if not self.ctx.distributed:
            return None
        total = ddp.sum_tensor(self.ctx, loss_counts(c, y, layout))
        return torch.where(total > 0, total / self.ctx.world, 1.0).to(torch.float32)

    def _batches(self, batches, offsets, bar):
        """This rank's share of each batch (``bar`` iterates ``batches`` showing progress):
        in memory, or from the streaming DataLoader."""
        ctx, n = self.ctx, self.n_frames
        if not self.streamed:
            for idx in bar:
                yield self.train_set.batch(idx[ctx.rank::ctx.world], offsets, n)
            return
        if self._loader is None:
            self._loader = make_loader(self.train_set, n, ctx, self.config)
        loader, sampler = self._loader
        sampler.set_epoch(batches, offsets)
        for batch, _ in zip(loader, bar):
            yield batch
        bar.close()

    def _validate(self, epoch: int) -> float:
        """BatchNorm re-estimated, then the validation score (the epoch number without one)."""
        self.model.eval()
        if self.config.recalibrate_bn:
            self._recalibrate_batchnorm()
        if not len(self.sets["validation"]):
            return float(epoch)  # no validation split: the last epoch is the best
        concepts, targets = split_predictions(
            self.ctx, self.model, self.sets["validation"].specs, self.columns, self.n_frames,
            self.hop, self.config, progress="validation" if self.progress else None)
        val = split_metrics(self.splits["validation"], self.columns, "validation", concepts,
                            targets)
        value = score(val, self.strategy.scored, metric=self.config.select_on)
        if self.state["validation_predictions"] is not None:  # for the line's bootstrap
            keep_epoch(self.state["validation_predictions"], epoch + 1, value, concepts,
                       targets)
        return value

    def _recalibrate_batchnorm(self) -> None:
        """Re-estimate the BatchNorm statistics on the training clips' evaluation windows with
        dropout off, in batches of ``bn_batch_size`` windows (each BatchNorm normalizes with
        its batch, so the later layers' statistics depend on the batches: part of the model);
        the batches, made as one process makes them, are shared out over the processes (rank
        ``r`` of ``w`` takes every ``w``-th batch) and the sums added up, so the statistics
        do not depend on the process count."""
        ctx, clips, n = self.ctx, self.train_set, self.n_frames
        items = [(i, st) for i, length in enumerate(clips.lengths)
                 for st in window_starts(int(length), n, self.hop)]
        size = self.config.bn_batch_size
        starts = range(0, len(items), size)[ctx.rank::ctx.world]
        starts = tqdm(starts, desc="BatchNorm statistics", unit="batch", leave=False,
                      disable=not self.progress)
        batches = (torch.stack([clips.crop(i, st, n) for i, st in items[a:a + size]])
                   .unsqueeze(1) for a in starts)
        recalibrate_batchnorm(self.model, batches, device=ctx.device, autocast=self.config.amp,
                              reduce=(lambda t: ddp.sum_tensor(ctx, t)) if ctx.distributed
                              else None)

    def finish(self):
        """Best weights back, concepts recalibrated, head fitted, metrics, ``model.pt``."""
        ctx, state, model = self.ctx, self.state, self.model
        if state["best_state"] is not None:
            model.load_state_dict(state["best_state"])
        model.eval()
        calibration = calibrate_concepts(
            ctx, model, self.sets, self.columns, self.scales, self.config, self.n_frames,
            self.hop, kept=state["validation_predictions"],
            validation_rows=self.splits["validation"], scored=self.strategy.scored,
            progress=self.progress)
        design = self.strategy.finish_head(ctx, model, self.train_set, self.scales,
                                           self.columns, self.n_frames, self.hop, self.config,
                                           progress=self.progress)
        metrics = pd.concat([evaluate_split(ctx, model, self.splits[s], self.sets[s].specs,
                                            self.columns, s, self.n_frames, self.hop,
                                            self.config, progress=self.progress)
                             for s in SPLITS if len(self.sets[s])],
                            ignore_index=True)
        if ctx.main:
            write_history(self.out, state["history"])  # a kill may have cut the last row
            write_model(self.out, model, config=self.config, data=self.data,
                        frontend=self.frontend, fps=self.fps, scales=self.scales.to_dict(),
                        head_design=design, calibration=calibration, epochs=state["epoch"],
                        best_epoch=state["best_epoch"], metrics=metrics)
            write_csv(metrics, self.out / "metrics.csv")
            if not state["best_epoch"] and len(self.sets["validation"]):
                log.warning("no epoch had a validation score: the weights are the last "
                            "epoch's (%d)", state["epoch"])
            log.info("best epoch %d of %d; metrics in %s\n%s", state["best_epoch"],
                     state["epoch"], self.out / "metrics.csv", format_table(metrics))
        ddp.barrier(ctx)
        return load_run(self.out)
