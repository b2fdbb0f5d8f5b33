"""``perago check``/``register``/``start`` and issue 12: one loader, SDK settings, no secrets.

``check`` runs the real console script; ``register`` and the ``start`` pre-flight run in-process
with the SDK's HTTP client replaced, to see the exact configuration object the command hands to
conductor-python (the e2e tests in tests/e2e/test_conductor_auth.py do it against the server).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import Project
from tests.cli.test_cli import WORD_TASK, assert_error

AUTH_SECRET = "conductor-secret-that-must-never-print"
AUTH_DOTENV = f"CONDUCTOR_AUTH_KEY=key-from-dotenv\nCONDUCTOR_AUTH_SECRET={AUTH_SECRET}\n"


def test_check_shows_auth_sdk_settings_and_passthrough_without_secrets(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    project.write(
        ".env",
        AUTH_DOTENV
        + "CONDUCTOR_WORKER_WORDS_DOMAIN=blue\n"
        + "conductor.worker.all.poll_interval=250\n"
        + "CONDUCTOR_WORKER_THREAD_COUNT=8\n"
        + "PERAGO_BODY_ENV_PASSTHROUGH=CONDUCTOR_AUTH_KEY,HF_TOKEN\n",
    )
    text = project.run("check", "wordtask")
    assert text.returncode == 0, text
    assert text.stdout_lines[6:] == [
        "conductor_auth: configured",
        "content_cache: off (set PERAGO_CACHE_DIR to enable)",
        "metrics: not configured",
        "sdk_worker: domain=blue poll_interval_ms=250 poll_timeout_ms=100",
        "body_env_passthrough: CONDUCTOR_AUTH_KEY,HF_TOKEN",
    ]
    warning = (
        "warning: ignoring conductor-python worker settings perago manages or cannot use: "
        "CONDUCTOR_WORKER_THREAD_COUNT"
    )
    assert text.stderr_lines == [warning]

    as_json = project.run("check", "wordtask", "--json")
    assert as_json.returncode == 0, as_json
    document = json.loads(as_json.stdout)
    assert document["conductor_auth"] == "configured"
    assert document["sdk_worker"] == {
        "domain": "blue",
        "poll_interval_ms": 250.0,
        "poll_timeout_ms": 100,
        "sources": {
            "domain": "CONDUCTOR_WORKER_WORDS_DOMAIN",
            "poll_interval": "conductor.worker.all.poll_interval",
        },
        "ignored": ["CONDUCTOR_WORKER_THREAD_COUNT"],
    }
    assert document["body_env_passthrough"] == ["CONDUCTOR_AUTH_KEY", "HF_TOKEN"]
    assert document["warnings"] == [warning.removeprefix("warning: ")]
    for result in (text, as_json):
        assert AUTH_SECRET not in result.stdout + result.stderr


def test_check_refuses_an_unsafe_root_in_one_line(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    shared = project.root / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    line = assert_error(project.run("check", "wordtask", env={"PERAGO_LOG_ROOT": str(shared)}))
    assert line == (
        f"error: {shared} is world-writable without the sticky bit (mode 777); refusing to use "
        "it (set PERAGO_LOG_ROOT to a directory of your own)"
    )


def test_check_reports_an_incomplete_key_pair(project: Project) -> None:
    project.write("wordtask.py", WORD_TASK)
    project.write(".env", "CONDUCTOR_AUTH_KEY=k\n")
    assert_error(
        project.run("check", "wordtask"),
        "Conductor auth config is incomplete; missing CONDUCTOR_AUTH_SECRET",
    )


# --- in-process: the configuration register and start hand to the SDK ----------------------


class RecordingApiClient:
    """Stands in for conductor-python's ApiClient: records its configuration and the calls."""

    instances: ClassVar[list[RecordingApiClient]] = []

    def __init__(self, configuration: Any = None, **_: Any) -> None:
        self.configuration = configuration
        self.calls: list[tuple[str, str]] = []
        RecordingApiClient.instances.append(self)

    def call_api(self, path: str, method: str, *_args: Any, **_kwargs: Any) -> Any:
        self.calls.append((method, path))
        return None  # GET: not registered; POST: accepted


@pytest.fixture
def in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """A project directory as cwd, an environment without perago's variables, a fake SDK client.

    Returns the task module's (unique) name.
    """
    for key in list(os.environ):
        if key.startswith(("PERAGO_", "LAKECTL_", "CONDUCTOR_")):
            monkeypatch.delenv(key)
    module = f"secrets_task_{abs(hash(request.node.name)) % 10**8}"
    (tmp_path / f"{module}.py").write_text(WORD_TASK, encoding="utf-8")
    (tmp_path / ".env").write_text(
        "CONDUCTOR_SERVER_URL=http://conductor.invalid/api\n"
        f"PERAGO_WORKSPACE_ROOT={tmp_path / 'ws'}\nPERAGO_LOG_ROOT={tmp_path / 'logs'}\n"
        + AUTH_DOTENV,
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    RecordingApiClient.instances = []
    monkeypatch.setattr("perago.conductor.client.ApiClient", RecordingApiClient)
    return module


def _sdk_configuration() -> Any:
    (client,) = RecordingApiClient.instances
    return client.configuration


@pytest.mark.parametrize("command", ["register", "start"])
def test_register_and_start_use_the_dotenv_key_pair(in_process: str, command: str) -> None:
    from perago.cli.app import app

    result = CliRunner().invoke(app, [command, in_process])
    configuration = _sdk_configuration()
    assert configuration.host == "http://conductor.invalid/api"
    assert configuration.authentication_settings.key_id == "key-from-dotenv"
    assert configuration.authentication_settings.key_secret == AUTH_SECRET
    # Never by exporting the .env values into the CLI process.
    assert "CONDUCTOR_AUTH_KEY" not in os.environ
    assert "CONDUCTOR_AUTH_SECRET" not in os.environ
    if command == "register":
        assert result.exit_code == 0, result.output
        assert result.output.strip() == "created: words"
    else:  # the pre-flight reached Conductor with the pair, and the TaskDef is not there
        assert result.exit_code == 1
        assert "Conductor TaskDef 'words' is not registered" in result.output
    assert AUTH_SECRET not in result.output
