"""Each attempt's phases and transfer progress as task execution logs in Conductor (issue 16).

:class:`ConductorProgress` turns the attempt observer events into short lines, the task's
execution logs (the *Logs* tab of the Conductor UI, ``GET /api/tasks/{taskId}/log``)::

    attempt started (retry 0)
    phase download started
    download 42% (42.0 MiB of 100.0 MiB, 430 of 1,024 files)
    phase download done in 12.3 s (1,024 files, 100.0 MiB)
    attempt COMPLETED in 15.1 s, published 8f2c...

A failed phase names only its exception class (its message may hold a URL or a path, never
shown); a failed attempt names its failure class and the reason already sent to Conductor as
``reasonForIncompletion`` (truncated to ``failure_reason_max_length``). No traceback, no setting,
no credential is ever part of a line.

Where the lines go, and why (behaviour of Conductor OSS 3.32.1, verified against the real
server; ``tests/e2e/test_conductor_progress.py`` keeps checking it):

* **An attempt that ends before its first flush** (the flush interval below; every no-op or
  short task) sends **no request of its own**: its lines ride on the final ``TaskResult``'s
  ``logs`` (``ConductorClient.add_logs_to_result``), which Conductor stores as execution logs,
  joined by ``"; "`` into **one entry** (``attempt started (retry 0); phase body done in
  0.00 s; attempt COMPLETED in 0.01 s``): Conductor writes each entry as a row of its own, which
  measurably slows every update (0.4 ms per entry, 3.32.1 with SQLite indexing), and a short
  attempt is a story of one moment. A "started" line whose phase also ended in the same batch is
  left out (the "done" line has the time). The entry carries the worker's clock.
* The lines of an attempt that was flushed before go one entry per line: Conductor keeps at most
  10 entries of one result (``taskExecLogSizeLimit``), so the lines beyond the limit are joined
  by ``"; "`` into the entry before the last one.
* **A longer attempt** is flushed by one background thread per process every
  ``0.8 x responseTimeoutSeconds`` (the SDK's lease interval), bounded to
  [``MIN_INTERVAL``, ``MAX_INTERVAL``]: the lines since the last flush (compacted and fitted the
  same way), each one ``POST /tasks/{taskId}/log``, then one progress line when the running
  phase's transfer moved since the last one. Conductor stamps these with its own clock, i.e.
  when they were posted (up to one interval after the event). Progress callbacks (up to ~10/s
  per transfer) only store the latest counters. An attempt's remaining lines still ride on its
  final result.
* **Not the lease heartbeat.** The SDK's heartbeat is ``IN_PROGRESS`` with
  ``extendLease=true``, and the server answers that by only touching the task's update time:
  its ``outputData`` and ``logs`` are dropped (``{"outputData": {}}`` after a heartbeat that
  carried ``{"perago_progress": {...}}``), so putting progress into the heartbeat (an SDK-private
  hook) would show nothing. Perago's own ``IN_PROGRESS`` update without ``extendLease`` *does*
  store ``outputData``, but it also sets the task back to ``SCHEDULED`` and postpones it in the
  queue by ``callbackAfterSeconds``: the task would be handed to another worker and the attempt
  fence (status ``IN_PROGRESS``, same poll) would refuse to publish. Hence progress is a log
  line, and the task's output is only ever the result perago reports (a ``COMPLETED`` update
  replaces ``outputData`` whole).

Nothing here can fail or slow an attempt: events only append to a list under a lock; requests
happen on the flush thread; a Conductor error there is logged once as a warning (later ones at
debug level), the unsent phase lines wait for the next flush or the final result, and a stale
progress line is dropped. Lines of an attempt whose end could not ride on its result (the
deadline watchdog reports that one itself) are posted by the flush thread, which the reporter
waits for at most ``FINAL_WAIT`` seconds (the process may exit right after).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from loguru import logger

from perago.attempt.identity import TaskAttempt
from perago.conductor.client import describe_conductor_error
from perago.runtime.observers import FinishedAttempt, NullObserver, Progress

__all__ = [
    "FINAL_WAIT",
    "LEASE_FACTOR",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "ConductorProgress",
    "TaskLogs",
    "fit_entries",
    "flush_interval",
    "format_bytes",
    "format_seconds",
    "join_lines",
]

LEASE_FACTOR = 0.8  # the SDK's heartbeat interval is 80 % of responseTimeoutSeconds
MIN_INTERVAL = 1.0
MAX_INTERVAL = 30.0
FINAL_WAIT = 2.0
_TICK = 0.25


class TaskLogs(Protocol):
    """What :class:`ConductorProgress` needs of perago's :class:`ConductorClient`."""

    RESULT_LOGS_LIMIT: int

    def add_task_log(self, task_id: str, text: str) -> None: ...

    def add_logs_to_result(self, task_id: str, entries: Iterable[tuple[str, int]]) -> bool: ...


