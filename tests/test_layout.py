"""The house as docs/layout.md draws it: which way imports go, and module sizes.

Read from the source (AST), not by importing: every ``import`` and ``from ...
import`` of a project module, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = (
    "webhookproject",
    "submissions",
    "handlers",
    "api",
    "alerts",
    "observability",
    "example_handlers",
)
#: Which apps each may import (besides itself): the arrows of docs/layout.md.
ALLOWED = {
    # settings.py reads the apps' defaults (submissions.conf, alerts.conf)
    # and names observability by dotted path only
    "webhookproject": {"submissions", "api", "alerts", "handlers"},
    # metrics and readiness sit beside the project package, at the top
    "observability": {"webhookproject", "submissions", "alerts", "handlers"},
    "alerts": {"submissions", "handlers"},
    "api": {"submissions", "handlers"},
    "submissions": {"handlers"},
    "example_handlers": {"handlers"},
    "handlers": set(),
}
#: The handler authors' test kit reaches the project on purpose (lazily).
EXCEPTIONS = {"handlers.testing"}
#: Longest product module (tests, migrations and bench/ aside).
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in APPS}


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    if module in EXCEPTIONS:
        return
    app = module.split(".")[0]
    wrong = {
        name
        for name in _imports(MODULES[module], module)
        if name.split(".")[0] != app and name.split(".")[0] not in ALLOWED[app]
    }
    assert not wrong, f"{module} imports {sorted(wrong)} against docs/layout.md"


def _module_level_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        deps = set()
        for node in tree.body:  # module level only: what runs at import time
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = {node.module} | {
                    f"{node.module}.{a.name}" for a in node.names
                }
                deps.update(t for t in targets if t in MODULES)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in MODULES)
        graph[module] = deps - {module}
    return graph


def test_no_import_cycle():
    graph = _module_level_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            # a package's __init__ re-exporting its own modules is not a cycle
            if dep.startswith(node + "."):
                continue
            if state.get(dep) == 1 and not node.startswith(dep + "."):
                raise AssertionError(" -> ".join([*path[path.index(dep) :], dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_product_module_is_over_the_limit(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, (
        f"{module} has {lines} lines; split it by use (docs/layout.md)"
    )


def test_the_layout_doc_names_every_module():
    text = (ROOT / "docs" / "layout.md").read_text()
    missing = [
        module
        for module, path in MODULES.items()
        if path.name != "__init__.py"
        and "/management/commands/" not in str(path)
        and path.stem not in text
    ]
    assert not missing, f"docs/layout.md does not mention {missing}"
