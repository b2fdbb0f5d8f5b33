"""``perago start`` end to end with workspace-free tasks: real Conductor, real subprocesses."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.harness import ConductorRest, Project, make_project, stop
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

TASK_SOURCE = """
import os, time
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy, TaskFailed

class Params(BaseModel):
    text: str
    sleep: float = 0.0
    fail_first: bool = False

class Result(BaseModel):
    words: int
    worker: str

@task(
    name="{name}",
    owner_email="tests@example.com",
    controls=TaskControls(
        retry=RetryPolicy(count={retries}, delay_seconds=0),
        timeout=TimeoutPolicy(seconds={timeout}, response_seconds={response}, policy="RETRY"),
    ),
)
def run(params: Params) -> Result:
    {prelude}
    time.sleep(params.sleep)
    return Result(words=len(params.text.split()), worker=os.environ["PERAGO_WORKER_ID"])
"""


def _project(
    tmp_path: Path,
    conductor: ConductorServer,
    name: str,
    *,
    retries: int = 0,
    timeout: int = 0,
    response: int = 30,
    prelude: str = "pass",
    dotenv: dict[str, str] | None = None,
) -> Project:
    source = TASK_SOURCE.format(
        name=name, retries=retries, timeout=timeout, response=response, prelude=prelude
    )
    module = "mod_" + re.sub(r"\W", "_", name)
    return make_project(
        tmp_path, module, source, conductor_api_url=conductor.api_url, dotenv=dotenv
    )


def _register(project: Project, rest: ConductorRest, name: str) -> str:
    registered = project.run("register", project.module)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.strip() == f"created: {name}"
    rest.register_workflow(f"{name}_wf", name, {"params": "${workflow.input.params}"})
    return f"{name}_wf"


@pytest.fixture
def rest(conductor_server: ConductorServer) -> ConductorRest:
    return ConductorRest(conductor_server.api_url)


def test_start_runs_workflows_and_logs_each_attempt(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    workflow = _register(project, rest, unique_name)
    worker = project.start("-j", "2")
    try:
        ids = [rest.start_workflow(workflow, {"params": {"text": "a b c"}}) for _ in range(4)]
        states = [rest.wait(i) for i in ids]
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert {s["status"] for s in states} == {"COMPLETED"}
    assert {s["output"]["result"]["words"] for s in states} == {3}
    prefix = "".join(ch for ch in project.module if ch.isalnum())
    for state in states:
        (task,) = state["tasks"]
        # Conductor sees the worker process that ran the attempt, not a broker.
        assert task["workerId"] == state["output"]["result"]["worker"]
        assert task["workerId"] in {f"{prefix}0001", f"{prefix}0002"}
    finished = project.events("attempt finished")
    assert sorted(e["workflow_instance_id"] for e in finished) == sorted(ids)
    for event in finished:
        assert event["status"] == "COMPLETED"
        assert event["duration_ms"] >= 0
        assert {"task_id", "retry_count", "execution_id", "files_downloaded"} <= event.keys()
        assert event["time"].endswith("Z")
    assert len(project.events("attempt started")) == 4


def test_failure_is_retried_then_completes_with_reason_logged(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    prelude = (
        "marker = os.path.join(os.getcwd(), 'failed-once')\n"
        "    if params.fail_first and not os.path.exists(marker):\n"
        "        open(marker, 'w').close()\n"
        "        raise TaskFailed('transient problem')"
    )
    project = _project(tmp_path, conductor_server, unique_name, retries=2, prelude=prelude)
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    try:
        state = rest.wait(
            rest.start_workflow(workflow, {"params": {"text": "x", "fail_first": True}})
        )
    finally:
        stop(worker)
    assert state["status"] == "COMPLETED"
    assert [t["status"] for t in state["tasks"]] == ["FAILED", "COMPLETED"]
    assert state["tasks"][0]["reasonForIncompletion"] == "TaskFailed: transient problem"
    (failed,) = [e for e in project.events("attempt finished") if e["status"] == "FAILED"]
    assert failed["exception_type"] == "TaskFailed"
    assert "Traceback" in failed["traceback"]


def test_invalid_params_fail_terminally_without_retry(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name, retries=3)
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    try:
        state = rest.wait(rest.start_workflow(workflow, {"params": {"nope": 1}}))
    finally:
        stop(worker)
    assert state["status"] == "FAILED"
    assert [t["status"] for t in state["tasks"]] == ["FAILED_WITH_TERMINAL_ERROR"]


def test_sigterm_drains_the_running_attempt(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    workflow_id = rest.start_workflow(workflow, {"params": {"text": "slow one", "sleep": 4}})
    project.wait_for_event("attempt started")
    code, _out, err = stop(worker)
    assert code == 0, err
    state = rest.workflow(workflow_id)
    assert state["status"] == "COMPLETED"
    assert [t["status"] for t in state["tasks"]] == ["COMPLETED"]


def test_overdue_attempt_is_stopped_locally_and_the_slot_keeps_working(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name, timeout=8, response=5)
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    try:
        hung = rest.start_workflow(workflow, {"params": {"text": "hang", "sleep": 3600}})
        state = rest.wait(hung, timeout=60)
        after = rest.wait(
            rest.start_workflow(workflow, {"params": {"text": "fine now"}}), timeout=60
        )
    finally:
        code, _out, err = stop(worker)
    assert state["status"] == "FAILED"
    assert state["tasks"][0]["status"] in {"FAILED", "TIMED_OUT"}
    assert after["status"] == "COMPLETED"
    assert code == 0, err
    overdue = [
        e for e in project.events("attempt finished") if e.get("exception_type") == "TimeoutError"
    ]
    assert overdue
    assert overdue[0]["workflow_instance_id"] == hung


def test_unregistered_taskdef_is_a_one_line_error(
    tmp_path: Path, conductor_server: ConductorServer, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    result = project.run("start", project.module)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: Conductor TaskDef '{unique_name}' is not registered; "
        f"run perago register {project.module}"
    )


def test_drift_warns_and_strict_mode_fails(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    _register(project, rest, unique_name)
    source = project.root / f"{project.module}.py"
    source.write_text(source.read_text().replace("count=0", "count=5"))
    strict = project.run("start", project.module, "--strict-taskdef")
    assert strict.returncode == 1
    assert strict.stderr.startswith("error: registered Conductor TaskDef")
    assert "retryCount" in strict.stderr


def test_crash_loop_stops_start_with_the_cause(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    _register(project, rest, unique_name)
    source = project.root / f"{project.module}.py"
    # Importable by the supervisor's pre-flight, broken in every worker process.
    source.write_text(
        "import os\nif 'PERAGO_STATUS_FD' in os.environ:\n"
        "    raise RuntimeError('database driver missing')\n" + source.read_text()
    )
    started = time.monotonic()
    result = project.run("start", project.module, timeout=90)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: worker ")
    assert "crash-looping" in last
    assert "database driver missing" in last
    assert time.monotonic() - started < 80


def test_second_supervisor_on_the_same_root_is_refused(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    _register(project, rest, unique_name)
    first = project.start()
    try:
        project.wait_for_event("worker polling")
        second = project.run("start", project.module)
    finally:
        code, _out, err = stop(first)
    assert second.returncode == 1
    assert "already locked by supervisor pid" in second.stderr
    assert second.stderr.count("\n") == 1
    assert code == 0, err


def test_secrets_never_reach_the_logs(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    secret = "s3cr3t-" + unique_name
    project = _project(
        tmp_path,
        conductor_server,
        unique_name,
        dotenv={
            "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:1",
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": secret,
        },
    )
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    try:
        rest.wait(rest.start_workflow(workflow, {"params": {"text": "x", "fail_first": False}}))
        rest.wait(rest.start_workflow(workflow, {"params": {"bad": True}}))
    finally:
        _code, out, err = stop(worker)
    files = list(project.logs.rglob("*"))
    assert any(f.suffix == ".jsonl" for f in files)
    for path in files:
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8", errors="replace")
    assert secret not in out
    assert secret not in err


def test_thread_mode_runs_n_threads_in_one_process(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> None:
    project = _project(tmp_path, conductor_server, unique_name)
    workflow = _register(project, rest, unique_name)
    worker = project.start("-j", "2", "--execution-mode", "thread")
    try:
        ids = [
            rest.start_workflow(workflow, {"params": {"text": "t", "sleep": 1}}) for _ in range(2)
        ]
        states = [rest.wait(i) for i in ids]
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert {s["status"] for s in states} == {"COMPLETED"}
    assert len({e["pid"] for e in project.events("attempt finished")}) == 1
