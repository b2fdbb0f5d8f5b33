"""The package layout of ADR 0010 holds: lower layers never import higher ones, no module-level
import cycle, and each native module or SDK has one home."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "perago"

# What each part of perago may import at module level (ADR 0010). "bench" and "cli" sit on top.
ALLOWED: dict[str, set[str]] = {
    "perago": set(),
    "errors": set(),
    "host": set(),
    "metrics": {"errors"},
    "config": {"errors", "host", "metrics"},
    "definition": {"errors", "host", "metrics"},
    "engine": {"_native", "errors"},
    "attempt": {"definition", "engine", "host", "errors", "metrics"},
    "lakefs": {"attempt", "definition", "engine", "config", "errors", "host"},
    "conductor": {"attempt", "config", "errors", "definition"},
    "runtime": {
        "attempt",
        "conductor",
        "config",
        "definition",
        "engine",
        "errors",
        "host",
        "lakefs",
        "metrics",
    },
    # The OpenTelemetry side of observers and supervisors; runtime imports it only lazily.
    "telemetry": {"attempt", "config", "definition", "errors", "metrics", "runtime"},
    "devservers": {"host", "errors"},
    "demo": {"config", "errors", "host", "lakefs"},
    "bench": {"*"},
    "cli": {"*"},
}

# Third-party SDKs and the native module, and the only places allowed to import them.
HOMES = {
    "conductor": ("perago.conductor", "perago.bench.worker"),  # bench: the bare-SDK baseline
    "lakefs_sdk": ("perago.lakefs.client",),
    "perago._native": ("perago.engine",),
    "opentelemetry": ("perago.telemetry", "perago.metrics.otel"),
    "prometheus_client": ("perago.telemetry.prometheus",),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, *, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue
        if module_level and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child, module_level=module_level)


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _imported(module_level: bool) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in _imports(tree, module_level=module_level):
            found.update(_targets(node, package))
        graph[name] = found
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return "_native" if parts[1:2] == ["_native"] else (parts[1] if len(parts) > 1 else "perago")


def _internal(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    modules = set(_modules())
    return {
        name: {target for target in targets if target in modules and target != name}
        for name, targets in graph.items()
    }


def test_every_part_imports_only_the_layers_below_it() -> None:
    graph = _imported(module_level=True)
    wrong = []
    for name, targets in graph.items():
        part = _part(name)
        allowed = ALLOWED.get(part)
        assert allowed is not None, f"{name}: {part} is not in ADR 0010's table"
        for target in targets:
            if not target.startswith("perago."):
                continue
            other = _part(target)
            if other not in (part, "perago") and "*" not in allowed and other not in allowed:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_no_module_level_import_cycle() -> None:
    graph = _internal(_imported(module_level=True))
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("library", sorted(HOMES))
def test_each_sdk_and_the_native_module_have_one_home(library: str) -> None:
    graph = _imported(module_level=False)
    outside = sorted(
        name
        for name, targets in graph.items()
        if any(t == library or t.startswith(library + ".") for t in targets)
        and not name.startswith(HOMES[library])
    )
    assert outside == []
