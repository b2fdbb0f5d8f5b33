"""What ``perago start`` prints: a start line, a line per finished attempt, warnings; JSON on
stdout with ``--log-format json`` (real Conductor, real lakeFS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    WORKSPACE_INPUTS,
    ConductorRest,
    Deployment,
    Workspace,
    deploy,
    lakectl_dotenv,
    make_project,
    stop,
    wait_until,
)
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

TASK_SOURCE = """
import time
from pathlib import Path
from pydantic import BaseModel
from perago import RetryPolicy, TaskControls, TaskFailed, WorkspaceSpec, task

class Params(BaseModel):
    fail: bool = False
    gate: str = ""

class Result(BaseModel):
    ok: bool

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data"),
    controls=TaskControls(retry=RetryPolicy(count=0, delay_seconds=0)),
)
def run(workspace: Path, params: Params) -> Result:
    if params.gate:
        # Held in the body until the test opens the gate (never a sleep that hopes to be long
        # enough): the test reads perago status meanwhile.
        Path(params.gate + ".reached").touch()
        while not Path(params.gate).exists():
            time.sleep(0.05)
    if params.fail:
        raise TaskFailed("asked to fail")
    (workspace / "made.txt").write_text("twelve bytes")
    return Result(ok=True)
"""


@pytest.fixture
def console_app(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> Callable[[], Deployment]:
    def make() -> Deployment:
        project = make_project(
            tmp_path,
            "console_" + unique_name,
            TASK_SOURCE.format(name=unique_name),
            conductor_api_url=conductor_server.api_url,
            dotenv=lakectl_dotenv(workspace.config),
        )
        return deploy(project, rest, unique_name, WORKSPACE_INPUTS)

    return make


def test_text_console_has_a_start_line_and_one_line_per_attempt(
    console_app: Callable[[], Deployment], rest: ConductorRest, workspace: Workspace
) -> None:
    app = console_app()
    worker = app.project.start("-j", "2")
    try:
        done = rest.wait(app.start_workflow({"workspace": workspace.input(), "params": {}}))
        failed = rest.wait(
            app.start_workflow({"workspace": workspace.input(), "params": {"fail": True}})
        )
    finally:
        code, out, err = stop(worker)
    assert code == 0, err
    assert out == ""  # text goes to stderr
    lines = [line for line in err.splitlines() if line.startswith("perago: ")]
    started = [line for line in lines if line.startswith("perago: started task ")]
    assert len(started) == 1, err
    assert "2 process slot(s)" in started[0]
    assert "conductor http://" in started[0]
    assert "lakefs http://" in started[0]
    secret = workspace.config.secret_access_key.get_secret_value()
    assert secret not in err
    task_id = done["tasks"][0]["taskId"]
    ref = done["output"]["workspace"]["ref"]
    finished = [line for line in lines if f"task {task_id} in " in line]
    assert len(finished) == 1, err
    assert finished[0].startswith(f"perago: COMPLETED task {task_id} in ")
    assert "up 1 file 12 B" in finished[0]
    assert f"ref {ref}" in finished[0]
    failed_id = failed["tasks"][0]["taskId"]
    failure = [line for line in lines if f"task {failed_id} in " in line]
    assert len(failure) == 1, err
    assert failure[0].startswith(f"perago: FAILED task {failed_id} in ")
    assert "TaskFailed: asked to fail" in failure[0]


def test_json_console_writes_records_to_stdout(
    console_app: Callable[[], Deployment], rest: ConductorRest, workspace: Workspace
) -> None:
    app = console_app()
    worker = app.project.start("--log-format", "json", "--log-level", "INFO")
    try:
        done = rest.wait(app.start_workflow({"workspace": workspace.input(), "params": {}}))
    finally:
        code, out, err = stop(worker)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    messages = [record["message"] for record in records]
    assert "perago started" in messages
    finished = [r for r in records if r["message"] == "attempt finished"]
    assert [r["task_id"] for r in finished] == [done["tasks"][0]["taskId"]]
    assert finished[0]["status"] == "COMPLETED"
    assert finished[0]["published_ref"] == done["output"]["workspace"]["ref"]
    assert all(r["level"] in ("INFO", "WARNING", "ERROR") for r in records)


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_status_shows_each_slot_and_the_running_attempts_phase(
    console_app: Callable[[], Deployment],
    rest: ConductorRest,
    workspace: Workspace,
    tmp_path: Path,
    mode: str,
) -> None:
    app = console_app()
    gate = tmp_path / f"gate-{mode}"
    worker = app.project.start("-j", "2", "--execution-mode", mode)
    try:
        workflow = app.start_workflow(
            {"workspace": workspace.input(), "params": {"gate": str(gate)}}
        )
        wait_until(lambda: Path(str(gate) + ".reached").exists(), "the body to reach its gate")

        def status() -> list[dict[str, Any]]:
            shown = app.project.run("status", "--json")
            assert shown.returncode == 0, shown.stderr
            boards: list[dict[str, Any]] = json.loads(shown.stdout)
            return boards

        def in_body_beside_an_idle_slot() -> bool:
            # A process slot reports ready only once its interpreter has started: on a slow
            # host the other slot can still be starting when the attempt reaches its body.
            boards = status()
            slots = boards[0]["slots"] if boards else []
            return any(slot.get("phase") == "body" for slot in slots) and any(
                slot.get("ready") and not slot.get("attempt") for slot in slots
            )

        wait_until(
            in_body_beside_an_idle_slot,
            "perago status to show the attempt in its body and the other slot idle",
        )
        (board,) = status()
        assert board["alive"] == "alive"
        assert board["mode"] == mode
        assert len(board["slots"]) == 2
        running = [slot for slot in board["slots"] if slot.get("attempt")]
        assert len(running) == 1
        task = rest.workflow(workflow)["tasks"][0]
        assert running[0]["attempt"]["task_id"] == task["taskId"]
        assert running[0]["phase"] == "body"
        text = app.project.run("status")
        assert text.returncode == 0, text.stderr
        assert f"task {task['taskId']}" in text.stdout
        assert "phase body" in text.stdout
        assert ": idle" in text.stdout
        gate.touch()
        done = rest.wait(workflow)
        assert done["status"] == "COMPLETED", done
    finally:
        gate.touch()
        code, _out, err = stop(worker)
    assert code == 0, err
    after = app.project.run("status")
    assert after.stdout.startswith("no supervisor of this host runs on"), after.stdout
