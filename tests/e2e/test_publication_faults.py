"""Deterministic fault tests of fenced publication (protocol v2) against real lakeFS and Conductor.

Every test drives real ``perago start`` workers. A worker is held at a named fault point
(``perago.attempt.faults``: ``PERAGO_FAULT_GATE_DIR``), and while it waits there the test
does the fault: SIGSTOP the worker so that Conductor times its task out (its lease heartbeats
stop), SIGKILL it, commit a foreign change, freeze lakeFS or Conductor (SIGSTOP of the server
process). Waits are on files and events, never on a guessed sleep; the only deliberate waits
are the length of a fault (Conductor frozen for ten seconds), a local deadline to pass, and
the gc TTL.

At the end each test checks the publication invariant on the real branch and the real workflow
(:func:`assert_invariant`): at most one publication of (workflow, task ref) after the input ref
A, a COMPLETED task's output is on the branch, a failed task left nothing, foreign commits
survive; and again after ``perago gc --lakefs`` (which must never damage that state, and is
what converges the states the protocol leaves to it), with no staging branch left behind.

Notes on the fault gate (as implemented): a point's ``.hold`` holds *every* process arriving
while the file exists, ``.hold-once`` merely turns into ``.hold`` for its first arrival. So once
the first arrival is frozen or killed, the test removes the ``.hold`` file; a frozen worker sees
it gone when it is continued.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest

from perago.config import LakeFSConfig
from perago.devservers import process as dev_process
from perago.devservers import supervisor as dev_supervisor
from tests.e2e.harness import (
    WORKSPACE_INPUTS,
    ConductorRest,
    DeployedApp,
    Project,
    deploy,
    lakectl_dotenv,
    lakefs_config,
    make_project,
    stop,
    wait_until,
)
from tests.integration.publication_support import commit_files, diff_paths, sdk_client
from tests.process_support import process_running
from tests.servers_fixture import ConductorServer, LakefsRepo, LakefsServer

pytestmark = pytest.mark.integration

METADATA_WORKFLOW = "perago.workflow_instance_id"
METADATA_TASK_REF = "perago.task_ref"
METADATA_TASK_ID = "perago.task_id"
SEED_PATH = "data/seed.txt"

# The first attempt of a workflow (no marker file yet in the project directory) writes
# out/<name>-first.txt, every later attempt out/<name>-again.txt: a stale attempt's merge and
# its retry's publication touch different files, so a merge of one on top of the other lands
# (no conflict) and the branch shows which attempt published. With noop_first the first attempt
# writes nothing.
TASK_SOURCE = """
import os
from pathlib import Path
from pydantic import BaseModel
from perago import (
    task, TaskControls, RetryPolicy, TimeoutPolicy, PublishBudget, WorkspaceSpec, require_file,
)

class Params(BaseModel):
    name: str = "out"
    noop_first: bool = False

class Result(BaseModel):
    first: bool

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data", pre=[require_file("seed.txt")]),
    controls=TaskControls(
        retry=RetryPolicy(count={retries}, delay_seconds=0),
        timeout=TimeoutPolicy(policy="RETRY", seconds={seconds}, response_seconds={response}),
        publish_budget={budget},
    ),
)
def run(workspace: Path, params: Params) -> Result:
    marker = Path(os.getcwd()) / ("once-" + params.name)
    first = not marker.exists()
    marker.touch()
    if not (first and params.noop_first):
        tag = "first" if first else "again"
        (workspace / "out").mkdir(exist_ok=True)
        target = workspace / "out" / (params.name + "-" + tag + ".txt")
        target.write_text(tag + " attempt of " + params.name + " in pid " + str(os.getpid()))
    return Result(first=first)
