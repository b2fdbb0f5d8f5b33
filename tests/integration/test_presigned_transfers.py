"""Presigned transfers on the s3 topology: bytes go between the engine and MinIO directly.

What moved through lakeFS is read from lakeFS's own Prometheus counters
(``api_request_duration_seconds_count`` per API operation), and what is left on the object store
from MinIO's S3 API (``ListMultipartUploads``), so every assertion is about the real servers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import lakefs_sdk
import pytest

from perago.devservers import minio
from perago.engine import snapshot as engine
from perago.engine.transfer import (
    LakeFSClient,
    LakeFSCredentials,
    TransferProgress,
    connect,
    download_prefix,
    upload_files,
)
from perago.errors import LakeFSError
from tests.servers_fixture import LakefsRepo, LakefsServer

from ._lakefs_metrics import operation_counts

pytestmark = pytest.mark.integration

GATE = "upload.part_uploaded"


def _operation_counts(server: LakefsServer) -> dict[str, int]:
    return operation_counts(server.url)


def _delta(before: dict[str, int], after: dict[str, int], operation: str) -> int:
    return after.get(operation.lower(), 0) - before.get(operation.lower(), 0)


def _client(server: LakefsServer, mode: str = "auto") -> LakeFSClient:
    creds = LakeFSCredentials(server.access_key_id, server.secret_access_key)
    return connect(server.url, creds, transfer_mode=mode)


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _commit(repo: LakefsRepo, message: str) -> str:
    with repo.server.api_client() as api:
        commit = lakefs_sdk.CommitsApi(api).commit(
            repo.name,
            "main",
            lakefs_sdk.CommitCreation(message=message, date=None, allow_empty=False),
        )
    return str(commit.id)


def _open_multipart_uploads(server: LakefsServer) -> list[str]:
    target = server.s3
    assert target is not None, "needs the MinIO this session started"
    status, body = minio.s3_call(
        "GET",
        f"{target.endpoint}/{target.bucket}?uploads=",
        minio.MinioCredentials(target.access_key_id, target.secret_access_key),
    )
    assert status == 200, body[:300]
    return re.findall(r"<Key>([^<]+)</Key>", body.decode())


@pytest.fixture
def s3_repo(lakefs_repo_s3: LakefsRepo) -> LakefsRepo:
    if lakefs_repo_s3.server.s3 is None:
        pytest.fail(
            "the presign tests need the session's own MinIO (unset PERAGO_TEST_LAKEFS_S3_*)"
        )
    return lakefs_repo_s3


def test_data_path_follows_the_blockstore(
    lakefs_server_s3: LakefsServer, lakefs_server_local: LakefsServer
) -> None:
    assert _client(lakefs_server_s3).data_path() == (True, True)
    assert _client(lakefs_server_local).data_path() == (False, False)
    assert _client(lakefs_server_s3, "lakefs").data_path() == (False, False)


def test_forcing_presign_where_the_blockstore_has_none_is_one_clear_error(
    lakefs_repo_local: LakefsRepo, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    client = _client(lakefs_repo_local.server, "presign")
    with pytest.raises(ValueError, match=r"blockstore \(local\) offers no presigned URLs"):
        upload_files(client, None, lakefs_repo_local.name, "main", [(tmp_path / "a.txt", "a.txt")])


def test_presigned_round_trip_moves_no_bytes_through_lakefs(
    s3_repo: LakefsRepo, tmp_path: Path
) -> None:
    server = s3_repo.server
    files = {f"d{i % 5}/f{i:03d}.bin": os.urandom(50 + 97 * i) for i in range(60)}
    files["big.bin"] = os.urandom(9 * 1024 * 1024 + 7)
    files["empty"] = b""
    _write(tmp_path / "src", files)
    client = _client(server)
    items = [(tmp_path / "src" / rel, f"ws/{rel}") for rel in sorted(files)]

    before = _operation_counts(server)
    uploaded = upload_files(client, None, s3_repo.name, "main", items)
    after_upload = _operation_counts(server)
    assert (uploaded.files, uploaded.bytes) == (len(files), sum(map(len, files.values())))
    assert _delta(before, after_upload, "uploadObject") == 0
    assert _delta(before, after_upload, "getPhysicalAddress") == len(files)
    assert _delta(before, after_upload, "linkPhysicalAddress") == len(files)

    commit = _commit(s3_repo, "presigned upload")
    result = download_prefix(client, None, s3_repo.name, commit, "ws", tmp_path / "dst")
    after_download = _operation_counts(server)
    assert _delta(after_upload, after_download, "getObject") == 0
    # Keys first (all checked before a byte is written), then the URLs, page by page.
    assert _delta(after_upload, after_download, "listObjects") == 2
    expected = {rel: engine.hash_file(tmp_path / "src" / rel) for rel in files}
    assert {rel: digest for rel, _, digest in result.entries()} == expected
    assert {rel: engine.hash_file(tmp_path / "dst" / rel) for rel in files} == expected


def test_large_file_goes_up_as_one_parallel_multipart_upload(
    s3_repo: LakefsRepo, tmp_path: Path
) -> None:
    server = s3_repo.server
    data = os.urandom(96 * 1024 * 1024 + 12345)  # 13 parts of 8 MiB, the last one short
    (tmp_path / "large.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("beside it")
    client = _client(server)
    before = _operation_counts(server)
    upload_files(
        client,
        None,
        s3_repo.name,
        "main",
        [(tmp_path / "large.bin", "large.bin"), (tmp_path / "small.txt", "small.txt")],
        multipart_threshold=16 * 1024 * 1024,
        part_size=8 * 1024 * 1024,
    )
    after = _operation_counts(server)
    assert _delta(before, after, "createPresignMultipartUpload") == 1
    assert _delta(before, after, "completePresignMultipartUpload") == 1
    assert _delta(before, after, "getPhysicalAddress") == 1  # the small file only
    assert _delta(before, after, "uploadObject") == 0
    with server.api_client() as api:
        stat = lakefs_sdk.ObjectsApi(api).stat_object(s3_repo.name, "main", "large.bin")
    assert stat.size_bytes == len(data)
    assert stat.checksum.endswith("-13")  # S3's multipart ETag names the part count

    result = download_prefix(client, None, s3_repo.name, "main", "", tmp_path / "back")
    assert result.hash_of("large.bin") == engine.hash_file(tmp_path / "large.bin")
    assert not [k for k in _open_multipart_uploads(server) if s3_repo.name in k]


def test_a_cancelled_multipart_upload_is_aborted_on_the_object_store(
    s3_repo: LakefsRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = s3_repo.server
    (tmp_path / "large.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / f"{GATE}.hold").touch()
    monkeypatch.setenv("PERAGO_FAULT_GATE_DIR", str(gates))
    reached = gates / f"{GATE}.reached"

    class Stop(Exception):
        pass

    open_while_held: list[str] = []

    def stop_once_a_part_landed(_: TransferProgress) -> None:
        # Called on the calling thread while the engine is held at the gate after one part.
        if reached.exists():
            open_while_held.extend(_open_multipart_uploads(server))
            raise Stop

    client = _client(server)
    with pytest.raises(Stop):
        upload_files(
            client,
            None,
            s3_repo.name,
            "main",
            [(tmp_path / "large.bin", "large.bin")],
            concurrency=1,
            multipart_threshold=8 * 1024 * 1024,
            part_size=8 * 1024 * 1024,
            progress=stop_once_a_part_landed,
        )
    assert open_while_held, "the held upload must be visible on MinIO (else the check is blind)"
    assert set(open_while_held).isdisjoint(_open_multipart_uploads(server))
    with server.api_client() as api, pytest.raises(lakefs_sdk.exceptions.NotFoundException):
        lakefs_sdk.ObjectsApi(api).stat_object(s3_repo.name, "main", "large.bin")


def test_presigned_errors_never_quote_a_presigned_url(s3_repo: LakefsRepo, tmp_path: Path) -> None:
    # A download of an object deleted after the listing: the object store refuses the URL.
    (tmp_path / "x.bin").write_bytes(b"x" * 1000)
    client = _client(s3_repo.server)
    upload_files(client, None, s3_repo.name, "main", [(tmp_path / "x.bin", "x.bin")])
    _commit(s3_repo, "one object")
    failure: list[BaseException] = []

    def remove_the_bytes(_root: str, _total: int) -> None:
        target = s3_repo.server.s3
        assert target is not None
        namespace_key = s3_repo.storage_namespace.removeprefix(f"s3://{target.bucket}/")
        # Only this repository's keys (a shared bucket holds more than one page).
        status, body = minio.s3_call(
            "GET",
            f"{target.endpoint}/{target.bucket}?list-type=2&prefix={namespace_key}/",
            minio.MinioCredentials(target.access_key_id, target.secret_access_key),
        )
        assert status == 200
        for key in re.findall(r"<Key>([^<]+)</Key>", body.decode()):
            if key.startswith(namespace_key + "/") and "/_lakefs/" not in key:
                minio.s3_call(
                    "DELETE",
                    f"{target.endpoint}/{target.bucket}/{key}",
                    minio.MinioCredentials(target.access_key_id, target.secret_access_key),
                )

    try:
        download_prefix(
            client,
            None,
            s3_repo.name,
            "main",
            "",
            tmp_path / "dst",
            before_write=remove_the_bytes,
        )
    except LakeFSError as exc:
        failure.append(exc)
    assert failure, "a download of deleted bytes must fail"
    text = str(failure[0])
    assert "X-Amz-" not in text, text
    assert "http" not in text.rsplit("failed:", 1)[-1], text
    assert "object store HTTP 404" in text, text


@pytest.mark.slow
def test_an_object_over_the_single_put_limit_is_published_and_read_back(
    s3_repo: LakefsRepo, tmp_path: Path
) -> None:
    size = 5 * 1024**3 + 3 * 1024 * 1024 + 17  # over S3's 5 GiB single-PUT limit
    block = os.urandom(64 * 1024 * 1024)
    with (tmp_path / "huge.bin").open("wb") as out:
        left = size
        while left:
            # Shift the block per chunk so no two parts are equal.
            chunk = block[left % 4096 :][: min(left, len(block) - 4096)]
            out.write(chunk)
            left -= len(chunk)
    client = _client(s3_repo.server)
    before = _operation_counts(s3_repo.server)
    upload_files(client, None, s3_repo.name, "main", [(tmp_path / "huge.bin", "huge.bin")])
    after = _operation_counts(s3_repo.server)
    assert _delta(before, after, "completePresignMultipartUpload") == 1
    with s3_repo.server.api_client() as api:
        stat = lakefs_sdk.ObjectsApi(api).stat_object(s3_repo.name, "main", "huge.bin")
    assert stat.size_bytes == size
    expected = engine.hash_file(tmp_path / "huge.bin")
    (tmp_path / "huge.bin").unlink()  # room for the copy read back
    result = download_prefix(client, None, s3_repo.name, "main", "", tmp_path / "back")
    assert result.hash_of("huge.bin") == expected
