"""The ``perago`` command line (typer).

Commands live in small modules and register here with one line each; the shared error/warning
handling and task loading they all use is in ``perago.cli.support``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from perago import __version__
from perago.cli.support import WarningPrinter, cli_errors, prepare_task
from perago.config import conductor_auth

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Typed Conductor workers on lakeFS-versioned workspaces.",
    # Errors are printed as one `error:` line by the commands; never show a traceback.
    pretty_exceptions_enable=False,
)

MODULE_ARGUMENT = typer.Argument(
    ..., metavar="MODULE", help="Dotted import path of the task module, e.g. examples.word_count."
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Typed Conductor workers on lakeFS-versioned workspaces."""


def _configured(value: object) -> str:
    return "configured" if value is not None else "not configured"


@app.command()
def check(
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


@app.command()
def extract(
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


# Command groups register here, one line each (their modules own the options and behaviour).
from perago.bench import attempt as bench_attempt  # noqa: E402
from perago.bench import stage as bench_stage  # noqa: E402
from perago.bench import transfer as bench_transfer  # noqa: E402
from perago.bench import worker_cli as bench_worker_cli  # noqa: E402
from perago.bench.cli import bench_app  # noqa: E402
from perago.bench.fleet import fleet_command as bench_fleet_command  # noqa: E402
from perago.cli import gc as gc_cli  # noqa: E402
from perago.cli import register as register_cli  # noqa: E402
from perago.cli import start as start_cli  # noqa: E402
from perago.cli.run import run_command  # noqa: E402
from perago.devservers.cli import dev_app  # noqa: E402

register_cli.register(app)
start_cli.register(app)
gc_cli.register(app)
app.add_typer(dev_app, name="dev")
app.command("run")(run_command)
bench_app.command("download")(bench_transfer.download_command)
bench_app.command("upload")(bench_transfer.upload_command)
bench_worker_cli.register(bench_app)
bench_app.command("fleet")(bench_fleet_command)
bench_app.command("stage")(bench_stage.stage_command)
bench_app.command("attempt")(bench_attempt.attempt_command)
app.add_typer(bench_app, name="bench")