"""

SMALL_BUDGET = (
    "PublishBudget(observed_merge_p99_seconds=1, safety_margin_seconds=1, "
    "lakefs_merge_timeout_seconds=3, conductor_completion_timeout_seconds=5, "
    "worker_shutdown_grace_seconds=5, heartbeat_interval_seconds=5)"
)


class InvariantViolation(AssertionError):
    """The publication invariant does not hold on the real branch / workflow."""


class LivenessViolation(AssertionError):
    """An attempt did not end within the bound the test allows while a server is frozen."""


# --- processes --------------------------------------------------------------------------------


def listening_pid(port: int) -> int:
    """The pid of the process listening on TCP ``port`` (read from /proc, no psutil)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="utf-8").splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{inode}]")
    if inodes:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (entry / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in inodes:
                            return int(entry.name)
    raise AssertionError(f"no process of this user listens on port {port}")


class Frozen:
    """SIGSTOP a process (or its whole process group) until :meth:`thaw`; thaw is idempotent."""

    def __init__(self, pid: int, *, group: bool = False) -> None:
        self.pid = pid
        # Never stop our own group (a reused server could share it): then stop just the pid.
        self.group = group and os.getpgid(pid) != os.getpgrp()
        self.pgid = os.getpgid(pid) if self.group else None
        self._signal(signal.SIGSTOP)
        self.frozen = True

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.pgid is not None:
                os.killpg(self.pgid, sig)
            else:
                os.kill(self.pid, sig)

    def thaw(self) -> None:
        if self.frozen:
            self._signal(signal.SIGCONT)
            self.frozen = False


class Thaw:
    """Everything a test froze; ``thaw_all`` in a finally, before stopping the workers."""

    def __init__(self) -> None:
        self.frozen: list[Frozen] = []

    def freeze(self, pid: int, *, group: bool = False) -> Frozen:
        frozen = Frozen(pid, group=group)
        self.frozen.append(frozen)
        return frozen

    def thaw_all(self) -> None:
        for frozen in reversed(self.frozen):
            frozen.thaw()


# --- fault gate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reached:
    pid: int
    task_id: str


class Gate:
    """The directory behind ``PERAGO_FAULT_GATE_DIR`` of one project."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def arm(self, point: str, *, once: bool = False) -> None:
        (self.root / f"{point}.{'hold-once' if once else 'hold'}").touch()

    def reached(self, point: str) -> Reached | None:
        try:
            lines = (self.root / f"{point}.reached").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        if len(lines) < 2 or not lines[0].isdigit():
            return None
        return Reached(int(lines[0]), lines[1])

    def wait_reached(
        self,
        point: str,
        *,
        task_id: str | None = None,
        other_than: str | None = None,
        timeout: float = 120.0,
    ) -> Reached:
        """Wait until a process (optionally: of ``task_id``, or not of ``other_than``) is held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.reached(point)
            if (
                found is not None
                and (task_id is None or found.task_id == task_id)
                and (other_than is None or found.task_id != other_than)
            ):
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"nothing reached fault point {point} within {timeout}s "
            f"(task {task_id or 'any'}, last: {self.reached(point)})"
        )

    def release(self, point: str) -> None:
        for suffix in ("hold", "hold-once", "reached", "claimed"):
            (self.root / f"{point}.{suffix}").unlink(missing_ok=True)

    def release_all(self) -> None:
        for path in self.root.glob("*.hold*"):
            path.unlink(missing_ok=True)


# --- lakeFS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    id: str
    parents: list[str]
    metadata: dict[str, str]


class Lake:
    """The test's repository: seeded main branch (A), heads, commit chains, staging branches."""

    def __init__(self, config: LakeFSConfig, repo: str, server_pid: int | None = None) -> None:
        self.config = config
        self.repo = repo
        self.server_pid = server_pid
        self.seed = commit_files(config, repo, "main", {SEED_PATH: b"seed"})
        client = sdk_client(config)
        self.branches = lakefs_sdk.BranchesApi(client)
        self.commits = lakefs_sdk.CommitsApi(client)

    @property
    def dotenv(self) -> dict[str, str]:
        return lakectl_dotenv(self.config)

    def input(self, branch: str = "main") -> dict[str, str]:
        return {"repository": self.repo, "branch": branch, "ref_type": "commit", "ref": self.seed}

    def head(self, branch: str = "main") -> str:
        return str(self.branches.get_branch(self.repo, branch).commit_id)

    def commit(self, ref: str) -> Commit:
        found = self.commits.get_commit(self.repo, ref)
        return Commit(str(found.id), [str(p) for p in found.parents], dict(found.metadata or {}))

    def chain(self, head: str, limit: int = 50) -> list[Commit]:
        """First-parent chain from ``head`` down to (excluding) the seed commit A."""
        chain: list[Commit] = []
        current = head
        while current != self.seed:
            if len(chain) >= limit:
                raise InvariantViolation(f"the seed {self.seed} is not within {limit} of {head}")
            commit = self.commit(current)
            chain.append(commit)
            if not commit.parents:
                raise InvariantViolation(f"the seed {self.seed} is not an ancestor of {head}")
            current = commit.parents[0]
        return chain

    def changed(self, ref: str) -> list[str]:
        return sorted(diff_paths(self.config, self.repo, self.seed, ref))

    def commit_foreign(self, path: str, content: bytes, branch: str = "main") -> str:
        return commit_files(
            self.config, self.repo, branch, {path: content}, message="foreign", metadata={}
        )

    def staging_branches(self) -> list[str]:
        names = [str(b.id) for b in self.branches.list_branches(self.repo, amount=1000).results]
        return sorted(n for n in names if n.startswith("perago-staging-"))


@dataclass
class PrivateLakeFS:
    """A lakeFS of this module alone (launched by perago.devservers), so it can be frozen."""

    url: str
    access_key_id: str
    secret_access_key: str
    pid: int

    def config(self) -> LakeFSConfig:
        return lakefs_config(self.url, self.access_key_id, self.secret_access_key)


@pytest.fixture(scope="module")
def private_lakefs() -> Iterator[PrivateLakeFS]:
    state_dir = Path(tempfile.mkdtemp(prefix="perago-fault-lakefs-"))
    launched = None
    try:
        launched, creds = dev_supervisor.launch_lakefs(
            state_dir, lambda _: None, port=dev_process.free_port()
        )
        dev_supervisor.await_healthy(launched, lambda _: None)
        yield PrivateLakeFS(
            launched.record.url, creds.access_key_id, creds.secret_access_key, launched.record.pid
        )
    finally:
        if launched is not None:
            # A failed test may have left it stopped: continue it, or it never exits.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(launched.record.pid, signal.SIGCONT)
            dev_supervisor.stop([launched.record], lambda _: None)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def lake(lakefs_server: LakefsServer, lakefs_repo: LakefsRepo) -> Lake:
    """A fresh repository on the session lakeFS."""
    config = lakefs_config(
        lakefs_server.url, lakefs_server.access_key_id, lakefs_server.secret_access_key
    )
    return Lake(config, lakefs_repo.name)


