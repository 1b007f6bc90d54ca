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
of Captum's ``IntegratedGradients``; checked against the package's own maps). Per clip:

- ``input_click`` / ``input_tone``: mean ``|x - reference|`` over the clicks' (tone's) box
  over its mean over the bins outside both boxes;
- ``ig_click`` / ``ig_tone``: IG's box ratio as the benchmark reads it (the box's share of
  positive attribution over its area share); ``ig_abs_*`` the same for ``|IG|``;
- ``net_click`` / ``net_tone``: ``sum(IG) / sum(|IG|)`` over the box (+1: all positive;
  0: positive and negative cancel);
- ``sign_click`` / ``sign_tone``: the share of the box's bins where the sign of the
  path-averaged gradient follows the box's stripes (positive on the lit bands or frames,
  negative on the dark ones; 0.5 is chance): whether the model's gradient reads the
  pattern;
- ``grad_click_at_x``, ``grad_tone_at_x``: mean ``|gradient|`` at the clip itself on the box
  over the background's; ``grad_click_q1`` .. ``q4`` (and ``grad_tone_*``): the same for the
  mean ``|gradient|`` over each quarter of the path from the reference (q1 nearest it);
- ``early_click``: of the clicks' positive IG (over their bins whose IG is positive), the
  share that the path's first half (``alpha < 0.5``) gives; 0.5 if it accrued evenly;
- ``dl_mult_click`` / ``dl_mult_tone``: DeepLift's multiplier (its map over ``x -
  reference``) on the box over the bins outside both boxes, in magnitude; ``dl_click`` /
  ``dl_tone``: DeepLift's box ratio as ``ig_*``;
- ``f_clicks_alone``: the model's answer to the reference plus the clicks alone, minus its
  answer at the reference; ``f_clicks_removed``: its answer on the clip minus the answer with
  the clicks' box at the reference; ``f_tone_alone`` likewise (target units).

The reading names a cause only where the numbers single it out: IG level in magnitude on
both boxes but of consistent sign on the tone only (the model's gradient reads the stripes);
a gradient on the clicks no larger than 1.1x the background's anywhere on the path (their
attribution is the input factor's) or larger somewhere (the path); most of it accrued early.

``--trainings plain path`` adds, per seed, an event model trained with half of each batch
on points of IG's straight path from the clips' mean and the targets the task gives them
(:meth:`EventTask.train_model` ``path``): if IG's attribution to the clicks comes from the
plain model's answers off the clips' distribution along the path, it goes on a model that
is right there, and IG then beats its randomized network; if it comes from the input factor
alone, it stays.

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
    PATH_SHARE, RANDOM_SEED_OFFSET, distractor_ratios, moving_clips, randomized, task_for,
    trained_model,
)
from ground_truth_recovery import _fmt, publish  # noqa: E402

from midlevel.explain.attribution.attributor import Attributor  # noqa: E402
from midlevel.explain.attribution.base import OutputSelector  # noqa: E402
from midlevel.explain.faithfulness import box_share  # noqa: E402
from midlevel.testing.events import stripes  # noqa: E402

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


#: the path from the reference cut in quarters (alpha in [0, 0.25), ..., [0.75, 1])
QUARTERS = (0.25, 0.5, 0.75)


