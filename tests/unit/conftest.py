"""Small task definitions shared by the attempt-core unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conductor.client.http.models.task import Task
from pydantic import BaseModel

from perago.attempt.identity import TaskAttempt
from perago.config import RuntimeConfig, load_runtime_config
from perago.definition.controls import PublishBudget
from perago.definition.decorator import TaskDefinition
from perago.definition.guardrails import require_file
from perago.definition.workspace import WorkspaceSpec


class Inner(BaseModel):
    level: int = 0


class Params(BaseModel):
    name: str
    inner: Inner = Inner()
    items: list[Inner] = []


class Output(BaseModel):
    ok: bool
    note: str = ""


def _writes_file(workspace: Path, params: Params) -> Output:
    (workspace / f"{params.name}.txt").write_text(params.name)
    return Output(ok=True)


def _changes_nothing(workspace: Path, params: Params) -> Output:
    return Output(ok=True, note="noop")


def _returns_mapping(params: Params) -> dict[str, object]:
    return {"ok": True, "note": params.name}


def make_task(
    fn: object = _writes_file,
    *,
    prefix: str = "audio",
    read_only: bool = False,
    strict: bool = True,
    pre: list[object] | None = None,
    post: list[object] | None = None,
    workspace: bool = True,
) -> TaskDefinition:
    spec = (
        WorkspaceSpec(prefix=prefix, read_only=read_only, pre=pre or [], post=post or [])
        if workspace
        else None
    )
    return TaskDefinition(
        name="render_audio",
        owner_email="team@example.com",
        fn=fn,  # type: ignore[arg-type]
        params_model=Params,
        output_model=Output,
        workspace=spec,
        strict_params=strict,
    )


def make_attempt(**changes: object) -> TaskAttempt:
    fields: dict[str, object] = {
        "workflow_instance_id": "wf-1",
        "task_id": "task-1",
        "retry_count": 0,
        "task_def_name": "render_audio",
        "reference_task_name": "render",
        "seq": 3,
        "status": "IN_PROGRESS",
        "input_data": {},
        "iteration": 0,
        "worker_id": "worker0001",
        "poll_count": 1,
        "execution_id": "exec-1",
    }
    fields.update(changes)
    return TaskAttempt(**fields)  # type: ignore[arg-type]


def make_sdk_task(task_id: str = "task-9", workflow_id: str = "wf-9", **extra: Any) -> Task:
    """A polled workspace-free task of task definition ``t``, as the SDK hands it to a worker."""
    return Task(
        task_id=task_id,
        workflow_instance_id=workflow_id,
        task_def_name="t",
        reference_task_name="t_ref",
        status="IN_PROGRESS",
        retry_count=0,
        seq=1,
        poll_count=1,
        response_timeout_seconds=600,
        input_data={"params": {}},
        **extra,
    )


def scratch_runtime_config(root: Path) -> RuntimeConfig:
    """The runtime config of module ``mod`` with its workspaces and logs under ``root``."""
    return load_runtime_config(
        "mod",
        cwd=root,
        process_env={
            "PERAGO_WORKSPACE_ROOT": str(root / "w"),
            "PERAGO_LOG_ROOT": str(root / "l"),
        },
    )


# The publish budget the definition tests give their tasks.
BUDGET = PublishBudget(
    observed_merge_p99_seconds=20,
    safety_margin_seconds=25,
    lakefs_merge_timeout_seconds=45,
    conductor_completion_timeout_seconds=15,
    worker_shutdown_grace_seconds=30,
    heartbeat_interval_seconds=10,
)


WORKSPACE = {"repository": "repo", "branch": "main", "ref_type": "commit", "ref": "c0ffee"}

__all__ = [
    "BUDGET",
    "WORKSPACE",
    "Output",
    "Params",
    "_changes_nothing",
    "_returns_mapping",
    "make_attempt",
    "make_task",
    "require_file",
]
