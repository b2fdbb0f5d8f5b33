"""The one-line ``error: <message>`` every ``perago`` command prints for a problem.

Kept free of heavy imports (only typer), so the root group can print click's usage errors in the
same format as :func:`perago.cli.support.fail` without importing pydantic or the config.
"""

from __future__ import annotations

import typer

__all__ = ["echo_error", "one_line"]


def one_line(text: object) -> str:
    """``text`` with its non-blank lines stripped and joined by ``"; "``."""
    lines = [line.strip() for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line)


def echo_error(message: object) -> None:
    """Print ``error: <message>`` (made one line) on stderr."""
    typer.echo(f"error: {one_line(message)}", err=True)
