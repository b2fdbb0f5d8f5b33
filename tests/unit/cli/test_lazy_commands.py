"""The lazy command tables (``perago.cli.app.COMMANDS``, ``perago.bench.cli.BENCH_COMMANDS``)
list each command with the same one-line help the command itself has, and load real commands."""

from __future__ import annotations

import inspect

import pytest
from typer.testing import CliRunner

from perago.bench.cli import BENCH_COMMANDS
from perago.cli.app import COMMANDS, app
from perago.cli.lazy import LazyCommand

ENTRIES = [
    *(pytest.param(name, entry, id=name) for name, entry in COMMANDS.items()),
    *(pytest.param(name, entry, id=f"bench-{name}") for name, entry in BENCH_COMMANDS.items()),
]


@pytest.mark.parametrize(("name", "entry"), ENTRIES)
def test_table_help_is_the_commands_first_paragraph(name: str, entry: LazyCommand) -> None:
    command = entry.load(name)
    assert command.name == name
    assert command.help is not None
    assert entry.help == inspect.cleandoc(command.help).split("\n\n")[0]
    # The listing shows only name and help: nothing else may tell the two apart.
    assert command.short_help is None
    assert not command.hidden
    assert not command.deprecated
    assert not getattr(command, "rich_help_panel", None)  # the default "Commands" panel


def test_root_listing_comes_from_the_table_in_order() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    rows = result.output.split("Commands")[1].splitlines()[1:]
    # "│ check     Validate…"; a wrapped help line continues with spaces after "│ ".
    listed = [row[2:].split()[0] for row in rows if row.startswith("│ ") and row[2] != " "]
    assert listed == list(COMMANDS)


def test_a_table_command_runs_and_a_typo_is_suggested() -> None:
    runner = CliRunner()
    nested = runner.invoke(app, ["bench", "snapshot", "--help"])
    assert nested.exit_code == 0
    assert "Cold snapshot" in nested.output
    typo = runner.invoke(app, ["chek"])
    assert typo.exit_code == 2
    # "Did you mean 'check', 'cache'?": the closest match comes first.
    assert "Did you mean 'check'" in typo.output
