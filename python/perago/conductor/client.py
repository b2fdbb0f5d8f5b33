"""perago's REST calls to Conductor beyond the SDK's poll loop: TaskDefs and workflows, a task
reloaded for the attempt fence, and Conductor's view of other attempts (``predecessor_state``)
and of staging branches' tasks (``staging_task_state``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from conductor.client.context.task_context import get_task_context
from conductor.client.http.api.task_resource_api import TaskResourceApi
from conductor.client.http.api_client import ApiClient
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_exec_log import TaskExecLog
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.rest import ApiException

from perago.attempt.decision import GONE, UNKNOWN, PredecessorState, ReferenceAttempt
from perago.attempt.identity import TaskAttempt
from perago.attempt.staging import StagingTaskState
from perago.conductor.mapping import task_to_attempt
from perago.conductor.sdk_config import sdk_configuration
from perago.config import DEFAULT_CONTROL_TIMEOUT_SECONDS, RuntimeConfig
from perago.errors import ConductorTaskError


def describe_conductor_error(exc: BaseException) -> str:
    """One line for a Conductor API failure: status and the server's own message, no headers."""
    if isinstance(exc, ApiException):
        detail = str(getattr(exc, "reason", "") or "")
        body = getattr(exc, "body", None)
        try:
            parsed = json.loads(body) if isinstance(body, str | bytes) and body else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            messages = [str(parsed.get("message", ""))]
            for item in parsed.get("validationErrors") or []:
                if isinstance(item, dict) and item.get("message"):
                    messages.append(str(item["message"]))
            detail = "; ".join(m for m in messages if m) or detail
        return f"HTTP {exc.status}: {detail}"
    return f"{type(exc).__name__}: {exc}"


def _output_ref(output: Any) -> str | None:
    """The published ref in a workspace task's output (``workspace.ref``), if any."""
    workspace = output.get("workspace") if isinstance(output, Mapping) else None
    ref = workspace.get("ref") if isinstance(workspace, Mapping) else None
    return ref if isinstance(ref, str) else None


def _is_not_found(exc: BaseException) -> bool:
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    if status == 404:
        return True
    text = str(exc).lower()
    return "404" in text and "not" in text


