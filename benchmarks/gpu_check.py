"""The GPU check: training steps, prediction and every attribution method on a CUDA GPU.

Fails loudly (exit 1) when torch sees no CUDA device or when any piece ran on the CPU; writes
the speeds to ``gpu_check.json`` (in ``$OUT`` when set, else ``benchmarks/``). Meant to finish
in well under five minutes on one GPU:

    bash benchmarks/gpu_check.sh
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _timed(fn, repeat: int = 3) -> float:
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeat


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: FAILED: torch sees no CUDA device (it will not fall back to the CPU)",
              file=sys.stderr)
        return 1
    from midlevel.explain.attribution.attributor import Attributor
    from midlevel.explain.attribution.registry import METHODS
    from midlevel.models.backbone import preset
    from midlevel.models.bottleneck import build_model
    from midlevel.training.loop import make_adam
    from midlevel.training.predict import predict_specs
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    torch.manual_seed(0)
    concepts = ["c0", "c1", "c2"]
    targets = [{"name": "y0"}, {"name": "y1"}]
    model = build_model("bottleneck", concepts, targets, preset("paper")).to(dev)
    opt = make_adam(model.parameters(), lr=5e-4, weight_decay=0.0)
    x = torch.randn(8, 1, 149, 313, device=dev)
    y = torch.randn(8, 2, device=dev)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            o = model(x)
        loss = ((o.targets.float() - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    out["train_step_s"] = _timed(step, 10)
    out["train_clips_per_s"] = 8 / out["train_step_s"]
    # midlevel.models.place keeps CUDA models contiguous until this figure says otherwise
    model.to(memory_format=torch.channels_last)
    out["train_step_s_channels_last"] = _timed(step, 10)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    specs = [torch.randn(149, 940, device=dev) for _ in range(16)]
    out["predict_s_per_30s_clip"] = _timed(lambda: predict_specs(
        model, specs, 313, 313, device=dev, batch_size=16, amp=True)) / len(specs)
    bg = torch.randn(16, 1, 149, 313, device=dev)
    clip = torch.randn(1, 1, 149, 313)
    out["methods"] = {}
    for method in METHODS:
        at = Attributor(model, method, background=bg, n_steps=32, n_samples=32,
                        lime_samples=256)
        if not next(at.model.parameters()).is_cuda or at.device.type != "cuda":
            print(f"gpu_check: FAILED: {method} is not on the GPU", file=sys.stderr)
            return 1
        seconds = _timed(lambda: at.attribute(clip), 2)
        out["methods"][method] = {"s_per_10s_clip": seconds}
        print(f"{method}: {seconds:.3f} s per 10-s clip", flush=True)
    folder = Path(os.environ.get("OUT") or REPO / "benchmarks")
    (folder / "gpu_check.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "methods"}, indent=1))
    print(f"gpu_check: OK, written {folder / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
