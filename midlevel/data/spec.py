"""Data specs: YAML files describing an annotated audio dataset (format in data_specs/README.md).

``load_spec`` parses and checks the YAML (every error names the spec file and the key at
fault); ``load_annotations`` reads the tables, joins them, maps ids to audio files, checks every
rating and assigns splits, returning one tidy table plus every problem found.

The file is longer than 400 lines because it holds the whole spec grammar, one parser per
key, next to the dataclasses they fill: reading a key's rules means reading one file.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from midlevel.checks import real_number, whole_number
from midlevel.data.yamlfile import read_yaml
from midlevel.errors import ArgumentError, SpecError

SPLITS = ("train", "validation", "calibration", "test")
# drawn in this order (each from the clips still in train); "calibration" is optional: the
# clips the predicted concepts are recalibrated on, apart from the validation clips that select
# the epoch (see midlevel.training.calibration)
DRAWN_SPLITS = ("test", "validation", "calibration")

_TOP_KEYS = {"name", "description", "root", "roots", "audio", "tables", "segments", "concepts",
             "targets", "splits"}
_AUDIO_KEYS = {"pattern", "path_column"}
_SOURCE_KEYS = {"path", "root", "sep", "encoding", "strip_headers", "id_column", "id_format",
                "filter", "missing_values"}
_TABLE_KEYS = _SOURCE_KEYS | {"join_on", "join_format", "how"}
_SEGMENT_KEYS = _SOURCE_KEYS | {"start_column", "end_column", "time_column", "columns"}
_COLUMN_KEYS = {"column", "scale", "description", "type", "classes", "reliability"}
_TAG_KEYS = {"column", "columns", "tags", "sep", "empty", "description", "type"}
KINDS = ("regression", "class", "binary", "tags")
_CELLS = {"class": "its cells are class labels", "binary": "its cells are 0/1, yes/no or "
          "true/false", "tags": "its cells name tags"}
_SPLIT_KEYS = {"ids", "ids_file", "fraction", "size", "group_by", "singleton_groups"}
_HOWS = ("exact", "inner", "left", "outer")


@dataclass(frozen=True)
class ColumnSpec:
    """A concept or target: its name, source column, rating scale and description.

    ``kind`` is "regression" (a rating), "class" (one label of several) or "binary" (0/1: a
    tag). A multi-label group (``type: tags``) is expanded into one binary column per tag,
    named ``<group>=<tag>``, with ``group`` and ``tag`` set; a group read from one delimited
    cell (``sep``) has that cell's column as ``column`` and says what an empty cell means
    (``empty``: "missing" or "none" of the tags).
    """

    name: str
    column: str
    scale: tuple[float, float] | None = None
    description: str = ""
    kind: str = "regression"  # "regression", "class" or "binary"
    classes: tuple[str, ...] | None = None
    group: str | None = None
    tag: str | None = None
    sep: str | None = None
    empty: str = "missing"
    reliability: float | None = None  # a rating concept's: var(true) / var(rating), (0, 1]

    @property
    def is_class(self) -> bool:
        return self.kind == "class"

    @property
    def is_binary(self) -> bool:
        return self.kind == "binary"

    @property
    def is_rating(self) -> bool:
        return self.kind == "regression"

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "column": self.column,
               "scale": list(self.scale) if self.scale else None,
               "description": self.description, "kind": self.kind,
               "classes": list(self.classes) if self.classes else None}
        if self.group is not None:
            out.update(group=self.group, tag=self.tag)
        if self.reliability is not None:
            out["reliability"] = self.reliability
        return out


@dataclass(frozen=True)
class TableSource:
    """Where a table is and how to read it: what every table of a spec says."""

    path: str
    root: str | None = None
    sep: str = ","
    encoding: str = "utf-8-sig"
    strip_headers: bool = True
    id_column: str = ""
    id_format: str | None = None
    filter: str | None = None
    missing_values: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class TableSpec(TableSource):
    """One annotation table and how it joins the tables before it."""

    join_on: str | None = None
    join_format: str | None = None
    how: str = "exact"


@dataclass(frozen=True)
class SegmentTableSpec(TableSource):
    """A table of time-varying ratings: one row per (clip, time segment).

    Either ``start_column`` and ``end_column`` (seconds) or ``time_column`` (a rating at an
    instant, holding until the clip's next row or its end) locate each row in its clip.
    ``columns`` maps concept / target names to this table's columns; None means every
    regression concept and target whose ``column`` is in the table's header.
    """

    start_column: str | None = None
    end_column: str | None = None
    time_column: str | None = None
    columns: tuple[tuple[str, str], ...] | None = None  # (spec name, table column)


@dataclass(frozen=True)
class SplitSpec:
    """How one split (test or validation) is drawn."""

    ids: tuple[str, ...] | None = None
    ids_file: str | None = None
    fraction: float | None = None
    size: int | None = None
    group_by: str | None = None
    singleton_groups: bool = False


@dataclass
class DataSpec:
    """A parsed data spec. Paths are resolved against the spec file's folder."""

    name: str
    path: Path | None
    root: Path
    roots: dict[str, Path]
    tables: list[TableSpec]
    concepts: list[ColumnSpec]
    targets: list[ColumnSpec]
    audio_pattern: str | None = None
    audio_path_column: str | None = None
    description: str = ""
    split_seed: int = 0
    splits: dict[str, SplitSpec] = field(default_factory=dict)
    segments: list[SegmentTableSpec] = field(default_factory=list)

    @property
    def concept_names(self) -> list[str]:
        return [c.name for c in self.concepts]

    @property
    def target_names(self) -> list[str]:
        return [t.name for t in self.targets]

    @property
    def groups(self) -> dict[str, list[str]]:
        """``{group: [column names]}`` of the multi-label (``type: tags``) groups."""
        out: dict[str, list[str]] = {}
        for c in self.concepts + self.targets:
            if c.group is not None:
                out.setdefault(c.group, []).append(c.name)
        return out

    def column(self, name: str) -> ColumnSpec:
        """The concept or target called ``name``."""
        for c in self.concepts + self.targets:
            if c.name == name:
                return c
        raise SpecError(f"'{name}' is neither a concept nor a target of spec '{self.name}'")

    def table_root(self, table: TableSpec | SegmentTableSpec) -> Path:
        return self.roots[table.root] if table.root else self.root

    def summary_dict(self) -> dict[str, Any]:
        """What a model needs to remember about the data (names, scales, descriptions)."""
        return {"name": self.name, "concepts": [c.to_dict() for c in self.concepts],
                "targets": [t.to_dict() for t in self.targets]}


# --------------------------------------------------------------------------- parsing


def _check_keys(where: str, mapping: Any, allowed: set[str], src: str) -> dict:
    if not isinstance(mapping, dict):
        raise SpecError(f"{src}: '{where}' must be a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise SpecError(f"{src}: unknown key(s) {', '.join(repr(k) for k in unknown)} in "
                        f"'{where}'; allowed: {', '.join(sorted(allowed))}")
    return mapping


def _scale(value: Any, where: str, src: str) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        try:
            pair = tuple(real_number(v) for v in value)
        except ArgumentError:
            pair = None
    if pair is None or pair[0] >= pair[1]:
        raise SpecError(f"{src}: '{where}.scale' must be [low, high]: two finite numbers with "
                        f"low < high, got {value!r}")
    return pair


def _reliability(value: Any, key: str, where: str, kind: str, src: str) -> float | None:
    """A rating concept's ``reliability``: a number in (0, 1], the share of its rating
    variance that is not rater noise (used by ``midlevel coefficients``)."""
    if value is None:
        return None
    if where != "concepts" or kind != "regression":
        what = "a target" if where != "concepts" else f"a {kind} concept"
        raise SpecError(f"{src}: '{key}.reliability': {what} has no reliability (it corrects "
                        f"the data's weights for rater noise in rating concepts; noise in a "
                        f"target only widens the intervals)")
    try:
        r = real_number(value)
    except ArgumentError:
        r = float("nan")
    if isinstance(value, bool) or not 0 < r <= 1:
        raise SpecError(f"{src}: '{key}.reliability' must be a number in (0, 1] (the share "
                        f"of the rating's variance that is not rater noise), got {value!r}")
    return float(r)


def _check_names(names: list, key: str, src: str) -> None:
    """Refuse class or tag names (``key`` is the list's key) that YAML did not read as the text
    the user wrote: unquoted yes/no, on/off, true/false become booleans (and would never match
    the CSV's cells), an empty entry becomes null; and refuse a name given twice."""
    for c in names:
        if isinstance(c, bool):
            raise SpecError(f"{src}: '{key}': YAML reads unquoted yes/no, on/off and "
                            f"true/false as booleans (here {c!r}); quote the names as they "
                            f"appear in the CSV, e.g. ['yes', 'no']")
        if c is None or not str(c).strip():
            raise SpecError(f"{src}: '{key}' has an empty entry")
    text = [str(c) for c in names]
    twice = sorted({n for n in text if text.count(n) > 1})
    if twice:
        raise SpecError(f"{src}: '{key}' names {', '.join(map(repr, twice))} more "
                        f"than once")


def _columns(section: Any, where: str, src: str) -> list[ColumnSpec]:
    if section is None:
        return []
    if not isinstance(section, dict):
        raise SpecError(f"{src}: '{where}' must be a mapping of name -> settings")
    out = []
    for name, cfg in section.items():
        cfg = {} if cfg is None else cfg
        key = f"{where}.{name}"
        kind = cfg.get("type", "regression") if isinstance(cfg, dict) else "regression"
        if kind not in KINDS:
            raise SpecError(f"{src}: '{key}.type' must be one of {', '.join(KINDS)}, got "
                            f"{kind!r}")
        if kind != "regression" and isinstance(cfg, dict) and cfg.get("scale") is not None:
            raise SpecError(f"{src}: '{key}.scale': a {kind} column has no scale (scale is for "
                            f"ratings only, type: regression; {_CELLS[kind]})")
        if kind == "tags":
            out += _tag_group(str(name), cfg, key, src)
            continue
        _check_keys(key, cfg, _COLUMN_KEYS, src)
        if kind == "class" and where == "concepts":
            raise SpecError(f"{src}: '{key}': concepts are ratings or binary tags, not classes")
        classes = cfg.get("classes")
        if classes is not None and (kind != "class" or not isinstance(classes, list)):
            raise SpecError(f"{src}: '{key}.classes' is a list, for type: class only")
        if classes:
            _check_names(classes, f"{key}.classes", src)
        out.append(ColumnSpec(name=str(name), column=str(cfg.get("column", name)),
                              scale=_scale(cfg.get("scale"), key, src),
                              description=str(cfg.get("description", "") or ""),
                              kind=kind,
                              classes=tuple(str(c) for c in classes) if classes else None,
                              reliability=_reliability(cfg.get("reliability"), key, where,
                                                       kind, src)))
    return out


def _tag_group(group: str, cfg: Any, key: str, src: str) -> list[ColumnSpec]:
    """A ``type: tags`` group -> one binary ColumnSpec per tag, named ``<group>=<tag>``."""
    _check_keys(key, cfg, _TAG_KEYS, src)
    description = str(cfg.get("description", "") or "")
    if ("columns" in cfg) == ("column" in cfg or "tags" in cfg):
        raise SpecError(f"{src}: '{key}' (type: tags) needs either 'columns' (one 0/1 column "
                        f"per tag) or 'column' and 'tags' (one delimited column)")
    if "columns" in cfg:
        for extra in ("sep", "empty"):
            if extra in cfg:
                raise SpecError(f"{src}: '{key}.{extra}' is for a delimited column only")
        cols = cfg["columns"]
        if isinstance(cols, list):
            cols = {str(c): str(c) for c in cols}
        if not isinstance(cols, dict) or not cols:
            raise SpecError(f"{src}: '{key}.columns' must be a non-empty list of columns or a "
                            f"mapping tag -> column")
        return [ColumnSpec(name=f"{group}={tag}", column=str(col if col is not None else tag),
                           description=description, kind="binary", group=group,
                           tag=str(tag)) for tag, col in cols.items()]
    tags = cfg.get("tags")
    if isinstance(tags, list):
        _check_names(tags, f"{key}.tags", src)
    if not isinstance(tags, list) or not tags or len(set(map(str, tags))) != len(tags):
        raise SpecError(f"{src}: '{key}.tags' must list the group's tags, each once (a cell "
                        f"naming another tag is a problem), got {tags!r}")
    sep = cfg.get("sep", "|")
    empty = cfg.get("empty", "missing")
    if not isinstance(sep, str) or not sep:
        raise SpecError(f"{src}: '{key}.sep' must be a non-empty string, got {sep!r}")
    if empty not in ("missing", "none"):
        raise SpecError(f"{src}: '{key}.empty' must be 'missing' (an empty cell is not "
                        f"labelled) or 'none' (no tag applies), got {empty!r}")
    return [ColumnSpec(name=f"{group}={tag}", column=str(cfg.get("column", group)),
                       description=description, kind="binary", group=group, tag=str(tag),
                       sep=sep, empty=empty) for tag in map(str, tags)]


def _source(cfg: dict, key: str, src: str, roots: dict[str, Path]) -> dict:
    """The :class:`TableSource` fields of one table's settings, each checked: SpecError
    naming ``key`` and the setting otherwise."""
    for required in ("path", "id_column"):
        if required not in cfg:
            raise SpecError(f"{src}: '{key}.{required}' is required")
    if cfg.get("root") is not None and cfg["root"] not in roots:
        raise SpecError(f"{src}: '{key}.root' names unknown root {cfg['root']!r}; "
                        f"known: {', '.join(sorted(roots)) or 'none (add a roots: section)'}")
    sep, encoding = cfg.get("sep", ","), cfg.get("encoding", "utf-8-sig")
    if not isinstance(sep, str) or not sep:
        raise SpecError(f"{src}: '{key}.sep' must be a non-empty string, got {sep!r}")
    try:
        codecs.lookup(str(encoding))
    except LookupError:
        raise SpecError(f"{src}: '{key}.encoding' {encoding!r} is not a known text encoding "
                        f"(for example utf-8-sig, latin-1, cp1252)") from None
    strip = cfg.get("strip_headers", True)
    if not isinstance(strip, bool):
        raise SpecError(f"{src}: '{key}.strip_headers' must be true or false, got {strip!r}")
    missing = cfg.get("missing_values", [""])
    if isinstance(missing, (str, int, float)):  # one value: "NA" is not the cells N and A
        missing = [missing]
    if not isinstance(missing, list) or any(isinstance(m, (list, dict)) for m in missing):
        raise SpecError(f"{src}: '{key}.missing_values' must be a list of cell values, got "
                        f"{missing!r}")
    _id_format(cfg, "id_format", key, src)
    return dict(path=str(cfg["path"]), root=cfg.get("root"), sep=sep, encoding=str(encoding),
                strip_headers=strip, id_column=str(cfg["id_column"]),
                id_format=cfg.get("id_format"), filter=cfg.get("filter"),
                missing_values=tuple("" if m is None else str(m).strip() for m in missing))


def _tables(section: Any, src: str, roots: dict[str, Path]) -> list[TableSpec]:
    if not isinstance(section, list) or not section:
        raise SpecError(f"{src}: 'tables' must be a non-empty list of tables")
    out = []
    for i, cfg in enumerate(section):
        key = f"tables[{i}]"
        _check_keys(key, cfg, _TABLE_KEYS, src)
        source = _source(cfg, key, src, roots)
        how = cfg.get("how", "exact")
        if how not in _HOWS:
            raise SpecError(f"{src}: '{key}.how' must be one of {', '.join(_HOWS)}, got {how!r}")
        if i == 0 and ("join_on" in cfg or "how" in cfg):
            raise SpecError(f"{src}: '{key}': the first table cannot have join_on/how")
        _id_format(cfg, "join_format", key, src)
        out.append(TableSpec(**source, join_on=cfg.get("join_on"),
                             join_format=cfg.get("join_format"), how=how))
    return out


def _id_format(cfg: dict, fmt_key: str, key: str, src: str) -> None:
    fmt = cfg.get(fmt_key)
    if fmt is not None:
        try:
            fmt.format(1) if _is_int_format(fmt) else fmt.format("x")
        except (ValueError, IndexError, KeyError) as exc:
            raise SpecError(f"{src}: '{key}.{fmt_key}' {fmt!r} is not a format: {exc}")


def _segment_tables(section: Any, src: str, roots: dict[str, Path],
                    columns: list[ColumnSpec]) -> list[SegmentTableSpec]:
    if section is None:
        return []
    if not isinstance(section, list):
        raise SpecError(f"{src}: 'segments' must be a list of tables")
    by_name = {c.name: c for c in columns}
    out = []
    for i, cfg in enumerate(section):
        key = f"segments[{i}]"
        _check_keys(key, cfg, _SEGMENT_KEYS, src)
        source = _source(cfg, key, src, roots)
        has_span = [k for k in ("start_column", "end_column") if k in cfg]
        if "time_column" in cfg:
            if has_span:
                raise SpecError(f"{src}: '{key}' has time_column and {', '.join(has_span)}; give "
                                f"either start_column and end_column, or time_column")
        elif len(has_span) != 2:
            raise SpecError(f"{src}: '{key}' needs start_column and end_column (seconds), or "
                            f"time_column; got {has_span or 'none'}")
        mapping = cfg.get("columns")
        if mapping is not None:
            own = {n: c.column for n, c in by_name.items()}  # a name alone: the spec's column
            if isinstance(mapping, list):
                pairs = [(str(n), own.get(str(n), str(n))) for n in mapping]
            elif isinstance(mapping, dict):
                pairs = [(str(n), str(c) if c is not None else own.get(str(n), str(n)))
                         for n, c in mapping.items()]
            else:
                raise SpecError(f"{src}: '{key}.columns' must be a list of concept/target names "
                                f"or a mapping name -> column of this table")
            if not pairs:
                raise SpecError(f"{src}: '{key}.columns' is empty")
            for name, _ in pairs:
                if name not in by_name:
                    raise SpecError(f"{src}: '{key}.columns' names {name!r}, which is neither a "
                                    f"concept nor a target; known: "
                                    f"{', '.join(by_name) or 'none'}")
                if not by_name[name].is_rating:
                    raise SpecError(f"{src}: '{key}.columns': '{name}' is a "
                                    f"{by_name[name].kind} column; segments hold numeric "
                                    f"ratings only")
            mapping = tuple(pairs)
        out.append(SegmentTableSpec(
            **source, start_column=_opt_str(cfg.get("start_column")),
            end_column=_opt_str(cfg.get("end_column")),
            time_column=_opt_str(cfg.get("time_column")), columns=mapping))
    return out


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _splits(section: Any, src: str) -> tuple[int, dict[str, SplitSpec]]:
    if section is None:
        return 0, {}
    _check_keys("splits", section, {"seed", *DRAWN_SPLITS}, src)
    seed = whole_number(section.get("seed", 0), f"{src}: 'splits.seed'", least=0,
                        error=SpecError)
    out = {}
    for name in DRAWN_SPLITS:
        cfg = section.get(name)
        if cfg is None:
            continue
        key = f"splits.{name}"
        _check_keys(key, cfg, _SPLIT_KEYS, src)
        chosen = [k for k in ("ids", "ids_file", "fraction", "size") if k in cfg]
        if len(chosen) != 1:
            raise SpecError(f"{src}: '{key}' needs exactly one of ids, ids_file, fraction, size; "
                            f"got {chosen or 'none'}")
        frac = real_number(cfg.get("fraction"), f"{src}: '{key}.fraction'", above=0, below=1,
                           allow_none=True, error=SpecError)
        size = whole_number(cfg.get("size"), f"{src}: '{key}.size'", allow_none=True,
                            error=SpecError)
        out[name] = SplitSpec(ids=_split_ids(cfg["ids"], f"{src}: '{key}.ids'")
                              if "ids" in cfg else None,
                              ids_file=cfg.get("ids_file"), fraction=frac, size=size,
                              group_by=cfg.get("group_by"),
                              singleton_groups=bool(cfg.get("singleton_groups", False)))
    return seed, out


def _split_ids(ids: Any, where: str) -> tuple[str, ...]:
    """A split's ``ids`` list as clip ids, each as written (the spec reader keeps ``010``
    unquoted as "010"); SpecError for a value that is not a list of ids, or an empty entry."""
    if not isinstance(ids, list):
        raise SpecError(f"{where} must be a list of clip ids, e.g. [\"001\", \"002\"]; got "
                        f"{ids!r}")
    bad = [i for i in ids if i is None or isinstance(i, (list, dict)) or not str(i).strip()]
    if bad:
        raise SpecError(f"{where}: {len(bad)} entry(ies) are not clip ids: {bad[:5]}")
    return tuple(str(i).strip() for i in ids)


def parse_root_overrides(root: str | Path | list | None) -> tuple[Path | None, dict[str, Path]]:
    """``--root DIR`` replaces the main root; ``--root NAME=DIR`` a named one."""
    if root is None:
        return None, {}
    items = root if isinstance(root, (list, tuple)) else [root]
    main, named = None, {}
    for item in items:
        text = str(item)
        if "=" in text and not Path(text).exists():
            name, _, value = text.partition("=")
            named[name] = Path(value).expanduser().resolve()
        else:
            main = Path(text).expanduser().resolve()
    return main, named


def spec_from_dict(raw: Any, *, base: Path, src: str = "<spec>",
                   root: str | Path | list | None = None) -> DataSpec:
    """Build a :class:`DataSpec` from parsed YAML; relative paths resolve against ``base``."""
    _check_keys("<top level>", raw, _TOP_KEYS, src)
    for required in ("name", "root", "audio", "tables"):
        if required not in raw:
            raise SpecError(f"{src}: '{required}' is required")
    main_override, named_overrides = parse_root_overrides(root)
    roots_raw = raw.get("roots") or {}
    if not isinstance(roots_raw, dict):
        raise SpecError(f"{src}: 'roots' must be a mapping of name -> folder")
    unknown = sorted(set(named_overrides) - set(roots_raw))
    if unknown:
        raise SpecError(f"--root {unknown[0]}=...: spec {src} has no root named {unknown[0]!r}; "
                        f"known: {', '.join(sorted(roots_raw)) or 'none'}")
    roots = {str(k): named_overrides.get(str(k), (base / Path(str(v)).expanduser()).resolve())
             for k, v in roots_raw.items()}  # ~ is the home folder, as in --root
    audio = _check_keys("audio", raw["audio"], _AUDIO_KEYS, src)
    if len([k for k in _AUDIO_KEYS if k in audio]) != 1:
        raise SpecError(f"{src}: 'audio' needs exactly one of 'pattern' or 'path_column'")
    if "pattern" in audio and "{id}" not in str(audio["pattern"]):
        raise SpecError(f"{src}: 'audio.pattern' must contain '{{id}}', got {audio['pattern']!r}")
    concepts = _columns(raw.get("concepts"), "concepts", src)
    targets = _columns(raw.get("targets"), "targets", src)
    names = [c.name for c in concepts + targets]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"{src}: name(s) {dup} appear more than once among concepts and targets")
    if not concepts and not targets:
        raise SpecError(f"{src}: a spec needs at least one concept or target")
    seed, splits = _splits(raw.get("splits"), src)
    return DataSpec(name=str(raw["name"]), path=None,
                    root=main_override or (base / Path(str(raw["root"])).expanduser()).resolve(),
                    roots=roots, tables=_tables(raw["tables"], src, roots),
                    concepts=concepts, targets=targets,
                    audio_pattern=audio.get("pattern"), audio_path_column=audio.get("path_column"),
                    description=str(raw.get("description", "") or ""),
                    split_seed=seed, splits=splits,
                    segments=_segment_tables(raw.get("segments"), src, roots,
                                             concepts + targets))


