"""The layout keeps its layers: no import circle inside `collection/`, between modules or
between its packages (jobs, importers, task_templates, sessions, views, ...)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.backend_independent

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"jobs", "sessions", "importers", "task_templates", "scripted_model", "views"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "collection").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "builtin" in parts or "migrations" in parts:
            continue
        name = ".".join(parts).removesuffix(".__init__")
        found[name] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module `name` imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
    return {t for t in targets if t in known and t != name}


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in PACKAGES else module


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for node in list(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_module_of_collection_imports_itself_in_a_circle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "collection.jobs.runner" in graph["collection.jobs.actors"]  # the graph is real
    assert _circles(graph) == []


def test_the_packages_of_collection_form_layers_without_a_circle():
    modules = _modules()
    packages: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(name, path, modules):
            if _group(name) != _group(target):
                packages[_group(name)].add(_group(target))
    assert "sessions" in packages["jobs"] and "jobs" not in packages["sessions"]
    assert _circles(dict(packages)) == []
