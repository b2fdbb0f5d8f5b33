"""The attempt-local directory: creation, ownership marker, owner registry and safe cleanup.

Layout: ``<workspace_root>/task_id=<seg(task_id)>-exec=<seg(execution_id)>`` where ``seg``
replaces every run of characters outside ``[A-Za-z0-9_.=-]`` with ``_``, strips leading and
trailing ``.``/``_`` and falls back to ``unknown``. The directory is the task body's workspace
root; it is never reused (creating an existing one fails).

Marker file ``<attempt dir>/.perago-attempt.json`` (only at the attempt directory's root — a file
of that name deeper in the workspace is ordinary data) is a JSON object with sorted keys::

    {
      "execution_id": "<str>",          # attempt's execution id
      "owner_pid": <int>,               # pid of the process running the attempt
      "owner_token": "<uuid4 hex>",     # in-process token, see active_workspace_owner_tokens()
      "owner_worker_id": "<str>",       # PERAGO_WORKER_ID of that process (or pid-<pid>)
      "retry_count": <int>,
      "started_at": "2026-01-01T00:00:00.000000+00:00",   # UTC, ISO-8601
      "task_def_name": "<str>",
      "task_id": "<str>",
      "workflow_instance_id": "<str>"
    }

The marker lives inside the body's workspace, so a body that empties or replaces its workspace
(``rmtree(ws); ws.mkdir()``) deletes it. Bookkeeping therefore never depends on it: every attempt
also has an **owner record** outside the workspace, a sibling file
``<workspace_root>/.perago-attempts/<attempt dir name>.json`` (sorted keys)::

    {
      "directory": "task_id=...-exec=...",   # the attempt directory's name (= the file's stem)
      "execution_id": "...", "retry_count": 2, "task_def_name": "...", "task_id": "...",
      "workflow_instance_id": "...", "started_at": "<UTC ISO-8601>",
      "owner": {"host_id": ..., "boot_id": ..., "pid_namespace": ..., "pid": ...,
                "start_ticks": ...},
      "owner_token": "<uuid4 hex>", "owner_worker_id": "<str>",
      "version": 1
    }

``owner`` is the :class:`~perago.host.processes.ProcessIdentity` of the process running the
attempt. The record's **mtime is the heartbeat**: a daemon thread of the owner touches it every
:data:`HEARTBEAT_INTERVAL_SECONDS` while the attempt runs, so a GC on another host (which cannot
judge the pid) sees whether the owner is still there. The record is created (``O_EXCL``) before
the directory and removed after it, so a directory is never without one.

The workspace root is resolved once (:func:`open_attempt_workspace`) and kept open; every later
operation below it goes through that descriptor and refuses symlinks (``O_NOFOLLOW``,
``dir_fd``): a workspace the body replaced by a symlink is reported (:meth:`AttemptWorkspace.
verify` raises :class:`WorkspaceSafetyError`) and cleanup unlinks the symlink, never its target.

Workspace GC (:mod:`perago.runtime.workspace_gc`) reads the records (and, for directories of older
versions, the marker) and never walks inside a workspace.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from perago.attempt.identity import TaskAttempt
from perago.engine import ATTEMPT_MARKER as ATTEMPT_WORKSPACE_MARKER
from perago.errors import WorkspaceSafetyError
from perago.host.processes import ProcessIdentity, current_process_identity
from perago.host.tree_removal import remove_tree_at

__all__ = [
    "ATTEMPT_RECORDS_DIRNAME",
    "ATTEMPT_WORKSPACE_MARKER",
    "HEARTBEAT_INTERVAL_SECONDS",
    "AttemptMarker",
    "AttemptRecord",
    "AttemptWorkspace",
    "WorkspaceOwner",
    "WorkspaceSafetyError",
    "active_workspace_owner_tokens",
    "attempt_directory_name",
    "attempt_path_segment",
    "attempt_record_path",
    "cleanup_attempt_workspace",
    "create_attempt_workspace",
    "is_attempt_directory_name",
    "new_workspace_owner",
    "open_attempt_workspace",
    "read_attempt_marker",
    "read_attempt_record",
    "record_heartbeat",
    "register_active_workspace_owner",
    "remove_attempt_entry",
    "safe_cleanup_attempt_workspace",
    "unregister_active_workspace_owner",
]

ATTEMPT_RECORDS_DIRNAME = ".perago-attempts"
HEARTBEAT_INTERVAL_SECONDS = 30.0
"""How often a running attempt touches its owner record. A GC on another host removes an
attempt whose record is older than ``PERAGO_WORKSPACE_GC_TTL``, so the TTL must stay well above
this (the default, 24 h, is)."""

_RECORD_SUFFIX = ".json"
_UNSAFE_SEGMENT_CHARS = re.compile(r"[^A-Za-z0-9_.=-]+")
_ATTEMPT_NAME = re.compile(r"^task_id=[A-Za-z0-9_.=-]+$")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


_active_tokens: set[str] = set()
_active_tokens_lock = threading.Lock()


@dataclass(frozen=True)
class WorkspaceOwner:
    """Who runs an attempt: the worker id, its pid and a token unique to this attempt."""

    worker_id: str
    pid: int
    token: str


@dataclass(frozen=True)
class AttemptMarker:
    """The parsed content of ``.perago-attempt.json``."""

    workflow_instance_id: str
    task_id: str
    execution_id: str
    retry_count: int
    task_def_name: str
    owner_worker_id: str
    owner_pid: int
    owner_token: str
    started_at: str

    @property
    def started_at_datetime(self) -> datetime:
        return datetime.fromisoformat(self.started_at)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"


def new_workspace_owner(worker_id: str | None = None) -> WorkspaceOwner:
    """An owner for an attempt of this process; worker id falls back to ``$PERAGO_WORKER_ID``."""
    pid = os.getpid()
    resolved = worker_id or os.environ.get("PERAGO_WORKER_ID") or f"pid-{pid}"
    return WorkspaceOwner(worker_id=resolved, pid=pid, token=uuid.uuid4().hex)


def register_active_workspace_owner(owner: WorkspaceOwner) -> None:
    with _active_tokens_lock:
        _active_tokens.add(owner.token)


def unregister_active_workspace_owner(owner: WorkspaceOwner) -> None:
    with _active_tokens_lock:
        _active_tokens.discard(owner.token)


def active_workspace_owner_tokens() -> frozenset[str]:
    """Tokens of the attempts currently running in this process."""
    with _active_tokens_lock:
        return frozenset(_active_tokens)


def attempt_path_segment(value: object) -> str:
    text = _UNSAFE_SEGMENT_CHARS.sub("_", str(value)).strip("._")
    return text or "unknown"


def attempt_directory_name(task_id: str, execution_id: str | None) -> str:
    name = f"task_id={attempt_path_segment(task_id)}"
    if execution_id:
        name += f"-exec={attempt_path_segment(execution_id)}"
    return name


def is_attempt_directory_name(name: str) -> bool:
    """True for a name :func:`attempt_directory_name` can produce (one safe path segment)."""
    return bool(_ATTEMPT_NAME.match(name))


def attempt_record_path(workspace_root: Path, directory_name: str) -> Path:
    """``<workspace_root>/.perago-attempts/<directory_name>.json``."""
    return workspace_root / ATTEMPT_RECORDS_DIRNAME / (directory_name + _RECORD_SUFFIX)


def _parse_utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AttemptRecord:
    """The owner record of an attempt, kept outside its workspace (see the module docstring)."""

    directory: str
    owner: ProcessIdentity
    owner_worker_id: str
    owner_token: str
    workflow_instance_id: str
    task_id: str
    execution_id: str
    retry_count: int
    task_def_name: str
    started_at: str
    version: int = 1

    @property
    def started_at_datetime(self) -> datetime:
        return _parse_utc(self.started_at)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, raw: object, *, source: str = "attempt record") -> AttemptRecord:
        """Parse a record; ``ValueError`` naming ``source`` when it is not a valid one."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{source} is not a JSON object")
        owner = ProcessIdentity.from_json(raw.get("owner"))
        if owner is None:
            raise ValueError(f"{source} has no valid owner identity")
        try:
            record = cls(
                directory=str(raw["directory"]),
                owner=owner,
                owner_worker_id=str(raw["owner_worker_id"]),
                owner_token=str(raw["owner_token"]),
                workflow_instance_id=str(raw["workflow_instance_id"]),
                task_id=str(raw["task_id"]),
                execution_id=str(raw["execution_id"]),
                retry_count=int(raw["retry_count"]),
                task_def_name=str(raw["task_def_name"]),
                started_at=str(raw["started_at"]),
                version=int(raw.get("version", 1)),
            )
            record.started_at_datetime  # noqa: B018 - validates the timestamp eagerly
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source} is malformed: {exc}") from exc
        if not is_attempt_directory_name(record.directory):
            raise ValueError(f"{source} names an invalid directory {record.directory!r}")
        return record


