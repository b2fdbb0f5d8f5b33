"""The lazy command tables (``perago.cli.app.COMMANDS``, ``perago.bench.cli.BENCH_COMMANDS``)
list each command with the same one-line help the command itself has, and load real commands;
completing a command name loads none; usage errors are one ``error:`` line."""

from __future__ import annotations

import inspect

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import perago
from perago.bench.cli import BENCH_COMMANDS
from perago.cli.app import COMMANDS, app
from perago.cli.lazy import LazyCommand, LazyGroup

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


def test_completing_a_command_name_loads_no_command() -> None:
    group = get_command(app)
    assert isinstance(group, LazyGroup)
    context = group.make_context("perago", [], resilient_parsing=True)
    assert [item.value for item in group.shell_complete(context, "c")] == ["check", "cache"]
    helps = {item.value: item.help or "" for item in group.shell_complete(context, "")}
    assert list(helps) == list(COMMANDS)
    # The table's help, shortened as in a listing ("Run N workers polling MODULE's task...").
    for name, entry in COMMANDS.items():
        assert entry.help.startswith(helps[name].removesuffix("...")), name
    # Still the stand-ins: completing names imported none of the command modules.
    assert [name for name, command in group.commands.items() if command.params] == []


@pytest.mark.parametrize(
    ("args", "line"),
    [
        pytest.param(["--bogus"], "error: No such option: --bogus", id="root"),
        pytest.param(["cache", "prune", "--bogus"], "error: No such option: --bogus", id="cache"),
        pytest.param(["check"], "error: Missing argument 'MODULE'.", id="check"),
    ],
)
def test_a_usage_error_in_process_is_one_error_line(args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"{line}\n")


def test_the_apps_own_version_option_still_answers() -> None:
    # `perago --version` alone never reaches the app (perago.cli.main answers it); with other
    # arguments, or in process, the root option does.
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"{perago.__version__}\n")
