"""Fixtures of the e2e tests: a REST client of the session Conductor and a seeded repository."""

from __future__ import annotations

import pytest

from tests.e2e.harness import ConductorRest, Workspace
from tests.servers_fixture import ConductorServer, LakefsRepo, LakefsServer


@pytest.fixture
def rest(conductor_server: ConductorServer) -> ConductorRest:
    return ConductorRest(conductor_server.api_url)


@pytest.fixture
def workspace(lakefs_server: LakefsServer, lakefs_repo: LakefsRepo) -> Workspace:
    """A fresh repository on the session lakeFS with ``data/seed.txt`` committed to main."""
    return Workspace(lakefs_server, lakefs_repo)
