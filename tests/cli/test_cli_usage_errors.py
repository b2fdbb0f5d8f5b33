"""Usage errors of the real ``perago`` console script, in the root group and in the lazily loaded
subgroups and commands, are one ``error: <message>`` line on stderr (like every other error) and
exit status 2 (click's usage-error status): no usage block, no ``Try ... --help``, no box."""

from __future__ import annotations

import pytest

from tests.cli.conftest import Project

USAGE_ERRORS = [
    # The root group.
    pytest.param(("--bogus",), "No such option: --bogus", id="root-option"),
    pytest.param(
        ("chek",), "No such command 'chek'. Did you mean 'check', 'cache'?", id="root-command"
    ),
    # Lazily loaded commands.
    pytest.param(("check",), "Missing argument 'MODULE'.", id="check-missing-module"),
    pytest.param(
        ("check", "--jsn", "tasks"),
        "No such option: --jsn (Possible options: --json)",
        id="check-option",
    ),
    pytest.param(
        ("check", "tasks", "extra"),
        "Got unexpected extra argument(s) (extra)",
        id="check-extra-argument",
    ),
    pytest.param(("extract", "tasks"), "Missing option '--output' / '-o'.", id="extract-output"),
    pytest.param(("register",), "Missing argument 'MODULE'.", id="register-missing-module"),
    pytest.param(
        ("start", "--execution-mode", "fork", "tasks"),
        "Invalid value for '--execution-mode': 'fork' is not one of 'process', 'thread'.",
        id="start-bad-choice",
    ),
    pytest.param(("run", "tasks"), "Missing option '--params'.", id="run-missing-params"),
    pytest.param(
        ("gc", "--lakefs"), "Option '--lakefs' requires an argument.", id="gc-option-value"
    ),
    # Lazily loaded subgroups and their commands.
    pytest.param(("cache", "bogus"), "No such command 'bogus'.", id="cache-command"),
    pytest.param(
        ("cache", "prune", "--to"), "Option '--to' requires an argument.", id="cache-option-value"
    ),
    pytest.param(
        ("cache", "status", "extra"),
        "Got unexpected extra argument(s) (extra)",
        id="cache-extra-argument",
    ),
    pytest.param(("dev", "nope"), "No such command 'nope'.", id="dev-command"),
    pytest.param(
        ("dev", "up", "--no-such-option"), "No such option: --no-such-option", id="dev-option"
    ),
    pytest.param(
        ("bench", "snapshop"), "No such command 'snapshop'. Did you mean 'snapshot'?", id="bench"
    ),
    pytest.param(
        ("bench", "worker", "--no-such-option"),
        "No such option: --no-such-option",
        id="bench-option",
    ),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS)
def test_a_usage_error_is_one_error_line_with_status_2(
    project: Project, args: tuple[str, ...], message: str
) -> None:
    result = project.run(*args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: {message}\n")


def test_a_bad_number_names_the_option_in_one_line(project: Project) -> None:
    result = project.run("start", "-j", "0", "tasks")
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr_lines
    assert line.startswith("error: Invalid value for '-j' / '--processes': "), line


@pytest.mark.parametrize(
    "args", [pytest.param((), id="root"), pytest.param(("cache",), id="cache")]
)
def test_a_group_without_a_command_still_prints_its_help(
    project: Project, args: tuple[str, ...]
) -> None:
    result = project.run(*args)
    assert result.returncode == 2
    assert "Usage: perago" in result.stdout
    assert result.stderr == ""