@pytest.fixture
def freezable_lake(private_lakefs: PrivateLakeFS, unique_name: str) -> Iterator[Lake]:
    """A fresh repository on the private lakeFS, whose server process the test may SIGSTOP."""
    config = private_lakefs.config()
    repos = lakefs_sdk.RepositoriesApi(sdk_client(config))
    repos.create_repository(
        lakefs_sdk.RepositoryCreation(
            name=unique_name,
            storage_namespace=f"local://{unique_name}",
            default_branch="main",
            storage_id=None,
        )
    )
    try:
        yield Lake(config, unique_name, server_pid=private_lakefs.pid)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(private_lakefs.pid, signal.SIGCONT)
        repos.delete_repository(unique_name)


# --- deployments ------------------------------------------------------------------------------


@dataclass
class App(DeployedApp):
    lake: Lake
    gate: Gate
    name: str

    @property
    def task_ref(self) -> str:
        return f"{self.name}_ref"

    def start_workflow(self, name: str, *, noop_first: bool = False) -> str:
        return self.deployment.start_workflow(
            {"workspace": self.lake.input(), "params": {"name": name, "noop_first": noop_first}}
        )


def fault_project(
    tmp_path: Path,
    conductor: ConductorServer,
    lake: Lake,
    name: str,
    *,
    retries: int = 1,
    response: int = 10,
    seconds: int = 0,
    budget: str = "None",
    env: dict[str, str] | None = None,
    folder: str = "project",
) -> tuple[Project, Gate]:
    source = TASK_SOURCE.format(
        name=name, retries=retries, response=response, seconds=seconds, budget=budget
    )
    gate = Gate(tmp_path / f"{folder}-gates")
    project = make_project(
        tmp_path,
        "pf_" + name,
        source,
        conductor_api_url=conductor.api_url,
        dotenv=lake.dotenv,
        env={"PERAGO_FAULT_GATE_DIR": str(gate.root), **(env or {})},
        name=folder,
    )
    return project, gate


@pytest.fixture
def make_app(
    tmp_path: Path, conductor_server: ConductorServer, rest: ConductorRest, unique_name: str
) -> Callable[..., App]:
    """Write the fault task module for ``lake`` with the given controls; register it."""

    def make(lake: Lake, **options: Any) -> App:
        project, gate = fault_project(tmp_path, conductor_server, lake, unique_name, **options)
        return App(deploy(project, rest, unique_name, WORKSPACE_INPUTS), lake, gate, unique_name)

    return make


# --- events and the invariant -----------------------------------------------------------------


