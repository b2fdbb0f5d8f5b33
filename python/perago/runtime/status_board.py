"""``perago status``'s source: what each slot of this host's supervisor is doing right now.

The process that owns the slots (the supervisor in process mode, the one worker process in
thread mode) keeps ``<workspace_root>/.perago-status.<host token>.json`` up to date: the
supervisor's identity, and per slot its worker id, pid, current attempt, phase and progress. The
file is replaced atomically at most once a second (and at every start, end and phase change), so
a reader never sees half of it and a busy fleet does not write more than it must. Worker
processes tell their supervisor their phase and progress on the status pipe
(``phase {json}`` lines, progress at most once a second).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perago.attempt.identity import TaskAttempt
from perago.host.processes import ProcessIdentity, current_process_identity, judge
from perago.host.secure_files import remove_leftover_temporaries, replace_file
from perago.runtime.observers import FinishedAttempt, NullObserver, Progress

STATUS_PHASE = "phase "
PROGRESS_INTERVAL_S = 1.0
WRITE_INTERVAL_S = 1.0


# The phase ``perago status`` shows for an attempt reported at its deadline whose body still runs.
OVERDUE_PHASE = "overdue (reported FAILED, body still running)"


def status_path(workspace_root: Path, host: str) -> Path:
    return workspace_root / f".perago-status.{host}.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def attempt_fields(attempt: TaskAttempt) -> dict[str, Any]:
    return {
        "task_id": attempt.task_id,
        "workflow_instance_id": attempt.workflow_instance_id,
        "retry_count": attempt.retry_count,
        "task_def_name": attempt.task_def_name,
        "started": _now(),
    }


def progress_fields(progress: Progress) -> dict[str, Any]:
    return {
        "bytes_done": progress.bytes_done,
        "bytes_total": progress.bytes_total,
        "files_done": progress.files_done,
        "files_total": progress.files_total,
    }


class StatusBoard:
    """The status file of one supervisor (written only by the process owning the slots)."""

    def __init__(
        self, path: Path, *, module: str, mode: str, env: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self._identity = current_process_identity(env)
        self._header = {"module": module, "mode": mode, "started_at": _now()}
        self._last_write = 0.0
        self._last_slots: str | None = None
        self._lock = threading.Lock()
        # A writer killed between its write and its rename left a temporary file behind.
        remove_leftover_temporaries(path)

    def write(self, slots: list[dict[str, Any]], *, force: bool = False) -> bool:
        """Replace the file with ``slots``; skipped (False) within a second of the last write
        unless ``force``. Errors are swallowed: status is never worth failing a worker."""
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_write < WRITE_INTERVAL_S:
                return False  # before rendering: the monitor asks ten times a second
            rendered = json.dumps(slots, sort_keys=True)
            if not force and rendered == self._last_slots:
                return False
            self._last_write, self._last_slots = now, rendered
            document = {
                **self._header,
                "supervisor_pid": self._identity.pid,
                "identity": self._identity.to_json(),
                "updated_at": _now(),
                "slots": slots,
            }
            try:
                replace_file(self.path, json.dumps(document))
            except OSError:
                return False
            return True

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


class PhaseReporter(NullObserver):
    """A supervised worker's side: phase changes at once, progress at most once a second."""

    def __init__(self, send: Callable[[str], None]) -> None:
        self._send = send
        self._last_progress = 0.0

    def _line(self, fields: dict[str, Any]) -> None:
        self._send(STATUS_PHASE + json.dumps(fields, separators=(",", ":")))

    def phase_started(self, attempt: TaskAttempt, phase: str) -> None:
        self._line({"task_id": attempt.task_id, "phase": phase})

    def progress(self, attempt: TaskAttempt, progress: Progress) -> None:
        now = time.monotonic()
        done = progress.bytes_done >= progress.bytes_total
        if not done and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        self._line(
            {"task_id": attempt.task_id, "phase": progress.phase, **progress_fields(progress)}
        )


class ThreadSlots(NullObserver):
    """Thread mode: the worker process owns its slots (threads) and writes the board itself.

    Every change is written within a second (the flush thread); an attempt overdue at its
    deadline and the release of its slot are written at once."""

    def __init__(self, board: StatusBoard, worker_id: str, threads: int) -> None:
        self._board = board
        self._worker_id = worker_id
        self._threads = threads
        self._running: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._publish(force=True)
        # Phase changes and progress are coalesced: written by this thread within a second.
        threading.Thread(target=self._flush_loop, name="perago-status", daemon=True).start()

    def _flush_loop(self) -> None:
        while True:
            self._dirty.wait()
            time.sleep(WRITE_INTERVAL_S)
            self._dirty.clear()
            self._publish(force=True)

    def _publish(self, *, force: bool = False) -> None:
        if not force:
            self._dirty.set()
            return
        # Written under the lock, so an older picture never replaces a newer one.
        with self._lock:
            running = list(self._running.values())
            slots = [
                {
                    "slot": n + 1,
                    "worker_id": self._worker_id,
                    "pid": os.getpid(),
                    "ready": True,
                    **(running[n] if n < len(running) else {}),
                }
                for n in range(self._threads)
            ]
            self._board.write(slots, force=force)

    def attempt_started(self, attempt: TaskAttempt) -> None:
        with self._lock:
            self._running[attempt.task_id] = {"attempt": attempt_fields(attempt)}
        self._publish()  # coalesced: a rewrite per attempt would cost more than a short attempt

    def phase_started(self, attempt: TaskAttempt, phase: str) -> None:
        with self._lock:
            entry = self._running.get(attempt.task_id)
            if entry is not None:
                entry["phase"], entry["progress"] = phase, None
        self._publish()

    def progress(self, attempt: TaskAttempt, progress: Progress) -> None:
        with self._lock:
            entry = self._running.get(attempt.task_id)
            if entry is not None:
                entry["progress"] = progress_fields(progress)
        self._publish()

    def attempt_finished(self, finished: FinishedAttempt) -> None:
        with self._lock:
            if finished.slot_still_busy:
                # Reported at its deadline, but its body still holds this thread.
                entry = self._running.get(finished.attempt.task_id)
                if entry is not None:
                    entry["phase"], entry["progress"] = OVERDUE_PHASE, None
            else:
                self._running.pop(finished.attempt.task_id, None)
        self._publish(force=finished.slot_still_busy)

    def slot_released(self, attempt: TaskAttempt) -> None:
        with self._lock:
            self._running.pop(attempt.task_id, None)
        self._publish(force=True)


def read_boards(workspace_root: Path, host: str | None = None) -> list[dict[str, Any]]:
    """The status files under ``workspace_root`` (only ``host``'s when given), each with
    ``alive``: whether its supervisor still runs (``unknown`` for another host or boot)."""
    pattern = f".perago-status.{host}.json" if host else ".perago-status.*.json"
    boards = []
    for path in sorted(workspace_root.glob(pattern)):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(document, dict):
            continue
        identity = ProcessIdentity.from_json(document.get("identity"))
        document["alive"] = judge(identity) if identity is not None else "unknown"
        document["path"] = str(path)
        boards.append(document)
    return boards
