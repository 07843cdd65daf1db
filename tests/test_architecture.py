"""The parts of the layering contract import-linter does not state (its layers contract
is in pyproject.toml and runs in CI): no module imports itself back through others, and
no import hides inside a function to dodge such a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.db_independent  # reads source files only

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "common",
    "audit",
    "tenants",
    "keys",
    "approvals",
    "notifications",
    "gateway",
    "oversight",
    "config",
)

# Function-level imports that are not there to break a cycle, and why.
ALLOWED_IN_FUNCTIONS = {
    # Celery imports config.celery before Django is set up; the startup checks read
    # settings and run only once the worker has started.
    ("config/celery.py", "_require_secret_key"),
    ("config/celery.py", "_start_telemetry"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level or not node.module:
        return set()
    else:
        names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return {name for name in names if name in modules}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module):
    """Imports that run when the module is imported (not annotations-only ones)."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        targets: set[str] = set()
        for node in _module_level_imports(tree):
            targets |= _imported(node, modules)
        graph[name] = targets - {name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_circles():
    assert _circles(_graph()) == []


def test_the_circle_finder_finds_circles():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _function_imports() -> list[tuple[str, str, str]]:
    modules = _modules()
    found = []
    for path in modules.values():
        relative = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if function.name == "ready":  # AppConfig.ready: Django's place for wiring
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    module = node.module if isinstance(node, ast.ImportFrom) else None
                    module = module or node.names[0].name
                    if module.split(".")[0] in APPS:
                        found.append((relative, function.name, module))
    return found


def test_no_imports_inside_functions():
    hidden = [
        found for found in _function_imports() if (found[0], found[1]) not in ALLOWED_IN_FUNCTIONS
    ]
    assert hidden == []


@pytest.mark.parametrize("allowed", sorted(ALLOWED_IN_FUNCTIONS))
def test_every_allowed_function_import_still_exists(allowed):
    assert allowed in {(path, function) for path, function, _ in _function_imports()}


def _edge_contract():
    """The edge_layers contract as pyproject.toml configures it (config/import_contracts.py)."""
    import tomllib

    from config.import_contracts import EdgeLayersContract

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in options["contracts"] if c["type"] == "edge_layers"]
    return EdgeLayersContract(
        name=contract["name"],
        session_options={},
        contract_options={k: v for k, v in contract.items() if k not in ("name", "type")},
    )


@pytest.mark.parametrize(
    ("importer", "imported", "refused"),
    [
        ("tenants.services", "audit.services", False),  # a core imports downward
        ("audit.chain", "tenants.models", True),  # ... never upward
        ("approvals.gate", "approvals.api.presenter", True),  # a core imports no edge
        ("tenants.api.views", "approvals.door", False),  # an edge imports any core
        ("keys.api.views", "gateway.api.views", True),  # ... no other app's edge
        ("keys.admin", "tenants.admin_base", False),  # ... but the shared kit
        ("gateway.api.mcp", "common.api.views", False),
        ("audit.api.views", "tenants.models", True),  # audit's edge: nothing above audit
        ("approvals.services", "config.settings", True),  # no layer imports config
    ],
)
def test_edges_have_contracts_too(importer, imported, refused):
    contract = _edge_contract()
    assert (contract._refusal(importer, imported) is not None) == refused
    assert not contract._excepted(importer, imported)
