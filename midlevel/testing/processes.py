"""Stand-ins for ``torchrun`` in tests and benchmarks that start processes with
``torch.multiprocessing.spawn``: a free port for the process group, and the environment
torchrun gives each process."""
from __future__ import annotations

import os
import socket

import torch


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_torchrun_process(rank: int, world: int, port: int) -> None:
    """Set the variables torchrun sets for process ``rank`` of ``world`` on one machine
    (``midlevel.training.ddp.setup`` joins the group from them), with one torch thread."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
