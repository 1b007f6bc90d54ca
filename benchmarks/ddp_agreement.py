"""Multi-process training against one process: how close is a 2-process DDP run (gloo, CPU)?

For each seed, the toy world (:mod:`midlevel.testing.toy`, 32 clips, joint mode, 2 epochs,
batch 16, dropout off) is trained once in this process and once on two processes started
with ``torch.multiprocessing.spawn`` (what ``torchrun --nproc_per_node=2`` runs). The
printed table gives each epoch's training loss and validation score of both, and their
absolute differences; the last lines their means over the seeds.

The gradient itself is exact (``tests/test_ddp.py::test_uneven_shares_train_as_one_process``:
the DDP gradient equals the one-process gradient of the global batch); what is left is
train-mode BatchNorm normalizing each process's share of a batch (no SyncBatchNorm on the
CPU), through which the two trajectories drift apart.

    python benchmarks/ddp_agreement.py [--seeds 6]
"""
from __future__ import annotations

import argparse
import tempfile

import pandas as pd
import torch
import torch.multiprocessing as mp

from midlevel.testing.processes import as_torchrun_process, free_port
from midlevel.testing.toy import FPS, toy_config, toy_data
from midlevel.training import fit

CONFIG = dict(mode="joint", epochs=2, dropout=0.0, batch_size=16)



def _worker(rank: int, world: int, port: int, out: str, seed: int) -> None:
    as_torchrun_process(rank, world, port)
    table, features, columns = toy_data(seed=seed)
    fit(table, features, columns, out, toy_config(seed=seed, **CONFIG), fps=FPS,
        progress=False)


def agreement(seeds: int) -> pd.DataFrame:
    """One row per (seed, epoch): loss and validation score, 1 and 2 processes."""
    torch.set_num_threads(1)
    rows = []
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as d:
            mp.spawn(_worker, args=(2, free_port(), f"{d}/ddp", seed), nprocs=2, join=True)
            table, features, columns = toy_data(seed=seed)
            fit(table, features, columns, f"{d}/one", toy_config(seed=seed, **CONFIG),
                fps=FPS, progress=False)
            one = pd.read_csv(f"{d}/one/history.csv")
            two = pd.read_csv(f"{d}/ddp/history.csv")
        for k in range(len(one)):
            rows.append({"seed": seed, "epoch": k + 1, "loss_1": one["loss"][k],
                         "loss_2": two["loss"][k], "val_1": one["val_score"][k],
                         "val_2": two["val_score"][k]})
    out = pd.DataFrame(rows)
    out["loss_diff"] = (out["loss_2"] - out["loss_1"]).abs()
    out["val_diff"] = (out["val_2"] - out["val_1"]).abs()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    table = agreement(parser.parse_args().seeds)
    print(table.round(3).to_string(index=False))
    print(table.groupby("epoch")[["loss_diff", "val_diff"]].mean().round(3).to_string())
