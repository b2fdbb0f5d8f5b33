"""Staging-branch GC against the REAL lakeFS and Conductor: a branch is deleted only once
Conductor shows its task can no longer pass its fence, whatever its age or uncommitted state.

The test plays the worker itself over Conductor's REST API (poll → IN_PROGRESS, then a FAILED
update) and stages through the real ``LakeFSWorkspaceRuntime``; ``perago gc --lakefs`` runs as
the real command.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests

from perago.attempt.core import TaskExecutionContext, staging_branch_name
from perago.conductor.client import ConductorClient
from perago.conductor.mapping import task_to_attempt
from perago.config import LakeFSConfig
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine.snapshot import detect_changes
from perago.lakefs.workspace import LakeFSWorkspaceRuntime, StaleStagingBranch
from tests.e2e.harness import Project, make_project
from tests.servers_fixture import ConductorServer

from .publication_support import commit_files

pytestmark = pytest.mark.integration

SPEC = WorkspaceSpec(prefix="data")


class Conductor:
    """Just enough of Conductor's REST API to act as a worker of one task type."""

    def __init__(self, server: ConductorServer, name: str) -> None:
        self.api = server.api_url.rstrip("/")
        self.http = requests.Session()
        self.task_name = name
        taskdef: dict[str, Any] = {
            "name": name,
            "ownerEmail": "tests@example.com",
            "retryCount": 0,
            "timeoutSeconds": 0,
            "responseTimeoutSeconds": 3600,
        }
        self.http.post(
            f"{self.api}/metadata/taskdefs", json=[taskdef], timeout=30
        ).raise_for_status()
        workflow: dict[str, Any] = {
            "name": f"{name}_wf",
            "version": 1,
            "schemaVersion": 2,
            "ownerEmail": "tests@example.com",
            "tasks": [{"name": name, "taskReferenceName": f"{name}_ref", "type": "SIMPLE"}],
        }
        self.http.put(
            f"{self.api}/metadata/workflow", json=[workflow], timeout=30
        ).raise_for_status()

    def poll_new_task(self) -> dict[str, Any]:
        """Start a workflow and poll its task (Conductor marks it IN_PROGRESS for us)."""
        started = self.http.post(f"{self.api}/workflow/{self.task_name}_wf", json={}, timeout=30)
        started.raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            polled = self.http.get(
                f"{self.api}/tasks/poll/{self.task_name}",
                params={"workerid": "test-worker"},
                timeout=30,
            )
            polled.raise_for_status()
            if polled.content and polled.json():
                task: dict[str, Any] = polled.json()
                return task
            time.sleep(0.1)
        raise AssertionError("the task was never handed out")

    def fail(self, task: dict[str, Any]) -> None:
        result = {
            "taskId": task["taskId"],
            "workflowInstanceId": task["workflowInstanceId"],
            "status": "FAILED",
            "reasonForIncompletion": "the worker crashed (test)",
            "workerId": "test-worker",
        }
        self.http.post(f"{self.api}/tasks", json=result, timeout=30).raise_for_status()


@pytest.fixture
def conductor(conductor_server: ConductorServer, unique_name: str) -> Conductor:
    return Conductor(conductor_server, unique_name.replace("-", "_"))


@pytest.fixture
def runtime(lakefs_config: LakeFSConfig) -> Iterator[LakeFSWorkspaceRuntime]:
    runtime = LakeFSWorkspaceRuntime(lakefs_config)
    try:
        yield runtime
    finally:
        runtime.control.close()


class Servers(NamedTuple):
    """The real servers of one test, unpacked in its first line."""

    lakefs: LakeFSConfig
    repo: str
    runtime: LakeFSWorkspaceRuntime
    conductor: Conductor


@pytest.fixture
def servers(
    lakefs_config: LakeFSConfig, repo: str, runtime: LakeFSWorkspaceRuntime, conductor: Conductor
) -> Servers:
    return Servers(lakefs_config, repo, runtime, conductor)


def _project(
    tmp_path: Path, config: LakeFSConfig, conductor_url: str | None, name: str = "gc"
) -> Project:
    project = make_project(
        tmp_path,
        "unused_module",
        "",
        conductor_api_url=conductor_url or "",
        dotenv={
            "LAKECTL_SERVER_ENDPOINT_URL": config.endpoint_url,
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": config.access_key_id,
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": config.secret_access_key.get_secret_value(),
            "PERAGO_WORKSPACE_GC_TTL": "1s",
        },
        name=name,
    )
    if conductor_url is None:  # no CONDUCTOR_SERVER_URL line at all
        env_file = project.root / ".env"
        lines = env_file.read_text().splitlines()
        env_file.write_text("\n".join(x for x in lines if not x.startswith("CONDUCTOR_")) + "\n")
    return project


