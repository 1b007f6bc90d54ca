"""How the sanity check's margin and interval move with the number K of random networks, on the
toy planted-event model (midlevel.testing.events.EventTask at its default size).

One event model per ``--model-seeds`` (``train_model(seed=...)``, default settings), its 30
strongest-event clips (``event_clips``), Integrated Gradients (32 steps, reference = the
background's mean). :func:`sanity_check` runs once with ``--n-networks`` full randomizations
(seeds 1 .. N); every disjoint block of K consecutive seeds (K = ``--ks``) is then judged on its
own (``SanityResult.with_networks``: the same maps as a check with those seeds alone), so each K
is seen over N / K disjoint seed sets; ``margin_all`` is the margin over all N networks and
``covers_all`` whether a set's interval holds it. Prints a table (and writes ``--out`` as CSV):

    python benchmarks/sanity_networks_toy.py --out /tmp/sanity18/toy.csv
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from posthoc_faithfulness import event_clips  # noqa: E402

from midlevel.explain.attribution.base import OutputSelector  # noqa: E402
from midlevel.explain.attribution.registry import make_method  # noqa: E402
from midlevel.explain.sanity import sanity_check  # noqa: E402
from midlevel.testing.events import EventTask  # noqa: E402


def measure(model_seed: int, n_networks: int, ks, method: str = "integrated_gradients",
            n_clips: int = 30, log=print) -> pd.DataFrame:
    task = EventTask()
    model = task.train_model(seed=model_seed)
    x, bg = event_clips(task, n_clips)
    f = OutputSelector(model).eval()
    impl = make_method(method, n_steps=32)
    t0 = time.time()
    res = sanity_check(f, impl, x, bg.mean(0, keepdim=True), name=method, background=bg,
                       seeds=tuple(range(1, n_networks + 1)), cascade=False)
    log(f"model seed {model_seed}: {n_networks} networks in {time.time() - t0:.0f} s")
    everything = res.verdict.set_index("similarity").loc["spearman_abs"]
    reference = everything["trained_vs_random"] - everything["random_vs_random"]
    rows = []
    for k in ks:
        for start in range(0, n_networks - k + 1, k):
            seeds = list(range(start + 1, start + k + 1))
            v = res.with_networks(seeds).verdict.set_index("similarity").loc["spearman_abs"]
            rows.append({"model_seed": model_seed, "K": k,
                         "seeds": f"{seeds[0]}-{seeds[-1]}",
                         "margin": v["trained_vs_random"] - v["random_vs_random"],
                         "ci_low": v["minus_random_ci_low"], "ci_high": v["minus_random_ci_high"],
                         "width": v["minus_random_ci_high"] - v["minus_random_ci_low"],
                         "pair_min": v["minus_random_pair_min"],
                         "pair_max": v["minus_random_pair_max"],
                         "minus_input_ci_high": v["minus_input_ci_high"],
                         "passed": v["passed"], "margin_all": reference,
                         "covers_all": v["minus_random_ci_low"] <= reference
                         <= v["minus_random_ci_high"]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--n-networks", type=int, default=24)
    p.add_argument("--ks", type=int, nargs="+", default=[2, 4, 6, 8])
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    table = pd.concat([measure(s, args.n_networks, args.ks) for s in args.model_seeds],
                      ignore_index=True)
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    summary = table.groupby(["model_seed", "K"]).agg(
        sets=("margin", "size"), margin_min=("margin", "min"), margin_max=("margin", "max"),
        ci_high_min=("ci_high", "min"), ci_high_max=("ci_high", "max"),
        width_mean=("width", "mean"), passes=("passed", "sum"),
        covers_all=("covers_all", "mean"), margin_all=("margin_all", "first"))
    print(summary.round(4).to_string())
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
