"""Issue 16 against the real Conductor and lakeFS: phase lines and progress as execution logs.

A real ``perago start`` runs a workspace task whose download is held at the fault point
``download.after_reserve`` (after the listing, so the transfer's totals are known and its
counters keep being reported) for more than two lease intervals of a small
``responseTimeoutSeconds``. While it is held the task stays ``IN_PROGRESS`` (the SDK's lease
heartbeats), its execution logs (``GET /api/tasks/{taskId}/log``) already show the phase lines and
a progress line, and its output is untouched. After the release the log lists every phase and
the attempt's end with its published commit, the task's output is exactly perago's result, and
no line holds a secret.

``test_conductor_drops_what_a_lease_heartbeat_carries`` pins the server behaviour that rules the
lease heartbeat out as the carrier of progress (see ``perago.runtime.conductor_progress``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    WORKSPACE_INPUTS,
    ConductorRest,
    Workspace,
    deploy,
    lakectl_dotenv,
    make_project,
    stop,
    wait_until,
)
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

RESPONSE_TIMEOUT = 6  # lease heartbeat (and log flush) every 4.8 s
HOLD_POINT = "download.after_reserve"
AUTH_SECRET = "perago-e2e-conductor-secret"

TASK_SOURCE = """
from pathlib import Path
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy, WorkspaceSpec, require_file

class Params(BaseModel):
    pass

class Result(BaseModel):
    wrote: str

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data", pre=[require_file("seed.txt")]),
    controls=TaskControls(
        retry=RetryPolicy(count=0, delay_seconds=0),
        timeout=TimeoutPolicy(seconds=300, response_seconds={response}, policy="RETRY"),
    ),
)
def run(workspace: Path, params: Params) -> Result:
    (workspace / "out.txt").write_text("progress")
    return Result(wrote="out.txt")
"""


OVERDUE_SOURCE = """
import time
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy

class Params(BaseModel):
    sleep: float

class Result(BaseModel):
    slept: float

@task(
    name="{name}",
    owner_email="tests@example.com",
    controls=TaskControls(
        retry=RetryPolicy(count=0, delay_seconds=0),
        timeout=TimeoutPolicy(seconds=3, response_seconds=2, policy="RETRY"),
    ),
)
def run(params: Params) -> Result:
    time.sleep(params.sleep)
    return Result(slept=params.sleep)
