"""Fleet lifecycle and identity (issue 12) on the real Conductor and lakeFS servers.

Workers die with their supervisor; a restarted supervisor has exactly N pollers; a poison task is
quarantined while the others complete; two "hosts" (separate pid namespaces and instance ids)
share one workspace root and one queue and publish every workflow exactly once; ``perago bench
fleet`` runs end to end on a tiny size.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perago.config import host_token
from tests.e2e.harness import (
    PERAGO,
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
from tests.process_support import process_running
from tests.run_cli_support import clean_environment, lakectl_env, run_captured
from tests.servers_fixture import ConductorServer, LakefsServer

pytestmark = pytest.mark.integration

TASK_SOURCE = """
import os, subprocess, time
from pathlib import Path
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy

class Params(BaseModel):
    name: str
    hang_once: bool = False
    poison: bool = False

class Result(BaseModel):
    worker: str

@task(
    name="{name}",
    owner_email="tests@example.com",
    controls=TaskControls(
        retry=RetryPolicy(count={retries}, delay_seconds=0),
        timeout=TimeoutPolicy(seconds=0, response_seconds={response}, policy="RETRY"),
    ),
)
def run(params: Params) -> Result:
    if params.poison:
        os._exit(1)  # what a segfaulting native library does to its process
    marker = Path(os.getcwd()) / ("once-" + params.name)
    if params.hang_once and not marker.exists():
        marker.touch()
        child = subprocess.Popen(["sleep", "3600"])
        (Path(os.getcwd()) / ("child-" + params.name)).write_text(str(child.pid))
        time.sleep(3600)
    return Result(worker=os.environ["PERAGO_WORKER_ID"])
"""

WORKSPACE_TASK_SOURCE = """
import os, time
from pathlib import Path
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy, TaskFailed, WorkspaceSpec
from perago import require_file

class Params(BaseModel):
    name: str
    sleep: float = 0.0

class Result(BaseModel):
    worker: str

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data", pre=[require_file("seed.txt")]),
    controls=TaskControls(
        retry=RetryPolicy(count=0),
        timeout=TimeoutPolicy(response_seconds=60),
    ),
)
def run(workspace: Path, params: Params) -> Result:
    time.sleep(params.sleep)
    if not (workspace / "seed.txt").exists():
        raise TaskFailed("the attempt directory was deleted while the attempt ran")
    (workspace / "out").mkdir(exist_ok=True)
    (workspace / "out" / (params.name + ".txt")).write_text("made by " + params.name)
    return Result(worker=os.environ["PERAGO_WORKER_ID"])
"""


@pytest.fixture
def deploy_task(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> Callable[..., Deployment]:
    def make(
        *, retries: int = 0, response: int = 30, dotenv: dict[str, str] | None = None
    ) -> Deployment:
        source = TASK_SOURCE.format(name=unique_name, retries=retries, response=response)
        project = make_project(
            tmp_path,
            "fleet_" + unique_name,
            source,
            conductor_api_url=conductor_server.api_url,
            dotenv=dotenv,
        )
        return deploy(project, rest, unique_name, {"params": "${workflow.input.params}"})

    return make


def worker_processes(module: str) -> list[int]:
    """Every running ``python -m perago.runtime.worker MODULE`` of this machine (any pid
    namespace)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"perago.runtime.worker" in argv
            and module.encode() in argv
            and process_running(int(entry.name))
        ):
            found.append(int(entry.name))
    return sorted(found)


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def poll_workers(rest: ConductorRest, task_type: str) -> set[str]:
    response = rest.http.get(
        f"{rest.api_url}/tasks/queue/polldata", params={"taskType": task_type}, timeout=30
    )
    response.raise_for_status()
    return {str(entry["workerId"]) for entry in response.json()}


# --- 1 + 2: SIGKILL of the supervisor, then a restart ------------------------------------------


