"""The real ``perago`` console script: check, extract, --version, errors and warnings.

Every run happens in a temporary project directory without PYTHONPATH, so these tests also prove
that the current directory is importable like with ``python -m``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import perago
from tests.cli.conftest import Project, Result

WORD_TASK = """\
from pydantic import BaseModel

from perago import task


class Params(BaseModel):
    text: str


class Result(BaseModel):
    words: int


@task(name="words", owner_email="team@example.com")
def words(params: Params) -> Result:
    return Result(words=len(params.text.split()))
"""

WORKSPACE_TASK = """\
from pathlib import Path

from pydantic import BaseModel

from perago import WorkspaceSpec, task


class Params(BaseModel):
    n: int


class Result(BaseModel):
    ok: bool


@task(name="pkg.build", owner_email="team@example.com", workspace=WorkspaceSpec(prefix="d"))
def build(workspace: Path, params: Params) -> Result:
    return Result(ok=True)
"""

SECRET = "very-secret-lakefs-key"
LAKEFS_DOTENV = (
    "LAKECTL_SERVER_ENDPOINT_URL=http://127.0.0.1:8000\n"
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID=AKIAEXAMPLE\n"
    f"LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY='{SECRET}'\n"
)


def assert_error(result: Result, message: str | None = None, *, contains: str = "") -> str:
    """Exit 1, nothing on stdout, exactly one ``error:`` line on stderr, no traceback."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr_lines) == 1, result.stderr
    (line,) = result.stderr_lines
    assert line.startswith("error: ")
    if message is not None:
        assert line == f"error: {message}"
    assert contains in line
    return line


# --- version and success paths --------------------------------------------------------------


def test_version(project: Project) -> None:
    result = project.run("--version")
    assert result.returncode == 0
    assert result.stdout == f"{perago.__version__}\n"


def test_no_arguments_prints_usage(project: Project) -> None:
    result = project.run()
    assert result.returncode == 2
    assert "Usage" in result.stdout + result.stderr


