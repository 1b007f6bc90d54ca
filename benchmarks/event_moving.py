"""A planted event that moves: do the post-hoc maps find an event the model tells apart?

The judged planted-event task puts its deciding box at the same place on every clip, and its
event and distractor are flat blobs told apart only by where they are; maps that read no
model meet its figure (a constant map on the box 25.6x, the input 7.2x: "Planted event:
floors that read no model"). Here :class:`midlevel.testing.events.EventTask` with
``placement="moving"`` draws each clip's box anew, and the event (a sustained tone: energy in
every other band of its box) is told from a distractor of the same shape and mean energy
(broadband clicks: every other frame) by content alone. No fixed box exists, so a constant
map scores nothing; but the input still meets the judged figure (the two boxes hold nearly
all the energy above the background, each 2.6 % of the clip at clip size and 3.9 % at toy
size: `x - reference` puts 8-15x its area share in the event's box). Nor does telling the
event from the distractor need a model: the two differ in texture, and a filter that knows
it (:func:`texture_map`, bands' alternation minus frames') prefers the event on every clip,
also where the clicks are the brighter (``--clip-set distractor``, where the input prefers
the distractor on nearly every clip). So the figure that tells a map that reads the model
here is the comparison with **the same method on a network that learned nothing**
(``beats_random_network``); preferring the event over brighter clicks shows that a map is
not a picture of the brightness, and the box ratio and MoRF are reported because they are
the judged figure's.

Per event model (seeds 3, 4, 5; trained on clips only, as the judged toy models' recipe:
256 clips, 150 cosine steps at the toy size), on the 30 strongest events of 200 clips (seed
1; ``--clip-set distractor``: the strongest events among the clips of 400 whose distractor is
stronger than the event), every registered method is scored:

- box ratio: the share of positive attribution inside the clip's own event box over the box's
  area share (the judged figure: >= 3x), and the same for the distractor's box;
- MoRF: whether the most-relevant-first deletion curve lies below 5 random bin orders and
  their reverses (the judged figure: on >= 90 % of clips), deleting to the background mean
  through the trained model;
- against floors, per clip: maps that read no model (the input itself, ``x - reference``,
  its absolute value and the texture filter), and **the same method on a randomized
  network** (every layer re-initialized, BatchNorm statistics re-estimated,
  :func:`midlevel.explain.sanity.randomize_stage`): a map that scores as well from a network
  that learned nothing reads the input through the method, not the model.

The event models' held-out R^2 and how much their answer drops when the event's box, or the
distractor's, is replaced by the reference (the model reads the event, not the distractor)
are reported beside.

    python benchmarks/event_moving.py --workdir runs/moving            # toy size, ~25 min
    python benchmarks/event_moving.py --clip-set distractor --workdir runs/moving
    python benchmarks/event_moving.py --render --workdir runs/moving   # table only
    python benchmarks/event_moving.py --quick                          # smoke run
    python benchmarks/event_moving.py --sizes clip --clip-set distractor --training path \
        --workdir runs/moving     # every method on models trained with points of IG's path

Each (size, seed, clip set) is kept as ``moving_<size>_<seed>_<clip set>.csv`` in
``--workdir`` (``..._<training>.csv`` for a training other than plain); ``--render`` writes
the section "Planted event that moves: maps against a network that learned nothing" of
benchmarks/RESULTS.md from every plain part there and, where parts of another training
exist, the section "Planted event that moves: every method on path-trained event models"
(each method on those models beside the same method on the plain models of the same seeds
and clips: does training the model on the points IG's path feeds it change what the maps
find, for the methods that do not walk that path too?).
"""
from __future__ import annotations

import argparse
import copy
import os
import re
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

from event_floors import score_maps  # noqa: E402
from ground_truth_recovery import _fmt, publish  # noqa: E402
from posthoc_faithfulness import _options, common_arguments  # noqa: E402

from midlevel.explain.attribution.attributor import Attributor  # noqa: E402
from midlevel.explain.attribution.base import OutputSelector  # noqa: E402
from midlevel.explain.attribution.registry import METHODS  # noqa: E402
from midlevel.explain.faithfulness import box_share  # noqa: E402
from midlevel.explain.sanity import cascade_stages, randomize_stage  # noqa: E402
from midlevel.testing.events import EventTask  # noqa: E402

