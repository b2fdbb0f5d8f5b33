"""The one place where perago's worker runtime talks to the conductor-python SDK.

Everything else in perago sees :class:`TaskAttempt` and plain dicts; this module maps the SDK's
polled ``Task`` to an attempt, a perago result to the SDK's ``TaskResult``, reloads a task by id for
the attempt fence, reads/creates/updates TaskDefs, and builds the SDK worker object whose
``execute`` the SDK's ``TaskRunner`` calls (with lease extension enabled).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from conductor.client.configuration.configuration import Configuration
from conductor.client.configuration.settings.authentication_settings import (
    AuthenticationSettings,
)
from conductor.client.http.api.task_resource_api import TaskResourceApi
from conductor.client.http.api_client import ApiClient
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus
from conductor.client.http.rest import ApiException
from conductor.client.worker.worker_interface import WorkerInterface

from perago.attempt.decision import GONE, UNKNOWN, PredecessorState, ReferenceAttempt
from perago.attempt.identity import TaskAttempt
from perago.attempt.staging import StagingTaskState
from perago.config import DEFAULT_CONTROL_TIMEOUT_SECONDS, conductor_auth
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


def sdk_configuration(server_url: str, env: Mapping[str, str] | None = None) -> Configuration:
    """The SDK configuration for ``server_url`` with the key pair found in ``env``.

    ``env`` is the merged ``.env`` + environment (``RuntimeConfig.merged_env``); the key and
    secret are passed to the SDK explicitly, so no command has to export them to ``os.environ``
    first, and without a pair in ``env`` there is no authentication whatever ``os.environ``
    holds. ``env=None`` keeps the SDK's own behaviour (it reads ``os.environ``).

    conductor-python then asks ``POST <server>/token`` for a token when its ``ApiClient`` is
    built; a server without authentication (Conductor OSS) answers 404, which makes the SDK
    clear the settings on this object and go on without authentication.
    """
    # The SDK logs its own configuration at INFO on every process; keep its noise at WARNING.
    if env is None:
        return Configuration(server_api_url=server_url.rstrip("/"), log_level=logging.WARNING)
    auth = conductor_auth(env)
    settings = (
        None
        if auth is None
        else AuthenticationSettings(
            key_id=auth.key_id, key_secret=auth.key_secret.get_secret_value()
        )
    )
    configuration = Configuration(
        server_api_url=server_url.rstrip("/"),
        authentication_settings=settings,
        log_level=logging.WARNING,
    )
    # Given no settings the SDK falls back to os.environ; env is the only source here.
    configuration.authentication_settings = settings
    return configuration


# conductor-python's per-worker settings (conductor.worker.<task>.<property> and friends) as perago
# treats them: these pass through from the merged .env + environment ...
SDK_WORKER_PASSTHROUGH = ("domain", "poll_interval", "poll_timeout")
# ... and these perago controls itself (thread count = -j, lease extension, never paused, no
# registration by the SDK, the worker id that fences attempts); setting them has no effect.
SDK_WORKER_PINNED = (
    "thread_count",
    "lease_extend_enabled",
    "paused",
    "register_task_def",
    "worker_id",
    "overwrite_task_def",
    "strict_schema",
    "register_schema",
)
SDK_WORKER_PREFIXES = ("conductor_worker", "CONDUCTOR_WORKER", "conductor.worker")


def _sdk_worker_keys(task_name: str, prop: str) -> list[str]:
    """The variables conductor-python 2.0 reads for ``prop``, highest priority first.

    Mirrors ``conductor.client.worker.worker_config._get_env_value`` (and its
    ``polling_interval`` alias of ``poll_interval``).
    """
    specific = [
        f"conductor.worker.{task_name}.{prop}",
        f"conductor_worker_{task_name}_{prop}",
        f"CONDUCTOR_WORKER_{task_name.upper()}_{prop.upper()}",
        f"CONDUCTOR_WORKER_{task_name}_{prop.upper()}",
    ]
    if prop == "poll_interval":
        specific += [
            f"CONDUCTOR_WORKER_{task_name.upper()}_POLLING_INTERVAL",
            f"CONDUCTOR_WORKER_{task_name}_POLLING_INTERVAL",
        ]
    general = [
        f"conductor.worker.all.{prop}",
        f"CONDUCTOR_WORKER_ALL_{prop.upper()}",
        f"conductor_worker_{prop}",
        f"CONDUCTOR_WORKER_{prop.upper()}",
    ]
    return list(dict.fromkeys(specific + general))


def _sdk_lookup(env: Mapping[str, str], task_name: str, prop: str) -> tuple[str, str] | None:
    """(variable, value) the SDK would use for ``prop``, like its resolver (alias included)."""
    names = [prop, "polling_interval"] if prop == "poll_interval" else [prop]
    for name in names:
        for key in _sdk_worker_keys(task_name, name):
            if key in env:
                return key, env[key]
    return None


@dataclass(frozen=True)
class SdkWorkerSettings:
    """The conductor-python worker settings a perago worker of one task runs with.

    ``poll_interval_ms``/``poll_timeout_ms``/``domain`` are the effective values (perago's
    defaults unless a variable sets them; ``sources`` names those variables); ``ignored`` lists
    variables perago does not honour (pinned settings or invalid values), for one warning.
    """

    task_name: str
    domain: str | None = None
    poll_interval_ms: float = 100.0
    poll_timeout_ms: int = 100
    sources: Mapping[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For ``perago check --json`` (no secrets live here)."""
        return {
            "domain": self.domain,
            "poll_interval_ms": self.poll_interval_ms,
            "poll_timeout_ms": self.poll_timeout_ms,
            "sources": dict(self.sources),
            "ignored": list(self.ignored),
        }

    def describe(self) -> str:
        """One line for ``perago check``."""
        return (
            f"domain={self.domain or '(none)'} "
            f"poll_interval_ms={_milliseconds(self.poll_interval_ms)} "
            f"poll_timeout_ms={self.poll_timeout_ms}"
        )

    def ignored_warning(self) -> str | None:
        if not self.ignored:
            return None
        return (
            "ignoring conductor-python worker settings perago manages or cannot use: "
            + ", ".join(self.ignored)
        )

    def sdk_environment(self) -> dict[str, str]:
        """The only ``conductor.worker.*`` variables the SDK should see: what was configured,
        under the name the SDK reads first (``conductor.worker.<task>.<property>``)."""
        prefix = f"conductor.worker.{self.task_name}."
        values: dict[str, str] = {}
        if self.domain:
            values[prefix + "domain"] = self.domain
        if "poll_interval" in self.sources:
            values[prefix + "poll_interval"] = _milliseconds(self.poll_interval_ms)
        if "poll_timeout" in self.sources:
            values[prefix + "poll_timeout"] = str(self.poll_timeout_ms)
        return values


