"""The engine's imports: no cycle among module-level imports, and the modules the CLI
and the sandbox's launch code start from import no torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "llmkit"
TORCH_FREE = (
    "llmkit.cli",
    "llmkit.catalog",
    "llmkit.failures",
    "llmkit.impl",
    "llmkit.progress",
    "llmkit.result",
    "llmkit.sandbox.launch",
)
HEAVY = ("torch", "numpy")


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Names a module imports when it runs: its body and the blocks in it (if, try, with,
    class bodies), not function bodies nor ``if TYPE_CHECKING:`` blocks. ``from X import a``
    gives X and X.a (a may be a submodule)."""
    here = module if is_package else module.rpartition(".")[0]
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(
                child
                for child in ast.iter_child_nodes(node)
                if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case))
            )


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level."""
    files = {_module_name(f, package): f for f in sorted(package.rglob("*.py"))}
    graph = {}
    for name, f in files.items():
        imported = _top_level_imports(ast.parse(f.read_text(encoding="utf-8")), name, f.stem == "__init__")
        graph[name] = {target for target in imported if target in files and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import cycle found, as a path that ends where it starts, or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target, path)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [])):
            return cycle
    return None


def test_no_import_cycle_in_the_engine():
    cycle = find_cycle(import_graph(PACKAGE))
    assert cycle is None, "import cycle among module-level imports: " + " -> ".join(cycle)


def test_the_cycle_finder_names_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("import os\n\ndef late():\n    import pkg.c\n")
    (pkg / "sub" / "b.py").write_text("try:\n    from pkg.c import x\nexcept ImportError:\n    pass\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    graph = import_graph(pkg)
    assert graph["pkg.sub"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.a"] == set() and graph["pkg.c"] == set()  # function and TYPE_CHECKING imports
    assert find_cycle(graph) is None
    (pkg / "c.py").write_text("from .sub import b\n")
    assert find_cycle(import_graph(pkg)) == ["pkg.c", "pkg.sub", "pkg.sub.b", "pkg.c"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_imports_no_torch(module):
    probe = f"import sys, json, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [], f"importing {module} imports {json.loads(run.stdout)}"
