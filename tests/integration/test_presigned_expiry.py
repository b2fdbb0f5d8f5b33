"""Presigned URLs that expire mid-transfer: a lakeFS on the session's MinIO whose URLs live two
seconds (``blockstore.s3.pre_signed_expiry``), so every refresh path runs against real servers.

* Download: the listing's URLs expire sooner than the engine's refresh margin, so each file's
  URL is replaced (``statObject?presign=true``) before it is used.
* Multipart upload: the upload is held at the ``upload.part_uploaded`` fault point until its part
  URLs have expired; the next parts are refused by MinIO (403), re-presigned (``uploadPart``) and
  sent again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.devservers import supervisor
from perago.engine import snapshot as engine
from perago.engine.transfer import LakeFSCredentials, connect, download_prefix, upload_files
from perago.lakefs.client import LakeFSControl
from tests.integration.test_presigned_transfers import _delta, _operation_counts
from tests.servers_fixture import LakefsServer

pytestmark = pytest.mark.integration

EXPIRY_SECONDS = 2
GATE = "upload.part_uploaded"


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def short_lived(
    lakefs_server_s3: LakefsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LakefsServer, str]]:
    target = lakefs_server_s3.s3
    if target is None:
        pytest.fail("needs the session's own MinIO (unset PERAGO_TEST_LAKEFS_S3_*)")
    state = tmp_path_factory.mktemp("short-lived-lakefs")
    launched, creds = supervisor.launch_lakefs(
        state, _quiet, s3=target, presigned_expiry=f"{EXPIRY_SECONDS}s"
    )
    try:
        supervisor.await_healthy(launched, _quiet)
        server = LakefsServer(launched.record.url, creds.access_key_id, creds.secret_access_key)
        repository = "expiry-" + uuid.uuid4().hex[:10]
        config = LakeFSConfig(
            endpoint_url=server.url,
            access_key_id=server.access_key_id,
            secret_access_key=SecretStr(server.secret_access_key),
        )
        with contextlib.closing(LakeFSControl.from_config(config)) as control:
            control.create_repository(repository, f"s3://{target.bucket}/{repository}")
        yield server, repository
    finally:
        supervisor.stop([launched.record], _quiet)


def test_download_urls_about_to_expire_are_replaced_before_use(
    short_lived: tuple[LakefsServer, str], tmp_path: Path
) -> None:
    server, repository = short_lived
    source = tmp_path / "src"
    source.mkdir()
    for i in range(30):
        (source / f"f{i:02d}.bin").write_bytes(os.urandom(1000 + i))
    client = connect(server.url, LakeFSCredentials(server.access_key_id, server.secret_access_key))
    upload_files(client, None, repository, "main", [(p, f"dl/{p.name}") for p in source.iterdir()])
    config = LakeFSConfig(
        endpoint_url=server.url,
        access_key_id=server.access_key_id,
        secret_access_key=SecretStr(server.secret_access_key),
    )
    with contextlib.closing(LakeFSControl.from_config(config)) as control:
        commit = control.commit(repository, "main", "to download", {})
    before = _operation_counts(server)
    result = download_prefix(client, None, repository, commit, "dl", tmp_path / "dst")
    after = _operation_counts(server)
    assert _delta(before, after, "statObject") == 30  # one fresh URL per file
    assert _delta(before, after, "getObject") == 0
    assert {rel: digest for rel, _, digest in result.entries()} == {
        p.name: engine.hash_file(p) for p in source.iterdir()
    }


def test_multipart_parts_refused_after_expiry_are_presigned_again(
    short_lived: tuple[LakefsServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, repository = short_lived
    data = os.urandom(15 * 1024 * 1024)  # three 5 MiB parts
    (tmp_path / "large.bin").write_bytes(data)
    gates = tmp_path / "gates"
    gates.mkdir()
    hold = gates / f"{GATE}.hold"
    hold.touch()
    monkeypatch.setenv("PERAGO_FAULT_GATE_DIR", str(gates))

    def release_once_the_urls_expired() -> None:
        while not (gates / f"{GATE}.reached").exists():
            time.sleep(0.02)
        # Every part URL was presigned before the first part went up; expiry is absolute.
        time.sleep(EXPIRY_SECONDS + 1.5)
        hold.unlink()

    releaser = threading.Thread(target=release_once_the_urls_expired, daemon=True)
    releaser.start()
    client = connect(server.url, LakeFSCredentials(server.access_key_id, server.secret_access_key))
    before = _operation_counts(server)
    upload_files(
        client,
        None,
        repository,
        "main",
        [(tmp_path / "large.bin", "mp/large.bin")],
        concurrency=1,
        multipart_threshold=5 * 1024 * 1024,
        part_size=5 * 1024 * 1024,
    )
    releaser.join(timeout=30)
    after = _operation_counts(server)
    assert _delta(before, after, "createPresignMultipartUpload") == 1
    assert _delta(before, after, "uploadPart") == 2  # parts 2 and 3, refused once each
    assert _delta(before, after, "completePresignMultipartUpload") == 1
    result = download_prefix(client, None, repository, "main", "mp", tmp_path / "back")
    assert result.hash_of("large.bin") == engine.hash_file(tmp_path / "large.bin")