def _milliseconds(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _positive_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def sdk_worker_settings(task_name: str, env: Mapping[str, str]) -> SdkWorkerSettings:
    """Resolve the SDK worker settings of ``task_name`` from ``env`` the way conductor-python
    would (same variables, same priority), keeping only what perago lets through."""
    sources: dict[str, str] = {}
    ignored: list[str] = []
    domain: str | None = None
    interval, timeout = 100.0, 100
    found = _sdk_lookup(env, task_name, "domain")
    if found is not None:
        sources["domain"] = found[0]
        domain = found[1].strip() or None
    found = _sdk_lookup(env, task_name, "poll_interval")
    if found is not None:
        parsed = _positive_number(found[1].strip())
        if parsed is None:
            ignored.append(f"{found[0]} (not a positive number of milliseconds)")
        else:
            sources["poll_interval"], interval = found[0], parsed
    found = _sdk_lookup(env, task_name, "poll_timeout")
    if found is not None:
        text = found[1].strip()
        if text.isdigit() and int(text) > 0:
            sources["poll_timeout"], timeout = found[0], int(text)
        else:
            ignored.append(f"{found[0]} (not a positive integer of milliseconds)")
    for prop in SDK_WORKER_PINNED:
        ignored.extend(key for key in _sdk_worker_keys(task_name, prop) if key in env)
    return SdkWorkerSettings(
        task_name=task_name,
        domain=domain,
        poll_interval_ms=interval,
        poll_timeout_ms=timeout,
        sources=sources,
        ignored=tuple(ignored),
    )


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
        :mod:`perago.attempt.staging`): its status and naming fields; GONE when it is no longer
        part
        of its workflow, or not found while ``workflow_instance_id`` is readable and does not
        list it; UNKNOWN whenever nothing is proven (unreadable, or neither is known)."""
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


@dataclass(frozen=True)
class TaskDefDrift:
    """Keys whose registered value differs from the generated TaskDef."""

    keys: tuple[str, ...]

    def describe(self, name: str) -> str:
        return (
            f"registered Conductor TaskDef '{name}' differs from the generated one in: "
            f"{', '.join(self.keys)}; run perago register to update it"
        )


def _normalise_schema_ref(value: Any) -> Any:
    # Conductor echoes schema references with extra server-side fields; compare what we send.
    if isinstance(value, Mapping):
        return {k: value.get(k) for k in ("name", "version", "type", "data") if k in value}
    return value


def taskdef_drift(generated: Mapping[str, Any], registered: Mapping[str, Any]) -> TaskDefDrift:
    """Compare only the keys perago generates (the server adds its own bookkeeping fields)."""
    differing: list[str] = []
    for key, value in generated.items():
        expected, actual = value, registered.get(key)
        if key in ("inputSchema", "outputSchema"):
            expected, actual = _normalise_schema_ref(expected), _normalise_schema_ref(actual)
        if expected != actual:
            differing.append(key)
    return TaskDefDrift(tuple(differing))


# conductor-python heartbeats at 0.8 x responseTimeoutSeconds, from a thread that looks once a
# second, then needs an HTTP round trip: below this the lease can lapse under a healthy attempt.
MIN_LEASED_RESPONSE_TIMEOUT_SECONDS = 15


def short_lease_warning(task_name: str, registered: Mapping[str, Any]) -> str | None:
    """A warning when the registered response timeout is too short for lease extension."""
    response = registered.get("responseTimeoutSeconds")
    if not isinstance(response, int) or response >= MIN_LEASED_RESPONSE_TIMEOUT_SECONDS:
        return None
    return (
        f"TaskDef '{task_name}' has responseTimeoutSeconds={response}: the worker's lease "
        f"heartbeat comes every {0.8 * response:.1f}s, checked once a second, so Conductor may "
        "time out a healthy attempt; use TimeoutPolicy(response_seconds="
        f"{MIN_LEASED_RESPONSE_TIMEOUT_SECONDS}) or more"
    )


ExecuteFn = Callable[[Task], TaskResult]


class PeragoSdkWorker(WorkerInterface):  # type: ignore[misc]
    """The SDK worker object: one queue, one thread, lease extension on, no SDK registration."""

    def __init__(self, task_def_name: str, worker_id: str, execute_fn: ExecuteFn) -> None:
        super().__init__(task_def_name)
        self._worker_id = worker_id
        self._execute_fn = execute_fn
        self.thread_count = 1
        self.register_task_def = False
        self.register_schema = False
        self.lease_extend_enabled = True
        self.paused = False
        self.poll_interval = 100

    def get_identity(self) -> str:
        return self._worker_id

    def execute(self, task: Task) -> TaskResult:
        return self._execute_fn(task)


def process_worker_id(default: str) -> str:
    return os.environ.get("PERAGO_WORKER_ID") or default
