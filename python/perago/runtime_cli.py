"""Shared pieces of the runtime commands (start, register, gc): one-line errors, task loading."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer

from perago.config import RuntimeConfig, load_runtime_config
from perago.task import TaskDefinition, load_module_task


def fail(message: str) -> NoReturn:
    """Print one ``error:`` line on stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def load_config(module_target: str) -> RuntimeConfig:
    try:
        return load_runtime_config(module_target)
    except ValueError as exc:
        fail(str(exc))


def load_task(module_target: str) -> TaskDefinition:
    """Import the task module with the current directory importable (like ``python -m``)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return load_module_task(module_target)
    except ValueError as exc:
        fail(str(exc))
    except Exception as exc:  # an import error in the user's module is a user-facing error
        fail(f"failed to import {module_target}: {type(exc).__name__}: {exc}")
