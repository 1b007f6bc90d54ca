"""Floors for the planted-event figures: what maps that read no model reach (audit 16b).

The planted-event task (:class:`midlevel.testing.events.EventTask`) puts its deciding box at
the same place on every clip, and the benchmark explains the 30 strongest events, so the
box is nearly always the clip's brightest patch. The judged figures (box ratio >= 3x, MoRF
deletion below random bin orders on >= 90 % of clips) are compared only with a uniform map
(ratio 1) and random orders. This script measures, on the judged event models (the same
training, seeds, clips and settings as ``posthoc_faithfulness.py``'s event task), three maps
that read no model:

- ``fixed_box``: 1 inside the box, 0 elsewhere (reads neither model nor clip);
- ``input``: ``x - reference`` (reads the clip only; the harness ranks by signed value);
- ``abs_input``: ``|x - reference|``;

scored exactly as the methods are (box ratio of positive values; MoRF deletion through the
event model against 5 random orders and their reverses), and beside every method, per clip,
whether it beats the ``input`` floor: a larger box ratio, and a MoRF deletion area below the
``input`` map's own (the model read more than the input's brightness).

``--clip-set distractor`` explains instead the clips (of 400, seed 1) on which a patch of the
box's shape outside the box is brighter than the box, the strongest events among them: there
the input's brightness points away from the box, so a map that follows it fails, and one
that reads the model need not.

    python benchmarks/event_floors.py --workdir runs/floors                 # toy + clip size
    python benchmarks/event_floors.py --sizes clip --seeds 4 --workdir ...  # one model
    python benchmarks/event_floors.py --clip-set distractor --workdir ...   # other clips
    python benchmarks/event_floors.py --render --workdir runs/floors        # table only
    python benchmarks/event_floors.py --quick                               # smoke run

Each (size, seed) is kept as ``floors_<size>_<seed>.csv`` (``_distractor`` appended for
that clip set) in ``--workdir`` as it finishes
(several processes may share the folder); ``--render`` writes the section "Planted event:
floors that read no model" of benchmarks/RESULTS.md from every part there.
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
from posthoc_faithfulness import FRACTIONS, _options, common_arguments, event_clips  # noqa: E402

from midlevel.explain.attribution.attributor import Attributor  # noqa: E402
from midlevel.explain.attribution.registry import METHODS  # noqa: E402
from midlevel.explain.faithfulness import box_share  # noqa: E402
from midlevel.explain.harness import clip_scores, curve_areas, perturbation_curves  # noqa: E402
from midlevel.testing.events import EventTask  # noqa: E402

SECTION = "Planted event: floors that read no model"
FLOORS = ("fixed_box", "input", "abs_input")


def task_for(size: str) -> tuple[EventTask, int, dict]:
    """The event task, training steps and window options of ``size`` as the judged run."""
    if size == "toy":
        return EventTask(), 150, {"window": (4, 4), "stride": (2, 2)}
    return (EventTask(n_bands=149, n_frames=313, box=(40, 64, 140, 190)), None,
            {"window": (12, 25), "stride": (12, 25)})


def floor_maps(task: EventTask, x: torch.Tensor, reference: torch.Tensor) -> dict:
    """The maps that read no model, each ``(n, 1, n_bands, n_frames)``."""
    b0, b1, f0, f1 = task.box
    box = torch.zeros_like(x)
    box[..., b0:b1, f0:f1] = 1.0
    diff = x - reference.reshape(1, 1, *x.shape[-2:])
    return {"fixed_box": box, "input": diff, "abs_input": diff.abs()}


def distractor_clips(task: EventTask, n: int, pool: int = 400
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, background)``: of ``pool`` clips (seed 1), those whose brightest patch of the
    box's shape outside the box has a higher mean than the box, the ``n`` strongest events
    among them; the background of :func:`event_clips`."""
    import torch.nn.functional as F
    x, y = task.sample(pool, seed=1)
    _, bg = event_clips(task, 1)
    b0, b1, f0, f1 = task.box
    h, w = b1 - b0, f1 - f0
    means = F.avg_pool2d(x, (h, w), stride=1)[:, 0]  # window starting at (band, frame)
    bands = torch.arange(means.shape[1])[:, None]
    frames = torch.arange(means.shape[2])[None, :]
    overlap = (bands > b0 - h) & (bands < b1) & (frames > f0 - w) & (frames < f1)
    outside = means.masked_fill(overlap, float("-inf")).flatten(1).amax(1)
    inside = x[:, 0, b0:b1, f0:f1].mean((1, 2))
    chosen = torch.nonzero(outside > inside).flatten()
    order = chosen[torch.argsort(-y[chosen, 0])][:n]
    return x[order], bg


