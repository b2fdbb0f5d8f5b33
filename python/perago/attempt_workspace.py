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

Workspace GC treats a directory as an attempt directory only if this marker exists and parses
(:func:`read_attempt_marker`); it may delete it when ``started_at`` is older than the TTL and the
owner is gone (``owner_pid`` dead, or on this process: token not active).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from perago.attempt_types import TaskAttempt

__all__ = [
    "ATTEMPT_WORKSPACE_MARKER",
    "AttemptMarker",
    "WorkspaceOwner",
    "active_workspace_owner_tokens",
    "attempt_directory_name",
    "attempt_path_segment",
    "cleanup_attempt_workspace",
    "create_attempt_workspace",
    "new_workspace_owner",
    "read_attempt_marker",
    "register_active_workspace_owner",
    "safe_cleanup_attempt_workspace",
    "unregister_active_workspace_owner",
]

ATTEMPT_WORKSPACE_MARKER = ".perago-attempt.json"

_UNSAFE_SEGMENT_CHARS = re.compile(r"[^A-Za-z0-9_.=-]+")

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


def create_attempt_workspace(
    workspace_root: Path,
    attempt: TaskAttempt,
    *,
    execution_id: str,
    owner: WorkspaceOwner,
) -> Path:
    """Create the (new, empty) attempt directory and its marker; an existing one is an error."""
    workspace_root.mkdir(parents=True, exist_ok=True)
    directory = workspace_root / attempt_directory_name(attempt.task_id, execution_id)
    directory.mkdir(exist_ok=False)
    marker = AttemptMarker(
        workflow_instance_id=attempt.workflow_instance_id,
        task_id=attempt.task_id,
        execution_id=execution_id,
        retry_count=attempt.retry_count,
        task_def_name=attempt.task_def_name,
        owner_worker_id=owner.worker_id,
        owner_pid=owner.pid,
        owner_token=owner.token,
        started_at=datetime.now(UTC).isoformat(),
    )
    (directory / ATTEMPT_WORKSPACE_MARKER).write_text(marker.to_json(), encoding="utf-8")
    return directory


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
    """Delete an attempt directory; refuses anything that does not carry the marker."""
    if directory.is_symlink() or not (directory / ATTEMPT_WORKSPACE_MARKER).is_file():
        raise FileNotFoundError(f"{directory} is not a Perago attempt workspace")
    shutil.rmtree(directory)


def safe_cleanup_attempt_workspace(directory: Path, attempt: TaskAttempt | None = None) -> bool:
    """:func:`cleanup_attempt_workspace`, logging instead of raising; True when removed."""
    try:
        cleanup_attempt_workspace(directory)
    except OSError as exc:
        logger.bind(
            workspace_dir=str(directory),
            workflow_instance_id=getattr(attempt, "workflow_instance_id", None),
            task_id=getattr(attempt, "task_id", None),
            retry_count=getattr(attempt, "retry_count", None),
        ).warning("failed to clean attempt-local workspace: {}", exc)
        return False
    return True
