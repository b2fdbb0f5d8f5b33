"""Conductor tasks and results in perago's terms: the SDK's polled ``Task`` becomes a
:class:`TaskAttempt`, a perago result becomes the SDK's ``TaskResult``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus

from perago.attempt.identity import TaskAttempt
from perago.errors import ConductorTaskError

_REQUIRED_STR_FIELDS = (
    "workflow_instance_id",
    "task_id",
    "task_def_name",
    "reference_task_name",
    "status",
)
_REQUIRED_INT_FIELDS = ("retry_count", "seq")

# A terminal result must stop being retried by Conductor; the SDK names the statuses.
_STATUS_BY_NAME = {
    "COMPLETED": TaskResultStatus.COMPLETED,
    "FAILED": TaskResultStatus.FAILED,
    "FAILED_WITH_TERMINAL_ERROR": TaskResultStatus.FAILED_WITH_TERMINAL_ERROR,
    "IN_PROGRESS": TaskResultStatus.IN_PROGRESS,
}


class ResultLike(Protocol):
    """What the adapter needs from perago.attempt.result.RuntimeTaskResult."""

    @property
    def status(self) -> str: ...

    @property
    def output(self) -> Mapping[str, Any] | None: ...

    @property
    def reason_for_incompletion(self) -> str | None: ...


def _field(task: Any, name: str) -> Any:
    if isinstance(task, Mapping):
        return task.get(name)
    return getattr(task, name, None)


def _timeout_seconds(task: Any) -> int | None:
    """The TaskDef's timeoutSeconds, which the polled task carries in its embedded definition."""
    for holder in (
        _field(task, "task_definition"),
        _field(_field(task, "workflow_task"), "task_definition"),
    ):
        if holder is None:
            continue
        value = _field(holder, "timeout_seconds")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def task_to_attempt(task: Any, *, execution_id: str | None = None) -> TaskAttempt:
    """Map an SDK ``Task`` (or a mapping with the same snake_case names) to a ``TaskAttempt``."""
    values: dict[str, Any] = {}
    for name in _REQUIRED_STR_FIELDS:
        value = _field(task, name)
        if not isinstance(value, str) or not value:
            raise ConductorTaskError(f"Conductor task is missing required field {name}")
        values[name] = value
    for name in _REQUIRED_INT_FIELDS:
        value = _field(task, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConductorTaskError(f"Conductor task is missing required field {name}")
        values[name] = value
    input_data = _field(task, "input_data")
    if input_data is None:
        input_data = {}
    if not isinstance(input_data, Mapping):
        raise ConductorTaskError("Conductor task field input_data must be a mapping")
    iteration = _field(task, "iteration")
    poll_count = _field(task, "poll_count")
    response_timeout = _field(task, "response_timeout_seconds")
    worker_id = _field(task, "worker_id")
    return TaskAttempt(
        input_data=dict(input_data),
        iteration=iteration if isinstance(iteration, int) else 0,
        worker_id=worker_id if isinstance(worker_id, str) and worker_id else None,
        poll_count=poll_count if isinstance(poll_count, int) else None,
        response_timeout_seconds=response_timeout if isinstance(response_timeout, int) else None,
        timeout_seconds=_timeout_seconds(task),
        execution_id=execution_id,
        **values,
    )


def result_to_task_result(
    attempt: TaskAttempt, result: ResultLike, *, worker_id: str
) -> TaskResult:
    """Map a perago result to the SDK's ``TaskResult`` reported under this process's worker id."""
    status = _STATUS_BY_NAME.get(str(result.status))
    if status is None:
        raise ValueError(f"unsupported task result status {result.status!r}")
    task_result = TaskResult(
        task_id=attempt.task_id,
        workflow_instance_id=attempt.workflow_instance_id,
        worker_id=worker_id,
        status=status,
    )
    if result.output is not None:
        task_result.output_data = dict(result.output)
    if result.reason_for_incompletion is not None:
        task_result.reason_for_incompletion = result.reason_for_incompletion
    return task_result


def requeue_task_result(task: Task, *, worker_id: str) -> TaskResult:
    """Hand a task back to the queue untouched (used while draining: never start new work)."""
    task_result = TaskResult(
        task_id=task.task_id,
        workflow_instance_id=task.workflow_instance_id,
        worker_id=worker_id,
        status=TaskResultStatus.IN_PROGRESS,
    )
    task_result.callback_after_seconds = 0
    return task_result
