"""``perago check MODULE [--json]``: validate the runtime config and the task module offline."""

from __future__ import annotations

import json

import typer

from perago.cli.support import MODULE_ARGUMENT, WarningPrinter, cli_errors, prepare_task
from perago.config import conductor_auth


def _configured(value: object) -> str:
    return "configured" if value is not None else "not configured"


def check_command(
    module_target: str = MODULE_ARGUMENT,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of lines."),
) -> None:
    """Validate the runtime config and the task module without touching the network."""
    from perago.conductor.sdk_config import sdk_worker_settings

    printer = WarningPrinter()
    with cli_errors():
        prepared = prepare_task(module_target, printer)
        auth = conductor_auth(prepared.config.merged_env)
    config = prepared.config
    # What the conductor-python worker would run with (same variables, same priority).
    sdk_worker = sdk_worker_settings(prepared.task.name, config.merged_env)
    if (ignored := sdk_worker.ignored_warning()) is not None:
        printer.emit(ignored)
    facts: dict[str, object] = {
        "workspace_root": str(config.workspace_root),
        "log_root": str(config.log_root),
        "worker_id_prefix": config.worker_id_prefix,
        "conductor": _configured(config.conductor),
        "lakefs": _configured(config.lakefs),
        "conductor_auth": _configured(auth),
    }
    if as_json:
        document = {
            "ok": True,
            "name": prepared.task.name,
            **facts,
            "sdk_worker": sdk_worker.as_dict(),
            "body_env_passthrough": list(config.body_env_passthrough),
        }
        typer.echo(json.dumps({**document, "warnings": printer.messages}))
        return
    typer.echo(f"ok: {prepared.task.name}")
    for key, value in facts.items():
        typer.echo(f"{key}: {value}")
    typer.echo(f"sdk_worker: {sdk_worker.describe()}")
    typer.echo(f"body_env_passthrough: {','.join(config.body_env_passthrough) or '(none)'}")
