"""A real lakeFS through lakefs-sdk: upload, commit, merge, hard reset, verified by reads."""

from __future__ import annotations

from pathlib import Path

import lakefs_sdk
import pytest
from lakefs_sdk.exceptions import NotFoundException

from tests.servers_fixture import LakefsRepo

pytestmark = pytest.mark.integration


def _read(objects: lakefs_sdk.ObjectsApi, repo: str, ref: str, path: str) -> bytes:
    return bytes(objects.get_object(repo, ref, path))


def _file(tmp_path: Path, name: str, content: bytes) -> str:
    # lakefs-sdk's upload_object takes the path of a local file as `content`.
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_upload_commit_merge_hard_reset(lakefs_repo: LakefsRepo, tmp_path: Path) -> None:
    repo = lakefs_repo.name
    blob = bytes(range(256)) * 64
    with lakefs_repo.server.api_client() as client:
        objects = lakefs_sdk.ObjectsApi(client)
        branches = lakefs_sdk.BranchesApi(client)
        commits = lakefs_sdk.CommitsApi(client)
        refs = lakefs_sdk.RefsApi(client)
        experimental = lakefs_sdk.ExperimentalApi(client)

        objects.upload_object(
            repo, "main", "data/a.txt", content=_file(tmp_path, "a1", b"alpha v1")
        )
        first = commits.commit(
            repo, "main", lakefs_sdk.CommitCreation(message="first", date=None, allow_empty=False)
        )
        assert _read(objects, repo, first.id, "data/a.txt") == b"alpha v1"

        branches.create_branch(
            repo, lakefs_sdk.BranchCreation(name="work", source="main", hidden=False)
        )
        objects.upload_object(
            repo, "work", "data/a.txt", content=_file(tmp_path, "a2", b"alpha v2")
        )
        objects.upload_object(repo, "work", "data/b.bin", content=_file(tmp_path, "b", blob))
        commits.commit(
            repo,
            "work",
            lakefs_sdk.CommitCreation(
                message="work", metadata={"k": "v"}, date=None, allow_empty=False
            ),
        )
        merged = refs.merge_into_branch(
            repo,
            "work",
            "main",
            lakefs_sdk.Merge(
                message="merge work",
                squash_merge=True,
                strategy=None,
                force=False,
                allow_empty=False,
            ),
        )
        head = branches.get_branch(repo, "main").commit_id
        assert head == merged.reference
        assert _read(objects, repo, "main", "data/a.txt") == b"alpha v2"
        assert _read(objects, repo, "main", "data/b.bin") == blob
        listed = objects.list_objects(repo, "main", prefix="data/").results
        assert sorted(o.path for o in listed) == ["data/a.txt", "data/b.bin"]
        assert commits.get_commit(repo, head).parents[0] == first.id

        experimental.hard_reset_branch(repo, "main", first.id)
        assert branches.get_branch(repo, "main").commit_id == first.id
        assert _read(objects, repo, "main", "data/a.txt") == b"alpha v1"
        with pytest.raises(NotFoundException):
            objects.stat_object(repo, "main", "data/b.bin")


def test_each_test_gets_a_fresh_repository(lakefs_repo: LakefsRepo) -> None:
    with lakefs_repo.server.api_client() as client:
        listed = lakefs_sdk.ObjectsApi(client).list_objects(lakefs_repo.name, "main").results
        assert listed == []
        repo = lakefs_sdk.RepositoriesApi(client).get_repository(lakefs_repo.name)
        assert repo.storage_namespace == lakefs_repo.storage_namespace