SECTION = "Planted event that moves: maps against a network that learned nothing"
#: maps that read no model: the clip itself, its absolute value, and a texture filter that
#: knows the event's look (:func:`texture_map`)
FLOORS = ("input", "abs_input", "texture")
#: the randomized network's seed is the event model's plus this
RANDOM_SEED_OFFSET = 1000
#: how the event model was trained (:func:`trained_model`)
TRAININGS = ("plain", "path", "long")
#: the share of each batch a ``path``-trained event model sees as points of IG's path
PATH_SHARE = 0.5
SECTION_TRAININGS = "Planted event that moves: every method on path-trained event models"


def task_for(size: str) -> tuple[EventTask, int, int, dict]:
    """The moving event task, training clips and steps, and window options at ``size``
    (the judged run's at each size)."""
    if size == "toy":
        return EventTask(placement="moving"), 256, 150, {"window": (4, 4), "stride": (2, 2)}
    return (EventTask(n_bands=149, n_frames=313, box=(40, 64, 140, 190), placement="moving"),
            512, 1500, {"window": (12, 25), "stride": (12, 25)})


def moving_clips(task: EventTask, n: int, clip_set: str):
    """``(x, boxes, distractors, strengths, background)``: the ``n`` strongest events of 200
    clips (seed 1), or (``clip_set="distractor"``) the strongest events among the clips of
    400 whose distractor is stronger than the event; 32 background clips (seed 2)."""
    c = task.draw(200 if clip_set == "strongest" else 400, seed=1)
    s, d = c.strength, c.distractor_strength
    pool = np.arange(len(s)) if clip_set == "strongest" else np.flatnonzero(d > s)
    order = pool[np.argsort(-s[pool], kind="stable")][:n]
    bg, _ = task.sample(32, seed=2)
    return (c.x[order], [c.boxes[i] for i in order], [c.distractors[i] for i in order],
            np.stack([s[order], d[order]], axis=1), bg)


def event_model(task: EventTask, n: int, steps: int, seed: int, work: Path | None, *,
                tag: str = "", **train):
    """The event model of ``seed``, trained once per workdir (both clip sets read it) and
    kept as ``model_<bands>x<frames>_<seed>_<steps><tag>.pt``; ``train``: further options of
    :meth:`EventTask.train_model` (a ``tag`` tells such a model's file from the plain one's)."""
    path = (work / f"model_{task.n_bands}x{task.n_frames}_{seed}_{steps}{tag}.pt" if work
            else None)
    if path is not None and path.is_file():
        return torch.load(path, weights_only=False).eval()
    model = task.train_model(n=n, steps=steps, seed=seed, **train)
    if path is not None:
        tmp = path.with_suffix(".tmp")
        torch.save(model, tmp)
        os.replace(tmp, path)
    return model


def trained_model(task: EventTask, n: int, steps: int, seed: int, work: Path | None,
                  training: str = "plain"):
    """The event model of ``seed`` (:func:`event_model`): trained on clips only
    (``"plain"``, the models this script judges by default), with :data:`PATH_SHARE` of each
    batch on points of IG's straight path from the training clips' mean (``"path"``,
    :meth:`EventTask.train_model` ``path``), or on clips only with twice the clips and steps
    (``"long"``: a plain model that fits the clips as well as a path-trained one, its
    control)."""
    if training == "plain":
        return event_model(task, n, steps, seed, work)
    if training == "long":
        return event_model(task, 2 * n, 2 * steps, seed, work, tag=f"_n{2 * n}")
    if training == "path":
        return event_model(task, n, steps, seed, work, tag=f"_path{PATH_SHARE}",
                           path=PATH_SHARE)
    raise ValueError(f"training {training!r}: one of {', '.join(TRAININGS)}")


def part_name(size: str, seed: int, clip_set: str, training: str = "plain") -> str:
    """The file of one (size, seed, clip set, training) part; plain parts keep the name they
    had before other trainings existed."""
    tail = "" if training == "plain" else f"_{training}"
    return f"moving_{size}_{seed}_{clip_set}{tail}.csv"


def randomized(model, x: torch.Tensor, background: torch.Tensor, seed: int):
    """A copy of ``model`` with every layer re-initialized (``seed``) and its BatchNorm
    statistics re-estimated on ``background``, as the sanity check's full randomization."""
    g = copy.deepcopy(model).eval()
    done: list[str] = []
    for _, names in cascade_stages(g, x[:2]):
        randomize_stage(g, names, seed=seed, data=background, randomized=done)
    return g.eval()


