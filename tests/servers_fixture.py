"""Real lakeFS / Conductor servers for the test session (see tests/conftest.py for the fixtures).

Servers are started once per session under pytest's temporary directory and stopped at the end,
or reused when the environment names running ones:

- ``PERAGO_TEST_LAKEFS_URL``, ``PERAGO_TEST_LAKEFS_ACCESS_KEY_ID``,
  ``PERAGO_TEST_LAKEFS_SECRET_ACCESS_KEY``: an existing lakeFS (server root, no ``/api/v1``);
- ``PERAGO_TEST_CONDUCTOR_URL``: an existing Conductor (``http://host:port/api``);
- ``PERAGO_TEST_LAKEFS_S3_URL``, ``PERAGO_TEST_LAKEFS_S3_ACCESS_KEY_ID``,
  ``PERAGO_TEST_LAKEFS_S3_SECRET_ACCESS_KEY``, ``PERAGO_TEST_LAKEFS_S3_NAMESPACE``
  (``s3://<bucket>[/<prefix>]``): an existing lakeFS on an S3 blockstore, e.g. the one
  ``perago dev up --blockstore s3`` starts (its bucket is in ``PERAGO_DEV_S3_BUCKET``).

There is no mode that skips integration tests: a server that cannot start fails the fixture.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from perago.devservers import conductor, lakefs, supervisor
from perago.devservers.errors import DevServerError
from perago.devservers.lakefs import LakefsCredentials
from perago.devservers.minio import MinioCredentials, S3Target

LAKEFS_ENV = (
    "PERAGO_TEST_LAKEFS_URL",
    "PERAGO_TEST_LAKEFS_ACCESS_KEY_ID",
    "PERAGO_TEST_LAKEFS_SECRET_ACCESS_KEY",
)
CONDUCTOR_ENV = "PERAGO_TEST_CONDUCTOR_URL"
LAKEFS_S3_ENV = (
    "PERAGO_TEST_LAKEFS_S3_URL",
    "PERAGO_TEST_LAKEFS_S3_ACCESS_KEY_ID",
    "PERAGO_TEST_LAKEFS_S3_SECRET_ACCESS_KEY",
    "PERAGO_TEST_LAKEFS_S3_NAMESPACE",
)
# The bucket a test session creates on the MinIO it starts.
TEST_BUCKET = "perago-test"


@dataclass(frozen=True)
class LakefsServer:
    url: str  # server root, e.g. http://127.0.0.1:41234 (what LAKECTL_SERVER_ENDPOINT_URL holds)
    access_key_id: str
    secret_access_key: str
    # Repositories' storage namespaces are ``<namespace_root><name>``: ``local://<name>`` on the
    # local blockstore, ``s3://<bucket>/<name>`` on the s3 one.
    namespace_root: str = "local://"
    blockstore: str = "local"
    # The bucket under lakeFS, when this session started the MinIO (None when reused).
    s3: S3Target | None = None

    @property
    def api_url(self) -> str:
        return self.url + "/api/v1"

    def __repr__(self) -> str:
        return (
            f"LakefsServer(url={self.url!r}, access_key_id={self.access_key_id!r}, "
            f"blockstore={self.blockstore!r}, namespace_root={self.namespace_root!r})"
        )

    def api_client(self) -> Any:
        import lakefs_sdk

        config = lakefs_sdk.Configuration(
            host=self.api_url, username=self.access_key_id, password=self.secret_access_key
        )
        return lakefs_sdk.ApiClient(config)


@dataclass(frozen=True)
class ConductorServer:
    api_url: str  # http://127.0.0.1:<port>/api (what CONDUCTOR_SERVER_URL holds)

    @property
    def url(self) -> str:
        return self.api_url.removesuffix("/api")

    def configuration(self) -> Any:
        from conductor.client.configuration.configuration import Configuration

        return Configuration(server_api_url=self.api_url)


@dataclass(frozen=True)
class LakefsRepo:
    server: LakefsServer
    name: str
    storage_namespace: str
    default_branch: str


def _reused_lakefs() -> LakefsServer | None:
    values = [os.environ.get(name, "").strip() for name in LAKEFS_ENV]
    if not any(values):
        return None
    missing = [name for name, value in zip(LAKEFS_ENV, values, strict=True) if not value]
    if missing:
        raise DevServerError(f"incomplete reused-lakeFS settings; missing {', '.join(missing)}")
    server = LakefsServer(values[0].rstrip("/"), values[1], values[2])
    if not lakefs.is_healthy(server.url):
        raise DevServerError(f"PERAGO_TEST_LAKEFS_URL={server.url} is not a healthy lakeFS")
    return server


def _reused_lakefs_s3() -> LakefsServer | None:
    values = [os.environ.get(name, "").strip() for name in LAKEFS_S3_ENV]
    if not any(values):
        return None
    missing = [name for name, value in zip(LAKEFS_S3_ENV, values, strict=True) if not value]
    if missing:
        raise DevServerError(f"incomplete reused-lakeFS-S3 settings; missing {', '.join(missing)}")
    url, key_id, secret, namespace = values
    if not namespace.startswith("s3://"):
        raise DevServerError(f"PERAGO_TEST_LAKEFS_S3_NAMESPACE={namespace} is not an s3:// URI")
    server = LakefsServer(url.rstrip("/"), key_id, secret, namespace.rstrip("/") + "/", "s3")
    if not lakefs.is_healthy(server.url):
        raise DevServerError(f"PERAGO_TEST_LAKEFS_S3_URL={server.url} is not a healthy lakeFS")
    return server


def _reused_conductor() -> ConductorServer | None:
    value = os.environ.get(CONDUCTOR_ENV, "").strip().rstrip("/")
    if not value:
        return None
    server = ConductorServer(value if value.endswith("/api") else value + "/api")
    if not conductor.is_healthy(server.url):
        raise DevServerError(f"{CONDUCTOR_ENV}={value} is not a healthy Conductor")
    return server


# pytest retries a failed session fixture for every test that requests it; remember the first
# failure so a server that cannot start costs one start timeout, not one per test.
_start_failures: dict[str, str] = {}


def _progress(message: str) -> None:
    print(f"[servers] {message}", flush=True)


def _start(name: str, launch: Callable[[], supervisor.Launched]) -> supervisor.Launched:
    """Launch and wait for health; a failure is remembered and the half-started server stopped."""
    if name in _start_failures:
        raise DevServerError(
            f"{name} failed to start earlier in this session: {_start_failures[name]}"
        )
    launched: supervisor.Launched | None = None
    try:
        launched = launch()
        supervisor.await_healthy(launched, _progress)
    except DevServerError as exc:
        _start_failures[name] = str(exc)
        if launched is not None:
            supervisor.stop([launched.record], _progress)
        raise
    return launched


def lakefs_session(state_dir: Path) -> Iterator[LakefsServer]:
    """Yield a healthy lakeFS for the session; stop it afterwards if this session started it."""
    reused = _reused_lakefs()
    if reused is not None:
        yield reused
        return
    started: dict[str, LakefsCredentials] = {}

    def launch() -> supervisor.Launched:
        launched, started["creds"] = supervisor.launch_lakefs(state_dir, _progress)
        return launched

    launched = _start("lakeFS", launch)
    creds = started["creds"]
    try:
        yield LakefsServer(launched.record.url, creds.access_key_id, creds.secret_access_key)
    finally:
        supervisor.stop([launched.record], _progress)


def lakefs_s3_session(state_dir: Path) -> Iterator[LakefsServer]:
    """Yield a healthy lakeFS on an S3 blockstore: a MinIO started under ``state_dir`` (bucket
    ``TEST_BUCKET``) with a lakeFS on it; both stopped afterwards if this session started them."""
    reused = _reused_lakefs_s3()
    if reused is not None:
        yield reused
        return
    minio_creds: dict[str, MinioCredentials] = {}

    def launch_minio() -> supervisor.Launched:
        launched, minio_creds["creds"] = supervisor.launch_minio(state_dir, _progress)
        return launched

    minio_run = _start("MinIO", launch_minio)
    try:
        target = supervisor.s3_target(minio_run.record, minio_creds["creds"], TEST_BUCKET)
        started: dict[str, LakefsCredentials] = {}

        def launch_lakefs() -> supervisor.Launched:
            launched, started["creds"] = supervisor.launch_lakefs(state_dir, _progress, s3=target)
            return launched

        lakefs_run = _start("lakeFS (s3)", launch_lakefs)
        creds = started["creds"]
        try:
            yield LakefsServer(
                lakefs_run.record.url,
                creds.access_key_id,
                creds.secret_access_key,
                namespace_root=target.namespace_root + "/",
                blockstore="s3",
                s3=target,
            )
        finally:
            supervisor.stop([lakefs_run.record], _progress)
    finally:
        supervisor.stop([minio_run.record], _progress)


def conductor_session(state_dir: Path) -> Iterator[ConductorServer]:
    """Yield a healthy Conductor for the session; stop it afterwards if this session started it."""
    reused = _reused_conductor()
    if reused is not None:
        yield reused
        return
    launched = _start("Conductor", lambda: supervisor.launch_conductor(state_dir, _progress))
    try:
        yield ConductorServer(conductor.api_url(launched.record.port))
    finally:
        supervisor.stop([launched.record], _progress)


def make_unique_name(request: pytest.FixtureRequest) -> str:
    """``t-<test name>-<random>`` (<= 43 chars, [a-z0-9-]): valid lakeFS repo and Conductor name."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30]
    return f"t-{stem}-{uuid.uuid4().hex[:10]}"


def lakefs_repo_for(server: LakefsServer, name: str) -> Iterator[LakefsRepo]:
    """A fresh repository with its own storage namespace; deleted after the test."""
    import lakefs_sdk

    with server.api_client() as client:
        repos = lakefs_sdk.RepositoriesApi(client)
        namespace = f"{server.namespace_root}{name}"
        repos.create_repository(
            lakefs_sdk.RepositoryCreation(
                name=name, storage_namespace=namespace, default_branch="main", storage_id=None
            )
        )
        try:
            yield LakefsRepo(server, name, namespace, "main")
        finally:
            repos.delete_repository(name)
