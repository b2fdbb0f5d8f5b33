"""The Conductor boundary: only ``perago/conductor/`` imports conductor-python or touches its
private attributes.

An AST scan of ``python/perago``. A private name counts as the SDK's when the installed
conductor-python defines or reads it (``obj._name`` outside ``self``/``cls``, a name-mangled
``_Class__name``, or ``getattr``/``setattr``/``hasattr`` with such a string). The bare
conductor-python worker in ``perago/bench/worker.py`` is the benchmark's baseline program, run in
its own interpreter from a string; perago never imports it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import conductor

import perago

PACKAGE = Path(perago.__file__).parent
BOUNDARY = PACKAGE / "conductor"
SDK_ROOT = Path(conductor.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


@cache
def _sdk_private_names() -> frozenset[str]:
    """Every private attribute/method name the installed SDK uses, and its class names."""
    names: set[str] = set()
    for path in SDK_ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                names.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _private(node.name):
                names.add(node.name)
            elif isinstance(node, ast.ClassDef):
                names.add(f"_{node.name.lstrip('_')}__")  # the name-mangling prefix
    return frozenset(names)


def _is_sdk_private(name: str) -> bool:
    if not _private(name):
        return False
    names = _sdk_private_names()
    return name in names or any(name.startswith(p) for p in names if p.endswith("__"))


def _is_conductor_module(name: str | None) -> bool:
    return name is not None and (name == "conductor" or name.startswith("conductor."))


def violations(source: str, filename: str) -> list[str]:
    """Each SDK import or SDK-private access in ``source``, as ``file:line: what``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        what: str | None = None
        if isinstance(node, ast.Import):
            if any(_is_conductor_module(alias.name) for alias in node.names):
                what = "imports conductor-python"
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_conductor_module(node.module):
                what = "imports conductor-python"
        elif isinstance(node, ast.Attribute):
            owner = node.value
            is_own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if not is_own and _is_sdk_private(node.attr):
                what = f"touches SDK private {node.attr}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            texts = [
                a.value
                for a in node.args
                if isinstance(a, ast.Constant) and isinstance(a.value, str)
            ]
            if called in ("getattr", "setattr", "hasattr", "delattr"):
                hits = [text for text in texts if _is_sdk_private(text)]
                what = f"touches SDK private {hits[0]}" if hits else None
            elif called in ("import_module", "__import__") and texts:
                what = "imports conductor-python" if _is_conductor_module(texts[0]) else None
        if what is not None:
            found.append((getattr(node, "lineno", 0), what))
    return [f"{filename}:{line}: {what}" for line, what in sorted(found)]


def test_only_the_conductor_package_touches_conductor_python() -> None:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if BOUNDARY in path.parents:
            continue
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    assert found == [], "move these into perago/conductor/ (or record why not):\n" + "\n".join(
        found
    )


def test_the_scan_finds_what_it_forbids() -> None:
    """The check is not vacuous: each form the boundary forbids is reported."""
    source = "\n".join(
        [
            "import conductor",
            "import conductor.client.automator.task_runner as tr",
            "from conductor.client.http.models.task import Task",
            "import importlib; importlib.import_module('conductor.client')",
            "runner._use_update_v2 = False",
            "pending = list(runner._running_tasks)",
            "runner._cleanup()",
            "getattr(runner, '_running_tasks')",
            "runner._TaskRunner__update_task(result)",
        ]
    )
    found = violations(source, "probe.py")
    assert [line.split(":")[1] for line in found] == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]


def test_perago_names_and_other_libraries_are_not_flagged() -> None:
    source = "\n".join(
        [
            "from perago.devservers import conductor",
            "from . import conductor",
            "self._use_update_v2 = True",
            "os._exit(3)",
            "config._merged_env",
        ]
    )
    assert violations(source, "ok.py") == []
