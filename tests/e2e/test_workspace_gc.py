"""Workspace safety, attempt GC, staging-branch GC and reserved free space (issue 12), through
real ``perago start`` workers against the real Conductor and lakeFS.

Interleavings are made deterministic with fault points (``PERAGO_FAULT_GATE_DIR``): a worker
waits at ``NAME`` while ``NAME.hold`` exists and reports ``NAME.reached``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest

from perago.attempt.directory import ATTEMPT_RECORDS_DIRNAME
from perago.conductor.client import ConductorClient
from perago.lakefs.client import LakeFSError
from perago.lakefs.workspace import LakeFSWorkspaceRuntime, StaleStagingBranch
from tests.e2e.harness import (
    WORKSPACE_INPUTS,
    ConductorRest,
    DeployedApp,
    Workspace,
    child_pids,
    deploy,
    lakectl_dotenv,
    make_project,
    stop,
    wait_until,
)
from tests.integration.publication_support import commit_files
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

GIB = 1 << 30
MIB = 1 << 20

TASK_SOURCE = """
import os, shutil, time
from pathlib import Path
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy, WorkspaceSpec

class Params(BaseModel):
    mode: str = "write"
    name: str = "out"
    target: str = ""
    size: int = 0

class Result(BaseModel):
    entries: int

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data"),
    controls=TaskControls(
        retry=RetryPolicy(count=0, delay_seconds=0),
        timeout=TimeoutPolicy(response_seconds=30),
    ),
)
def run(workspace: Path, params: Params) -> Result:
    if params.mode in ("recreate", "recreate_and_hang"):
        shutil.rmtree(workspace)  # the marker goes with it
        workspace.mkdir()
        (workspace / (params.name + ".txt")).write_text("fresh")
        if params.mode == "recreate_and_hang":
            (Path(os.getcwd()) / ("hung-" + params.name)).write_text(str(os.getpid()))
            time.sleep(3600)
    elif params.mode == "symlink":
        shutil.rmtree(workspace)
        os.symlink(params.target, workspace)
    elif params.mode == "fifo":
        os.mkfifo(workspace / "pipe")
    elif params.mode == "big":
        with open(workspace / "big.bin", "wb") as handle:
            handle.truncate(params.size)  # sparse: generated, no disk used here
    else:
        (workspace / (params.name + ".txt")).write_text("made by " + params.name)
    return Result(entries=len(os.listdir(workspace)))
