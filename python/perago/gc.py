"""Workspace garbage collection: attempt directories left behind by dead or unknown owners.

Only the workspace root's direct children are examined (an attempt directory is always a direct
child); nothing inside a workspace is ever walked. A directory is removed only when it carries the
attempt marker, is older than the TTL, and its owner process is dead or unknown. Each entry is
handled on its own: one bad entry is reported and the pass continues.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from perago.attempt_workspace import ATTEMPT_WORKSPACE_MARKER

ATTEMPT_MARKER = ATTEMPT_WORKSPACE_MARKER
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class AttemptMarker:
    directory: Path
    owner_worker_id: str | None
    owner_pid: int | None
    owner_token: str | None
    started_at: datetime


@dataclass
class GcReport:
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)


def _parse_started_at(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("marker has no started_at")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_marker(directory: Path) -> AttemptMarker | None:
    """The directory's attempt marker, or None when it is not an attempt directory."""
    marker = directory / ATTEMPT_MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{marker} must contain an object")
    pid = data.get("owner_pid", data.get("pid"))
    worker = data.get("owner_worker_id")
    token = data.get("owner_token")
    return AttemptMarker(
        directory=directory,
        owner_worker_id=worker if isinstance(worker, str) and worker else None,
        owner_pid=pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None,
        owner_token=token if isinstance(token, str) and token else None,
        started_at=_parse_started_at(data.get("started_at", data.get("start_time"))),
    )


def _process_start_time(pid: int) -> datetime | None:
    """Wall-clock start of a live process (Linux /proc), used to detect pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        uptime = float(Path("/proc/uptime").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    started_ticks = int(fields[19])
    seconds_ago = uptime - started_ticks / _CLOCK_TICKS
    return datetime.now(UTC) - timedelta(seconds=seconds_ago)


def owner_is_alive(marker: AttemptMarker) -> bool:
    """True when the marker's owner pid runs and was started before the attempt (no pid reuse)."""
    if marker.owner_pid is None:
        return False
    try:
        os.kill(marker.owner_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _process_start_time(marker.owner_pid)
    # A process that started after the attempt began cannot be its owner: the pid was reused.
    return started is None or started <= marker.started_at + timedelta(seconds=2)


def collect_attempt_workspaces(
    root: Path,
    *,
    ttl: timedelta,
    now: datetime | None = None,
    is_alive: Callable[[AttemptMarker], bool] = owner_is_alive,
    active_tokens: Iterable[str] = (),
    only_owner_worker_id: str | None = None,
    only_owner_pid: int | None = None,
) -> GcReport:
    """One GC pass over ``root``'s direct children; never raises for a single bad entry."""
    report = GcReport()
    if not root.is_dir():
        return report
    moment = now or datetime.now(UTC)
    tokens = set(active_tokens)
    try:
        children = sorted(root.iterdir())
    except OSError as exc:
        report.errors.append((root, f"{type(exc).__name__}: {exc}"))
        return report
    for child in children:
        try:
            if child.is_symlink() or not child.is_dir():
                continue
            marker = read_marker(child)
            if marker is None:
                continue
            if only_owner_worker_id is not None and marker.owner_worker_id != only_owner_worker_id:
                continue
            if only_owner_pid is not None and marker.owner_pid != only_owner_pid:
                continue
            too_young = moment - marker.started_at < ttl
            owned = (marker.owner_token in tokens) or is_alive(marker)
            if too_young or owned:
                report.kept.append(child)
                continue
            shutil.rmtree(child)
            report.removed.append(child)
        except Exception as exc:  # one bad entry must never stop the pass
            report.errors.append((child, f"{type(exc).__name__}: {exc}"))
    for path, error in report.errors:
        logger.bind(workspace_dir=str(path), error=error).warning(
            "workspace garbage collection skipped an entry"
        )
    if report.removed:
        logger.bind(removed_count=len(report.removed), workspace_root=str(root)).info(
            "garbage-collected abandoned attempt workspaces"
        )
    return report


class WorkspaceGcLoop:
    """Runs a GC pass at start and then every ``interval`` on a daemon thread."""

    def __init__(self, root: Path, *, ttl: timedelta, interval: timedelta) -> None:
        self._root = root
        self._ttl = ttl
        self._interval = max(interval.total_seconds(), 0.001)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perago-workspace-gc", daemon=True)

    def start(self) -> GcReport:
        first = self.run_once()
        self._thread.start()
        return first

    def run_once(self) -> GcReport:
        try:
            return collect_attempt_workspaces(self._root, ttl=self._ttl)
        except Exception as exc:
            logger.bind(error=f"{type(exc).__name__}: {exc}").error(
                "workspace garbage collection failed"
            )
            return GcReport()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
