"""Running the real ``perago`` console script in a throwaway project directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PERAGO = Path(sys.executable).with_name("perago")

TASK_MODULE = """
from pathlib import Path

from pydantic import BaseModel

from perago import WorkspaceSpec, task


class Params(BaseModel):
    name: str
    drop: str = ""


class Result(BaseModel):
    written: str


@task(name="write_named_file", owner_email="team@example.com",
      workspace=WorkspaceSpec(prefix="{prefix}"))
def write_named_file(workspace: Path, params: Params) -> Result:
    (workspace / "out").mkdir(exist_ok=True)
    (workspace / "out" / f"{{params.name}}.txt").write_text(params.name * 3)
    if params.drop:
        (workspace / params.drop).unlink()
    return Result(written=params.name)
"""


def make_project(root: Path, module: str, *, prefix: str = "data") -> Path:
    project = root / "project"
    project.mkdir()
    (project / f"{module}.py").write_text(TASK_MODULE.format(prefix=prefix))
    return project


def run_perago(
    project: Path, args: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LAKECTL_", "PERAGO_", "CONDUCTOR_"))
    }
    full_env["PERAGO_WORKSPACE_ROOT"] = str(project.parent / "attempts")
    full_env["PERAGO_LOG_ROOT"] = str(project.parent / "logs")
    full_env.update(env or {})
    return subprocess.run(
        [str(PERAGO), *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
