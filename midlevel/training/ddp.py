"""Process-group helpers: the same training code runs alone or under ``torchrun``.

Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1 in the environment) :func:`setup`
joins the process group (gloo on CPU, nccl on GPU); otherwise every helper is a no-op.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank, world size and its torch device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def cuda_devices(self) -> list[int]:
        """This process's CUDA device (``torch.random.fork_rng``'s ``devices``), or none."""
        return [self.device.index or 0] if self.device.type == "cuda" else []


def first_process() -> bool:
    """True unless ``torchrun`` started this process with a rank above 0 (read from the
    environment, so usable before :func:`setup` joins the group): what a run says once is
    said by this process."""
    return os.environ.get("RANK", "0") == "0"


def setup(device: str = "cpu") -> Context:
    """Join the process group when launched by torchrun; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "cuda" and not torch.cuda.is_available():
        from midlevel.errors import TrainingError
        raise TrainingError("--device cuda asked for, but torch sees no CUDA device")
    if world <= 1:
        return Context(device=torch.device(device))
    rank = int(os.environ["RANK"])
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return Context(rank, world, dev)


def teardown(ctx: Context, *, failed: bool = False) -> None:
    """Leave the process group (if this process joined one). After a failure no barrier: the
    other processes may be inside a training collective that no longer matches, and a barrier
    would hold every process until the group's timeout (30 min) without a word; torchrun
    stops the others once this one exits."""
    if ctx.distributed and dist.is_initialized():
        if not failed:
            dist.barrier()
        dist.destroy_process_group()


def peer_lost(ctx: Context, exc: BaseException):
    """A :class:`~midlevel.errors.TrainingError` saying so when ``exc`` is this process's side
    of another process's failure (a collective whose peer closed its connection, gloo, or
    another error of the process group), else None."""
    from midlevel.errors import TrainingError
    text = str(exc)
    if ctx.distributed and (isinstance(exc, getattr(dist, "DistError", ())) or (
            isinstance(exc, RuntimeError) and ("closed by peer" in text
                                               or "Connection reset by peer" in text))):
        return TrainingError(f"another training process stopped (its own message says why): "
                             f"{text}")
    return None


def mean_values(ctx: Context, values: list[torch.Tensor]) -> list[float]:
    """The mean of each scalar tensor of ``values`` over all processes (one all-reduce, one
    device sync)."""
    t = torch.stack([v.detach().to(torch.float64) for v in values])
    if ctx.distributed:
        t = t.to(ctx.device)
        dist.all_reduce(t)
        t = t / ctx.world
    return t.tolist()


def sum_tensor(ctx: Context, t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over all processes (``t`` itself when alone)."""
    if not ctx.distributed:
        return t
    out = t.to(ctx.device).clone()
    dist.all_reduce(out)
    return out.to(t.device)


def gather(ctx: Context, obj):
    """A list of every process's ``obj`` (rank order); ``[obj]`` when alone."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()