def box_drops(model, x, boxes, distractors, reference) -> dict:
    """Median drop of the model's answer (target units) when the event's box, or the
    distractor's, is replaced by ``reference``: a model that reads the event drops by about
    the event's strength for the first and by little for the second."""
    ref = reference.reshape(1, 1, *x.shape[-2:])

    def without(which):
        out = x.clone()
        for i, b in enumerate(which):
            if b is not None:
                b0, b1, f0, f1 = b
                out[i, :, b0:b1, f0:f1] = ref[0, :, b0:b1, f0:f1]
        return out

    with torch.no_grad():
        f = lambda z: model.unscale(model(z)).targets[:, 0].numpy()  # noqa: E731
        base = f(x)
        event, distractor = base - f(without(boxes)), base - f(without(distractors))
    return {"event_drop": float(np.median(event)), "distractor_drop": float(np.median(distractor))}


def measure(size: str, seed: int, args, log) -> tuple[pd.DataFrame, dict]:
    """Every method on the trained and on a randomized event model, and the input floors:
    per-clip rows; and the model's checks."""
    task, n_train, steps, windows = task_for(size)
    steps = args.event_steps or steps
    x, boxes, distractors, strengths, bg = moving_clips(task, args.event_clips, args.clip_set)
    model = trained_model(task, n_train, steps, seed, args.workdir and Path(args.workdir),
                          args.training)
    noise = randomized(model, x, bg, seed + RANDOM_SEED_OFFSET)
    about = {"clip_set": args.clip_set, "size": f"{task.n_bands} x {task.n_frames}",
             "seed": seed, "training": args.training, "held_out_r2": task.held_out_r2(model)}
    opts = {**_options(args), **windows}
    clips = [f"c{i}" for i in range(len(x))]
    # deletion always through the trained model: does a map order its evidence?
    selector = OutputSelector(model).eval()
    rows = []
    for network, net in (("trained", model), ("random", noise)):
        for method in METHODS:
            t0 = time.time()
            at = Attributor(net, method, background=bg, **opts)
            attr = at.attribute(x, clips=clips)
            ref = at.reference_for(x)
            rows.append(scored(task, selector, x, ref, attr.values, method, boxes, distractors)
                        .assign(network=network))
            log(f"{size} seed {seed} {args.training} {network} {method}: "
                f"{time.time() - t0:.0f} s")
    rows += floor_rows(task, selector, x, ref, boxes, distractors, FLOORS)
    out = pd.concat(rows, ignore_index=True)
    out["event_strength"] = np.tile(strengths[:, 0], len(rows))
    out["distractor_strength"] = np.tile(strengths[:, 1], len(rows))
    checks = {**about, **box_drops(model, x, boxes, distractors, ref)}
    return out.assign(**about), checks


def texture_map(x: torch.Tensor) -> torch.Tensor:
    """A map that reads no model but knows what the event looks like: at each bin, how much
    the clip alternates across bands (the tone's stripes) minus how much it alternates across
    frames (the clicks'), ``|x[b + 1] - x[b]| - |x[f + 1] - x[f]|`` (the last band and frame
    repeat their neighbour). x and the map ``(n, 1, n_bands, n_frames)``."""
    across_bands = torch.diff(x, dim=2, append=x[:, :, -1:]).abs()
    across_frames = torch.diff(x, dim=3, append=x[:, :, :, -1:]).abs()
    return across_bands - across_frames


def floor_rows(task, selector, x, ref, boxes, distractors, names) -> list[pd.DataFrame]:
    """The floors ``names`` (of :data:`FLOORS`) scored as the methods are, deleting through
    the trained model (``selector``): ``input`` is ``x - reference``, ``abs_input`` its
    absolute value, ``texture`` :func:`texture_map`."""
    ref = torch.as_tensor(np.asarray(ref, dtype=np.float32))
    diff = x - ref.reshape(1, 1, *x.shape[-2:])
    maps = {"input": diff, "abs_input": diff.abs(), "texture": texture_map(x)}
    return [scored(task, selector, x, ref, maps[name].numpy(), name, boxes, distractors)
            .assign(network="none") for name in names]


