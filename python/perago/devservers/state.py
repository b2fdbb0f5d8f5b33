"""What ``up`` started, recorded under the state directory so ``down``/``status`` find it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "servers.json"


@dataclass(frozen=True)
class ServerRecord:
    name: str  # "lakefs" | "conductor"
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

    def __repr__(self) -> str:
        return (
            f"DevState(lakefs={self.lakefs!r}, conductor={self.conductor!r}, "
            f"access_key_id={self.access_key_id!r}, secret_access_key=***)"
        )


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def save(state_dir: Path, state: DevState) -> None:
    """Written owner-only: it carries the generated lakeFS secret."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(state_dir)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(state), out, indent=2)
    tmp.replace(path)


def load(state_dir: Path) -> DevState | None:
    path = state_path(state_dir)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    return DevState(
        lakefs=ServerRecord(**raw["lakefs"]),
        conductor=ServerRecord(**raw["conductor"]),
        conductor_api_url=raw["conductor_api_url"],
        access_key_id=raw["access_key_id"],
        secret_access_key=raw["secret_access_key"],
    )


def clear(state_dir: Path) -> None:
    state_path(state_dir).unlink(missing_ok=True)