def path_split(f, x: torch.Tensor, ref: torch.Tensor, n_steps: int) -> dict:
    """IG along the straight path from ``ref`` with Captum's Gauss-Legendre rule.

    Returns ``(n, bands, frames)`` arrays: ``ig`` the map, ``mean_grad`` the path-averaged
    gradient (IG's multiplier), ``early`` the part of the map the path's first half
    (alpha < 0.5) gives (a node at 0.5 exactly, with an odd ``n_steps``, gives half its
    weight to each half; the full path's nodes, so the split is exact for a gradient constant
    along the path and a quadrature otherwise), ``diff`` ``x - ref``; and ``quarter_abs_grad``: per quarter of the
    path (:data:`QUARTERS`), the weighted mean of ``|gradient|`` over its nodes."""
    weights, alphas = (np.asarray(v(n_steps)) for v in approximation_parameters("gausslegendre"))
    diff = (x - ref)[:, 0].numpy()
    mean_grad = np.zeros_like(diff)
    early = np.zeros_like(diff)
    quarters = [np.zeros_like(diff) for _ in range(len(QUARTERS) + 1)]
    quarter_weight = np.zeros(len(QUARTERS) + 1)
    for w, a in zip(weights, alphas):
        g = gradients(f, ref + float(a) * (x - ref))
        mean_grad += w * g
        early += w * g * (1.0 if a < 0.5 else 0.5 if a == 0.5 else 0.0)
        q = int(np.searchsorted(QUARTERS, a, side="right"))
        quarters[q] += w * np.abs(g)
        quarter_weight[q] += w
    return {"ig": diff * mean_grad, "mean_grad": mean_grad, "early": diff * early,
            "diff": diff, "quarter_abs_grad": [qa / max(qw, 1e-12) for qa, qw
                                               in zip(quarters, quarter_weight)]}


def early_share(split: dict, box: np.ndarray) -> np.ndarray:
    """Per clip: of the positive IG on ``box``'s bins, the share the path's first half gives
    (over the bins whose IG is positive, so that a box whose signed IG cancels still has a
    share; 0.5 if every bin accrued evenly; NaN without positive IG there). It can leave
    [0, 1] where a bin's two halves have opposite signs."""
    positive = box & (split["ig"] > 0)
    total = (split["ig"] * positive).sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (split["early"] * positive).sum((1, 2)) / total, np.nan)


