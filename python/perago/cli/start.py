"""``perago start MODULE -j N``: pre-flight checks, then the supervisor in the foreground."""

from __future__ import annotations

from enum import StrEnum

import typer

from perago.cli.support import (
    CliError,
    WarningPrinter,
    cli_errors,
    conductor_call,
    prepare_task,
    require_conductor,
)
from perago.config import host_token, load_runtime_config


class ExecutionModeOption(StrEnum):
    process = "process"
    thread = "thread"


MODULE_ARGUMENT = typer.Argument(..., help="Dotted import path of the task module.")
PROCESSES_OPTION = typer.Option(
    1, "-j", "--processes", min=1, help="Worker processes (threads in thread mode)."
)
MODE_OPTION = typer.Option(None, "--execution-mode", help="process (default) or thread.")
STRICT_OPTION = typer.Option(
    False,
    "--strict-taskdef",
    help="Fail when the registered TaskDef differs from the generated one.",
)


def start_command(
    module_target: str = MODULE_ARGUMENT,
    processes: int = PROCESSES_OPTION,
    execution_mode: ExecutionModeOption | None = MODE_OPTION,
    strict_taskdef: bool = STRICT_OPTION,
) -> None:
    """Run N workers polling MODULE's task queue until SIGINT/SIGTERM."""
    from perago.conductor.client import ConductorClient
    from perago.conductor.sdk_config import sdk_worker_settings
    from perago.conductor.taskdefs import short_lease_warning, taskdef_drift
    from perago.errors import CrashLoopError
    from perago.runtime.logs import install_jsonl_sink
    from perago.runtime.supervisor import run_supervisor

    printer = WarningPrinter()
    with cli_errors():
        # CONDUCTOR_SERVER_URL is checked before the task module is imported (reference order).
        require_conductor(load_runtime_config(module_target), "start")
        prepared = prepare_task(module_target, printer)
        config, task = prepared.config, prepared.task
        assert config.conductor is not None
        if task.has_workspace and config.lakefs is None:
            raise CliError("LakeFS config is required for workspace tasks")
        client = ConductorClient.from_config(config)
        with conductor_call(f"read TaskDef '{task.name}' from", config.conductor):
            registered = client.get_taskdef(task.name)
        if registered is None:
            raise CliError(
                f"Conductor TaskDef '{task.name}' is not registered; "
                f"run perago register {module_target}"
            )
        drift = taskdef_drift(prepared.taskdef, registered)
        if drift.keys:
            if strict_taskdef:
                raise CliError(drift.describe(task.name))
            printer.emit(drift.describe(task.name))
        if (lease_warning := short_lease_warning(task.name, registered)) is not None:
            printer.emit(lease_warning)
        sdk_settings = sdk_worker_settings(task.name, config.merged_env)
        if (ignored := sdk_settings.ignored_warning()) is not None:
            printer.emit(ignored)
        mode = execution_mode.value if execution_mode is not None else config.execution_mode
        install_jsonl_sink(
            log_root=config.log_root,
            module_target=module_target,
            worker_id=f"{config.worker_id_prefix}Supervisor-{host_token(config.merged_env)}",
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
        except CrashLoopError as exc:
            raise CliError(str(exc)) from exc
    raise typer.Exit(code)
