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

from midlevel.data.spec import DRAWN_SPLITS, format_id
from midlevel.errors import Problem

if TYPE_CHECKING:
    from midlevel.data.spec import DataSpec, SplitSpec


def _fixed_ids(spec: "DataSpec", name: str, s: "SplitSpec", problems: list[Problem]) -> list[str]:
    """The ids a split lists (``ids``, or ``ids_file``: UTF-8 text with or without a
    byte-order mark, one id per line, spaces around it and empty lines ignored)."""
    if s.ids is not None:
        return [str(i).strip() for i in s.ids]
    file = spec.root / s.ids_file
    if not file.is_file():
        problems.append(Problem(f"ids_file of split '{name}' not found", file=str(file)))
        return []
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"ids_file of split '{name}' is not UTF-8 text ({exc}); save "
                                f"it as UTF-8", file=str(file)))
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _format_hint(spec: "DataSpec", listed: str, known: set) -> str:
    """A hint when a table's ``id_format`` turns ``listed`` into a clip (``8`` -> ``008``):
    split lists name clips as written, unformatted."""
    for table in spec.tables:
        try:
            clip = format_id(listed, table.id_format) if table.id_format else None
        except ValueError:
            continue
        if clip in known:
            return (f" (clip ids are written with id_format {table.id_format!r}: this is clip "
                    f"'{clip}'; a split's list names clips as written)")
    return ""


def _want(s: "SplitSpec", n_total: int) -> int:
    """How many clips a drawn split asks for: ``size``, or ``fraction`` of all clips."""
    return s.size if s.size is not None else int(round(s.fraction * n_total))


def _draw(pool: pd.Index, s: "SplitSpec", groups: pd.Series | None,
          rng: np.random.Generator, n_total: int, reserved: set[str]) -> list[str]:
    """Draw ``fraction`` (of all clips) or ``size`` clips from ``pool``, passing over the
    clips another split lists (``reserved``; the random order is the same with or without
    them, so a spec's draws change only where they would have taken such a clip)."""
    want = _want(s, n_total)
    if groups is None:
        order = [pool[i] for i in rng.permutation(len(pool))]
        return [c for c in order if c not in reserved][:want]
    members = groups.loc[pool].groupby(groups.loc[pool]).groups
    names = sorted(members)
    if s.singleton_groups:
        names = [g for g in names if len(members[g]) == 1]
    chosen: list[str] = []
    for i in rng.permutation(len(names)):
        if len(chosen) >= want:
            break
        chosen.extend(str(c) for c in members[names[i]] if str(c) not in reserved)
    return chosen


def _listed(spec: "DataSpec", clips: pd.Index, problems: list[Problem]) -> dict[str, list[str]]:
    """Split name -> the clips its ``ids`` / ``ids_file`` lists (in draw order, each clip in
    the first split that lists it); an id that is not a clip, or that two splits list, is a
    problem naming the clip(s) and the splits."""
    known, owner, out = set(clips), {}, {}
    for name in DRAWN_SPLITS:
        s = spec.splits.get(name)
        if s is None or (s.ids is None and s.ids_file is None):
            continue
        where = str(spec.root / s.ids_file) if s.ids_file else (
            str(spec.path) if spec.path else None)
        ids = list(dict.fromkeys(_fixed_ids(spec, name, s, problems)))
        for i in ids:
            if i not in known:
                problems.append(Problem(f"id listed in split '{name}' is not a clip of the "
                                        f"dataset{_format_hint(spec, i, known)}", file=where,
                                        clip=i))
        both: dict[str, list[str]] = {}
        for i in ids:
            if i in owner:
                both.setdefault(owner[i], []).append(i)
        for other, shared in both.items():
            problems.append(Problem(
                f"{len(shared)} clip(s) listed in both split '{other}' and split '{name}': "
                f"{', '.join(shared)}; a clip belongs to one split (it stays in '{other}')",
                file=where, clip=shared[0] if len(shared) == 1 else None))
        out[name] = [i for i in ids if i in known and i not in owner]
        owner.update({i: name for i in out[name]})
    return out


def assign_splits(spec: "DataSpec", clips: pd.Index, groups: dict[str, pd.Series],
                  problems: list[Problem], notes: list[str] | None = None) -> pd.Series:
    """Return the split name of each clip (``"train"``, ``"validation"``, ``"calibration"``
    or ``"test"``).

    Parameters
    ----------
    clips : the clip ids.
    groups : ``group_by`` column name -> group label per clip.
    problems : appended here: listed ids that are not clips or that two splits list, and
        splits that leave no clip for training.
    notes : appended here: a drawn split that takes another number of clips than it asks
        for (too few clips left, or whole groups of its ``group_by`` column).
    """
    split = pd.Series("train", index=clips, dtype=object)
    rng = np.random.default_rng(spec.split_seed)
    listed = _listed(spec, clips, problems)
    reserved = {c for ids in listed.values() for c in ids}
    took = []
    for name in DRAWN_SPLITS:
        s = spec.splits.get(name)
        if s is None:
            continue
        if name in listed:
            ids = listed[name]
            took.append(f"{name} lists {len(ids)}")
        else:
            pool = split.index[split == "train"]
            g = groups.get(s.group_by) if s.group_by else None
            ids = _draw(pool, s, g, rng, len(clips), reserved)
            asked = f"size {s.size}" if s.size is not None else f"fraction {s.fraction:g}"
            want = _want(s, len(clips))
            took.append(f"{name} ({asked}) takes {len(ids)}"
                        + (f" of the {want} it asks for" if len(ids) < want else ""))
            if notes is not None and len(ids) != want:
                why = (f"whole groups of '{s.group_by}'" if g is not None and len(ids) > want
                       else f"only {len(ids)} clip(s) were left to draw from"
                       + (f" in groups of '{s.group_by}'" if g is not None else ""))
                notes.append(f"split '{name}' ({asked}) takes {len(ids)} clip(s) where it asks "
                             f"for {want}: {why}")
        split.loc[ids] = name
    if len(clips) and not (split == "train").any():
        problems.append(Problem(f"no clip left for training: the dataset has {len(clips)} "
                                f"clip(s) and the splits take them all ({'; '.join(took)}); "
                                f"make the held-out splits smaller",
                                file=str(spec.path) if spec.path else None))
    return split
