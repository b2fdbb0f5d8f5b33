"""Workspace garbage collection: attempt directories whose owner is gone.

Candidates are the attempts named by owner records (``<root>/.perago-attempts/*.json``, see
:mod:`perago.attempt.directory`) plus, for directories of older versions without a record, the
root's direct children carrying the marker. Nothing inside a workspace is ever walked, and the
marker is not needed: a body that emptied its workspace leaves the record outside it.

Liveness is judged only where it can be (:func:`perago.host.processes.judge`):

* owner **alive** (same host, boot and pid namespace; pid running with the same start time), or
  the attempt is one of this process's running attempts → kept, whatever its age;
* owner **dead** (same host, boot and pid namespace; pid gone or reused) → removed once its
  last heartbeat (the record's mtime) is older than the TTL (``ttl=0``: at once);
* owner **unknown** (another host, boot or pid namespace — a shared root) → removed only once
  its heartbeat is older than the TTL and than three heartbeat intervals: a live owner touches
  its record every ``HEARTBEAT_INTERVAL_SECONDS``, so nothing another live process owns is swept;
* a marker-only directory (no record) has no identity: unknown, with its ``started_at`` as the
  heartbeat.

A targeted sweep (``only_dead_owners`` at worker start, ``only_owner_pid`` by the supervisor
after a worker died, ``only_owner_worker_id``) removes only owners judged **dead**. Removal
never follows a symlink (the body may have replaced its workspace by one): the link is
unlinked, the record removed last. Each entry is handled on its own: one bad entry is
reported and the pass goes on.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from perago.attempt.directory import (
    ATTEMPT_RECORDS_DIRNAME,
    ATTEMPT_WORKSPACE_MARKER,
    HEARTBEAT_INTERVAL_SECONDS,
    AttemptRecord,
    active_workspace_owner_tokens,
    attempt_record_path,
    is_attempt_directory_name,
    read_attempt_record,
    record_heartbeat,
    remove_attempt_entry,
)
from perago.host.processes import Liveness, ProcessIdentity, current_process_identity, judge

UNKNOWN_OWNER_MIN_SILENCE = timedelta(seconds=3 * HEARTBEAT_INTERVAL_SECONDS)

ATTEMPT_MARKER = ATTEMPT_WORKSPACE_MARKER


@dataclass(frozen=True)
class AttemptMarker:
    """What GC knows about one attempt directory's owner (from its record, else its marker)."""

    directory: Path
    owner_worker_id: str | None
    owner_pid: int | None
    owner_token: str | None
    started_at: datetime
    identity: ProcessIdentity | None = None
    """None for a marker-only directory (older versions): its owner cannot be judged."""
    heartbeat_at: datetime | None = None
    """The record's mtime; None for a marker-only directory (``started_at`` stands in)."""
    record: AttemptRecord | None = None

    @property
    def last_seen(self) -> datetime:
        return self.heartbeat_at or self.started_at


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


def read_record(root: Path, name: str) -> AttemptMarker:
    """The owner of attempt ``name`` as its record names it (``ValueError``/``OSError``)."""
    path = attempt_record_path(root, name)
    record = read_attempt_record(path)
    return AttemptMarker(
        directory=root / name,
        owner_worker_id=record.owner_worker_id,
        owner_pid=record.owner.pid,
        owner_token=record.owner_token,
        started_at=record.started_at_datetime,
        identity=record.owner,
        heartbeat_at=record_heartbeat(path),
        record=record,
    )


def owner_liveness(marker: AttemptMarker, active_tokens: Iterable[str] = ()) -> Liveness:
    """``alive`` / ``dead`` / ``unknown`` for an attempt's owner (see the module docstring).

    An owner that is this very process is alive only while the attempt is one it runs."""
    if marker.owner_token is not None and marker.owner_token in set(active_tokens):
        return "alive"
    if marker.identity is None:
        return "unknown"
    if marker.identity == current_process_identity():
        return "dead"  # this process, but not one of its running attempts: it ended
    return judge(marker.identity)


def _candidates(root: Path, report: GcReport) -> list[tuple[str, bool]]:
    """(name, has record) of every attempt under ``root``, sorted by name."""
    names: dict[str, bool] = {}
    records = root / ATTEMPT_RECORDS_DIRNAME
    try:
        listed = sorted(os.listdir(records)) if records.is_dir() else []
    except OSError as exc:
        report.errors.append((records, f"{type(exc).__name__}: {exc}"))
        listed = []
    for file_name in listed:
        stem = file_name.removesuffix(".json")
        if stem != file_name and is_attempt_directory_name(stem):
            names[stem] = True
    for child in sorted(root.iterdir()):
        if child.name in names or child.name == ATTEMPT_RECORDS_DIRNAME:
            continue
        try:
            if not child.is_symlink() and child.is_dir() and (child / ATTEMPT_MARKER).is_file():
                names[child.name] = False
        except OSError as exc:
            report.errors.append((child, f"{type(exc).__name__}: {exc}"))
    return sorted(names.items())


def collect_attempt_workspaces(
    root: Path,
    *,
    ttl: timedelta,
    now: datetime | None = None,
    liveness: Callable[[AttemptMarker], Liveness] | None = None,
    active_tokens: Iterable[str] | None = None,
    only_owner_worker_id: str | None = None,
    only_owner_pid: int | None = None,
    only_dead_owners: bool = False,
) -> GcReport:
    """One GC pass over ``root``; never raises for a single bad entry.

    ``liveness`` overrides :func:`owner_liveness` (tests); ``active_tokens`` defaults to the
    attempts this process is running."""
    report = GcReport()
    if not root.is_dir():
        return report
    moment = now or datetime.now(UTC)
    tokens = frozenset(active_workspace_owner_tokens() if active_tokens is None else active_tokens)
    targeted = only_dead_owners or only_owner_worker_id is not None or only_owner_pid is not None
    try:
        candidates = _candidates(root, report)
    except OSError as exc:
        report.errors.append((root, f"{type(exc).__name__}: {exc}"))
        return report
    for name, has_record in candidates:
        directory = root / name
        try:
            marker = read_record(root, name) if has_record else read_marker(directory)
            if marker is None:
                continue
            if only_owner_worker_id is not None and marker.owner_worker_id != only_owner_worker_id:
                continue
            if only_owner_pid is not None and (
                marker.identity is None or marker.identity.pid != only_owner_pid
            ):
                continue
            state = liveness(marker) if liveness is not None else owner_liveness(marker, tokens)
            # A live owner elsewhere proves itself only by its heartbeat: never call it stale
            # before it has missed a few, whatever the TTL says.
            threshold = ttl if state == "dead" else max(ttl, UNKNOWN_OWNER_MIN_SILENCE)
            expired = moment - marker.last_seen >= threshold
            if state == "alive" or (targeted and state != "dead") or not expired:
                report.kept.append(directory)
                continue
            if remove_attempt_entry(root, name):
                report.removed.append(directory)
        except Exception as exc:  # one bad entry must never stop the pass
            report.errors.append((directory, f"{type(exc).__name__}: {exc}"))
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
