"""perago: typed Conductor workers on lakeFS-versioned workspaces, with a Rust core."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from perago.attempt import (
    StagedWorkspace,
    TaskExecutionContext,
    assert_current_attempt_snapshot,
    build_workspace_free_task_output,
    build_workspace_task_output,
    invoke_workspace_free_task,
    invoke_workspace_task_body,
    run_workspace_free_task_attempt,
    run_workspace_task_attempt,
    staging_branch_name,
)
from perago.config import (
    ConductorConfig,
    ExecutionMode,
    LakeFSConfig,
    RuntimeConfig,
    load_runtime_config,
)
from perago.controls import (
    ExecutionLimits,
    PublishBudget,
    RetryPolicy,
    TaskControls,
    TimeoutPolicy,
)
from perago.errors import (
    GuardrailViolation,
    PostGuardrailViolation,
    PreGuardrailViolation,
    PublishFenceError,
    RuntimeConfigError,
    StaleAttemptError,
    TaskDefinitionError,
    TaskExecutionError,
    TaskFailed,
    TaskInputError,
    TaskTerminalError,
)
from perago.guardrails import (
    check_guardrails,
    forbid_glob,
    require_dir,
    require_file,
    require_glob,
)
from perago.models import WorkspaceInput, WorkspaceOutput, WorkspaceSpec
from perago.task import TaskDefinition, load_module_task, task
from perago.taskdef import build_taskdef, write_taskdef
from perago.workspace_sync import (
    WorkspaceDownloadFile,
    WorkspaceSyncPlan,
    WorkspaceUploadFile,
    build_workspace_sync_plan,
    workspace_delete_object_paths,
    workspace_download_files,
    workspace_local_path,
    workspace_upload_files,
)

# The worker-runtime helpers pull in the Conductor SDK; load them only when asked for.
_LAZY_RUNTIME_NAMES = {
    "WorkerChildSpec": "perago.supervisor",
    "worker_child_specs": "perago.supervisor",
    "restart_backoff_seconds": "perago.supervisor",
    "WorkerRuntime": "perago.worker",
    "prepare_worker_runtime": "perago.worker",
}


def __getattr__(name: str) -> object:
    module_name = _LAZY_RUNTIME_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'perago' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)


try:
    __version__ = version("perago")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

# One name per line, sorted: later capabilities append their names here.
__all__ = [
    "ConductorConfig",
    "ExecutionLimits",
    "ExecutionMode",
    "GuardrailViolation",
    "LakeFSConfig",
    "PostGuardrailViolation",
    "PreGuardrailViolation",
    "PublishBudget",
    "PublishFenceError",
    "RetryPolicy",
    "RuntimeConfig",
    "RuntimeConfigError",
    "StagedWorkspace",
    "StaleAttemptError",
    "TaskControls",
    "TaskDefinition",
    "TaskDefinitionError",
    "TaskExecutionContext",
    "TaskExecutionError",
    "TaskFailed",
    "TaskInputError",
    "TaskTerminalError",
    "TimeoutPolicy",
    "WorkerChildSpec",
    "WorkerRuntime",
    "WorkspaceDownloadFile",
    "WorkspaceInput",
    "WorkspaceOutput",
    "WorkspaceSpec",
    "WorkspaceSyncPlan",
    "WorkspaceUploadFile",
    "__version__",
    "assert_current_attempt_snapshot",
    "build_taskdef",
    "build_workspace_free_task_output",
    "build_workspace_sync_plan",
    "build_workspace_task_output",
    "check_guardrails",
    "forbid_glob",
    "invoke_workspace_free_task",
    "invoke_workspace_task_body",
    "load_module_task",
    "load_runtime_config",
    "prepare_worker_runtime",
    "require_dir",
    "require_file",
    "require_glob",
    "restart_backoff_seconds",
    "run_workspace_free_task_attempt",
    "run_workspace_task_attempt",
    "staging_branch_name",
    "task",
    "worker_child_specs",
    "workspace_delete_object_paths",
    "workspace_download_files",
    "workspace_local_path",
    "workspace_upload_files",
    "write_taskdef",
]