def events(project: Project, message: str | None = None) -> list[dict[str, Any]]:
    """JSONL events of every process of ``project`` (a line cut short by a kill is skipped)."""
    found = []
    for path in sorted(project.logs.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if message is None or event.get("message") == message:
                    found.append(event)
    return found


def finished(project: Project, task_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """The ``attempt finished`` event of ``task_id`` (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in events(project, "attempt finished"):
            if event.get("task_id") == task_id:
                return event
        time.sleep(0.1)
    raise AssertionError(f"no 'attempt finished' event of task {task_id} in {project.logs}")


def run_gc(project: Project, repository: str) -> None:
    """``perago gc --lakefs REPO`` with a 1 s TTL, after the TTL has passed."""
    time.sleep(1.5)  # the TTL itself, not a race: every staging commit must be older than it
    collector = dataclasses.replace(project, env={**project.env, "PERAGO_WORKSPACE_GC_TTL": "1s"})
    collected = collector.run("gc", "--lakefs", repository)
    assert collected.returncode == 0, collected.stderr


@dataclass(frozen=True)
class Expect:
    """One workflow whose invariant is checked on the shared branch."""

    app: App
    state: dict[str, Any]


def invariant_problems(
    lake: Lake,
    expects: list[Expect],
    *,
    changed: list[str],
    foreign: tuple[str, ...],
    foreign_on_top: bool,
) -> list[str]:
    problems: list[str] = []
    head = lake.head()
    chain = lake.chain(head)
    ids = [c.id for c in chain]
    for expect in expects:
        workflow_id = expect.state["workflowId"]
        task_ref = expect.app.task_ref
        publications = [
            c.id
            for c in chain
            if c.metadata.get(METADATA_WORKFLOW) == workflow_id
            and c.metadata.get(METADATA_TASK_REF) == task_ref
        ]
        tasks = [t for t in expect.state["tasks"] if t["referenceTaskName"] == task_ref]
        final = tasks[-1]["status"] if tasks else "NONE"
        label = f"workflow {workflow_id}"
        if final == "COMPLETED":
            output = expect.state["output"]["workspace"]["ref"]
            wanted = [] if output == lake.seed else [output]
            if publications != wanted:
                problems.append(
                    f"{label}: task COMPLETED with output {output}, but its publications on "
                    f"the chain are {publications} (expected {wanted})"
                )
            if not foreign_on_top and head != output:
                problems.append(f"{label}: head {head} is not the task's output {output}")
        elif publications:
            problems.append(
                f"{label}: task ended {final}, yet its publications {publications} remain"
            )
    actual_changed = lake.changed(head)
    if actual_changed != sorted(changed):
        problems.append(f"paths changed A..head are {actual_changed}, expected {sorted(changed)}")
    problems.extend(f"foreign commit {f} is gone from the chain" for f in foreign if f not in ids)
    if problems:
        problems.append(
            "chain head..A:\n"
            + "\n".join(
                f"  {c.id} parents={c.parents} task={c.metadata.get(METADATA_TASK_ID)}"
                for c in chain
            )
        )
    return problems


def assert_invariant(
    app: App,
    state: dict[str, Any],
    *,
    changed: list[str],
    foreign: tuple[str, ...] = (),
    foreign_on_top: bool = False,
    others: tuple[Expect, ...] = (),
    before_gc: bool = True,
) -> None:
    """The publication invariant for ``state``'s workflow (and ``others`` on the same branch).

    Checked on the branch as the attempts left it (unless ``before_gc`` is False: a state the
    protocol leaves to ``perago gc`` to converge), then again after ``perago gc --lakefs``
    (which must converge, never damage), with no staging branch left. Raises
    :class:`InvariantViolation` naming every broken part.
    """
    lake = app.lake
    expects = [Expect(app, state), *others]

    def problems_now() -> list[str]:
        return invariant_problems(
            lake, expects, changed=changed, foreign=foreign, foreign_on_top=foreign_on_top
        )

    if before_gc:
        problems = problems_now()
        if problems:
            raise InvariantViolation("before perago gc:\n" + "\n".join(problems))
    run_gc(app.project, lake.repo)
    problems = problems_now()
    left = lake.staging_branches()
    if left:
        problems.insert(0, f"staging branches remain after perago gc: {left}")
    if problems:
        raise InvariantViolation("after perago gc:\n" + "\n".join(problems))


def publisher_task(lake: Lake, commit_id: str) -> str | None:
    return lake.commit(commit_id).metadata.get(METADATA_TASK_ID)


def wait_timed_out(
    app: App, workflow_id: str, task_id: str, *, response: int, timeout: float = 150.0
) -> dict[str, Any]:
    """Wait until Conductor times the silent (frozen or killed) task out.

    Conductor decides response timeouts only when its sweeper evaluates the workflow, and it
    evaluates a retry that it scheduled during a sweep only after the workflow offset (30 s or
    more in Conductor 3.32.1). Once the task has been silent for longer than its response
    timeout, this asks Conductor's decider to evaluate the workflow now
    (``PUT /workflow/decide/{id}``); the verdict is still Conductor's own.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks: dict[str, dict[str, Any]] = {
            t["taskId"]: t for t in app.rest.workflow(workflow_id)["tasks"]
        }
        task = tasks.get(task_id)
        if task is not None:
            if task["status"] == "TIMED_OUT":
                return task
            if task["status"] not in {"SCHEDULED", "IN_PROGRESS"}:
                raise AssertionError(f"task {task_id} ended {task['status']}, not TIMED_OUT")
            if time.time() - task["updateTime"] / 1000 > response + 1:
                app.rest.decide(workflow_id).raise_for_status()
        time.sleep(0.5)
    raise AssertionError(f"Conductor did not time task {task_id} out within {timeout}s")


def freeze_until_timed_out(
    app: App, thaw: Thaw, workflow_id: str, point: str, *, response: int
) -> tuple[Reached, Frozen]:
    """Freeze the attempt held at ``point`` (then release the point) until Conductor has timed
    its task out; returns that stale attempt and its freeze."""
    stale = app.gate.wait_reached(point)
    frozen = thaw.freeze(stale.pid)
    app.gate.release(point)
    wait_timed_out(app, workflow_id, stale.task_id, response=response)
    return stale, frozen


@contextlib.contextmanager
def running(app: App, *args: str, thaw: Thaw | None = None) -> Iterator[Any]:
    """``perago start`` for the test's duration; on the way out: thaw, release, drain."""
    worker = app.project.start(*args)
    try:
        yield worker
    except BaseException:
        if thaw is not None:
            thaw.thaw_all()
        app.gate.release_all()
        with contextlib.suppress(Exception):  # the test's own failure is the one to report
            stop(worker)
        raise
    if thaw is not None:
        thaw.thaw_all()
    app.gate.release_all()
    code, _out, err = stop(worker)
    assert code == 0, f"perago start exited {code}: {err[-3000:]}"


# --- 1, 2: stale attempts held while their retry publishes --------------------------------------


def test_stale_attempt_held_after_deciding_to_merge_never_moves_the_branch(
    make_app: Callable[..., App], lake: Lake
) -> None:
    """Held at publish.decided.merge (H == A read, before the merge fence), frozen until
    Conductor times it out and the retry completes; continued, its fence refuses the merge."""
    app = make_app(lake, retries=1, response=10)
    app.gate.arm("publish.decided.merge", once=True)
    thaw = Thaw()
    with running(app, "-j", "2", thaw=thaw):
        workflow_id = app.start_workflow("s")
        stale, frozen = freeze_until_timed_out(
            app, thaw, workflow_id, "publish.decided.merge", response=10
        )
        state = app.rest.wait(workflow_id, timeout=120)
        head_while_stale = lake.head()
        frozen.thaw()
        event = finished(app.project, stale.task_id)
        assert lake.head() == head_while_stale
    assert state["status"] == "COMPLETED", state
    first, retry = state["tasks"]
    assert (first["taskId"], first["status"], retry["status"]) == (
        stale.task_id,
        "TIMED_OUT",
        "COMPLETED",
    )
    assert event["status"] == "FAILED"
    assert event["exception_type"] == "StaleAttemptError", event
    assert "TIMED_OUT" in event["exception_message"]
    assert publisher_task(lake, lake.head()) == retry["taskId"]
    assert_invariant(app, state, changed=["data/out/s-again.txt"])


@pytest.mark.parametrize("point", ["attempt.after_body", "publish.decided.complete"])
def test_stale_noop_attempt_never_erases_its_retrys_publication(
    make_app: Callable[..., App], lake: Lake, point: str
) -> None:
    """The first attempt changes nothing and is held (before its fence, or after its no-op
    decision); its retry writes a file and completes; the stale no-op must leave it there."""
    app = make_app(lake, retries=1, response=10)
    app.gate.arm(point, once=True)
    thaw = Thaw()
    with running(app, "-j", "2", thaw=thaw):
        workflow_id = app.start_workflow("n", noop_first=True)
        stale, frozen = freeze_until_timed_out(app, thaw, workflow_id, point, response=10)
        state = app.rest.wait(workflow_id, timeout=120)
        published = lake.head()
        frozen.thaw()
        event = finished(app.project, stale.task_id)
        after = app.rest.workflow(workflow_id)
    assert state["status"] == "COMPLETED", state
    first, retry = state["tasks"]
    assert (first["status"], retry["status"]) == ("TIMED_OUT", "COMPLETED")
    assert published == state["output"]["workspace"]["ref"] != lake.seed
    assert lake.head() == published
    if point == "attempt.after_body":
        # Its fence runs after change detection: the stale no-op stops there.
        assert (event["status"], event["exception_type"]) == ("FAILED", "StaleAttemptError")
    else:
        # Past its fence it decided "complete with A" (no branch move) and reported that;
        # Conductor ignores a result for a TIMED_OUT task.
        assert event["status"] == "COMPLETED", event
    assert [t["status"] for t in after["tasks"]] == ["TIMED_OUT", "COMPLETED"]
    assert after["output"] == state["output"]
    assert_invariant(app, state, changed=["data/out/n-again.txt"])


def test_stale_retry_held_inside_its_reset_never_erases_the_next_retrys_publication(
    make_app: Callable[..., App], lake: Lake
) -> None:
    """The first attempt dies after its merge (SIGKILL before its report). The first retry
    decides to replace that abandoned publication and is held inside the guard right before the
    hard reset, frozen until Conductor times it out too. The second retry replaces the
    publication itself and completes; continued, the stale reset must not move the branch."""
    app = make_app(lake, retries=2, response=8)
    app.gate.arm("worker.before_report", once=True)
    app.gate.arm("publish.before_reset", once=True)
    thaw = Thaw()
    with running(app, "-j", "2", thaw=thaw):
        workflow_id = app.start_workflow("x")
        dead = app.gate.wait_reached("worker.before_report")
        abandoned = lake.head()
        os.kill(dead.pid, signal.SIGKILL)
        wait_until(lambda: not process_running(dead.pid), "the killed worker to die", 10)
        app.gate.release("worker.before_report")
        wait_timed_out(app, workflow_id, dead.task_id, response=8)
        stale, frozen = freeze_until_timed_out(
            app, thaw, workflow_id, "publish.before_reset", response=8
        )
        state = app.rest.wait(workflow_id, timeout=120)
        published = lake.head()
        frozen.thaw()
        event = finished(app.project, stale.task_id)
    assert publisher_task(lake, abandoned) == dead.task_id
    assert state["status"] == "COMPLETED", state
    tasks = state["tasks"]
    assert [t["taskId"] for t in tasks[:2]] == [dead.task_id, stale.task_id]
    assert [t["status"] for t in tasks] == ["TIMED_OUT", "TIMED_OUT", "COMPLETED"]
    assert published == state["output"]["workspace"]["ref"] == lake.head()
    assert publisher_task(lake, published) == tasks[-1]["taskId"]
    assert event["status"] == "FAILED"
    assert event["exception_type"] in {"StaleAttemptError", "PublishFenceError"}, event
    assert_invariant(app, state, changed=["data/out/x-again.txt"])


# --- 3, 5: races of two publications -----------------------------------------------------------


def test_stale_merge_in_flight_lands_on_the_retry_and_is_taken_back_out(
    make_app: Callable[..., App], lake: Lake
) -> None:
    """Held inside the branch-move guard right before its merge (its fence passed), frozen
    until Conductor times it out; the retry publishes and is held before its report (still
    IN_PROGRESS); the stale merge then lands on the retry's commit, sees a lost race and
    rolls its own merge back."""
    app = make_app(lake, retries=1, response=10)
    app.gate.arm("publish.before_merge", once=True)
    thaw = Thaw()
    with running(app, "-j", "2", thaw=thaw):
        workflow_id = app.start_workflow("m")
        # Armed for the retry (the stale attempt stays frozen before it until thawed).
        app.gate.arm("worker.before_report")
        stale, frozen = freeze_until_timed_out(
            app, thaw, workflow_id, "publish.before_merge", response=10
        )
        retry = app.gate.wait_reached("worker.before_report", other_than=stale.task_id)
        retry_commit = lake.head()
        assert lake.commit(retry_commit).parents == [lake.seed]
        assert publisher_task(lake, retry_commit) == retry.task_id
        frozen.thaw()
        app.gate.wait_reached("worker.before_report", task_id=stale.task_id, timeout=60)
        head_after_stale = lake.head()
        app.gate.release("worker.before_report")
        state = app.rest.wait(workflow_id, timeout=120)
        event = finished(app.project, stale.task_id)
    assert head_after_stale == retry_commit
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["TIMED_OUT", "COMPLETED"]
    assert state["output"]["workspace"]["ref"] == retry_commit
    assert (event["status"], event["exception_type"]) == ("FAILED", "PublishFenceError"), event
    assert "a concurrent publication won" in event["exception_message"]
    assert "was taken back out" in event["exception_message"]
    assert_invariant(app, state, changed=["data/out/m-again.txt"])


def test_two_workflows_racing_onto_the_same_input_ref_publish_exactly_one(
    tmp_path: Path,
    conductor_server: ConductorServer,
    make_app: Callable[..., App],
    lake: Lake,
    unique_name: str,
) -> None:
    """Two workflows of the same task, each held right before its merge with its fence passed
    (two supervisors, so each can be released on its own); the first merges, the second's
    merge lands on top, is taken back out, and its task fails with PublishFenceError."""
    first = make_app(lake, retries=0, response=30, folder="a")
    project_b, gate_b = fault_project(
        tmp_path, conductor_server, lake, unique_name, retries=0, response=30, folder="b"
    )
    second = App(dataclasses.replace(first.deployment, project=project_b), lake, gate_b, first.name)
    for app in (first, second):
        app.gate.arm("publish.before_merge")
    with running(first, "-j", "1"):
        winner_id = first.start_workflow("w1")
        held_first = first.gate.wait_reached("publish.before_merge")
        # Only now the second supervisor polls: the first one's single slot is busy.
        with running(second, "-j", "1"):
            loser_id = second.start_workflow("w2")
            held_second = second.gate.wait_reached("publish.before_merge")
            assert held_second.task_id != held_first.task_id
            first.gate.release("publish.before_merge")
            winner = first.rest.wait(winner_id, timeout=60)
            winner_commit = lake.head()
            second.gate.release("publish.before_merge")
            loser = second.rest.wait(loser_id, timeout=60)
            event = finished(second.project, held_second.task_id)
    assert winner["status"] == "COMPLETED", winner
    assert winner["output"]["workspace"]["ref"] == winner_commit == lake.head()
    assert lake.commit(winner_commit).parents == [lake.seed]
    assert loser["status"] == "FAILED", loser
    assert (event["status"], event["exception_type"]) == ("FAILED", "PublishFenceError"), event
    assert "was taken back out" in event["exception_message"]
    assert_invariant(
        first, winner, changed=["data/out/w1-first.txt"], others=(Expect(second, loser),)
    )


# --- 4: a rollback that cannot be done ---------------------------------------------------------


def test_failed_rollback_of_a_lost_race_names_both_commits(
    make_app: Callable[..., App], freezable_lake: Lake
) -> None:
    """As the in-flight race above, but lakeFS is frozen while the stale attempt is about to
    take its merge back out (PERAGO_CONTROL_TIMEOUT=2s): every rollback try times out."""
    lake = freezable_lake
    assert lake.server_pid is not None
    app = make_app(lake, retries=1, response=10, env={"PERAGO_CONTROL_TIMEOUT": "2s"})
    app.gate.arm("publish.before_merge", once=True)
    thaw = Thaw()
    with running(app, "-j", "2", thaw=thaw):
        workflow_id = app.start_workflow("r")
        stale, frozen = freeze_until_timed_out(
            app, thaw, workflow_id, "publish.before_merge", response=10
        )
        state = app.rest.wait(workflow_id, timeout=120)
        retry_commit = state["output"]["workspace"]["ref"]
        app.gate.arm("publish.before_roll_back")
        frozen.thaw()
        app.gate.wait_reached("publish.before_roll_back", task_id=stale.task_id, timeout=60)
        stale_merge = lake.head()
        lakefs = thaw.freeze(lake.server_pid, group=True)
        app.gate.release("publish.before_roll_back")
        event = finished(app.project, stale.task_id, timeout=90)
        lakefs.thaw()
    assert state["status"] == "COMPLETED", state
    assert lake.commit(stale_merge).parents == [retry_commit]
    assert publisher_task(lake, stale_merge) == stale.task_id
    assert (event["status"], event["exception_type"]) == ("FAILED", "PublishFenceError"), event
    assert stale_merge in event["exception_message"]
    assert retry_commit in event["exception_message"]
    assert "could not be reset" in event["exception_message"]
    # No attempt is left to converge the branch (the retry is COMPLETED): the stale merge stays
    # the head until perago gc rolls back a head publication of a task that ended without it.
    assert_invariant(app, state, changed=["data/out/r-again.txt"], before_gc=False)


# --- 6: a foreign commit while the body runs ---------------------------------------------------


def test_foreign_commit_during_the_body_fails_every_attempt_and_survives(
    make_app: Callable[..., App], lake: Lake
) -> None:
    app = make_app(lake, retries=1, response=30)
    app.gate.arm("attempt.after_body")
    with running(app, "-j", "2"):
        workflow_id = app.start_workflow("f")
        app.gate.wait_reached("attempt.after_body")
        foreign = lake.commit_foreign("data/foreign.txt", b"not perago's")
        app.gate.release("attempt.after_body")
        state = app.rest.wait(workflow_id, timeout=120)
        attempts = [finished(app.project, t["taskId"]) for t in state["tasks"]]
    assert state["status"] == "FAILED", state
    assert [t["status"] for t in state["tasks"]] == ["FAILED", "FAILED"]
    for event in attempts:
        assert (event["status"], event["exception_type"]) == ("FAILED", "PublishFenceError")
        assert "refusing to discard it" in event["exception_message"]
    assert lake.head() == foreign
    assert_invariant(
        app, state, changed=["data/foreign.txt"], foreign=(foreign,), foreign_on_top=True
    )


# --- 7: kill -9 at every phase ----------------------------------------------------------------


@pytest.mark.parametrize(
    "point",
    [
        "attempt.after_body",
        "attempt.after_stage",
        "publish.before_merge",
        "publish.after_merge",
        "worker.before_report",
    ],
)
def test_worker_killed_at_any_phase_is_retried_and_published_once(
    make_app: Callable[..., App], lake: Lake, point: str
) -> None:
    """SIGKILL at ``point``; the supervisor restarts the slot, Conductor times the task out,
    the retry publishes (merging onto A, or replacing the dead attempt's publication)."""
    app = make_app(lake, retries=2, response=6)
    app.gate.arm(point, once=True)
    with running(app, "-j", "1"):
        workflow_id = app.start_workflow("k")
        killed = app.gate.wait_reached(point)
        os.kill(killed.pid, signal.SIGKILL)
        wait_until(lambda: not process_running(killed.pid), "the killed worker to die", 10)
        app.gate.release(point)
        head_after_kill = lake.head()
        wait_timed_out(app, workflow_id, killed.task_id, response=6)
        state = app.rest.wait(workflow_id, timeout=120)
    if point in {"publish.after_merge", "worker.before_report"}:
        # The dead attempt's merge is on the branch: the retry replaced it (hard reset).
        assert publisher_task(lake, head_after_kill) == killed.task_id
        assert lake.commit(head_after_kill).parents == [lake.seed]
    else:
        assert head_after_kill == lake.seed
    assert state["status"] == "COMPLETED", state
    tasks = state["tasks"]
    assert tasks[0]["taskId"] == killed.task_id
    assert tasks[0]["status"] == "TIMED_OUT"
    assert tasks[-1]["status"] == "COMPLETED"
    ended = events(app.project, "attempt finished")
    assert killed.task_id not in {e["task_id"] for e in ended}
    assert all(e["pid"] != killed.pid for e in ended)
    assert publisher_task(lake, lake.head()) == tasks[-1]["taskId"]
    assert_invariant(app, state, changed=["data/out/k-again.txt"])


# --- 8: lakeFS frozen during a merge ----------------------------------------------------------


MERGE_FREEZE_BOUND_SECONDS = 60.0


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"budget": SMALL_BUDGET}, id="publish-budget-3s"),
        pytest.param({"env": {"PERAGO_CONTROL_TIMEOUT": "3s"}}, id="control-timeout-3s"),
    ],
)
def test_merge_into_a_frozen_lakefs_fails_in_bounded_time_and_the_retry_converges(
    make_app: Callable[..., App], freezable_lake: Lake, limits: dict[str, Any]
) -> None:
    lake = freezable_lake
    assert lake.server_pid is not None
    app = make_app(lake, retries=1, response=30, **limits)
    app.gate.arm("publish.before_merge")
    app.gate.arm("worker.before_report")
    thaw = Thaw()
    with running(app, "-j", "1", thaw=thaw):
        workflow_id = app.start_workflow("z")
        stuck = app.gate.wait_reached("publish.before_merge")
        lakefs = thaw.freeze(lake.server_pid, group=True)
        frozen_at = time.monotonic()
        app.gate.release("publish.before_merge")
        try:
            # The attempt's outcome is decided when it reaches its report (all lakeFS calls
            # done); held there so that its retry starts only once lakeFS answers again.
            app.gate.wait_reached(
                "worker.before_report", task_id=stuck.task_id, timeout=MERGE_FREEZE_BOUND_SECONDS
            )
        except AssertionError as exc:
            raise LivenessViolation(
                f"the attempt still runs {MERGE_FREEZE_BOUND_SECONDS}s after lakeFS froze "
                "during its merge"
            ) from exc
        ended_after = time.monotonic() - frozen_at
        lakefs.thaw()
        app.gate.release("worker.before_report")
        event = finished(app.project, stuck.task_id)
        state = app.rest.wait(workflow_id, timeout=120)
    assert ended_after < MERGE_FREEZE_BOUND_SECONDS
    assert (event["status"], event["exception_type"]) == ("FAILED", "LakeFSError"), event
    assert "timed out" in event["exception_message"].lower(), event
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["FAILED", "COMPLETED"]
    assert_invariant(app, state, changed=["data/out/z-again.txt"])