def load_spec(path: str | Path, *, root: str | Path | list | None = None) -> DataSpec:
    """Read and check a data spec.

    Parameters
    ----------
    path : path of the YAML file.
    root : replaces the spec's ``root`` (``"DIR"``) or a named root (``"NAME=DIR"``); a list may
        give several.

    Raises
    ------
    SpecError naming the file and the key at fault.
    """
    path = Path(path)
    raw = read_yaml(path)  # a key given twice is an error, not a silent replacement
    spec = spec_from_dict(raw, base=path.resolve().parent, src=str(path), root=root)
    spec.path = path.resolve()
    return spec


# --------------------------------------------------------------------------- tables


def _is_int_format(fmt: str) -> bool:
    return fmt.rstrip("}").endswith("d")


def format_id(value: Any, fmt: str | None) -> str:
    """Turn a raw key cell into a clip id: ``format_id("7", "{:03d}") == "007"``.

    Raises :class:`ArgumentError` (a ValueError) when an integer format meets a non-integer
    key.
    """
    text = str(value).strip()
    if fmt is None or not text:  # an empty key stays empty: the caller names it "empty id"
        return text
    if _is_int_format(fmt):
        whole = re.fullmatch(r"([+-]?\d+)(\.0*)?", text, re.ASCII)  # '7', '7.0' (a spreadsheet's)
        if whole is None:
            try:
                float(text)
            except ValueError:
                raise ArgumentError(f"key {text!r} is not a number (id_format {fmt!r} takes "
                                    f"whole numbers)") from None
            raise ArgumentError(f"key {text!r} is not an integer written in digits (id_format "
                                f"{fmt!r} takes whole numbers such as 7 or 7.0)")
        return fmt.format(int(whole.group(1)))
    return fmt.format(text)