"""


class Gate:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def hold(self, point: str, *, once: bool = False) -> None:
        (self.root / f"{point}.{'hold-once' if once else 'hold'}").touch()

    def release(self, point: str) -> None:
        for suffix in ("hold", "hold-once"):
            with contextlib.suppress(FileNotFoundError):
                (self.root / f"{point}.{suffix}").unlink()

    def wait_reached(self, point: str, timeout: float = 120.0) -> list[str]:
        path = self.root / f"{point}.reached"
        wait_until(path.exists, f"a worker at fault point {point}", timeout=timeout)
        return path.read_text(encoding="utf-8").splitlines()


@dataclasses.dataclass
class App(DeployedApp):
    gate: Gate
    lake: Workspace

    def start(self, params: dict[str, Any], ref: str | None = None) -> str:
        workspace = self.lake.input()
        if ref is not None:
            workspace = {**workspace, "ref": ref}
        return self.deployment.start_workflow({"workspace": workspace, "params": params})

    def gc(self, **env: str) -> subprocess.CompletedProcess[str]:
        collector = dataclasses.replace(self.project, env={**self.project.env, **env})
        return collector.run("gc", "--lakefs", self.lake.repo)


@pytest.fixture
def lake(workspace: Workspace) -> Workspace:
    return workspace


@pytest.fixture
def make_app(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    lake: Workspace,
    unique_name: str,
) -> Callable[..., App]:
    def make(*, dotenv: dict[str, str] | None = None, env: dict[str, str] | None = None) -> App:
        gate = Gate(tmp_path / "gates")
        values = {
            **lakectl_dotenv(lake.config),
            "PERAGO_WORKSPACE_GC_TTL": "1s",
            **(dotenv or {}),
        }
        project = make_project(
            tmp_path,
            "gc_" + unique_name,
            TASK_SOURCE.format(name=unique_name),
            conductor_api_url=conductor_server.api_url,
            dotenv=values,
            env={"PERAGO_FAULT_GATE_DIR": str(gate.root), **(env or {})},
        )
        return App(deploy(project, rest, unique_name, WORKSPACE_INPUTS), gate, lake)

    return make


@contextlib.contextmanager
def running(app: App, *args: str) -> Iterator[subprocess.Popen[str]]:
    worker = app.project.start(*args)
    try:
        yield worker
    finally:
        with contextlib.suppress(FileNotFoundError):
            for path in app.gate.root.glob("*.hold*"):
                path.unlink()
        code, _out, err = stop(worker)
        assert code == 0, err


def _task(state: dict[str, Any]) -> dict[str, Any]:
    (task,) = state["tasks"]
    return dict(task)


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# -- the body and its workspace ---------------------------------------------------------------


def test_a_body_that_empties_and_recreates_its_workspace_completes_and_is_cleaned(
    make_app: Callable[..., App],
) -> None:
    app = make_app()
    with running(app):
        state = app.rest.wait(app.start({"mode": "recreate", "name": "r"}))
    assert state["status"] == "COMPLETED", state
    head = app.lake.head()
    assert state["output"]["workspace"]["ref"] == head
    assert app.lake.changed(head) == ["data/r.txt", "data/seed.txt"]  # added and removed
    assert app.lake.staging_branches() == []
    assert _leftovers(app.project.workspaces) == []  # no directory, record or ledger left


def test_a_killed_attempt_whose_marker_is_gone_is_still_collected(
    make_app: Callable[..., App],
) -> None:
    """The body emptied its workspace (marker gone), then its worker was SIGKILLed: the owner
    record outside the workspace still names the dead owner, and the directory goes."""
    app = make_app()
    with running(app):
        workflow_id = app.start({"mode": "recreate_and_hang", "name": "k"})
        hung = app.project.root / "hung-k"
        wait_until(hung.exists, "the body to empty its workspace and hang")
        attempt_dirs = list(app.project.workspaces.glob("task_id=*"))
        assert len(attempt_dirs) == 1
        assert not (attempt_dirs[0] / ".perago-attempt.json").exists()
        os.kill(int(hung.read_text()), signal.SIGKILL)
        # The supervisor sweeps the dead worker's attempts (identity-based) at once.
        wait_until(lambda: not attempt_dirs[0].exists(), "the dead attempt's directory to go")
        assert not (app.project.workspaces / ATTEMPT_RECORDS_DIRNAME).exists()
        app.rest.http.delete(
            f"{app.rest.api_url}/workflow/{workflow_id}", params={"reason": "t"}, timeout=30
        ).raise_for_status()
    assert app.lake.head() == app.lake.seed


def test_a_workspace_replaced_by_a_symlink_fails_and_nothing_outside_is_read_or_deleted(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "passwd").write_text("root:x:0:0")
    (outside / "notes.txt").write_text("not yours")
    app = make_app()
    with running(app):
        state = app.rest.wait(app.start({"mode": "symlink", "target": str(outside)}))
    task = _task(state)
    assert task["status"] == "FAILED", task
    reason = task["reasonForIncompletion"]
    assert re.fullmatch(
        r"WorkspaceSafetyError: workspace \S+/task_id=\S+ was replaced by a symlink to "
        rf"'{re.escape(str(outside))}'; perago never follows it \(nothing was read through "
        r"it or published\)",
        reason,
    ), reason
    assert app.lake.head() == app.lake.seed  # nothing published
    assert app.lake.staging_branches() == []  # nothing even staged
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*")) == [
        "etc",
        "etc/passwd",
        "notes.txt",
    ]  # the target is intact: cleanup removed the link only
    assert _leftovers(app.project.workspaces) == []


def test_a_change_made_only_of_a_fifo_fails_with_its_path(make_app: Callable[..., App]) -> None:
    app = make_app()
    with running(app):
        state = app.rest.wait(app.start({"mode": "fifo"}))
    task = _task(state)
    assert task["status"] == "FAILED", task
    assert task["reasonForIncompletion"] == (
        "TaskInputError: workspace publication supports only regular files; pipe is a fifo"
    )
    assert app.lake.head() == app.lake.seed
    assert _leftovers(app.project.workspaces) == []


# -- staging-branch GC ------------------------------------------------------------------------


class GcLoop:
    """``perago gc --lakefs`` (TTL 1 s) run back to back on a thread, every run recorded."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.runs: list[tuple[float, float, subprocess.CompletedProcess[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            result = self.app.gc()
            self.runs.append((started, time.monotonic(), result))

    def __enter__(self) -> GcLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


