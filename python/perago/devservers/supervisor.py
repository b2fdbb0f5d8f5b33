"""Bring a lakeFS + Conductor pair up under a state directory, report on it, take it down."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from perago.devservers import conductor, lakefs, process, provision, state
from perago.devservers.errors import DevServerError
from perago.devservers.lakefs import LakefsCredentials
from perago.devservers.provision import Progress, print_progress
from perago.devservers.state import DevState, ServerRecord

LAKEFS_START_TIMEOUT = 120.0
# Spring Boot with ~450 MB of jars takes 1-3 minutes on 2 cores busy with other builds.
CONDUCTOR_START_TIMEOUT = 420.0


@dataclass(frozen=True)
class ServerHealth:
    name: str
    url: str
    pid: int
    running: bool
    healthy: bool


@contextlib.contextmanager
def _state_lock(state_dir: Path) -> Iterator[None]:
    """One ``up``/``down`` at a time per state directory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lakefs_secrets(data_dir: Path) -> tuple[LakefsCredentials, str]:
    """Admin key pair and encryption key, generated on first start and kept with the data.

    lakeFS creates the admin user only on its first start and encrypts stored secrets with the
    encryption key, so both must stay the same for the life of the data directory.
    """
    path = data_dir / "credentials.json"
    if path.is_file():
        raw = json.loads(path.read_text())
        return LakefsCredentials(raw["access_key_id"], raw["secret_access_key"]), raw["encrypt"]
    creds = lakefs.generate_credentials()
    encrypt = secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(
            {
                "access_key_id": creds.access_key_id,
                "secret_access_key": creds.secret_access_key,
                "encrypt": encrypt,
            },
            out,
        )
    return creds, encrypt


def health(record: ServerRecord) -> ServerHealth:
    running = process.pid_alive(record.pid)
    probe = lakefs.is_healthy if record.name == "lakefs" else conductor.is_healthy
    return ServerHealth(record.name, record.url, record.pid, running, running and probe(record.url))


def status(state_dir: Path) -> list[ServerHealth] | None:
    current = state.load(state_dir)
    if current is None:
        return None
    return [health(current.lakefs), health(current.conductor)]


def _stop_records(records: list[ServerRecord], progress: Progress) -> None:
    for record in records:
        if process.group_alive(record.pid):
            progress(f"stopping {record.name} (pid {record.pid})")
        process.stop_group(record.pid)
        process.wait_port_free(record.port)


def up(state_dir: Path, progress: Progress = print_progress) -> DevState:
    """Start both servers (or reuse a healthy running pair) and wait until both are healthy."""
    state_dir = state_dir.resolve()
    with _state_lock(state_dir):
        existing = state.load(state_dir)
        if existing is not None:
            checks = [health(existing.lakefs), health(existing.conductor)]
            if all(c.healthy for c in checks):
                progress(f"already running (state {state_dir})")
                return existing
            progress("previous servers are not healthy; stopping what is left of them")
            _stop_records([existing.lakefs, existing.conductor], progress)
            state.clear(state_dir)

        lakefs_bins = provision.ensure_lakefs(progress)
        conductor_art = provision.ensure_conductor(progress)
        lakefs_data = state_dir / "lakefs"
        conductor_data = state_dir / "conductor"
        conductor_data.mkdir(parents=True, exist_ok=True)
        creds, encrypt = _lakefs_secrets(lakefs_data)

        lakefs_port = process.free_port()
        conductor_port = process.free_port()
        while conductor_port == lakefs_port:
            conductor_port = process.free_port()
        lakefs_log = state_dir / "lakefs.log"
        conductor_log = state_dir / "conductor.log"
        started: list[ServerRecord] = []
        try:
            progress(f"starting lakeFS v{lakefs_bins.version} on 127.0.0.1:{lakefs_port}")
            lakefs_proc = process.spawn(
                lakefs.command(lakefs_bins.lakefs),
                env=lakefs.environment(lakefs_data, lakefs_port, creds, encrypt),
                cwd=lakefs_data,
                log_path=lakefs_log,
            )
            lakefs_record = ServerRecord(
                "lakefs",
                lakefs_proc.pid,
                lakefs_port,
                lakefs.base_url(lakefs_port),
                str(lakefs_log),
                lakefs_bins.version,
            )
            started.append(lakefs_record)
            progress(
                f"starting Conductor {conductor_art.version} (Java {conductor_art.java.major}) "
                f"on 127.0.0.1:{conductor_port}"
            )
            conductor_proc = process.spawn(
                conductor.command(
                    conductor_art.java.executable, conductor_art.jar, conductor_data, conductor_port
                ),
                env=conductor.environment(),
                cwd=conductor_data,
                log_path=conductor_log,
            )
            conductor_record = ServerRecord(
                "conductor",
                conductor_proc.pid,
                conductor_port,
                conductor.base_url(conductor_port),
                str(conductor_log),
                conductor_art.version,
            )
            started.append(conductor_record)
            current = DevState(
                lakefs=lakefs_record,
                conductor=conductor_record,
                conductor_api_url=conductor.api_url(conductor_port),
                access_key_id=creds.access_key_id,
                secret_access_key=creds.secret_access_key,
            )
            # Record the pids before waiting, so `down` can clean up an interrupted `up`.
            state.save(state_dir, current)
            began = time.monotonic()
            waited = process.wait_healthy(
                "lakeFS",
                lakefs_proc,
                lambda: lakefs.is_healthy(lakefs_record.url),
                timeout=LAKEFS_START_TIMEOUT,
                log_path=lakefs_log,
            )
            progress(f"lakeFS healthy after {waited:.1f}s: {lakefs_record.url}")
            process.wait_healthy(
                "Conductor",
                conductor_proc,
                lambda: conductor.is_healthy(conductor_record.url),
                timeout=CONDUCTOR_START_TIMEOUT,
                log_path=conductor_log,
            )
            progress(
                f"Conductor healthy after {time.monotonic() - began:.1f}s: "
                f"{current.conductor_api_url}"
            )
            return current
        except BaseException:
            _stop_records(started, progress)
            state.clear(state_dir)
            raise


def down(state_dir: Path, progress: Progress = print_progress) -> bool:
    """Stop what ``up`` started in this state directory; False if nothing was recorded."""
    state_dir = state_dir.resolve()
    with _state_lock(state_dir):
        current = state.load(state_dir)
        if current is None:
            return False
        _stop_records([current.lakefs, current.conductor], progress)
        for record in (current.lakefs, current.conductor):
            if process.group_alive(record.pid):
                raise DevServerError(f"{record.name} (pgid {record.pid}) is still running")
        state.clear(state_dir)
        return True