"""


def _task(rest: ConductorRest, task_id: str) -> dict[str, Any]:
    response = rest.http.get(f"{rest.api_url}/tasks/{task_id}", timeout=30)
    response.raise_for_status()
    found: dict[str, Any] = response.json()
    return found


def _logs(rest: ConductorRest, task_id: str) -> list[dict[str, Any]]:
    response = rest.http.get(f"{rest.api_url}/tasks/{task_id}/log", timeout=30)
    response.raise_for_status()
    return list(response.json()) if response.status_code == 200 and response.content else []


def _texts(rest: ConductorRest, task_id: str) -> list[str]:
    return [str(entry["log"]) for entry in _logs(rest, task_id)]


def test_a_long_attempt_shows_its_phases_and_progress_in_conductor(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    lakefs_secret = workspace.config.secret_access_key.get_secret_value()
    project = make_project(
        tmp_path,
        "mod_" + unique_name,
        TASK_SOURCE.format(name=unique_name, response=RESPONSE_TIMEOUT),
        conductor_api_url=conductor_server.api_url,
        dotenv={
            **lakectl_dotenv(workspace.config),
            "CONDUCTOR_AUTH_KEY": "perago-e2e-key-id",
            "CONDUCTOR_AUTH_SECRET": AUTH_SECRET,
        },
        env={"PERAGO_FAULT_GATE_DIR": str(gate)},
    )
    app = deploy(project, rest, unique_name, WORKSPACE_INPUTS)
    (gate / f"{HOLD_POINT}.hold").touch()
    worker = project.start()
    try:
        workflow_id = app.start_workflow({"workspace": workspace.input(), "params": {}})
        reached = gate / f"{HOLD_POINT}.reached"
        wait_until(reached.exists, f"the attempt to reach {HOLD_POINT}", timeout=120)
        task_id = rest.wait_for_task_status(workflow_id, "IN_PROGRESS")["taskId"]
        held_since = time.monotonic()

        # (a) While the download is held: the phase lines and a progress line are in the task's
        # execution logs, the task is IN_PROGRESS and its output untouched.
        progress = "download 0% (0 B of 4 B, 0 of 1 file)"
        wait_until(
            lambda: progress in _texts(rest, task_id),
            "the progress line in the task's execution logs",
            timeout=4 * RESPONSE_TIMEOUT,
        )
        running = _task(rest, task_id)
        assert running["status"] == "IN_PROGRESS"
        assert running["outputData"] == {}
        while_running = _texts(rest, task_id)
        assert while_running[0] == "attempt started (retry 0)"
        assert while_running[1].startswith("phase validate_input done in ")
        assert while_running[2].startswith("phase prepare done in ")
        assert while_running[3:] == ["phase download started", progress]
        assert while_running.index("phase download started") < while_running.index(progress)
        # Held for more than two lease intervals: the SDK's heartbeats keep the lease.
        time.sleep(max(0.0, 2.2 * RESPONSE_TIMEOUT * 0.8 - (time.monotonic() - held_since)))
        still = _task(rest, task_id)
        assert still["status"] == "IN_PROGRESS", still
        assert still["outputData"] == {}
        assert _texts(rest, task_id).count(progress) == 1  # unchanged counters: said once

        (gate / f"{HOLD_POINT}.hold").unlink()
        state = rest.wait(workflow_id, timeout=120)
    finally:
        code, out, err = stop(worker)
    assert code == 0, err
    assert state["status"] == "COMPLETED", state

    # (b) After the end: every phase and the attempt's end in the log, the output exactly
    # perago's result, no secret anywhere.
    (task,) = state["tasks"]
    final = _task(rest, task_id)
    assert final["status"] == "COMPLETED"
    output = final["outputData"]
    assert set(output) == {"workspace", "result"}
    assert output == task["outputData"] == state["output"]
    assert output["result"] == {"wrote": "out.txt"}
    published = output["workspace"]["ref"]
    assert workspace.changed(published) == ["data/out.txt"]

    texts = _texts(rest, task_id)
    assert texts[0] == "attempt started (retry 0)"
    assert texts[-1].startswith("attempt COMPLETED in ")
    assert texts[-1].endswith(f", published {published}")
    lines = "\n".join(texts)
    for phase in ("validate_input", "prepare", "body", "detect_changes", "fence", "stage"):
        assert f"phase {phase} done in " in lines, texts
    assert "phase publish done in " in lines
    assert "phase download done in " in lines
    assert any(
        line.startswith("phase download done in ") and line.endswith("(1 file, 4 B)")
        for entry in texts
        for line in entry.split("; ")
    ), texts
    assert texts.index(progress) < next(
        i for i, t in enumerate(texts) if t.startswith("phase download done in ")
    )
    assert {entry["taskId"] for entry in _logs(rest, task_id)} == {task_id}
    for secret in (lakefs_secret, AUTH_SECRET):
        assert secret not in lines
        assert secret not in out
        assert secret not in err


def test_an_overdue_attempt_still_logs_its_end(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    """The deadline watchdog reports the attempt itself (the SDK's result never goes out, the
    process exits): its end is posted before the exit."""
    project = make_project(
        tmp_path,
        "mod_" + unique_name,
        OVERDUE_SOURCE.format(name=unique_name),
        conductor_api_url=conductor_server.api_url,
    )
    app = deploy(project, rest, unique_name, {"params": "${workflow.input.params}"})
    worker = project.start()
    try:
        workflow_id = app.start_workflow({"params": {"sleep": 3600}})
        state = rest.wait(workflow_id, timeout=60)
        (task,) = state["tasks"]
        task_id = task["taskId"]
        ended = "attempt FAILED in "
        wait_until(
            lambda: any(text.startswith(ended) for text in _texts(rest, task_id)),
            "the attempt's end in the execution logs",
            timeout=30,
        )
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    texts = _texts(rest, task_id)
    assert texts[0] == "attempt started (retry 0)"
    assert "phase body started" in texts  # posted live: the attempt outlived its first flush
    (end,) = [text for text in texts if text.startswith(ended)]
    assert end.endswith(": TimeoutError: attempt exceeded timeoutSeconds=3 and was stopped"), end
    assert texts[-1] == end


def test_conductor_drops_what_a_lease_heartbeat_carries(
    rest: ConductorRest, unique_name: str
) -> None:
    """Why progress is not in the heartbeat: Conductor OSS answers ``extendLease=true`` by only
    touching the task's update time (``outputData`` and ``logs`` dropped); an ``IN_PROGRESS``
    update without it reschedules the task; a ``COMPLETED`` update replaces the output whole
    and stores its ``logs``."""
    taskdef: dict[str, Any] = {
        "name": unique_name,
        "ownerEmail": "tests@example.com",
        "responseTimeoutSeconds": 60,
        "timeoutSeconds": 300,
        "retryCount": 0,
    }
    rest.http.post(
        f"{rest.api_url}/metadata/taskdefs", json=[taskdef], timeout=30
    ).raise_for_status()
    rest.register_workflow(f"{unique_name}_wf", unique_name, {})
    base = rest.api_url

    def polled() -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            response = rest.http.get(
                f"{base}/tasks/poll/batch/{unique_name}",
                params={"workerid": "w1", "count": "1", "timeout": "100"},
                timeout=30,
            )
            response.raise_for_status()
            if response.json():
                return dict(response.json()[0])
            time.sleep(0.1)
        raise AssertionError("no task to poll")

    def update(body: dict[str, Any]) -> None:
        rest.http.post(f"{base}/tasks", json=body, timeout=30).raise_for_status()

    progress = {"perago_progress": {"phase": "download", "bytes_done": 1, "bytes_total": 4}}
    log = [{"log": "from a heartbeat", "createdTime": int(time.time() * 1000)}]

    workflow_id = rest.start_workflow(f"{unique_name}_wf", {})
    task_id = polled()["taskId"]
    ids = {"taskId": task_id, "workflowInstanceId": workflow_id, "workerId": "w1"}
    update(
        {**ids, "status": "IN_PROGRESS", "extendLease": True, "outputData": progress, "logs": log}
    )
    leased = _task(rest, task_id)
    assert (leased["status"], leased["outputData"]) == ("IN_PROGRESS", {})
    assert _logs(rest, task_id) == []
    completed_log = [{"log": "attempt COMPLETED", "createdTime": int(time.time() * 1000)}]
    update({**ids, "status": "COMPLETED", "outputData": {"result": 1}, "logs": completed_log})
    done = _task(rest, task_id)
    assert (done["status"], done["outputData"]) == ("COMPLETED", {"result": 1})
    assert [entry["log"] for entry in _logs(rest, task_id)] == ["attempt COMPLETED"]

    workflow_id = rest.start_workflow(f"{unique_name}_wf", {})
    task_id = polled()["taskId"]
    ids = {"taskId": task_id, "workflowInstanceId": workflow_id, "workerId": "w1"}
    update({**ids, "status": "IN_PROGRESS", "callbackAfterSeconds": 60, "outputData": progress})
    requeued = _task(rest, task_id)
    assert (requeued["status"], requeued["outputData"]) == ("SCHEDULED", progress)
    update({**ids, "status": "COMPLETED", "outputData": {"result": 2}})
    assert _task(rest, task_id)["outputData"] == {"result": 2}  # replaced, not merged