def test_check_prints_the_documented_lines(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    result = project.run("check", "wordtask")
    assert result.returncode == 0, result
    assert result.stderr == ""
    assert result.stdout_lines == [
        "ok: words",
        f"workspace_root: {project.env['PERAGO_WORKSPACE_ROOT']}",
        f"log_root: {project.env['PERAGO_LOG_ROOT']}",
        "worker_id_prefix: wordtask",
        "conductor: not configured",
        "lakefs: not configured",
        "conductor_auth: not configured",
        "content_cache: off (set PERAGO_CACHE_DIR to enable)",
        "metrics: not configured",
        "sdk_worker: domain=(none) poll_interval_ms=100 poll_timeout_ms=100",
        "body_env_passthrough: (none)",
    ]
    # The root probes create the roots (documented side effect) and leave nothing inside.
    assert list(Path(project.env["PERAGO_WORKSPACE_ROOT"]).iterdir()) == []
    assert list(Path(project.env["PERAGO_LOG_ROOT"]).iterdir()) == []


def test_check_nested_package_from_cwd_with_configured_servers(project: Project) -> None:
    project.write("pkg/__init__.py", "")
    project.write("pkg/jobs/__init__.py", "")
    project.write("pkg/jobs/build.py", WORKSPACE_TASK)
    project.write(".env", LAKEFS_DOTENV + "PERAGO_WORKER_ID_PREFIX=prodBuild\n")
    result = project.run("check", "pkg.jobs.build", env={"CONDUCTOR_SERVER_URL": "http://c/api"})
    assert result.returncode == 0, result
    assert result.stdout_lines[0] == "ok: pkg.build"
    assert result.stdout_lines[3:6] == [
        "worker_id_prefix: prodBuild",
        "conductor: configured",
        "lakefs: configured",
    ]
    assert SECRET not in result.stdout + result.stderr


def test_check_json(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    result = project.run("check", "wordtask", "--json")
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == {
        "ok": True,
        "name": "words",
        "workspace_root": project.env["PERAGO_WORKSPACE_ROOT"],
        "log_root": project.env["PERAGO_LOG_ROOT"],
        "worker_id_prefix": "wordtask",
        "conductor": "not configured",
        "lakefs": "not configured",
        "conductor_auth": "not configured",
        "content_cache": None,
        "metrics": None,
        "sdk_worker": {
            "domain": None,
            "poll_interval_ms": 100.0,
            "poll_timeout_ms": 100,
            "sources": {},
            "ignored": [],
        },
        "body_env_passthrough": [],
        "warnings": [],
    }
    assert len(result.stdout_lines) == 1


def test_extract_writes_taskdef_and_prints_only_the_path(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    result = project.run("extract", "wordtask", "-o", "generated/words.json")
    assert result.returncode == 0, result
    assert result.stdout == "generated/words.json\n"
    assert result.stderr == ""
    text = (project.root / "generated/words.json").read_text()
    assert text.endswith("}\n")
    taskdef = json.loads(text)
    assert taskdef["name"] == "words"
    assert taskdef["inputKeys"] == ["params"]
    assert taskdef["outputKeys"] == ["result"]
    assert "127.0.0.1" not in text


def test_extract_long_option_and_no_server_urls_in_taskdef(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    project.write(".env", LAKEFS_DOTENV + "CONDUCTOR_SERVER_URL=http://conductor.internal/api\n")
    result = project.run("extract", "wordtask", "--output", "out.json")
    assert result.returncode == 0, result
    text = (project.root / "out.json").read_text()
    for leaked in ("conductor.internal", "127.0.0.1", SECRET, "AKIAEXAMPLE"):
        assert leaked not in text


# --- errors: one line, exit 1, never a traceback --------------------------------------------


def test_missing_module(project: Project) -> None:
    assert_error(
        project.run("check", "nope"),
        "cannot import nope: No module named 'nope' "
        "(run perago from the directory that contains the package)",
    )


def test_missing_dependency_of_the_task_module(project: Project) -> None:
    project.write("needsdep.py", "import missing_dependency_xyz\n")
    assert_error(
        project.run("extract", "needsdep", "-o", "x.json"),
        "cannot import needsdep: No module named 'missing_dependency_xyz'",
    )


def test_syntax_error_in_task_module(project: Project) -> None:
    project.write("broken.py", "x = (\n")
    line = assert_error(project.run("check", "broken"), contains="cannot import broken: ")
    assert "SyntaxError" in line
    assert "broken.py, line 1" in line


def test_exception_while_importing(project: Project) -> None:
    project.write("boom.py", "raise RuntimeError('boom\\nsecond line')\n")
    assert_error(
        project.run("check", "boom"), "cannot import boom: RuntimeError: boom; second line"
    )


def test_recursion_error_while_importing(project: Project) -> None:
    project.write("rec.py", "def f():\n    return f()\n\n\nf()\n")
    assert_error(
        project.run("check", "rec"), contains="cannot import rec: RecursionError: maximum recursion"
    )


@pytest.mark.parametrize("target", ["wordtask.py", "pkg/mod", "pkg.mod:fn", "a..b"])
def test_file_paths_are_not_module_targets(project: Project, target: str) -> None:
    assert_error(
        project.run("check", target),
        "module target must be a Python import path, not a file path or object path",
    )


def test_module_without_task(project: Project) -> None:
    project.write("empty.py", "X = 1\n")
    assert_error(project.run("check", "empty"), "empty does not declare a Perago task")


def test_module_with_two_tasks(project: Project) -> None:
    second = WORD_TASK + (
        '\n\n@task(name="other", owner_email="team@example.com")\n'
        "def other(params: Params) -> Result:\n"
        "    return Result(words=0)\n"
    )
    project.write("two.py", second)
    assert_error(project.run("check", "two"), "two declares more than one Perago task")


def test_task_definition_error_at_decoration(project: Project) -> None:
    source = WORD_TASK.replace('owner_email="team@example.com"', 'owner_email="t@e.com", params=1')
    project.write("badfields.py", source)
    assert_error(project.run("check", "badfields"), "unsupported task decorator fields: params")


def test_validation_error_is_condensed_to_one_line(project: Project) -> None:
    project.write("badspec.py", WORKSPACE_TASK.replace('prefix="d"', 'prefix="../x"'))
    assert_error(
        project.run("check", "badspec"),
        "invalid WorkspaceSpec: prefix: WorkspaceSpec.prefix must stay inside the repository",
    )


def test_root_model_is_rejected(project: Project) -> None:
    source = WORD_TASK.replace(
        "class Params(BaseModel):\n    text: str",
        "class Params(RootModel[list[str]]):\n    pass",
    ).replace("from pydantic import BaseModel", "from pydantic import BaseModel, RootModel")
    source = source.replace("len(params.text.split())", "len(params.root)")
    project.write("rooted.py", source)
    assert_error(project.run("check", "rooted"), contains="RootModel on task model(s) Params")


def test_unserialisable_field_type_is_rejected(project: Project) -> None:
    source = WORD_TASK.replace("text: str", "text: str\n    hook: Callable[[], None]")
    source = "from collections.abc import Callable\n" + source
    project.write("callable_field.py", source)
    line = assert_error(
        project.run("extract", "callable_field", "-o", "x.json"),
        contains="cannot be described as JSON schema",
    )
    assert "hook" in line
    assert not (project.root / "x.json").exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            "taskdef.txt",
            "output must be a JSON file path, for example generated/features.build.json",
        ),
        ("existing.json", "output must be a JSON file path, not a directory"),
    ],
)
def test_extract_bad_output_path(project: Project, output: str, message: str) -> None:
    project.write("wordtask.py", WORD_TASK)
    (project.root / "existing.json").mkdir()
    assert_error(project.run("extract", "wordtask", "-o", output), message)


def test_config_error_from_environment(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    assert_error(
        project.run("check", "wordtask", env={"PERAGO_LOG_RETENTION": "forever"}),
        "PERAGO_LOG_RETENTION must be a positive day count such as '7d' or '30d'",
    )


def test_config_errors_mask_task_errors(project: Project) -> None:
    project.write(".env", "CONDUCTOR_SERVER_URL=replace-me\n")
    assert_error(
        project.run("check", "does_not_exist"),
        "CONDUCTOR_SERVER_URL must be replaced with a real value",
    )


def test_incomplete_lakefs_config(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    project.write(".env", "LAKECTL_SERVER_ENDPOINT_URL=http://127.0.0.1:8000\n")
    assert_error(
        project.run("extract", "wordtask", "-o", "x.json"),
        "LakeFS config is incomplete; missing LAKECTL_CREDENTIALS_ACCESS_KEY_ID, "
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    )


def test_unwritable_root(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    blocker = project.write("blocker", "a file, not a directory")
    root = blocker / "workspaces"
    line = assert_error(
        project.run("check", "wordtask", env={"PERAGO_WORKSPACE_ROOT": str(root)}),
        contains=f"error: {root} is not writable: ",
    )
    assert "Not a directory" in line


def test_missing_required_option_is_a_usage_error(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    result = project.run("extract", "wordtask")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


# --- warnings -------------------------------------------------------------------------------

BUDGET = (
    "PublishBudget(observed_merge_p99_seconds=10, safety_margin_seconds=5, "
    "lakefs_merge_timeout_seconds=45, conductor_completion_timeout_seconds=15, "
    "worker_shutdown_grace_seconds=30, heartbeat_interval_seconds=10)"
)


def budget_task(*, read_only: bool, response_seconds: int) -> str:
    return (
        WORKSPACE_TASK.replace(
            "from perago import WorkspaceSpec, task",
            "from perago import PublishBudget, TaskControls, TimeoutPolicy, WorkspaceSpec, task",
        )
        .replace('prefix="d"', f'prefix="d", read_only={read_only}')
        .replace(
            "workspace=WorkspaceSpec(",
            f"controls=TaskControls(timeout=TimeoutPolicy(response_seconds={response_seconds}),"
            f" publish_budget={BUDGET}), workspace=WorkspaceSpec(",
        )
    )


def test_read_only_budget_warning_once(project: Project) -> None:
    project.write("ro.py", budget_task(read_only=True, response_seconds=600))
    result = project.run("extract", "ro", "-o", "ro.json")
    assert result.returncode == 0, result
    assert result.stderr_lines == [
        "warning: WorkspaceSpec(read_only=True) disables workspace publication; "
        "TaskControls.publish_budget is ignored."
    ]
    assert result.stdout == "ro.json\n"


@pytest.mark.parametrize("command", ["check", "extract"])
def test_short_response_timeout_warning_once_in_cli_format(project: Project, command: str) -> None:
    project.write("short.py", budget_task(read_only=False, response_seconds=60))
    args = ["extract", "short", "-o", "short.json"] if command == "extract" else ["check", "short"]
    result = project.run(*args)
    assert result.returncode == 0, result
    assert result.stderr_lines == [
        "warning: Task 'pkg.build' has TaskControls.timeout.response_seconds=60 which is "
        "shorter than publish_budget.response_timeout_seconds=100; "
        "responseTimeoutSeconds will use timeout.response_seconds"
    ]


def test_config_dict_warning_and_json_lists_warnings(project: Project) -> None:
    source = WORD_TASK.replace(
        "class Params(BaseModel):\n",
        "class Params(BaseModel):\n    model_config = ConfigDict(str_strip_whitespace=True)\n",
    ).replace("from pydantic import BaseModel", "from pydantic import BaseModel, ConfigDict")
    project.write("configured.py", source)
    result = project.run("check", "configured", "--json")
    assert result.returncode == 0, result
    assert len(result.stderr_lines) == 1
    (line,) = result.stderr_lines
    assert line.startswith("warning: Pydantic ConfigDict on task model(s) Params ")
    assert json.loads(result.stdout)["warnings"] == [line.removeprefix("warning: ")]


def test_user_warning_during_import_uses_cli_format(project: Project) -> None:
    project.write("noisy.py", "import warnings\nwarnings.warn('heads up')\n" + WORD_TASK)
    result = project.run("check", "noisy")
    assert result.returncode == 0, result
    assert result.stderr_lines == ["warning: heads up"]