def test_sigkill_of_the_supervisor_takes_its_workers_and_a_restart_has_exactly_n_pollers(
    deploy_task: Callable[..., Deployment], unique_name: str
) -> None:
    app = deploy_task(retries=1, response=5)
    project, rest = app.project, app.rest
    module = project.module
    first = project.start("-j", "2")
    try:
        hung = app.start_workflow({"params": {"name": "h", "hang_once": True}})
        wait_until((project.root / "child-h").exists, "the hanging body to start its child")
        body_child = int((project.root / "child-h").read_text())
        project.wait_for_event("worker polling", count=2)
        old_workers = worker_processes(module)
        assert len(old_workers) == 2, old_workers
        assert {parent_of(pid) for pid in old_workers} == {first.pid}
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        # Busy or idle, every worker dies with its supervisor (bounded: 10 s).
        wait_until(
            lambda: not any(process_running(pid) for pid in old_workers),
            "the workers of the killed supervisor to die",
            timeout=10,
        )
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        for pid in worker_processes(module):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    assert (project.workspaces / f".perago-supervisor.{host_token({})}.lock").exists()

    second = project.start("-j", "2")
    try:

        def new_pollers() -> set[int]:
            polling = {e["pid"] for e in project.events("worker polling")}
            return polling & set(worker_processes(module)) - set(old_workers)

        wait_until(lambda: len(new_pollers()) == 2, "the two new workers to poll", 60)
        new_workers = worker_processes(module)
        assert len(new_workers) == 2, new_workers
        assert {parent_of(pid) for pid in new_workers} == {second.pid}
        assert not set(new_workers) & set(old_workers)
        # What the killed worker's body started did not outlive the restart either.
        wait_until(lambda: not process_running(body_child), "the old body's child to go", 10)
        # Conductor sees only the two stable slot ids.
        prefix = "".join(ch for ch in module if ch.isalnum())
        slots = {f"{prefix}0001-{host_token({})}", f"{prefix}0002-{host_token({})}"}
        assert poll_workers(rest, unique_name) <= slots
        # The hung attempt's retry (after Conductor timed it out) and new work complete.
        state = rest.wait(hung, deciding=True)
        extra = [rest.wait(app.start_workflow({"params": {"name": f"n{i}"}})) for i in range(3)]
        assert worker_processes(module) == new_workers  # still exactly two pollers
    finally:
        code, _out, err = stop(second)
    assert code == 0, err
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["TIMED_OUT", "COMPLETED"]
    assert {s["status"] for s in extra} == {"COMPLETED"}
    assert {t["workerId"] for s in [state, *extra] for t in s["tasks"]} <= slots
    assert not list(project.workspaces.glob(".perago-supervisor.*"))


# --- 4: poison task ------------------------------------------------------------------------------


def test_a_poison_task_is_quarantined_while_the_others_complete(
    deploy_task: Callable[..., Deployment],
) -> None:
    app = deploy_task(retries=5, response=3)
    project, rest = app.project, app.rest
    supervisor = project.start("-j", "2")
    try:
        poison = app.start_workflow({"params": {"name": "p", "poison": True}})
        others = [app.start_workflow({"params": {"name": f"o{i}"}}) for i in range(4)]
        state = rest.wait(poison, timeout=180, deciding=True)
        later = [app.start_workflow({"params": {"name": f"l{i}"}}) for i in range(4)]
        completed = [rest.wait(i) for i in others + later]
        assert supervisor.poll() is None, "a poison task must not stop the supervisor"
    finally:
        code, _out, err = stop(supervisor)
    assert code == 0, err
    assert state["status"] == "FAILED", state
    tasks = state["tasks"]
    # Each attempt killed its worker (Conductor then timed it out and retried it under a new
    # task id); the one after the third death was failed without running.
    assert [t["status"] for t in tasks] == ["TIMED_OUT"] * 3 + ["FAILED_WITH_TERMINAL_ERROR"]
    assert tasks[-1]["reasonForIncompletion"] == "quarantined: killed its worker 3 times"
    assert {s["status"] for s in completed} == {"COMPLETED"}
    # The supervisor's quarantine warning once, and the console's line for the failed attempt.
    warning = [
        line
        for line in err.splitlines()
        if line.startswith("warning: task") and "quarantined: killed its worker" in line
    ]
    assert len(warning) == 1
    console = [
        line
        for line in err.splitlines()
        if line.startswith("perago: FAILED_WITH_TERMINAL_ERROR task ")
        and "TaskQuarantined: quarantined: killed its worker 3 times" in line
    ]
    assert len(console) == 1, err
    assert warning[0].startswith(f"warning: task {tasks[0]['referenceTaskName']} of workflow ")
    (quarantined,) = project.events("task quarantined")
    assert quarantined["workflow_instance_id"] == poison
    assert quarantined["deaths"] == 3
    deaths = project.events("worker process died while running an attempt")
    assert [e["task_id"] for e in deaths] == [t["taskId"] for t in tasks[:3]]
    (failed,) = [
        e
        for e in project.events("attempt finished")
        if e.get("exception_type") == "TaskQuarantined"
    ]
    assert failed["task_id"] == tasks[-1]["taskId"]
    assert failed["status"] == "FAILED_WITH_TERMINAL_ERROR"


