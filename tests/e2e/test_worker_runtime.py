"""``perago start`` end to end with workspace-free tasks: real Conductor, real subprocesses."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from perago.config import host_token
from tests.e2e.harness import (
    ConductorRest,
    Deployment,
    Project,
    deploy,
    make_project,
    stop,
    wait_until,
)
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
    return make_project(
        tmp_path, "mod_" + name, source, conductor_api_url=conductor.api_url, dotenv=dotenv
    )


@pytest.fixture
def deploy_task(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> Callable[..., Deployment]:
    """Write the task module with the given options, register it and its workflow."""

    def make(**options: Any) -> Deployment:
        project = _project(tmp_path, conductor_server, unique_name, **options)
        return deploy(project, rest, unique_name, {"params": "${workflow.input.params}"})

    return make


def test_start_runs_workflows_and_logs_each_attempt(
    deploy_task: Callable[..., Deployment],
) -> None:
    app = deploy_task()
    project, rest = app.project, app.rest
    worker = project.start("-j", "2")
    try:
        ids = [app.start_workflow({"params": {"text": "a b c"}}) for _ in range(4)]
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
        host = host_token({})  # worker ids are <prefix><slot:04d>-<host> (ADR 0006)
        assert task["workerId"] in {f"{prefix}0001-{host}", f"{prefix}0002-{host}"}
    finished = project.events("attempt finished")
    assert sorted(e["workflow_instance_id"] for e in finished) == sorted(ids)
    for event in finished:
        assert event["status"] == "COMPLETED"
        assert event["duration_ms"] >= 0
        assert {"task_id", "retry_count", "execution_id", "files_downloaded"} <= event.keys()
        assert event["time"].endswith("Z")
    assert len(project.events("attempt started")) == 4


def test_failure_is_retried_then_completes_with_reason_logged(
    deploy_task: Callable[..., Deployment],
) -> None:
    prelude = (
        "marker = os.path.join(os.getcwd(), 'failed-once')\n"
        "    if params.fail_first and not os.path.exists(marker):\n"
        "        open(marker, 'w').close()\n"
        "        raise TaskFailed('transient problem')"
    )
    app = deploy_task(retries=2, prelude=prelude)
    state = app.run_one({"params": {"text": "x", "fail_first": True}})
    assert state["status"] == "COMPLETED"
    assert [t["status"] for t in state["tasks"]] == ["FAILED", "COMPLETED"]
    assert state["tasks"][0]["reasonForIncompletion"] == "TaskFailed: transient problem"
    (failed,) = [e for e in app.project.events("attempt finished") if e["status"] == "FAILED"]
    assert failed["exception_type"] == "TaskFailed"
    assert "Traceback" in failed["traceback"]


def test_invalid_params_fail_terminally_without_retry(
    deploy_task: Callable[..., Deployment],
) -> None:
    state = deploy_task(retries=3).run_one({"params": {"nope": 1}})
    assert state["status"] == "FAILED"
    assert [t["status"] for t in state["tasks"]] == ["FAILED_WITH_TERMINAL_ERROR"]


def test_sigterm_drains_the_running_attempt(deploy_task: Callable[..., Deployment]) -> None:
    app = deploy_task()
    worker = app.project.start()
    workflow_id = app.start_workflow({"params": {"text": "slow one", "sleep": 4}})
    app.project.wait_for_event("attempt started")
    code, _out, err = stop(worker)
    assert code == 0, err
    state = app.rest.workflow(workflow_id)
    assert state["status"] == "COMPLETED"
    assert [t["status"] for t in state["tasks"]] == ["COMPLETED"]


def test_overdue_attempt_is_stopped_locally_and_the_slot_keeps_working(
    deploy_task: Callable[..., Deployment],
) -> None:
    app = deploy_task(timeout=8, response=5)
    worker = app.project.start()
    try:
        hung = app.start_workflow({"params": {"text": "hang", "sleep": 3600}})
        state = app.rest.wait(hung, timeout=60)
        after = app.rest.wait(app.start_workflow({"params": {"text": "fine now"}}), timeout=60)
    finally:
        code, _out, err = stop(worker)
    # The local deadline and Conductor's own timeout (TaskDef timeoutPolicy TIME_OUT_WF) are both
    # 8 s: whichever lands first decides the workflow's status; either way the attempt is stopped
    # locally (the TimeoutError event below) and the slot serves the next workflow.
    assert (state["status"], state["tasks"][0]["status"]) in {
        ("FAILED", "FAILED"),
        ("FAILED", "TIMED_OUT"),
        ("TIMED_OUT", "TIMED_OUT"),
    }, state
    assert after["status"] == "COMPLETED"
    assert code == 0, err
    overdue = [
        e
        for e in app.project.events("attempt finished")
        if e.get("exception_type") == "TimeoutError"
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


def test_drift_warns_and_strict_mode_fails(deploy_task: Callable[..., Deployment]) -> None:
    project = deploy_task().project
    source = project.root / f"{project.module}.py"
    source.write_text(source.read_text().replace("count=0", "count=5"))
    strict = project.run("start", project.module, "--strict-taskdef")
    assert strict.returncode == 1
    assert strict.stderr.startswith("error: registered Conductor TaskDef")
    assert "retryCount" in strict.stderr


def test_crash_loop_stops_start_with_the_cause(deploy_task: Callable[..., Deployment]) -> None:
    project = deploy_task().project
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
    deploy_task: Callable[..., Deployment],
) -> None:
    project = deploy_task().project
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
    deploy_task: Callable[..., Deployment], unique_name: str
) -> None:
    secret = "s3cr3t-" + unique_name
    app = deploy_task(
        dotenv={
            "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:1",
            "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": secret,
        },
    )
    project = app.project
    worker = project.start()
    try:
        app.rest.wait(app.start_workflow({"params": {"text": "x", "fail_first": False}}))
        app.rest.wait(app.start_workflow({"params": {"bad": True}}))
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
    deploy_task: Callable[..., Deployment],
) -> None:
    app = deploy_task()
    worker = app.project.start("-j", "2", "--execution-mode", "thread")
    try:
        ids = [app.start_workflow({"params": {"text": "t", "sleep": 1}}) for _ in range(2)]
        states = [app.rest.wait(i) for i in ids]
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert {s["status"] for s in states} == {"COMPLETED"}
    assert len({e["pid"] for e in app.project.events("attempt finished")}) == 1


def _old_log(directory: Path, name: str, *, age_days: float) -> Path:
    """A JSONL file as an earlier process left it, last written ``age_days`` ago."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps({"time": "2020-01-01T00:00:00.000Z", "message": "old"}) + "\n")
    stamp = time.time() - age_days * 86400
    os.utime(path, (stamp, stamp))
    return path


