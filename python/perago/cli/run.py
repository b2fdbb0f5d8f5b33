"""``perago run``: one attempt of a task without Conductor.

* workspace-free task: ``--params`` only;
* ``--workspace DIR``: the directory is copied into an attempt directory (the original is never
  touched), the body runs there, and the result plus the change summary are printed;
* ``--lakefs REPO@REF[:BRANCH]``: the commit REF resolves to is downloaded; only with
  ``--publish`` the change is staged and published to BRANCH (default: REF when it is a branch).

Bad input is one ``error: <message>`` line on stderr and exit status 1; a task that fails prints
its result and exits 1.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)

from perago.attempt.core import (
    StagedWorkspace,
    TaskExecutionContext,
    run_workspace_free_task_attempt,
    run_workspace_task_attempt,
)
from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.attempt.result import RuntimeTaskResult
from perago.cli.messages import echo_error
from perago.cli.support import MODULE_ARGUMENT
from perago.config import RuntimeConfig, load_runtime_config
from perago.definition.decorator import TaskDefinition, load_module_task
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec, workspace_task_input
from perago.engine.snapshot import ChangeSet, Snapshot, take_snapshot
from perago.engine.transfer import TransferProgress
from perago.errors import PeragoError
from perago.lakefs.client import LakeFSError
from perago.lakefs.workspace import LakeFSWorkspaceRuntime
from perago.metrics.api import DiscardingMetricRecorder, MetricRecorder, TaskAttemptMetricContext

__all__ = ["parse_lakefs_target", "run_command"]

_LOCAL_REF = "local"
_SUMMARY_PATH_LIMIT = 20


class RunUsageError(PeragoError):
    """A problem with the command line itself; printed as one ``error:`` line."""


@dataclass(frozen=True)
class LakeFSTarget:
    repository: str
    ref: str
    branch: str | None


@dataclass
class _ChangeRecorder:
    """Keeps the change set the core hands to staging, for the summary."""

    changes: ChangeSet | None = None
    published: bool = field(default=False)


def parse_lakefs_target(text: str) -> LakeFSTarget:
    """``REPO@REF[:BRANCH]`` → its parts; every part must be non-empty."""
    repository, at, rest = text.partition("@")
    ref, colon, branch = rest.partition(":")
    if not at or not repository or not ref or (colon and not branch):
        raise RunUsageError(f"--lakefs must look like REPO@REF[:BRANCH], got {text!r}")
    return LakeFSTarget(repository=repository, ref=ref, branch=branch or None)


_PARAMS = typer.Option(..., "--params", help="Params as JSON, or @file with JSON.")
_WORKSPACE = typer.Option(None, "--workspace", help="Run against a copy of this local directory.")
_LAKEFS = typer.Option(None, "--lakefs", help="Run against lakeFS: REPO@REF[:BRANCH].")
_PUBLISH = typer.Option(
    False, "--publish", help="With --lakefs: stage and publish the change to BRANCH."
)


def run_command(
    module: str = MODULE_ARGUMENT,
    params: str = _PARAMS,
    workspace: Path | None = _WORKSPACE,
    lakefs: str | None = _LAKEFS,
    publish: bool = _PUBLISH,
) -> None:
    """Run one attempt of a task locally, without Conductor."""
    try:
        result = _run(module, params, workspace, lakefs, publish)
    except (RunUsageError, LakeFSError) as exc:
        _fail(str(exc))
    except Exception as exc:  # a CLI never shows a traceback
        _fail(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
    typer.echo(json.dumps(result.conductor_payload(), indent=2, sort_keys=False))
    if result.status != "COMPLETED":
        typer.echo(f"error: task {result.status}: {result.reason_for_incompletion}", err=True)
        raise typer.Exit(1)


def _fail(message: str) -> None:
    echo_error(message)
    raise typer.Exit(1)


def _run(
    module: str, params_text: str, workspace: Path | None, lakefs: str | None, publish: bool
) -> RuntimeTaskResult:
    if workspace is not None and lakefs is not None:
        raise RunUsageError("--workspace and --lakefs cannot be used together")
    if publish and lakefs is None:
        raise RunUsageError("--publish requires --lakefs")
    params = _read_params(params_text)
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: the project is importable
    task = load_module_task(module)
    config = load_runtime_config(module)
    if task.workspace is None:
        if workspace is not None or lakefs is not None:
            raise RunUsageError(f"{module} is workspace-free; drop --workspace/--lakefs")
        return run_workspace_free_task_attempt(
            task,
            {"params": params},
            failure_reason_max_length=config.failure_reason_max_length,
            metrics=_local_recorder(task, _local_attempt(task, {"params": params})),
        )
    if lakefs is not None:
        return _run_on_lakefs(
            task,
            spec=task.workspace,
            config=config,
            params=params,
            target=parse_lakefs_target(lakefs),
            publish=publish,
        )
    if workspace is None:
        raise RunUsageError(
            f"{module} is a workspace task; pass --workspace DIR or --lakefs REPO@REF"
        )
    return _run_on_directory(task, config, params, workspace)


def _read_params(text: str) -> Any:
    source = "--params"
    if text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RunUsageError(f"cannot read params file {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunUsageError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}") from None


def _local_attempt(task: TaskDefinition, input_data: Mapping[str, Any]) -> TaskAttempt:
    run_id = uuid.uuid4().hex
    return TaskAttempt(
        workflow_instance_id=f"local-{run_id}",
        task_id=f"local-{run_id}",
        retry_count=0,
        task_def_name=task.name,
        reference_task_name=task.name,
        seq=0,
        status="IN_PROGRESS",
        input_data=input_data,
        execution_id=run_id,
    )


def _run_on_directory(
    task: TaskDefinition, config: RuntimeConfig, params: Any, source: Path
) -> RuntimeTaskResult:
    if not source.is_dir():
        raise RunUsageError(f"--workspace {source} is not a directory")
    input_data = workspace_task_input(_LOCAL_REF, _LOCAL_REF, _LOCAL_REF, params)
    recorder = _ChangeRecorder()

    def copy_in(_: WorkspaceInput, __: WorkspaceSpec, directory: Path) -> Snapshot:
        shutil.copytree(source, directory, symlinks=True, dirs_exist_ok=True)
        return take_snapshot(directory)

    result = _run_attempt(task, config, input_data, copy_in, recorder, runtime=None)
    return _summarised(recorder, result)


def _run_on_lakefs(
    task: TaskDefinition,
    *,
    spec: WorkspaceSpec,
    config: RuntimeConfig,
    params: Any,
    target: LakeFSTarget,
    publish: bool,
) -> RuntimeTaskResult:
    if config.lakefs is None:
        raise RunUsageError(
            "LakeFS config is required for --lakefs (set LAKECTL_SERVER_ENDPOINT_URL, "
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID, LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY)"
        )
    if publish and spec.read_only:
        raise RunUsageError(f"{task.name} is read-only; --publish has nothing to publish")
    budget = task.controls.publish_budget
    probe = LakeFSWorkspaceRuntime(config.lakefs)
    commit = probe.control.resolve_commit(target.repository, target.ref).id
    branch = target.branch or target.ref
    if publish:
        if target.branch is None and target.ref == commit:
            raise RunUsageError("--publish needs a branch: use REPO@COMMIT:BRANCH")
        probe.control.branch_head(target.repository, branch)  # the branch must exist
    input_data = workspace_task_input(target.repository, branch, commit, params)
    recorder = _ChangeRecorder()
    with _transfer_progress() as progress:
        runtime = LakeFSWorkspaceRuntime(
            config.lakefs, publish_budget=budget, progress=progress, cache=config.cache
        )
        result = _run_attempt(
            task,
            config,
            input_data,
            runtime.download_workspace,
            recorder,
            runtime=runtime if publish else None,
        )
    return _summarised(recorder, result)


def _run_attempt(
    task: TaskDefinition,
    config: RuntimeConfig,
    input_data: Mapping[str, Any],
    download: Any,
    recorder: _ChangeRecorder,
    *,
    runtime: LakeFSWorkspaceRuntime | None,
) -> RuntimeTaskResult:
    """Run the attempt core; without a runtime, staging only records the change set."""
    attempt = _local_attempt(task, input_data)

    def stage(
        directory: Path,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
        *,
        changes: ChangeSet,
    ) -> StagedWorkspace:
        recorder.changes = changes
        if runtime is not None:
            return runtime.stage_workspace(directory, workspace, spec, context, changes=changes)
        return StagedWorkspace(workspace.repository, workspace.branch, workspace.ref)

    def publish(
        staged: StagedWorkspace,
        workspace: WorkspaceInput,
        spec: WorkspaceSpec,
        context: TaskExecutionContext,
    ) -> str:
        if runtime is None:
            return workspace.ref
        recorder.published = True
        return runtime.publish_workspace(staged, workspace, spec, context)

    def complete_noop(
        workspace: WorkspaceInput, spec: WorkspaceSpec, context: TaskExecutionContext
    ) -> str:
        if runtime is None:
            return workspace.ref
        return runtime.complete_noop_workspace(workspace, spec, context)

    def cleanup(staged: StagedWorkspace) -> None:
        if runtime is not None:
            runtime.cleanup_staging(staged)

    return run_workspace_task_attempt(
        task,
        input_data,
        attempt,
        config.workspace_root,
        download_workspace=download,
        load_current_attempt=lambda current: current,
        stage_workspace=stage,
        publish_workspace=publish,
        cleanup_staging=cleanup,
        complete_noop_workspace=complete_noop,
        failure_reason_max_length=config.failure_reason_max_length,
        stats=AttemptStats(),
        metrics=_local_recorder(task, attempt),
    )


def _local_recorder(task: TaskDefinition, attempt: TaskAttempt) -> MetricRecorder | None:
    """A local run exports nothing: a metrics-enabled body records into a discarding recorder."""
    if not task.has_metrics:
        return None
    return DiscardingMetricRecorder(
        TaskAttemptMetricContext(
            task_name=task.name,
            task_id=attempt.task_id,
            workflow_instance_id=attempt.workflow_instance_id,
            execution_id=attempt.execution_id or "",
            worker_id="local",
            retry_count=attempt.retry_count,
        )
    )


def _summarised(recorder: _ChangeRecorder, result: RuntimeTaskResult) -> RuntimeTaskResult:
    """``result``, once the change summary is printed (when staging saw the change set or the
    attempt completed)."""
    if recorder.changes is not None or result.status == "COMPLETED":
        _print_summary(recorder)
    return result


def _echo_err(text: str) -> None:
    typer.echo(text, err=True)


def _print_summary(recorder: _ChangeRecorder) -> None:
    changes = recorder.changes
    if changes is None:
        typer.echo("changes: none", err=True)
        return
    groups = [
        ("added", changes.added, changes.added_bytes),
        (
            "modified",
            [*changes.modified, *changes.type_changed],
            changes.modified_bytes + changes.type_changed_bytes,
        ),
        ("removed", changes.removed, changes.removed_bytes),
    ]
    _echo_err(
        "changes: "
        + ", ".join(f"{name} {len(paths)} files ({size} bytes)" for name, paths, size in groups)
    )
    for name, paths, _ in groups:
        for path in list(paths)[:_SUMMARY_PATH_LIMIT]:
            _echo_err(f"  {name}: {path}")
        if len(paths) > _SUMMARY_PATH_LIMIT:
            _echo_err(f"  {name}: ... and {len(paths) - _SUMMARY_PATH_LIMIT} more")


class _RichTransferProgress:
    """Adapts transfer progress reports to one rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def __call__(self, update: TransferProgress) -> None:
        if self._task is None:
            self._task = self._progress.add_task("transfer", total=update.bytes_total)
        self._progress.update(self._task, completed=update.bytes_done, total=update.bytes_total)


@contextmanager
def _transfer_progress() -> Iterator[_RichTransferProgress]:
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        yield _RichTransferProgress(progress)
