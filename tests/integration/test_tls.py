"""https end to end with a private CA: MinIO and lakeFS (on it) serve TLS with a certificate of a
CA generated here; the Rust engine and the Python lakeFS client trust it through
``SSL_CERT_FILE`` or ``REQUESTS_CA_BUNDLE``, and refuse the servers without it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from perago.config import LakeFSConfig
from perago.devservers import supervisor
from perago.devservers.state import ServerRecord
from perago.devservers.tls import TlsFiles
from perago.engine import snapshot as engine
from perago.engine.transfer import LakeFSCredentials, connect, download_prefix, upload_files
from perago.errors import LakeFSError
from perago.lakefs.client import LakeFSControl
from tests.tls_support import write_loopback_tls

pytestmark = pytest.mark.integration

CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class TlsLakeFS:
    url: str
    config: LakeFSConfig
    tls: TlsFiles


@pytest.fixture(scope="module")
def tls_lakefs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsLakeFS]:
    state = tmp_path_factory.mktemp("tls-servers")
    tls = write_loopback_tls(state / "certs")
    saved = {name: os.environ.get(name) for name in CA_VARIABLES}
    # The probes (urllib) and lakeFS's own S3 client trust the CA through SSL_CERT_FILE.
    os.environ["SSL_CERT_FILE"] = str(tls.ca_certificate)
    os.environ.pop("REQUESTS_CA_BUNDLE", None)
    records: list[ServerRecord] = []
    try:
        minio_run, minio_creds = supervisor.launch_minio(state, _quiet, tls=tls)
        records.append(minio_run.record)
        supervisor.await_healthy(minio_run, _quiet)
        assert minio_run.record.url.startswith("https://")
        target = supervisor.s3_target(minio_run.record, minio_creds, "tls-test")
        lakefs_run, creds = supervisor.launch_lakefs(state, _quiet, s3=target, tls=tls)
        records.insert(0, lakefs_run.record)
        supervisor.await_healthy(lakefs_run, _quiet)
        config = LakeFSConfig(
            endpoint_url=lakefs_run.record.url,
            access_key_id=creds.access_key_id,
            secret_access_key=SecretStr(creds.secret_access_key),
        )
        with contextlib.closing(LakeFSControl.from_config(config)) as control:
            control.create_repository("tls", "s3://tls-test/tls")
        yield TlsLakeFS(lakefs_run.record.url, config, tls)
    finally:
        supervisor.stop(records, _quiet)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _trust_only(monkeypatch: pytest.MonkeyPatch, variable: str | None, ca: Path) -> None:
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if variable is not None:
        monkeypatch.setenv(variable, str(ca))


@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_presigned_round_trip_over_https_trusting_the_ca_from(
    tls_lakefs: TlsLakeFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    _trust_only(monkeypatch, variable, tls_lakefs.tls.ca_certificate)
    creds = LakeFSCredentials(
        tls_lakefs.config.access_key_id, tls_lakefs.config.secret_access_key.get_secret_value()
    )
    client = connect(tls_lakefs.url, creds)
    assert client.api_base.startswith("https://")
    assert client.data_path() == (True, True)  # bytes go to the https MinIO directly
    source = tmp_path / "src"
    source.mkdir()
    files = {"a.txt": b"over tls", "big.bin": os.urandom(20 * 1024 * 1024 + 1)}
    for name, data in files.items():
        (source / name).write_bytes(data)
    branch = f"b-{variable.lower()}"
    with contextlib.closing(
        LakeFSControl.from_config(tls_lakefs.config)
    ) as control:  # Python client, same trust
        control.create_branch("tls", branch, "main")
        upload_files(
            client,
            None,
            "tls",
            branch,
            [(source / name, f"{variable}/{name}") for name in files],
            multipart_threshold=8 * 1024 * 1024,
            part_size=8 * 1024 * 1024,
        )
        commit = control.commit("tls", branch, "over https", {})
    result = download_prefix(client, None, "tls", commit, variable, tmp_path / "dst")
    assert {rel: digest for rel, _, digest in result.entries()} == {
        name: engine.hash_file(source / name) for name in files
    }


def test_without_the_ca_both_clients_refuse_the_servers(
    tls_lakefs: TlsLakeFS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trust_only(monkeypatch, None, tls_lakefs.tls.ca_certificate)
    creds = LakeFSCredentials(
        tls_lakefs.config.access_key_id, tls_lakefs.config.secret_access_key.get_secret_value()
    )
    client = connect(tls_lakefs.url, creds, max_attempts=1)
    with pytest.raises(LakeFSError, match=r"(?i)certificate|issuer"):
        download_prefix(client, None, "tls", "main", "", tmp_path / "dst")
    with (
        contextlib.closing(LakeFSControl.from_config(tls_lakefs.config)) as control,
        pytest.raises(LakeFSError, match=r"(?i)certificate"),
    ):
        control.branch_head("tls", "main")
