"""perago: typed Conductor workers on lakeFS-versioned workspaces, with a Rust core.

Every public name is loaded on first use (PEP 562): ``import perago`` stays cheap, so short-lived
processes (a transfer child, ``perago --help``) do not pay for pydantic, loguru or the Conductor
SDK they never touch. Type checkers see the same names through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
    from perago.models import (
        WorkspaceInput,
        WorkspaceOutput,
        WorkspaceSpec,
    )
    from perago.supervisor import (
        WorkerChildSpec,
        restart_backoff_seconds,
        worker_child_specs,
    )
    from perago.task_definition import (
        TaskDefinition,
        load_module_task,
        task,
    )
    from perago.taskdef import (
        build_taskdef,
        write_taskdef,
    )
    from perago.worker import (
        WorkerRuntime,
        prepare_worker_runtime,
    )
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

# Where each public name lives.
_EXPORTS_BY_MODULE: dict[str, tuple[str, ...]] = {
    "perago.attempt": (
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
    ),
    "perago.config": (
        "ConductorConfig",
        "ExecutionMode",
        "LakeFSConfig",
        "RuntimeConfig",
        "load_runtime_config",
    ),
    "perago.controls": (
        "ExecutionLimits",
        "PublishBudget",
        "RetryPolicy",
        "TaskControls",
        "TimeoutPolicy",
    ),
    "perago.errors": (
        "GuardrailViolation",
        "PostGuardrailViolation",
        "PreGuardrailViolation",
        "PublishFenceError",
        "RuntimeConfigError",
        "StaleAttemptError",
        "TaskDefinitionError",
        "TaskExecutionError",
        "TaskFailed",
        "TaskInputError",
        "TaskTerminalError",
    ),
    "perago.guardrails": (
        "check_guardrails",
        "forbid_glob",
        "require_dir",
        "require_file",
        "require_glob",
    ),
    "perago.models": (
        "WorkspaceInput",
        "WorkspaceOutput",
        "WorkspaceSpec",
    ),
    "perago.supervisor": (
        "WorkerChildSpec",
        "restart_backoff_seconds",
        "worker_child_specs",
    ),
    "perago.task_definition": (
        "TaskDefinition",
        "load_module_task",
        "task",
    ),
    "perago.taskdef": (
        "build_taskdef",
        "write_taskdef",
    ),
    "perago.worker": (
        "WorkerRuntime",
        "prepare_worker_runtime",
    ),
    "perago.workspace_sync": (
        "WorkspaceDownloadFile",
        "WorkspaceSyncPlan",
        "WorkspaceUploadFile",
        "build_workspace_sync_plan",
        "workspace_delete_object_paths",
        "workspace_download_files",
        "workspace_local_path",
        "workspace_upload_files",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS_BY_MODULE.items() for name in names}


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("perago")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0.0.0+unknown"


def __getattr__(name: str) -> object:
    if name == "__version__":
        value: object = _package_version()
    else:
        module_name = _MODULE_OF.get(name)
        if module_name is None:
            raise AttributeError(f"module 'perago' has no attribute {name!r}")
        value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
