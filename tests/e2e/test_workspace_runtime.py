"""Workspace tasks through ``perago start`` against real Conductor and real lakeFS."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.harness import (
    WORKSPACE_INPUTS,
    ConductorRest,
    Deployment,
    Project,
    Workspace,
    child_pids,
    deploy,
    lakectl_dotenv,
    make_project,
    stop,
    wait_until,
)
from tests.integration.publication_support import commit_files
from tests.process_support import process_running
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

TASK_SOURCE = """
import os, subprocess, time
from pathlib import Path
from pydantic import BaseModel
from perago import (
    task, TaskControls, RetryPolicy, TimeoutPolicy, TaskFailed, WorkspaceSpec, require_file,
)

class Params(BaseModel):
    name: str = "out"
    write: bool = True
    sleep: float = 0.0
    sleep_once: bool = False
    fail_first: bool = False
    spawn_child: bool = False

class Result(BaseModel):
    files: int

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data", pre=[require_file("seed.txt")], read_only={read_only}),
    controls=TaskControls(
        retry=RetryPolicy(count={retries}, delay_seconds=0),
        timeout=TimeoutPolicy(response_seconds={response}),
    ),
)
def run(workspace: Path, params: Params) -> Result:
    once = Path(os.getcwd()) / ("once-" + params.name)
    first = not once.exists()
    once.touch()
    if params.spawn_child and first:
        # What a hung body often waits on: a subprocess of its own (ffmpeg, a simulator...).
        child = subprocess.Popen(["sleep", "3600"])
        (Path(os.getcwd()) / ("child-" + params.name)).write_text(str(child.pid))
    if params.sleep_once and first:
        time.sleep(3600)
    time.sleep(params.sleep)
    if params.fail_first and first:
        raise TaskFailed("first attempt fails")
    if params.write:
        (workspace / "out").mkdir(exist_ok=True)
        (workspace / "out" / (params.name + ".txt")).write_text("made by " + params.name)
    return Result(files=len(list(workspace.rglob("*.txt"))))
