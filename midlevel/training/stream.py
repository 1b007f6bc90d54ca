"""Training that streams: spectrograms read from the feature cache while training runs.

Which path a run takes is decided once, from the size of every spectrogram it uses (read from
the cache files' headers) against a memory budget (``TrainConfig.max_memory``; default a
quarter of this machine's RAM), and said in the log (:func:`choose_storage`):

- **in memory** (the fast default for small sets): every spectrogram loaded once; a batch is a
  few tensor copies;
- **streaming**: nothing loaded up front; each training crop is read through a memory-mapped
  ``.npy`` file by a torch ``DataLoader`` with worker processes (:class:`ClipDataset`), whole
  clips for validation one at a time. Memory stays flat as the dataset grows.

Both paths give the same batches for the same seed: the epoch's clip order and crop offsets are
drawn as before (:meth:`ClipSet.crop_offsets`), and :class:`ShardedBatchSampler` hands out the
same batches, so the weights do not depend on the path. Under DDP each rank gets its own shard
of every global batch (rank ``r`` of ``w`` takes ``batch[r::w]``, disjoint across ranks and
covering the batch, the ``DistributedSampler`` contract without padding), which is what the
in-memory path trains on as well; a streaming rank reads only the crops of its shard.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re

import numpy as np
import torch

from midlevel.data.cache import usable_cores
from midlevel.data.stream import MappedFeatures
from midlevel.errors import TrainingError

log = logging.getLogger("midlevel.training")

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
          "t": 1e12, "tb": 1e12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}


def parse_bytes(value, *, where: str = "max_memory") -> int:
    """``2GB``, ``512MiB``, ``1.5e9``, ``1.5E+9`` or an int -> bytes; TrainingError naming
    ``where`` for anything else: a negative, NaN or infinite number (``1e400`` is infinite
    as a float) or text that is not a size."""
    if isinstance(value, bool):
        raise TrainingError(f"{where}: expected bytes or a size such as '2GB', got {value!r}")
    number = value
    if not isinstance(value, (int, float)):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*",
                         str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise TrainingError(f"{where}: expected bytes or a size such as '2GB' or "
                                f"'512MiB', got {value!r}")
        number = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if isinstance(number, float) and not math.isfinite(number):
        raise TrainingError(f"{where}: a memory budget must be a finite number of bytes >= 0 "
                            f"(or a size such as '2GB'), got {value!r}")
    if number < 0:
        raise TrainingError(f"{where}: a memory budget cannot be negative, got {value!r}")
    return int(number)


def format_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def default_budget() -> int:
    """A quarter of this machine's physical memory (4 GB where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    except (AttributeError, ValueError, OSError):
        return 4 * 10 ** 9


