"""Tests of the package's layering: no private names across modules, no cycles."""

# Authors: The skembed developers
# SPDX-License-Identifier: BSD-3-Clause

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skembed"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _absolute(node, module, is_package):
    """The absolute module name an ImportFrom node reads from."""
    if node.level == 0:
        return node.module
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(modules):
    """Every import of every module, lazy ones (inside functions) included.

    Yields (importer, imported module, names taken from it or None).
    """
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield name, alias.name, None
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, name, is_package)
                yield name, source, [alias.name for alias in node.names]


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_takes_a_private_name_from_another():
    """Check that no skembed module imports an _underscored name of another."""
    modules = _modules()
    offences = []
    for importer, source, names in _imports(modules):
        if not source.startswith("skembed") or names is None:
            continue
        for imported in names:
            if _is_private(imported):
                offences.append(f"{importer}: from {source} import {imported}")
    assert not offences, "\n".join(offences)


def _graph(modules):
    graph = {name: set() for name in modules}
    for importer, source, names in _imports(modules):
        if not source.startswith("skembed"):
            continue
        targets = [source]
        # ``from skembed import datasets`` imports a module, not a name.
        for imported in names or []:
            if f"{source}.{imported}" in modules:
                targets.append(f"{source}.{imported}")
        for target in targets:
            if target in modules and target != importer:
                graph[importer].add(target)
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_lazy_imports_included():
    """Check that the modules' imports, wherever they stand, form no cycle."""
    cycle = _find_cycle(_graph(_modules()))
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize(
    "low, high",
    [
        ("skembed._neighbors", "skembed._base"),
        ("skembed._stats", "skembed._neighbors"),
        ("skembed._linalg", "skembed._stats"),
        ("skembed._base", "skembed.metrics"),
    ],
)
def test_lower_layers_do_not_import_higher_ones(low, high):
    """Check the layering the design names: the engines sit below the aligners."""
    graph = _graph(_modules())
    reachable, todo = set(), [low]
    while todo:
        node = todo.pop()
        for nxt in graph[node]:
            if nxt not in reachable:
                reachable.add(nxt)
                todo.append(nxt)
    assert not any(m == high or m.startswith(high + ".") for m in reachable)


def test_the_checks_see_offences():
    """Check the walker on a made-up module: it finds a private import and a cycle."""
    tree = ast.parse("def f():\n    from skembed._base import _hidden\n")
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert _is_private(node.names[0].name) and not _is_private("__version__")
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
