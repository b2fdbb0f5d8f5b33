"""Fixtures for the workspace-runtime integration tests (real lakeFS from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.lakefs_runtime import LakeFSWorkspaceRuntime
from tests.servers_fixture import LakefsRepo, LakefsServer

from .publication_support import AttemptRun, commit_files, sdk_client


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
    import lakefs_sdk

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