def default_workers(world: int = 1) -> int:
    """DataLoader workers per process: half the cores this process may use, shared by the
    processes of the machine, 1 to 4."""
    cores = usable_cores()
    return int(min(4, max(1, cores // 2 // max(1, world))))


def local_world(ctx) -> int:
    """Training processes on this machine (torchrun's LOCAL_WORLD_SIZE, else the world)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world))


def choose_storage(features, clips, config, ctx):
    """In memory or streaming, for the spectrograms of ``clips``; said in the log.

    Parameters
    ----------
    features : mapping clip -> spectrogram (in memory already: stays so), or a
        :class:`MappedFeatures` (the feature cache's files).
    clips : the clips training uses (every split).
    config : its ``max_memory`` (bytes, "2GB", or None: :func:`default_budget`) is compared
        with the bytes of every spectrogram times the processes of this machine (each holds
        its own copy in memory).

    Returns
    -------
    (features, streamed): a dict of arrays (in memory) or the MappedFeatures (streaming).
    """
    clips = [str(c) for c in clips]
    if not isinstance(features, MappedFeatures):
        log.info("spectrograms: %d clips given in memory", len(clips))
        return features, False
    total = features.nbytes(clips)
    local = local_world(ctx)
    budget = (parse_bytes(config.max_memory) if config.max_memory is not None
              else default_budget())
    need = total * max(1, local)
    per = f" x {local} processes" if local > 1 else ""
    if need <= budget:
        log.info("spectrograms: %s for %d clips%s fit the memory budget of %s "
                 "(max_memory): held in memory", format_bytes(total), len(clips), per,
                 format_bytes(budget))
        return {c: features[c] for c in clips}, False
    workers = config.workers if config.workers is not None else default_workers(local)
    log.info("spectrograms: %s for %d clips%s exceed the memory budget of %s (max_memory): "
             "streamed from the feature cache (memory-mapped files, %d DataLoader worker(s) "
             "per process)", format_bytes(total), len(clips), per, format_bytes(budget),
             workers)
    return features, True


class ClipDataset(torch.utils.data.Dataset):
    """Training crops of a :class:`~midlevel.training.data.ClipSet`: item ``(clip index,
    crop start)`` -> ``(crop (n_bands, n_frames), concepts, targets)`` (ClipSet.item)."""

    def __init__(self, clips, n_frames: int):
        self.clips, self.n_frames = clips, int(n_frames)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, item):
        i, start = item
        return self.clips.item(int(i), int(start), self.n_frames)


def collate(rows):
    """Rows of :class:`ClipDataset` -> ``(x (batch, 1, n_bands, n_frames), concepts,
    targets)``, as :meth:`ClipSet.batch` gives them."""
    xs, cs, ts = zip(*rows)
    return torch.stack(xs).unsqueeze(1), torch.stack(cs), torch.stack(ts)


class ShardedBatchSampler(torch.utils.data.Sampler):
    """This rank's share of each global batch of an epoch, as ``(clip index, crop start)``
    items (see the module docstring). :meth:`set_epoch` gives it the epoch's batches."""

    def __init__(self, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world
        self.batches: list[list[tuple[int, int]]] = []

    def set_epoch(self, batches, offsets: np.ndarray) -> None:
        """``batches``: the epoch's global batches (clip indices); ``offsets``: crop start per
        clip."""
        self.batches = [[(int(i), int(offsets[i])) for i in b[self.rank::self.world]]
                        for b in batches]

    def __iter__(self):
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(clips, n_frames: int, ctx, config) -> tuple:
    """A persistent DataLoader over the crops of ``clips`` and its sampler.

    Workers: ``config.workers`` (None: :func:`default_workers`); 0 reads in this process. Its
    random seeds come from a generator of its own, so the model's dropout draws are those of the
    in-memory path.
    """
    local = local_world(ctx)
    workers = config.workers if config.workers is not None else default_workers(local)
    sampler = ShardedBatchSampler(ctx.rank, ctx.world)
    loader = torch.utils.data.DataLoader(
        ClipDataset(clips, n_frames), batch_sampler=sampler, num_workers=workers,
        collate_fn=collate, persistent_workers=workers > 0,
        pin_memory=ctx.device.type == "cuda", generator=torch.Generator().manual_seed(0),
        prefetch_factor=4 if workers > 0 else None)
    return loader, sampler


@contextlib.contextmanager
def stopping_workers_on_error(loader):
    """Around training with ``loader`` (a DataLoader of :func:`make_loader`, or a callable
    giving it or None, as it is made later): on any exception, a SIGTERM to the whole process
    group included (which has killed the workers already), stop its workers now and quietly.
    Left to torch's own clean-up, dead workers end the run with "Exception ignored in ...
    DataLoader worker is killed by signal"."""
    try:
        yield
    except BaseException:
        loader = loader() if callable(loader) else loader
        workers = getattr(loader, "_iterator", None)  # the persistent workers' iterator
        if workers is not None:
            try:
                workers._shutdown_workers()
            except RuntimeError:  # torch reports the workers a signal ended
                pass
        raise
