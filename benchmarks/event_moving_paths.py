"""Where Integrated Gradients' attribution to the clicks comes from, on the moving event.

On the moving planted event ("Planted event that moves: maps against a network that learned nothing"), the
event models read the tone and ignore the clicks (replacing the clicks' box by the reference
moves the answer by 0.00-0.05 target units), yet at the clip's size Integrated Gradients and
DeepLift put 1.9-2.9x their area share of positive attribution on the clicks, and a
randomized network's IG map puts as much in the tone's box as the trained one on most clips.
Two explanations were left open:

- **the input factor**: IG is ``(x - reference)`` times the gradient averaged along the
  straight path from the reference; the clicks are the brightest bins after the tone, so any
  gradient that is not zero there (not specific to them) gives them attribution;
- **the path**: the model's answers along the path (inputs it never saw in training: every
  bin a blend of the clip and the reference) depend on the clicks where the clip's own
  answer does not, so the path-averaged gradient is large on the clicks.

For each event model (seeds 3-5, trained on clips only, the recipe of ``event_moving.py``)
and the same network fully randomized, on the clips whose clicks outshine the tone, this
script splits IG into its two factors (Gauss-Legendre path of ``--n-steps`` points, the rule
of Captum's ``IntegratedGradients``; checked against the package's own maps):

- ``input_click`` / ``input_tone``: mean ``|x - reference|`` over the clicks' (tone's) box
  over its mean over the bins outside both boxes;
- ``grad_click_at_x``, ``grad_click_near_ref``, ``grad_click_path``: the same ratio for
  ``|gradient|`` at the clip itself, at the path's first point (``alpha`` 0.02 for 32 points)
  and for the path-averaged gradient (IG's multiplier); ``grad_tone_*`` for the tone's box;
- ``ig_click`` / ``ig_tone``: IG's box ratio (share of positive attribution over the box's
  area share, as in the benchmark); ``early_click``: the share of the clicks' box's summed IG
  that the path's first half (``alpha < 0.5``) contributes;
- ``dl_mult_click`` / ``dl_mult_tone``: DeepLift's multiplier (its map over ``x -
  reference``) on the box over the bins outside both boxes;
- ``f_clicks_alone``: the model's answer to the reference plus the clicks alone, minus its
  answer at the reference; ``f_clicks_removed``: its answer on the clip minus the answer with
  the clicks' box at the reference; ``f_tone_alone`` likewise (target units).

A multiplier ratio near 1 on the clicks says the gradient there is what it is anywhere, and
the attribution is the input factor's; a ratio well above 1 says the model's gradient
responds to the clicks, and ``grad_click_at_x`` against ``grad_click_near_ref`` says where
along the path it does.

    python benchmarks/event_moving_paths.py --workdir runs/moving   # ~15 min on one core
    python benchmarks/event_moving_paths.py --quick                  # smoke run

Reuses the event models ``event_moving.py`` kept in ``--workdir``; writes the section
"Planted event that moves: where IG's attribution to the clicks comes from" of
benchmarks/RESULTS.md (unless --no-write).
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
from captum.attr._utils.approximation_methods import approximation_parameters

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
os.environ.setdefault("MPLBACKEND", "Agg")

from event_moving import (  # noqa: E402
    RANDOM_SEED_OFFSET, event_model, moving_clips, randomized, task_for,
)
from ground_truth_recovery import _fmt, publish  # noqa: E402

from midlevel.explain.attribution.attributor import Attributor  # noqa: E402
from midlevel.explain.attribution.base import OutputSelector  # noqa: E402
from midlevel.explain.faithfulness import box_share  # noqa: E402

SECTION = "Planted event that moves: where IG's attribution to the clicks comes from"


def masks(shape: tuple[int, int], boxes, distractors) -> tuple[np.ndarray, ...]:
    """Boolean ``(n, bands, frames)`` masks: the tone's box, the clicks' box, and the bins
    outside both (the background)."""
    n = len(boxes)
    tone, clicks = np.zeros((n, *shape), bool), np.zeros((n, *shape), bool)
    for i, (b, d) in enumerate(zip(boxes, distractors)):
        tone[i, b[0]:b[1], b[2]:b[3]] = True
        if d is not None:
            clicks[i, d[0]:d[1], d[2]:d[3]] = True
    return tone, clicks, ~(tone | clicks)


def box_over_background(values: np.ndarray, box: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Per clip: mean of ``|values|`` over ``box`` over its mean over ``rest``; values, box
    and rest ``(n, bands, frames)``."""
    a = np.abs(values)
    inside = (a * box).sum((1, 2)) / np.maximum(box.sum((1, 2)), 1)
    outside = (a * rest).sum((1, 2)) / np.maximum(rest.sum((1, 2)), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(box.any((1, 2)), inside / outside, np.nan)


def gradients(f, z: torch.Tensor) -> np.ndarray:
    """``(n, bands, frames)``: the gradient of ``f``'s scalar output at each input of ``z``
    ``(n, 1, bands, frames)``."""
    z = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(z).sum(), z)
    return g[:, 0].detach().numpy()


