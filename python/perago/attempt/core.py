"""The attempt core: one task attempt from input validation to published output.

The core never talks to lakeFS or Conductor itself; it takes its collaborators as small callables
(download, reload-current-attempt, stage, publish, cleanup, no-op completion) so that a worker, the
``perago run`` command and unit tests can all drive the same phases:

1. validate wrapper, ``WorkspaceInput`` and params (before any download);
2. create the owner record (outside the workspace, heartbeating), the attempt directory and its
   marker, register the owner token;
3. download (returns the baseline snapshot);
4. pre guardrails; 5. body, output validation, post guardrails;
6. read-only: complete with the input ref;
7. change detection against the baseline (the workspace must still be the directory perago made,
   never a symlink; fifos, sockets and devices fail the attempt);
8. attempt fence; no change → no-op completion; change → stage → fence again → publish;
9. always: staging cleanup, attempt directory cleanup, owner unregistration — never changing the
   result.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from loguru import logger
from pydantic import BaseModel

from perago.attempt import faults
from perago.attempt.directory import (
    AttemptWorkspace,
    new_workspace_owner,
    open_attempt_workspace,
    register_active_workspace_owner,
    unregister_active_workspace_owner,
)
from perago.attempt.guard import BranchMoveGuard
from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.attempt.result import (
    DEFAULT_FAILURE_REASON_MAX_LENGTH,
    RuntimeTaskResult,
    completed_result,
    result_for_exception,
)
from perago.attempt.validation import (
    parse_workspace_free_task_input,
    parse_workspace_task_input,
    validate_task_output,
)
from perago.definition.decorator import TaskDefinition
from perago.definition.guardrails import GuardrailPhase, check_guardrails
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine.snapshot import ChangeSet, Snapshot, detect_changes, take_snapshot
from perago.errors import (
    GuardrailViolation,
    PostGuardrailViolation,
    PreGuardrailViolation,
    StaleAttemptError,
    TaskInputError,
)
from perago.metrics.api import MetricRecorder, TaskAttemptMetricContext

__all__ = [
    "LAKEFS_BRANCH_ID_MAX_LENGTH",
    "CleanupStaging",
    "CompleteNoopWorkspace",
    "DownloadWorkspace",
    "LoadCurrentAttempt",
    "PublishWorkspace",
    "StageWorkspace",
    "StagedWorkspace",
    "TaskExecutionContext",
    "assert_current_attempt_snapshot",
    "build_workspace_free_task_output",
    "build_workspace_task_output",
    "invoke_workspace_free_task",
    "invoke_workspace_task_body",
    "run_workspace_free_task_attempt",
    "run_workspace_task_attempt",
    "staging_branch_name",
]

# lakeFS validates branch ids only with ``^\w[-\w]*$`` (pkg/validator) and sets no length limit;
# the practical limit comes from its KV stores (DynamoDB sort keys ≤ 1024 bytes, holding the
# branch id plus a ``branches/`` path), so ids longer than this are shortened with a hash suffix.
LAKEFS_BRANCH_ID_MAX_LENGTH = 900
_BRANCH_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_BRANCH_HASH_LENGTH = 16


@dataclass(frozen=True)
class StagedWorkspace:
    """A staged attempt: the staging branch and the commit made on it."""

    repository: str
    branch: str
    commit: str


@dataclass(frozen=True)
class TaskExecutionContext:
    """An attempt plus its execution id; other attributes are read from the attempt.

    ``fence`` re-reads the attempt fence (docs/adr/0005) and raises ``StaleAttemptError``; the
    publisher calls it immediately before every branch move. ``guard`` refuses branch moves once the
    attempt's end is decided (the local deadline).
    """

    attempt: TaskAttempt
    execution_id: str
    fence: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)
    guard: BranchMoveGuard = field(default_factory=BranchMoveGuard, repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:
        # Only called for names the dataclass itself lacks: delegate to the wrapped attempt.
        if name == "attempt":
            raise AttributeError(name)
        return getattr(self.attempt, name)


class DownloadWorkspace(Protocol):
    def __call__(
        self, workspace: WorkspaceInput, spec: WorkspaceSpec, directory: Path, /
    ) -> Snapshot | None: ...


class LoadCurrentAttempt(Protocol):
    def __call__(self, attempt: TaskAttempt, /) -> Any: ...


class StageWorkspace(Protocol):
    def __call__(
        self,
        directory: Path,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
        /,
        *,
        changes: ChangeSet,
    ) -> StagedWorkspace: ...


class PublishWorkspace(Protocol):
    def __call__(
        self,
        staged: StagedWorkspace,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
        /,
    ) -> str: ...


class CleanupStaging(Protocol):
    def __call__(self, staged: StagedWorkspace, /) -> None: ...


class CompleteNoopWorkspace(Protocol):
    def __call__(
        self, workspace: WorkspaceInput, spec: WorkspaceSpec, context: TaskExecutionContext, /
    ) -> str: ...


def run_workspace_task_attempt(
    task: TaskDefinition,
    input_data: Mapping[str, Any],
    attempt: TaskAttempt,
    workspace_root: Path,
    *,
    download_workspace: DownloadWorkspace,
    load_current_attempt: LoadCurrentAttempt,
    stage_workspace: StageWorkspace,
    publish_workspace: PublishWorkspace,
    cleanup_staging: CleanupStaging,
    complete_noop_workspace: CompleteNoopWorkspace | None = None,
    owner_worker_id: str | None = None,
    execution_id: str | None = None,
    failure_reason_max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH,
    stats: AttemptStats | None = None,
    guard: BranchMoveGuard | None = None,
    metrics: MetricRecorder | None = None,
) -> RuntimeTaskResult:
    """Run one workspace attempt through every phase; exceptions become classified results.

    ``metrics`` is the recorder a metrics-enabled task's body gets (bound to this attempt here
    unless the caller bound it)."""
    if not task.has_workspace:
        raise TaskInputError("run_workspace_task_attempt only supports workspace tasks")
    spec = task.workspace
    if spec is None:
        raise TaskInputError("workspace task definition is missing WorkspaceSpec")
    stats = stats if stats is not None else AttemptStats()

    def fence() -> None:
        assert_current_attempt_snapshot(attempt, load_current_attempt(attempt))

    context = TaskExecutionContext(
        attempt=attempt,
        execution_id=execution_id or attempt.execution_id or uuid.uuid4().hex,
        fence=fence,
        guard=guard if guard is not None else BranchMoveGuard(),
    )
    owner = new_workspace_owner(owner_worker_id)
    recorder = _attempt_recorder(task, metrics, attempt, context.execution_id, owner_worker_id)
    register_active_workspace_owner(owner)
    workspace: AttemptWorkspace | None = None
    staged: StagedWorkspace | None = None
    try:
        with stats.phase("validate_input"):
            workspace_input, params = parse_workspace_task_input(task, input_data)
        with stats.phase("prepare"):
            # Owner record outside the workspace + heartbeat; the root is resolved once here.
            workspace = open_attempt_workspace(
                Path(workspace_root), attempt, execution_id=context.execution_id, owner=owner
            )
            attempt_dir = workspace.path
        with stats.phase("download"):
            baseline = download_workspace(workspace_input, spec, attempt_dir)
            if baseline is None and not spec.read_only:
                baseline = take_snapshot(attempt_dir)
        if baseline is not None:
            stats.files_downloaded += baseline.file_count
            stats.bytes_downloaded += baseline.total_bytes
            if baseline.fetch is not None:
                stats.fetch = baseline.fetch.as_log_fields()
        with stats.phase("body"):
            # Before the post guardrails look at it: the workspace must still be the directory
            # perago made (a body may have replaced it by a symlink to somewhere else).
            output = _run_workspace_body(
                task, spec, attempt_dir, params, after_body=workspace.verify, recorder=recorder
            )
        faults.reach("attempt.after_body", task_id=attempt.task_id)
        if spec.read_only:
            return completed_result(
                build_workspace_task_output(task, workspace_input, workspace_input.ref, output)
            )
        assert baseline is not None  # writable tasks always have one (see download phase)
        with stats.phase("detect_changes"):
            with workspace.pinned():  # still that directory: nothing was read from elsewhere
                changes = detect_changes(attempt_dir, baseline)
            refuse_unsupported_entries(changes)
        with stats.phase("fence"):
            fence()
        if not changes.changed:
            if complete_noop_workspace is None:
                raise TaskInputError(
                    "complete_noop_workspace callback is required for writable no-op "
                    "workspace completion"
                )
            with stats.phase("publish"):
                published_ref = complete_noop_workspace(workspace_input, spec, context)
        else:
            with stats.phase("stage"):
                staged = stage_workspace(
                    attempt_dir, workspace_input, spec, context, changes=changes
                )
            stats.files_uploaded += (
                len(changes.added) + len(changes.modified) + len(changes.type_changed)
            )
            stats.bytes_uploaded += (
                changes.added_bytes + changes.modified_bytes + changes.type_changed_bytes
            )
            stats.objects_deleted += len(changes.removed)
            faults.reach("attempt.after_stage", task_id=attempt.task_id)
            with stats.phase("fence"):
                fence()
            with stats.phase("publish"):
                published_ref = publish_workspace(staged, workspace_input, spec, context)
        return completed_result(
            build_workspace_task_output(task, workspace_input, published_ref, output)
        )
    except Exception as exc:
        return result_for_exception(exc, max_length=failure_reason_max_length)
    finally:
        with stats.phase("cleanup"):
            if staged is not None:
                _cleanup_staging_safely(cleanup_staging, staged, attempt)
            if workspace is not None:
                workspace.safe_cleanup(attempt)
            unregister_active_workspace_owner(owner)


def run_workspace_free_task_attempt(
    task: TaskDefinition,
    input_data: Mapping[str, Any],
    *,
    failure_reason_max_length: int = DEFAULT_FAILURE_REASON_MAX_LENGTH,
    stats: AttemptStats | None = None,
    metrics: MetricRecorder | None = None,
) -> RuntimeTaskResult:
    """Validate ``{"params": ...}``, call the function, validate its output; never raises."""
    if task.has_workspace:
        raise TaskInputError("run_workspace_free_task_attempt only supports workspace-free tasks")
    stats = stats if stats is not None else AttemptStats()
    try:
        with stats.phase("body"):
            return completed_result(invoke_workspace_free_task(task, input_data, metrics=metrics))
    except Exception as exc:
        return result_for_exception(exc, max_length=failure_reason_max_length)


def invoke_workspace_task_body(
    task: TaskDefinition,
    input_data: Mapping[str, Any],
    workspace_dir: Path,
    *,
    metrics: MetricRecorder | None = None,
) -> dict[str, Any]:
    """Only the body phase: validation, pre guardrails, call, output check, post guardrails.

    Returns ``{"result": ...}``; raises on any failure (unclassified).
    """
    spec = task.workspace
    if spec is None:
        raise TaskInputError("workspace task definition is missing WorkspaceSpec")
    _, params = parse_workspace_task_input(task, input_data)
    output = _run_workspace_body(task, spec, Path(workspace_dir), params, recorder=metrics)
    return {"result": output.model_dump(mode="json")}


def invoke_workspace_free_task(
    task: TaskDefinition,
    input_data: Mapping[str, Any],
    *,
    metrics: MetricRecorder | None = None,
) -> dict[str, Any]:
    """Validate params, call the function, return ``{"result": ...}``; raises on failure."""
    params = parse_workspace_free_task_input(task, input_data)
    if task.has_metrics:
        return build_workspace_free_task_output(task, task.fn(params, _required_recorder(metrics)))
    return build_workspace_free_task_output(task, task.fn(params))


def _required_recorder(recorder: MetricRecorder | None) -> MetricRecorder:
    if recorder is None:
        raise TaskInputError("metrics-enabled task invocation requires a MetricRecorder")
    return recorder


def _attempt_recorder(
    task: TaskDefinition,
    recorder: MetricRecorder | None,
    attempt: TaskAttempt,
    execution_id: str,
    worker_id: str | None,
) -> MetricRecorder | None:
    """``recorder`` bound to this attempt (as given when the caller already bound it)."""
    if recorder is None or not task.has_metrics or recorder.context is not None:
        return recorder
    return recorder.with_context(
        TaskAttemptMetricContext(
            task_name=task.name,
            task_id=attempt.task_id,
            workflow_instance_id=attempt.workflow_instance_id,
            execution_id=execution_id,
            worker_id=worker_id or attempt.worker_id or "",
            retry_count=attempt.retry_count,
        )
    )


def build_workspace_task_output(
    task: TaskDefinition, input_workspace: WorkspaceInput, published_ref: str, raw_result: object
) -> dict[str, Any]:
    """``{"workspace": <input at published_ref>, "result": <validated output>}``."""
    output = validate_task_output(task, raw_result)
    return {
        "workspace": input_workspace.published_output(published_ref).model_dump(mode="json"),
        "result": output.model_dump(mode="json"),
    }


def build_workspace_free_task_output(task: TaskDefinition, raw_result: object) -> dict[str, Any]:
    return {"result": validate_task_output(task, raw_result).model_dump(mode="json")}


def assert_current_attempt_snapshot(original: object, fresh: object) -> None:
    """The attempt fence (docs/adr/0005): raise StaleAttemptError unless ``fresh`` is still ours.

    ``fresh`` must be ``IN_PROGRESS`` with the same workflow id, task id and retry count, and —
    when both snapshots carry them — the same worker id and poll count.
    """
    for name in ("workflow_instance_id", "task_id", "retry_count"):
        _required_attribute(original, name)
    for name in ("status", "workflow_instance_id", "task_id", "retry_count"):
        _required_attribute(fresh, name)
    task_id = _required_attribute(original, "task_id")
    status = _required_attribute(fresh, "status")
    if status != "IN_PROGRESS":
        raise StaleAttemptError(f"{task_id}: task is {status}, no longer IN_PROGRESS")
    for name in ("workflow_instance_id", "task_id", "retry_count"):
        expected, actual = getattr(original, name), getattr(fresh, name)
        if expected != actual:
            raise StaleAttemptError(f"{task_id}: {name} changed from {expected!r} to {actual!r}")
    for name in ("worker_id", "poll_count"):
        expected, actual = getattr(original, name, None), getattr(fresh, name, None)
        if expected is not None and actual is not None and expected != actual:
            raise StaleAttemptError(
                f"{task_id}: {name} changed from {expected!r} to {actual!r} "
                "(the task was polled again)"
            )


def staging_branch_name(attempt: object) -> str:
    """Deterministic lakeFS staging branch id of an attempt (the format perago 0.6 used, kept so
    leftovers are recognised).

    ``perago-staging-<wf>-<ref name>-seq-<seq>-iteration-<it>-task-id-<id>-retry-<n>-exec-<exec>``
    with every value reduced to ``[A-Za-z0-9_-]``; ids longer than lakeFS accepts keep their
    beginning and end in a hash of the full id.
    """
    values = {
        name: _branch_segment(_required_attribute(attempt, name))
        for name in (
            "workflow_instance_id",
            "reference_task_name",
            "seq",
            "iteration",
            "task_id",
            "retry_count",
            "execution_id",
        )
    }
    name = (
        f"perago-staging-{values['workflow_instance_id']}-{values['reference_task_name']}"
        f"-seq-{values['seq']}-iteration-{values['iteration']}-task-id-{values['task_id']}"
        f"-retry-{values['retry_count']}-exec-{values['execution_id']}"
    )
    if len(name) <= LAKEFS_BRANCH_ID_MAX_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_BRANCH_HASH_LENGTH]
    return f"{name[: LAKEFS_BRANCH_ID_MAX_LENGTH - _BRANCH_HASH_LENGTH - 1]}-{digest}"


def _run_workspace_body(
    task: TaskDefinition,
    spec: WorkspaceSpec,
    directory: Path,
    params: BaseModel,
    *,
    after_body: Callable[[], object] | None = None,
    recorder: MetricRecorder | None = None,
) -> BaseModel:
    _check_phase(directory, spec, "pre")
    if task.has_metrics:
        raw = task.fn(directory, params, _required_recorder(recorder))
    else:
        raw = task.fn(directory, params)
    output = validate_task_output(task, raw)
    if after_body is not None:
        after_body()
    _check_phase(directory, spec, "post")
    return output


def _check_phase(directory: Path, spec: WorkspaceSpec, phase: GuardrailPhase) -> None:
    """The phase's guardrails; a failing one is raised as Pre- or PostGuardrailViolation."""
    violation: type[GuardrailViolation]
    if phase == "pre":
        guardrails, violation = spec.pre, PreGuardrailViolation
    else:
        guardrails, violation = spec.post, PostGuardrailViolation
    try:
        check_guardrails(directory, guardrails, phase)
    except violation:
        raise
    except GuardrailViolation as exc:
        raise violation(str(exc)) from exc


