"""The ``perago`` command line (typer)."""

from __future__ import annotations

import typer

from perago import __version__
from perago.bench import transfer as bench_transfer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

# Transfer benchmarks; the integrator merges these into the shared `perago bench` group.
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (never part of the test suite).")
bench_app.command("download")(bench_transfer.download_command)
bench_app.command("upload")(bench_transfer.upload_command)
app.add_typer(bench_app, name="bench")


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
