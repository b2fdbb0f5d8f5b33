"""``perago start MODULE -j N``: pre-flight checks, then the supervisor in the foreground."""

from __future__ import annotations

from enum import Enum

import typer

from perago.conductor_adapter import ConductorClient, taskdef_drift
from perago.errors import RuntimeConfigError
from perago.runtime_cli import fail, load_config, load_task, warn
from perago.runtime_logging import install_jsonl_sink
from perago.supervisor import CrashLoopError, run_supervisor
from perago.taskdef import build_taskdef


class ExecutionModeOption(str, Enum):
    process = "process"
    thread = "thread"


def start_command(
    module_target: str = typer.Argument(..., help="Dotted import path of the task module."),
    processes: int = typer.Option(
        1, "-j", "--processes", min=1, help="Worker processes (threads in thread mode)."
    ),
    execution_mode: ExecutionModeOption | None = typer.Option(
        None, "--execution-mode", help="process (default) or thread."
    ),
    strict_taskdef: bool = typer.Option(
        False,
        "--strict-taskdef",
        help="Fail when the registered TaskDef differs from the generated one.",
    ),
) -> None:
    """Run N workers polling MODULE's task queue until SIGINT/SIGTERM."""
    config = load_config(module_target)
    if config.conductor is None:
        fail("CONDUCTOR_SERVER_URL is required for perago start")
    task = load_task(module_target)
    if task.has_workspace and config.lakefs is None:
        fail("LakeFS config is required for workspace tasks")
    try:
        generated = build_taskdef(task)
    except ValueError as exc:
        fail(str(exc))
    client = ConductorClient(config.conductor.server_url)
    try:
        registered = client.get_taskdef(task.name)
    except Exception as exc:
        fail(
            f"could not read TaskDef '{task.name}' from Conductor at "
            f"{config.conductor.server_url}: {type(exc).__name__}: {exc}"
        )
    if registered is None:
        fail(
            f"Conductor TaskDef '{task.name}' is not registered; "
            f"run perago register {module_target}"
        )
    drift = taskdef_drift(generated, registered)
    if drift.keys:
        if strict_taskdef:
            fail(drift.describe(task.name))
        warn(drift.describe(task.name))
    mode = execution_mode.value if execution_mode is not None else config.execution_mode
    install_jsonl_sink(
        log_root=config.log_root,
        module_target=module_target,
        worker_id=f"{config.worker_id_prefix}Supervisor",
        max_bytes=config.log_file_max_size,
        retention=config.log_retention,
    )
    try:
        code = run_supervisor(
            config=config,
            module_target=module_target,
            process_count=processes,
            execution_mode=mode,
        )
    except (RuntimeConfigError, CrashLoopError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("start")(start_command)