def read_attempt_record(path: Path) -> AttemptRecord:
    """Parse the owner record at ``path`` (never through a symlink); ``ValueError``/``OSError``
    when it is not a valid record of the directory its file name names."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        raw: Any = json.load(handle)
    record = AttemptRecord.from_json(raw, source=str(path))
    if record.directory + _RECORD_SUFFIX != path.name:
        raise ValueError(f"{path} names another directory ({record.directory})")
    return record


def record_heartbeat(path: Path) -> datetime:
    """The owner's last heartbeat: the record's mtime (UTC)."""
    info = os.stat(path, follow_symlinks=False)
    return datetime.fromtimestamp(info.st_mtime, UTC)


class _Heartbeats:
    """One daemon thread per process touching the records of the attempts it runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, path: Path) -> None:
        with self._lock:
            self._paths.add(path)
            alive = self._thread is not None and self._thread.is_alive()
            if not alive or self._pid != os.getpid():  # a fork has no threads
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="perago-attempt-heartbeat", daemon=True
                )
                self._thread.start()

    def discard(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)

    def paths(self) -> frozenset[Path]:
        with self._lock:
            return frozenset(self._paths)

    def beat(self) -> None:
        """Touch every registered record now (records that vanished are dropped)."""
        for path in self.paths():
            try:
                os.utime(path, follow_symlinks=False)
            except FileNotFoundError:
                self.discard(path)
            except OSError as exc:  # a full or read-only disk must not kill the thread
                logger.bind(record=str(path)).warning("attempt heartbeat failed: {}", exc)

    def _run(self) -> None:
        last = time.monotonic()
        # Short waits so a changed HEARTBEAT_INTERVAL_SECONDS takes effect within a second.
        while not self._wake.wait(min(HEARTBEAT_INTERVAL_SECONDS, 1.0)):
            if time.monotonic() - last >= HEARTBEAT_INTERVAL_SECONDS:
                last = time.monotonic()
                self.beat()


