"""Probe: does ``torch.compile`` (inductor, CPU) speed up a `paper` training step?

The `paper` training steps run at about 80 % of the machine's fp32 matmul GFLOP/s (issue 12's
target is 80 %); the step profile gives 16 % to BatchNorm, ReLU, pooling and dropout, the
element-wise work a compiler can fuse. This probe times the package's step (as ``fit`` runs
it: channels last, fused Adam, joint losses) eager and compiled, interleaved in ABBA order,
batch 8 of 10-s crops. A probe, not a target: the package does not compile.

    python benchmarks/compile_probe.py [--rounds 12] [--preset paper]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench_common import columns


def make_step(preset: str, compiled: bool):
    from midlevel.models.bottleneck import build_model, output_layout
    from midlevel.models.layout import place
    from midlevel.training import TrainConfig
    from midlevel.training.loop import make_adam
    from midlevel.training.losses import masked_mse, target_loss
    config = TrainConfig(mode="joint", preset=preset, batch_size=8, crop_seconds=10.0)
    cols = columns()
    torch.manual_seed(0)
    model = build_model("bottleneck", cols.concepts, cols.targets, config.backbone())
    place(model, "cpu")
    model.train()
    opt = make_adam(model.parameters(), lr=config.lr, weight_decay=0.0)
    forward = torch.compile(model) if compiled else model
    layout = output_layout(cols.targets)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 149, 313, generator=g).contiguous(memory_format=torch.channels_last)
    c = torch.rand(8, len(cols.concepts), generator=g)
    y = torch.rand(8, len(cols.targets), generator=g)

    def step():
        o = forward(x)
        loss = config.w * target_loss(o.targets.float(), y, layout) + (1 - config.w) * \
            masked_mse(o.concepts.float(), c)
        float(loss.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--preset", default="paper")
    args = p.parse_args()
    eager = make_step(args.preset, False)
    t0 = time.perf_counter()
    compiled = make_step(args.preset, True)
    compiled()
    first = time.perf_counter() - t0
    for f in (eager, compiled, eager, compiled):
        f()
    te, tc = [], []
    for r in range(args.rounds):
        pairs = ((eager, te), (compiled, tc)) if r % 2 == 0 else ((compiled, tc), (eager, te))
        for f, times in pairs:
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
    ratio = np.asarray(te) / np.asarray(tc)
    print(f"preset {args.preset}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    print(f"first compiled step (compilation included): {first:.1f} s")
    print(f"eager ms:    {[round(v * 1000) for v in te]}")
    print(f"compiled ms: {[round(v * 1000) for v in tc]}")
    print(f"speed-up (median eager / median compiled): {np.median(te) / np.median(tc):.3f}x; "
          f"per round 10-90 %: {np.percentile(ratio, 10):.2f}-{np.percentile(ratio, 90):.2f}x")


if __name__ == "__main__":
    main()
