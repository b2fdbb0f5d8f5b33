"""perago: typed Conductor workers on lakeFS-versioned workspaces, with a Rust core."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
    "ExecutionLimits",
    "GuardrailViolation",
    "PostGuardrailViolation",
    "PreGuardrailViolation",
    "PublishBudget",
    "PublishFenceError",
    "RetryPolicy",
    "RuntimeConfigError",
    "StaleAttemptError",
    "TaskControls",
    "TaskDefinition",
    "TaskDefinitionError",
    "TaskExecutionError",
    "TaskFailed",
    "TaskInputError",
    "TaskTerminalError",
    "TimeoutPolicy",
    "WorkerChildSpec",
    "WorkerRuntime",
    "WorkspaceInput",
    "WorkspaceOutput",
    "WorkspaceSpec",
    "__version__",
    "build_taskdef",
    "check_guardrails",
    "forbid_glob",
    "load_module_task",
    "prepare_worker_runtime",
    "require_dir",
    "require_file",
    "require_glob",
    "restart_backoff_seconds",
    "task",
    "worker_child_specs",
    "write_taskdef",
]
