"""What :func:`midlevel.workflows.compare.compare` checks about its explanation options before
anything is computed: the one output every model explains (:func:`explained_target`), the
target and concept of every model and the methods' settings (:func:`check_explained`), and
the options given that nothing compared uses (:func:`ignored_options`)."""
from __future__ import annotations

import numpy as np

from midlevel.errors import AttributionError, ReportError
from midlevel.explain.attribution.attributor import Attributor
from midlevel.explain.attribution.base import resolve_output
from midlevel.explain.attribution.registry import make_method

__all__ = ["explained_target", "check_explained", "ignored_options", "DEFAULT_PATCH",
           "sanity_clip_notes"]

DEFAULT_PATCH = (8, 16)
"""The deletion / insertion patch (bands, frames) compare uses unless told otherwise."""

# the methods' settings, with the command-line option that sets each
METHOD_OPTIONS = {"window": "--window", "stride": "--stride", "n_steps": "--n-steps",
                  "n_samples": "--n-samples"}


def explained_target(reps: dict, target: str | None = None) -> str:
    """The one output every model explains, so the cost, faithfulness and listen-back tables
    put the same quantity side by side.

    ``target`` given: it must be an output of every model (ReportError naming the run and its
    outputs otherwise). None: the first output, in the first model's order, that every model
    has; ReportError listing each run's outputs when no output is shared (a black box on ``valence`` beside a bottleneck on ``quadrant=angry`` would
    compare rating points with logits)."""
    if target is not None:
        for label, run in reps.items():
            try:
                resolve_output(run.model, target)
            except AttributionError as exc:
                raise ReportError(f"target (--target) '{target}' of {label} run {run.path}: "
                                  f"{exc}") from None
        return target
    outputs = {label: list(run.model.output_names) for label, run in reps.items()}
    first = next(iter(outputs.values()))
    shared = [name for name in first if all(name in names for names in outputs.values())]
    if not shared:
        listed = "; ".join(f"{label} run {reps[label].path}: {', '.join(names)}"
                           for label, names in outputs.items())
        raise ReportError(f"the runs compared share no output to explain ({listed}); "
                          f"compare runs trained on a target in common (--target chooses "
                          f"among shared ones)")
    return shared[0]


def check_explained(reps: dict, methods, *, target=None, concept=None, options=None) -> None:
    """Before anything is computed: ``target`` (:func:`explained_target` of it) is an output of
    every model explained, ``concept`` a concept of every bottleneck among them, and the
    methods accept ``options`` (n_steps, n_samples, window, stride...); ReportError or
    AttributionError naming the option, the run and what exists."""
    target = explained_target(reps, target)
    for run in reps.values():
        for method in methods:  # builds no explainer: only the settings are checked
            Attributor(run.model, method, output=target, windows=run.window(),
                       **(options or {}))
    if concept is None:
        return
    bottlenecks = {label: run for label, run in reps.items() if run.is_bottleneck}
    if not bottlenecks:
        raise ReportError(f"concept (--concept) '{concept}' given, but no run compared is a "
                          f"bottleneck (they are {list(reps)}): there is no concept to explain")
    for label, run in bottlenecks.items():
        if concept not in run.concept_names:
            raise ReportError(f"concept (--concept) '{concept}' is not a concept of {label} run "
                              f"{run.path}; its concepts are {run.concept_names}")


def ignored_options(methods, options: dict, *, faithfulness: bool,
                    deletion_patch) -> list[str]:
    """Notes naming each option given that nothing compared uses: a method setting
    (``options``: window, stride, n_steps, n_samples, present only where given) that no
    method in ``methods`` takes, and a ``deletion_patch`` other than the default without
    faithfulness (no deletion curves are drawn). An ignored option would look as if it had
    acted."""
    notes = []
    for key, flag in METHOD_OPTIONS.items():
        if key in (options or {}) and not any(_uses(m, key, options[key]) for m in methods):
            notes.append(f"{flag} ({key}) is ignored: no method compared ({', '.join(methods)}) "
                         f"uses it")
    if not faithfulness and deletion_patch is not None \
            and tuple(deletion_patch) != DEFAULT_PATCH:
        notes.append(f"--deletion-patch (deletion_patch) {' '.join(map(str, deletion_patch))} "
                     f"is ignored: faithfulness is off (--no-faithfulness), so no deletion "
                     f"or insertion curves are drawn")
    return notes


def _uses(method: str, key: str, value) -> bool:
    """Whether ``method`` takes the setting ``key = value``: built with it, it holds that
    value (a method without the setting does not have it; the registered LIME variants take
    ``n_samples`` and drop it, their count is ``lime_samples``)."""
    held = getattr(make_method(method, **{key: value}), key, None)
    return held is not None and np.array_equal(np.ravel(held), np.ravel(value))


def sanity_clip_notes(sanity_clips: int, n_explained: int) -> list[str]:
    """A note when the sanity check is asked for more clips than are explained (it runs on
    the first ``sanity_clips`` of them)."""
    if sanity_clips <= n_explained:
        return []
    return [f"sanity_clips (--sanity-clips) {sanity_clips}: the sanity check runs on the "
            f"{n_explained} clips explained; raise --clips (n_clips) for more"]
