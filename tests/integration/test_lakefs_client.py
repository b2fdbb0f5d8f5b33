"""perago's one Python lakeFS client (``LakeFSControl``) against the real lakeFS: the calls the
benches and the demo use, its error type, and a restart it rides out.

Results are checked with the plain SDK / REST helpers of ``publication_support``, not with the
client under test.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from lakefs_sdk.api.branches_api import BranchesApi
from lakefs_sdk.api.commits_api import CommitsApi
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.errors import LakeFSError
from perago.lakefs.client import DiffEntry, LakeFSControl
from tests.servers_fixture import LakefsServer

from .conftest import RestartableRepo
from .publication_support import diff_paths, read_object, sdk_client

pytestmark = pytest.mark.integration


@pytest.fixture
def control(lakefs_config: LakeFSConfig) -> Iterator[LakeFSControl]:
    client = LakeFSControl.from_config(lakefs_config, timeout_seconds=30)
    try:
        yield client
    finally:
        client.close()


def test_repository_objects_commit_diff_and_branches(
    control: LakeFSControl, lakefs_config: LakeFSConfig, lakefs_server: LakefsServer
) -> None:
    repository = "client-" + uuid.uuid4().hex[:12]
    namespace = f"{lakefs_server.namespace_root}perago-client-test/{repository}"
    control.create_repository(repository, namespace)
    try:
        assert control.storage_namespace(repository) == namespace
        start = control.branch_head(repository, "main")
        control.upload_object(repository, "main", "data/a.txt", b"alpha")
        control.upload_object(repository, "main", "data/b.txt", b"beta")
        assert control.has_uncommitted_changes(repository, "main")
        first = control.commit(repository, "main", "seed", {"k": "v"})
        assert control.branch_head(repository, "main") == first
        assert not control.has_uncommitted_changes(repository, "main")
        info = control.get_commit(repository, first)
        assert (info.parents, info.message, dict(info.metadata)) == ((start,), "seed", {"k": "v"})
        assert read_object(lakefs_config, repository, first, "data/a.txt") == b"alpha"

        control.create_branch(repository, "work", "main")
        assert control.branch_head(repository, "work") == first
        control.upload_object(repository, "work", "data/a.txt", b"changed")
        control.upload_object(repository, "work", "data/c.txt", b"gamma")
        second = control.commit(repository, "work", "edit", {})
        assert list(control.iter_diff(repository, first, second)) == [
            DiffEntry("changed", "data/a.txt"),
            DiffEntry("added", "data/c.txt"),
        ]
        assert diff_paths(lakefs_config, repository, first, second) == ["data/a.txt", "data/c.txt"]
        assert ("work", second) in set(control.iter_branches(repository, "wo"))

        with pytest.raises(LakeFSError) as exists:
            control.create_branch(repository, "work", "main")
        assert exists.value.status == 409
        control.delete_branch(repository, "work")
        with pytest.raises(LakeFSError) as gone:
            control.branch_head(repository, "work")
        assert gone.value.status == 404
        assert gone.value.operation == "get branch"
        assert "not found" in gone.value.server_message
    finally:
        control.delete_repository(repository)
    # lakeFS caches repositories for a few seconds: the deletion shows once that expires.
    deadline = time.monotonic() + 30
    status: int | None = 200
    while status == 200 and time.monotonic() < deadline:
        try:
            control.storage_namespace(repository)
            time.sleep(0.5)
        except LakeFSError as deleted:
            status = deleted.status
    assert status == 404, "the deleted repository is still there"


def test_wrong_secret_and_unreachable_server_raise_the_one_error_type(
    lakefs_config: LakeFSConfig, repo: str
) -> None:
    wrong = LakeFSControl(
        lakefs_config.endpoint_url,
        lakefs_config.access_key_id,
        SecretStr("definitely-wrong-secret"),
    )
    with pytest.raises(LakeFSError) as denied:
        wrong.branch_head(repo, "main")
    assert denied.value.status == 401
    assert "definitely-wrong-secret" not in str(denied.value)

    started = time.monotonic()
    down = LakeFSControl("http://127.0.0.1:9", "k", SecretStr("s"), timeout_seconds=2.0)
    with pytest.raises(LakeFSError) as unreachable:
        down.branch_head(repo, "main")
    assert unreachable.value.status is None
    assert "gave up after" in unreachable.value.server_message
    assert time.monotonic() - started < 10  # retried within its 2 s timeout, not for ~15 s


def test_upload_and_commit_ride_out_a_lakefs_restart(restartable_repo: RestartableRepo) -> None:
    """lakeFS goes down and comes back (same data, same port) while perago uploads a small object
    and commits: both calls wait for it instead of failing, and the commit is made once."""
    server = restartable_repo.server
    config = server.config()
    seed_head = str(
        BranchesApi(sdk_client(config)).get_branch(restartable_repo.name, "main").commit_id
    )
    control = LakeFSControl.from_config(config)
    server.stop()
    restarted = threading.Event()
    failures: list[BaseException] = []

    def restart() -> None:
        try:
            time.sleep(1.0)
            server.start()
        except BaseException as exc:  # reported by the test below
            failures.append(exc)
        finally:
            restarted.set()

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    try:
        control.upload_object(restartable_repo.name, "main", "restart/x.txt", b"survived")
        commit = control.commit(restartable_repo.name, "main", "after restart", {"t": "1"})
    finally:
        restarted.wait(timeout=120)
        thread.join(timeout=5)
        control.close()
    assert failures == []
    assert read_object(config, restartable_repo.name, commit, "restart/x.txt") == b"survived"
    head = BranchesApi(sdk_client(config)).get_branch(restartable_repo.name, "main")
    made = CommitsApi(sdk_client(config)).get_commit(restartable_repo.name, commit)
    assert str(head.commit_id) == commit
    assert list(made.parents) == [seed_head]  # one commit, not two