def add_floors(part: Path, size: str, seed: int, args, log) -> bool:
    """Score the floors a part written before they existed lacks, on its own clips (checked:
    the count and each clip's event and distractor strengths) and through its own event
    model (kept in the workdir, or trained again and checked to be the same model: its
    held-out R^2 must equal the stored one); True if the part changed."""
    rows = pd.read_csv(part)
    missing = [f for f in FLOORS if f not in set(rows["method"])]
    if not missing:
        return False
    task, n_train, steps, _ = task_for(size)
    steps = args.event_steps or steps
    x, boxes, distractors, strengths, bg = moving_clips(task, args.event_clips, args.clip_set)
    model = trained_model(task, n_train, steps, seed, part.parent, args.training)
    stored = pd.read_csv(part.with_name("checks_" + part.name))["held_out_r2"].iloc[0]
    if abs(task.held_out_r2(model) - stored) > 1e-9:
        raise SystemExit(f"{part}: the event model of seed {seed} is not the part's (held-out "
                         f"R^2 {task.held_out_r2(model)!r}, stored {stored!r}; train it with "
                         f"the part's torch threads)")
    keep = rows[rows["method"] == "input"].reset_index(drop=True)
    if len(keep) != len(x) or not (
            np.allclose(keep["event_strength"], strengths[:, 0])
            and np.allclose(keep["distractor_strength"], strengths[:, 1])):
        raise SystemExit(f"{part}: its clips are not the ones drawn now ({len(keep)} stored, "
                         f"{len(x)} drawn, or other strengths): run with the part's "
                         f"--event-clips and --clip-set")
    ref = Attributor(model, "integrated_gradients", background=bg).reference_for(x)
    new = pd.concat(floor_rows(task, OutputSelector(model).eval(), x, ref, boxes,
                               distractors, missing), ignore_index=True)
    same = [c for c in ("event_strength", "distractor_strength", "clip_set", "size", "seed",
                        "training", "held_out_r2") if c in rows]  # parts before "training": plain
    new = new.assign(**{c: np.tile(keep[c].to_numpy(), len(missing)) for c in same})
    tmp = part.with_suffix(".tmp")
    pd.concat([rows, new[rows.columns]], ignore_index=True).to_csv(tmp, index=False)
    os.replace(tmp, part)
    log(f"{part.name}: added floors {', '.join(missing)}")
    return True


def scored(task, selector, x, ref, maps, name, boxes, distractors) -> pd.DataFrame:
    """:func:`event_floors.score_maps` on each clip's own box, with the distractor's ratio."""
    rows = score_maps(task, selector, x, ref, maps, name, boxes=boxes)
    values = np.asarray(maps, dtype=np.float32)[:, 0]
    return rows.assign(distractor_ratio=distractor_ratios(values, distractors),
                       has_distractor=[d is not None for d in distractors])


def distractor_ratios(values: np.ndarray, distractors, *, positive: bool = True) -> np.ndarray:
    """``(n,)``: :func:`box_share`'s ratio on each clip's distractor box (NaN where a clip has
    none); values ``(n, bands, frames)``."""
    placed = [i for i, d in enumerate(distractors) if d is not None]
    out = np.full(len(values), np.nan)
    if placed:
        out[placed] = box_share(values[placed], [distractors[i] for i in placed],
                                positive=positive)["ratio"].to_numpy()
    return out


def summary(parts: pd.DataFrame) -> pd.DataFrame:
    """Per clip set, size, seed, map and network: mean box ratios (event, distractor), share
    of clips at >= 3x, MoRF below random, whether the judged target holds; for the trained
    methods, the share of clips beating the input's box ratio and the same method's on the
    randomized network."""
    keys = ["clip_set", "size", "seed"]
    # parts written before the column (alone, or read with newer ones): none lacked one
    placed = parts["distractor_strength"] > 0
    parts = parts.assign(has_distractor=parts["has_distractor"].fillna(placed).astype(bool)
                         if "has_distractor" in parts else placed)
    floor = parts[parts["method"] == "input"][keys + ["clip", "ratio"]].rename(
        columns={"ratio": "input_ratio"})
    noise = parts[parts["network"] == "random"][keys + ["clip", "method", "ratio"]].rename(
        columns={"ratio": "random_ratio"}).assign(has_random=True)
    both = parts.merge(floor, on=keys + ["clip"]).merge(noise, on=keys + ["clip", "method"],
                                                        how="left")
    # one convention for a map without positive attribution (its ratios undefined): it puts
    # nothing in any box, ratio 0, on either side of a comparison
    ratio = both["ratio"].fillna(0)
    both["beats_input"] = ratio > both["input_ratio"].fillna(0)
    # the two boxes have one area, so the ratios compare their shares of positive attribution
    both["prefers_event"] = (ratio > both["distractor_ratio"].fillna(0)).where(
        both["has_distractor"])
    both["beats_random"] = (ratio > both["random_ratio"].fillna(0)).where(
        both["has_random"].fillna(False).astype(bool))
    g = both.groupby(keys + ["network", "method"], sort=False)
    out = pd.DataFrame({
        "defined": g["ratio"].apply(lambda r: r.notna().mean()),
        "ratio_mean": g["ratio"].mean(),
        "clips_3x": g["ratio"].apply(lambda r: (r >= 3).mean()),
        "distractor_ratio": g["distractor_ratio"].mean(),
        "prefers_event": g["prefers_event"].mean(),
        "morf_below_random": g["morf_better"].mean(),
        "beats_input": g["beats_input"].mean(),
        "beats_random_network": g["beats_random"].mean()}).reset_index()
    # a clip whose map has no positive attribution puts none in the box: ratio 0 there
    strict = g["ratio"].apply(lambda r: r.fillna(0).mean()).to_numpy()
    out["judged_target"] = np.where((strict >= 3) & (out["morf_below_random"] >= 0.9),
                                    "yes", "no")
    not_trained = out["network"] != "trained"
    out.loc[not_trained, ["beats_input", "beats_random_network"]] = np.nan
    return out


