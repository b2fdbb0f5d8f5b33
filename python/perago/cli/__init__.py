"""The ``perago`` command line. :mod:`perago.cli.app` holds the typer app; each command group is
a module of its own, imported only when its command runs."""

from __future__ import annotations


def main() -> None:
    """Console-script entry point (``perago``)."""
    from perago.cli.app import app

    app(prog_name="perago")