def path_split(f, x: torch.Tensor, ref: torch.Tensor, n_steps: int) -> dict:
    """IG along the straight path from ``ref`` with Captum's Gauss-Legendre rule: the map,
    the path-averaged gradient, the gradient at the first point, and the part of the map that
    the first half of the path (alpha < 0.5) gives."""
    weights, alphas = (np.asarray(v(n_steps)) for v in approximation_parameters("gausslegendre"))
    diff = (x - ref)[:, 0].numpy()
    mean_grad = np.zeros_like(diff)
    early = np.zeros_like(diff)
    first = None
    for w, a in zip(weights, alphas):
        g = gradients(f, ref + float(a) * (x - ref))
        mean_grad += w * g
        if a < 0.5:
            early += w * g
        if first is None:
            first = g
    return {"ig": diff * mean_grad, "mean_grad": mean_grad, "early": diff * early,
            "first_grad": first, "diff": diff}


def answers(f, x: torch.Tensor, ref: torch.Tensor, tone, clicks) -> dict:
    """Per clip: the answer to the reference plus the clicks (tone) alone, minus the answer at
    the reference, and the answer on the clip minus that with the clicks at the reference."""
    t = lambda m: torch.as_tensor(m[:, None], dtype=x.dtype)  # noqa: E731
    with torch.no_grad():
        at = lambda z: f(z)[:, 0].numpy()  # noqa: E731
        base = at(ref.expand_as(x))
        return {"f_clicks_alone": at(ref + (x - ref) * t(clicks)) - base,
                "f_tone_alone": at(ref + (x - ref) * t(tone)) - base,
                "f_clicks_removed": at(x) - at(x - (x - ref) * t(clicks))}


