"""The layout's rules, checked on the source: no import cycles, each folder imports only the
layers below it, no library module prints, parses argv or sets the plotting backend, every
raised error is a MidlevelError, every file write goes through midlevel.io, and no library
file is long without saying why."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import midlevel
from midlevel import errors

PACKAGE = Path(midlevel.__file__).resolve().parent
ROOT = PACKAGE.parent

# what each part of the package may import (besides itself and the standard library);
# see docs/ARCHITECTURE.md
ALLOWED = {
    "errors": set(),
    "io": set(),
    "checks": {"errors"},
    "choices": set(),
    "workers": set(),
    "data": {"errors", "io", "checks", "workers"},
    "synth": {"errors", "io", "checks"},
    "models": {"errors", "checks"},
    "training": {"errors", "io", "checks", "choices", "data", "models", "run"},
    "run": {"errors", "io", "checks", "data", "models", "training"},
    "plots": {"errors", "io", "checks"},
    "report": {"errors", "io", "checks"},
    "explain": {"errors", "io", "checks", "choices", "data", "models", "training", "run",
                "plots", "synth"},
    "testing": {"errors", "checks", "models", "training"},
    "workflows": {"errors", "io", "checks", "choices", "workers", "data", "models",
                  "training", "run", "plots", "synth", "explain", "report", "testing"},
    "cli": {"errors", "io", "checks", "choices", "workers", "data", "models", "training",
            "run", "plots", "synth", "explain", "report", "workflows", "testing"},
    "__init__": {"errors"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


MODULES = _modules()
TREES = {name: ast.parse(f.read_text()) for name, f in MODULES.items()}


def _resolve(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(name: str) -> list[tuple[str, int, str]]:
    """(imported module, line, imported name or '') of every import, module level or not."""
    out = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            out += [(_resolve(a.name), node.lineno, "") for a in node.names
                    if a.name.startswith("midlevel")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                node.module.startswith("midlevel"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.append((full, node.lineno, "") if full in MODULES
                           else (_resolve(node.module), node.lineno, a.name))
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    return {m: {d for d, _, _ in _imports(m) if d and d != m} for m in MODULES}


def _documented_table() -> dict[str, set[str]]:
    """docs/ARCHITECTURE.md's table "What each folder may import", as ``ALLOWED`` is: each
    row's folders to the parts its second cell names ("nothing of the package",
    "everything", "everything but X", or names; parentheses are comments)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    rows = text.split("## What each folder may import", 1)[1].split("\n\n")[1].splitlines()[2:]
    parts = set(ALLOWED) - {"__init__", "__main__"}
    table = {}
    for row in rows:
        folders, may = (c.strip() for c in row.strip("|").split("|"))
        names = [f.strip(" `") for f in folders.split(",")]
        for name in names:
            if may == "nothing of the package":
                table[name] = set()
            elif may.startswith("everything but "):
                table[name] = parts - {name, may.removeprefix("everything but ")}
            elif may == "everything":
                table[name] = parts - {name}
            else:
                table[name] = {m.strip() for m in re.sub(r"\([^)]*\)", "", may).split(",")}
    return table


def test_the_documented_import_table_is_the_one_checked():
    """The table in docs/ARCHITECTURE.md names the same folders and the same permissions as
    ``ALLOWED`` (audit 20: the doc had lost ``choices`` and ``workers``)."""
    documented = _documented_table()
    checked = {k: v for k, v in ALLOWED.items() if k not in ("__init__", "__main__")}
    assert documented == checked


def test_no_import_cycles():
    graph = _graph()
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_each_part_imports_only_the_layers_below_it():
    bad = []
    for module in MODULES:
        part = _part(module)
        for dep, line, _ in _imports(module):
            target = _part(dep)
            if dep and dep != "midlevel" and target != part and target not in ALLOWED[part]:
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line} imports {dep}")
    assert not bad, "\n".join(bad)


def test_internal_imports_name_the_defining_module():
    """Package __init__s import lazily; inside the package, import from the module that
    defines a name (``from midlevel.training import train`` is for users)."""
    bad = []
    for module in MODULES:
        for dep, line, name in _imports(module):
            if name and MODULES[dep].name == "__init__.py" and dep != "midlevel" and \
                    name not in _defined(dep):
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{line}: from {dep} import "
                           f"{name}")
    assert not bad, "\n".join(bad)


def _defined(module: str) -> set[str]:
    """Names a module defines at its top level (def, class, assignment)."""
    out = set()
    for node in TREES[module].body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return out


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            yield node, (f.id if isinstance(f, ast.Name) else
                         f.attr if isinstance(f, ast.Attribute) else "")


