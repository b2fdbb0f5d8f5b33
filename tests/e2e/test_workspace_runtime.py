"""Workspace tasks through ``perago start`` against real Conductor and real lakeFS."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest
import requests
from pydantic import SecretStr

from perago.config import LakeFSConfig
from tests.e2e.harness import ConductorRest, Project, make_project, stop
from tests.integration.publication_support import diff_paths, sdk_client
from tests.servers_fixture import ConductorServer, LakefsRepo, LakefsServer

pytestmark = pytest.mark.integration

TASK_SOURCE = """
import os, time
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


def _config(server: LakefsServer) -> LakeFSConfig:
    return LakeFSConfig(
        endpoint_url=server.url,
        access_key_id=server.access_key_id,
        secret_access_key=SecretStr(server.secret_access_key),
    )


def commit_files(
    config: LakeFSConfig, repository: str, branch: str, files: dict[str, bytes]
) -> str:
    """Upload raw bytes over the lakeFS REST API and commit (independent of perago's engine)."""
    auth = (config.access_key_id, config.secret_access_key.get_secret_value())
    base = f"{config.endpoint_url.rstrip('/')}/api/v1/repositories/{repository}/branches/{branch}"
    for path, content in files.items():
        uploaded = requests.post(
            f"{base}/objects",
            params={"path": path},
            data=content,
            auth=auth,
            timeout=30,
            headers={"Content-Type": "application/octet-stream"},
        )
        uploaded.raise_for_status()
    committed = requests.post(f"{base}/commits", json={"message": "seed"}, auth=auth, timeout=30)
    committed.raise_for_status()
    return str(committed.json()["id"])


class Workspace:
    """The test's lakeFS repository: seeded main branch, branch heads, commits, staging branches."""

    def __init__(self, server: LakefsServer, repo: LakefsRepo) -> None:
        self.config = _config(server)
        self.repo = repo.name
        self.seed = commit_files(self.config, self.repo, "main", {"data/seed.txt": b"seed"})
        self.branches = lakefs_sdk.BranchesApi(sdk_client(self.config))
        self.commits = lakefs_sdk.CommitsApi(sdk_client(self.config))

    def head(self, branch: str = "main") -> str:
        return str(self.branches.get_branch(self.repo, branch).commit_id)

    def branch(self, name: str) -> None:
        self.branches.create_branch(
            self.repo, lakefs_sdk.BranchCreation(name=name, source=self.seed)
        )

    def input(self, branch: str = "main") -> dict[str, str]:
        return {"repository": self.repo, "branch": branch, "ref_type": "commit", "ref": self.seed}

    def changed(self, ref: str) -> list[str]:
        return sorted(diff_paths(self.config, self.repo, self.seed, ref))

    def parents(self, ref: str) -> list[str]:
        return [str(p) for p in self.commits.get_commit(self.repo, ref).parents]

    def staging_branches(self) -> list[str]:
        names = [str(b.id) for b in self.branches.list_branches(self.repo, amount=1000).results]
        return [n for n in names if n not in {"main"} and n.startswith("perago")]


@pytest.fixture
def rest(conductor_server: ConductorServer) -> ConductorRest:
    return ConductorRest(conductor_server.api_url)


@pytest.fixture
def workspace(lakefs_server: LakefsServer, lakefs_repo: LakefsRepo) -> Workspace:
    return Workspace(lakefs_server, lakefs_repo)


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
    lakefs = {
        "LAKECTL_SERVER_ENDPOINT_URL": ws.config.endpoint_url,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": ws.config.access_key_id,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": ws.config.secret_access_key.get_secret_value(),
        **(dotenv or {}),
    }
    module = "ws_" + re.sub(r"\W", "_", name)
    return make_project(
        tmp_path, module, source, conductor_api_url=conductor.api_url, dotenv=lakefs, name=folder
    )


def _register(project: Project, rest: ConductorRest, name: str) -> str:
    registered = project.run("register", project.module)
    assert registered.returncode == 0, registered.stderr
    rest.register_workflow(
        f"{name}_wf",
        name,
        {"workspace": "${workflow.input.workspace}", "params": "${workflow.input.params}"},
    )
    return f"{name}_wf"