def measure(size: str, seed: int, args, log) -> tuple[pd.DataFrame, dict]:
    """Per clip and network (trained, randomized): the factors of the module docstring."""
    task, n_train, steps, _ = task_for(size)
    steps = args.event_steps or steps
    x, boxes, distractors, _, bg = moving_clips(task, args.event_clips, "distractor")
    model = event_model(task, n_train, steps, seed, args.workdir and Path(args.workdir))
    noise = randomized(model, x, bg, seed + RANDOM_SEED_OFFSET)
    tone, clicks, rest = masks(x.shape[-2:], boxes, distractors)
    scale = float(model.target_std[0])  # the selector answers in standardized units
    rows, check = [], {}
    for network, net in (("trained", model), ("random", noise)):
        t0 = time.time()
        ig_at = Attributor(net, "integrated_gradients", background=bg, n_steps=args.n_steps)
        package = ig_at.attribute(x).values[:, 0]
        ref = torch.as_tensor(np.asarray(ig_at.reference_for(x), dtype=np.float32)).reshape(
            1, 1, *x.shape[-2:])
        f = OutputSelector(net).eval()
        split = path_split(f, x, ref, args.n_steps)
        # the package's IG map is this split's: a check that the factors are of the map judged
        check[network] = float(np.abs(split["ig"] - package).max()
                               / max(np.abs(package).max(), 1e-12))
        dl = Attributor(net, "deeplift", background=bg).attribute(x).values[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            mult = np.where(np.abs(split["diff"]) > 1e-6, dl / split["diff"], 0.0)
        at_x = gradients(f, x)
        click_sum = (split["ig"] * clicks).sum((1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            early = np.where(np.abs(click_sum) > 0, (split["early"] * clicks).sum((1, 2))
                             / click_sum, np.nan)
        ratio = lambda m, which: box_share(m, [b for b in which])["ratio"].to_numpy()  # noqa
        has = [d is not None for d in distractors]
        ig_click = np.full(len(x), np.nan)
        idx = np.flatnonzero(has)
        ig_click[idx] = ratio(split["ig"][idx], [distractors[i] for i in idx])
        out = answers(f, x, ref, tone, clicks)
        rows.append(pd.DataFrame({
            "network": network, "clip": np.arange(len(x)),
            "input_click": box_over_background(split["diff"], clicks, rest),
            "input_tone": box_over_background(split["diff"], tone, rest),
            "grad_click_at_x": box_over_background(at_x, clicks, rest),
            "grad_click_near_ref": box_over_background(split["first_grad"], clicks, rest),
            "grad_click_path": box_over_background(split["mean_grad"], clicks, rest),
            "grad_tone_at_x": box_over_background(at_x, tone, rest),
            "grad_tone_path": box_over_background(split["mean_grad"], tone, rest),
            "ig_click": ig_click, "ig_tone": ratio(split["ig"], boxes),
            "early_click": early,
            "dl_mult_click": box_over_background(mult, clicks, rest),
            "dl_mult_tone": box_over_background(mult, tone, rest),
            **{k: v * scale for k, v in out.items()}}))
        log(f"{size} seed {seed} {network}: {time.time() - t0:.0f} s, IG split vs package "
            f"max rel. diff {check[network]:.1e}")
    about = {"size": f"{task.n_bands} x {task.n_frames}", "seed": seed}
    return (pd.concat(rows, ignore_index=True).assign(**about),
            {**about, "ig_check_trained": check["trained"], "ig_check_random": check["random"],
             "held_out_r2": task.held_out_r2(model)})


COLUMNS = ["input_click", "input_tone", "grad_click_at_x", "grad_click_near_ref",
           "grad_click_path", "grad_tone_at_x", "grad_tone_path", "ig_click", "ig_tone",
           "early_click", "dl_mult_click", "dl_mult_tone", "f_clicks_alone",
           "f_tone_alone", "f_clicks_removed"]


def reading(pooled: pd.DataFrame) -> str:
    """Plain sentences from the pooled medians, per size (generated, so a re-run says what
    its numbers say)."""
    lines = []
    for size, g in pooled.groupby("size", sort=False):
        t = g[g["network"] == "trained"].iloc[0]
        r = g[g["network"] == "random"].iloc[0]
        said = (f"- **{size}.** |x - reference| is {t['input_click']:.1f}x the background's on "
                f"the clicks and {t['input_tone']:.1f}x on the tone. The trained model's "
                f"path-averaged gradient per bin is {t['grad_click_path']:.2f}x the "
                f"background's on the clicks and {t['grad_tone_path']:.2f}x on the tone "
                f"(at the clip itself {t['grad_click_at_x']:.2f}x and "
                f"{t['grad_tone_at_x']:.2f}x; on the clicks at the path's first point "
                f"{t['grad_click_near_ref']:.2f}x); DeepLift's multipliers "
                f"{t['dl_mult_click']:.2f}x and {t['dl_mult_tone']:.2f}x. IG's box ratios: "
                f"clicks {t['ig_click']:.2f}x, tone {t['ig_tone']:.2f}x (randomized network "
                f"{r['ig_click']:.2f}x and {r['ig_tone']:.2f}x, its gradients "
                f"{r['grad_click_path']:.2f}x and {r['grad_tone_path']:.2f}x). "
                f"{t['early_click']:.0%} of the clicks' IG accrues in the path's first half "
                f"(50 % if it accrued evenly). "
                f"The model answers the clicks alone (on the reference) by "
                f"{t['f_clicks_alone']:+.3f} target units, removing them from the clip by "
                f"{t['f_clicks_removed']:+.3f}.")
        why = []
        if t["grad_click_path"] < 1.5:
            why.append("the gradient on the clicks is no larger than the background's, so "
                       "their attribution is the input factor's")
        if t["early_click"] > 0.6:
            why.append("most of it accrues nearer the reference than the clip")
        if t["f_clicks_alone"] > 2 * abs(t["f_clicks_removed"]):
            why.append("laid on the reference without the tone (inputs it never saw), the "
                       "clicks do move the model's answer, which on the clip they do not")
        if t["grad_tone_path"] < 1.5:
            why.append("the tone's own gradient is no larger than the background's either: "
                       "IG's preference for the tone rests on the multiplier's small "
                       "difference, not on a gradient that singles the tone out")
        if why:
            said += " Reading: " + "; ".join(why) + "."
        lines.append(said)
    return "\n".join(lines)


def render(parts: pd.DataFrame, checks: pd.DataFrame, header: str) -> str:
    """The section: medians over clips per size, seed and network, and the checks."""
    med = parts.groupby(["size", "network", "seed"], sort=False)[COLUMNS].median().reset_index()
    pooled = parts.groupby(["size", "network"], sort=False)[COLUMNS].median().reset_index()
    return f"""{header}

Reading (written by the script from the medians below):

{reading(pooled)}

**Medians over clips and seeds** (ratios: the box's mean over the mean outside both boxes;
1 = no different from the background):

{_fmt(pooled)}

**Per seed** (medians over clips):

{_fmt(med)}

**Checks**: the event models' held-out R^2; the largest difference between the IG map split
here and the package's own IG map, relative to the map's largest value (the factors are those
of the map the benchmark judged).

{_fmt(checks)}
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=None, help="event models are kept (and reused) here")
    p.add_argument("--sizes", nargs="+", default=["clip"], choices=["toy", "clip"])
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--event-clips", type=int, default=30)
    p.add_argument("--event-steps", type=int, default=None,
                   help="training steps (default: the size's recipe)")
    p.add_argument("--n-steps", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke run: toy size, 1 seed, 4 clips")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--render", action="store_true",
                   help="write the section from --workdir's moving_paths.csv; compute nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds, args.event_clips, args.event_steps = ["toy"], [3], 4, 20
        args.n_steps, args.no_write = 8, True
    torch.set_num_threads(args.threads)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="moving_paths_")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    t0 = time.strftime("%Y-%m-%d %H:%M")
    start = time.time()
    parts, checks = [], []
    if args.render:
        stored = Path(args.workdir) / "moving_paths.csv"
        parts = pd.read_csv(stored)
        checks = pd.read_csv(stored.with_name("moving_paths_checks.csv"))
        header = (Path(args.workdir) / "moving_paths_header.txt").read_text()
        publish(render(parts, checks, header), SECTION, write=not args.no_write)
        return 0
    for size in args.sizes:
        for seed in args.seeds:
            rows, check = measure(size, seed, args, print)
            parts.append(rows)
            checks.append(check)
    parts, checks = pd.concat(parts, ignore_index=True), pd.DataFrame(checks)
    parts.to_csv(Path(args.workdir) / "moving_paths.csv", index=False)
    checks.to_csv(Path(args.workdir) / "moving_paths_checks.csv", index=False)
    command = "python benchmarks/event_moving_paths.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:]) if a != "--no-write")
    header = (f"`{command}` (started {t0}, {(time.time() - start) / 60:.0f} min on "
              f"{args.threads} torch thread(s)). The {args.event_clips} clips of "
              f"`event_moving.py --clip-set distractor` (strongest events among clips whose "
              f"clicks are stronger than the tone), its event models (seeds "
              f"{', '.join(map(str, args.seeds))}) and randomized networks; IG with "
              f"{args.n_steps} Gauss-Legendre points from the reference (the mean of 32 "
              f"background clips). Definitions: the module docstring.")
    (Path(args.workdir) / "moving_paths_header.txt").write_text(header)
    publish(render(parts, checks, header), SECTION, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