# --- 3: two hosts, one workspace root, one queue ----------------------------------------------

FLEET_WORKFLOWS = 100


def _namespaced_start(project: Project, instance: str, *args: str) -> subprocess.Popen[str]:
    """``perago start`` as PID 1 of a new pid namespace (its own /proc), as host ``instance``."""
    env = project._env()
    env["PERAGO_INSTANCE_ID"] = instance
    return subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            PERAGO,
            "start",
            project.module,
            *args,
        ],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _namespaced_stop(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    """SIGTERM the namespace's supervisor (unshare's child); unshare exits with its status."""
    for pid in child_pids(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # --kill-child takes the namespace with it
        process.communicate()
        raise
    return process.returncode, out, err


@contextlib.contextmanager
def two_namespaced_hosts(project: Project) -> Iterator[None]:
    """Hosts ``host-a`` and ``host-b`` (``-j 2`` each) polling; both must then stop cleanly."""
    host_a = _namespaced_start(project, "host-a", "-j", "2")
    host_b = _namespaced_start(project, "host-b", "-j", "2")
    try:
        wait_until(lambda: len(project.events("worker polling")) >= 4, "four workers", 90)
        yield
    finally:
        code_a, _out_a, err_a = _namespaced_stop(host_a)
        code_b, _out_b, err_b = _namespaced_stop(host_b)
    assert (code_a, code_b) == (0, 0), err_a + err_b


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="needs unshare --pid --mount-proc (root)"
)


@pytest.fixture
def deploy_workspace_task(
    tmp_path: Path,
    conductor_server: ConductorServer,
    workspace: Workspace,
    rest: ConductorRest,
    unique_name: str,
) -> Callable[..., Deployment]:
    def make(*, gc_ttl: str) -> Deployment:
        project = make_project(
            tmp_path,
            "fleet_" + unique_name,
            WORKSPACE_TASK_SOURCE.format(name=unique_name),
            conductor_api_url=conductor_server.api_url,
            dotenv={
                **lakectl_dotenv(workspace.config),
                # Each host's GC scans the shared root every second.
                "PERAGO_WORKSPACE_GC_TTL": gc_ttl,
                "PERAGO_WORKSPACE_GC_INTERVAL": "1s",
            },
        )
        return deploy(project, rest, unique_name, WORKSPACE_INPUTS)

    return make


@needs_namespaces
def test_two_hosts_in_their_own_pid_namespaces_share_a_root_and_a_queue(
    deploy_workspace_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    app = deploy_workspace_task(gc_ttl="60s")
    project, rest = app.project, app.rest
    branches = [f"w{i:03d}" for i in range(FLEET_WORKFLOWS)]
    for branch in branches:
        workspace.branch(branch)
    with two_namespaced_hosts(project):
        ids = {
            branch: app.start_workflow(
                {"workspace": workspace.input(branch), "params": {"name": branch, "sleep": 1.2}}
            )
            for branch in branches
        }
        locks = {
            path.name: json.loads(path.read_text())
            for path in project.workspaces.glob(".perago-supervisor.*.lock")
        }
        # The same instance id in a third namespace cannot judge host-a's lock: refused.
        third = _namespaced_start(project, "host-a")
        _third_out, third_err = third.communicate(timeout=120)
        states = {branch: rest.wait(ids[branch], timeout=600) for branch in branches}

    assert set(locks) == {".perago-supervisor.hosta.lock", ".perago-supervisor.hostb.lock"}
    for name, lock in locks.items():
        assert lock["identity"]["pid"] == 1  # PID 1 of its own namespace
        assert lock["host"] == ("host-a" if "hosta" in name else "host-b")
        assert len(lock["workers"]) == 2
    assert len({lock["identity"]["pid_namespace"] for lock in locks.values()}) == 2
    assert third.returncode == 1
    assert third_err.count("\n") == 1, third_err
    assert third_err.startswith("error: workspace root ")
    assert "already locked by supervisor pid 1 on host host-a" in third_err
    assert "PERAGO_INSTANCE_ID" in third_err

    failures = {b: s for b, s in states.items() if s["status"] != "COMPLETED"}
    assert not failures, {
        b: s["tasks"][-1].get("reasonForIncompletion") for b, s in failures.items()
    }
    hosts = {}
    for branch, state in states.items():
        (task,) = state["tasks"]
        assert task["status"] == "COMPLETED"
        hosts[branch] = task["workerId"].rsplit("-", 1)[1]
        ref = state["output"]["workspace"]["ref"]
        # Published exactly once: the branch head is the output, one commit on top of the seed,
        # changing exactly this workflow's file.
        assert workspace.head(branch) == ref
        assert workspace.parents(ref) == [workspace.seed]
        assert workspace.changed(ref) == [f"data/out/{branch}.txt"]
    assert set(hosts.values()) == {"hosta", "hostb"}, "both hosts must have worked"
    assert workspace.staging_branches() == []
    finished = project.events("attempt finished")
    assert len(finished) == FLEET_WORKFLOWS
    assert {e["status"] for e in finished} == {"COMPLETED"}
    assert not list(project.workspaces.glob("task_id=*")), "attempt directories left behind"
    assert not list(project.workspaces.glob(".perago-supervisor.*"))


@needs_namespaces
def test_another_hosts_gc_never_takes_a_live_attempt_directory(
    deploy_workspace_task: Callable[..., Deployment], workspace: Workspace
) -> None:
    """Attempts outlive a 1 s GC TTL while the other host's GC scans the root every second.

    Its pids mean nothing in the other namespace, so only the attempt's own liveness evidence
    (its owner record's heartbeat) may keep it, whatever the TTL: a live attempt directory is
    never removed.
    """
    app = deploy_workspace_task(gc_ttl="1s")
    project, rest = app.project, app.rest
    branches = [f"g{i}" for i in range(8)]
    for branch in branches:
        workspace.branch(branch)
    with two_namespaced_hosts(project):
        ids = [
            app.start_workflow(
                {"workspace": workspace.input(branch), "params": {"name": branch, "sleep": 4}}
            )
            for branch in branches
        ]
        states = [rest.wait(i, timeout=300) for i in ids]
    reasons = [s["tasks"][-1].get("reasonForIncompletion") for s in states]
    assert {s["status"] for s in states} == {"COMPLETED"}, reasons


# --- perago bench fleet --------------------------------------------------------------------------


def test_bench_fleet_runs_and_verifies_every_workflow(
    tmp_path: Path, conductor_server: ConductorServer, lakefs_server: LakefsServer
) -> None:
    lakectl = lakectl_env(
        lakefs_server.url, lakefs_server.access_key_id, lakefs_server.secret_access_key
    )
    env = clean_environment({"CONDUCTOR_SERVER_URL": conductor_server.api_url, **lakectl})
    namespace = f"{lakefs_server.namespace_root}perago-bench"  # the topology's scheme
    done = run_captured(
        [
            PERAGO,
            "bench",
            "fleet",
            "--workflows",
            "6",
            "-j",
            "2",
            "--json",
            "--namespace",
            namespace,
        ],
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    assert [(r["scenario"], r["tool"]) for r in rows] == [
        ("fleet-1x2", "perago"),
        ("fleet-2x1", "perago"),
        ("fleet-2x2", "perago"),
    ]
    for row in rows:
        assert row["median_s"] > 0
        assert row["tasks_per_s"] > 0
        assert row["workflows"] == 6
        assert row["verified"] == 6
        assert row["note"].startswith("6/6 published exactly once")
    assert "deleted bench repository bench-" in done.stderr
