"""Session fixtures for real servers; the implementation lives in tests/servers_fixture.py.

Fixtures: ``lakefs_server_local`` and ``conductor_server`` (session, started once or reused from
PERAGO_TEST_* variables), ``lakefs_server_s3`` (a lakeFS on the s3 blockstore of its own MinIO),
``lakefs_server`` (each of the two topologies in turn: every test using it runs on both, with
ids ``[local]`` and ``[s3]``), ``lakefs_repo`` / ``lakefs_repo_local`` / ``lakefs_repo_s3`` (a
fresh repository per test), ``unique_name``; ``ctrl_c_raises`` for tests that send themselves
SIGINT.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers_fixture
from tests.servers_fixture import ConductorServer, LakefsRepo, LakefsServer


@pytest.fixture(scope="session")
def servers_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


TOPOLOGIES = ("local", "s3")


@pytest.fixture(scope="session")
def lakefs_server_local(servers_state_dir: Path) -> Iterator[LakefsServer]:
    yield from servers_fixture.lakefs_session(servers_state_dir)


@pytest.fixture(scope="session", params=TOPOLOGIES)
def lakefs_server(request: pytest.FixtureRequest) -> LakefsServer:
    """The lakeFS of one topology: ``local`` blockstore, or ``s3`` on MinIO (presigned path)."""
    server = request.getfixturevalue(f"lakefs_server_{request.param}")
    assert isinstance(server, LakefsServer)
    return server


@pytest.fixture(scope="session")
def lakefs_server_s3(servers_state_dir: Path) -> Iterator[LakefsServer]:
    yield from servers_fixture.lakefs_s3_session(servers_state_dir / "s3")


@pytest.fixture(scope="session")
def conductor_server(servers_state_dir: Path) -> Iterator[ConductorServer]:
    yield from servers_fixture.conductor_session(servers_state_dir)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    return servers_fixture.make_unique_name(request)


@pytest.fixture
def lakefs_repo(lakefs_server: LakefsServer, unique_name: str) -> Iterator[LakefsRepo]:
    yield from servers_fixture.lakefs_repo_for(lakefs_server, unique_name)


@pytest.fixture
def lakefs_repo_local(lakefs_server_local: LakefsServer, unique_name: str) -> Iterator[LakefsRepo]:
    yield from servers_fixture.lakefs_repo_for(lakefs_server_local, unique_name)


@pytest.fixture
def lakefs_repo_s3(lakefs_server_s3: LakefsServer, unique_name: str) -> Iterator[LakefsRepo]:
    yield from servers_fixture.lakefs_repo_for(lakefs_server_s3, unique_name)


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """SIGINT raises ``KeyboardInterrupt`` during the test, however the runner was started.

    A runner launched in the background (``cmd &``, CI agents) inherits SIGINT ignored, and
    Python installs its ``KeyboardInterrupt`` handler only when SIGINT is not ignored at startup,
    so a test that sends itself SIGINT would never be interrupted. While the handler is set,
    subprocesses start with SIGINT at its default instead of ignored. The runner's disposition
    is restored afterwards.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
