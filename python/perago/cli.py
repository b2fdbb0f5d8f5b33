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


from perago.bench.cli import bench_app  # noqa: E402

app.add_typer(bench_app, name="bench")
