"""The package's shape: no import cycles (imports inside functions count too), small modules, each
with a docstring, and the core importing no edge (integrations, server, recipes, evals, demo)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genrm_plugin"
MAX_LINES = 400
CORE = ("genrm_plugin.prompts", "genrm_plugin.votes", "genrm_plugin.judge", "genrm_plugin.conversation")
EDGES = ("genrm_plugin.integrations", "genrm_plugin.server", "genrm_plugin.serving", "genrm_plugin.recipes",
         "genrm_plugin.evals", "genrm_plugin.demo", "genrm_plugin.commands")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (``__init__`` re-exports excluded)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                candidates = [f"{base}.{a.name}" for a in node.names] + [base]
            else:
                continue
            for candidate in candidates:
                while candidate and candidate not in modules:
                    candidate = candidate.rpartition(".")[0]
                if candidate and candidate != name and not modules[candidate].name == "__init__.py":
                    targets.add(candidate)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_core_imports_no_edge():
    graph = import_graph()
    for core in CORE:
        assert not [m for m in graph[core] if m.startswith(EDGES)], core


def test_modules_are_small_and_documented():
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().count("\n")
        assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)}: {lines} lines > {MAX_LINES}"
        if path.name != "__init__.py" or path.read_text().strip():
            assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(PACKAGE.parent)} has no module docstring"


def test_the_demo_touches_no_run_folder_layout():
    """The demo composes recipes and evaluations through their result objects, never their files."""
    layout = ("iter-", "shards", "summary.json", "records.jsonl", "stats.json", "manifest.json")
    for path in sorted((PACKAGE / "demo").glob("*.py")):
        text = path.read_text()
        assert not [name for name in layout if name in text], path.name

