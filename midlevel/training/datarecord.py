"""What a run keeps of its data beyond the spec's path and roots: which clip was in which split
(``RUN/splits.csv``, columns ``clip``, ``split`` and ``audio``: the SHA-1 of the clip's audio
bytes) and fingerprints of its ratings (``ratings`` in the data record of ``config.yaml`` and
``model.pt``: per concept and target column, a sha256 over the clips' values in clip order;
``segment_ratings``: the same over the segment tables' rows).

The spec's splits are drawn again by every later command, so an edited spec (another
``splits.seed``, rows added to a table) would otherwise move training clips into "test"
without a word. With these records a resume is refused on other splits, ratings or audio
(:func:`check_same_data`, :func:`check_same_audio`), and later commands score the run on its
own splits (:func:`use_stored_splits`). Runs written before these records existed have neither, and
nothing is compared for them. :func:`trained_spec` and :func:`trained_roots` give a later
command the spec and the roots a run was trained with; :func:`in_run_class_order` reads a
class target's ratings in the order of the run's classes, whatever order a spec lists them in.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from midlevel.errors import CheckpointError, TrainingError
from midlevel.io import write_csv

log = logging.getLogger("midlevel")

SPLITS_FILE = "splits.csv"
EXAMPLES = 5  # clips named in a message


def split_assignment(table: pd.DataFrame) -> pd.Series:
    """clip -> split of an annotations table, sorted by clip."""
    split = table["split"].astype(str)
    split.index = split.index.astype(str)
    return split.sort_index()


def write_splits(out: Path, table: pd.DataFrame, audio: dict[str, str] | None = None) -> Path:
    """``RUN/splits.csv``: each clip of ``table`` and its split, and with ``audio`` (clip ->
    SHA-1 of its audio's bytes, :func:`audio_keys`) the audio it was trained on (atomically)."""
    split = split_assignment(table)
    frame = pd.DataFrame({"clip": split.index, "split": split.to_numpy()})
    if audio is not None:
        frame["audio"] = [audio.get(c, "") for c in split.index]
    return write_csv(frame, Path(out) / SPLITS_FILE)


def _splits_file(run_dir) -> pd.DataFrame | None:
    """``RUN/splits.csv`` as text (columns clip, split and, where stored, audio); None where
    the run stored none; CheckpointError where it cannot be read."""
    path = Path(run_dir) / SPLITS_FILE
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CheckpointError(f"{path}: cannot read the run's splits ({exc})") from exc
    if not {"clip", "split"} <= set(table.columns):
        raise CheckpointError(f"{path}: cannot read the run's splits (columns clip and split "
                              f"expected, found {list(table.columns)})")
    return table


def read_splits(run_dir) -> pd.Series | None:
    """The stored clip -> split of the run in ``run_dir``; None where it stored none."""
    table = _splits_file(run_dir)
    if table is None:
        return None
    return pd.Series(table["split"].to_numpy(), index=table["clip"].to_numpy()).sort_index()


def ratings_fingerprint(table: pd.DataFrame, names) -> dict[str, str]:
    """column -> sha256 over ``(clip, value)`` of every clip in clip order: equal exactly when
    the clips and their ratings are (wherever the files lie)."""
    rows = table.sort_index(key=lambda index: index.astype(str))
    out = {}
    for name in names:
        digest = hashlib.sha256()
        for clip, value in zip(rows.index.astype(str), rows[name].to_numpy(float)):
            digest.update(f"{clip}\t{float(value)!r}\n".encode())
        out[name] = digest.hexdigest()
    return out


def segment_fingerprint(table: pd.DataFrame, names) -> dict[str, str]:
    """column -> sha256 over ``(clip, start, end, value)`` of the segment rows rating it (the
    time-varying ratings a spec's segment tables give, the labels of every crop of their
    clips), for the columns of ``names`` some segment rates; {} for a spec without segments."""
    from midlevel.data.segments import segments_of
    rows = segments_of(table).table
    out = {}
    for name in names:
        if name not in rows:
            continue
        rated = rows.loc[rows[name].notna(), ["clip", "start", "end", name]]
        if not len(rated):
            continue
        digest = hashlib.sha256()
        for clip, start, end, value in rated.itertuples(index=False):
            digest.update(f"{clip}\t{float(start)!r}\t{float(end)!r}\t{float(value)!r}\n"
                          .encode())
        out[name] = digest.hexdigest()
    return out


FINGERPRINTS = ("ratings", "segment_ratings")
"""The data record's fingerprints (:func:`fingerprints`): a resume of a run that did not
store one leaves it out, as what the run trained on is not known."""


def fingerprints(table: pd.DataFrame, names) -> dict[str, dict[str, str]]:
    """The fingerprints of ``table``'s ratings of ``names`` for a run's data record:
    ``ratings`` (:func:`ratings_fingerprint`) and ``segment_ratings``
    (:func:`segment_fingerprint`)."""
    return {"ratings": ratings_fingerprint(table, names),
            "segment_ratings": segment_fingerprint(table, names)}


def recorded_only(data: dict, before: dict) -> dict:
    """A resume's data record ``data`` without the :data:`FINGERPRINTS` the run's record
    ``before`` lacks (a run of an older version: what it trained on is not known); the
    run's ``versions`` are kept, and where the resume runs on other ones they are recorded as
    ``resumed_with`` and said in a warning."""
    out = {k: v for k, v in data.items() if k in before or k not in FINGERPRINTS}
    first, now = before.get("versions"), data.get("versions")
    if first and now and first != now:
        changed = {k: (first.get(k), now.get(k)) for k in now if first.get(k) != now.get(k)}
        log.warning("the run was trained with other library versions than this resume: %s; "
                    "its numbers may differ from an uninterrupted run's",
                    ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))
        out.update(versions=first, resumed_with=now)
    return out


