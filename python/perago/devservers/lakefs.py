"""How to run a local lakeFS (local KV + local blockstore) and tell when it is healthy."""

from __future__ import annotations

import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from perago.devservers.process import LOOPBACK, http_get

HEALTH_PATH = "/_health"


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


def environment(
    data_dir: Path, port: int, creds: LakefsCredentials, encrypt_key: str
) -> dict[str, str]:
    """All configuration by environment: loopback only, nothing phones home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEFS_")}
    env.update(
        LAKEFS_LISTEN_ADDRESS=f"{LOOPBACK}:{port}",
        LAKEFS_DATABASE_TYPE="local",
        LAKEFS_DATABASE_LOCAL_PATH=str(data_dir / "meta"),
        LAKEFS_BLOCKSTORE_TYPE="local",
        LAKEFS_BLOCKSTORE_LOCAL_PATH=str(block_dir(data_dir)),
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
    return env


def base_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def is_healthy(url: str) -> bool:
    status, _ = http_get(url + HEALTH_PATH)
    return 200 <= status < 300
