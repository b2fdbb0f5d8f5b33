"""The ``perago`` command line (typer): the root group and its table of commands.

Each command (or command group) lives in a module of its own and is imported only when it runs or
its own ``--help`` is asked for (:mod:`perago.cli.lazy`); the shared error/warning handling and
task loading they use is in ``perago.cli.support``.
"""

from __future__ import annotations

import typer

from perago.cli.lazy import LazyCommand, LazyGroup

# In listing order; each help is the first paragraph of the command's own help.
COMMANDS = {
    "check": LazyCommand(
        "perago.cli.check:check_command",
        "Validate the runtime config and the task module without touching the network.",
    ),
    "extract": LazyCommand(
        "perago.cli.extract:extract_command",
        "Write the task's Conductor TaskDef JSON to PATH and print the path.",
    ),
    "register": LazyCommand(
        "perago.cli.register:register_command",
        "Create or update the TaskDef generated from MODULE in Conductor.",
    ),
    "start": LazyCommand(
        "perago.cli.start:start_command",
        "Run N workers polling MODULE's task queue until SIGINT/SIGTERM.",
    ),
    "gc": LazyCommand(
        "perago.cli.gc:gc_command",
        "Remove attempt workspaces whose owner is gone and staging branches proven abandoned.",
    ),
    "cache": LazyCommand(
        "perago.cli.cache:cache_app",
        "Show, prune or verify the host's content cache of lakeFS objects.",
    ),
    "run": LazyCommand(
        "perago.cli.run:run_command",
        "Run one attempt of a task locally, without Conductor.",
    ),
    "dev": LazyCommand(
        "perago.devservers.cli:dev_app",
        "Start/stop local lakeFS, Conductor (and MinIO) servers (loopback only) for development.",
    ),
    "bench": LazyCommand("perago.bench.cli:bench_app", "Benchmarks against baselines."),
}


class PeragoGroup(LazyGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    cls=PeragoGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Typed Conductor workers on lakeFS-versioned workspaces.",
    # Errors are printed as one `error:` line by the commands; never show a traceback.
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from perago import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Typed Conductor workers on lakeFS-versioned workspaces."""