def test_a_live_staging_branch_survives_gc_looping_while_a_gib_streams_into_it(
    make_app: Callable[..., App], conductor_server: ConductorServer
) -> None:
    """Until its staging commit a staging branch's head is A (older than the 1 s TTL here) and,
    until the 1 GiB upload lands, nothing on it is uncommitted: only Conductor (the task is
    IN_PROGRESS) tells it is live. gc must leave it alone at every step; the attempt publishes."""
    app = make_app()
    runtime = LakeFSWorkspaceRuntime(app.lake.config)
    client = ConductorClient(conductor_server.api_url)
    passes: list[tuple[float, bool]] = []  # (when, branch had uncommitted changes)
    stop_passes = threading.Event()

    def in_process_gc() -> None:
        # The same listing and deletion as the command, ~20 per second.
        while not stop_passes.is_set():
            kept: list[StaleStagingBranch] = []
            stale = runtime.list_stale_staging_branches(app.lake.repo, client, kept)
            runtime.delete_staging_branches(stale)
            for item in kept:
                with contextlib.suppress(LakeFSError):  # its attempt may just delete it
                    dirty = runtime.control.has_uncommitted_changes(app.lake.repo, item.branch)
                    passes.append((time.monotonic(), dirty))
            time.sleep(0.05)

    app.gate.hold("stage.after_branch")
    app.gate.hold("stage.before_commit")
    time.sleep(1.5)  # A is older than the TTL
    with running(app):
        workflow_id = app.start({"mode": "big", "size": GIB})
        app.gate.wait_reached("stage.after_branch", timeout=180)
        (branch,) = app.lake.staging_branches()
        collected = app.gc()
        assert collected.returncode == 0, collected.stderr
        assert f"kept staging branch: {app.lake.repo}/{branch} (task " in collected.stdout
        assert "is IN_PROGRESS)" in collected.stdout
        assert app.lake.staging_branches() == [branch]

        checker = threading.Thread(target=in_process_gc, daemon=True)
        checker.start()
        with GcLoop(app) as loop:
            released = time.monotonic()
            app.gate.release("stage.after_branch")  # the 1 GiB upload streams now
            app.gate.wait_reached("stage.before_commit", timeout=300)
            uploaded = time.monotonic()
            assert app.lake.staging_branches() == [branch]
            wait_until(lambda: len(loop.runs) >= 2, "two more gc runs", timeout=60)
            app.gate.release("stage.before_commit")
            state = app.rest.wait(workflow_id, timeout=300)
        stop_passes.set()
        checker.join(timeout=30)
    try:
        assert state["status"] == "COMPLETED", state
        head = app.lake.head()
        assert state["output"]["workspace"]["ref"] == head
        assert app.lake.changed(head) == ["data/big.bin"]
    finally:
        _free_local_object(app.lake, "data/big.bin")
    for _began, _ended, result in loop.runs:
        assert result.returncode == 0, result.stderr
        assert "removed staging branch" not in result.stdout
    # gc really ran while the bytes streamed and nothing was uncommitted yet ...
    streaming = [dirty for when, dirty in passes if released <= when <= uploaded]
    overlapping = sum(1 for began, ended, _ in loop.runs if began < uploaded and ended > released)
    print(  # shown with -s: how much gc ran against the live branch
        f"upload {uploaded - released:.1f}s: {len(streaming)} in-process gc passes and "
        f"{overlapping} 'perago gc --lakefs' runs during it, {len(loop.runs)} runs in all"
    )
    assert overlapping >= 1, "no perago gc run while the upload streamed"
    assert streaming, "no gc pass while the upload streamed"
    assert not streaming[0], "the first pass during the upload already saw the object"
    assert len(loop.runs) >= 2
    # ... and once the task ended, the branch is gone (its own cleanup or gc).
    assert app.lake.staging_branches() == []
    runtime.control.close()


def _free_local_object(lake: Workspace, path: str) -> None:
    """Delete the bytes of ``path`` (on main) from a local lakeFS blockstore: deleting the
    repository never frees them, and this one is a GiB. Only a file under the repository's own
    namespace directory is ever removed."""
    objects = lakefs_sdk.ObjectsApi(lake.branches.api_client)
    with contextlib.suppress(lakefs_sdk.ApiException):
        address = str(objects.stat_object(lake.repo, "main", path).physical_address)
        local = Path(address.removeprefix("local://"))
        if address.startswith("local:///") and f"/{lake.repo}/" in address and local.is_file():
            local.unlink()


def test_a_crashed_attempts_staging_branch_is_collected_once_its_task_ended(
    make_app: Callable[..., App],
) -> None:
    app = make_app()
    app.gate.hold("stage.before_commit")
    with running(app) as worker:
        workflow_id = app.start({"mode": "write", "name": "c"})
        held = app.gate.wait_reached("stage.before_commit")
        (branch,) = app.lake.staging_branches()
        assert app.gc().returncode == 0
        assert app.lake.staging_branches() == [branch]  # IN_PROGRESS: kept
        os.kill(int(held[0]), signal.SIGKILL)  # the worker dies with its branch left behind
        app.gate.release("stage.before_commit")
        wait_until(lambda: int(held[0]) not in child_pids(worker.pid), "the worker to die")
        assert app.lake.staging_branches() == [branch]
        # Conductor ends the task (here: the workflow is terminated; a lease timeout or a
        # FAILED report end it the same way).
        app.rest.http.delete(
            f"{app.rest.api_url}/workflow/{workflow_id}", params={"reason": "crashed"}, timeout=30
        ).raise_for_status()
        collected = app.gc()
    assert collected.returncode == 0, collected.stderr
    assert f"removed staging branch: {app.lake.repo}/{branch} (task " in collected.stdout
    assert app.lake.staging_branches() == []
    assert app.lake.head() == app.lake.seed