class ConductorClient:
    """Metadata and task reads/writes perago needs beyond the SDK's own poll loop."""

    def __init__(
        self,
        server_url: str,
        *,
        timeout_seconds: float = DEFAULT_CONTROL_TIMEOUT_SECONDS,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``env``: the merged ``.env`` + environment holding the key pair, if any (see
        ``sdk_configuration``); every perago command passes ``RuntimeConfig.merged_env``."""
        self.server_url = server_url
        self.configuration = sdk_configuration(server_url, env)
        self.timeout_seconds = timeout_seconds
        self._api = ApiClient(configuration=self.configuration)
        self._tasks = TaskResourceApi(self._api)

    @classmethod
    def from_config(cls, config: RuntimeConfig) -> ConductorClient:
        """The client of ``config``'s Conductor, with its control timeout and merged env."""
        if config.conductor is None:
            raise ValueError("CONDUCTOR_SERVER_URL is not set")
        return cls(
            config.conductor.server_url,
            timeout_seconds=config.control_timeout.total_seconds(),
            env=config.merged_env,
        )

    def _call(self, path: str, method: str, *, body: Any = None, query: Any = None) -> Any:
        return self._api.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            response_type="object",
            auth_settings=["api_key"],
            _return_http_data_only=True,
            _request_timeout=self.timeout_seconds,
        )

    def get_taskdef(self, name: str) -> dict[str, Any] | None:
        """The registered TaskDef as Conductor returns it, or None when it is not registered."""
        try:
            found = self._call(f"/metadata/taskdefs/{name}", "GET")
        except ApiException as exc:
            if _is_not_found(exc):
                return None
            raise
        if not found:
            return None
        if not isinstance(found, dict):
            raise ConductorTaskError(f"Conductor returned an unexpected TaskDef for {name!r}")
        return found

    def register_taskdef(self, taskdef: Mapping[str, Any]) -> str:
        """Create the TaskDef, or update it when one with that name exists; returns the action."""
        existing = self.get_taskdef(str(taskdef["name"]))
        if existing is None:
            self._call("/metadata/taskdefs", "POST", body=[dict(taskdef)])
            return "created"
        self._call("/metadata/taskdefs", "PUT", body=dict(taskdef))
        return "updated"

    def register_workflow(self, workflow_def: Mapping[str, Any]) -> None:
        self._call("/metadata/workflow", "PUT", body=[dict(workflow_def)])

    def get_task(self, task_id: str) -> Task:
        return self._tasks.get_task(task_id, _request_timeout=self.timeout_seconds)

    def reload_attempt(self, attempt: TaskAttempt) -> TaskAttempt:
        """Fresh snapshot of the attempt's task, for the attempt fence."""
        return task_to_attempt(self.get_task(attempt.task_id), execution_id=attempt.execution_id)

    def predecessor_state(self, task_id: str, workflow_instance_id: str) -> PredecessorState:
        """Conductor's view of another attempt's task, for the publication decision.

        GONE when the task is not found or no longer part of its workflow (after a rerun);
        UNKNOWN when Conductor cannot be read (nothing is proven then).
        """
        try:
            task = self._call(f"/tasks/{task_id}", "GET")
            if not isinstance(task, dict) or not task:
                return PredecessorState(GONE, detail="task not found")
            workflow_tasks = self._workflow_tasks(workflow_instance_id)
        except ApiException as exc:
            if _is_not_found(exc):
                return PredecessorState(GONE, detail="task not found")
            return PredecessorState(UNKNOWN, detail=describe_conductor_error(exc))
        except Exception as exc:
            return PredecessorState(UNKNOWN, detail=describe_conductor_error(exc))
        if workflow_tasks is None:
            return PredecessorState(UNKNOWN, detail="the workflow lists no tasks")
        if task_id not in {item.get("taskId") for item in workflow_tasks}:
            return PredecessorState(GONE, detail="no longer part of the workflow")
        retry = task.get("retryCount")
        return PredecessorState(
            str(task.get("status", UNKNOWN)),
            retry_count=retry if isinstance(retry, int) else None,
        )

    def reference_attempts(
        self, workflow_instance_id: str, task_ref: str
    ) -> dict[str, ReferenceAttempt] | None:
        """Every attempt of ``task_ref`` in the workflow by task id; None when unreadable (or the
        workflow is gone, so nothing about its tasks can be proven)."""
        try:
            workflow_tasks = self._workflow_tasks(workflow_instance_id)
        except Exception:
            return None
        if workflow_tasks is None:
            return None
        return {
            str(item.get("taskId")): ReferenceAttempt(
                str(item.get("status")), _output_ref(item.get("outputData"))
            )
            for item in workflow_tasks
            if item.get("referenceTaskName") == task_ref
        }

    def staging_task_state(
        self, task_id: str, workflow_instance_id: str | None = None
    ) -> StagingTaskState:
        """Conductor's view of the task a staging branch belongs to (``perago gc --lakefs``,
        :mod:`perago.attempt.staging`): its status and naming fields; GONE when it is no longer part
        of its workflow, or not found while ``workflow_instance_id`` is readable and does not list
        it; UNKNOWN whenever nothing is proven (unreadable, or neither is known)."""
        try:
            try:
                task = self._call(f"/tasks/{task_id}", "GET")
            except ApiException as exc:
                if not _is_not_found(exc):
                    raise
                task = None
            if not isinstance(task, dict) or not task:
                if workflow_instance_id is None:
                    return StagingTaskState(UNKNOWN, detail="task not found")
                try:
                    listed = self._workflow_tasks(workflow_instance_id)
                except ApiException as exc:
                    if _is_not_found(exc):
                        return StagingTaskState(
                            UNKNOWN, detail="neither the task nor its workflow is known"
                        )
                    raise
                if listed is None or task_id in {item.get("taskId") for item in listed}:
                    return StagingTaskState(UNKNOWN, detail="task not found")
                return StagingTaskState(
                    GONE, detail="task not found and its workflow does not list it"
                )
            workflow = task.get("workflowInstanceId")
            listed = self._workflow_tasks(str(workflow)) if isinstance(workflow, str) else None
        except Exception as exc:
            return StagingTaskState(UNKNOWN, detail=describe_conductor_error(exc))

        def number(name: str) -> int | None:
            value = task.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        reference = task.get("referenceTaskName")
        state = StagingTaskState(
            str(task.get("status") or UNKNOWN),
            workflow_instance_id=workflow if isinstance(workflow, str) else None,
            reference_task_name=reference if isinstance(reference, str) else None,
            seq=number("seq"),
            iteration=number("iteration"),
            retry_count=number("retryCount"),
            poll_count=number("pollCount"),
        )
        if listed is None:
            return replace(state, status=UNKNOWN, detail="the workflow lists no tasks")
        if task_id not in {item.get("taskId") for item in listed}:
            return replace(state, status=GONE, detail="no longer part of its workflow")
        return state

    def _workflow_tasks(self, workflow_instance_id: str) -> list[dict[str, Any]] | None:
        """The workflow's tasks; None when the answer has no task list (nothing is proven)."""
        workflow = self._call(
            f"/workflow/{workflow_instance_id}", "GET", query=[("includeTasks", "true")]
        )
        tasks = workflow.get("tasks") if isinstance(workflow, dict) else None
        if not isinstance(tasks, list):
            return None
        return [item for item in tasks if isinstance(item, dict)]

    def update_task(self, task_result: TaskResult) -> None:
        self._tasks.update_task(body=task_result, _request_timeout=self.timeout_seconds)

    # Conductor keeps this many entries of one result's ``logs`` and drops the rest (its
    # ``conductor.app.taskExecLogSizeLimit``, 10 by default).
    RESULT_LOGS_LIMIT = 10
    LOG_TEXT_MAX_LENGTH = 2000

    @classmethod
    def plain_log_text(cls, text: str) -> str:
        """``text`` as one line that conductor-python's REST layer sends unchanged.

        It sends a text body as ``json.dumps(text).strip('"')``, so quotes, backslashes, control
        and non-ASCII characters would reach Conductor escaped: ``"`` becomes ``'``, ``\\``
        becomes ``/``, tabs and newlines a space, anything else outside printable ASCII ``?``;
        at most ``LOG_TEXT_MAX_LENGTH`` characters.
        """
        out = []
        for char in text[: cls.LOG_TEXT_MAX_LENGTH]:
            if char == '"':
                out.append("'")
            elif char == "\\":
                out.append("/")
            elif char in "\t\n\r":
                out.append(" ")
            elif " " <= char <= "~":
                out.append(char)
            else:
                out.append("?")
        return "".join(out)

    def add_task_log(self, task_id: str, text: str) -> None:
        """Append one execution log entry to the task (``POST /tasks/{taskId}/log``; Conductor
        stamps it with its own clock). ``text`` goes through :meth:`plain_log_text`."""
        self._api.call_api(
            f"/tasks/{task_id}/log",
            "POST",
            query_params=[],
            header_params={"Content-Type": "application/json"},
            body=self.plain_log_text(text),
            response_type=None,
            auth_settings=["api_key"],
            _return_http_data_only=True,
            _request_timeout=self.timeout_seconds,
        )

    @staticmethod
    def add_logs_to_result(task_id: str, entries: Iterable[tuple[str, int]]) -> bool:
        """Add ``(text, epoch milliseconds)`` entries to the result the SDK will report for
        ``task_id``, when that task is the one this thread executes for the SDK's runner.

        The runner merges its task context's logs into the result ``execute`` returns (the
        public ``TaskContext.add_log`` path), and Conductor stores a result's ``logs`` as the
        task's execution logs: no request of its own. False (nothing added) on any other thread
        or task, e.g. the deadline watchdog's.
        """
        try:
            context = get_task_context()
        except RuntimeError:
            return False
        if context.get_task_id() != task_id:
            return False
        result = context.task_result
        if result.logs is None:
            result.logs = []
        result.logs.extend(
            TaskExecLog(log=text, task_id=task_id, created_time=created_ms)
            for text, created_ms in entries
        )
        return True
