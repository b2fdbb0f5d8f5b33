"""How to run a local lakeFS (local KV; local or S3 blockstore) and tell when it is healthy."""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from perago.devservers.minio import S3Target
from perago.devservers.process import LOOPBACK, answers_2xx, loopback_url
from perago.devservers.tls import TlsFiles

HEALTH_PATH = "/_health"
# How long presigned URLs stay valid (lakeFS's default is 15m; `blockstore.s3.pre_signed_expiry`).
PRE_SIGNED_EXPIRY = "15m"
BLOCKSTORES = ("local", "s3")


@dataclass(frozen=True)
class LakefsCredentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # the secret never reaches logs or reprs
        return f"LakefsCredentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


def generate_credentials() -> LakefsCredentials:
    alphabet = string.ascii_uppercase + string.digits
    key_id = "AKIAPERAGO" + "".join(secrets.choice(alphabet) for _ in range(10))
    return LakefsCredentials(key_id, secrets.token_urlsafe(30))


def block_dir(data_dir: Path) -> Path:
    """Where the local blockstore keeps objects: ``local://<ns>`` lives at ``<block_dir>/<ns>``."""
    return data_dir / "block"


def command(binary: Path) -> list[str]:
    return [str(binary), "run"]


def s3_blockstore_environment(
    target: S3Target, presigned_expiry: str = PRE_SIGNED_EXPIRY
) -> dict[str, str]:
    """``blockstore.s3.*`` for an S3-compatible store on loopback (names checked against lakeFS
    v1.86.0's pkg/config/config.go ``BlockstoreS3``): path-style addressing (MinIO has no
    virtual-host buckets here), the endpoint, static credentials, a fixed region (no bucket-region
    discovery round trip), presigned URLs enabled (``disable_pre_signed=false``, also for
    multipart) with an explicit expiry.
    """
    return {
        "LAKEFS_BLOCKSTORE_TYPE": "s3",
        "LAKEFS_BLOCKSTORE_S3_ENDPOINT": target.endpoint,
        "LAKEFS_BLOCKSTORE_S3_FORCE_PATH_STYLE": "true",
        "LAKEFS_BLOCKSTORE_S3_REGION": target.region,
        "LAKEFS_BLOCKSTORE_S3_DISCOVER_BUCKET_REGION": "false",
        "LAKEFS_BLOCKSTORE_S3_CREDENTIALS_ACCESS_KEY_ID": target.access_key_id,
        "LAKEFS_BLOCKSTORE_S3_CREDENTIALS_SECRET_ACCESS_KEY": target.secret_access_key,
        "LAKEFS_BLOCKSTORE_S3_DISABLE_PRE_SIGNED": "false",
        "LAKEFS_BLOCKSTORE_S3_DISABLE_PRE_SIGNED_MULTIPART": "false",
        "LAKEFS_BLOCKSTORE_S3_PRE_SIGNED_EXPIRY": presigned_expiry,
    }


def environment(
    data_dir: Path,
    port: int,
    creds: LakefsCredentials,
    encrypt_key: str,
    s3: S3Target | None = None,
    *,
    tls: TlsFiles | None = None,
    presigned_expiry: str = PRE_SIGNED_EXPIRY,
) -> dict[str, str]:
    """All configuration by environment: loopback only, nothing phones home.

    Without ``s3`` the blockstore is ``local`` under ``data_dir``; with it, lakeFS keeps objects
    in that S3 bucket.
    """
    # An ambient AWS_* (profile, endpoint, keys) must not redirect the dev server's S3 client.
    dropped = ("LAKEFS_",) if s3 is None else ("LAKEFS_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    if s3 is None:
        blockstore = {
            "LAKEFS_BLOCKSTORE_TYPE": "local",
            "LAKEFS_BLOCKSTORE_LOCAL_PATH": str(block_dir(data_dir)),
        }
    else:
        blockstore = s3_blockstore_environment(s3, presigned_expiry)
    env.update(
        LAKEFS_LISTEN_ADDRESS=f"{LOOPBACK}:{port}",
        LAKEFS_DATABASE_TYPE="local",
        LAKEFS_DATABASE_LOCAL_PATH=str(data_dir / "meta"),
        **blockstore,
        LAKEFS_COMMITTED_LOCAL_CACHE_DIR=str(data_dir / "cache"),
        LAKEFS_AUTH_ENCRYPT_SECRET_KEY=encrypt_key,
        LAKEFS_INSTALLATION_USER_NAME="admin",
        LAKEFS_INSTALLATION_ACCESS_KEY_ID=creds.access_key_id,
        LAKEFS_INSTALLATION_SECRET_ACCESS_KEY=creds.secret_access_key,
        LAKEFS_STATS_ENABLED="false",
        LAKEFS_SECURITY_CHECK_LATEST_VERSION="false",
        LAKEFS_EMAIL_SUBSCRIPTION_ENABLED="false",
        LAKEFS_LOGGING_LEVEL="INFO",
    )
    if tls is not None:
        # https on its own port, and trust of the CA for an https object store (Go's TLS reads
        # SSL_CERT_FILE).
        env.update(
            LAKEFS_TLS_ENABLED="true",
            LAKEFS_TLS_CERT_FILE=str(tls.certificate),
            LAKEFS_TLS_KEY_FILE=str(tls.private_key),
            SSL_CERT_FILE=str(tls.ca_certificate),
        )
    return env


base_url = loopback_url


def is_healthy(url: str) -> bool:
    return answers_2xx(url + HEALTH_PATH)
