"""Bring a lakeFS + Conductor pair (and, for the ``s3`` blockstore, the MinIO under lakeFS) up
under a state directory, report on it, take it down."""

from __future__ import annotations

import contextlib
import fcntl
import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from perago.devservers import conductor, lakefs, minio, process, provision, state
from perago.devservers.errors import DevServerError
from perago.devservers.lakefs import LakefsCredentials
from perago.devservers.minio import MinioCredentials, S3Target
from perago.devservers.provision import Progress, print_progress
from perago.devservers.state import DevState, ServerRecord
from perago.devservers.tls import TlsFiles
from perago.host.processes import group_exists
from perago.host.secure_files import ensure_private_directory, write_private_file

LAKEFS_START_TIMEOUT = 120.0
MINIO_START_TIMEOUT = 60.0
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
    ensure_private_directory(data_dir)
    secret_fields = {
        "access_key_id": creds.access_key_id,
        "secret_access_key": creds.secret_access_key,
        "encrypt": encrypt,
    }
    write_private_file(path, json.dumps(secret_fields))
    return creds, encrypt


def _minio_secrets(data_dir: Path) -> MinioCredentials:
    """MinIO's root key pair, generated on first start and kept with its data (MinIO encrypts its
    own configuration with it, so it must not change for the life of the data directory)."""
    path = data_dir / "credentials.json"
    if path.is_file():
        raw = json.loads(path.read_text())
        return MinioCredentials(raw["access_key_id"], raw["secret_access_key"])
    creds = minio.generate_credentials()
    ensure_private_directory(data_dir)
    write_private_file(
        path,
        json.dumps(
            {"access_key_id": creds.access_key_id, "secret_access_key": creds.secret_access_key}
        ),
    )
    return creds


_PROBES = {
    "lakefs": lakefs.is_healthy,
    "conductor": conductor.is_healthy,
    "minio": minio.is_healthy,
}


def health(record: ServerRecord) -> ServerHealth:
    running = process.pid_alive(record.pid)
    probe = _PROBES[record.name]
    return ServerHealth(record.name, record.url, record.pid, running, running and probe(record.url))


def status(state_dir: Path) -> list[ServerHealth] | None:
    current = state.load(state_dir)
    if current is None:
        return None
    return [health(record) for record in current.records()]


@dataclass(frozen=True)
class Launched:
    """A server process just started (not yet known to be healthy)."""

    record: ServerRecord
    proc: subprocess.Popen[bytes]


def lakefs_data_dir(state_dir: Path, blockstore: str = "local") -> Path:
    """lakeFS's metadata, objects and secrets under a dev-server state directory.

    The ``s3`` lakeFS keeps its metadata apart (``lakefs-s3``): lakeFS refuses to start when its
    repositories' namespaces do not match the configured blockstore type.
    """
    return state_dir / ("lakefs" if blockstore == "local" else f"lakefs-{blockstore}")


def minio_data_dir(state_dir: Path) -> Path:
    return state_dir / "minio"


def launch_minio(
    state_dir: Path,
    progress: Progress = print_progress,
    *,
    port: int | None = None,
    tls: TlsFiles | None = None,
) -> tuple[Launched, MinioCredentials]:
    """Start MinIO with its data under ``state_dir/minio`` on ``port`` (default: a free one);
    with ``tls``, on https only."""
    binary = provision.ensure_minio(progress)
    data = minio_data_dir(state_dir)
    creds = _minio_secrets(data)
    port = process.free_port() if port is None else port
    log = state_dir / "minio.log"
    progress(f"starting MinIO on 127.0.0.1:{port}")
    proc = process.spawn(
        minio.command(
            binary.minio, data, port, process.free_port(), None if tls is None else tls.directory
        ),
        env=minio.environment(creds),
        cwd=data,
        log_path=log,
    )
    url = minio.base_url(port, tls=tls is not None)
    record = ServerRecord("minio", proc.pid, port, url, str(log), binary.version)
    return Launched(record, proc), creds


def s3_target(
    record: ServerRecord, creds: MinioCredentials, bucket: str = minio.DEFAULT_BUCKET
) -> S3Target:
    """Create ``bucket`` on a healthy MinIO and describe it for lakeFS's s3 blockstore."""
    minio.ensure_bucket(record.url, bucket, creds)
    return S3Target(record.url, minio.REGION, bucket, creds.access_key_id, creds.secret_access_key)


def launch_lakefs(
    state_dir: Path,
    progress: Progress = print_progress,
    *,
    port: int | None = None,
    s3: S3Target | None = None,
    tls: TlsFiles | None = None,
    presigned_expiry: str = lakefs.PRE_SIGNED_EXPIRY,
) -> tuple[Launched, LakefsCredentials]:
    """Start lakeFS with its data under ``lakefs_data_dir(state_dir)`` on ``port`` (default: a
    free one), on the local blockstore or, with ``s3``, on that bucket.

    Launching again on the same ``state_dir`` and ``port`` restarts the same server: same data,
    credentials and address.
    """
    bins = provision.ensure_lakefs(progress)
    blockstore = "local" if s3 is None else "s3"
    data = lakefs_data_dir(state_dir, blockstore)
    creds, encrypt = _lakefs_secrets(data)
    port = process.free_port() if port is None else port
    log = state_dir / "lakefs.log"
    where = "" if s3 is None else f" (s3 blockstore: {s3.endpoint}/{s3.bucket})"
    progress(f"starting lakeFS v{bins.version} on 127.0.0.1:{port}{where}")
    proc = process.spawn(
        lakefs.command(bins.lakefs),
        env=lakefs.environment(
            data, port, creds, encrypt, s3, tls=tls, presigned_expiry=presigned_expiry
        ),
        cwd=data,
        log_path=log,
    )
    url = lakefs.base_url(port, tls=tls is not None)
    record = ServerRecord("lakefs", proc.pid, port, url, str(log), bins.version)
    return Launched(record, proc), creds