def test_library_modules_do_not_print_parse_argv_or_set_the_backend():
    bad = []
    for module, tree in TREES.items():
        if _part(module) in ("cli", "__main__"):
            continue
        where = MODULES[module].relative_to(ROOT)
        for node, name in _calls(tree):
            if name == "print":
                bad.append(f"{where}:{node.lineno}: print")
            if name == "use" and isinstance(node.func, ast.Attribute) and \
                    getattr(node.func.value, "id", "") == "matplotlib":
                bad.append(f"{where}:{node.lineno}: matplotlib.use")
        for dep, line, _ in [(a.name, n.lineno, "") for n in ast.walk(tree)
                             if isinstance(n, ast.Import) for a in n.names]:
            if dep == "argparse":
                bad.append(f"{where}:{line}: imports argparse")
        if "sys.argv" in MODULES[module].read_text():
            bad.append(f"{where}: reads sys.argv")
    assert not bad, "\n".join(bad)


def _error_classes() -> set[str]:
    names = {n for n in dir(errors) if isinstance(getattr(errors, n), type)
             and issubclass(getattr(errors, n), errors.MidlevelError)}
    for tree in TREES.values():  # subclasses defined elsewhere in the package
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", getattr(b, "attr", "")) in names for b in node.bases):
                names.add(node.name)
    return names


def _raises(tree):
    """(raise node, name of the enclosing function) of every raise."""
    def walk(node, fn):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from walk(child, child.name)
            else:
                if isinstance(child, ast.Raise):
                    yield child, fn
                yield from walk(child, fn)
    yield from walk(tree, "")


def test_every_raised_error_is_a_midlevel_error():
    allowed = _error_classes() | {"SystemExit", "NotImplementedError",
                                    "Terminated"}  # SIGTERM unwinds as Ctrl-C does
    bad = []
    for module, tree in TREES.items():
        for node, fn in _raises(tree):
            if node.exc is None:
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = getattr(exc, "id", getattr(exc, "attr", None))
            if name is None or name in allowed or (fn == "__getattr__" and
                                                   name == "AttributeError"):
                continue
            if name.islower():  # re-raising a caught exception object
                continue
            bad.append(f"{MODULES[module].relative_to(ROOT)}:{node.lineno}: raise {name}")
    assert not bad, "\n".join(sorted(set(bad)))


WRITERS = {"savefig", "write_text", "write_bytes", "savez", "savez_compressed"}


def test_every_file_write_goes_through_midlevel_io():
    bad = []
    for module, tree in TREES.items():
        if module == "midlevel.io":
            continue
        where = MODULES[module].relative_to(ROOT)
        for node, name in _calls(tree):
            owner = getattr(getattr(node.func, "value", None), "id", "")
            method = isinstance(node.func, ast.Attribute)
            if (method and name in WRITERS) or (name == "to_csv" and node.args) or \
                    (name == "save" and owner in ("np", "torch")) or \
                    (name == "write" and owner == "sf") or \
                    (name == "open" and isinstance(node.func, ast.Name) and any(
                        isinstance(a, ast.Constant) and isinstance(a.value, str)
                        and set(a.value) & set("wax") for a in node.args[1:2])):
                bad.append(f"{where}:{node.lineno}: {owner + '.' if owner else ''}{name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_long_library_file_without_a_reason(module):
    path = MODULES[module]
    n = len(path.read_text().splitlines())
    doc = ast.get_docstring(TREES[module]) or ""
    assert n <= 400 or "longer than 400 lines" in doc, f"{path.relative_to(ROOT)}: {n} lines"


def test_every_cross_reference_in_a_docstring_names_something_that_exists():
    """``:func:`midlevel.x.y``` and the like resolve (audit 10b #5: four docstrings named a
    module, midlevel.explain.contributions, that did not exist)."""
    import importlib
    import re
    reference = re.compile(r":(?:func|mod|meth|class|attr|data):`~?(midlevel(?:\.\w+)+)`")
    bad = []
    for name, path in MODULES.items():
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            for target in reference.findall(line):
                module = _resolve(target)
                obj = importlib.import_module(module) if module else None
                for attr in target[len(module) + 1:].split(".") if target != module else []:
                    obj = getattr(obj, attr, None)
                if obj is None:
                    bad.append(f"{path.relative_to(ROOT)}:{line_no}: {target}")
    assert not bad, "\n".join(bad)


def test_no_exported_name_is_shadowed_by_a_submodule():
    """Audit 15b: ``midlevel.training`` exported the function ``evaluate`` while
    ``training/evaluate.py`` existed; once anything imported the submodule, the package
    attribute was the module and ``from midlevel.training import evaluate`` gave it."""
    import importlib
    clashes = []
    for init in sorted((ROOT / "midlevel").rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(ROOT).parts)
        exported = getattr(importlib.import_module(package), "__all__", [])
        for name in exported:
            if (init.parent / f"{name}.py").is_file() or (init.parent / name).is_dir():
                clashes.append(f"{package}.{name}")
    assert not clashes