def _names(frame: pd.DataFrame, column: str | None = None) -> str:
    """``method (value)`` for each row, or the methods alone; "none" for no row."""
    if frame.empty:
        return "none"
    if column is None:
        return ", ".join(frame["method"])
    return ", ".join(f"{m} ({v:.2f})" for m, v in zip(frame["method"], frame[column]))


def reading(pooled: pd.DataFrame) -> str:
    """Plain sentences from the pooled table, per clip set and size (generated, so a
    re-render says what its numbers say)."""
    lines = []
    for (clip_set, size), g in pooled.groupby(["clip_set", "size"], sort=False):
        t, r = g[g["network"] == "trained"], g[g["network"] == "random"]
        inp = g[g["method"] == "input"].iloc[0]
        n_models = int(t["judged_target"].iloc[0].split(" of ")[1])
        met = t[t["judged_target"] == f"{n_models} of {n_models}"]
        floors_met = g[(g["network"] != "trained")
                       & ~g["judged_target"].str.startswith("0 of")]
        strong = t[t["beats_random_network"] >= 0.9]
        weak = t[t["beats_random_network"] < 0.9]
        lines.append(
            f"- **{clip_set} clips, {size}.** The judged figure (ratio >= 3x and MoRF below "
            f"random on >= 90 % of clips) is met on every model by {len(met)} of {len(t)} "
            f"methods ({_names(met)}); among the floors, on at least one model, by "
            f"{_names(floors_met, 'ratio_mean')} (mean ratio). Per clip, the trained map puts more in the event's box than the "
            f"same method on a randomized network on >= 90 % of clips for "
            f"{_names(strong)}; on fewer for {_names(weak, 'beats_random_network')}. It "
            f"prefers the event to the distractor on {t['prefers_event'].min():.2f}-"
            f"{t['prefers_event'].max():.2f} of clips across methods (randomized networks "
            f"{r['prefers_event'].min():.2f}-{r['prefers_event'].max():.2f}, the input "
            f"{inp['prefers_event']:.2f}" + _texture_clause(g) + ").")
    return "\n".join(lines)


def _texture_clause(g: pd.DataFrame) -> str:
    """What the texture filter (a map that reads no model) does on ``prefers_event`` and the
    box ratio, for the reading; empty for parts scored before the filter existed."""
    tex = g[g["method"] == "texture"]
    if tex.empty:
        return ""
    tex = tex.iloc[0]
    said = (f", the texture filter that reads no model {tex['prefers_event']:.2f} at a box "
            f"ratio of {tex['ratio_mean']:.1f}x")
    if tex["prefers_event"] >= 0.9:
        said += (": preferring the event needs no model, only the event's look; the "
                 "comparison with the randomized network is the figure that tells a map that "
                 "reads the model")
    return said


