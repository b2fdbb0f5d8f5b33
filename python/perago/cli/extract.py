"""``perago extract MODULE -o PATH.json``: write the task's Conductor TaskDef JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from perago.cli.support import MODULE_ARGUMENT, WarningPrinter, cli_errors, prepare_task


def extract_command(
    module_target: str = MODULE_ARGUMENT,
    output: str = typer.Option(
        ..., "--output", "-o", metavar="PATH.json", help="Where to write the TaskDef JSON."
    ),
) -> None:
    """Write the task's Conductor TaskDef JSON to PATH and print the path."""
    from perago.definition.taskdef import write_taskdef

    printer = WarningPrinter()
    with cli_errors():
        prepared = prepare_task(module_target, printer)
        with printer.capture():
            write_taskdef(prepared.task, Path(output))
    typer.echo(output)
