"""Run the real installed ``perago`` console script in a clean, isolated environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# Variables that would make a test depend on the developer's shell.
_ISOLATED_PREFIXES = ("PERAGO_", "LAKECTL_", "CONDUCTOR_", "PYTHON")


def perago_executable() -> Path:
    """The console script of the environment running the tests (``.venv/bin/perago``)."""
    candidate = Path(sys.executable).parent / "perago"
    if candidate.exists():
        return candidate
    found = shutil.which("perago")
    assert found is not None, "the perago console script is not installed (run make install)"
    return Path(found)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def stdout_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


@dataclass
class Project:
    """A temporary project directory with its own roots, from which perago is run."""

    root: Path
    env: dict[str, str]

    def write(self, relative: str, source: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        return path

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        completed = subprocess.run(
            [str(perago_executable()), *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATED_PREFIXES)}
    env["PERAGO_WORKSPACE_ROOT"] = str(tmp_path / "roots" / "workspaces")
    env["PERAGO_LOG_ROOT"] = str(tmp_path / "roots" / "logs")
    return Project(root=root, env=env)


ProjectFactory = Callable[[], Project]
