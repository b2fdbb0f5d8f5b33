"""Running the real ``perago`` console script in a throwaway project directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
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


SERVER_PREFIXES = ("PERAGO_", "LAKECTL_", "CONDUCTOR_")


def clean_environment(
    values: Mapping[str, str] | None = None, *, without: tuple[str, ...] = SERVER_PREFIXES
) -> dict[str, str]:
    """This process's environment minus every variable starting with one of ``without``
    (so nothing of the runner's own servers leaks into a subprocess), plus ``values``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(without)}
    env.update(values or {})
    return env


def lakectl_env(url: str, access_key_id: str, secret_access_key: str) -> dict[str, str]:
    """The ``LAKECTL_*`` variables (of an environment or a ``.env``) naming one lakeFS."""
    return {
        "LAKECTL_SERVER_ENDPOINT_URL": url,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": access_key_id,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": secret_access_key,
    }


def run_captured(
    argv: Sequence[str | Path], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end with text stdout/stderr captured; never raises on its exit code."""
    return subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_perago(
    project: Path, args: list[str], env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = clean_environment(
        {
            "PERAGO_WORKSPACE_ROOT": str(project.parent / "attempts"),
            "PERAGO_LOG_ROOT": str(project.parent / "logs"),
            **(env or {}),
        }
    )
    return run_captured([PERAGO, *args], cwd=project, env=full_env, timeout=300)
