"""Reading a YAML file that refuses a key given twice in one mapping.

``yaml.safe_load`` keeps the last of two equal keys: a second ``targets:`` block silently
replaces the first, a concept defined twice keeps only its second definition. A data spec
read through :func:`read_yaml` names the key and both lines instead. Merge keys (``<<:``)
still work: a key a mapping sets itself may override one it merges in.

A list under a key ``ids`` (a split's clip ids) keeps each unquoted entry as the text it was
written as: YAML 1.1 reads ``010`` as the octal number 8, ``1_000`` as 1000 and ``1.50`` as
1.5, which would name other clips than the ones written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from midlevel.errors import SpecError

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_AS_WRITTEN = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool"}
"""Tags of the plain scalars an ``ids`` list keeps as written (a null stays null)."""


class DuplicateKey(SpecError):
    """A key given twice in one mapping: ``key``, and the 1-based lines of both (raised
    while parsing; :func:`read_yaml` turns it into a SpecError naming the file)."""

    def __init__(self, key: Any, first: int, second: int):
        self.key, self.first, self.second = key, first, second
        super().__init__(f"key {key!r} appears twice in one mapping (lines {first} and "
                         f"{second})")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKey` for a key given twice in one
    mapping, at any depth."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader's own error says so
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise DuplicateKey(key, first, line)
                seen[key] = line
            for key_node, value_node in node.value:
                if key_node.value == "ids" and isinstance(value_node, yaml.SequenceNode):
                    for item in value_node.value:
                        if isinstance(item, yaml.ScalarNode) and item.style is None and \
                                item.tag in _AS_WRITTEN:
                            item.tag = _STR  # ``010`` stays "010", not 8
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, *, what: str = "spec") -> Any:
    """The parsed content of the YAML file ``path`` (dicts, lists, scalars).

    Raises
    ------
    SpecError naming ``path``: the file is missing, is not valid YAML, or gives a key twice
    in one mapping (naming the key and both lines).
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: {what} file not found")
    try:
        return yaml.load(path.read_text(encoding="utf-8-sig"), Loader=UniqueKeyLoader)
    except DuplicateKey as exc:
        raise SpecError(f"{path}: key {exc.key!r} is given twice in the same mapping, at "
                        f"lines {exc.first} and {exc.second}; YAML would keep only the second "
                        f"and silently drop the first: merge them into one") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc}); save the {what} as UTF-8") from None