_heartbeats = _Heartbeats()


def _write_new_file(dir_fd: int, name: str, text: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _open_records_dir(root_fd: int, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(ATTEMPT_RECORDS_DIRNAME, 0o755, dir_fd=root_fd)
    return os.open(ATTEMPT_RECORDS_DIRNAME, _DIR_FLAGS, dir_fd=root_fd)


def _claim_record(root_fd: int, name: str, text: str) -> int:
    """Create the record ``name`` in the records directory, complete or not at all (written to
    a temporary name, then hard-linked into place, which fails if the name exists); returns the
    directory's descriptor. The directory is removed whenever it becomes empty, so creating it
    and the file is retried if it vanishes in between."""
    temporary = f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    for _ in range(100):
        try:
            records_fd = _open_records_dir(root_fd, create=True)
        except FileNotFoundError:
            continue
        try:
            _write_new_file(records_fd, temporary, text)
            try:
                os.link(
                    temporary, name + _RECORD_SUFFIX, src_dir_fd=records_fd, dst_dir_fd=records_fd
                )
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary, dir_fd=records_fd)
        except FileNotFoundError:
            os.close(records_fd)
            continue
        except BaseException:
            os.close(records_fd)
            raise
        return records_fd
    raise OSError(errno.EAGAIN, f"could not create the owner record of {name}")


def _remove_entry_at(root_fd: int, name: str) -> bool:
    """Remove ``name`` below ``root_fd`` without following it: a directory tree is removed with
    descriptor-relative calls (:func:`perago.host.tree_removal.remove_tree_at`; another GC pass
    or the owner removing the same tree meanwhile is not an error), anything else (a symlink that
    replaced the workspace, a file) is unlinked. False when there was nothing."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not an attempt directory name")
    try:
        info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(info.st_mode):
        remove_tree_at(root_fd, name)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=root_fd)
    return True


def _unlink_record_at(root_fd: int, name: str) -> None:
    try:
        records_fd = _open_records_dir(root_fd, create=False)
    except FileNotFoundError:
        return
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name + _RECORD_SUFFIX, dir_fd=records_fd)
    finally:
        os.close(records_fd)
    # An idle root keeps nothing of perago's; a concurrent creator retries (_claim_record).
    with contextlib.suppress(OSError):
        os.rmdir(ATTEMPT_RECORDS_DIRNAME, dir_fd=root_fd)


def remove_attempt_entry(workspace_root: Path, name: str) -> bool:
    """Remove the attempt directory ``name`` of ``workspace_root`` (never following a symlink
    in its place) and then its owner record; True when a directory (or what replaced it) was
    there. Used by GC and by :func:`cleanup_attempt_workspace`."""
    root_fd = os.open(workspace_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        removed = _remove_entry_at(root_fd, name)
        _unlink_record_at(root_fd, name)
    finally:
        os.close(root_fd)
    _heartbeats.discard(attempt_record_path(workspace_root, name))
    return removed


@dataclass
class AttemptWorkspace:
    """A created attempt: resolved root (held open), directory, owner record and heartbeat."""

    root: Path
    record: AttemptRecord
    owner: WorkspaceOwner
    _root_fd: int = field(repr=False)
    _created: os.stat_result = field(repr=False)

    @property
    def name(self) -> str:
        return self.record.directory

    @property
    def path(self) -> Path:
        """The body's workspace: ``<resolved root>/task_id=<id>-exec=<execution id>``."""
        return self.root / self.record.directory

    @property
    def record_path(self) -> Path:
        return attempt_record_path(self.root, self.record.directory)

    def verify(self, expected: os.stat_result | None = None) -> os.stat_result:
        """``lstat`` the attempt directory through the root descriptor; raise
        :class:`WorkspaceSafetyError` unless it is still a real directory (and, with
        ``expected``, still that very directory)."""
        try:
            info = os.stat(self.name, dir_fd=self._root_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise WorkspaceSafetyError(
                f"workspace {self.path} no longer exists (the task removed it)"
            ) from None
        if stat.S_ISLNK(info.st_mode):
            try:
                target = repr(os.readlink(self.name, dir_fd=self._root_fd))
            except OSError:
                target = "an unreadable target"
            raise WorkspaceSafetyError(
                f"workspace {self.path} was replaced by a symlink to {target}; "
                "perago never follows it (nothing was read through it or published)"
            )
        if not stat.S_ISDIR(info.st_mode):
            raise WorkspaceSafetyError(f"workspace {self.path} is no longer a directory")
        if expected is not None and (info.st_dev, info.st_ino) != (
            expected.st_dev,
            expected.st_ino,
        ):
            raise WorkspaceSafetyError(f"workspace {self.path} was replaced while perago read it")
        return info

    @contextlib.contextmanager
    def pinned(self) -> Iterator[os.stat_result]:
        """Hold the attempt directory open for the block (so its inode cannot be reused) and
        require, when the block ends, that the path still names that very directory: what was
        read through the path during the block was read from it and nowhere else."""
        self.verify()
        try:
            fd = os.open(self.name, _DIR_FLAGS, dir_fd=self._root_fd)
        except OSError:
            self.verify()  # replaced in between: say by what
            raise
        try:
            held = os.fstat(fd)
            yield held
            self.verify(held)
        finally:
            os.close(fd)

    def heartbeat(self) -> None:
        """Touch the owner record now (the heartbeat thread does it periodically)."""
        os.utime(self.record_path, follow_symlinks=False)

    def cleanup(self) -> None:
        """Remove the directory (a symlink or file in its place is unlinked, never followed),
        then the record; the heartbeat stops. Raises ``OSError`` when removal fails."""
        _heartbeats.discard(self.record_path)
        if self._root_fd < 0:
            raise OSError(errno.EBADF, f"{self.path}: attempt workspace already closed")
        try:
            _remove_entry_at(self._root_fd, self.name)
            _unlink_record_at(self._root_fd, self.name)
        finally:
            self.close()

    def safe_cleanup(self, attempt: TaskAttempt | None = None) -> bool:
        """:meth:`cleanup`, logging instead of raising; True when removed."""
        try:
            self.cleanup()
        except OSError as exc:
            _log_cleanup_failure(self.path, attempt, exc)
            return False
        return True

    def close(self) -> None:
        """Release the root descriptor (the record and its heartbeat stay)."""
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1


def open_attempt_workspace(
    workspace_root: Path,
    attempt: TaskAttempt,
    *,
    execution_id: str,
    owner: WorkspaceOwner,
    identity: ProcessIdentity | None = None,
) -> AttemptWorkspace:
    """Create the owner record, then the (new, empty) attempt directory and its marker, and
    start heartbeating; an existing directory or record is an error (``FileExistsError``)."""
    Path(workspace_root).mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(workspace_root))
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        name = attempt_directory_name(attempt.task_id, execution_id)
        started_at = datetime.now(UTC).isoformat()
        record = AttemptRecord(
            directory=name,
            owner=identity or current_process_identity(),
            owner_worker_id=owner.worker_id,
            owner_token=owner.token,
            workflow_instance_id=attempt.workflow_instance_id,
            task_id=attempt.task_id,
            execution_id=execution_id,
            retry_count=attempt.retry_count,
            task_def_name=attempt.task_def_name,
            started_at=started_at,
        )
        marker = AttemptMarker(
            workflow_instance_id=attempt.workflow_instance_id,
            task_id=attempt.task_id,
            execution_id=execution_id,
            retry_count=attempt.retry_count,
            task_def_name=attempt.task_def_name,
            owner_worker_id=owner.worker_id,
            owner_pid=owner.pid,
            owner_token=owner.token,
            started_at=started_at,
        )
        # The record claims the name first: a directory never exists without one.
        records_fd = _claim_record(root_fd, name, record.to_json())
        try:
            os.mkdir(name, 0o777, dir_fd=root_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name + _RECORD_SUFFIX, dir_fd=records_fd)
            raise
        finally:
            os.close(records_fd)
        try:
            dir_fd = os.open(name, _DIR_FLAGS, dir_fd=root_fd)
            try:
                _write_new_file(dir_fd, ATTEMPT_WORKSPACE_MARKER, marker.to_json())
                created = os.fstat(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                _remove_entry_at(root_fd, name)
                _unlink_record_at(root_fd, name)
            raise
    except BaseException:
        os.close(root_fd)
        raise
    workspace = AttemptWorkspace(root, record, owner, root_fd, created)
    _heartbeats.add(workspace.record_path)
    return workspace


def create_attempt_workspace(
    workspace_root: Path,
    attempt: TaskAttempt,
    *,
    execution_id: str,
    owner: WorkspaceOwner,
) -> Path:
    """:func:`open_attempt_workspace`, returning only the directory (its record heartbeats until
    :func:`cleanup_attempt_workspace` removes it)."""
    workspace = open_attempt_workspace(
        workspace_root, attempt, execution_id=execution_id, owner=owner
    )
    workspace.close()
    return workspace.path


def read_attempt_marker(directory: Path) -> AttemptMarker:
    """Parse the marker of an attempt directory; raises ``ValueError``/``OSError`` if invalid."""
    raw: Any = json.loads((directory / ATTEMPT_WORKSPACE_MARKER).read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{directory / ATTEMPT_WORKSPACE_MARKER} is not a JSON object")
    try:
        marker = AttemptMarker(**raw)
    except TypeError as exc:
        raise ValueError(f"{directory / ATTEMPT_WORKSPACE_MARKER} is malformed: {exc}") from exc
    marker.started_at_datetime  # noqa: B018 - validates the timestamp eagerly
    return marker


def cleanup_attempt_workspace(directory: Path) -> None:
    """Delete an attempt directory and its owner record. It is recognised by its record (the
    marker inside may be gone) or, for directories of older versions, by the marker; anything
    else is refused. A symlink in its place is unlinked, never followed."""
    root, name = directory.parent, directory.name
    has_record = os.path.lexists(attempt_record_path(root, name))
    has_marker = (
        not directory.is_symlink()
        and directory.is_dir()
        and (directory / ATTEMPT_WORKSPACE_MARKER).is_file()
    )
    if not (has_record or has_marker):
        raise FileNotFoundError(f"{directory} is not a Perago attempt workspace")
    remove_attempt_entry(root, name)


def _log_cleanup_failure(directory: Path, attempt: TaskAttempt | None, exc: OSError) -> None:
    logger.bind(
        workspace_dir=str(directory),
        workflow_instance_id=getattr(attempt, "workflow_instance_id", None),
        task_id=getattr(attempt, "task_id", None),
        retry_count=getattr(attempt, "retry_count", None),
    ).warning("failed to clean attempt-local workspace: {}", exc)


def safe_cleanup_attempt_workspace(directory: Path, attempt: TaskAttempt | None = None) -> bool:
    """:func:`cleanup_attempt_workspace`, logging instead of raising; True when removed."""
    try:
        cleanup_attempt_workspace(directory)
    except (OSError, ValueError) as exc:
        _log_cleanup_failure(directory, attempt, OSError(str(exc)))
        return False
    return True