def launch_conductor(state_dir: Path, progress: Progress = print_progress) -> Launched:
    """Start Conductor with its SQLite data under ``state_dir/conductor`` on a free port."""
    artifact = provision.ensure_conductor(progress)
    data = state_dir / "conductor"
    data.mkdir(parents=True, exist_ok=True)
    port = process.free_port()
    log = state_dir / "conductor.log"
    progress(
        f"starting Conductor {artifact.version} (Java {artifact.java.major}) on 127.0.0.1:{port}"
    )
    proc = process.spawn(
        conductor.command(artifact.java.executable, artifact.jar, data, port),
        env=conductor.environment(),
        cwd=data,
        log_path=log,
    )
    record = ServerRecord(
        "conductor", proc.pid, port, conductor.base_url(port), str(log), artifact.version
    )
    return Launched(record, proc)


def await_healthy(launched: Launched, progress: Progress = print_progress) -> None:
    """Block until the server answers healthy; raises (with the log tail) on exit or timeout."""
    record = launched.record
    if record.name == "lakefs":
        label, probe, timeout = "lakeFS", lakefs.is_healthy, LAKEFS_START_TIMEOUT
    elif record.name == "minio":
        label, probe, timeout = "MinIO", minio.is_healthy, MINIO_START_TIMEOUT
    else:
        label, probe, timeout = "Conductor", conductor.is_healthy, CONDUCTOR_START_TIMEOUT
    with provision.elapsed_on_terminal(f"waiting for {label} to answer healthy"):
        waited = process.wait_healthy(
            label,
            launched.proc,
            lambda: probe(record.url),
            timeout=timeout,
            log_path=Path(record.log),
        )
    progress(f"{label} healthy after {waited:.1f}s: {record.url}")


def stop(records: list[ServerRecord], progress: Progress = print_progress) -> None:
    """Stop each server's whole process group and wait until its port is free."""
    for record in records:
        if group_exists(record.pid):
            progress(f"stopping {record.name} (pid {record.pid})")
        process.stop_group(record.pid)
        process.wait_port_free(record.port)


def up(
    state_dir: Path, progress: Progress = print_progress, *, blockstore: str = "local"
) -> DevState:
    """Start both servers (or reuse a healthy running set) and wait until all are healthy.

    ``blockstore="s3"`` first starts MinIO, creates the bucket and runs lakeFS on it.
    """
    if blockstore not in lakefs.BLOCKSTORES:
        raise DevServerError(f"unknown blockstore {blockstore!r} (one of {lakefs.BLOCKSTORES})")
    state_dir = state_dir.resolve()
    with _state_lock(state_dir):
        existing = state.load(state_dir)
        if existing is not None:
            checks = [health(record) for record in existing.records()]
            if all(c.healthy for c in checks):
                if existing.blockstore != blockstore:
                    raise DevServerError(
                        f"servers in {state_dir} already run with the {existing.blockstore} "
                        f"blockstore; run `perago dev down` first to switch to {blockstore}"
                    )
                progress(f"already running (state {state_dir})")
                return existing
            progress("previous servers are not healthy; stopping what is left of them")
            stop(existing.records(), progress)
            state.clear(state_dir)

        # Provision before starting anything, so a failed build leaves nothing running.
        provision.ensure_lakefs(progress)
        provision.ensure_conductor(progress)
        if blockstore == "s3":
            provision.ensure_minio(progress)
        started: list[ServerRecord] = []
        try:
            minio_record: ServerRecord | None = None
            s3: S3Target | None = None
            if blockstore == "s3":
                minio_run, minio_creds = launch_minio(state_dir, progress)
                started.append(minio_run.record)
                minio_record = minio_run.record
                await_healthy(minio_run, progress)
                s3 = s3_target(minio_record, minio_creds)
            lakefs_run, creds = launch_lakefs(state_dir, progress, s3=s3)
            started.insert(0, lakefs_run.record)
            conductor_run = launch_conductor(state_dir, progress)
            started.insert(1, conductor_run.record)
            current = DevState(
                lakefs=lakefs_run.record,
                conductor=conductor_run.record,
                conductor_api_url=conductor.api_url(conductor_run.record.port),
                access_key_id=creds.access_key_id,
                secret_access_key=creds.secret_access_key,
                blockstore=blockstore,
                minio=minio_record,
                s3=s3,
            )
            # Record the pids before waiting, so `down` can clean up an interrupted `up`.
            state.save(state_dir, current)
            await_healthy(lakefs_run, progress)
            await_healthy(conductor_run, progress)
            return current
        except BaseException:
            stop(started, progress)
            state.clear(state_dir)
            raise


def down(state_dir: Path, progress: Progress = print_progress) -> bool:
    """Stop what ``up`` started in this state directory; False if nothing was recorded."""
    state_dir = state_dir.resolve()
    with _state_lock(state_dir):
        current = state.load(state_dir)
        if current is None:
            return False
        stop(current.records(), progress)
        for record in current.records():
            if group_exists(record.pid):
                raise DevServerError(f"{record.name} (pgid {record.pid}) is still running")
        state.clear(state_dir)
        return True
