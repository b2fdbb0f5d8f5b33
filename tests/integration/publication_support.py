"""Helpers for the publication integration tests: seeding a real lakeFS repo and running
attempts of small task definitions through the real LakeFSWorkspaceRuntime."""

from __future__ import annotations

import base64
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lakefs_sdk
from pydantic import BaseModel

from perago.attempt.core import StagedWorkspace, TaskExecutionContext, run_workspace_task_attempt
from perago.attempt.decision import UNKNOWN, PredecessorState
from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.attempt.result import RuntimeTaskResult
from perago.config import LakeFSConfig
from perago.definition.decorator import TaskDefinition
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec, workspace_task_input
from perago.engine.snapshot import ChangeSet
from perago.lakefs.client import api_base_url
from perago.lakefs.workspace import LakeFSWorkspaceRuntime


class EditParams(BaseModel):
    write: dict[str, str] = {}
    delete: list[str] = []


class EditOutput(BaseModel):
    written: int


def _edit(workspace: Path, params: EditParams) -> EditOutput:
    for relative, text in params.write.items():
        (workspace / relative).parent.mkdir(parents=True, exist_ok=True)
        (workspace / relative).write_text(text, encoding="utf-8")
    for relative in params.delete:
        (workspace / relative).unlink()
    return EditOutput(written=len(params.write))


def edit_task(prefix: str = "data") -> TaskDefinition:
    return TaskDefinition(
        name="edit_files",
        owner_email="team@example.com",
        fn=_edit,
        params_model=EditParams,
        output_model=EditOutput,
        workspace=WorkspaceSpec(prefix=prefix),
    )


def make_attempt(workflow: str = "wf-1", retry: int = 0, ref_name: str = "edit") -> TaskAttempt:
    return TaskAttempt(
        workflow_instance_id=workflow,
        task_id=f"task-{uuid.uuid4().hex[:8]}",
        retry_count=retry,
        task_def_name="edit_files",
        reference_task_name=ref_name,
        seq=1,
        status="IN_PROGRESS",
        input_data={},
        worker_id="worker0001",
        poll_count=1,
    )


def sdk_client(config: LakeFSConfig) -> lakefs_sdk.ApiClient:
    return lakefs_sdk.ApiClient(
        lakefs_sdk.Configuration(
            host=api_base_url(config.endpoint_url),
            username=config.access_key_id,
            password=config.secret_access_key.get_secret_value(),
        )
    )


def commit_files(
    config: LakeFSConfig,
    repository: str,
    branch: str,
    files: Mapping[str, bytes],
    *,
    metadata: Mapping[str, str] | None = None,
    message: str = "seed",
) -> str:
    """Upload ``files`` one by one with the SDK and commit; returns the commit id."""
    client = sdk_client(config)
    for path, content in files.items():
        put_object(config, repository, branch, path, content)
    commit = lakefs_sdk.CommitsApi(client).commit(
        repository,
        branch,
        lakefs_sdk.CommitCreation(
            message=message, metadata=dict(metadata or {}), date=None, allow_empty=False
        ),
    )
    return str(commit.id)


def put_object(
    config: LakeFSConfig, repository: str, branch: str, path: str, content: bytes
) -> None:
    """Raw streaming upload through the REST API (independent of perago's engine)."""
    query = urllib.parse.urlencode({"path": path})
    url = (
        f"{api_base_url(config.endpoint_url)}/repositories/{repository}/branches/"
        f"{urllib.parse.quote(branch)}/objects?{query}"
    )
    token = base64.b64encode(
        f"{config.access_key_id}:{config.secret_access_key.get_secret_value()}".encode()
    ).decode()
    request = urllib.request.Request(
        url,
        data=content,
        method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def read_object(config: LakeFSConfig, repository: str, ref: str, path: str) -> bytes:
    return bytes(lakefs_sdk.ObjectsApi(sdk_client(config)).get_object(repository, ref, path))


def diff_paths(config: LakeFSConfig, repository: str, left: str, right: str) -> list[str]:
    refs = lakefs_sdk.RefsApi(sdk_client(config))
    paths: list[str] = []
    after = ""
    while True:
        page = refs.diff_refs(repository, left, right, after=after, amount=1000)
        paths.extend(str(item.path) for item in page.results)
        if not page.pagination.has_more:
            return paths
        after = page.pagination.next_offset


@dataclass
class RecordedTaskStates:
    """Conductor's verdict on earlier attempts, as a table (perago's TaskStateReader interface).

    These lakeFS-only tests pin the Conductor state of each earlier attempt; the same decisions
    against the real Conductor are covered by tests/e2e/test_publication_faults.py.
    """

    states: dict[str, PredecessorState] = field(default_factory=dict)

    def set(self, attempt: TaskAttempt, status: str) -> None:
        self.states[attempt.task_id] = PredecessorState(status, retry_count=attempt.retry_count)

    def predecessor_state(self, task_id: str, workflow_instance_id: str) -> PredecessorState:
        return self.states.get(task_id, PredecessorState(UNKNOWN, detail="not recorded"))


@dataclass
class AttemptRun:
    """Runs attempts through the real runtime, capturing the staged commit and change set."""

    runtime: LakeFSWorkspaceRuntime
    workspace_root: Path
    states: RecordedTaskStates = field(default_factory=RecordedTaskStates)
    staged: list[StagedWorkspace] = field(default_factory=list)
    changes: list[ChangeSet] = field(default_factory=list)
    before_publish: Callable[[], object] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stats: list[AttemptStats] = field(default_factory=list)

    def run(
        self,
        task: TaskDefinition,
        repository: str,
        branch: str,
        ref: str,
        params: Mapping[str, Any],
        *,
        attempt: TaskAttempt | None = None,
    ) -> RuntimeTaskResult:
        def stage(
            directory: Path,
            workspace: WorkspaceInput,
            spec: WorkspaceSpec,
            context: TaskExecutionContext,
            *,
            changes: ChangeSet,
        ) -> StagedWorkspace:
            staged = self.runtime.stage_workspace(
                directory, workspace, spec, context, changes=changes
            )
            with self.lock:
                self.staged.append(staged)
                self.changes.append(changes)
            return staged

        def publish(
            staged: StagedWorkspace,
            workspace: WorkspaceInput,
            spec: WorkspaceSpec,
            context: TaskExecutionContext,
        ) -> str:
            if self.before_publish is not None:
                self.before_publish()
            return self.runtime.publish_workspace(staged, workspace, spec, context)

        input_data = workspace_task_input(repository, branch, ref, dict(params))
        stats = AttemptStats()
        with self.lock:
            self.stats.append(stats)
        return run_workspace_task_attempt(
            task,
            input_data,
            attempt or make_attempt(),
            self.workspace_root,
            download_workspace=self.runtime.download_workspace,
            load_current_attempt=lambda current: current,
            stage_workspace=stage,
            publish_workspace=publish,
            cleanup_staging=self.runtime.cleanup_staging,
            complete_noop_workspace=self.runtime.complete_noop_workspace,
            stats=stats,
        )
