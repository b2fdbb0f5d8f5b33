"""Command groups whose commands are imported only when they are used.

A group lists its commands from a static table (name → ``module:attribute`` plus the one-line help
shown in the group's listing), so ``perago --help`` and completing a command name (``perago
<TAB>``) import no command module, and ``perago check`` imports the check module alone, not
lakeFS, Conductor or the benches. Completing the options or subcommands of one command (``perago
cache <TAB>``) imports that command's module, like running it does.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command, get_group

if TYPE_CHECKING:
    # The click typer vendors; only its types are named here.
    from typer import _click
    from typer._click.shell_completion import CompletionItem


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives and the help its group lists for it.

    ``target`` is ``"package.module:attribute"``: the attribute is either a command function
    (registered as with ``app.command(name)``) or a ``typer.Typer`` (a sub-group, as with
    ``app.add_typer``). ``help`` must be the first paragraph of that command's own help;
    ``tests/unit/cli/test_lazy_commands.py`` keeps the two equal.
    """

    target: str
    help: str

    def load(self, name: str) -> _click.Command:
        """Import the module and build the click command called ``name``."""
        module_name, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        if isinstance(obj, typer.Typer):
            command: _click.Command = get_group(obj)
        else:
            single = typer.Typer(add_completion=False)
            single.command(name)(obj)
            command = get_command(single)
        command.name = name
        return command


class _NotLoaded(TyperCommand):
    """Stands in for a table command until it is used; carries only its name and help."""

    def __init__(self, name: str, entry: LazyCommand) -> None:
        super().__init__(name, help=entry.help)
        self.entry = entry


class LazyGroup(TyperGroup):
    """A typer group whose ``lazy_commands`` are imported on first use.

    Subclass it with the table and pass the subclass as ``typer.Typer(cls=...)``. The listing in
    the group's help and the completion of command names are drawn from the table; any other
    lookup (running a command, asking for its own ``--help``, completing its options) imports the
    command's module and builds the real command.
    """

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, entry in self.lazy_commands.items():
            self.commands.setdefault(name, _NotLoaded(name, entry))
        self._listing = False

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, _NotLoaded) and not self._listing:
            command = self.commands[cmd_name] = command.entry.load(cmd_name)
        return command

    @contextmanager
    def _names_only(self) -> Iterator[None]:
        """Inside, lookups return the stand-ins: names and one-line help, nothing imported."""
        self._listing = True
        try:
            yield
        finally:
            self._listing = False

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        # The command listing only needs names and one-line help: leave the modules unimported.
        with self._names_only():
            super().format_help(ctx, formatter)

    def shell_complete(self, ctx: _click.Context, incomplete: str) -> list[CompletionItem]:
        # Completing a command name (or this group's own options) needs the names and one-line
        # help alone; a command's own options are completed once the shell names it, through
        # get_command, which loads it.
        with self._names_only():
            return super().shell_complete(ctx, incomplete)
