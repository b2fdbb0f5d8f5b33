"""Shell completion of the real ``perago`` console script (typer's ``--show-completion`` /
``--install-completion`` and its ``_PERAGO_COMPLETE`` protocol), through the lazily loaded
command groups: command names from the tables, options and subcommands from the loaded commands.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from perago.bench.cli import BENCH_COMMANDS
from perago.cli.app import COMMANDS
from tests.cli.conftest import Project, perago_executable

COMPLETIONS = [
    pytest.param("perago ", list(COMMANDS), id="commands"),
    pytest.param("perago c", ["check", "cache"], id="commands-prefix"),
    pytest.param(
        "perago --", ["--version", "--install-completion", "--show-completion", "--help"], id="root"
    ),
    pytest.param("perago check --", ["--json", "--help"], id="check-options"),
    pytest.param(
        "perago run tasks --",
        ["--params", "--workspace", "--lakefs", "--publish", "--help"],
        id="run-options",
    ),
    pytest.param("perago cache ", ["status", "prune", "verify"], id="cache"),
    pytest.param("perago cache st", ["status"], id="cache-prefix"),
    pytest.param("perago cache prune --", ["--to", "--help"], id="cache-prune-options"),
    pytest.param("perago dev ", ["up", "down", "status", "provision"], id="dev"),
    pytest.param("perago bench ", list(BENCH_COMMANDS), id="bench"),
]


def _complete_bash(project: Project, words: str) -> list[str]:
    """What the bash protocol answers for the command line ``words`` (cursor at its end)."""
    env = {
        "_PERAGO_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = project.run(env=env)
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout_lines


@pytest.mark.parametrize(("words", "expected"), COMPLETIONS)
def test_the_bash_protocol_completes_through_lazy_groups(
    project: Project, words: str, expected: list[str]
) -> None:
    assert _complete_bash(project, words) == expected


def test_zsh_completion_shows_each_commands_one_line_help(project: Project) -> None:
    env = {"_PERAGO_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "perago cache "}
    result = project.run(env=env)
    assert result.returncode == 0, result
    assert '"status":"Print the cache' in result.stdout
    assert '"verify":"Re-hash every entry' in result.stdout


def _bash(project: Project, script: str, env: dict[str, str] | None = None) -> str:
    """Run ``script`` in a non-interactive bash (``$0`` is the console script); its stdout.

    ``--show-completion`` and ``--install-completion`` detect the shell perago runs under, so
    perago must be bash's child: no script ends with it (bash would ``exec`` a last command).
    """
    completed = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script, str(perago_executable())],
        cwd=project.root,
        env={**project.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed
    return completed.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_shown_bash_script_completes_lazily_loaded_subcommands(project: Project) -> None:
    # The script is evaluated and its function called as bash would on `perago cache <TAB>`.
    script = (
        'eval "$("$0" --show-completion)" || exit 1\n'
        "complete -p perago || exit 1\n"
        'COMP_WORDS=(perago cache ""); COMP_CWORD=2\n'
        '_perago_completion "$0"\n'
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    assert _bash(project, script).splitlines() == [
        "complete -o default -F _perago_completion perago",
        "status",
        "prune",
        "verify",
    ]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_install_completion_writes_the_script_and_sources_it(project: Project) -> None:
    home = project.root / "home"
    home.mkdir()
    _bash(project, '"$0" --install-completion || exit 1\nexit 0\n', env={"HOME": str(home)})
    script = home / ".bash_completions" / "perago.sh"
    assert "_PERAGO_COMPLETE=complete_bash" in script.read_text(encoding="utf-8")
    assert f"source '{script}'" in (home / ".bashrc").read_text(encoding="utf-8")
