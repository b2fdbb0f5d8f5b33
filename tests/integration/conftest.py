"""Integration fixtures: a private, restartable lakeFS for the transfer tests (``transfer_repo``)
and the workspace-runtime fixtures built on the shared session server (``lakefs_config``, ``repo``).

Interface kept minimal on purpose so the integrator can swap in the shared server fixture:
``lakefs_server`` -> endpoint, access_key_id, secret_access_key;
``lakefs_repo`` -> server fields + ``name`` + ``put``/``commit``/``create_branch`` helpers.
The private server is launched, restarted and stopped by ``perago.devservers`` (the code behind
``perago dev up``), with the lakeFS build that ``perago dev`` provisions.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import lakefs_sdk
import pytest
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.devservers import lakefs, process, supervisor
from perago.devservers.lakefs import LakefsCredentials
from perago.lakefs.workspace import LakeFSWorkspaceRuntime
from tests.servers_fixture import LakefsRepo, LakefsServer

from .publication_support import (
    AttemptRun,
    RecordedTaskStates,
    commit_files,
    put_object,
    sdk_client,
)


def _quiet(_: str) -> None:
    pass


class _KeyedServer(Protocol):
    @property
    def endpoint(self) -> str: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> str: ...


def _config_of(server: _KeyedServer) -> LakeFSConfig:
    return LakeFSConfig(
        endpoint_url=server.endpoint,
        access_key_id=server.access_key_id,
        secret_access_key=SecretStr(server.secret_access_key),
    )


@dataclass
class LakeFSServer:
    """A private lakeFS that tests may stop and start again: same data, keys and port."""

    state_dir: Path
    port: int = field(default_factory=process.free_port)
    launched: supervisor.Launched | None = None
    creds: LakefsCredentials | None = None

    @property
    def endpoint(self) -> str:
        return lakefs.base_url(self.port)

    @property
    def access_key_id(self) -> str:
        return self._creds().access_key_id

    @property
    def secret_access_key(self) -> str:
        return self._creds().secret_access_key

    def _creds(self) -> LakefsCredentials:
        if self.creds is None:
            raise RuntimeError("the private lakeFS was never started")
        return self.creds

    def start(self) -> None:
        self.launched, self.creds = supervisor.launch_lakefs(self.state_dir, _quiet, port=self.port)
        supervisor.await_healthy(self.launched, _quiet)

    def stop(self) -> None:
        if self.launched is not None:
            supervisor.stop([self.launched.record], _quiet)
        self.launched = None

    def config(self) -> LakeFSConfig:
        return _config_of(self)

    def sdk(self) -> lakefs_sdk.ApiClient:
        return sdk_client(self.config())


@dataclass(frozen=True)
class SessionLakeFS:
    """A session lakeFS (not restartable) in the shape the transfer tests use."""

    endpoint: str
    access_key_id: str
    secret_access_key: str

    def config(self) -> LakeFSConfig:
        return _config_of(self)

    def sdk(self) -> lakefs_sdk.ApiClient:
        return sdk_client(self.config())


@dataclass
class LakeFSRepo:
    server: LakeFSServer | SessionLakeFS
    name: str

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def access_key_id(self) -> str:
        return self.server.access_key_id

    @property
    def secret_access_key(self) -> str:
        return self.server.secret_access_key

    def put(self, path: str, data: bytes, branch: str = "main") -> None:
        """Upload one seed object with a plain REST call (independent of perago's engine)."""
        put_object(self.server.config(), self.name, branch, path, data)

    def commit(self, branch: str = "main", message: str = "seed") -> str:
        with self.server.sdk() as api:
            commit = lakefs_sdk.CommitsApi(api).commit(
                self.name,
                branch,
                lakefs_sdk.CommitCreation(message=message, date=None, allow_empty=False),
            )
        return str(commit.id)

    def create_branch(self, name: str, source: str = "main") -> None:
        with self.server.sdk() as api:
            lakefs_sdk.BranchesApi(api).create_branch(
                self.name, lakefs_sdk.BranchCreation(name=name, source=source, hidden=False)
            )

    def object_paths(self, ref: str = "main", prefix: str = "") -> list[str]:
        out: list[str] = []
        after = ""
        with self.server.sdk() as api:
            objects = lakefs_sdk.ObjectsApi(api)
            while True:
                page = objects.list_objects(self.name, ref, prefix=prefix, after=after, amount=1000)
                out.extend(o.path for o in page.results)
                if not page.pagination.has_more:
                    return out
                after = page.pagination.next_offset


@pytest.fixture(scope="session")
def restartable_lakefs() -> Iterator[LakeFSServer]:
    state_dir = Path(tempfile.mkdtemp(prefix="perago-transfer-lakefs-"))
    server = LakeFSServer(state_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@dataclass
class RestartableRepo(LakeFSRepo):
    server: LakeFSServer


@pytest.fixture
def restartable_repo(restartable_lakefs: LakeFSServer) -> RestartableRepo:
    """A repository on the private, local-blockstore lakeFS the test may stop and start."""
    lakefs_server = restartable_lakefs
    name = "t-" + uuid.uuid4().hex[:16]
    with lakefs_server.sdk() as api:
        lakefs_sdk.RepositoriesApi(api).create_repository(
            lakefs_sdk.RepositoryCreation(
                name=name,
                storage_namespace=f"local://{uuid.uuid4().hex}",
                default_branch="main",
                storage_id=None,
            )
        )
    return RestartableRepo(server=lakefs_server, name=name)


@pytest.fixture(params=["local", "s3"])
def transfer_repo(request: pytest.FixtureRequest) -> LakeFSRepo:
    """A fresh repository on each topology in turn: the private local lakeFS, then the session
    lakeFS on MinIO (where the engine transfers through presigned URLs)."""
    if request.param == "local":
        repo = request.getfixturevalue("restartable_repo")
        assert isinstance(repo, LakeFSRepo)
        return repo
    on_s3 = request.getfixturevalue("lakefs_repo_s3")
    assert isinstance(on_s3, LakefsRepo)
    server = on_s3.server
    session = SessionLakeFS(server.url, server.access_key_id, server.secret_access_key)
    return LakeFSRepo(server=session, name=on_s3.name)


# --- workspace runtime (shared session server from tests/conftest.py) -----------------------


@pytest.fixture
def lakefs_config(lakefs_server: LakefsServer) -> LakeFSConfig:
    return LakeFSConfig(
        endpoint_url=lakefs_server.url,
        access_key_id=lakefs_server.access_key_id,
        secret_access_key=SecretStr(lakefs_server.secret_access_key),
    )


@pytest.fixture
def repo(lakefs_repo: LakefsRepo) -> str:
    return lakefs_repo.name


@pytest.fixture
def attempts(lakefs_config: LakeFSConfig, tmp_path: Path) -> Iterator[AttemptRun]:
    states = RecordedTaskStates()
    runtime = LakeFSWorkspaceRuntime(lakefs_config, task_states=states)
    try:
        yield AttemptRun(runtime=runtime, workspace_root=tmp_path / "attempts", states=states)
    finally:
        runtime.control.close()


@pytest.fixture
def seed_files(lakefs_config: LakeFSConfig) -> Callable[[str, Mapping[str, bytes]], str]:
    def seed(repository: str, files: Mapping[str, bytes]) -> str:
        return commit_files(lakefs_config, repository, "main", files)

    return seed


@pytest.fixture
def seed_many(lakefs_config: LakeFSConfig) -> Callable[[str, str, int], str]:
    """Commit ``count`` small files ``<prefix>/fNNNNN.txt`` (uploaded with a few threads)."""

    def seed(repository: str, prefix: str, count: int) -> str:
        def upload(index: int) -> None:
            put_object(
                lakefs_config,
                repository,
                "main",
                f"{prefix}/f{index:05d}.txt",
                f"file {index}".encode(),
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(upload, range(count)))
        return commit_files(lakefs_config, repository, "main", {})

    return seed
