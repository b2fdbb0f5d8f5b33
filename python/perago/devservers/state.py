"""What ``up`` started, recorded under the state directory so ``down``/``status`` find it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from perago.devservers.minio import S3Target
from perago.host.secure_files import ensure_private_directory, write_private_file

STATE_FILE = "servers.json"


@dataclass(frozen=True)
class ServerRecord:
    name: str  # "lakefs" | "conductor" | "minio"
    pid: int  # also the process-group id (started with start_new_session)
    port: int
    url: str  # server root; health is probed under it
    log: str
    version: str


@dataclass(frozen=True)
class DevState:
    lakefs: ServerRecord
    conductor: ServerRecord
    conductor_api_url: str
    access_key_id: str
    secret_access_key: str
    # "local" (lakeFS's local blockstore) or "s3" (lakeFS on the MinIO recorded in ``minio``).
    blockstore: str = "local"
    minio: ServerRecord | None = None
    s3: S3Target | None = None

    def __repr__(self) -> str:
        return (
            f"DevState(lakefs={self.lakefs!r}, conductor={self.conductor!r}, "
            f"access_key_id={self.access_key_id!r}, secret_access_key=***, "
            f"blockstore={self.blockstore!r}, minio={self.minio!r}, s3={self.s3!r})"
        )

    def records(self) -> list[ServerRecord]:
        """Every server started, in stop order (MinIO last: lakeFS writes to it until it stops)."""
        return [self.lakefs, self.conductor, *([self.minio] if self.minio else [])]


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def save(state_dir: Path, state: DevState) -> None:
    """Written owner-only: it carries the generated lakeFS secret."""
    ensure_private_directory(state_dir)
    path = state_path(state_dir)
    write_private_file(path, json.dumps(asdict(state), indent=2))


def load(state_dir: Path) -> DevState | None:
    path = state_path(state_dir)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    minio = raw.get("minio")
    s3 = raw.get("s3")
    return DevState(
        lakefs=ServerRecord(**raw["lakefs"]),
        conductor=ServerRecord(**raw["conductor"]),
        conductor_api_url=raw["conductor_api_url"],
        access_key_id=raw["access_key_id"],
        secret_access_key=raw["secret_access_key"],
        blockstore=raw.get("blockstore", "local"),  # states written before s3 existed
        minio=ServerRecord(**minio) if minio else None,
        s3=S3Target(**s3) if s3 else None,
    )


def clear(state_dir: Path) -> None:
    state_path(state_dir).unlink(missing_ok=True)