def render(parts: pd.DataFrame, checks: pd.DataFrame, header: str) -> str:
    table = summary(parts)
    keys = ["clip_set", "size", "network", "method"]
    cols = ["defined", "ratio_mean", "clips_3x", "distractor_ratio", "prefers_event", "morf_below_random",
            "beats_input",
            "beats_random_network"]
    pooled = table.groupby(keys, sort=False)[cols].mean().reset_index()
    met = table.groupby(keys, sort=False)["judged_target"].apply(
        lambda v: f"{int((v == 'yes').sum())} of {len(v)}").reset_index()
    pooled = pooled.merge(met, on=keys)
    trained = pooled[pooled["network"] == "trained"].drop(columns="network")
    floors = pooled[pooled["network"] != "trained"].drop(
        columns=["beats_input", "beats_random_network"])
    return f"""{header}

Reading (written by the script from the tables below):

{reading(pooled)}

**The event models** (per seed and clip set): held-out R^2 on 256 fresh clips (seed 11), and
the median drop of the answer (target units) on the explained clips when the event's box, or
the distractor's, is replaced by the reference.

{_fmt(checks)}

**Methods on the trained models** (mean over seeds; `judged_target`: the models on which
ratio >= 3 and MoRF below random >= 0.9, the judged figure's two lines, a clip without
positive attribution counted at ratio 0):

{_fmt(trained)}

**Floors: the same methods on a randomized network, and maps that read no model** (`input`:
`x - reference`; `abs_input`: its absolute value; `texture`: bands' alternation minus
frames', a filter that knows the event's look; mean over
seeds; a floor that meets the judged figure shows that meeting it needs no trained model):

{_fmt(floors)}

`defined`: share of clips whose map has any positive attribution (a ratio is undefined
without; `ratio_mean` and `distractor_ratio` are means over those clips; every comparison,
`clips_3x` and `judged_target` count a clip without positive attribution at ratio 0, on
either side; `morf_below_random` is over all clips);
`ratio_mean`: share of positive attribution inside the clip's own event box over the box's
area share (1 = uniform); `clips_3x`: share of all clips at >= 3x; `distractor_ratio`: the same
for the distractor's box (the model should ignore it); `prefers_event`: share of clips with
more positive attribution on the event's box than on the distractor's (same area; the rows
of `input` and `texture` say how often maps that read no model do: the clip's brightness, and
a filter that knows the event's texture); `morf_below_random`: share of clips
whose MoRF deletion area (through the trained model, to the background mean) lies below the
mean of 5 random bin orders and their reverses; `beats_input`: share of clips whose box ratio
exceeds that of `x - reference` on the same clip; `beats_random_network`: share of clips whose
box ratio exceeds that of the same method on the randomized network. `clip_set`: the 30
strongest events (`strongest`) or the strongest events among clips whose distractor is
stronger than the event (`distractor`).

**Per seed** (every map):

{_fmt(table)}
"""


def compare_trainings(parts: pd.DataFrame, checks: pd.DataFrame, header: str) -> str | None:
    """The section that sets each method on models of other trainings (:data:`TRAININGS`)
    beside the same method on the plain models, on the (clip set, size, seed) parts that
    every training present there scored, so that each row pools the same models' seeds;
    None where no plain part shares a clip set, size and seed with another training's."""
    keys = ["clip_set", "size", "seed"]
    other = parts[parts["training"] != "plain"]
    common = []
    for (clip_set, size), g in parts.merge(other[["clip_set", "size"]].drop_duplicates()) \
            .groupby(["clip_set", "size"], sort=False):
        if "plain" not in set(g["training"]):
            continue
        seeds = set.intersection(*(set(h["seed"]) for _, h in g.groupby("training")))
        common += [(clip_set, size, seed) for seed in sorted(seeds)]
    common = pd.DataFrame(common, columns=keys)
    if common.empty:  # no plain part shares a clip set, size and seed with the others
        return None
    both = parts.merge(common, on=keys)
    tables = [summary(g).assign(training=t) for t, g in both.groupby("training", sort=False)]
    table = pd.concat(tables, ignore_index=True)
    cols = ["ratio_mean", "clips_3x", "distractor_ratio", "prefers_event", "morf_below_random",
            "beats_random_network"]
    at = ["clip_set", "size", "network", "method", "training"]
    pooled = table.groupby(at, sort=False)[cols].mean().reset_index().merge(
        table.groupby(at, sort=False)["judged_target"].apply(
            lambda v: f"{int((v == 'yes').sum())} of {len(v)}").reset_index(), on=at)
    pooled = pooled.assign(_m=pooled["method"].map({m: i for i, m in enumerate(
        pooled["method"].unique())}), _t=pooled["training"].map(TRAININGS.index))
    pooled = pooled.sort_values(["clip_set", "size", "network", "_m", "_t"], kind="stable",
                                ignore_index=True).drop(columns=["_m", "_t"])
    trained = pooled[pooled["network"] == "trained"].drop(columns="network")
    floors = pooled[pooled["network"] != "trained"].drop(columns="beats_random_network")
    shown = checks.merge(common, on=keys)
    shown = shown[keys + ["training"] + [c for c in shown if c not in keys + ["training"]]]
    seeds = "; ".join(f"{clip_set} clips at {size}: seeds {', '.join(map(str, g['seed']))} "
                      f"({', '.join(both.merge(g)['training'].unique())})"
                      for (clip_set, size), g in common.groupby(["clip_set", "size"], sort=False))
    return f"""{header} Compared on the parts every training scored: {seeds}.

Reading (written by the script from the tables below):

{trainings_reading(trained)}

**The event models**: held-out R^2 on 256 fresh clips (seed 11), and the median drop of the
answer (target units) on the explained clips when the event's box, or the distractor's, is
replaced by the reference.

{_fmt(shown.sort_values(keys, kind="stable", ignore_index=True))}

**Methods on the trained models, by training** (mean over seeds; columns as in section
"{SECTION}"):

{_fmt(trained)}

**Floors, by training** (the same methods on the randomized network of each training's
model, and the maps that read no model; MoRF deletes through that training's model):

{_fmt(floors)}
"""


