"""``perago register MODULE``: create or update the module's TaskDef in Conductor."""

from __future__ import annotations

import typer

from perago.cli.support import CliError, WarningPrinter, cli_errors, prepare_task

MODULE_ARGUMENT = typer.Argument(..., help="Dotted import path of the task module.")


def register_command(module_target: str = MODULE_ARGUMENT) -> None:
    """Create or update the TaskDef generated from MODULE in Conductor."""
    from perago.conductor.client import ConductorClient, describe_conductor_error

    printer = WarningPrinter()
    with cli_errors():
        prepared = prepare_task(module_target, printer)
        if prepared.config.conductor is None:
            raise CliError("CONDUCTOR_SERVER_URL is required for perago register")
        # The key pair comes from the merged .env + environment, like for every other command.
        client = ConductorClient(
            prepared.config.conductor.server_url,
            timeout_seconds=prepared.config.control_timeout.total_seconds(),
            env=prepared.config.merged_env,
        )
        try:
            action = client.register_taskdef(prepared.taskdef)
        except Exception as exc:
            raise CliError(
                f"could not register TaskDef '{prepared.task.name}' in Conductor at "
                f"{prepared.config.conductor.server_url}: {describe_conductor_error(exc)}"
            ) from exc
    typer.echo(f"{action}: {prepared.task.name}")