# --- 9: Conductor frozen while the completion is reported ---------------------------------------


def test_completion_reported_into_a_frozen_conductor_goes_through(
    make_app: Callable[..., App], lake: Lake, conductor_server: ConductorServer
) -> None:
    app = make_app(lake, retries=1, response=30)
    app.gate.arm("worker.before_report")
    conductor_pid = listening_pid(urllib.parse.urlsplit(conductor_server.url).port or 80)
    thaw = Thaw()
    with running(app, "-j", "1", thaw=thaw):
        workflow_id = app.start_workflow("c")
        held = app.gate.wait_reached("worker.before_report")
        published = lake.head()
        conductor = thaw.freeze(conductor_pid, group=True)
        app.gate.release("worker.before_report")
        event = finished(app.project, held.task_id, timeout=30)
        time.sleep(10)  # the length of the fault: Conductor stays frozen this long
        conductor.thaw()
        state = app.rest.wait(workflow_id, timeout=90)
        undo = [e for e in events(app.project) if "completion" in str(e.get("message"))]
    assert event["status"] == "COMPLETED", event
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["COMPLETED"]
    assert state["output"]["workspace"]["ref"] == published == lake.head()
    assert undo == []
    assert_invariant(app, state, changed=["data/out/c-first.txt"])


# --- 10: the local deadline while a merge is in flight -------------------------------------------


