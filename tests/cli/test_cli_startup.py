"""``perago --version`` and ``perago --help`` stay cheap: the command modules are imported lazily,
so neither pulls in the lakeFS or Conductor SDKs (and ``--version`` not even pydantic or loguru)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import perago
from tests.cli.conftest import Project

# Runs the console-script entry point with the given arguments, then reports every module loaded.
PROBE = """\
import json, sys
from perago.cli import main
sys.argv = ["perago", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""

SDKS = ("lakefs_sdk", "conductor")


def _loaded(project: Project, *args: str) -> tuple[str, set[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(completed.stderr.splitlines()[-1])
    assert report["code"] in (0, None), completed.stderr
    return completed.stdout, {name.partition(".")[0] for name in report["modules"]}


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        pytest.param(("--version",), (*SDKS, "pydantic", "loguru"), id="version"),
        pytest.param(("--help",), SDKS, id="help"),
        pytest.param(("bench", "--help"), SDKS, id="bench-help"),
    ],
)
def test_startup_does_not_import_the_sdks(
    project: Project, args: tuple[str, ...], absent: tuple[str, ...]
) -> None:
    stdout, top_level = _loaded(project, *args)
    assert stdout
    assert sorted(top_level.intersection(absent)) == []
    # The probe really ran the CLI: its version output, or the listing of every command.
    if args == ("--version",):
        assert stdout == f"{perago.__version__}\n"


def test_help_lists_every_command_without_importing_it(project: Project) -> None:
    stdout, _ = _loaded(project, "--help")
    for name in ("check", "extract", "register", "start", "gc", "run", "dev", "bench"):
        assert f" {name} " in stdout
