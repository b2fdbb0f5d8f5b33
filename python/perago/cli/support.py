"""Shared plumbing for ``perago`` commands: error lines, warning lines, task module loading,
the Conductor a command needs.

Every command reports problems the same way — one ``error: <message>`` line on stderr and exit
status 1, never a traceback — and prints warnings as ``warning: <message>`` lines, each at most
once per command. Commands wrap their body in ``cli_errors()`` and use a ``WarningPrinter``.
Usage errors, found by click before a command runs, are printed in the same one-line format by the
root group (:mod:`perago.cli.app`), with click's exit status 2.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from pydantic.errors import PydanticUserError

from perago.cli.messages import echo_error
from perago.cli.messages import one_line as _one_line
from perago.config import ConductorConfig, RuntimeConfig, load_runtime_config
from perago.definition.decorator import TaskDefinition, load_module_task
from perago.definition.taskdef import build_taskdef, task_contract_warnings
from perago.errors import PeragoError, TaskDefinitionError

__all__ = [
    "MODULE_ARGUMENT",
    "MODULE_HELP",
    "CliError",
    "PreparedTask",
    "WarningPrinter",
    "cli_errors",
    "conductor_call",
    "describe_exception",
    "ensure_cwd_importable",
    "fail",
    "load_task",
    "prepare_task",
    "require_conductor",
]

MODULE_HELP = (
    "Task module: a dotted import path such as examples.word_count, imported from the current "
    "directory (not a .py file path)."
)
"""How every command that takes a task module describes it (what :func:`load_task` accepts)."""

MODULE_ARGUMENT = typer.Argument(..., metavar="MODULE", help=MODULE_HELP)
"""The task-module argument of every command that takes one (``perago check MODULE``...)."""

_PYDANTIC_VALUE_ERROR_PREFIX = "Value error, "
_PYDANTIC_DOCS_LINE = "For further information visit"


class CliError(PeragoError):
    """A problem whose message is already written for the user; printed verbatim."""


def fail(message: str) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with status 1."""
    echo_error(message)
    raise typer.Exit(1)


def _validation_summary(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        message = str(error.get("msg", "")).removeprefix(_PYDANTIC_VALUE_ERROR_PREFIX)
        location = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{location}: {message}" if location else message)
    return f"invalid {exc.title}: " + "; ".join(problems)


def describe_exception(exc: BaseException) -> str:
    """One line naming the problem, without Python internals where the type says nothing."""
    if isinstance(exc, ValidationError):
        return _one_line(_validation_summary(exc))
    if isinstance(exc, PydanticUserError):
        lines = [line for line in str(exc).splitlines() if _PYDANTIC_DOCS_LINE not in line]
        return _one_line("\n".join(lines))
    if isinstance(exc, CliError | ValueError | OSError):
        return _one_line(str(exc)) or type(exc).__name__
    message = _one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn any exception raised inside into one ``error:`` line and exit status 1."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        fail(describe_exception(exc))


def require_conductor(config: RuntimeConfig, command: str) -> ConductorConfig:
    """``config``'s Conductor; without ``CONDUCTOR_SERVER_URL``, ``perago COMMAND`` cannot run."""
    if config.conductor is None:
        raise CliError(f"CONDUCTOR_SERVER_URL is required for perago {command}")
    return config.conductor


@contextmanager
def conductor_call(attempted: str, conductor: ConductorConfig) -> Iterator[None]:
    """A failing Conductor call inside becomes ``could not <attempted> Conductor at <url>:
    <status and the server's own message>`` (``attempted`` ends with its preposition)."""
    try:
        yield
    except Exception as exc:
        from perago.conductor.client import describe_conductor_error

        raise CliError(
            f"could not {attempted} Conductor at "
            f"{conductor.server_url}: {describe_conductor_error(exc)}"
        ) from exc


class WarningPrinter:
    """Prints ``warning: <message>`` lines, each distinct message once per command."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def emit(self, message: str) -> None:
        text = _one_line(message)
        if text and text not in self.messages:
            self.messages.append(text)
            typer.echo(f"warning: {text}", err=True)

    @contextmanager
    def capture(self) -> Iterator[None]:
        """Route Python warnings raised inside (e.g. by ``build_taskdef``) through ``emit``."""
        with warnings.catch_warnings(record=True) as caught:
            # UserWarnings are perago's and the task author's: always show them (we de-duplicate).
            # Other categories keep the interpreter's filters, so library noise stays hidden.
            warnings.filterwarnings("always", category=UserWarning)
            try:
                yield
            finally:
                for record in caught:
                    self.emit(str(record.message))


def ensure_cwd_importable() -> None:
    """Make the current directory importable first, like ``python -m`` does."""
    cwd = os.getcwd()
    if not sys.path or os.path.abspath(sys.path[0] or ".") != cwd:
        sys.path.insert(0, cwd)


def _import_failure(module_target: str, exc: BaseException) -> CliError:
    if isinstance(exc, ModuleNotFoundError):
        reason = str(exc)
        if exc.name and (module_target == exc.name or module_target.startswith(f"{exc.name}.")):
            reason += " (run perago from the directory that contains the package)"
    else:
        reason = describe_exception(exc)
        if not reason.startswith(f"{type(exc).__name__}:"):
            reason = f"{type(exc).__name__}: {reason}"
    return CliError(f"cannot import {module_target}: {reason}")


def load_task(module_target: str) -> TaskDefinition:
    """Import ``module_target`` from the current directory and return its single task.

    Declaration problems (``TaskDefinitionError`` and pydantic validation errors raised by
    the decorator or the models) keep their own message; anything else that breaks the import
    is reported as ``cannot import <module>: <reason>``.
    """
    ensure_cwd_importable()
    try:
        return load_module_task(module_target)
    except (TaskDefinitionError, ValidationError):
        raise
    except Exception as exc:
        raise _import_failure(module_target, exc) from exc


@dataclass(frozen=True)
class PreparedTask:
    """A task module that passed every local check: its config, definition and TaskDef."""

    config: RuntimeConfig
    task: TaskDefinition
    taskdef: dict[str, Any]


def prepare_task(
    module_target: str, printer: WarningPrinter, *, probe_roots: bool = True
) -> PreparedTask:
    """The shared validation of ``check``/``extract``/``start``/``register``.

    Order matters and is part of the contract: configuration first (so config errors mask task
    errors), then the task import, then warnings, then TaskDef generation.
    """
    config = load_runtime_config(module_target, probe_roots=probe_roots)
    with printer.capture():
        definition = load_task(module_target)
        for message in task_contract_warnings(definition):
            printer.emit(message)
        taskdef = build_taskdef(definition)
    return PreparedTask(config=config, task=definition, taskdef=taskdef)
