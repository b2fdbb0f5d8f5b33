"""The ``perago`` command line (typer)."""

from __future__ import annotations

import typer

from perago import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


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


def main() -> None:
    app()


# Runtime commands, one line each (their modules own the options and behaviour).
from perago import gc_cli, register_cli, start_cli  # noqa: E402

register_cli.register(app)
start_cli.register(app)
gc_cli.register(app)
