"""Integration fixtures: a private, restartable lakeFS for the transfer tests (``transfer_repo``)
and the workspace-runtime fixtures built on the shared session server (``lakefs_config``, ``repo``).

Interface kept minimal on purpose so the integrator can swap in the shared server fixture:
``lakefs_server`` -> endpoint, access_key_id, secret_access_key;
``lakefs_repo`` -> server fields + ``name`` + ``put``/``commit``/``create_branch`` helpers.
The lakefs binary comes from $PERAGO_LAKEFS_BIN or line 1 of /work/notes/lakefs-binary.txt.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import lakefs_sdk
import pytest
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.lakefs_runtime import LakeFSWorkspaceRuntime
from tests.servers_fixture import LakefsRepo, LakefsServer

from .publication_support import AttemptRun, commit_files, sdk_client

BINARY_NOTE = Path("/work/notes/lakefs-binary.txt")


def _lakefs_binary() -> Path:
    explicit = os.environ.get("PERAGO_LAKEFS_BIN")
    if explicit:
        return Path(explicit)
    if BINARY_NOTE.is_file():
        first = BINARY_NOTE.read_text().splitlines()[0].strip()
        if first:
            return Path(first)
    found = sorted(Path.home().glob(".cache/perago/servers/lakefs/*/bin/lakefs"))
    if found:
        return found[-1]
    pytest.fail("no lakefs binary: set PERAGO_LAKEFS_BIN or build it (see shared/servers.md)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LakeFSServer:
    binary: Path
    workdir: Path
    port: int
    access_key_id: str = "AKIAPERAGOTEST00000"
    secret_access_key: str = field(default_factory=lambda: "s3cr3t-" + secrets.token_hex(16))
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEFS_", "LAKECTL_"))}
        env.update(
            LAKEFS_LISTEN_ADDRESS=f"127.0.0.1:{self.port}",
            LAKEFS_DATABASE_TYPE="local",
            LAKEFS_DATABASE_LOCAL_PATH=str(self.workdir / "meta"),
            LAKEFS_BLOCKSTORE_TYPE="local",
            LAKEFS_BLOCKSTORE_LOCAL_PATH=str(self.workdir / "block"),
            LAKEFS_COMMITTED_LOCAL_CACHE_DIR=str(self.workdir / "cache"),
            LAKEFS_AUTH_ENCRYPT_SECRET_KEY="perago-transfer-tests-encrypt-key",
            LAKEFS_INSTALLATION_USER_NAME="admin",
            LAKEFS_INSTALLATION_ACCESS_KEY_ID=self.access_key_id,
            LAKEFS_INSTALLATION_SECRET_ACCESS_KEY=self.secret_access_key,
            LAKEFS_STATS_ENABLED="false",
            LAKEFS_SECURITY_CHECK_LATEST_VERSION="false",
            LAKEFS_EMAIL_SUBSCRIPTION_ENABLED="false",
            LAKEFS_LOGGING_LEVEL="WARN",
        )
        return env

    def start(self, timeout: float = 60.0) -> None:
        log = (self.workdir / "lakefs.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.binary), "run"], env=self._env(), stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lakefs exited early; see {self.workdir / 'lakefs.log'}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_health", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"lakefs did not become healthy in {timeout}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def sdk(self) -> lakefs_sdk.ApiClient:
        config = lakefs_sdk.Configuration(
            host=f"{self.endpoint}/api/v1",
            username=self.access_key_id,
            password=self.secret_access_key,
        )
        return lakefs_sdk.ApiClient(config)


@dataclass
class LakeFSRepo:
    server: LakeFSServer
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
        """Upload one seed object through the official SDK (independent of perago's engine)."""
        with self.server.sdk() as api:
            lakefs_sdk.ObjectsApi(api).upload_object(self.name, branch, path, content=data)

    def commit(self, branch: str = "main", message: str = "seed") -> str:
        with self.server.sdk() as api:
            commit = lakefs_sdk.CommitsApi(api).commit(
                self.name, branch, lakefs_sdk.CommitCreation(message=message)
            )
        return str(commit.id)

    def create_branch(self, name: str, source: str = "main") -> None:
        with self.server.sdk() as api:
            lakefs_sdk.BranchesApi(api).create_branch(
                self.name, lakefs_sdk.BranchCreation(name=name, source=source)
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
    workdir = Path(tempfile.mkdtemp(prefix="perago-transfer-lakefs-"))
    server = LakeFSServer(binary=_lakefs_binary(), workdir=workdir, port=_free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def transfer_repo(restartable_lakefs: LakeFSServer) -> LakeFSRepo:
    lakefs_server = restartable_lakefs
    name = "t-" + uuid.uuid4().hex[:16]
    with lakefs_server.sdk() as api:
        lakefs_sdk.RepositoriesApi(api).create_repository(
            lakefs_sdk.RepositoryCreation(
                name=name,
                storage_namespace=f"local://{uuid.uuid4().hex}",
                default_branch="main",
            )
        )
    return LakeFSRepo(server=lakefs_server, name=name)


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
    runtime = LakeFSWorkspaceRuntime(lakefs_config)
    try:
        yield AttemptRun(runtime=runtime, workspace_root=tmp_path / "attempts")
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
        objects = lakefs_sdk.ObjectsApi(sdk_client(lakefs_config))

        def upload(index: int) -> None:
            objects.upload_object(
                repository, "main", f"{prefix}/f{index:05d}.txt", content=f"file {index}".encode()
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(upload, range(count)))
        return commit_files(lakefs_config, repository, "main", {})

    return seed