DEADLINE_SECONDS = 10


def _hold_merge_past_the_deadline(
    app: App, *, also_after_merge: bool = False, hold_report: bool = False
) -> tuple[Reached, str]:
    """Start a workflow, hold its attempt at publish.before_merge until its local deadline has
    passed (the watchdog then waits for the move), release; returns the held attempt."""
    app.gate.arm("publish.before_merge")
    if also_after_merge:
        app.gate.arm("publish.after_merge")
    if hold_report:
        app.gate.arm("worker.before_report")
    workflow_id = app.start_workflow("d")
    held = app.gate.wait_reached("publish.before_merge")
    # A retry (Conductor's own timeout may schedule one early) waits before its fence.
    app.gate.arm("attempt.after_body")
    reached_at = time.monotonic()
    # The deadline counts from the poll, which came before the hold: past it for sure here.
    wait_until(lambda: time.monotonic() > reached_at + DEADLINE_SECONDS + 1.5, "the deadline")
    app.gate.release("publish.before_merge")
    return held, workflow_id


def test_deadline_during_a_merge_without_retries_leaves_no_publication(
    make_app: Callable[..., App], lake: Lake
) -> None:
    """Held past its deadline right before the merge (the watchdog waits for the move), then
    held right after the merge answered, so the watchdog, not the attempt, decides what happens
    to the merge: it takes it back out while Conductor still has the attempt current; when
    Conductor's own timeout (the same timeoutSeconds) came first it leaves it, says so, and
    perago gc converges. Either way no publication of the failed task remains."""
    app = make_app(lake, retries=0, response=DEADLINE_SECONDS, seconds=DEADLINE_SECONDS)
    with running(app, "-j", "1"):
        held, workflow_id = _hold_merge_past_the_deadline(app, also_after_merge=True)
        event = finished(app.project, held.task_id, timeout=60)
        wait_until(lambda: not process_running(held.pid), "the overdue worker to exit", 30)
        head_after_deadline = lake.head()
        state = app.rest.wait(workflow_id, timeout=120)
    assert (event["status"], event["exception_type"]) == ("FAILED", "TimeoutError"), event
    assert state["status"] in {"FAILED", "TIMED_OUT"}, state
    left_for_gc = [
        e
        for e in events(app.project)
        if e.get("task_id") == held.task_id
        and "its publication stays for the next attempt or perago gc" in str(e.get("message"))
    ]
    if head_after_deadline != lake.seed:
        # Not undone by the watchdog: only because Conductor had already timed the task out.
        assert publisher_task(lake, head_after_deadline) == held.task_id
        assert left_for_gc, "the watchdog neither undid the merge nor said why"
        assert "TIMED_OUT" in str(left_for_gc[0]["message"])
    assert_invariant(app, state, changed=[], before_gc=False)