def audio_keys(features) -> dict[str, str] | None:
    """clip -> the SHA-1 of its audio file's bytes, for features read from the feature cache
    (its entries are named by it); None for spectrograms given as arrays."""
    files = getattr(features, "files", None)
    if not isinstance(files, dict):
        return None
    return {str(clip): Path(path).stem for clip, path in files.items()}


def check_same_audio(out: Path, now: dict[str, str] | None) -> None:
    """Before resuming the run in ``out``: each clip's audio has the bytes it had at
    training (``audio`` in ``RUN/splits.csv``; ``now``: :func:`audio_keys` of the features
    read now); CheckpointError naming the clips whose audio changed otherwise (a run that
    stored no keys, or features given as arrays, are not compared)."""
    stored = stored_audio_keys(out)
    if not stored or now is None:
        return
    changed = sorted(c for c in stored if c in now and stored[c] and stored[c] != now[c])
    if changed:
        more = ", ..." if len(changed) > EXAMPLES else ""
        raise CheckpointError(
            f"{out}: cannot resume on other audio than the run's: {len(changed)} clip(s) "
            f"have other audio bytes than at training ({', '.join(changed[:EXAMPLES])}{more}); "
            f"resume with the audio the run was trained on, or train a new run with another "
            f"--out")


def stored_audio_keys(run_dir) -> dict[str, str] | None:
    """clip -> the SHA-1 of its audio at training, from ``RUN/splits.csv`` (None for a run
    that stored none)."""
    table = _splits_file(run_dir)
    if table is None or "audio" not in table:
        return None
    return dict(zip(table["clip"], table["audio"]))


def split_changes(stored: pd.Series, current: pd.Series) -> dict:
    """How ``current`` (clip -> split) differs from ``stored``: ``moved`` (clip, stored split,
    current split) for clips in both, ``added`` and ``dropped`` clips."""
    common = stored.index.intersection(current.index)
    moved = [(c, stored[c], current[c]) for c in common if stored[c] != current[c]]
    return {"moved": moved, "added": sorted(set(current.index) - set(stored.index)),
            "dropped": sorted(set(stored.index) - set(current.index)), "known": len(common)}


def describe_changes(changes: dict) -> str:
    """The differences of :func:`split_changes` in words, with a few clips each."""
    parts = []
    if changes["moved"]:
        shown = ", ".join(f"{c}: {a} -> {b}" for c, a, b in changes["moved"][:EXAMPLES])
        more = ", ..." if len(changes["moved"]) > EXAMPLES else ""
        parts.append(f"{len(changes['moved'])} of the {changes['known']} clip(s) the run knows "
                     f"are in another split ({shown}{more})")
    for key, what in (("added", "the run did not know"), ("dropped", "the run had are gone")):
        if changes[key]:
            more = ", ..." if len(changes[key]) > EXAMPLES else ""
            parts.append(f"{len(changes[key])} clip(s) {what} "
                         f"({', '.join(changes[key][:EXAMPLES])}{more})")
    return "; ".join(parts)