def net_share(ig: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Per clip: ``sum(IG) / sum(|IG|)`` over ``box``: +1 all positive, 0 cancelling."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (ig * box).sum((1, 2)) / (np.abs(ig) * box).sum((1, 2))


def stripe_sign(grad: np.ndarray, boxes, across: str) -> np.ndarray:
    """Per clip: the share of a box's bins where the sign of ``grad`` follows the box's
    stripes (:func:`midlevel.testing.events.stripes`: positive on the lit bands or frames,
    negative on the dark ones); 0.5 is chance, NaN without a box."""
    out = np.full(len(grad), np.nan)
    for i, b in enumerate(boxes):
        if b is None:
            continue
        g = grad[i, b[0]:b[1], b[2]:b[3]]
        lit = stripes(b[1] - b[0], b[3] - b[2], across=across) > 0
        out[i] = float(np.mean(np.where(lit, g > 0, g < 0)))
    return out


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


def measure(size: str, seed: int, training: str, args, log) -> tuple[pd.DataFrame, dict]:
    """Per clip and network (trained, randomized): the factors of the module docstring, for
    the event model of ``seed`` trained on clips only (``training="plain"``, event_moving's)
    or with points of IG's path (``"path"``)."""
    task, n_train, steps, _ = task_for(size)
    steps = args.event_steps or steps
    x, boxes, distractors, _, bg = moving_clips(task, args.event_clips, "distractor")
    work = Path(args.workdir)
    model = trained_model(task, n_train, steps, seed, work, training)
    r2, same = task.held_out_r2(model), "not compared (no checks part in the workdir)"
    stored = work / f"checks_moving_{size}_{seed}_distractor.csv"
    if training != "plain":
        same = ("a model of its own (trained with path points)" if training == "path" else
                "a model of its own (clips only, twice the clips and steps)")
    elif stored.is_file():  # event_moving's model of this seed: the maps it judged
        kept = float(pd.read_csv(stored)["held_out_r2"].iloc[0])
        if abs(r2 - kept) > 1e-9:
            raise SystemExit(f"{stored}: event_moving's model of seed {seed} had held-out R^2 "
                             f"{kept!r}, this one {r2!r}: not the same model (train it with "
                             f"the torch threads of that run, or use its workdir)")
        same = "same (held-out R^2 equal)"
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
        ig = split["ig"]
        quarters = {f"grad_{name}_q{q + 1}": box_over_background(g, box, rest)
                    for name, box in (("click", clicks), ("tone", tone))
                    for q, g in enumerate(split["quarter_abs_grad"])}
        rows.append(pd.DataFrame({
            "network": network, "clip": np.arange(len(x)),
            "input_click": box_over_background(split["diff"], clicks, rest),
            "input_tone": box_over_background(split["diff"], tone, rest),
            "ig_click": distractor_ratios(ig, distractors),
            "ig_tone": box_share(ig, list(boxes))["ratio"].to_numpy(),
            "ig_abs_click": distractor_ratios(ig, distractors, positive=False),
            "ig_abs_tone": box_share(ig, list(boxes), positive=False)["ratio"].to_numpy(),
            "net_click": net_share(ig, clicks), "net_tone": net_share(ig, tone),
            "sign_click": stripe_sign(split["mean_grad"], distractors, "frames"),
            "sign_tone": stripe_sign(split["mean_grad"], boxes, "bands"),
            "grad_click_at_x": box_over_background(at_x, clicks, rest),
            "grad_tone_at_x": box_over_background(at_x, tone, rest),
            **quarters,
            "early_click": early_share(split, clicks),
            "dl_mult_click": box_over_background(mult, clicks, rest),
            "dl_mult_tone": box_over_background(mult, tone, rest),
            "dl_click": distractor_ratios(dl, distractors), "dl_tone": box_share(dl, list(boxes))["ratio"].to_numpy(),
            **{k: v * scale for k, v in answers(f, x, ref, tone, clicks).items()}}))
        log(f"{size} seed {seed} {training} {network}: {time.time() - t0:.0f} s, IG split vs package "
            f"max rel. diff {check[network]:.1e}")
    about = {"size": f"{task.n_bands} x {task.n_frames}", "seed": seed, "training": training}
    return (pd.concat(rows, ignore_index=True).assign(**about),
            {**about, "ig_check_trained": check["trained"], "ig_check_random": check["random"],
             "held_out_r2": r2, "event_moving_model": same})


COLUMNS = (["input_click", "input_tone", "ig_click", "ig_tone", "ig_abs_click", "ig_abs_tone",
            "net_click", "net_tone", "sign_click", "sign_tone", "grad_click_at_x",
            "grad_tone_at_x"]
           + [f"grad_{b}_q{q}" for b in ("click", "tone") for q in range(1, 5)]
           + ["early_click", "dl_mult_click", "dl_mult_tone", "dl_click", "dl_tone",
              "f_clicks_alone",
              "f_tone_alone", "f_clicks_removed"])


def _quarters(row, name: str) -> str:
    return ", ".join(f"{row[f'grad_{name}_q{q}']:.2f}" for q in range(1, 5))


def reading(pooled: pd.DataFrame) -> str:
    """Plain sentences from the pooled medians, per size (generated, so a re-run says what
    its numbers say); a cause is named only where the numbers single it out."""
    lines = []
    for (training, size), g in pooled.groupby(["training", "size"], sort=False):
        t = g[g["network"] == "trained"].iloc[0]
        r = g[g["network"] == "random"].iloc[0]
        click_peak = max(t[f"grad_click_q{q}"] for q in range(1, 5))
        said = (
            f"- **{size}, {training} model.** |x - reference| is {t['input_click']:.1f}x the background's on the "
            f"clicks and {t['input_tone']:.1f}x on the tone. IG's share over area share, in "
            f"magnitude (|IG|): clicks {t['ig_abs_click']:.2f}x, tone {t['ig_abs_tone']:.2f}x; "
            f"of positive IG (the benchmark's ratio): {t['ig_click']:.2f}x and "
            f"{t['ig_tone']:.2f}x (randomized network {r['ig_click']:.2f}x and "
            f"{r['ig_tone']:.2f}x; the trained tone ratio beats the randomized one on "
            f"{t['ig_beats_random']:.0%} of clips). IG's net share (sum over sum of |IG|) is "
            f"{t['net_tone']:+.2f} on the tone and {t['net_click']:+.2f} on the clicks; the "
            f"sign of the path-averaged gradient follows the tone's stripes on "
            f"{t['sign_tone']:.0%} of its bins and the clicks' on {t['sign_click']:.0%} of "
            f"theirs (50 % is chance). |gradient| per bin over the background's, by quarter "
            f"of the path from the reference: clicks {_quarters(t, 'click')}, tone "
            f"{_quarters(t, 'tone')} (randomized network: clicks {_quarters(r, 'click')}). "
            f"Of the clicks' positive IG, {t['early_click']:.0%} accrues in the path's first "
            f"half (50 % if it accrued evenly). The clicks laid on the reference move the "
            f"answer by {t['f_clicks_alone']:+.3f} target units; removed from the clip, by "
            f"{t['f_clicks_removed']:+.3f}.")
        why = []
        level = 0.8 <= t["ig_abs_click"] / t["ig_abs_tone"] <= 1.25
        if level and t["net_tone"] - t["net_click"] > 0.3:
            why.append("in magnitude IG gives the clicks about what it gives the tone (|x - "
                       "reference| is alike on both); it prefers the tone by its sign, "
                       "consistent on the tone and mixed on the clicks")
        if t["sign_tone"] >= 0.6 and abs(t["sign_click"] - 0.5) < 0.1:
            why.append("the gradient's sign follows the tone's stripes and not the clicks' "
                       "(the model reads the tone's pattern)")
        if click_peak <= 1.1:
            why.append("nowhere along the path does the gradient single out the clicks: "
                       "their attribution is |x - reference| times a gradient no larger than "
                       "the background's")
        else:
            peak = max(range(1, 5), key=lambda q: t[f"grad_click_q{q}"])
            why.append(f"the gradient does single out the clicks on part of the path (up to "
                       f"{click_peak:.2f}x the background's, in quarter {peak})")
        if t["early_click"] > 0.6:
            why.append("most of the clicks' positive IG accrues nearer the reference than "
                       "the clip")
        if t["f_clicks_alone"] > 2 * abs(t["f_clicks_removed"]):
            why.append("laid on the reference without the tone (inputs it never saw), the "
                       "clicks move the model's answer more than twice as much as removing "
                       "them from the clip does")
        lines.append(said + " Reading: " + "; ".join(why) + ".")
    for size, g in pooled[pooled["network"] == "trained"].groupby("size", sort=False):
        by = g.set_index("training")
        for other, what in (("long", "clips only, twice the clips and steps"),
                            ("path", "half of each batch on points of IG's path")):
            if {"plain", other} <= set(by.index):
                a, b = by.loc["plain"], by.loc[other]
                lines.append(
                    f"- **{size}, plain against {other}-trained.** ({what}) IG's tone ratio "
                    f"{b['ig_tone']:.2f}x (from {a['ig_tone']:.2f}x), the clicks' "
                    f"{b['ig_click']:.2f}x (from {a['ig_click']:.2f}x); the trained map beats "
                    f"the randomized network's on {b['ig_beats_random']:.0%} of clips (from "
                    f"{a['ig_beats_random']:.0%}){_deeplift(a, b)}; the clicks laid on the "
                    f"reference move the "
                    f"answer {b['f_clicks_alone']:+.3f} (from {a['f_clicks_alone']:+.3f}).")
    return "\n".join(lines)


def _deeplift(a, b) -> str:
    """DeepLift's tone ratio and wins over its randomized network, plain (``a``) against the
    other training (``b``), for the contrast sentence; empty for parts without them."""
    if "dl_beats_random" not in b or pd.isna(b["dl_beats_random"]):
        return ""
    return (f" (DeepLift: tone {b['dl_tone']:.2f}x from {a['dl_tone']:.2f}x, beating its "
            f"randomized network on {b['dl_beats_random']:.0%} of clips from "
            f"{a['dl_beats_random']:.0%})")


def beats_random(parts: pd.DataFrame) -> pd.DataFrame:
    """Per training, size, seed and clip: whether IG's (DeepLift's) tone ratio on the trained
    model exceeds the randomized network's on the same clip (``ig_beats_random``,
    ``dl_beats_random``; the moving benchmark's ``beats_random_network``)."""
    keys = ["training", "size", "seed", "clip"]
    out = None
    for method in ("ig", "dl"):
        if f"{method}_tone" not in parts:  # parts written before DeepLift's ratios
            continue
        wide = parts.pivot_table(index=keys, columns="network", values=f"{method}_tone",
                                 dropna=False).reset_index()  # NaN on both sides counts
        wide = wide[keys].assign(**{f"{method}_beats_random": wide["trained"].fillna(0)
                                    > wide["random"].fillna(0)})
        out = wide if out is None else out.merge(wide, on=keys)
    return out


def _fit_note(checks: pd.DataFrame) -> str:
    """Where both trainings ran: their held-out R^2 per size, a confound the comparison of
    the two does not separate from the path."""
    if "training" not in checks or not {"plain", "path"} <= set(checks["training"]):
        return ""
    said, better = [], []
    for size, g in checks.groupby("size", sort=False):
        r2 = g.groupby("training")["held_out_r2"]
        lo, hi, mid = r2.min(), r2.max(), r2.median()
        said.append(", ".join(f"{name} {lo[name]:.2f}-{hi[name]:.2f}" for name in
                              ("plain", "path", "long") if name in lo.index) + f" ({size})")
        if "path" in mid.index and "plain" in mid.index and mid["path"] > mid["plain"]:
            better.append(size)
    return ("\n\nHeld-out R^2 on clean clips (" + "; ".join(said) + "). "
            + (f"At {' and '.join(better)} the path-trained models also fit the clips better "
               f"(median), which the comparison with the plain models alone does not "
               f"separate from being right along the path (the long-trained models, where "
               f"run, are the control)." if better else "The path-trained models fit the clips no better "
               "(median)."))


def render(parts: pd.DataFrame, checks: pd.DataFrame, header: str) -> str:
    """The section: medians over clips per size, seed and network, and the checks."""
    if "training" not in parts:  # parts written before models were trained with path points
        parts = parts.assign(training="plain")
    keys = ["training", "size", "network"]
    med = parts.groupby(keys + ["seed"], sort=False)[COLUMNS].median().reset_index()
    pooled = parts.groupby(keys, sort=False)[COLUMNS].median().reset_index()
    wins = beats_random(parts)
    pooled = pooled.merge(wins.groupby(["training", "size"], sort=False)[
        [c for c in wins if c.endswith("_beats_random")]].mean().reset_index().assign(
        network="trained"), how="left", on=["training", "size", "network"])
    return f"""{header}

Reading (written by the script from the medians below):

{reading(pooled)}{_fit_note(checks)}

**Medians over clips and seeds** (`input_*`, `grad_*`, `dl_mult_*`: the box's mean of |.| over
the mean outside both boxes, 1 = no different from the background; `ig_*`: the box's share of
positive IG (`ig_abs_*`: of |IG|) over its area share; `net_*`: sum of IG over sum of |IG|
on the box; `sign_*`: share of the box's bins where the path-averaged gradient's sign follows
its stripes; `early_click`: share of the clicks' positive IG from the path's first half;
`f_*`: target units; definitions in the module docstring):

{_fmt(pooled)}

**Per seed** (medians over clips):

{_fmt(med)}

**Checks**: the event models' held-out R^2 (and whether each is the model `event_moving.py`
judged, by that R^2 in its workdir); the largest difference between the IG map split
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
    p.add_argument("--trainings", nargs="+", default=["plain"],
                   choices=["plain", "path", "long"],
                   help="plain: event_moving's models (clips only); path: models trained with "
                        f"{PATH_SHARE:.0%} of each batch on points of IG's path; long: clips "
                        "only, twice the clips and steps (the control for a better fit)")
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
    for training in args.trainings:
        for size in args.sizes:
            for seed in args.seeds:
                rows, check = measure(size, seed, training, args, print)
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
