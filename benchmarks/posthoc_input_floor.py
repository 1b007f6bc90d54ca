"""The Soundtracks harness's floor: the input itself as an attribution map (audit 16b).

"Every method beats random orders" on the 30 Soundtracks test clips (section "Post-hoc
explanations") is judged against random bin orders only. On the planted event the input
itself (``x - reference``, no model read) beat random orders on every clip; this script asks
the same of the real models: the harness (deletion, 5 random orders and their reverses, the
same patches, fractions and reference as ``posthoc_faithfulness.py``) on maps that read only
the clip, ``input`` (``x - reference``) and ``abs_input`` (``|x - reference|``), through the
windows ``predict`` averages. The models are those of ``--workdir`` (``posthoc_remeasure.py``
or ``posthoc_faithfulness.py`` trains them there; trained here if absent).

    python benchmarks/posthoc_input_floor.py --workdir runs/remeasure
    python benchmarks/posthoc_input_floor.py --quick

Writes the section "Post-hoc harness on Soundtracks: the input as a map" of RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from ground_truth_recovery import _fmt, publish  # noqa: E402
from posthoc_faithfulness import (  # noqa: E402
    FRACTIONS, _options, _runs, common_arguments, harness_table,
)

from midlevel.explain.attribution.attributor import Attributor  # noqa: E402
from midlevel.explain.harness import clip_scores, curve_areas, perturbation_curves  # noqa: E402

SECTION = "Post-hoc harness on Soundtracks: the input as a map"


def input_maps(x: torch.Tensor, reference) -> dict[str, np.ndarray]:
    """``input`` (``x - reference``) and ``abs_input`` for ``x`` ``(1, 1, bands, frames)``."""
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float32)).reshape(1, 1, *x.shape[-2:])
    diff = (x - ref).numpy()
    return {"input": diff, "abs_input": np.abs(diff)}


def measure(args, work: Path, log) -> pd.DataFrame:
    from midlevel.data.frontends import make_frontend
    rows = []
    for label, run in _runs(args, work, log).items():
        data, specs = run.data("test", cache_dir=work / "cache")
        names = list(data.index.astype(str))[:args.clips]
        fe = make_frontend(run.frontend)
        bg = run.background(16, cache_dir=work / "cache")
        for target in args.targets:
            t0 = time.time()
            at = Attributor(run.model, "deeplift", output=target, background=bg, fps=run.fps,
                            band_frequencies=fe.band_frequencies, windows=run.window(),
                            frontend=fe, **_options(args))  # its selector and reference
            for i, (name, spec) in enumerate(zip(names, specs)):
                xb = torch.as_tensor(spec)[None, None]
                ref = at.reference_for(xb)
                for method, maps in input_maps(xb, ref).items():
                    curves = perturbation_curves(at.selector, xb, maps, ref, method=method,
                                                 clips=[name], modes=("deletion",), n_random=5,
                                                 patch=(8, 16), fractions=FRACTIONS, first=i)
                    rows.append(clip_scores(curve_areas(curves)).assign(model=label,
                                                                        target=target))
            log(f"{label} {target}: {time.time() - t0:.0f} s")
    return pd.concat(rows, ignore_index=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p, lime_samples=64)
    args = p.parse_args(argv)
    if args.quick:
        args.clips, args.epochs, args.no_write = 2, 1, True
    if not (Path(args.soundtracks) / "mean_ratings_set1.csv").is_file():
        print(f"Soundtracks not found at {args.soundtracks}: nothing to measure")
        return 0
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="floor_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    scores = measure(args, work, print)
    scores.to_csv(work / "input_floor_scores.csv", index=False)
    text = f"""Script: `benchmarks/posthoc_input_floor.py` ({time.strftime('%Y-%m-%d %H:%M')}, \
{(time.time() - t0) / 60:.0f} min, {torch.get_num_threads()} torch threads; the models of \
{work.name}; targets {', '.join(args.targets)}, {args.clips} test clips). The harness of \
"Post-hoc explanations" on maps that read only the clip:

{_fmt(harness_table(scores))}

`input`: `x - reference` (the harness ranks by signed value); `abs_input`: `|x - reference|`;
columns as in "Post-hoc explanations". A method's gain over random orders shows it reads the
model only where it exceeds these.
"""
    publish(text, SECTION, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