"""


def _project(
    tmp_path: Path,
    conductor: ConductorServer,
    ws: Workspace,
    name: str,
    *,
    read_only: bool = False,
    retries: int = 0,
    response: int = 30,
    dotenv: dict[str, str] | None = None,
    folder: str = "project",
) -> Project:
    source = TASK_SOURCE.format(name=name, read_only=read_only, retries=retries, response=response)
    lakefs = {**lakectl_dotenv(ws.config), **(dotenv or {})}
    return make_project(
        tmp_path,
        "ws_" + name,
        source,
        conductor_api_url=conductor.api_url,
        dotenv=lakefs,
        name=folder,
    )


@pytest.fixture
def deploy_task(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> Callable[..., Deployment]:
    """Write the workspace task module with the given options, register it and its workflow."""

    def make(*, name: str = unique_name, **options: Any) -> Deployment:
        project = _project(tmp_path, conductor_server, workspace, name, **options)
        return deploy(project, rest, name, WORKSPACE_INPUTS)

    return make


def test_changed_workspace_is_published_exactly(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task()
    state = app.run_one({"workspace": workspace.input(), "params": {"name": "a"}})
    assert state["status"] == "COMPLETED", state
    output = state["output"]["workspace"]
    assert output["ref"] == workspace.head()
    assert workspace.changed(output["ref"]) == ["data/out/a.txt"]
    assert workspace.parents(output["ref"]) == [workspace.seed]
    finished = app.project.events("attempt finished")[0]
    assert finished["files_uploaded"] == 1
    assert finished["files_downloaded"] == 1


def test_noop_and_read_only_leave_the_branch_alone(
    deploy_task: Callable[..., Deployment], workspace: Workspace, unique_name: str
) -> None:
    noop = deploy_task().run_one({"workspace": workspace.input(), "params": {"write": False}})
    assert noop["status"] == "COMPLETED", noop
    assert noop["output"]["workspace"]["ref"] == workspace.seed
    assert workspace.head() == workspace.seed

    read_only = deploy_task(name=unique_name + "-ro", read_only=True, folder="ro")
    state = read_only.run_one({"workspace": workspace.input(), "params": {"name": "r"}})
    assert state["status"] == "COMPLETED", state
    assert state["output"]["workspace"]["ref"] == workspace.seed
    assert workspace.head() == workspace.seed


def test_pre_guardrail_failure_is_terminal(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task(retries=3)
    # A commit of main without data/seed.txt: the pre guardrail require_file must refuse it.
    config = workspace.config
    auth = (config.access_key_id, config.secret_access_key.get_secret_value())
    removed = requests.delete(
        f"{config.endpoint_url.rstrip('/')}/api/v1/repositories/{workspace.repo}"
        "/branches/main/objects",
        params={"path": "data/seed.txt"},
        auth=auth,
        timeout=30,
    )
    removed.raise_for_status()
    bare = commit_files(workspace.config, workspace.repo, "main", {"other/x.txt": b"x"})
    state = app.run_one({"workspace": {**workspace.input(), "ref": bare}, "params": {}})
    assert [t["status"] for t in state["tasks"]] == ["FAILED_WITH_TERMINAL_ERROR"]
    assert "PreGuardrailViolation" in state["tasks"][0]["reasonForIncompletion"]


def test_failed_attempt_is_retried_and_publishes_once(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task(retries=2)
    state = app.run_one(
        {"workspace": workspace.input(), "params": {"name": "r", "fail_first": True}}
    )
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["FAILED", "COMPLETED"]
    assert workspace.parents(workspace.head()) == [workspace.seed]
    assert workspace.changed(workspace.head()) == ["data/out/r.txt"]


def test_killed_worker_is_retried_after_response_timeout(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task(retries=2, response=4, dotenv={"PERAGO_WORKSPACE_GC_TTL": "1s"})
    project = app.project
    worker = project.start()
    try:
        workflow_id = app.start_workflow(
            {"workspace": workspace.input(), "params": {"name": "k", "sleep_once": True}}
        )
        (started,) = project.wait_for_event("attempt started")
        # Kill inside the body: killed before it, the retry would be the first to run the body
        # and sleep instead.
        wait_until((project.root / "once-k").exists, "the body to start")
        os.kill(started["pid"], signal.SIGKILL)
        state = app.rest.wait(workflow_id, timeout=180)
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]][-1] == "COMPLETED"
    assert workspace.parents(workspace.head()) == [workspace.seed]
    assert workspace.changed(workspace.head()) == ["data/out/k.txt"]
    time.sleep(1.5)
    collected = project.run("gc", "--lakefs", workspace.repo)
    assert collected.returncode == 0, collected.stderr
    assert workspace.staging_branches() == []
    assert not any(project.workspaces.glob("task_id=*"))


def test_stale_attempt_never_publishes(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task()
    worker = app.project.start()
    try:
        workflow_id = app.start_workflow(
            {"workspace": workspace.input(), "params": {"name": "s", "sleep": 4}}
        )
        app.project.wait_for_event("attempt started")
        # The task stops being current while the body runs: its fence must refuse to publish.
        terminated = app.rest.http.delete(
            f"{app.rest.api_url}/workflow/{workflow_id}", params={"reason": "test"}, timeout=30
        )
        terminated.raise_for_status()
        (finished,) = app.project.wait_for_event("attempt finished", timeout=60)
    finally:
        stop(worker)
    assert finished["status"] == "FAILED"
    assert finished["exception_type"] == "StaleAttemptError"
    assert workspace.head() == workspace.seed


def test_attempt_timed_out_by_conductor_never_publishes_and_its_retry_publishes_once(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    """Conductor 3.32.1 itself times the task out while the attempt's body runs.

    How Conductor times a SIMPLE task out (read in conductor-oss DeciderService and
    WorkflowSweeper): nothing runs on a timer per task; the decider re-evaluates a workflow when
    the sweeper takes it from the decider queue. For an IN_PROGRESS task the sweeper postpones
    the next evaluation by responseTimeoutSeconds + 1 s (a SCHEDULED task: pollTimeoutSeconds + 1
    or the workflow offset, 30 s +- 1/3 by default). At an evaluation, ``checkTaskTimeout`` marks
    the task TIMED_OUT when now - startTime >= timeoutSeconds (policy RETRY / TIME_OUT_WF;
    ALERT_ONLY only counts), and ``isResponseTimedOut`` does so when now - updateTime >=
    responseTimeoutSeconds. A TIMED_OUT task is retryable: with retries left the decider
    schedules a copy with a new task id and retryCount + 1; later updates of the TIMED_OUT task
    are ignored.

    Configuration that lets the server, not perago, make the attempt stale: timeoutSeconds = 0,
    so perago's own local deadline is off, and a response timeout. Normally the SDK's lease
    extension (IN_PROGRESS + extendLease every 0.8 x responseTimeoutSeconds) keeps the task
    alive however long the body runs, so the worker process is frozen (SIGSTOP: a stalled host,
    swap storm or debugger) while its body runs; its lease heartbeats stop and Conductor's
    response timeout fires. After SIGCONT the body completes, the fence reloads the task, finds
    it TIMED_OUT and refuses to stage or publish; the retry then publishes exactly once.
    """
    response = 10  # well above the SDK's heartbeat granularity (1 s checks at 0.8 x timeout)
    app = deploy_task(retries=2, response=response)
    project = app.project
    worker = project.start()
    try:
        workflow_id = app.start_workflow(
            {"workspace": workspace.input(), "params": {"name": "t", "sleep": 2}}
        )
        (started,) = project.wait_for_event("attempt started")
        wait_until((project.root / "once-t").exists, "the body to start")
        os.kill(started["pid"], signal.SIGSTOP)
        try:
            timed_out = app.rest.wait_for_task_status(workflow_id, "TIMED_OUT", timeout=120)
            head_while_stale = workspace.head()
        finally:
            os.kill(started["pid"], signal.SIGCONT)
        state = app.rest.wait(workflow_id, timeout=120)
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert "responseTimeout" in timed_out["reasonForIncompletion"]
    assert head_while_stale == workspace.seed
    assert state["status"] == "COMPLETED", state
    first, retry = state["tasks"]
    assert (first["status"], retry["status"]) == ("TIMED_OUT", "COMPLETED")
    assert retry["retryCount"] == 1

    events = {e["task_id"]: e for e in project.events("attempt finished")}
    stale = events[first["taskId"]]
    assert stale["status"] == "FAILED"
    assert stale["exception_type"] == "StaleAttemptError"
    assert "TIMED_OUT" in stale["exception_message"]
    assert stale["files_uploaded"] == 0
    assert events[retry["taskId"]]["status"] == "COMPLETED"

    # Exactly one publication, and it is the retry's.
    head = workspace.head()
    assert state["output"]["workspace"]["ref"] == head
    assert workspace.parents(head) == [workspace.seed]
    assert workspace.changed(head) == ["data/out/t.txt"]
    assert workspace.metadata(head)["perago.task_id"] == retry["taskId"]
    assert workspace.staging_branches() == []


def test_sigterm_drains_a_running_workspace_attempt_before_exiting(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task()
    project = app.project
    worker = project.start()
    workflow_id = app.start_workflow(
        {"workspace": workspace.input(), "params": {"name": "d", "sleep": 4}}
    )
    project.wait_for_event("attempt started")
    wait_until((project.root / "once-d").exists, "the body to start")
    code, _out, err = stop(worker)
    # Read right after the exit, without waiting: the drain must already have published.
    state = app.rest.workflow(workflow_id)
    assert code == 0, err
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["COMPLETED"]
    head = workspace.head()
    assert state["output"]["workspace"]["ref"] == head
    assert workspace.parents(head) == [workspace.seed]
    assert workspace.changed(head) == ["data/out/d.txt"]
    (finished,) = project.events("attempt finished")
    (stopped,) = [e for e in project.events("worker stopped") if e["pid"] == finished["pid"]]
    assert finished["status"] == "COMPLETED"
    assert finished["files_uploaded"] == 1
    assert finished["time"] <= stopped["time"]


def test_force_kill_after_deadline_kills_the_hung_worker_and_publishes_nothing(
    deploy_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_task(dotenv={"PERAGO_SHUTDOWN_FORCE_KILL_AFTER": "2s"})
    project = app.project
    worker = project.start()
    workflow_id = app.start_workflow(
        {
            "workspace": workspace.input(),
            "params": {"name": "h", "sleep_once": True, "spawn_child": True},
        }
    )
    try:
        (started,) = project.wait_for_event("attempt started")
        pid_file = project.root / "child-h"
        wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", "the hung body")
        body_child = int(pid_file.read_text())
        assert child_pids(worker.pid) == [started["pid"]]
        code, _out, err = stop(worker, timeout=90)
        worker_pid = started["pid"]
        assert code == 1, err
        assert err.strip().splitlines()[-1] == (
            "error: force-killed 1 worker process(es) after PERAGO_SHUTDOWN_FORCE_KILL_AFTER; "
            "their attempts were not drained"
        )
        assert not process_running(worker_pid)
        wait_until(lambda: not process_running(body_child), "the body's subprocess to die", 10)
        assert workspace.head() == workspace.seed
        assert workspace.staging_branches() == []
        assert project.events("attempt finished") == []
        assert not any(project.workspaces.glob("task_id=*"))
        # Nothing was reported: Conductor still sees the attempt running until its timeouts.
        assert app.rest.workflow(workflow_id)["tasks"][0]["status"] == "IN_PROGRESS"
    finally:
        app.rest.http.delete(
            f"{app.rest.api_url}/workflow/{workflow_id}", params={"reason": "test"}, timeout=30
        )


def test_two_supervisors_publish_fifty_workflows_exactly_once(
    deploy_task: Callable[..., Deployment],
    tmp_path: Path,
    conductor_server: ConductorServer,
    workspace: Workspace,
    unique_name: str,
) -> None:
    app = deploy_task(folder="a")
    second = _project(tmp_path, conductor_server, workspace, unique_name, folder="b")
    branches = [f"b{i:02d}" for i in range(50)]
    for branch in branches:
        workspace.branch(branch)
    workers = [app.project.start("-j", "2"), second.start("-j", "2")]
    try:
        ids = {
            app.start_workflow(
                {"workspace": workspace.input(branch), "params": {"name": branch}}
            ): branch
            for branch in branches
        }
        states = {i: app.rest.wait(i, timeout=600) for i in ids}
    finally:
        codes = [stop(w)[0] for w in workers]
    assert codes == [0, 0]
    for workflow_id, state in states.items():
        branch = ids[workflow_id]
        assert state["status"] == "COMPLETED", state
        head = workspace.head(branch)
        assert state["output"]["workspace"]["ref"] == head
        assert workspace.parents(head) == [workspace.seed]
        assert workspace.changed(head) == [f"data/out/{branch}.txt"]
    events = app.project.events("attempt finished") + second.events("attempt finished")
    assert len({e["pid"] for e in events}) >= 2