def check_same_data(out: Path, table: pd.DataFrame, names, record: dict) -> None:
    """Before resuming the run in ``out`` (``record``: its ``config.yaml``) on ``table``: the
    clips and their splits are those of ``RUN/splits.csv`` and the ratings of ``names`` have
    the fingerprint stored at training; CheckpointError naming what differs otherwise (what
    the run did not store is not compared)."""
    stored = read_splits(out)
    if stored is not None:
        changes = split_changes(stored, split_assignment(table))
        if changes["moved"] or changes["added"] or changes["dropped"]:
            raise CheckpointError(
                f"{out}: cannot resume on other clips or splits than the run's "
                f"({out / SPLITS_FILE}): {describe_changes(changes)}; epochs done trained on "
                f"the run's training clips, so resume with the spec (and --root) the run was "
                f"trained on, or train a new run with another --out")
    segments = (record.get("data") or {}).get("segment_ratings")
    if segments is not None:
        now = segment_fingerprint(table, names)
        differ = sorted(n for n in set(now) | set(segments) if now.get(n) != segments.get(n))
        if differ:
            raise CheckpointError(
                f"{out}: cannot resume on other time-varying ratings than the run's: the "
                f"segment tables' ratings of {differ} differ from those at training (they "
                f"label every crop of their clips); resume with the data the run was trained "
                f"on, or train a new run with another --out")
    prints = (record.get("data") or {}).get("ratings")
    if prints:
        now = ratings_fingerprint(table, [n for n in names if n in prints])
        differ = [n for n in now if now[n] != prints[n]]
        if differ:
            raise CheckpointError(
                f"{out}: cannot resume on other ratings than the run's: column(s) {differ} "
                f"hold other values than at training (the files the spec and --root point at "
                f"now); resume with the data the run was trained on (a copy of it under "
                f"--root is fine), or train a new run with another --out")


def use_stored_splits(table: pd.DataFrame, run_dir, *, where, warned: set,
                      clips=None) -> pd.DataFrame:
    """``table`` (the run's own spec, loaded now) with each clip the run stored a split for in
    that split; clips the run did not know keep the spec's.

    A spec edited after training (another ``splits.seed``, rows added) draws other splits:
    scored by those, a "test" clip may be one the model trained on and every later number is
    optimistic without a sign. The stored assignment is what the model was trained on, so
    this uses it (rather than refusing, which would also block a harmless edit such as a
    fixed typo or added clips) and logs one warning per run (``warned`` holds the runs
    warned about) naming how many clips moved, with examples. Without ``RUN/splits.csv``
    (runs of versions before it was written) the table is returned as it is, with one
    warning per run that its splits are the spec's as drawn now (audit 14c: after an edited
    ``splits.seed``, such a run was scored on its training clips as "test", without a
    word). ``clips``: the clips of ``table`` that are
    the run's (default: every clip the run stored, by id; another spec than the run's own
    passes those with the run's audio, :func:`same_audio`).
    """
    stored = read_splits(run_dir)
    if "split" not in table:
        return table
    if stored is None:
        key = str(Path(run_dir).resolve())
        if key not in warned:
            warned.add(key)
            log.warning("%s: the run holds no %s (it was written before runs stored the split "
                        "of each clip): its clips are split as the spec draws them now; if "
                        "the spec's splits changed since training (splits.seed, clips added "
                        "or removed), its 'test' clips may be clips it trained on", where,
                        SPLITS_FILE)
        return table
    if clips is not None:
        stored = stored[stored.index.isin({str(c) for c in clips})]
    changes = split_changes(stored, split_assignment(table))
    if not (changes["moved"] or changes["added"]):
        return table
    moved = [c for c, _, _ in changes["moved"]]
    if moved:
        index = pd.Index(table.index.astype(str))
        rows = index.get_indexer(moved)
        column = table.columns.get_loc("split")
        table.iloc[rows, column] = [old for _, old, _ in changes["moved"]]
    key = str(Path(run_dir).resolve())
    if key not in warned:
        warned.add(key)
        log.warning("%s: the spec now draws other splits than the run was trained on: %s. "
                    "Using the run's splits (%s) for the clips it knows, so that its test "
                    "clips are clips it never trained on%s", where, describe_changes(changes),
                    Path(run_dir) / SPLITS_FILE,
                    "; clips it did not know keep the spec's split" if changes["added"]
                    else "")
    return table


def trained_spec(stored: dict, root=None, *, where):
    """The spec a run was trained on (``stored``: its data record, ``stored["spec"]`` a path)
    with :func:`trained_roots`; CheckpointError naming ``where`` and ``--spec`` when that
    file is gone (a dataset folder moved or renamed with its spec)."""
    from midlevel.data.spec import load_spec
    if not Path(stored["spec"]).is_file():
        raise CheckpointError(
            f"{where}: the data spec the run was trained on, {stored['spec']}, is not there any "
            f"more (moved or renamed with its dataset?); pass its new place (--spec FILE, or "
            f"spec= in Python)")
    return load_spec(stored["spec"], root=trained_roots(stored, root, where=where))


