"""Train / validation / test assignment from a spec's ``splits`` section.

The test split is drawn first, then validation, then the optional calibration split, each from
what is left; everything else trains.
Fixed ids come from a list or a file; random draws use the spec's seed and may keep groups
(for example artists) disjoint across splits.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from midlevel.data.spec import DRAWN_SPLITS
from midlevel.errors import Problem

if TYPE_CHECKING:
    from midlevel.data.spec import DataSpec, SplitSpec


def _fixed_ids(spec: "DataSpec", name: str, s: "SplitSpec", problems: list[Problem]) -> list[str]:
    if s.ids is not None:
        return list(s.ids)
    file = spec.root / s.ids_file
    if not file.is_file():
        problems.append(Problem(f"ids_file of split '{name}' not found", file=str(file)))
        return []
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


def _draw(pool: pd.Index, s: "SplitSpec", groups: pd.Series | None,
          rng: np.random.Generator, n_total: int) -> list[str]:
    """Draw ``fraction`` (of all clips) or ``size`` clips from ``pool``."""
    want = s.size if s.size is not None else int(round(s.fraction * n_total))
    if groups is None:
        order = rng.permutation(len(pool))
        return [pool[i] for i in order[:want]]
    members = groups.loc[pool].groupby(groups.loc[pool]).groups
    names = sorted(members)
    if s.singleton_groups:
        names = [g for g in names if len(members[g]) == 1]
    chosen: list[str] = []
    for i in rng.permutation(len(names)):
        if len(chosen) >= want:
            break
        chosen.extend(str(c) for c in members[names[i]])
    return chosen


def assign_splits(spec: "DataSpec", clips: pd.Index, groups: dict[str, pd.Series],
                  problems: list[Problem]) -> pd.Series:
    """Return the split name of each clip (``"train"``, ``"validation"``, ``"calibration"``
    or ``"test"``).

    Parameters
    ----------
    clips : the clip ids.
    groups : ``group_by`` column name -> group label per clip.
    problems : fixed ids that are not clips are appended here.
    """
    split = pd.Series("train", index=clips, dtype=object)
    rng = np.random.default_rng(spec.split_seed)
    known = set(clips)
    for name in DRAWN_SPLITS:
        s = spec.splits.get(name)
        if s is None:
            continue
        if s.ids is not None or s.ids_file is not None:
            ids = _fixed_ids(spec, name, s, problems)
            unknown = [i for i in ids if i not in known]
            for i in unknown:
                problems.append(Problem(f"id listed in split '{name}' is not a clip of the dataset",
                                        file=str(spec.root / s.ids_file) if s.ids_file else None,
                                        clip=i))
            ids = [i for i in ids if i in known]
        else:
            pool = split.index[split == "train"]
            g = groups.get(s.group_by) if s.group_by else None
            ids = _draw(pool, s, g, rng, len(clips))
        split.loc[ids] = name
    return split