def refuse_unsupported_entries(changes: ChangeSet) -> None:
    """Fail on fifos, sockets and devices in the workspace (lakeFS stores regular files only),
    naming the first one; they never make a change set "changed", so without this an attempt
    whose only change is one would complete as a no-op."""
    if not changes.unsupported:
        return
    path, kind = changes.unsupported[0]
    more = len(changes.unsupported) - 1
    others = f" (and {more} more unsupported entr{'y' if more == 1 else 'ies'})" if more else ""
    raise TaskInputError(
        f"workspace publication supports only regular files; {path} is a {kind}{others}"
    )


def _cleanup_staging_safely(
    cleanup_staging: CleanupStaging, staged: StagedWorkspace, attempt: TaskAttempt
) -> None:
    try:
        cleanup_staging(staged)
    except Exception as exc:
        logger.bind(
            staging_branch=staged.branch,
            staging_commit=staged.commit,
            task_id=attempt.task_id,
            workflow_instance_id=attempt.workflow_instance_id,
        ).warning("failed to clean staging workspace: {}: {}", type(exc).__name__, exc)


def _required_attribute(value: object, name: str) -> Any:
    try:
        return getattr(value, name)
    except AttributeError:
        raise AttributeError(f"task is missing required attribute {name}") from None


def _branch_segment(value: object) -> str:
    text = _BRANCH_UNSAFE.sub("-", "unknown" if value is None else str(value)).strip("-_")
    return text or "unknown"
