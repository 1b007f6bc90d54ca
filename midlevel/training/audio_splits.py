"""Each clip in the split its audio had at training: a run's ``RUN/splits.csv`` holds every
clip's split and the SHA-1 of its audio's bytes, and a command that scores or explains the run
on a spec (its own, an edited copy, a moved dataset) puts each clip where its audio was.

Audit 22c: with the run's own spec gone (the dataset moved) and ``--spec`` an edited copy,
every "test" clip was a clip the run had trained on (only "may be scored as held out" said
so); on the own spec's path, audio swapped between a training and a test clip was scored
without a word (test r -0.51 -> +0.56). Matching by the audio's bytes needs no other spec:
- a clip whose id and audio are the run's keeps the run's split (the spec may draw another:
  warned, as :func:`midlevel.training.datarecord.use_stored_splits` does);
- a clip holding audio another clip had at training takes that audio's split ("train" if any
  clip with those bytes trained), warned by name;
- a clip of an id the run knows whose bytes differ (re-encoded, retagged or replaced: the
  bytes cannot tell) keeps the split the run stored for the id, warned (audit 22e: kept in
  the spec's split, a re-encoded dataset with an edited split seed was scored on training
  clips); a clip the run does not know keeps the spec's split.

Runs of versions that stored no audio keys keep the id-based matching of
:meth:`midlevel.run.Run.annotations`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from midlevel.errors import AudioError, MidlevelError
from midlevel.training.datarecord import (
    EXAMPLES, SPLITS_FILE, describe_changes, read_splits, same_audio, split_assignment,
    split_changes, stored_audio_keys, use_stored_splits,
)

log = logging.getLogger("midlevel")


def splits_by_audio(table: pd.DataFrame, run_dir, *, where, warned: set
                    ) -> pd.DataFrame | None:
    """``table`` (annotations, index clip, with ``path`` and ``split``) with each clip in the
    split its audio had when the run in ``run_dir`` was trained (module docstring); None
    when the run stored no audio keys. Each kind of difference is warned about once per run
    (``warned``), naming ``where`` and examples."""
    from midlevel.data.cache import file_digest
    keys, stored = stored_audio_keys(run_dir), read_splits(run_dir)
    if not keys or stored is None or "split" not in table:
        return None
    holders: dict[str, list[str]] = {}
    for clip, key in keys.items():
        if isinstance(key, str) and key and clip in stored.index:
            holders.setdefault(key, []).append(str(clip))
    assigned, swapped, unheard = {}, [], []
    for clip, path in table["path"].items():
        clip = str(clip)
        try:
            now = file_digest(path)
        except AudioError:  # unreadable: named where it is read
            continue
        if keys.get(clip) == now:
            assigned[clip] = stored[clip]
        elif now in holders:
            owners = holders[now]
            split = "train" if any(stored[o] == "train" for o in owners) else stored[owners[0]]
            assigned[clip] = split
            swapped.append((clip, owners[0], split))
        elif clip in stored.index:  # other bytes (re-encoded, retagged or replaced): the
            assigned[clip] = stored[clip]  # run's split for the name is never less safe
            unheard.append(clip)
    current = split_assignment(table)
    changes = split_changes(pd.Series(assigned, dtype=object).sort_index(), current)
    moved = changes["moved"]
    if moved:
        rows = pd.Index(table.index.astype(str)).get_indexer([c for c, _, _ in moved])
        table.iloc[rows, table.columns.get_loc("split")] = [old for _, old, _ in moved]
    run = str(Path(run_dir).resolve())
    told = {c for c, _, _ in swapped} | set(unheard)  # said in their own warnings below
    plain = [m for m in moved if m[0] not in told]
    added = [c for c in changes["added"] if c not in stored.index]
    if plain and (run, "splits") not in warned:
        warned.add((run, "splits"))
        log.warning("%s: the spec now draws other splits than the run was trained on: %s. "
                    "Using the run's splits (%s) for the clips it knows, so that its test "
                    "clips are clips it never trained on%s", where,
                    describe_changes({**changes, "moved": plain, "added": []}),
                    Path(run_dir) / SPLITS_FILE,
                    f"; {len(added)} clip(s) it did not know keep the spec's split"
                    if added else "")
    if swapped and (run, "swapped") not in warned:
        warned.add((run, "swapped"))
        shown = ", ".join(f"{c} holds {o}'s ({s})" for c, o, s in swapped[:EXAMPLES])
        log.warning("%s: %d clip(s) hold audio another clip had when the run was trained "
                    "(%s%s): each is scored in the split its audio had (%s's SHA-1 of each "
                    "file), not in its name's, but against its name's ratings: the metrics "
                    "pair one clip's audio with another's ratings until the files are put "
                    "back", where, len(swapped), shown,
                    ", ..." if len(swapped) > EXAMPLES else "", SPLITS_FILE)
    if unheard and (run, "unheard") not in warned:
        warned.add((run, "unheard"))
        log.warning("%s: %d clip(s) the run knows by name hold other bytes than at training "
                    "(%s%s): re-encoded or retagged copies, or other audio (replaced files, "
                    "another dataset with the same ids?); each keeps the split the run "
                    "stored for its name", where, len(unheard),
                    ", ".join(sorted(unheard)[:EXAMPLES]),
                    ", ..." if len(unheard) > EXAMPLES else "")
    return table


def own_clips(run) -> pd.DataFrame | Exception:
    """The annotations of the spec ``run`` was trained on, read to tell which clips of
    another spec are the run's; the error when it cannot be read (moved)."""
    from midlevel.data.annotations import load_annotations
    try:
        return load_annotations(run.spec(None))
    except (MidlevelError, OSError) as exc:
        return exc


def splits_by_id(table: pd.DataFrame, run_dir, *, mine: bool, own, where, warned: set
                 ) -> pd.DataFrame:
    """For a run that stored no audio keys: on its own spec file (``mine``) every clip it
    stored keeps its split; on another spec, those with the id and the audio file of a clip
    of ``own`` (:func:`own_clips`; an error: the own spec cannot be read, warned once)."""
    if mine:
        return use_stored_splits(table, run_dir, where=where, warned=warned)
    if isinstance(own, Exception):
        if ("own spec", where) not in warned:
            warned.add(("own spec", where))
            log.warning("%s: cannot load the run's own spec to check the splits against the "
                        "run's (%s); a clip the run trained on may be scored as held out",
                        where, own)
        return table
    same = same_audio(table, own)  # none: another dataset, whatever its ids
    return use_stored_splits(table, run_dir, where=where, warned=warned,
                             clips=same) if same else table