def _context(client: ConductorClient, task: dict[str, Any]) -> TaskExecutionContext:
    attempt = task_to_attempt(client.get_task(task["taskId"]), execution_id=uuid.uuid4().hex)
    assert attempt.execution_id is not None
    return TaskExecutionContext(attempt=attempt, execution_id=attempt.execution_id)


def _staging(runtime: LakeFSWorkspaceRuntime, repository: str) -> list[str]:
    return sorted(name for name, _ in runtime.control.iter_branches(repository, "perago-staging-"))


def test_live_staging_branches_survive_gc_and_go_once_their_task_ended(
    tmp_path: Path, servers: Servers
) -> None:
    lakefs_config, repo, runtime, conductor = servers
    seed = commit_files(lakefs_config, repo, "main", {"data/seed.txt": b"seed"})
    time.sleep(1.5)  # A is now older than the 1 s TTL: age must not matter
    workspace = WorkspaceInput(repository=repo, branch="main", ref_type="commit", ref=seed)
    client = ConductorClient(conductor.api)
    task = conductor.poll_new_task()

    # Branch 1: the attempt crashed right after creating its staging branch (head A, nothing
    # uncommitted) — what the old age rule took for abandoned.
    early = _context(client, task)
    runtime.control.create_branch(repo, staging_branch_name(early), seed)
    # Branch 2: staged and committed (head C carries the attempt's metadata).
    staged_context = _context(client, task)
    directory = tmp_path / "attempt"
    baseline = runtime.download_workspace(workspace, SPEC, directory)
    (directory / "new.txt").write_text("new")
    staged = runtime.stage_workspace(
        directory, workspace, SPEC, staged_context, changes=detect_changes(directory, baseline)
    )
    # Not attempts of any Conductor task: kept whatever happens.
    runtime.control.create_branch(repo, "perago-staging-made-by-hand", seed)
    local = staging_branch_name(
        task_to_attempt(
            {**_snake(task), "workflow_instance_id": "local-x", "task_id": "local-x"},
            execution_id="e",
        )
    )
    runtime.control.create_branch(repo, local, seed)
    every = sorted(
        [staging_branch_name(early), staged.branch, "perago-staging-made-by-hand", local]
    )
    assert _staging(runtime, repo) == every

    project = _project(tmp_path, lakefs_config, conductor.api)
    kept: list[StaleStagingBranch] = []
    assert runtime.list_stale_staging_branches(repo, client, kept) == []
    reasons = {item.branch: item.reason for item in kept}
    assert reasons[staging_branch_name(early)] == f"task {task['taskId']} is IN_PROGRESS"
    assert reasons[staged.branch] == f"task {task['taskId']} is IN_PROGRESS"
    assert reasons["perago-staging-made-by-hand"] == "the name names no attempt"
    assert reasons[local].startswith("task local-x cannot be proven gone")
    collected = project.run("gc", "--lakefs", repo)
    assert collected.returncode == 0, collected.stderr
    assert "0 staging branch(es) removed" in collected.stdout
    assert _staging(runtime, repo) == every

    conductor.fail(task)  # the worker is gone; Conductor ended the task
    collected = project.run("gc", "--lakefs", repo)
    assert collected.returncode == 0, collected.stderr
    assert f"removed staging branch: {repo}/{staged.branch} (task {task['taskId']} is FAILED)" in (
        collected.stdout
    )
    assert "2 staging branch(es) removed" in collected.stdout
    assert _staging(runtime, repo) == sorted(["perago-staging-made-by-hand", local])


def test_without_conductor_gc_deletes_no_staging_branch(tmp_path: Path, servers: Servers) -> None:
    lakefs_config, repo, runtime, conductor = servers
    seed = commit_files(lakefs_config, repo, "main", {"data/seed.txt": b"seed"})
    task = conductor.poll_new_task()
    context = _context(ConductorClient(conductor.api), task)
    runtime.control.create_branch(repo, staging_branch_name(context), seed)
    conductor.fail(task)  # even an ended task's branch: nothing can be proven without Conductor
    project = _project(tmp_path, lakefs_config, None)
    collected = project.run("gc", "--lakefs", repo)
    assert collected.returncode == 0, collected.stderr
    assert "note: staging branches not collected: CONDUCTOR_SERVER_URL is not set" in (
        collected.stderr
    )
    assert _staging(runtime, repo) == [staging_branch_name(context)]


def _snake(task: dict[str, Any]) -> dict[str, Any]:
    """The REST task's fields task_to_attempt reads, in its snake_case spelling."""
    return {
        "workflow_instance_id": task["workflowInstanceId"],
        "task_id": task["taskId"],
        "retry_count": task["retryCount"],
        "task_def_name": task["taskDefName"],
        "reference_task_name": task["referenceTaskName"],
        "seq": task["seq"],
        "status": task["status"],
        "input_data": task.get("inputData") or {},
    }