def flush_interval(response_timeout_seconds: int | None) -> float:
    """Seconds between two flushes of an attempt (and before its first one)."""
    if not response_timeout_seconds or response_timeout_seconds <= 0:
        return MAX_INTERVAL
    return min(max(LEASE_FACTOR * response_timeout_seconds, MIN_INTERVAL), MAX_INTERVAL)


def format_seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s"


def format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _files(count: int) -> str:
    return f"{count:,} file" + ("" if count == 1 else "s")


def _progress_line(progress: Progress) -> str:
    if progress.bytes_total > 0:
        percent = min(100, int(100 * progress.bytes_done / progress.bytes_total))
        return (
            f"{progress.phase} {percent}% ({format_bytes(progress.bytes_done)} of "
            f"{format_bytes(progress.bytes_total)}, {progress.files_done:,} of "
            f"{_files(progress.files_total)})"
        )
    return f"{progress.phase} {progress.files_done:,} of {_files(progress.files_total)}"


def _phase_end_line(
    phase: str, seconds: float, error: BaseException | None, progress: Progress | None
) -> str:
    if error is not None:
        return f"phase {phase} failed after {format_seconds(seconds)} ({type(error).__name__})"
    text = f"phase {phase} done in {format_seconds(seconds)}"
    if progress is not None:
        text += f" ({_files(progress.files_total)}, {format_bytes(progress.bytes_total)})"
    return text


def _attempt_end_line(finished: FinishedAttempt) -> str:
    result = finished.result
    text = f"attempt {result.status} in {format_seconds(finished.seconds)}"
    if result.status == "COMPLETED":
        return text + (f", published {finished.published_ref}" if finished.published_ref else "")
    reason = result.reason_for_incompletion or ""
    failure = finished.failure_class
    if failure and not reason.startswith(failure):
        reason = f"{failure}: {reason}" if reason else failure
    return text + (f": {reason}" if reason else "")


@dataclass(frozen=True)
class _Line:
    text: str
    created_ms: int
    starts: str | None = None  # the phase this line says started
    ends: str | None = None  # the phase this line says ended
    progress: bool = False


def _compact(lines: list[_Line]) -> list[_Line]:
    """Without the "started" lines of phases that also end in ``lines``."""
    ended: set[str] = set()
    kept: list[_Line] = []
    for line in reversed(lines):
        if line.ends is not None:
            ended.add(line.ends)
        if line.starts is not None and line.starts in ended:
            ended.discard(line.starts)
            continue
        kept.append(line)
    kept.reverse()
    return kept


@dataclass(frozen=True)
class _Entry:
    """One execution log entry: one line, or several joined to stay within a result's limit."""

    text: str
    created_ms: int
    lines: tuple[_Line, ...]


def join_lines(lines: list[_Line]) -> _Entry:
    """One entry of ``lines`` joined by ``"; "``, stamped with the first one's time."""
    return _Entry("; ".join(line.text for line in lines), lines[0].created_ms, tuple(lines))


def fit_entries(lines: list[_Line], limit: int) -> list[_Entry]:
    """At most ``limit`` (>= 2) entries: the first ``limit - 2`` lines and the last one as they
    are, the lines in between joined by ``"; "`` into one (stamped with the first one's time)."""
    if len(lines) <= limit:
        return [_Entry(line.text, line.created_ms, (line,)) for line in lines]
    head, middle, last = lines[: limit - 2], lines[limit - 2 : -1], lines[-1]
    return [
        *(_Entry(line.text, line.created_ms, (line,)) for line in head),
        join_lines(middle),
        _Entry(last.text, last.created_ms, (last,)),
    ]


@dataclass
class _Running:
    """What one running attempt has not told Conductor yet."""

    task_id: str
    interval: float
    due: float
    pending: list[_Line] = field(default_factory=list)
    # The latest counters of the running phase's transfer and the last ones posted; written by
    # the attempt's thread without the lock (one reference at a time), read by the flusher.
    progress: Progress | None = None
    progress_sent: Progress | None = None
    # Whether a flush posted lines of this attempt already (then its end goes line by line too).
    flushed: bool = False


@dataclass
class _Orphan:
    """Lines of an ended attempt that could not ride on its result."""

    task_id: str
    entries: list[_Entry]
    sent: threading.Event = field(default_factory=threading.Event)


