"""Imports point one way: dashboard → monitoring → monitoring.store, with no cycles.

Every import of every module of `monitoring/` and `dashboard/` is read with `ast` (imports inside
functions too: a cycle hidden in a function is still a cycle), then checked:
- no import cycle among the project's modules;
- `monitoring.store` imports only itself and the foundation modules (errors, schemas);
- the core (`monitoring/`) never imports the dashboard, the command line's package from outside
  it, or streamlit / plotly;
The checker runs on small made-up graphs too, to show that each rule can fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("monitoring", "dashboard")
# what the store may build on besides itself: leaf modules that import nothing of the project
STORE_FOUNDATION = frozenset({"monitoring.errors", "monitoring.schemas"})
UI_LIBRARIES = ("streamlit", "plotly", "dashboard")

Graph = Mapping[str, Iterable[str]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(module: str, path: Path) -> set[str]:
    """Dotted names a module imports at run time (`from a import b` gives a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports, plus the outside names (for the UI rule)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets: set[str] = set()
        for name in imported_names(module, path):
            if name.split(".")[0] in PACKAGES:
                # `from a.b import c`: the module a.b.c when it exists, else a.b
                while name not in modules and "." in name:
                    name = name.rsplit(".", 1)[0]
                # a package's own modules import it first anyway: not an edge
                if name in modules and not _inside(module, name):
                    targets.add(name)
            else:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def strongconnect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return cycles


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def wrong_way_imports(graph: Graph) -> list[str]:
    """One sentence per import against dashboard → monitoring → monitoring.store."""
    problems: list[str] = []
    for module in sorted(graph):
        for target in sorted(graph[module]):
            if _inside(module, "monitoring.store"):
                if _inside(target, "monitoring") and not (
                    _inside(target, "monitoring.store") or target in STORE_FOUNDATION
                ):
                    problems.append(f"{module} (store) imports {target} (above the store)")
            elif _inside(module, "monitoring"):
                if any(_inside(target, ui) for ui in UI_LIBRARIES):
                    problems.append(f"{module} (core) imports {target} (the UI shell)")
                if _inside(target, "monitoring.cli") and not _inside(module, "monitoring.cli"):
                    problems.append(f"{module} (core) imports {target} (the command line)")
    return problems


def test_no_import_cycles_among_project_modules():
    assert find_cycles(import_graph()) == []


def test_imports_point_from_dashboard_to_core_to_store():
    assert wrong_way_imports(import_graph()) == []


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    # a function-level import in the command line
    assert "monitoring.synthetic" in graph["monitoring.cli.data"]
    assert "monitoring.store.store" in graph["monitoring.store"]  # `from monitoring.store.store`
    assert "streamlit" in graph["dashboard.app"]


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"monitoring.a": {"monitoring.b"}, "monitoring.b": {"monitoring.a"}}, ["monitoring.a"]),
        (
            {
                "monitoring.a": {"monitoring.b"},
                "monitoring.b": {"monitoring.c"},
                "monitoring.c": {"monitoring.a"},
                "monitoring.d": {"monitoring.a"},
            },
            ["monitoring.a", "monitoring.b", "monitoring.c"],
        ),
    ],
)
def test_the_cycle_check_fails_on_a_cycle(graph: Graph, expected: list[str]):
    cycles = find_cycles(graph)
    assert len(cycles) == 1 and cycles[0][0] == expected[0] and set(expected) <= set(cycles[0])
    assert find_cycles({"monitoring.a": {"monitoring.b"}, "monitoring.b": set()}) == []


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("monitoring.store.store", "monitoring.ingest.changes"),
        ("monitoring.store.engine", "monitoring.config"),
        ("monitoring.alerts", "streamlit"),
        ("monitoring.survival", "plotly.graph_objects"),
        ("monitoring.durability", "dashboard.charts"),
        ("monitoring.alert_queue", "monitoring.cli.common"),
    ],
)
def test_the_direction_check_fails_on_a_wrong_way_import(module: str, target: str):
    graph = {module: {target}, target: set()}
    assert len(wrong_way_imports(graph)) == 1
    # the same edge the right way round is allowed
    assert wrong_way_imports({target: {module}, module: set()}) == [] or target.startswith(
        ("streamlit", "plotly", "dashboard")
    )


def test_the_real_checks_fail_when_a_project_module_gains_a_bad_import(tmp_path, monkeypatch):
    """A copy of the project with one added line: `monitoring.store.store` importing ingest."""
    import shutil

    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package)
    store_py = tmp_path / "monitoring" / "store" / "store.py"
    store_py.write_text(
        store_py.read_text(encoding="utf-8") + "\n\ndef _late():\n    import monitoring.ingest\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    graph = import_graph()
    assert "monitoring.store.store (store) imports monitoring.ingest" in " ".join(
        wrong_way_imports(graph)
    )
    assert any("monitoring.store.store" in cycle for cycle in find_cycles(graph))
