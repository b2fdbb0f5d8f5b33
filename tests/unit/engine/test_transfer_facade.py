"""The transfer facade's argument handling and secret hygiene (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perago import _native, errors
from perago.bench.report import Row, format_table
from perago.bench.sizes import parse_size
from perago.engine.transfer import (
    LakeFSCredentials,
    LakeFSError,
    UnsafeObjectKeyError,
    connect,
    download_prefix,
)

SECRET = "top-secret-value-123"


def test_credentials_and_client_reprs_hide_the_secret() -> None:
    creds = LakeFSCredentials("AKIAKEY", SECRET)
    client = connect("http://127.0.0.1:1", creds)
    for text in (repr(creds), str(creds), repr(client)):
        assert SECRET not in text
    assert client.api_base == "http://127.0.0.1:1/api/v1"
    assert client.access_key_id == "AKIAKEY"


def test_endpoint_problems_are_value_errors_without_secrets() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        connect("127.0.0.1:8000", LakeFSCredentials("k", SECRET))
    with pytest.raises(ValueError, match="must not embed credentials") as embedded:
        connect(f"http://k:{SECRET}@127.0.0.1", LakeFSCredentials("k", SECRET))
    assert SECRET not in str(embedded.value)
    with pytest.raises(ValueError, match="transfer mode must be one of auto, presign, lakefs"):
        connect("http://127.0.0.1:9", LakeFSCredentials("k", SECRET), transfer_mode="direct")


def test_exception_hierarchy() -> None:
    assert issubclass(UnsafeObjectKeyError, ValueError)
    assert UnsafeObjectKeyError is errors.UnsafeObjectKeyError
    assert issubclass(UnsafeObjectKeyError, errors.PeragoError)
    assert not hasattr(_native, "UnsafeObjectKeyError")
    assert LakeFSError is errors.LakeFSError  # one lakeFS error type, data and control plane
    assert issubclass(LakeFSError, errors.PeragoError)
    assert not issubclass(LakeFSError, OSError)
    assert not hasattr(_native, "LakeFSError")


@pytest.mark.parametrize(
    ("mode", "operation", "target"),
    [
        # auto first asks the server which data path its blockstore offers
        ("auto", "read config", "http://127.0.0.1:9/api/v1"),
        ("lakefs", "list objects", "repo@main:p/"),
    ],
)
def test_unreachable_server_is_a_lakefs_error_without_secret(
    tmp_path: Path, mode: str, operation: str, target: str
) -> None:
    client = connect(
        "http://127.0.0.1:9", LakeFSCredentials("k", SECRET), max_attempts=2, transfer_mode=mode
    )
    with pytest.raises(LakeFSError) as failure:
        download_prefix(client, None, "repo", "main", "p", tmp_path / "ws")
    assert failure.value.status is None
    assert failure.value.operation == operation
    assert failure.value.target == target
    assert "gave up after 2 attempts" in str(failure.value)
    assert SECRET not in str(failure.value)
    assert not (tmp_path / "ws").exists()


def test_invalid_prefix_is_rejected_up_front(tmp_path: Path) -> None:
    client = connect("http://127.0.0.1:9", LakeFSCredentials("k", SECRET), max_attempts=1)
    with pytest.raises(ValueError, match="not a valid object prefix"):
        download_prefix(client, None, "repo", "main", "a/../b", tmp_path)


def test_bench_sizes_and_table() -> None:
    assert parse_size("100KiB") == 100 * 1024
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("ten")
    table = format_table([Row("download-small", "perago", 1.5, 100.0, 6666.7, 80.0)])
    assert "download-small" in table
    assert "perago" in table


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_an_unusable_ca_bundle_is_one_error_naming_its_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=rf"^{variable}=.*missing\.pem: cannot read the CA bundle"):
        connect("https://127.0.0.1:9", LakeFSCredentials("k", SECRET))
    (tmp_path / "empty.pem").write_text("not a certificate\n")
    monkeypatch.setenv(variable, str(tmp_path / "empty.pem"))
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        connect("https://127.0.0.1:9", LakeFSCredentials("k", SECRET))