class ConductorProgress(NullObserver):
    """Phase lines and transfer progress of every attempt, as Conductor task execution logs."""

    def __init__(
        self,
        client: TaskLogs,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        start_thread: bool = True,
        final_wait: float = FINAL_WAIT,
    ) -> None:
        self._client = client
        self._clock = clock
        self._wall_clock = wall_clock
        self._start_thread = start_thread
        self._final_wait = final_wait
        self._limit = max(client.RESULT_LOGS_LIMIT, 2)
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str | None], _Running] = {}
        self._orphans: list[_Orphan] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._send_lock = threading.Lock()  # one flush at a time (thread and direct callers)
        self._warned = False

    # -- events (the attempt's thread) ---------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._wall_clock() * 1000)

    def _state(self, attempt: TaskAttempt) -> _Running | None:
        return self._running.get((attempt.task_id, attempt.execution_id))

    def attempt_started(self, attempt: TaskAttempt) -> None:
        interval = flush_interval(attempt.response_timeout_seconds)
        state = _Running(attempt.task_id, interval, self._clock() + interval)
        started = f"attempt started (retry {attempt.retry_count})"
        state.pending.append(_Line(started, self._now_ms()))
        with self._lock:
            self._running[(attempt.task_id, attempt.execution_id)] = state
        if self._start_thread and self._thread is None:
            self._start()

    def phase_started(self, attempt: TaskAttempt, phase: str) -> None:
        with self._lock:
            state = self._state(attempt)
            if state is None:
                return
            state.progress = None
            state.pending.append(_Line(f"phase {phase} started", self._now_ms(), starts=phase))

    def progress(self, attempt: TaskAttempt, progress: Progress) -> None:
        state = self._running.get((attempt.task_id, attempt.execution_id))
        if state is not None:
            state.progress = progress

    def phase_ended(
        self, attempt: TaskAttempt, phase: str, seconds: float, error: BaseException | None
    ) -> None:
        with self._lock:
            state = self._state(attempt)
            if state is None:
                return
            progress, state.progress = state.progress, None
            if progress is not None and progress.phase != phase:
                progress = None
            text = _phase_end_line(phase, seconds, error, progress)
            state.pending.append(_Line(text, self._now_ms(), ends=phase))

    def attempt_finished(self, finished: FinishedAttempt) -> None:
        attempt = finished.attempt
        text = _attempt_end_line(finished)
        with self._lock:
            state = self._running.pop((attempt.task_id, attempt.execution_id), None)
            pending = state.pending if state is not None else []
            flushed = state is not None and state.flushed
        lines = _compact([*pending, _Line(text, self._now_ms())])
        # Conductor stores each entry as a row of its own (measured on 3.32.1 with SQLite
        # indexing: +0.4 ms per entry on the update); an attempt that ended before its first
        # flush tells its whole story in one.
        entries = fit_entries(lines, self._limit) if flushed else [join_lines(lines)]
        if self._client.add_logs_to_result(
            attempt.task_id, [(entry.text, entry.created_ms) for entry in entries]
        ):
            return
        # Not the thread whose result the SDK reports (the deadline watchdog reported this
        # attempt itself): the flush thread posts the lines; wait for it a little, since the
        # process may end right after.
        orphan = _Orphan(attempt.task_id, entries)
        with self._lock:
            self._orphans.append(orphan)
        if self._start_thread:
            if self._thread is None:
                self._start()
            self._wake.set()
            orphan.sent.wait(self._final_wait)

    # -- flushing (the background thread) ------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="perago-conductor-progress", daemon=True
            )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_TICK)
            self._wake.clear()
            try:
                self.flush_due()
            except Exception as exc:  # never let the thread die
                logger.bind(error=str(exc)).debug("conductor progress flush failed")

    def close(self) -> None:
        """Stop the flush thread (tests; a worker process just exits)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def flush_due(self) -> None:
        """Post the orphans, then the lines and progress of every attempt whose flush is due."""
        with self._send_lock:
            now = self._clock()
            with self._lock:
                orphans, self._orphans = self._orphans, []
                due: list[tuple[_Running, list[_Line]]] = []
                for state in self._running.values():
                    if now < state.due:
                        continue
                    state.due = now + state.interval
                    lines = _compact(state.pending)
                    state.pending = []
                    progress = state.progress
                    if progress is not None and progress != state.progress_sent:
                        state.progress_sent = progress
                        lines.append(_Line(_progress_line(progress), self._now_ms(), progress=True))
                    if lines:
                        due.append((state, lines))
            for orphan in orphans:
                self._post(orphan.task_id, orphan.entries)
                orphan.sent.set()
            for state, lines in due:
                state.flushed = True
                entries = fit_entries(lines, self._limit)
                sent = self._post(state.task_id, entries)
                if sent < len(entries):
                    self._requeue(state, entries[sent:])

    def _post(self, task_id: str, entries: list[_Entry]) -> int:
        """Post ``entries`` in order; how many were posted (it stops at the first failure)."""
        for index, entry in enumerate(entries):
            try:
                self._client.add_task_log(task_id, entry.text)
            except Exception as exc:
                bound = logger.bind(task_id=task_id, error=describe_conductor_error(exc))
                if not self._warned:
                    self._warned = True
                    bound.warning(
                        "could not add an execution log line to the Conductor task; the "
                        "attempt goes on, its lines wait for the next flush or its result"
                    )
                else:
                    bound.debug("could not add an execution log line to the Conductor task")
                return index
        return len(entries)

    def _requeue(self, state: _Running, unsent: list[_Entry]) -> None:
        """Put the unsent phase lines back in front of the pending ones; an unsent progress line
        is dropped (the next flush has fresher counters, and posts them even if unchanged)."""
        lines = [line for entry in unsent for line in entry.lines]
        with self._lock:
            state.pending[:0] = [line for line in lines if not line.progress]
            if any(line.progress for line in lines):
                state.progress_sent = None