def score_maps(task, selector, x, reference, maps, name: str, boxes=None) -> pd.DataFrame:
    """Per clip: box ratio and MoRF deletion area / whether below random, for ``maps``;
    ``boxes``: one event box per clip (default: the task's one box for all)."""
    values = np.asarray(maps, dtype=np.float32)
    share = box_share(values[:, 0], list(boxes) if boxes is not None else task.box,
                      method=name, clips=[f"c{i}" for i in range(len(x))])
    scores = clip_scores(curve_areas(perturbation_curves(
        selector, x, values, reference, method=name, clips=[f"c{i}" for i in range(len(x))],
        modes=("deletion",), n_random=5, fractions=FRACTIONS)))
    return share[["clip", "method", "ratio"]].merge(
        scores[["clip", "morf", "morf_better"]], on="clip")


def measure(size: str, seed: int, args, log) -> pd.DataFrame:
    """Every method and floor on one event model: per-clip rows."""
    task, steps, windows = task_for(size)
    steps = steps or args.event_steps
    x, bg = (event_clips(task, args.event_clips) if args.clip_set == "strongest"
             else distractor_clips(task, args.event_clips))
    model = task.train_model(n=256 if size == "toy" else args.event_train_clips,
                             steps=steps, seed=seed, removal=args.event_removal)
    about = {"clip_set": args.clip_set, "size": f"{task.n_bands} x {task.n_frames}",
             "seed": seed, "held_out_r2": task.held_out_r2(model)}
    opts = {**_options(args), **windows}
    rows = []
    for method in METHODS:
        t0 = time.time()
        at = Attributor(model, method, background=bg, **opts)
        attr = at.attribute(x, clips=[f"c{i}" for i in range(len(x))])
        ref = at.reference_for(x)
        rows.append(score_maps(task, at.selector, x, ref, attr.values, method))
        log(f"{size} seed {seed} {method}: {time.time() - t0:.0f} s")
    ref = torch.as_tensor(np.asarray(ref, dtype=np.float32))
    for name, maps in floor_maps(task, x, ref).items():
        rows.append(score_maps(task, at.selector, x, ref, maps.numpy(), name))
    return pd.concat(rows, ignore_index=True).assign(**about)


def summary(parts: pd.DataFrame) -> pd.DataFrame:
    """Per size, seed and map: mean box ratio, share of clips at >= 3x, MoRF below random;
    for methods, the share of clips beating the ``input`` floor on the ratio and on the MoRF
    area, and whether the judged target holds."""
    keys = ["clip_set", "size", "seed"]
    floor = parts[parts["method"] == "input"][keys + ["clip", "ratio", "morf"]]
    floor = floor.rename(columns={"ratio": "floor_ratio", "morf": "floor_morf"})
    both = parts.merge(floor, on=keys + ["clip"])
    both["beats_ratio"] = both["ratio"] > both["floor_ratio"]
    both["beats_morf"] = both["morf"] < both["floor_morf"]
    g = both.groupby(keys + ["method"], sort=False)
    out = pd.DataFrame({
        "ratio_mean": g["ratio"].mean(), "clips_3x": g["ratio"].apply(lambda r: (r >= 3).mean()),
        "morf_below_random": g["morf_better"].mean(),
        "beats_input_ratio": g["beats_ratio"].mean(),
        "beats_input_morf": g["beats_morf"].mean()}).reset_index()
    out["judged_target"] = np.where((out["ratio_mean"] >= 3) & (out["morf_below_random"] >= 0.9),
                                    "yes", "no")
    out.loc[out["method"].isin(FLOORS), ["beats_input_ratio", "beats_input_morf"]] = np.nan
    return out


