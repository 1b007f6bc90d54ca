"""Metrics of a model on the clips of a split (whole clips, rating units)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from midlevel.models.bottleneck import decode_targets, output_layout
from midlevel.training.data import Columns
from midlevel.training.metrics import metrics_table
from midlevel.training.predict import predict_sharded


def evaluate_split(ctx, model, rows: pd.DataFrame, specs, columns: Columns, split: str,
                   n_frames: int, hop: int, config, *, threshold: float = 0.5) -> pd.DataFrame:
    """Metrics of ``model`` on the clips ``rows`` (annotations rows) in rating units (binary
    columns: probabilities; ``threshold`` of their F1 and accuracy)."""
    concepts, outputs = predict_sharded(ctx, model, specs, n_frames, hop, config)
    layout = output_layout(columns.targets)
    groups = columns.groups()
    tables = []
    if model.concept_names:
        tables.append(metrics_table(split, "concept", columns.concepts,
                                    rows[columns.concepts].to_numpy(np.float64), concepts,
                                    kinds=columns.concept_kinds, groups=groups,
                                    threshold=threshold))
    if columns.targets:
        tables.append(metrics_table(split, "target", columns.target_names,
                                    rows[columns.target_names].to_numpy(np.float64),
                                    decode_targets(outputs, layout),
                                    kinds=[kind for _, kind, _ in layout], groups=groups,
                                    threshold=threshold))
    return pd.concat(tables, ignore_index=True)
