"""load_module_task: target rules, one task per module, reload and re-export."""

from __future__ import annotations

import importlib
import itertools
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perago import TaskDefinitionError, load_module_task
from perago.definition.decorator import TASK_ATTRIBUTE

_counter = itertools.count()

TASK_SOURCE = """
from pydantic import BaseModel
from perago import task

class Params(BaseModel):
    n: int

class Output(BaseModel):
    total: int

@task(name={name!r}, owner_email="a@b.c")
def {fn}(params: Params) -> Output:
    return Output(total=params.n)
"""


@pytest.fixture
def make_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, str]], str]]:
    """Write a uniquely named package from {relative module path: source}; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # rewritten sources must be re-read
    created: list[str] = []

    def make(files: dict[str, str]) -> str:
        package = f"perago_test_pkg_{next(_counter)}"
        root = tmp_path / package
        root.mkdir()
        (root / "__init__.py").write_text(files.pop("__init__", ""))
        for module, source in files.items():
            (root / f"{module}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        created.append(package)
        return package

    yield make
    for name in list(sys.modules):
        if any(name == p or name.startswith(f"{p}.") for p in created):
            del sys.modules[name]


def _task(name: str, fn: str = "run") -> str:
    return TASK_SOURCE.format(name=name, fn=fn)


def test_loads_the_single_task(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"mod": _task("demo")})
    definition = load_module_task(f"{package}.mod")
    assert definition.name == "demo"
    module = sys.modules[f"{package}.mod"]
    assert definition.fn is module.run
    assert getattr(module.run, TASK_ATTRIBUTE) is definition


def test_loading_twice_returns_the_same_definition(
    make_package: Callable[[dict[str, str]], str],
) -> None:
    package = make_package({"mod": _task("demo")})
    assert load_module_task(f"{package}.mod") is load_module_task(f"{package}.mod")


@pytest.mark.parametrize(
    "target",
    [
        "",
        "pkg/mod",
        "pkg\\mod",
        "pkg.mod:run",
        "pkg/mod.py",
        "mod.py",
        "app..x",
        ".app",
        "app.",
        "app.workers.features-build",
        "1app",
        "app.2x",
        "a b",
    ],
)
def test_rejects_targets_that_are_not_import_paths(target: str) -> None:
    message = "module target must be a Python import path, not a file path or object path"
    with pytest.raises(TaskDefinitionError, match=f"^{re.escape(message)}$"):
        load_module_task(target)


def test_rejects_non_string_target() -> None:
    with pytest.raises(TaskDefinitionError, match="module target must be a Python import path"):
        load_module_task(None)  # type: ignore[arg-type]


def test_import_errors_propagate_unchanged(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"broken": "import does_not_exist_anywhere\n"})
    with pytest.raises(ModuleNotFoundError, match="does_not_exist_anywhere"):
        load_module_task(f"{package}.broken")
    with pytest.raises(ModuleNotFoundError):
        load_module_task(f"{package}.missing")


def test_module_without_task(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"plain": "X = 1\n"})
    with pytest.raises(
        TaskDefinitionError,
        match=f"^{re.escape(f'{package}.plain does not declare a Perago task')}$",
    ):
        load_module_task(f"{package}.plain")


def test_module_with_two_tasks(make_package: Callable[[dict[str, str]], str]) -> None:
    source = _task("one", "first") + _task("two", "second")
    package = make_package({"two": source})
    with pytest.raises(
        TaskDefinitionError,
        match=f"^{re.escape(f'{package}.two declares more than one Perago task')}$",
    ):
        load_module_task(f"{package}.two")


def test_shadowed_second_task_still_counts_as_two(
    make_package: Callable[[dict[str, str]], str],
) -> None:
    # Both declarations ran in the same execution, even though one name now hides the other.
    package = make_package({"shadow": _task("one", "run") + _task("two", "run")})
    with pytest.raises(TaskDefinitionError, match="declares more than one Perago task"):
        load_module_task(f"{package}.shadow")


def test_reload_does_not_break_loading(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"mod": _task("v1")})
    target = f"{package}.mod"
    first = load_module_task(target)
    module = importlib.reload(sys.modules[target])
    second = load_module_task(target)
    assert second is not first
    assert second.name == "v1"
    assert second.fn is module.run


def test_reload_after_edit_picks_up_the_new_task(
    make_package: Callable[[dict[str, str]], str], tmp_path: Path
) -> None:
    package = make_package({"mod": _task("v1", "old_name")})
    target = f"{package}.mod"
    assert load_module_task(target).name == "v1"
    # The renamed function leaves the old one behind in the module namespace after reload.
    (tmp_path / package / "mod.py").write_text(_task("version-two", "new_name"))
    module = importlib.reload(sys.modules[target])
    assert hasattr(module, "old_name")
    definition = load_module_task(target)
    assert definition.name == "version-two"
    assert definition.fn is module.new_name


def test_reload_twice(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"mod": _task("demo")})
    target = f"{package}.mod"
    load_module_task(target)
    for _ in range(2):
        importlib.reload(sys.modules[target])
    assert load_module_task(target).fn is sys.modules[target].run


def test_re_exported_task_is_found(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"impl": _task("demo"), "entry": "from .impl import run\n"})
    definition = load_module_task(f"{package}.entry")
    assert definition is load_module_task(f"{package}.impl")


def test_re_exported_task_from_package_init(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"__init__": "from .impl import run as build\n", "impl": _task("demo")})
    assert load_module_task(package).name == "demo"


def test_re_export_under_two_names_is_one_task(
    make_package: Callable[[dict[str, str]], str],
) -> None:
    package = make_package({"impl": _task("demo"), "entry": "from .impl import run\nalias = run\n"})
    assert load_module_task(f"{package}.entry").name == "demo"


def test_re_export_plus_own_task_is_two(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package(
        {"impl": _task("a"), "entry": "from .impl import run\n" + _task("b", "own")}
    )
    with pytest.raises(TaskDefinitionError, match="declares more than one Perago task"):
        load_module_task(f"{package}.entry")


def test_reload_of_re_exporting_module(make_package: Callable[[dict[str, str]], str]) -> None:
    package = make_package({"impl": _task("demo"), "entry": "from .impl import run\n"})
    load_module_task(f"{package}.entry")
    importlib.reload(sys.modules[f"{package}.impl"])
    importlib.reload(sys.modules[f"{package}.entry"])
    definition = load_module_task(f"{package}.entry")
    assert definition is load_module_task(f"{package}.impl")
