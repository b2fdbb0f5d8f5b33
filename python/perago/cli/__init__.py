"""The ``perago`` command line. :mod:`perago.cli.app` holds the typer app; each command group is
a module of its own, imported only when its command runs."""

from __future__ import annotations

import sys


def main() -> None:
    """Console-script entry point (``perago``).

    ``perago --version`` alone is answered here, before typer (and anything else) is imported;
    every other command line goes to the typer app, whose ``--version`` prints the same.
    """
    if sys.argv[1:] == ["--version"]:
        from perago import __version__

        print(__version__)
        return
    from perago.cli.app import app

    app(prog_name="perago")
