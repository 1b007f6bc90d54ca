"""DDP: two CPU processes (gloo) train the same model as one process, within tolerance."""
from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from midlevel.training import fit, load_run
from midlevel.testing.toy import FPS, toy_config, toy_data

CONFIG = dict(mode="joint", epochs=2, dropout=0.0, batch_size=16)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import os
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    table, features, columns = toy_data()
    run = fit(table, features, columns, out, toy_config(**CONFIG), fps=FPS, progress=False)
    weights = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    torch.save(weights, f"{out}/weights{rank}.pt")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    table, features, columns = toy_data()
    single = fit(table, features, columns, tmp_path / "single", toy_config(**CONFIG), fps=FPS,
                 progress=False)
    out = tmp_path / "ddp"
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    w0, w1 = torch.load(out / "weights0.pt"), torch.load(out / "weights1.pt")
    torch.testing.assert_close(w0, w1)  # the ranks stayed in sync
    ddp = load_run(out)
    h1 = pd.read_csv(tmp_path / "single" / "history.csv")
    h2 = pd.read_csv(out / "history.csv")
    # the same global batches: the losses agree up to BatchNorm statistics and running
    # statistics taken over half batches (SyncBatchNorm needs GPUs)
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=0.3)
    np.testing.assert_allclose(h2["val_score"], h1["val_score"], atol=0.2)
    # the concept and target losses are averaged over the processes like the loss, so they
    # combine to it as in one process (not rank 0's alone)
    w = toy_config(**CONFIG).w
    for history in (h1, h2):
        np.testing.assert_allclose(history["loss"], w * history["target_loss"]
                                   + (1 - w) * history["concept_loss"], rtol=1e-6)
    assert (single.metrics["n"] == ddp.metrics["n"]).all()
    assert ddp.predict([features["c010"]]).notna().all(axis=None)
