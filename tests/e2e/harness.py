"""Drive real ``perago start`` subprocesses against the real Conductor (and lakeFS) servers.

A test writes a tiny task module into a temporary project directory, registers its TaskDef and a
one-task workflow, starts ``perago start`` there as a subprocess, starts workflows over REST and
waits for them. Nothing here fakes a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lakefs_sdk
import requests
from pydantic import SecretStr

from perago.config import LakeFSConfig
from tests.integration.publication_support import commit_files, diff_paths, sdk_client
from tests.run_cli_support import clean_environment, lakectl_env, run_captured
from tests.servers_fixture import LakefsRepo, LakefsServer

PERAGO = str(Path(sys.executable).with_name("perago"))
TERMINAL = {"COMPLETED", "FAILED", "TERMINATED", "TIMED_OUT"}
WORKSPACE_INPUTS = {
    "workspace": "${workflow.input.workspace}",
    "params": "${workflow.input.params}",
}


class ConductorRest:
    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = requests.Session()

    def register_workflow(self, name: str, task_name: str, inputs: Mapping[str, str]) -> None:
        definition: dict[str, Any] = {
            "name": name,
            "version": 1,
            "schemaVersion": 2,
            "ownerEmail": "tests@example.com",
            "tasks": [
                {
                    "name": task_name,
                    "taskReferenceName": f"{task_name}_ref",
                    "type": "SIMPLE",
                    "inputParameters": dict(inputs),
                }
            ],
        }
        response = self.http.put(f"{self.api_url}/metadata/workflow", json=[definition], timeout=30)
        response.raise_for_status()

    def start_workflow(self, name: str, inputs: Mapping[str, Any]) -> str:
        response = self.http.post(f"{self.api_url}/workflow/{name}", json=dict(inputs), timeout=30)
        response.raise_for_status()
        return response.text.strip().strip('"')

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        response = self.http.get(
            f"{self.api_url}/workflow/{workflow_id}", params={"includeTasks": "true"}, timeout=30
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def decide(self, workflow_id: str) -> requests.Response:
        """``PUT /workflow/decide/{id}``: Conductor's decider evaluates the workflow now."""
        return self.http.put(f"{self.api_url}/workflow/decide/{workflow_id}", timeout=30)

    def wait(
        self, workflow_id: str, timeout: float = 120.0, *, deciding: bool = False
    ) -> dict[str, Any]:
        """Wait for the workflow to end; ``deciding``: ask Conductor to evaluate it every second.

        Conductor notices a response timeout only when its sweeper re-evaluates the workflow,
        which for a freshly retried (SCHEDULED) task is ~30 s later; ``PUT /workflow/decide``
        runs that same evaluation now. It changes when Conductor looks, never what it decides.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.workflow(workflow_id)
            if state["status"] in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"workflow {workflow_id} still {state['status']}: {state}")
            if deciding:
                self.decide(workflow_id)
                time.sleep(1.0)
            else:
                time.sleep(0.3)

    def wait_for_task_status(
        self, workflow_id: str, status: str, timeout: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for task in self.workflow(workflow_id).get("tasks", []):
                if task["status"] == status:
                    return dict(task)
            time.sleep(0.2)
        raise AssertionError(f"no task of {workflow_id} reached {status}")


@dataclass
class Project:
    """A temporary project directory with one task module and its ``.env``."""

    root: Path
    module: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def workspaces(self) -> Path:
        return self.root / "workspaces"

    def run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return run_captured([PERAGO, *args], cwd=self.root, env=self._env(), timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [PERAGO, "start", self.module, *args],
            cwd=self.root,
            env=self._env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _env(self) -> dict[str, str]:
        return clean_environment(self.env)

    def events(self, message: str | None = None) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.logs.rglob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                event = json.loads(line)
                if message is None or event.get("message") == message:
                    found.append(event)
        return found

    def wait_for_event(
        self, message: str, timeout: float = 60.0, count: int = 1
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events(message)
            if len(events) >= count:
                return events
            time.sleep(0.2)
        raise AssertionError(f"fewer than {count} {message!r} events in {self.logs}")


def lakefs_config(url: str, access_key_id: str, secret_access_key: str) -> LakeFSConfig:
    return LakeFSConfig(
        endpoint_url=url,
        access_key_id=access_key_id,
        secret_access_key=SecretStr(secret_access_key),
    )


def lakectl_dotenv(config: LakeFSConfig) -> dict[str, str]:
    """The ``LAKECTL_*`` lines of a project's ``.env`` naming ``config``'s lakeFS."""
    secret = config.secret_access_key.get_secret_value()
    return lakectl_env(config.endpoint_url, config.access_key_id, secret)


def make_project(
    tmp_path: Path,
    module: str,
    source: str,
    *,
    conductor_api_url: str,
    dotenv: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    name: str = "project",
) -> Project:
    """Write ``source`` as module ``module`` (any character that cannot stand in a module name
    becomes ``_``, so a test's unique name can be part of it) and the project's ``.env``."""
    module = re.sub(r"\W", "_", module)
    root = tmp_path / name
    root.mkdir()
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    values = {
        "CONDUCTOR_SERVER_URL": conductor_api_url,
        "PERAGO_WORKSPACE_ROOT": str(root / "workspaces"),
        "PERAGO_LOG_ROOT": str(root / "logs"),
        **(dotenv or {}),
    }
    lines = [f"{key}={value}" for key, value in values.items()]
    (root / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    project = Project(root, module, dict(env or {}))
    return project


def stop(process: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """SIGTERM ``perago start`` and wait; if it does not drain in time, SIGKILL it and its
    worker process groups (so a failed test leaves nothing running) and re-raise."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for worker in child_pids(process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker, signal.SIGKILL)  # each worker leads its own group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(worker, signal.SIGKILL)
        process.kill()
        process.communicate()
        raise
    return process.returncode, out, err


@dataclass
class Deployment:
    """A project whose TaskDef and one-task workflow are registered in the real Conductor."""

    project: Project
    rest: ConductorRest
    workflow: str

    def start_workflow(self, inputs: Mapping[str, Any]) -> str:
        return self.rest.start_workflow(self.workflow, inputs)

    def run_one(self, inputs: Mapping[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        """Start ``perago start``, run one workflow to its end, stop and require a clean exit."""
        worker = self.project.start()
        try:
            return self.rest.wait(self.start_workflow(inputs), timeout=timeout)
        finally:
            code, _out, err = stop(worker)
            assert code == 0, err


@dataclass
class DeployedApp:
    """A test's deployment with what its test needs next to it (subclasses add fields)."""

    deployment: Deployment

    @property
    def project(self) -> Project:
        return self.deployment.project

    @property
    def rest(self) -> ConductorRest:
        return self.deployment.rest


def deploy(
    project: Project, rest: ConductorRest, name: str, inputs: Mapping[str, str]
) -> Deployment:
    """``perago register`` the project's task, then a workflow ``<name>_wf`` mapping ``inputs``."""
    registered = project.run("register", project.module)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == f"created: {name}"
    rest.register_workflow(f"{name}_wf", name, inputs)
    return Deployment(project, rest, f"{name}_wf")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8")
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Workspace:
    """The test's lakeFS repository: seeded main branch, branch heads, commits, staging branches."""

    def __init__(self, server: LakefsServer, repo: LakefsRepo) -> None:
        self.config = lakefs_config(server.url, server.access_key_id, server.secret_access_key)
        self.repo = repo.name
        self.seed = commit_files(self.config, self.repo, "main", {"data/seed.txt": b"seed"})
        self.branches = lakefs_sdk.BranchesApi(sdk_client(self.config))
        self.commits = lakefs_sdk.CommitsApi(sdk_client(self.config))

    def head(self, branch: str = "main") -> str:
        return str(self.branches.get_branch(self.repo, branch).commit_id)

    def branch(self, name: str) -> None:
        self.branches.create_branch(
            self.repo, lakefs_sdk.BranchCreation(name=name, source=self.seed, hidden=False)
        )

    def input(self, branch: str = "main") -> dict[str, str]:
        return {"repository": self.repo, "branch": branch, "ref_type": "commit", "ref": self.seed}

    def changed(self, ref: str) -> list[str]:
        return sorted(diff_paths(self.config, self.repo, self.seed, ref))

    def parents(self, ref: str) -> list[str]:
        return [str(p) for p in self.commits.get_commit(self.repo, ref).parents]

    def metadata(self, ref: str) -> dict[str, str]:
        return dict(self.commits.get_commit(self.repo, ref).metadata or {})

    def staging_branches(self) -> list[str]:
        names = [str(b.id) for b in self.branches.list_branches(self.repo, amount=1000).results]
        return [n for n in names if n not in {"main"} and n.startswith("perago")]