def trainings_reading(trained: pd.DataFrame) -> str:
    """Per clip set, size and other training: which methods beat the randomized network on
    >= 90 % of clips, and meet the judged figure on every model, with each training."""
    lines = []
    for (clip_set, size), g in trained.groupby(["clip_set", "size"], sort=False):
        plain = g[g["training"] == "plain"].set_index("method")
        for training, h in g[g["training"] != "plain"].groupby("training", sort=False):
            h = h.set_index("method")
            h = h[h.index.isin(plain.index)]  # a method the plain parts lack: not compared
            gained = [m for m in h.index if h.at[m, "beats_random_network"] >= 0.9
                      > plain.at[m, "beats_random_network"]]
            lost = [m for m in h.index if plain.at[m, "beats_random_network"] >= 0.9
                    > h.at[m, "beats_random_network"]]
            before, after = met_on_every_model(plain), met_on_every_model(h)
            moved = ", ".join(
                f"{m} {plain.at[m, 'beats_random_network']:.2f} -> "
                f"{h.at[m, 'beats_random_network']:.2f}" for m in h.index)
            lines.append(
                f"- **{clip_set} clips, {size}, {training}-trained against plain.** Clips on "
                f"which the trained map puts more in the event's box than the same method on "
                f"the randomized network: {moved}. At >= 90 % of clips: "
                f"{len(plain[plain['beats_random_network'] >= 0.9])} of {len(plain)} methods "
                f"plain, {len(h[h['beats_random_network'] >= 0.9])} {training}-trained "
                f"(newly: {', '.join(gained) or 'none'}; no longer: {', '.join(lost) or 'none'}). "
                f"The judged figure on every model: {len(before)} of {len(plain)} methods "
                f"plain ({', '.join(before) or 'none'}), {len(after)} {training}-trained "
                f"({', '.join(after) or 'none'}).")
    return "\n".join(lines)


def met_on_every_model(table: pd.DataFrame) -> list[str]:
    """The methods (``table``'s index) whose ``judged_target`` reads "k of k": met on every
    model pooled in their row."""
    counts = table["judged_target"].str.split(" of ", expand=True)
    return list(table.index[counts[0] == counts[1]])


PART = re.compile(r"(checks_)?moving_(toy|clip)_\d+_(strongest|distractor)"
                  r"(?:_(" + "|".join(TRAININGS[1:]) + r"))?\.csv")


def read_parts(work: Path, checks: bool = False) -> pd.DataFrame:
    """Every part (or checks part) in ``work`` (named as :func:`part_name` names them; other
    CSVs there, such as event_moving_paths' tables, are not read), with a ``training``
    column: the one its file name gives ("plain" without a suffix), checked against the
    column where the part has one (parts written before it existed are plain)."""
    frames = []
    for f in sorted(work.glob("*.csv")):
        m = PART.fullmatch(f.name)
        if not m or f.name.startswith("checks_") != checks:
            continue
        named, frame = m.group(4) or "plain", pd.read_csv(f)
        if "training" in frame and set(frame["training"].dropna()) - {named}:
            raise SystemExit(f"{f}: its rows say training {set(frame['training'].dropna())}, "
                             f"its name {named!r}")
        frames.append(frame.assign(training=named))
    if not frames:
        raise SystemExit(f"{work}: no {'checks ' if checks else ''}part to render")
    return pd.concat(frames, ignore_index=True)


