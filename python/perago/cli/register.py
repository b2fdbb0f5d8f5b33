"""``perago register MODULE``: create or update the module's TaskDef in Conductor."""

from __future__ import annotations

import typer

from perago.cli.support import (
    MODULE_ARGUMENT,
    WarningPrinter,
    cli_errors,
    conductor_call,
    prepare_task,
    require_conductor,
)


def register_command(module_target: str = MODULE_ARGUMENT) -> None:
    """Create or update the TaskDef generated from MODULE in Conductor."""
    from perago.conductor.client import ConductorClient

    printer = WarningPrinter()
    with cli_errors():
        prepared = prepare_task(module_target, printer)
        conductor = require_conductor(prepared.config, "register")
        # The key pair comes from the merged .env + environment, like for every other command.
        client = ConductorClient.from_config(prepared.config)
        with conductor_call(f"register TaskDef '{prepared.task.name}' in", conductor):
            action = client.register_taskdef(prepared.taskdef)
    typer.echo(f"{action}: {prepared.task.name}")
