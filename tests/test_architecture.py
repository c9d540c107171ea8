"""The core's import graph: no cycle between pruning_core modules, and no UI import.

Every ``import`` in the AST counts, at any depth (inside functions too), with relative imports
resolved. A package's own ``__init__`` running before its submodules is not counted as an edge
(Python imports the parent package first; that is not a dependency the code chose).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "pruning_core"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def module_names() -> dict[str, Path]:
    """Dotted name of every module of the package (``pruning_core.x``, ``pruning_core.sub``, ...)."""
    names = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported_names(name: str, path: Path) -> set[str]:
    """Every dotted name ``path`` imports, anywhere in the file, relative imports made absolute."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Edges from each pruning_core module to the pruning_core modules it imports."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        targets = {target for target in imported_names(name, path) if target in modules}
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_graph_sees_imports_inside_functions_and_relative_imports(tmp_path):
    source = "from . import a\nfrom .b import c\n\ndef f():\n    from ..d import e\n    import os\n"
    (tmp_path / "m.py").write_text(source)
    names = imported_names("pkg.sub.m", tmp_path / "m.py")
    assert {"pkg.sub.a", "pkg.sub.b", "pkg.sub.b.c", "pkg.d", "pkg.d.e", "os"} <= names


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_import_graph_has_no_cycle():
    graph = import_graph()
    assert "pruning_core.evaluation" in graph and "pruning_core.batching" in graph["pruning_core.evaluation"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_core_never_imports_streamlit():
    offenders = [name for name, path in module_names().items() if any(n.split(".")[0] == "streamlit" for n in imported_names(name, path))]
    assert offenders == []
