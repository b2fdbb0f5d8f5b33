"""What a worker process and its supervisor agree on: exit codes, the status pipe, the parent
pid and the quarantine file."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path

from perago.host.secure_files import replace_file

EXIT_OK = 0
EXIT_STARTUP_FAILED = 3
# The watchdog ended the process after an overdue attempt: restart the slot at once, not a crash.
EXIT_DEADLINE = 70

# Environment variable naming the inherited pipe fd on which a worker writes ``ready`` once it
# polls, or ``fatal: <cause>`` when it cannot start; then ``running <json>`` before each attempt
# (task id, workflow id, reference name: what the supervisor blames if the process dies) and
# ``done <task id>`` after it.
STATUS_FD_ENV = "PERAGO_STATUS_FD"
STATUS_READY = "ready"
STATUS_FATAL = "fatal: "
STATUS_RUNNING = "running "
STATUS_DONE = "done "
# ``metrics <port>``: the loopback port a worker serves its Prometheus series on, for a
# supervisor that answers the scrapes of the host (set AGGREGATED_ENV to ask for it).
STATUS_METRICS = "metrics "
METRICS_AGGREGATED_ENV = "PERAGO_METRICS_AGGREGATED"

# The supervisor's pid as the worker sees its parent: a worker whose parent is no longer this pid
# has outlived its supervisor and must stop (it also asks the kernel to kill it then).
SUPERVISOR_PID_ENV = "PERAGO_SUPERVISOR_PID"

# The supervisor's quarantine file (see ``QuarantineFile``); workers only read it.
QUARANTINE_FILE_ENV = "PERAGO_QUARANTINE_FILE"
# A logical task (one workflow's task reference, across Conductor's retries, which get new task
# ids) whose attempts killed their worker process this many times is failed without running.
QUARANTINE_AFTER_DEATHS = 3


def running_line(fields: Mapping[str, object]) -> str:
    return STATUS_RUNNING + json.dumps(dict(fields), sort_keys=True, separators=(",", ":"))


def quarantine_key(workflow_instance_id: str, reference_task_name: str) -> str:
    """The retry chain of one task of one workflow: Conductor retries it under new task ids."""
    return f"{workflow_instance_id}/{reference_task_name}"


def quarantine_reason(deaths: int) -> str:
    return f"quarantined: killed its worker {deaths} times"


class QuarantineFile:
    """``{"format": 1, "tasks": {<quarantine_key>: {"deaths": n, ...}}}`` next to the lock.

    Written only by its supervisor (atomically: a temporary file renamed over it), read by its
    workers before each attempt; a worker re-reads it only when its mtime or size changed.
    Entries with fewer than ``QUARANTINE_AFTER_DEATHS`` deaths are not quarantined.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._tasks: dict[str, int] = {}

    def write(self, tasks: Mapping[str, Mapping[str, object]]) -> None:
        payload = {"format": 1, "tasks": {key: dict(value) for key, value in tasks.items()}}
        replace_file(self.path, json.dumps(payload, sort_keys=True))

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def deaths(self, key: str) -> int:
        """How often the task ``key`` killed a worker (0 when unknown or unreadable)."""
        try:
            stat = self.path.stat()
        except OSError:
            self._seen, self._tasks = None, {}
            return 0
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._tasks = _read_quarantine(self.path)
            self._seen = seen
        return self._tasks.get(key, 0)


def _read_quarantine(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, dict):
        return {}
    found: dict[str, int] = {}
    for key, entry in tasks.items():
        deaths = entry.get("deaths") if isinstance(entry, dict) else None
        if isinstance(deaths, int) and not isinstance(deaths, bool):
            found[str(key)] = deaths
    return found
