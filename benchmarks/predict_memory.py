"""Peak memory of prediction over windows: the package's ``predict_specs`` (windows cut one
batch at a time) against the stacked path it replaced (every window of the clip stacked
before the first batch), each in a fresh process on one long random spectrogram.

    python benchmarks/predict_memory.py [--frames 18000] [--hop 3]

Prints one row per path: windows, peak resident memory added (MB), seconds, and the largest
difference between the two paths' per-window outputs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from midlevel.models.bottleneck import BlackBox
from midlevel.training.data import crop, window_starts
from midlevel.training.predict import predict_specs
path, frames, hop, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), 313
torch.manual_seed(0)
model = BlackBox([{"name": "y"}], backbone={"width": 0.125, "dropout": 0.0}).eval()
spec = torch.randn(149, frames)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if path == "package":
    out = predict_specs(model, [spec], n, hop, device=torch.device("cpu"), batch_size=16,
                        per_window=True)[0][2][:, 0]
else:  # the path before: every window stacked, then batches of 16
    w = torch.stack([crop(spec, s, n) for s in window_starts(frames, n, hop)]).unsqueeze(1)
    with torch.no_grad():
        out = np.concatenate([model.unscale(model(w[i:i + 16])).targets[:, 0].numpy()
                              for i in range(0, len(w), 16)])
seconds = time.perf_counter() - t
print(json.dumps({"path": path, "windows": len(out), "seconds": round(seconds, 1),
                  "peak_mb_added": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                          - base) / 1024), "outputs": out.tolist()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=18000, help="spectrogram frames")
    parser.add_argument("--hop", type=int, default=3, help="hop in frames")
    args = parser.parse_args()
    rows = [json.loads(subprocess.run([sys.executable, "-c", CHILD, path, str(args.frames),
                                       str(args.hop)], capture_output=True, text=True,
                                      check=True).stdout)
            for path in ("stacked", "package")]
    diff = max(abs(a - b) for a, b in zip(rows[0]["outputs"], rows[1]["outputs"]))
    print("| path | windows | peak MB added | seconds |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['windows']} | {r['peak_mb_added']} | {r['seconds']} |")
    print(f"largest output difference: {diff:.1e}")


if __name__ == "__main__":
    main()