def _run_one(
    project: Project, rest: ConductorRest, workflow: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    worker = project.start()
    try:
        return rest.wait(rest.start_workflow(workflow, inputs))
    finally:
        code, _out, err = stop(worker)
        assert code == 0, err


def test_changed_workspace_is_published_exactly(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    project = _project(tmp_path, conductor_server, workspace, unique_name)
    workflow = _register(project, rest, unique_name)
    state = _run_one(
        project, rest, workflow, {"workspace": workspace.input(), "params": {"name": "a"}}
    )
    assert state["status"] == "COMPLETED", state
    output = state["output"]["workspace"]
    assert output["ref"] == workspace.head()
    assert workspace.changed(output["ref"]) == ["data/out/a.txt"]
    assert workspace.parents(output["ref"]) == [workspace.seed]
    finished = project.events("attempt finished")[0]
    assert finished["files_uploaded"] == 1
    assert finished["files_downloaded"] == 1


def test_noop_and_read_only_leave_the_branch_alone(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    project = _project(tmp_path, conductor_server, workspace, unique_name)
    workflow = _register(project, rest, unique_name)
    noop = _run_one(
        project, rest, workflow, {"workspace": workspace.input(), "params": {"write": False}}
    )
    assert noop["status"] == "COMPLETED", noop
    assert noop["output"]["workspace"]["ref"] == workspace.seed
    assert workspace.head() == workspace.seed

    ro_name = unique_name + "-ro"
    ro = _project(tmp_path, conductor_server, workspace, ro_name, read_only=True, folder="ro")
    ro_workflow = _register(ro, rest, ro_name)
    state = _run_one(
        ro, rest, ro_workflow, {"workspace": workspace.input(), "params": {"name": "r"}}
    )
    assert state["status"] == "COMPLETED", state
    assert state["output"]["workspace"]["ref"] == workspace.seed
    assert workspace.head() == workspace.seed


def test_pre_guardrail_failure_is_terminal(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    project = _project(tmp_path, conductor_server, workspace, unique_name, retries=3)
    workflow = _register(project, rest, unique_name)
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
    inputs = {"workspace": {**workspace.input(), "ref": bare}, "params": {}}
    worker = project.start()
    try:
        state = rest.wait(rest.start_workflow(workflow, inputs))
    finally:
        stop(worker)
    assert [t["status"] for t in state["tasks"]] == ["FAILED_WITH_TERMINAL_ERROR"]
    assert "PreGuardrailViolation" in state["tasks"][0]["reasonForIncompletion"]


def test_failed_attempt_is_retried_and_publishes_once(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    project = _project(tmp_path, conductor_server, workspace, unique_name, retries=2)
    workflow = _register(project, rest, unique_name)
    state = _run_one(
        project,
        rest,
        workflow,
        {"workspace": workspace.input(), "params": {"name": "r", "fail_first": True}},
    )
    assert state["status"] == "COMPLETED", state
    assert [t["status"] for t in state["tasks"]] == ["FAILED", "COMPLETED"]
    assert workspace.parents(workspace.head()) == [workspace.seed]
    assert workspace.changed(workspace.head()) == ["data/out/r.txt"]


def test_killed_worker_is_retried_after_response_timeout(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    project = _project(
        tmp_path,
        conductor_server,
        workspace,
        unique_name,
        retries=2,
        response=4,
        dotenv={"PERAGO_WORKSPACE_GC_TTL": "1s"},
    )
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    try:
        workflow_id = rest.start_workflow(
            workflow, {"workspace": workspace.input(), "params": {"name": "k", "sleep_once": True}}
        )
        (started,) = project.wait_for_event("attempt started")
        os.kill(started["pid"], signal.SIGKILL)
        state = rest.wait(workflow_id, timeout=180)
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
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    project = _project(tmp_path, conductor_server, workspace, unique_name)
    workflow = _register(project, rest, unique_name)
    worker = project.start()
    try:
        workflow_id = rest.start_workflow(
            workflow, {"workspace": workspace.input(), "params": {"name": "s", "sleep": 4}}
        )
        project.wait_for_event("attempt started")
        # The task stops being current while the body runs: its fence must refuse to publish.
        terminated = rest.http.delete(
            f"{rest.api_url}/workflow/{workflow_id}", params={"reason": "test"}, timeout=30
        )
        terminated.raise_for_status()
        (finished,) = project.wait_for_event("attempt finished", timeout=60)
    finally:
        stop(worker)
    assert finished["status"] == "FAILED"
    assert finished["exception_type"] == "StaleAttemptError"
    assert workspace.head() == workspace.seed


def test_two_supervisors_publish_fifty_workflows_exactly_once(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    first = _project(tmp_path, conductor_server, workspace, unique_name, folder="a")
    second = _project(tmp_path, conductor_server, workspace, unique_name, folder="b")
    workflow = _register(first, rest, unique_name)
    branches = [f"b{i:02d}" for i in range(50)]
    for branch in branches:
        workspace.branch(branch)
    workers = [first.start("-j", "2"), second.start("-j", "2")]
    try:
        ids = {
            rest.start_workflow(
                workflow, {"workspace": workspace.input(branch), "params": {"name": branch}}
            ): branch
            for branch in branches
        }
        states = {i: rest.wait(i, timeout=600) for i in ids}
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
    pids = {e["pid"] for e in first.events("attempt finished") + second.events("attempt finished")}
    assert len(pids) >= 2