def test_deadline_during_a_merge_with_a_retry_converges_to_the_retry(
    make_app: Callable[..., App], lake: Lake
) -> None:
    """Held past its deadline right before the merge, then released: the watchdog waits for the
    merge, undoes it (or leaves it when Conductor timed the task out first), reports FAILED and
    ends the process; the retry replaces (or simply makes) the publication.

    Nothing holds the overdue attempt's own thread after the merge: it must not hand a result
    back to the SDK while the watchdog ends the process (update-v2 would answer with the retry,
    which would die with the process and sit polled until its response timeout).
    """
    app = make_app(lake, retries=1, response=DEADLINE_SECONDS, seconds=DEADLINE_SECONDS)
    with running(app, "-j", "1"):
        held, workflow_id = _hold_merge_past_the_deadline(app)
        event = finished(app.project, held.task_id, timeout=60)
        wait_until(lambda: not process_running(held.pid), "the overdue worker to exit", 30)
        app.gate.release("attempt.after_body")
        state = app.rest.wait(workflow_id, timeout=120)
    assert (event["status"], event["exception_type"]) == ("FAILED", "TimeoutError"), event
    assert "timeoutSeconds" in event["reason"]
    assert state["status"] == "COMPLETED", state
    first, retry = state["tasks"]
    assert first["taskId"] == held.task_id
    assert first["status"] in {"FAILED", "TIMED_OUT"}
    assert publisher_task(lake, lake.head()) == retry["taskId"]
    assert_invariant(app, state, changed=["data/out/d-again.txt"])
