"""Session fixtures for real servers; the implementation lives in tests/servers_fixture.py.

Fixtures: ``lakefs_server`` and ``conductor_server`` (session, started once or reused from
PERAGO_TEST_* variables), ``lakefs_repo`` (a fresh repository per test), ``unique_name``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers_fixture
from tests.servers_fixture import ConductorServer, LakefsRepo, LakefsServer


@pytest.fixture(scope="session")
def servers_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def lakefs_server(servers_state_dir: Path) -> Iterator[LakefsServer]:
    yield from servers_fixture.lakefs_session(servers_state_dir)


@pytest.fixture(scope="session")
def conductor_server(servers_state_dir: Path) -> Iterator[ConductorServer]:
    yield from servers_fixture.conductor_session(servers_state_dir)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    return servers_fixture.make_unique_name(request)


@pytest.fixture
def lakefs_repo(lakefs_server: LakefsServer, unique_name: str) -> Iterator[LakefsRepo]:
    yield from servers_fixture.lakefs_repo_for(lakefs_server, unique_name)
