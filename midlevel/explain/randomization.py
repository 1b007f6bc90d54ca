"""Layer randomization for the sanity check (:mod:`midlevel.explain.sanity`): the stages a
model runs, top layer first, and re-initializing one stage of a copy, BatchNorm statistics
re-estimated through the randomized network (the rules are in the sanity module's
docstring, "Cascading randomization")."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from midlevel.errors import AttributionError
from midlevel.explain.harness import as_inputs
from midlevel.models.backbone import Standardize

__all__ = ["cascade_stages", "randomize_stage"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)



def cascade_stages(f: nn.Module, x) -> list[tuple[str, list[str]]]:
    """Stages of the cascade, **top layer first**: ``(stage name, [module names])``.

    The parameterized leaf modules with a ``reset_parameters`` (conv, linear, BatchNorm...) that
    a forward pass of ``f`` on ``x`` calls, in call order; a BatchNorm called right after a
    conv/linear layer joins its stage.
    """
    x = as_inputs(x)[:1]
    names = {m: n for n, m in f.named_modules()}
    called = []

    def hook(module, inputs, output):
        called.append(names[module])

    handles = [m.register_forward_hook(hook) for m in f.modules()
               if next(m.children(), None) is None]
    try:
        with torch.no_grad():
            f.eval()
            p = next(f.parameters(), None)
            f(x.to(p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
    modules = dict(f.named_modules())
    stages: list[list[str]] = []
    prev = None
    for n in called:
        m = modules[n]
        if isinstance(m, Standardize):
            prev = m
            continue
        # a layer with its own parameters and an initialization (not, e.g., a ReLU on which
        # SHAP's DeepExplainer has left ``x`` / ``y`` Parameters behind)
        learnable = isinstance(m, _BN) or (hasattr(m, "reset_parameters")
                                           and any(True for _ in m.parameters(recurse=False)))
        if learnable:
            if isinstance(m, _BN) and isinstance(prev, (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                                                        nn.Linear)) and stages:
                stages[-1].append(n)
            elif not any(n in s for s in stages):
                stages.append([n])
        prev = m
    return [("+".join(s), s) for s in stages[::-1]]


def _reinit(module: nn.Module) -> None:
    with torch.no_grad():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, _BN):
            module.reset_parameters()  # weight 1, bias 0, running mean 0, var 1
        elif hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            raise AttributionError(f"do not know how to re-initialize {type(module).__name__}")


@torch.no_grad()
def _reestimate(f: nn.Module, bns: list[nn.Module], data: torch.Tensor) -> None:
    """Running statistics of ``bns`` (in forward order) from ``data``, one layer at a time, with
    everything else in eval mode, so each layer's statistics are those of the inputs it sees
    at explanation time (one pass with all of them in training mode would normalize the lower
    layers with batch statistics and leave the upper ones slightly off)."""
    if not bns:
        return
    p = next(f.parameters(), None)
    data = data.to(p.device if p is not None else "cpu")
    f.eval()
    for bn in bns:
        momentum = bn.momentum
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
        bn.train()
        f(data)
        bn.momentum = momentum
        bn.eval()


def randomize_stage(f: nn.Module, names: list[str], *, seed: int, data: torch.Tensor | None,
                    randomized: list[str], running_stats: str = "reestimate") -> None:
    """Re-initialize the modules ``names`` of ``f`` in place (seeded), then re-estimate the
    running statistics of every randomized BatchNorm (``randomized`` holds the names of those
    randomized before, and is extended)."""
    modules = dict(f.named_modules())
    with torch.random.fork_rng(devices=[]):
        for k, n in enumerate(names):
            torch.manual_seed(int(np.random.SeedSequence([seed, len(randomized) + k])
                                  .generate_state(1)[0]))
            _reinit(modules[n])
    randomized.extend(names)
    if running_stats == "reestimate" and data is not None:
        # ``randomized`` runs top-down: reversed, it is the forward order
        _reestimate(f, [modules[n] for n in reversed(randomized) if isinstance(modules[n], _BN)],
                    data)
    elif running_stats not in ("reestimate", "reset"):
        raise AttributionError(f"running_stats must be 'reestimate' or 'reset', got "
                               f"'{running_stats}'")