def written(work: Path, trainings) -> str:
    """When the parts of ``trainings`` in ``work`` were last written, first to last (a
    render's header gives the runs' time, not its own); "-" if there are none."""
    times = [f.stat().st_mtime for f in work.glob("*.csv")
             if (m := PART.fullmatch(f.name)) and (m.group(4) or "plain") in trainings]
    if not times:
        return "-"
    first, last = (time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
                   for t in (min(times), max(times)))
    return first if first == last else f"{first} to {last}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(p, lime_samples=64)  # the judged event run's LIME samples
    p.add_argument("--sizes", nargs="+", default=["toy"], choices=["toy", "clip"])
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--event-clips", type=int, default=30)
    p.add_argument("--event-steps", type=int, default=None,
                   help="training steps (default: the judged run's at each size)")
    p.add_argument("--clip-set", default="strongest", choices=["strongest", "distractor"])
    p.add_argument("--training", default="plain", choices=TRAININGS,
                   help="the event models' training (plain: clips only; path: "
                        f"{PATH_SHARE:.0%} of each batch on points of IG's path; long: clips "
                        "only, twice the clips and steps); parts of other trainings are "
                        f"compared with the plain ones in section \"{SECTION_TRAININGS}\"")
    p.add_argument("--render", action="store_true", help="write the table from the parts")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.event_clips = [3], 6
        args.n_steps, args.n_samples, args.lime_samples, args.no_write = 4, 4, 16, True
        args.threads = args.threads or 1  # tiny work: a second thread only waits under load
    torch.set_num_threads(args.threads or max(1, min(2, os.cpu_count() or 1)))
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="moving_"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.render:
        for size in args.sizes:
            for seed in args.seeds:
                part = work / part_name(size, seed, args.clip_set, args.training)
                if part.is_file():
                    add_floors(part, size, seed, args, print)
                    continue
                rows, checks = measure(size, seed, args, print)
                for path, table in ((part, rows), (part.with_name("checks_" + part.name),
                                                   pd.DataFrame([checks]))):
                    tmp = path.with_suffix(".tmp")
                    table.to_csv(tmp, index=False)
                    os.replace(tmp, path)
    parts, checks = read_parts(work), read_parts(work, checks=True)
    write = not args.no_write and (args.render or not args.quick)
    if (parts["training"] != "plain").any():
        header = (f"Script: `benchmarks/event_moving.py --training "
                  f"{'/'.join(t for t in TRAININGS[1:] if (parts['training'] == t).any())}` "
                  f"(parts written {written(work, TRAININGS[1:])}, the plain parts "
                  f"{written(work, ('plain',))}; the clips, methods and options "
                  f"of section \"{SECTION}\", and its randomized networks: re-initialized from "
                  f"the same seeds, they are the plain models' up to the input standardization "
                  f"each model keeps; path-trained models: "
                  f"{PATH_SHARE:.0%} of each batch on points of IG's straight path from the "
                  f"training clips' mean, `EventTask.train_model(path=...)`, the models of "
                  f"section \"Planted event that moves: where IG's attribution to the clicks "
                  f"comes from\"; long-trained: clips only, twice the clips and steps).")
        compared = compare_trainings(parts, checks, header)
        if compared is None:
            print(f"{work}: no plain part shares a clip set, size and seed with the parts of "
                  f"other trainings; section \"{SECTION_TRAININGS}\" not written")
        else:
            publish(compared, SECTION_TRAININGS, write=write)
    parts = parts[parts["training"] == "plain"]
    checks = checks[checks["training"] == "plain"].drop(columns="training")
    if parts.empty:
        return 0
    header = (f"Script: `benchmarks/event_moving.py` (parts written {written(work, ('plain',))}; "
              f"`EventTask(placement=\"moving\")`, event models trained on clips only, 32 x 48: 256 "
              f"clips and 150 cosine steps, 149 x 313: 512 clips and 1500 steps; seeds "
              f"{', '.join(map(str, sorted(parts['seed'].unique())))}; {args.event_clips} clips "
              f"per set; LIME {args.lime_samples} samples; integrated gradients {args.n_steps} "
              f"steps, sampling methods {args.n_samples} samples).")
    publish(render(parts, checks, header), SECTION, write=write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