def trained_roots(stored: dict, root=None, *, where) -> list[str] | None:
    """The ``root`` of ``load_spec`` giving the spec ``stored["spec"]`` the roots a run was
    trained with (``stored``: its data record; older runs stored only the main root) save those
    ``root`` replaces, then ``root``; a stored folder that is gone is left to the spec (warned)."""
    from midlevel.data.spec import load_spec, parse_root_overrides
    given = [] if root is None else list(root) if isinstance(root, (list, tuple)) else [root]
    main, named = parse_root_overrides(given)
    wanted = {k: v for k, v in (stored.get("roots") or {}).items() if k not in named}
    if main is None and stored.get("root"):
        wanted[None] = stored["root"]
    spec = load_spec(stored["spec"], root=given or None) if wanted else None
    kept = []
    for name, path in wanted.items():
        current = spec.root if name is None else spec.roots.get(name)  # None: root dropped
        if current is not None and Path(path).is_dir():
            kept.append(path if name is None else f"{name}={path}")
        elif current not in (None, Path(path)):
            log.warning("%s was trained with %s %s, no longer a folder: using the spec's %s; "
                        "pass --root %s if the data moved", where, f"root '{name}'" if name
                        else "the root", path, current, f"{name}=DIR" if name else "DIR")
    return kept + given or None


def same_audio(table: pd.DataFrame, own: pd.DataFrame) -> list[str]:
    """The clips of ``table`` (another spec's annotations) that are clips of ``own`` (the
    run's own spec's): the same id and the same audio file, or a copy of it (the same file
    name, size and sampled bytes: a copied dataset). An edited copy of the spec, or of the
    whole dataset, reads the run's clips; another dataset whose ids happen to match does
    not."""
    common = table.index.astype(str).intersection(own.index.astype(str))
    mine = {str(c): p for c, p in own["path"].items()}
    theirs = {str(c): p for c, p in table["path"].items()}
    return [c for c in common if isinstance(mine[c], str) and isinstance(theirs[c], str)
            and _same_file(mine[c], theirs[c])]


def _same_file(a: str, b: str, block: int = 4096) -> bool:
    """Whether ``a`` and ``b`` are one file or copies: the same name and size, and the same
    bytes in three sampled blocks (start, middle, end; files of one duration and format have
    one size, so the size alone would take another recording for a copy)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        size = os.path.getsize(a)
        if os.path.basename(a) != os.path.basename(b) or os.path.getsize(b) != size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            for offset in {0, max(0, size // 2 - block // 2), max(0, size - block)}:
                fa.seek(offset)
                fb.seek(offset)
                if fa.read(block) != fb.read(block):
                    return False
        return True
    except OSError:  # a file that is gone is nobody's copy
        return False


def in_run_class_order(table: pd.DataFrame, targets, *, where) -> pd.DataFrame:
    """``table`` (:func:`~midlevel.data.annotations.load_annotations`' annotations) with each
    class target's codes in the order of the run's classes (``targets``: the model's target
    dicts). A class column's codes index the classes in the spec's order (its ``classes:``
    list, or the sorted values seen), the model's logits the order it was trained with: a
    spec that lists them otherwise (an edited copy, a class added or never seen) would score
    and explain one class as another. Codes are mapped by name; a class the run does not know
    is refused, naming the target and both lists (``where``: the spec's path, for messages)."""
    seen, where = dict(table.attrs.get("classes", {})), where or "the data spec"
    for t in targets:
        name = t["name"]
        if t.get("kind") != "class" or name not in seen or name not in table:
            continue
        mine, theirs = [str(c) for c in t["classes"]], [str(c) for c in seen[name]]
        if theirs == mine:
            continue
        unknown = [c for c in theirs if c not in mine]
        if unknown:
            raise TrainingError(f"{where}: class target {name!r} lists class(es) {unknown} "
                                f"the run was not trained on (the run's classes, in its "
                                f"order: {mine}; the spec's: {theirs})")
        codes = np.array([mine.index(c) for c in theirs], dtype=float)
        column = table[name].to_numpy()
        rated = np.isfinite(column)
        recoded = column.copy()
        recoded[rated] = codes[column[rated].astype(int)]
        table = table.assign(**{name: recoded})
        seen[name] = mine
        log.info("%s: class target %r is listed as %s there and %s in the run; its ratings "
                 "are read by class name, in the run's order", where, name, theirs, mine)
    if seen:
        table.attrs["classes"] = seen
    return table
