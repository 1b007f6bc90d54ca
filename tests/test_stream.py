"""Training that streams from memory-mapped feature files: the same batches and weights as in
memory, the budget's choice in the log, and disjoint DDP shards."""
from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from midlevel.data.stream import MappedFeatures
from midlevel.errors import CacheError, TrainingError
from midlevel.training import fit
from midlevel.training.config import TrainConfig
from midlevel.training.ddp import Context
from midlevel.training.stream import ShardedBatchSampler, choose_storage, parse_bytes
from midlevel.testing.processes import as_torchrun_process, free_port
from midlevel.testing.toy import FPS, toy_config, toy_data


def mapped(tmp_path, features) -> MappedFeatures:
    folder = tmp_path / "npy"
    folder.mkdir(exist_ok=True)
    for clip, spec in features.items():
        np.save(folder / f"{clip}.npy", spec)
    return MappedFeatures({clip: folder / f"{clip}.npy" for clip in features})


def test_sizes_parse_with_units_and_bad_ones_name_the_setting():
    assert parse_bytes("2GB") == 2 * 10 ** 9 and parse_bytes("512MiB") == 512 * 2 ** 20
    assert parse_bytes(1000) == 1000 and parse_bytes("1.5e3") == 1500 and parse_bytes("0") == 0
    for bad in ("lots", "-1GB", True, "3 parsecs"):
        with pytest.raises(TrainingError, match="max_memory"):
            parse_bytes(bad)
    with pytest.raises(TrainingError, match="max_memory"):
        TrainConfig(max_memory="plenty").check()


def test_mapped_features_read_headers_crops_and_clips(tmp_path):
    _, features, _ = toy_data()
    mf = mapped(tmp_path, features)
    clip = "c005"
    assert mf.shape(clip) == features[clip].shape
    assert mf.nbytes() == sum(a.nbytes for a in features.values())
    np.testing.assert_array_equal(mf[clip], features[clip])
    np.testing.assert_array_equal(mf.crop(clip, 3, 10), features[clip][:, 3:13])
    n = features[clip].shape[1]
    assert mf.crop(clip, n - 4, 10).shape == (40, 4)  # fewer frames at the clip's end
    (tmp_path / "npy" / "c001.npy").write_bytes(b"not an npy file")
    with pytest.raises(CacheError, match="c001"):
        MappedFeatures(mf.files).shape("c001")  # a fresh one: shapes are kept once read
    with pytest.raises(CacheError, match="c001"):
        mf["c001"]


def test_the_budget_chooses_memory_or_streaming_and_says_so(tmp_path, caplog):
    table, features, _ = toy_data()
    mf = mapped(tmp_path, features)
    with caplog.at_level(logging.INFO, logger="midlevel.training"):
        held, streamed = choose_storage(mf, table.index, TrainConfig(max_memory="1MB"),
                                        Context())
        assert not streamed and isinstance(held, dict) and len(held) == len(table)
        same, streamed = choose_storage(mf, table.index, TrainConfig(max_memory="100kB"),
                                        Context())
        assert streamed and same is mf
    text = caplog.text
    assert "315.84 kB" in text and "held in memory" in text and "streamed from" in text


@pytest.mark.parametrize("mode, workers", [("joint", 1), ("sequential", 0)])
def test_streaming_gives_the_batches_and_weights_of_the_in_memory_path(tmp_path, mode, workers,
                                                                       one_torch_thread):
    table, features, columns = toy_data()
    mf = mapped(tmp_path, features)
    runs = {}
    for name, feats, extra in [("memory", features, {}),
                               ("stream", mf, {"max_memory": 0, "workers": workers})]:
        runs[name] = fit(table, feats, columns, tmp_path / name,
                         toy_config(mode=mode, epochs=2, **extra), fps=FPS, progress=False)
    a, b = (torch.cat([p.detach().flatten() for p in runs[k].model.parameters()])
            for k in ("memory", "stream"))
    assert torch.equal(a, b)
    pd.testing.assert_series_equal(pd.read_csv(runs["memory"].path / "history.csv")["loss"],
                                   pd.read_csv(runs["stream"].path / "history.csv")["loss"])
    pd.testing.assert_frame_equal(runs["memory"].metrics, runs["stream"].metrics)
    assert "streamed from" in (runs["stream"].path / "train.log").read_text()


def test_the_sampler_shards_every_batch_disjointly():
    batches = [np.array([5, 1, 7, 3]), np.array([0, 2, 6])]
    offsets = np.arange(8) * 10
    shards = []
    for rank in (0, 1):
        sampler = ShardedBatchSampler(rank, 2)
        sampler.set_epoch(batches, offsets)
        shards.append(list(sampler))
    assert shards[0] == [[(5, 50), (7, 70)], [(0, 0), (6, 60)]]
    assert shards[1] == [[(1, 10), (3, 30)], [(2, 20)]]



def _ddp_worker(rank: int, world: int, port: int, out: str, npy: str) -> None:
    from pathlib import Path

    from midlevel.training import stream
    as_torchrun_process(rank, world, port)
    asked = []
    set_epoch = stream.ShardedBatchSampler.set_epoch

    def record_shard(self, batches, offsets):
        set_epoch(self, batches, offsets)
        asked.append(sorted(i for b in self.batches for i, _ in b))
    stream.ShardedBatchSampler.set_epoch = record_shard
    get = stream.ClipDataset.__getitem__

    def record_read(self, item):  # runs in the DataLoader's worker process
        with open(f"{out}/reads{rank}.txt", "a") as fh:
            fh.write(f"{int(item[0])}\n")
        return get(self, item)
    stream.ClipDataset.__getitem__ = record_read
    # the workers fork (as under torchrun) and so see the patch; a spawned rank would spawn
    import multiprocessing
    multiprocessing.set_start_method("fork", force=True)
    table, _, columns = toy_data()
    features = MappedFeatures({c: Path(npy) / f"{c}.npy" for c in table.index})
    run = fit(table, features, columns, f"{out}/run",
              toy_config(mode="joint", epochs=2, dropout=0.0, batch_size=8, max_memory=0,
                         workers=1), fps=FPS, progress=False)
    weights = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    torch.save(weights, f"{out}/weights{rank}.pt")
    Path(f"{out}/shards{rank}.json").write_text(json.dumps(asked))


@pytest.mark.slow
def test_two_ddp_processes_stream_disjoint_shards_that_cover_the_set(tmp_path):
    table, features, _ = toy_data()
    mapped(tmp_path, features)
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_ddp_worker, args=(2, free_port(), str(out), str(tmp_path / "npy")), nprocs=2,
             join=True)
    torch.testing.assert_close(torch.load(out / "weights0.pt"), torch.load(out / "weights1.pt"))
    shards = [json.loads((out / f"shards{r}.json").read_text()) for r in (0, 1)]
    n_train = int((table["split"] == "train").sum())
    assert len(shards[0]) == len(shards[1]) == 2  # one shard per epoch and rank
    for epoch in range(2):
        mine, theirs = set(shards[0][epoch]), set(shards[1][epoch])
        assert not mine & theirs
        assert len(shards[0][epoch]) + len(shards[1][epoch]) == len(mine | theirs)
        # every clip of the kept batches (19 train clips, batches of 8: the last of 3 kept)
        assert mine | theirs == set(range(n_train))
    for rank in (0, 1):  # each rank read exactly the crops of its shards, nothing else
        reads = sorted(int(x) for x in (out / f"reads{rank}.txt").read_text().split())
        assert reads == sorted(shards[rank][0] + shards[rank][1])