def render(parts: pd.DataFrame, header: str) -> str:
    table = summary(parts)
    keys = ["clip_set", "size", "method"]
    pooled = table[~table["method"].isin(FLOORS)].groupby(keys, sort=False)[
        ["ratio_mean", "morf_below_random", "beats_input_ratio", "beats_input_morf"]].mean()
    floors = table[table["method"].isin(FLOORS)].groupby(keys, sort=False)[
        ["ratio_mean", "clips_3x", "morf_below_random"]].mean()
    return f"""{header}

**Maps that read no model** (mean over the event models' seeds; `judged_target` would be met
by any of them where ratio >= 3 and MoRF below random >= 0.9):

{_fmt(floors.reset_index())}

**Methods against the `input` floor** (mean over seeds): `beats_input_ratio` is the share of
clips whose box ratio exceeds that of `x - reference` on the same clip, `beats_input_morf` the
share whose MoRF deletion area lies below the `x - reference` map's own (both through the
same event model, to the same reference).

{_fmt(pooled.reset_index())}

**Per seed** (every map):

{_fmt(table)}

`ratio_mean`: share of positive attribution inside the box over the box's area share;
`clips_3x`: share of clips at >= 3x; `morf_below_random`: share of clips whose MoRF deletion
area lies below the mean of 5 random bin orders and their reverses (the judged figures use
exactly these two); `beats_input_*`: per clip against `x - reference`. `clip_set`: the
judged run's 30 strongest events (`strongest`), or the strongest events of the clips whose
brightest box-shaped patch lies outside the box (`distractor`).
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p, lime_samples=64)  # the judged event run's LIME samples
    p.add_argument("--sizes", nargs="+", default=["toy", "clip"], choices=["toy", "clip"])
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--event-clips", type=int, default=30)
    p.add_argument("--event-steps", type=int, default=1500)
    p.add_argument("--event-train-clips", type=int, default=512)
    p.add_argument("--event-removal", type=float, default=0.5)
    p.add_argument("--clip-set", default="strongest", choices=["strongest", "distractor"],
                   help="the judged clips, or clips whose distractor outshines the event")
    p.add_argument("--render", action="store_true", help="write the table from the parts")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds, args.event_clips = ["toy"], [3], 6
        args.n_steps, args.n_samples, args.lime_samples, args.no_write = 4, 4, 16, True
        args.threads = args.threads or 1  # tiny work: a second thread only waits under load
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="floors_"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.render:
        for size in args.sizes:
            for seed in args.seeds:
                suffix = "" if args.clip_set == "strongest" else f"_{args.clip_set}"
                part = work / f"floors_{size}_{seed}{suffix}.csv"
                if part.is_file():
                    continue
                rows = measure(size, seed, args, print)
                tmp = part.with_suffix(".tmp")
                rows.to_csv(tmp, index=False)
                os.replace(tmp, part)
    parts = pd.concat([pd.read_csv(f) for f in sorted(work.glob("floors_*.csv"))],
                      ignore_index=True)
    parts["clip_set"] = parts.get("clip_set", pd.Series(index=parts.index, dtype=object)
                                  ).fillna("strongest")
    header = (f"Script: `benchmarks/event_floors.py` ({time.strftime('%Y-%m-%d %H:%M')}; event "
              f"models as the judged run: removal {args.event_removal}, seeds "
              f"{', '.join(map(str, sorted(parts['seed'].unique())))}; {args.event_clips} "
              f"strongest-event clips; LIME {args.lime_samples} samples).")
    text = render(parts, header)
    publish(text, SECTION, write=not args.no_write and (args.render or not args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
