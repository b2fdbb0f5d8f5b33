"""``perago register MODULE``: create or update the module's TaskDef in Conductor."""

from __future__ import annotations

import typer

from perago.conductor_adapter import ConductorClient
from perago.runtime_cli import fail, load_config, load_task
from perago.taskdef import build_taskdef


def register_command(
    module_target: str = typer.Argument(..., help="Dotted import path of the task module."),
) -> None:
    """Create or update the TaskDef generated from MODULE in Conductor."""
    config = load_config(module_target)
    if config.conductor is None:
        fail("CONDUCTOR_SERVER_URL is required for perago register")
    task = load_task(module_target)
    try:
        taskdef = build_taskdef(task)
    except ValueError as exc:
        fail(str(exc))
    client = ConductorClient(config.conductor.server_url)
    try:
        action = client.register_taskdef(taskdef)
    except Exception as exc:
        fail(f"could not register TaskDef '{task.name}' in Conductor: {type(exc).__name__}: {exc}")
    typer.echo(f"{action}: {task.name}")


def register(app: typer.Typer) -> None:
    app.command("register")(register_command)