# -- shared roots -----------------------------------------------------------------------------


def test_a_shared_root_never_loses_an_attempt_another_host_runs(
    make_app: Callable[..., App],
) -> None:
    """Two "hosts" (PERAGO_INSTANCE_ID) share one workspace root. Host B runs an attempt;
    host A's gc cannot judge B's pid and keeps the directory while B's heartbeat is fresh,
    even after B's worker died; once the heartbeat is older than the TTL it goes."""
    app = make_app(env={"PERAGO_INSTANCE_ID": "host-b"})
    app.gate.hold("attempt.after_body")
    with running(app):
        workflow_id = app.start({"mode": "write", "name": "h"})
        held = app.gate.wait_reached("attempt.after_body")
        (attempt_dir,) = app.project.workspaces.glob("task_id=*")
        host_a = {"PERAGO_INSTANCE_ID": "host-a", "PERAGO_WORKSPACE_GC_TTL": "10m"}
        collected = app.gc(**host_a)
        assert collected.returncode == 0, collected.stderr
        assert attempt_dir.exists()
        # Host B freezes (no heartbeats, no cleanup): its pid means nothing to host A, and its
        # record is only as old as its last heartbeat, so the directory stays ...
        os.kill(int(held[0]), signal.SIGSTOP)
        try:
            assert app.gc(**host_a).returncode == 0
            assert attempt_dir.exists()
            record = app.project.workspaces / ATTEMPT_RECORDS_DIRNAME / (attempt_dir.name + ".json")
            past = time.time() - 3600  # ... until host B has been silent longer than the TTL
            os.utime(record, (past, past))
            collected = app.gc(**host_a)
            assert collected.returncode == 0, collected.stderr
            assert f"removed workspace: {attempt_dir}" in collected.stdout
            assert not attempt_dir.exists()
        finally:
            os.kill(int(held[0]), signal.SIGCONT)
        app.gate.release("attempt.after_body")
        state = app.rest.wait(workflow_id)
    # Host B's attempt, its workspace collected under it, fails instead of publishing garbage.
    task = _task(state)
    assert task["status"] == "FAILED", task
    assert "WorkspaceSafetyError" in task["reasonForIncompletion"]
    assert app.lake.head() == app.lake.seed


# -- reserved free space ----------------------------------------------------------------------


@pytest.fixture
def small_root(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs as the workspace root (needs root; unmounted afterwards)."""
    root = tmp_path / "small-root"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (root needed): {mounted.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def test_two_downloads_that_do_not_fit_together_are_refused_clearly(
    make_app: Callable[..., App], small_root: Path
) -> None:
    """Both attempts see 64 MiB free and need 40 MiB: a per-download check lets both start and
    both run out. With reservations the second is refused before it writes anything."""
    app = make_app(dotenv={"PERAGO_WORKSPACE_ROOT": str(small_root)})
    ref = commit_files(
        app.lake.config, app.lake.repo, "main", {"data/big.bin": os.urandom(40 * MIB)}
    )
    app.gate.hold("download.after_reserve", once=True)
    try:
        with running(app, "-j", "2"):
            first = app.start({"mode": "write", "name": "first"}, ref=ref)
            app.gate.wait_reached("download.after_reserve")  # 40 MiB reserved, nothing written
            second = app.rest.wait(app.start({"mode": "write", "name": "second"}, ref=ref))
            app.gate.release("download.after_reserve")
            done = app.rest.wait(first)
    finally:
        _free_local_object(app.lake, "data/big.bin")
    listed = 40 * MIB + len(b"seed")  # data/big.bin and data/seed.txt
    refused = _task(second)
    assert refused["status"] == "FAILED", refused
    assert re.fullmatch(
        rf"OSError: \[Errno 28\] not enough free disk space in {re.escape(str(small_root))}: "
        rf"{listed} bytes needed, \d+ bytes available \(\d+ free, {listed} reserved by 1 "
        r"other running download\(s\)\)",
        refused["reasonForIncompletion"],
    ), refused["reasonForIncompletion"]
    assert done["status"] == "COMPLETED", done
    assert app.lake.changed(done["output"]["workspace"]["ref"]) == [
        "data/big.bin",
        "data/first.txt",
    ]
    assert _leftovers(small_root) == []  # no reservation, record or directory left
