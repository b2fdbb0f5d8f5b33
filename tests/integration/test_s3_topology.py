"""The s3 topology: lakeFS on its S3 blockstore over a real MinIO (``lakefs_server_s3``).

The through-lakeFS data path of the engine (upload, commit, download, BLAKE3 per file) must work
unchanged on it, the bytes must land in the MinIO bucket, and lakeFS's ``GET /api/v1/config``
must advertise presigned URLs there (and not on the local blockstore): the presign work relies
on that.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import lakefs_sdk
import pytest

from perago.devservers import minio
from perago.engine import snapshot as engine
from perago.engine.transfer import LakeFSCredentials, download_prefix, upload_files
from tests.servers_fixture import LakefsRepo, LakefsServer

pytestmark = pytest.mark.integration


def _storage_config(server: LakefsServer) -> dict[str, Any]:
    """The (single) storage config of ``GET /api/v1/config``, as the raw JSON reports it."""
    request = urllib.request.Request(server.api_url + "/config")
    token = base64.b64encode(f"{server.access_key_id}:{server.secret_access_key}".encode())
    request.add_header("Authorization", "Basic " + token.decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    config = body.get("storage_config") or body["storage_config_list"][0]
    assert isinstance(config, dict)
    return config


def test_config_reports_presign_on_s3(lakefs_server_s3: LakefsServer) -> None:
    config = _storage_config(lakefs_server_s3)
    assert config["blockstore_type"] == "s3"
    assert config["pre_sign_support"] is True
    assert config["pre_sign_multipart_upload"] is True


def test_config_reports_no_presign_on_local(lakefs_server_local: LakefsServer) -> None:
    config = _storage_config(lakefs_server_local)
    assert config["blockstore_type"] == "local"
    assert config["pre_sign_support"] is False


def _write_tree(root: Path) -> dict[str, bytes]:
    files = {f"d{i % 7}/f{i:03d}.bin": os.urandom(100 + 37 * i) for i in range(120)}
    files["big/blob.bin"] = os.urandom(9 * 1024 * 1024 + 123)  # several S3 parts' worth
    files["empty.txt"] = b""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): engine.hash_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_engine_round_trip_through_lakefs_on_s3(lakefs_repo_s3: LakefsRepo, tmp_path: Path) -> None:
    server = lakefs_repo_s3.server
    assert lakefs_repo_s3.storage_namespace.startswith("s3://")
    creds = LakeFSCredentials(server.access_key_id, server.secret_access_key)
    source = tmp_path / "source"
    files = _write_tree(source)
    items: list[tuple[str | os.PathLike[str], str]] = [
        (source / rel, f"data/{rel}") for rel in sorted(files)
    ]
    uploaded = upload_files(server.url, creds, lakefs_repo_s3.name, "main", items)
    assert (uploaded.files, uploaded.bytes) == (len(files), sum(map(len, files.values())))

    with server.api_client() as client:
        commit = lakefs_sdk.CommitsApi(client).commit(
            lakefs_repo_s3.name,
            "main",
            lakefs_sdk.CommitCreation(message="s3 round trip", date=None, allow_empty=False),
        )
        stat = lakefs_sdk.ObjectsApi(client).stat_object(
            lakefs_repo_s3.name, commit.id, "data/big/blob.bin"
        )

    result = download_prefix(
        server.url, creds, lakefs_repo_s3.name, commit.id, "data", tmp_path / "ws"
    )
    expected = _hashes(source)
    assert result.file_count == len(files)
    assert result.bytes == uploaded.bytes
    assert {rel: digest for rel, _, digest in result.entries()} == expected
    assert _hashes(tmp_path / "ws") == expected

    # The bytes are in the MinIO bucket under the repository's namespace, not on lakeFS's disk.
    namespace = lakefs_repo_s3.storage_namespace
    assert stat.physical_address.startswith(namespace + "/")
    if server.s3 is not None:  # this session started the MinIO, so it can ask it directly
        target = server.s3
        key = stat.physical_address.removeprefix(f"s3://{target.bucket}/")
        status, _ = minio.s3_call(
            "HEAD",
            f"{target.endpoint}/{target.bucket}/{key}",
            minio.MinioCredentials(target.access_key_id, target.secret_access_key),
        )
        assert status == 200
