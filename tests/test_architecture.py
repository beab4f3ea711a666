"""DESIGN "Services tier" and STYLE "Layout": the import order holds in every module of src/voltline.

Read with the standard library's `ast`, never by importing: entry (app, cli, server) ->
front-ends (api, ocpp, web, simulator) -> services -> smart / store / bus / metrics -> settings
-> domain -> codec, errors, clock, tasks. Nothing imports upward or sideways across packages of
one layer (store never imports smart; api never imports ocpp); imports under `if TYPE_CHECKING:`
count too, since they state a dependency. Besides: no import cycle between modules outside the
simulator, no private name (`_x`) or private module imported from another package, and no
SQLAlchemy outside store/ and services/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "voltline"
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"app", "cli", "__main__", "server", "http_protocol"}),
    frozenset({"api", "ocpp", "web", "simulator"}),
    frozenset({"services"}),
    frozenset({"smart", "store", "bus", "metrics"}),
    frozenset({"settings"}),
    frozenset({"domain"}),
    frozenset({"codec", "errors", "clock", "tasks", "__init__"}),
)
SIDEWAYS = frozenset({0})  # the entry points may use each other (cli serves the app); no other layer
SQL_ALLOWED = frozenset({"store", "services"})
CYCLES_EXEMPT = frozenset({"simulator"})


@dataclass(frozen=True)
class Import:
    """One `import`/`from ... import` of a voltline module (or of sqlalchemy) in a source file."""

    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    names: tuple[str, ...]  # the names taken by `from target import names`
    line: int


def module_name(path: Path) -> str:
    """The dotted module name of a file under src/."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def top_package(module: str) -> str:
    """`voltline.api.chargers` -> `api`; `voltline` -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_of(module: str) -> int:
    """The index of the module's layer in LAYERS."""
    package = top_package(module)
    for index, members in enumerate(LAYERS):
        if package in members:
            return index
    raise AssertionError(f"{module}: package {package!r} is in no layer of tests/test_architecture.py")


def imports_of(path: Path) -> Iterator[Import]:
    """Every import of a voltline module or of sqlalchemy in the file, wherever it stands."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = tuple(alias.name for alias in node.names)
            yield Import(module, base, names, node.lineno)


def all_imports() -> list[Import]:
    """The imports of every module of the package."""
    return [found for path in sorted((SRC / ROOT).rglob("*.py")) for found in imports_of(path)]


def modules() -> set[str]:
    """Every module of the package, dotted."""
    return {module_name(path) for path in (SRC / ROOT).rglob("*.py")}


def resolved(found: Import, known: set[str]) -> list[str]:
    """The voltline modules an import brings in (`from pkg import module` names a module too)."""
    if not (found.target == ROOT or found.target.startswith(ROOT + ".")):
        return []
    targets = [f"{found.target}.{name}" for name in found.names if f"{found.target}.{name}" in known]
    return targets or [found.target]


def across_packages() -> Iterator[tuple[Import, str]]:
    """Every import of a voltline module of another top-level package, with the module it names."""
    known = modules()
    for found in all_imports():
        for target in resolved(found, known):
            if top_package(found.module) != top_package(target):
                yield found, target


def test_nothing_imports_upward_or_across_a_layer() -> None:
    """DESIGN "Services tier": entry -> front-ends -> services -> smart / store -> domain -> codec, errors."""
    wrong = []
    for found, target in across_packages():
        here, there = layer_of(found.module), layer_of(target)
        if there < here or (there == here and here not in SIDEWAYS):
            wrong.append(f"{found.module}:{found.line} imports {target}")
    assert wrong == [], "\n".join(wrong)


def test_no_sqlalchemy_outside_store_and_services() -> None:
    """DESIGN "Services tier": front-ends translate wire <-> service; only store/ and services/ speak SQL."""
    wrong = [
        f"{found.module}:{found.line} imports {found.target}"
        for found in all_imports()
        if found.target.split(".")[0] == "sqlalchemy" and top_package(found.module) not in SQL_ALLOWED
    ]
    assert wrong == [], "\n".join(wrong)


def test_no_private_name_is_imported_from_another_package() -> None:
    """STYLE: a name or module with a leading underscore stays inside its package."""
    known = modules()
    wrong = []
    for found, target in across_packages():
        private_module = any(is_private(part) for part in target.split("."))
        private_names = [n for n in found.names if is_private(n) and f"{found.target}.{n}" not in known]
        if private_module or private_names:
            wrong.append(f"{found.module}:{found.line} imports {target} {private_names or ''}".rstrip())
    assert wrong == [], "\n".join(wrong)


def is_private(name: str) -> bool:
    """`_kit` or `_EMAIL`, not `__init__` or `__version__`."""
    return name.startswith("_") and not name.endswith("__")


def test_no_import_cycle_outside_the_simulator() -> None:
    """DESIGN "Services tier": arrows point down only, so the module graph has no cycle."""
    known = modules()
    graph: dict[str, set[str]] = {module: set() for module in known}
    for found in all_imports():
        if top_package(found.module) in CYCLES_EXEMPT:
            continue
        for target in resolved(found, known):
            if target in known and target != found.module and top_package(target) not in CYCLES_EXEMPT:
                graph[found.module].add(target)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_the_checks_see_a_violation() -> None:
    """The reader finds imports where they are (a check that reads nothing would pass every rule)."""
    found = {(i.module, i.target) for i in all_imports()}
    assert ("voltline.app", "voltline.services.runtime") in found
    assert layer_of("voltline.store.engine") > layer_of("voltline.services.runtime") > layer_of("voltline.api.sites")
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
