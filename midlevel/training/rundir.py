"""The run directory while ``fit`` writes it: made (or replaced with permission), logged to
(``train.log``), and removed again when training fails before its first completed epoch, so
that a failed start leaves nothing half-made behind; a resume is checked against the run's
stored record (``config.yaml``) before anything in it is touched."""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
from pathlib import Path

import yaml

from midlevel.errors import CheckpointError, TrainingError
from midlevel.io import LOCK_FILE, folder_lock, log_handler
from midlevel.training.checkpoint import CONFIG_FILE, MODEL_FILE, STATE_FILE, read_checkpoint
from midlevel.training import ddp
from midlevel.training.config import stored_config
from midlevel.training.datarecord import audio_keys, check_same_audio, check_same_data

log = logging.getLogger("midlevel.training")


RESUMABLE = ("epochs", "device", "max_memory", "workers", "cpu_bf16", "eval_batch_size")
"""The settings a resume may change: the maximum epochs and how the work is done, never what
the model is or how it learns."""

OPTIONS = {"mode": "--mode", "preset": "--preset", "seed": "--seed"}


def stored_record(out: Path) -> dict | None:
    """The run's ``config.yaml`` when ``out`` holds a resumable run (a checkpoint), else None."""
    if not (out / STATE_FILE).is_file() or not (out / CONFIG_FILE).is_file():
        return None
    try:
        record = yaml.safe_load((out / CONFIG_FILE).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{out / CONFIG_FILE}: cannot read the run's record ({exc})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise CheckpointError(f"{out / CONFIG_FILE}: not a run's record (no 'config' mapping)")
    return record


def check_settings(out: Path, stored: dict, given: dict) -> None:
    """TrainingError naming every setting of ``given`` (checked values) that is not
    :data:`RESUMABLE` and differs from the run's ``stored`` config: resuming keeps the run's
    (a key the run's version did not store is not compared)."""
    changed = [f"{OPTIONS.get(k, f'config key {k!r}')} {given[k]!r} (the run's: {stored[k]!r})"
               for k in given if k not in RESUMABLE and k in stored and given[k] != stored[k]]
    if changed:
        raise TrainingError(
            f"{out}: --resume continues the run with the settings it was started with "
            f"({out / CONFIG_FILE}), and these differ: {'; '.join(changed)}. Leave them out to "
            f"resume (only --epochs, --device, --bf16, --max-memory, --workers and the config "
            f"key eval_batch_size may change), "
            f"or train a new run with another --out (or --overwrite)")


def check_resume(out: Path, config, columns, table=None, features=None) -> None:
    """Before resuming ``out``: the data's concepts and targets (names, kinds, classes, in
    order) are the run's (CheckpointError naming the difference), ``config`` differs from
    the run's only in :data:`RESUMABLE` settings (TrainingError naming each) and the
    annotations ``table`` holds the run's clips in the run's splits with the run's ratings
    (CheckpointError naming what differs: :func:`~midlevel.training.datarecord.check_same_data`)
    and ``features`` read from the feature cache hold the run's audio
    (:func:`~midlevel.training.datarecord.check_same_audio`).
    Nothing is checked when ``out`` holds no checkpoint (a resume that starts afresh)."""
    record = stored_record(out)
    if record is None:
        return
    ours = {"concepts": list(columns.concepts), "targets": _targets(columns.targets)}
    theirs = {"concepts": list(record.get("concepts") or []),
              "targets": _targets(record.get("targets") or [])}
    if record.get("concept_kinds") is not None and ours["concepts"] == theirs["concepts"]:
        ours["concept kinds"] = list(columns.concept_kinds)
        theirs["concept kinds"] = list(record["concept_kinds"])
    differ = [f"{key}: the data's {ours[key]} vs the run's {theirs[key]}" for key in ours
              if ours[key] != theirs[key]]
    if differ:
        raise CheckpointError(f"{out}: cannot resume on data whose columns are not the run's "
                              f"({'; '.join(differ)}); resume with the spec (and --root) the "
                              f"run was trained on, or train a new run with another --out")
    check_settings(out, stored_config(record["config"]), dataclasses.asdict(config))
    if table is not None:
        check_same_data(out, table, [*columns.concepts, *columns.target_names], record)
    if features is not None:
        check_same_audio(out, audio_keys(features))


def epochs_done(out: Path) -> int:
    """The epochs the run in ``out`` has completed (its ``checkpoint.pt``)."""
    return int(read_checkpoint(out / STATE_FILE)["state"]["epoch"])


def _targets(targets: list[dict]) -> list[str]:
    """Each target as ``name (kind[: classes])``, what its outputs are."""
    return [f"{t['name']} ({t.get('kind', 'regression')}"
            + (f": {', '.join(map(str, t['classes']))}" if t.get("classes") else "") + ")"
            for t in targets]


@contextlib.contextmanager
def run_directory(ctx, out: Path, *, resume: bool, overwrite: bool):
    """Make ``out`` (see :func:`prepare`) and log to ``out/train.log`` inside the block.

    A directory this call made that holds no checkpoint when the block fails (or is
    interrupted) is removed: no epoch was completed, so nothing is lost, and the next call
    needs no ``--overwrite``. A run an ``--overwrite`` was replacing comes back then (it is
    kept in ``RUN/.midlevel_replaced`` until the block ends; after a kill, the next call
    puts it back, or drops it where the new run has a checkpoint).
    """
    created = not out.exists()
    with _locked(ctx, out), info_for_files(logging.getLogger("midlevel")):
        replaced = prepare(ctx, out, resume, overwrite)
        handler = log_to_file(ctx, out / "train.log")
        try:
            yield out
        except BaseException:
            _detach(handler)
            handler = None
            if ctx.main and out.is_dir() and not (out / STATE_FILE).exists():
                if created:
                    shutil.rmtree(out, ignore_errors=True)
                elif replaced is not None:
                    _restore(out)
            raise
        finally:
            _detach(handler)
            if ctx.main and replaced is not None and replaced.exists() and \
                    (out / STATE_FILE).exists():
                shutil.rmtree(replaced, ignore_errors=True)


# the folder inside RUN that holds the run an --overwrite replaces while the new one trains:
# an --overwrite stopped before its first epoch gives the old run back (audit 22a: it left
# a run folder with a config and no model, the old run gone)
REPLACED = ".midlevel_replaced"


def _restore(out: Path) -> None:
    """Put back the run an interrupted ``--overwrite`` was replacing (rank 0): the new run's
    files go, the old ones return from ``RUN/.midlevel_replaced``."""
    backup = out / REPLACED
    for p in out.iterdir():
        if p.name not in (LOCK_FILE, REPLACED):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    for p in backup.iterdir():
        p.rename(out / p.name)
    backup.rmdir()
    log.warning("%s: the --overwrite stopped before its first epoch; the run it was "
                "replacing is back", out)


@contextlib.contextmanager
def _locked(ctx, out: Path):
    """Rank 0 holds the run directory's lock (:func:`midlevel.io.folder_lock`: released when
    the process ends, a kill included) while it is written: a second training into it (a
    ``--resume`` or an ``--overwrite`` started by mistake) is refused instead of writing over
    the first one's checkpoint or deleting its folder; a folder made here that holds nothing
    but the lock at the end is removed (never by a refused start: it is the other's)."""
    if not ctx.main:
        yield
        return
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(folder_lock(out))
    except BlockingIOError:
        raise CheckpointError(f"{out}: another training is writing this run directory (it "
                              f"holds {out / LOCK_FILE}); wait for it to end or train into "
                              f"another folder") from None
    with stack:
        yield


def prepare(ctx, out: Path, resume: bool, overwrite: bool) -> Path | None:
    """Make ``out``; an existing non-empty one only with ``resume`` or ``overwrite`` (and
    replaced only when it is a run directory). Returns the folder that holds the replaced
    run's files (``RUN/.midlevel_replaced``) while the new run trains (see
    :func:`run_directory`), or None."""
    replaced = None
    if ctx.main:
        if (out / REPLACED).is_dir():  # an --overwrite killed (-9): before its first
            if (out / STATE_FILE).exists():  # epoch the old run comes back, after it goes
                shutil.rmtree(out / REPLACED)
            else:
                _restore(out)
        held = [p for p in out.iterdir() if p.name != LOCK_FILE] if out.exists() else []
        if resume and (out / MODEL_FILE).is_file() and not (out / STATE_FILE).is_file():
            # audit 14c: a resume "started afresh" here and replaced the trained model
            raise CheckpointError(f"{out}: --resume needs the run's {STATE_FILE}, and the "
                                  f"folder holds a trained {MODEL_FILE} without it (copied "
                                  f"without it, or it was removed): there is nothing to "
                                  f"continue from, and starting afresh would replace the "
                                  f"model. Train into another --out, or pass --overwrite "
                                  f"(without --resume) to replace it")
        if held and not resume:
            if not overwrite:
                raise CheckpointError(f"{out}: run directory exists; pass --overwrite to replace "
                                      f"it or --resume to continue it")
            if not (out / CONFIG_FILE).is_file():
                raise CheckpointError(f"{out}: not a run directory (no {CONFIG_FILE}); refusing "
                                      f"to delete it")
            replaced = out / REPLACED  # (an earlier one was restored or dropped above)
            replaced.mkdir()
            for p in held:  # the lock this process holds stays
                p.rename(replaced / p.name)
        out.mkdir(parents=True, exist_ok=True)
    ddp.barrier(ctx)
    return replaced


class _Early(logging.Handler):
    """Keeps what the package logs before ``train.log`` exists (the data's warnings, the
    scoring note: audit 22a found them on the screen only), for :func:`log_to_file`."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] | None = []

    def emit(self, record):
        if self.records is not None:
            self.records.append(record)
        # where nothing else would show a warning (Python use without logging set up), it is
        # shown as Python shows one then, not swallowed by this handler
        if record.levelno >= logging.WARNING and logging.lastResort and \
                not self._others(logging.getLogger(record.name)):
            logging.lastResort.handle(record)

    def _others(self, logger) -> bool:
        """Whether a handler other than this one sees records of ``logger`` (its own, its
        parents' while they propagate)."""
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


_EARLY: _Early | None = None


@contextlib.contextmanager
def early_log():
    """Inside the block, what the ``midlevel`` logger says before :func:`log_to_file` opens
    the run's ``train.log`` is written there first."""
    global _EARLY
    logger = logging.getLogger("midlevel")
    handler, outer = _Early(), _EARLY
    with info_for_files(logger):  # as log_to_file's (audit 22d F7: notes said before were
        logger.addHandler(handler)  # dropped)
        _EARLY = handler
        try:
            yield
        finally:
            _EARLY = outer
            logger.removeHandler(handler)


@contextlib.contextmanager
def info_for_files(logger: logging.Logger):
    """Inside: ``logger`` passes INFO records (``train.log`` keeps them) while every handler
    that was there before, its own and its parents', still sees only the level the caller
    had set (audit 23b: ``train()`` printed 17 INFO lines under a caller's ERROR level, and a
    direct ``fit`` left the logger at INFO for good). After: level, propagation and handlers
    as they were."""
    effective = logger.getEffectiveLevel()
    if effective <= logging.INFO:
        yield
        return
    level, propagate, own = logger.level, logger.propagate, list(logger.handlers)
    below = [h for name, lg in logging.Logger.manager.loggerDict.items()  # "midlevel.x"'s
             if isinstance(lg, logging.Logger) and name.startswith(logger.name + ".")
             for h in lg.handlers]  # handlers see the caller's level too (re-audit 23e)
    before = own + below
    gate = logging.Filter()
    gate.filter = lambda record: record.levelno >= effective
    forward = _Forward(logger, effective, fallback=not own) \
        if propagate and logger.parent else None
    for h in before:
        h.addFilter(gate)
    logger.setLevel(logging.INFO)
    if forward is not None:
        logger.propagate = False
        logger.addHandler(forward)
    try:
        yield
    finally:
        if forward is not None:
            logger.removeHandler(forward)
        logger.propagate = propagate
        logger.setLevel(level)
        for h in before:
            h.removeFilter(gate)


class _Forward(logging.Handler):
    """Passes a record at or above ``level`` on to the handlers above ``owner`` (the logger
    it sits on), as propagation would; Python's last-resort handler shows it where no logger
    on the record's way has a handler of the caller's (``fallback``: ``owner`` had none of
    its own; re-audits 23d, 23e: a caller's handler on the package logger, or on one below
    it, and none above printed each warning twice)."""

    def __init__(self, owner: logging.Logger, level: int, *, fallback: bool):
        super().__init__(level)
        self.owner, self.fallback = owner, fallback

    def emit(self, record):
        found, logger = 0, logging.getLogger(record.name)
        while logger is not None and logger is not self.owner:  # the loggers below owner
            found += len(logger.handlers)
            logger = logger.parent if logger.propagate else None
        logger = self.owner.parent
        while logger is not None:
            for handler in logger.handlers:
                found += 1
                if record.levelno >= handler.level:
                    handler.handle(record)
            logger = logger.parent if logger.propagate else None
        if not found and self.fallback and logging.lastResort and \
                record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


def log_to_file(ctx, path: Path):
    """Log to ``RUN/train.log`` on rank 0 (what :func:`early_log` kept first); other ranks log
    only errors (each process reads the same data, so rank 0's warnings are every rank's:
    printed once)."""
    if not ctx.main:
        logging.getLogger("midlevel").setLevel(logging.ERROR)
        return None
    handler = log_handler(path)
    if _EARLY is not None and _EARLY.records:
        for record in _EARLY.records:
            handler.handle(record)
    if _EARLY is not None:
        _EARLY.records = None  # from here on the file handler has them
    logging.getLogger("midlevel").addHandler(handler)
    return handler


def _detach(handler) -> None:
    if handler is not None:
        logging.getLogger("midlevel").removeHandler(handler)
        handler.close()


def warn_on_resume(ctx, out: Path, state: dict, config) -> None:
    """Warnings when a run is resumed (rank 0): its last epoch ran on another process count
    (``history.csv``'s ``processes``; 1 for a run of a version that did not record it) or
    torch thread count (``threads``; not compared for a run that did not record it), or it
    has no epoch left to train."""
    import torch
    if not ctx.main:
        return
    last = (state["history"] or [{}])[-1]
    before = int(last.get("processes") or 1)
    if before != ctx.world:
        log.warning("%s: epoch %d ran on %d process(es), this resume on %d: the run goes on, "
                    "but it will differ from an uninterrupted run (each process draws its "
                    "own dropout and normalizes its share of a batch)", out, state["epoch"],
                    before, ctx.world)
    threads = last.get("threads")
    if threads is not None and int(threads) != torch.get_num_threads():
        log.warning("%s: epoch %d ran on %d torch thread(s), this resume on %d: the run goes "
                    "on, but its last digits will differ from an uninterrupted run's (another "
                    "thread count sums in another order)", out, state["epoch"], int(threads),
                    torch.get_num_threads())
    bf16, now = last.get("bf16"), bool(config.autocast_steps(ctx.device))
    if bf16 is not None and bool(bf16) != now:
        said = {True: "bfloat16", False: "float32"}
        log.warning("%s: epoch %d ran its training steps in %s, this resume in %s: the run "
                    "goes on with epochs of both (history.csv's bf16 column says which; "
                    "config.yaml keeps the last setting)", out, state["epoch"],
                    said[bool(bf16)], said[now])
    if state["finished"]:
        log.warning("%s stopped early after epoch %d (no better validation score for %d "
                    "epochs): nothing to train; the run is finished from its best epoch",
                    out, state["epoch"], config.patience)
    elif state["epoch"] >= config.epochs:
        log.warning("%s has done %d epochs, the maximum (epochs %d): nothing to train; "
                    "pass a higher --epochs to continue", out, state["epoch"], config.epochs)
