"""The package's shape: imports run one way, no circles, no module over 500 lines.

Every import of ``drf_instcache`` is read with :mod:`ast`, including imports inside
functions and under ``TYPE_CHECKING``: a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "drf_instcache"
MAX_LINES = 500
OVER_THE_LIMIT: set[str] = set()
"""Modules allowed over the limit (none)."""

LAYERS = {
    "exceptions": 0,
    "backends": 1,
    "settings": 2,  # the DRF_INSTCACHE_* reader and the process backend
    "core": 3,
    "fastpath": 4,
    "invalidation": 5,
    "drf": 6,
    "ops": 7,
    "checks": 8,
    "management": 9,
}
"""Rank of each part: a module may import only parts of a lower (or its own) rank."""

FACES = {
    "breaker",
    "bulk",
    "cache",
    "codecs",
    "compression",
    "counters",
    "dependencies",
    "discovery",
    "fastjson",
    "fastview",
    "fields",
    "handle",
    "keys",
    "leases",
    "listqueries",
    "mixins",
    "models",
    "relations",
    "rendered",
    "rendered_checks",
    "rendered_signals",
    "signals",
    "transactions",
    "variants",
}
"""Modules at the package root that only re-export, for the import paths users know."""

ALLOWED_UPWARD = {
    ("drf_instcache.invalidation.cascade", "drf_instcache.tasks"),
}
"""Celery's autodiscovery needs the task in ``drf_instcache.tasks``; the cascade imports
it lazily, only when ``DRF_INSTCACHE_ASYNC`` is on."""


def module_name(path: Path) -> str:
    parts = ["drf_instcache", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str) -> set[str]:
    """The package modules ``name`` imports (a ``from pkg import mod`` names the module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            named = [name for name in submodules if name in MODULES]
            targets = named if len(named) == len(submodules) else [*named, base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("drf_instcache.") and target != name:
                found.add(target)
    return found


GRAPH = {name: imported(name) for name in MODULES}


def part(name: str) -> str:
    return name.split(".")[1] if "." in name else ""


def rank(name: str) -> int | None:
    first = part(name)
    return LAYERS.get(first)


def test_no_import_circle():
    edges = {
        name: {other for other in targets if (name, other) not in ALLOWED_UPWARD}
        for name, targets in GRAPH.items()
    }
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for other in sorted(edges[node]):
            if state.get(other) == 1:
                circles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_backends_import_nothing_above_them():
    wrong = {
        (name, other)
        for name, targets in GRAPH.items()
        if part(name) == "backends"
        for other in targets
        if part(other) not in ("backends", "exceptions") and (name, other) not in ALLOWED_UPWARD
    }
    assert wrong == set()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if rank(n) is not None))
def test_layers_import_downwards(name):
    upward = {
        other
        for other in GRAPH[name]
        if (name, other) not in ALLOWED_UPWARD and (rank(other) is None or rank(other) > rank(name))  # type: ignore[operator]
    }
    assert upward == set(), f"{name} imports a higher layer or a face"


def test_faces_are_not_imported_from_inside():
    faces = {f"drf_instcache.{face}" for face in FACES}
    inside = {
        (name, other)
        for name, targets in GRAPH.items()
        if name.rpartition(".")[2] not in FACES
        for other in targets & faces
    }
    assert inside == set()


def test_faces_only_re_export():
    for face in FACES:
        tree = ast.parse(MODULES[f"drf_instcache.{face}"].read_text())
        defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        assert defined == [], face


@pytest.mark.parametrize("name", sorted(set(MODULES) - OVER_THE_LIMIT))
def test_no_module_over_500_lines(name):
    assert len(MODULES[name].read_text().splitlines()) <= MAX_LINES


def test_no_private_name_taken_from_another_module():
    taken = {
        (name, node.module, alias.name)
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("drf_instcache")
        for alias in node.names
        if alias.name.startswith("_")
    }
    assert taken == set()
