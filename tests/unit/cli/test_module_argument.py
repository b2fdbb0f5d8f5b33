"""Every command that takes a task module names it ``MODULE`` and describes it the same way, as
what the loader accepts: a dotted import path, not a file path."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from perago.cli.app import COMMANDS, app
from perago.cli.support import MODULE_HELP
from perago.definition.decorator import load_module_task
from perago.errors import TaskDefinitionError

# `perago start` keeps an argument of its own for now (cli/start.py).
MODULE_COMMANDS = ["check", "extract", "register", "run", "start"]


@pytest.mark.parametrize("name", MODULE_COMMANDS)
def test_the_module_argument_has_one_name_and_one_help(name: str) -> None:
    command = COMMANDS[name].load(name)
    (argument,) = [param for param in command.params if param.param_type_name == "argument"]
    assert argument.metavar == "MODULE"
    assert getattr(argument, "help", None) == MODULE_HELP
    result = CliRunner().invoke(app, [name])
    assert result.stderr == "error: Missing argument 'MODULE'.\n"


def test_the_help_says_what_the_loader_refuses() -> None:
    assert "not a .py file path" in MODULE_HELP
    with pytest.raises(TaskDefinitionError, match="not a file path"):
        load_module_task("examples/word_count.py")
