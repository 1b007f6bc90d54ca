"""Metrics of a model on the clips of a split (whole clips, rating units)."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from midlevel.models.bottleneck import decode_targets, output_layout
from midlevel.training.data import Columns
from midlevel.training.metrics import is_summary, metrics_table
from midlevel.training.predict import predict_sharded

log = logging.getLogger("midlevel.training")


def split_predictions(ctx, model, specs, columns: Columns, n_frames: int, hop: int, config,
                      *, progress: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(concepts, targets)`` of ``model`` on the clips ``specs``: ``(n_clips, n_concepts)``
    in rating units (binary: probabilities; ``(n_clips, 0)`` for a black box) and
    ``(n_clips, n_target_columns)`` decoded (ratings, probabilities, class codes);
    ``progress``: a progress bar's label (None: none)."""
    concepts, outputs = predict_sharded(ctx, model, specs, n_frames, hop, config,
                                        progress=progress)
    return concepts, decode_targets(outputs, output_layout(columns.targets))


def rating_units(model, columns: Columns) -> dict[str, float]:
    """Each rating column's unit size as ``model`` scales it (its training split's sd)."""
    units = dict(zip(columns.concepts, model.concept_std.detach().cpu().double().numpy()))
    t_std = model.target_std.detach().cpu().double().numpy()
    for (j, kind, s), t in zip(output_layout(columns.targets), columns.targets):
        if kind == "regression":
            units[t["name"]] = float(t_std[s][0])
    return units


def split_metrics(rows: pd.DataFrame, columns: Columns, split: str, concepts: np.ndarray,
                  targets: np.ndarray, *, threshold: float = 0.5,
                  units: dict[str, float] | None = None) -> pd.DataFrame:
    """The metrics table of predictions ``concepts``, ``targets`` (as
    :func:`split_predictions` returns them) against the annotations ``rows`` (``units``: see
    :func:`~midlevel.training.metrics.metrics_table`)."""
    groups = columns.groups()
    tables = []
    if concepts.shape[1]:
        tables.append(metrics_table(split, "concept", columns.concepts,
                                    rows[columns.concepts].to_numpy(np.float64), concepts,
                                    kinds=columns.concept_kinds, groups=groups,
                                    threshold=threshold, units=units))
    if columns.targets:
        tables.append(metrics_table(split, "target", columns.target_names,
                                    rows[columns.target_names].to_numpy(np.float64), targets,
                                    kinds=[kind for _, kind, _ in output_layout(columns.targets)],
                                    groups=groups, threshold=threshold, units=units))
    return pd.concat(tables, ignore_index=True)


def evaluate_split(ctx, model, rows: pd.DataFrame, specs, columns: Columns, split: str,
                   n_frames: int, hop: int, config, *, threshold: float = 0.5,
                   progress: bool = False) -> pd.DataFrame:
    """Metrics of ``model`` on the clips ``rows`` (annotations rows) in rating units (binary
    columns: probabilities; ``threshold`` of their F1 and accuracy; ``progress``: a bar over
    the clips)."""
    concepts, targets = split_predictions(ctx, model, specs, columns, n_frames, hop, config,
                                          progress=f"metrics ({split})" if progress else None)
    return split_metrics(rows, columns, split, concepts, targets, threshold=threshold,
                         units=rating_units(model, columns))


def say_unrated(table: pd.DataFrame, where: str) -> None:
    """Warn, naming them, about the columns of a split's metrics ``table`` without a rating
    on its clips (``n`` 0: their rows are empty); ``where`` names the split."""
    scored = table[~is_summary(table["name"])]
    unrated = scored.loc[scored["n"].fillna(0) == 0, "name"].astype(str).tolist()
    if unrated:
        log.warning("%s has no rating of %d of the %d columns (%s): their rows are empty",
                    where, len(unrated), len(scored), ", ".join(unrated))
