"""``perago start MODULE -j N``: pre-flight checks, then the supervisor in the foreground."""

from __future__ import annotations

import os
from enum import StrEnum

import typer

from perago.cli.support import (
    MODULE_ARGUMENT,
    CliError,
    WarningPrinter,
    cli_errors,
    conductor_call,
    prepare_task,
    require_conductor,
)
from perago.config import LOG_FORMAT, LOG_LEVEL, RuntimeConfig, host_token, load_runtime_config
from perago.metrics.settings import METRICS_PORT


class ExecutionModeOption(StrEnum):
    process = "process"
    thread = "thread"


class LogFormatOption(StrEnum):
    text = "text"
    json = "json"


class LogLevelOption(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


PROCESSES_OPTION = typer.Option(
    1, "-j", "--processes", min=1, help="Worker processes (threads in thread mode)."
)
MODE_OPTION = typer.Option(None, "--execution-mode", help="process (default) or thread.")
METRICS_PORT_OPTION = typer.Option(
    None,
    "--metrics-port",
    min=1,
    max=65535,
    help="Serve Prometheus metrics of every worker of this host on this port (/metrics).",
)
LOG_FORMAT_OPTION = typer.Option(
    None,
    "--log-format",
    help="Console output: text (short lines on stderr, default) or json (every record, stdout).",
)
LOG_LEVEL_OPTION = typer.Option(
    None, "--log-level", help="Console level: DEBUG, INFO (default), WARNING or ERROR."
)
STRICT_OPTION = typer.Option(
    False,
    "--strict-taskdef",
    help="Fail when the registered TaskDef differs from the generated one.",
)


def _servers(config: RuntimeConfig) -> dict[str, str]:
    """Where this supervisor's workers connect (URLs only, never credentials)."""
    servers: dict[str, str] = {}
    if config.conductor is not None:
        servers["conductor"] = config.conductor.server_url
    if config.lakefs is not None:
        servers["lakefs"] = config.lakefs.endpoint_url
    metrics = config.metrics
    if metrics is not None:
        if metrics.endpoint:
            servers["metrics"] = metrics.endpoint
        if metrics.traces_endpoint:
            servers["traces"] = metrics.traces_endpoint
        if metrics.prometheus_port:
            servers["prometheus"] = f":{metrics.prometheus_port}/metrics"
    return servers


def start_command(  # noqa: PLR0917 - a typer command: one parameter per option
    module_target: str = MODULE_ARGUMENT,
    processes: int = PROCESSES_OPTION,
    execution_mode: ExecutionModeOption | None = MODE_OPTION,
    strict_taskdef: bool = STRICT_OPTION,
    metrics_port: int | None = METRICS_PORT_OPTION,
    log_format: LogFormatOption | None = LOG_FORMAT_OPTION,
    log_level: LogLevelOption | None = LOG_LEVEL_OPTION,
) -> None:
    """Run N workers polling MODULE's task queue until SIGINT/SIGTERM."""
    from loguru import logger

    from perago.conductor.client import ConductorClient
    from perago.conductor.sdk_config import sdk_worker_settings
    from perago.conductor.taskdefs import short_lease_warning, taskdef_drift
    from perago.errors import CrashLoopError
    from perago.runtime.console import STARTED, install_console_sink
    from perago.runtime.logs import install_jsonl_sink
    from perago.runtime.supervisor import run_supervisor
    from perago.telemetry.worker_setup import check_metrics_requirements

    printer = WarningPrinter()
    with cli_errors():
        if metrics_port is not None:
            # Through the environment, so every worker process (which loads its own config)
            # serves its series for this supervisor to answer the scrapes.
            os.environ[METRICS_PORT] = str(metrics_port)
        if log_format is not None:
            os.environ[LOG_FORMAT] = log_format.value
        if log_level is not None:
            os.environ[LOG_LEVEL] = log_level.value
        # CONDUCTOR_SERVER_URL is checked before the task module is imported, so a missing
        # Conductor is reported before any error of the task module.
        require_conductor(load_runtime_config(module_target), "start")
        prepared = prepare_task(module_target, printer)
        config, task = prepared.config, prepared.task
        check_metrics_requirements(task, config)
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
        install_console_sink(config.log_format, config.log_level)
        started = logger.bind(
            task_name=task.name,
            queue=task.name + (f" (domain {sdk_settings.domain})" if sdk_settings.domain else ""),
            slots=processes,
            mode=mode,
            servers=_servers(config),
        )
        try:
            code = run_supervisor(
                config=config,
                module_target=module_target,
                process_count=processes,
                execution_mode=mode,
                on_started=lambda: started.info(STARTED),
            )
        except CrashLoopError as exc:
            raise CliError(str(exc)) from exc
    raise typer.Exit(code)
