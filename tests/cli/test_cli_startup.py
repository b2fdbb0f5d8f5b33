"""``perago --version``, ``perago --help`` and completing a command name stay cheap: the command
modules are imported lazily, so none pulls in the lakeFS or Conductor SDKs, and ``--version`` is
answered by the console-script entry point before typer (or pydantic, loguru...) is imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import perago
from perago.cli.app import COMMANDS
from tests.cli.conftest import Project

# Runs the console-script entry point with the given arguments, then reports every module loaded.
PROBE = """\
import json, sys
from perago.cli import main
sys.argv = ["perago", *sys.argv[1:]]
try:
    code = main()  # the console script exits with what main returns, or what it raises
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

SDKS = ("lakefs_sdk", "conductor")
# What `perago --version` must not import: no SDK, no telemetry, no native module, not even typer.
VERSION_ABSENT = (
    *SDKS,
    "pydantic",
    "loguru",
    "opentelemetry",
    "perago._native",
    "typer",
    "rich",
)
# The command modules of the root table (completing `perago <TAB>` needs only their names).
COMMAND_MODULES = tuple(entry.target.partition(":")[0] for entry in COMMANDS.values())


def _imported(modules: set[str], *names: str) -> list[str]:
    """Those of ``names`` (packages or modules) of which ``modules`` holds anything."""
    return sorted(
        name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)
    )


def _modules(
    project: Project, *args: str, env: dict[str, str] | None = None
) -> tuple[str, set[str]]:
    """The probe's stdout and every module it loaded (full names)."""
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=project.root,
        env={**project.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(completed.stderr.splitlines()[-1])
    assert report["code"] in (0, None), completed.stderr
    return completed.stdout, set(report["modules"])


def _loaded(project: Project, *args: str) -> tuple[str, set[str]]:
    """The probe's stdout and the top-level packages it loaded."""
    stdout, modules = _modules(project, *args)
    return stdout, {name.partition(".")[0] for name in modules}


@pytest.mark.parametrize(
    "args",
    [pytest.param(("--help",), id="help"), pytest.param(("bench", "--help"), id="bench-help")],
)
def test_startup_does_not_import_the_sdks(project: Project, args: tuple[str, ...]) -> None:
    stdout, top_level = _loaded(project, *args)
    assert "Usage" in stdout  # the probe really ran the CLI
    assert sorted(top_level.intersection(SDKS)) == []


def test_version_imports_nothing_heavy(project: Project) -> None:
    stdout, modules = _modules(project, "--version")
    assert stdout == f"{perago.__version__}\n"
    assert _imported(modules, *VERSION_ABSENT, *COMMAND_MODULES) == []


def test_completing_a_command_name_imports_no_command(project: Project) -> None:
    completing = {"_PERAGO_COMPLETE": "complete_bash", "COMP_WORDS": "perago ", "COMP_CWORD": "1"}
    stdout, modules = _modules(project, env=completing)
    assert stdout.split() == list(COMMANDS)
    assert _imported(modules, *SDKS, *COMMAND_MODULES) == []


def test_help_lists_every_command_without_importing_it(project: Project) -> None:
    stdout, modules = _modules(project, "--help")
    for name in ("check", "extract", "register", "start", "gc", "run", "dev", "bench"):
        assert f" {name} " in stdout
    assert _imported(modules, *COMMAND_MODULES) == []