def _rotation_index(path: Path) -> int:
    """0 for ``<base>.jsonl``, n for the n-th rotated ``<base>.<n>.jsonl``."""
    parts = path.name.split(".")
    return int(parts[-2]) if len(parts) == 3 else 0


def test_logs_rotate_and_retention_prunes_earlier_processes_while_running(
    deploy_task: Callable[..., Deployment],
) -> None:
    """PERAGO_LOG_FILE_MAX_SIZE=1KB and PERAGO_LOG_RETENTION=1d inside a real ``perago start``.

    Files of earlier processes older than the retention go at start-up (one of this very slot,
    one of a worker id that no longer runs) and at a rotation (one that appears while the worker
    runs); a recent file of an earlier process stays.
    """
    app = deploy_task(dotenv={"PERAGO_LOG_FILE_MAX_SIZE": "1KB", "PERAGO_LOG_RETENTION": "1d"})
    project = app.project
    module_dir = project.logs / project.module
    prefix = "".join(ch for ch in project.module if ch.isalnum())
    own_dir = module_dir / f"worker_id={prefix}0001-{host_token({})}"
    gone_dir = module_dir / "worker_id=Gone0007"
    old_same_slot = _old_log(own_dir, "pid=11__started=20200101T000000Z.jsonl", age_days=3)
    old_other = _old_log(gone_dir, "pid=12__started=20200101T000000Z.2.jsonl", age_days=2)
    recent = _old_log(gone_dir, "pid=13__started=20200102T000000Z.jsonl", age_days=0.5)
    worker = project.start()
    try:
        (polling,) = project.wait_for_event("worker polling")
        wait_until(lambda: not old_same_slot.exists(), "start-up pruning of the old file")
        appeared_later = _old_log(gone_dir, "pid=14__started=20200103T000000Z.jsonl", age_days=5)
        ids = [app.start_workflow({"params": {"text": f"n {i}"}}) for i in range(8)]
        states = [app.rest.wait(i) for i in ids]
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert {s["status"] for s in states} == {"COMPLETED"}

    assert not old_other.exists()
    assert not appeared_later.exists(), "a rotation must prune files that aged meanwhile"
    assert recent.exists()
    mine = sorted(own_dir.glob(f"pid={polling['pid']}__*.jsonl"), key=_rotation_index)
    assert len(mine) >= 3, [p.name for p in mine]  # the first file plus rotated ones
    assert {p.name.count(".") for p in mine} >= {1, 2}  # <base>.jsonl and <base>.<n>.jsonl
    for path in mine[:-1]:
        assert path.stat().st_size <= 1024, path.name
    for path in module_dir.rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            assert event["time"].endswith("Z")
            moment = datetime.fromisoformat(event["time"])
            assert moment.utcoffset() == UTC.utcoffset(None)
    # Rotation loses nothing: every attempt's two events are somewhere in the rotated files.
    assert len(project.events("attempt started")) == 8
    assert sorted(e["workflow_instance_id"] for e in project.events("attempt finished")) == sorted(
        ids
    )
