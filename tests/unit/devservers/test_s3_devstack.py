"""Pure logic of the s3 dev topology (MinIO under lakeFS): configuration, state, .env."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from perago.devservers import blockstore, lakefs, minio, paths, state, supervisor
from perago.devservers.cli import S3_ENV_KEYS, env_values
from perago.devservers.envfile import update_env_file
from perago.devservers.errors import DevServerError
from perago.devservers.state import DevState, ServerRecord

SECRET = "minio-secret-value-xyz"
TARGET = minio.S3Target("http://127.0.0.1:9123", "us-east-1", "perago-dev", "MINIOKEY", SECRET)


def _records() -> tuple[ServerRecord, ServerRecord, ServerRecord]:
    return (
        ServerRecord("lakefs", 11, 8000, "http://127.0.0.1:8000", "/l", "1.86.0"),
        ServerRecord("conductor", 12, 8080, "http://127.0.0.1:8080", "/c", "3.32.1"),
        ServerRecord("minio", 13, 9123, "http://127.0.0.1:9123", "/m", "v0.0.0-x"),
    )


def test_lakefs_s3_environment_is_path_style_presigned_on_the_minio() -> None:
    env = lakefs.environment(Path("/d"), 8000, lakefs.generate_credentials(), "k", TARGET)
    assert env["LAKEFS_BLOCKSTORE_TYPE"] == "s3"
    assert env["LAKEFS_BLOCKSTORE_S3_ENDPOINT"] == "http://127.0.0.1:9123"
    assert env["LAKEFS_BLOCKSTORE_S3_FORCE_PATH_STYLE"] == "true"
    assert env["LAKEFS_BLOCKSTORE_S3_REGION"] == "us-east-1"
    assert env["LAKEFS_BLOCKSTORE_S3_CREDENTIALS_ACCESS_KEY_ID"] == "MINIOKEY"
    assert env["LAKEFS_BLOCKSTORE_S3_CREDENTIALS_SECRET_ACCESS_KEY"] == SECRET
    assert env["LAKEFS_BLOCKSTORE_S3_DISABLE_PRE_SIGNED"] == "false"
    assert "LAKEFS_BLOCKSTORE_LOCAL_PATH" not in env


def test_lakefs_local_environment_is_unchanged_by_s3_support() -> None:
    env = lakefs.environment(Path("/d"), 8000, lakefs.generate_credentials(), "k")
    assert env["LAKEFS_BLOCKSTORE_TYPE"] == "local"
    assert env["LAKEFS_BLOCKSTORE_LOCAL_PATH"] == "/d/block"
    assert not [key for key in env if key.startswith("LAKEFS_BLOCKSTORE_S3_")]


def test_minio_listens_on_loopback_only_without_console() -> None:
    cmd = minio.command(Path("/bin/minio"), Path("/d"), 9000, 9001)
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1:9000"
    assert cmd[cmd.index("--console-address") + 1] == "127.0.0.1:9001"
    assert minio.environment(minio.generate_credentials())["MINIO_BROWSER"] == "off"


def test_secrets_stay_out_of_reprs() -> None:
    creds = minio.generate_credentials()
    assert creds.secret_access_key not in repr(creds)
    assert len(creds.secret_access_key) >= 8  # MinIO refuses shorter root passwords
    lakefs_rec, conductor_rec, minio_rec = _records()
    current = DevState(
        lakefs_rec, conductor_rec, "u", "AK", "lakefs-secret", "s3", minio_rec, TARGET
    )
    assert SECRET not in repr(TARGET)
    assert SECRET not in repr(current)
    assert "lakefs-secret" not in repr(current)


def test_signed_request_carries_a_sigv4_authorization() -> None:
    creds = minio.MinioCredentials("AKID", "SECRETKEY")
    moment = datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.UTC)
    request = minio.signed_request("PUT", "http://127.0.0.1:9/bucket", creds, now=moment)
    auth = request.get_header("Authorization")
    assert auth is not None
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/s3/aws4_request,")
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date," in auth
    assert "SECRETKEY" not in auth
    again = minio.signed_request("PUT", "http://127.0.0.1:9/bucket", creds, now=moment)
    assert again.get_header("Authorization") == auth  # deterministic for a given instant


def test_signed_query_strings_match_the_aws_example() -> None:
    # "GET Bucket (List Objects)" of AWS's Signature Version 4 examples for S3 (header form).
    creds = minio.MinioCredentials(
        "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    moment = datetime.datetime(2013, 5, 24, tzinfo=datetime.UTC)
    for url in (
        "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
        "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2",  # order is canonical
    ):
        request = minio.signed_request("GET", url, creds, region="us-east-1", now=moment)
        auth = request.get_header("Authorization")
        assert auth is not None
        assert auth.endswith(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )


def test_state_round_trips_s3_and_reads_states_written_before_s3(tmp_path: Path) -> None:
    lakefs_rec, conductor_rec, minio_rec = _records()
    current = DevState(lakefs_rec, conductor_rec, "u", "AK", "S", "s3", minio_rec, TARGET)
    state.save(tmp_path, current)
    assert state.load(tmp_path) == current
    assert current.records() == [lakefs_rec, conductor_rec, minio_rec]  # MinIO stops last

    old = state.state_path(tmp_path).read_text()
    for key in ("blockstore", "minio", "s3"):
        old = old.replace(f'"{key}"', f'"unused_{key}"')
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    raw = json.loads(old)
    for key in ("unused_blockstore", "unused_minio", "unused_s3"):
        raw.pop(key)
    state.state_path(legacy).write_text(json.dumps(raw))
    loaded = state.load(legacy)
    assert loaded is not None
    assert (loaded.blockstore, loaded.minio, loaded.s3) == ("local", None, None)
    assert loaded.records() == [lakefs_rec, conductor_rec]


def test_env_values_add_s3_keys_only_on_s3_and_local_up_drops_them(tmp_path: Path) -> None:
    lakefs_rec, conductor_rec, minio_rec = _records()
    on_s3 = DevState(lakefs_rec, conductor_rec, "u", "AK", "S", "s3", minio_rec, TARGET)
    on_local = DevState(lakefs_rec, conductor_rec, "u", "AK", "S")
    env = tmp_path / ".env"
    env.write_text("MINE=1\n")
    update_env_file(env, env_values(on_s3), remove=S3_ENV_KEYS)
    written = env.read_text()
    assert "PERAGO_DEV_S3_ENDPOINT=http://127.0.0.1:9123\n" in written
    assert "PERAGO_DEV_S3_BUCKET=perago-dev\n" in written
    assert f"PERAGO_DEV_S3_SECRET_ACCESS_KEY={SECRET}\n" in written
    assert set(env_values(on_local)) == {
        "CONDUCTOR_SERVER_URL",
        "LAKECTL_SERVER_ENDPOINT_URL",
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID",
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY",
    }
    update_env_file(env, env_values(on_local), remove=S3_ENV_KEYS)
    assert "PERAGO_DEV_S3" not in env.read_text()
    assert env.read_text().startswith("MINE=1\n")


def test_s3_state_has_no_local_block_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_DEV_CACHE_DIR", str(tmp_path))
    state_dir = paths.default_state_dir("s3")
    lakefs_rec, conductor_rec, minio_rec = _records()
    lakefs.block_dir(supervisor.lakefs_data_dir(state_dir)).mkdir(parents=True)
    current = DevState(lakefs_rec, conductor_rec, "u", "AK", "S", "s3", minio_rec, TARGET)
    state.save(state_dir, current)
    assert blockstore.known_block_dir(lakefs_rec.url, "AK") is None
    assert supervisor.lakefs_data_dir(state_dir, "s3") == state_dir / "lakefs-s3"
    assert supervisor.lakefs_data_dir(state_dir) == state_dir / "lakefs"


def test_up_refuses_an_unknown_blockstore(tmp_path: Path) -> None:
    with pytest.raises(DevServerError, match="unknown blockstore"):
        supervisor.up(tmp_path, blockstore="gcs")


def test_bucket_creation_waits_for_minio_to_initialise(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [(503, b"<Code>XMinioServerNotInitialized</Code>")] * 2 + [(200, b"")]
    calls: list[str] = []

    def fake_call(method: str, url: str, creds: minio.MinioCredentials) -> tuple[int, bytes]:
        calls.append(f"{method} {url}")
        return answers.pop(0)

    monkeypatch.setattr(minio, "s3_call", fake_call)
    monkeypatch.setattr("perago.devservers.minio.time.sleep", lambda _: None)
    creds = minio.MinioCredentials("AK", "SECRETKEY")
    assert minio.ensure_bucket("http://127.0.0.1:9", "b", creds) is True
    assert calls == ["PUT http://127.0.0.1:9/b"] * 3
    answers[:] = [(503, b"<Code>SlowDown</Code>")]  # any other refusal is final at once
    with pytest.raises(DevServerError, match="HTTP 503"):
        minio.ensure_bucket("http://127.0.0.1:9", "b", creds)
