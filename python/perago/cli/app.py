"""The ``perago`` command line (typer): the root group and its table of commands.

Each command (or command group) lives in a module of its own and is imported only when it runs or
its own ``--help`` is asked for (:mod:`perago.cli.lazy`); the shared error/warning handling and
task loading they use is in ``perago.cli.support``. Usage errors (an unknown option or command, a
missing argument, a bad value), in this group and every group below it, are printed like every
other error: one ``error: <message>`` line on stderr, with click's exit status 2.

``perago --version`` alone is answered by :func:`perago.cli.main` before this module is imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from perago.cli.lazy import LazyCommand, LazyGroup
from perago.cli.messages import echo_error

if TYPE_CHECKING:
    from typer import _click

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
    "status": LazyCommand(
        "perago.cli.status:status_command",
        "Show this host's supervisors: each slot's current attempt, phase and progress.",
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


_PYDANTIC_VALUE_ERROR_PREFIX = "Value error, "


@contextmanager
def _click_errors_as_lines() -> Iterator[None]:
    """A click error raised inside (usage errors: exit status 2) becomes one ``error:`` line
    instead of click's usage block, ``Try ... --help`` hint and ``Error:`` line (or typer's box).

    ``no_args_is_help`` (``perago``, ``perago cache`` with nothing after them) still prints help.
    """
    from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError

    try:
        yield
    except NoArgsIsHelpError:
        raise
    except ClickException as exc:
        if isinstance(exc, BadParameter):
            # typer converts values with pydantic, whose messages may start with "Value error, ".
            exc.message = exc.message.removeprefix(_PYDANTIC_VALUE_ERROR_PREFIX)
        echo_error(exc.format_message())
        raise typer.Exit(exc.exit_code) from None


class PeragoGroup(LazyGroup):
    """The root group: its table, and click errors as ``error:`` lines.

    Parsing the root's options happens in ``make_context``; resolving, parsing and running every
    command below it (subgroups included) happens inside the root's ``invoke``.
    """

    lazy_commands = COMMANDS

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: _click.Context | None = None,
        **extra: Any,
    ) -> _click.Context:
        with _click_errors_as_lines():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: _click.Context) -> Any:
        with _click_errors_as_lines():
            return super().invoke(ctx)


app = typer.Typer(
    cls=PeragoGroup,
    no_args_is_help=True,
    # --install-completion / --show-completion; completing a command name imports no command.
    add_completion=True,
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
