"""What watches an attempt from the outside: metrics, traces, Conductor progress, the console.

The worker tells one :class:`AttemptObservers` when an attempt starts, when each phase starts and
ends, how far a transfer got, and when the attempt finished. Each observer is independent; none
can fail or slow down an attempt: an observer that raises is logged (once per kind of event) and
skipped from then on for that event kind, except the attempt's end (and, for an attempt reported
at its deadline while its body still runs, the later release of its slot), which every observer
is always told (so per-attempt state is released).

Transfers report progress from the thread that runs the attempt (the native core calls back on
the caller's thread), so the attempt a progress report belongs to is the one this thread runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from loguru import logger

from perago.attempt.identity import AttemptStats, PhaseObserver, TaskAttempt
from perago.attempt.result import RuntimeTaskResult

if TYPE_CHECKING:
    from perago.engine.transfer import TransferProgress


@dataclass(frozen=True)
class Progress:
    """How far the running phase's transfer is."""

    phase: str
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int


@dataclass(frozen=True)
class FinishedAttempt:
    """An attempt that ended, as the observers see it."""

    attempt: TaskAttempt
    result: RuntimeTaskResult
    stats: AttemptStats
    seconds: float
    # The ref the attempt's output names (the published commit, or the input ref of a read-only
    # or unchanged workspace); None for workspace-free tasks and failures.
    published_ref: str | None = None
    # The exception class the attempt failed with ("TimeoutError", "StaleAttemptError", ...).
    failure_class: str | None = None
    # True when the attempt was reported (its deadline passed) while its body still runs in a
    # thread of this process: its slot stays busy until ``slot_released``.
    slot_still_busy: bool = False


class AttemptObserver(Protocol):
    def attempt_started(self, attempt: TaskAttempt) -> None: ...

    def phase_started(self, attempt: TaskAttempt, phase: str) -> None: ...

    def phase_ended(
        self, attempt: TaskAttempt, phase: str, seconds: float, error: BaseException | None
    ) -> None: ...

    def progress(self, attempt: TaskAttempt, progress: Progress) -> None: ...

    def attempt_finished(self, finished: FinishedAttempt) -> None: ...

    def slot_released(self, attempt: TaskAttempt) -> None: ...


class NullObserver:
    """Every event ignored: a base for observers that watch only some."""

    def attempt_started(self, attempt: TaskAttempt) -> None:
        return None

    def phase_started(self, attempt: TaskAttempt, phase: str) -> None:
        return None

    def phase_ended(
        self, attempt: TaskAttempt, phase: str, seconds: float, error: BaseException | None
    ) -> None:
        return None

    def progress(self, attempt: TaskAttempt, progress: Progress) -> None:
        return None

    def attempt_finished(self, finished: FinishedAttempt) -> None:
        return None

    def slot_released(self, attempt: TaskAttempt) -> None:
        return None


# The events that end per-attempt state: every observer is told them, even one that failed before.
_ALWAYS_TOLD = frozenset({"attempt_finished", "slot_released"})


class _Running(threading.local):
    attempt: TaskAttempt | None = None
    phase: str | None = None


class AttemptObservers:
    """The observers of one worker process, told every event in order."""

    def __init__(self, observers: Sequence[AttemptObserver] = ()) -> None:
        self._observers = list(observers)
        self._broken: set[tuple[int, str]] = set()
        self._running = _Running()

    def add(self, observer: AttemptObserver) -> None:
        self._observers.append(observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def _each(self, event: str) -> list[tuple[int, AttemptObserver]]:
        return [
            (index, observer)
            for index, observer in enumerate(self._observers)
            if (index, event) not in self._broken
        ]

    def _failed(self, index: int, event: str, observer: object, exc: Exception) -> None:
        # The end of an attempt is always told (an observer holding per-attempt state must get
        # the chance to release it); a failure there is logged once.
        if (index, event) in self._broken:
            return
        self._broken.add((index, event))
        skipped = "" if event in _ALWAYS_TOLD else "; it is skipped for this event from now on"
        logger.bind(observer=type(observer).__name__, event=event, error=str(exc)).warning(
            "attempt observer failed" + skipped
        )

    def attempt_started(self, attempt: TaskAttempt) -> None:
        self._running.attempt, self._running.phase = attempt, None
        for index, observer in self._each("attempt_started"):
            try:
                observer.attempt_started(attempt)
            except Exception as exc:
                self._failed(index, "attempt_started", observer, exc)

    def phase_observer(self, attempt: TaskAttempt) -> PhaseObserver:
        """What :class:`AttemptStats` tells of this attempt's phases."""
        return _PhaseRelay(self, attempt)

    def _phase_started(self, attempt: TaskAttempt, phase: str) -> None:
        self._running.phase = phase
        for index, observer in self._each("phase_started"):
            try:
                observer.phase_started(attempt, phase)
            except Exception as exc:
                self._failed(index, "phase_started", observer, exc)

    def _phase_ended(
        self, attempt: TaskAttempt, phase: str, seconds: float, error: BaseException | None
    ) -> None:
        self._running.phase = None
        for index, observer in self._each("phase_ended"):
            try:
                observer.phase_ended(attempt, phase, seconds, error)
            except Exception as exc:
                self._failed(index, "phase_ended", observer, exc)

    def transfer_progress(self, counters: TransferProgress) -> None:
        """A transfer's counters, attributed to the attempt and phase this thread runs."""
        attempt = self._running.attempt
        if attempt is None:
            return
        progress = Progress(
            self._running.phase or "transfer",
            counters.bytes_done,
            counters.bytes_total,
            counters.files_done,
            counters.files_total,
        )
        for index, observer in self._each("progress"):
            try:
                observer.progress(attempt, progress)
            except Exception as exc:
                self._failed(index, "progress", observer, exc)

    def attempt_finished(self, finished: FinishedAttempt) -> None:
        if self._running.attempt is finished.attempt:
            self._running.attempt, self._running.phase = None, None
        for index, observer in enumerate(self._observers):
            try:
                observer.attempt_finished(finished)
            except Exception as exc:
                self._failed(index, "attempt_finished", observer, exc)

    def slot_released(self, attempt: TaskAttempt) -> None:
        """The body of an attempt reported at its deadline has returned: its slot is free."""
        if self._running.attempt is attempt:
            self._running.attempt, self._running.phase = None, None
        for index, observer in enumerate(self._observers):
            try:
                observer.slot_released(attempt)
            except Exception as exc:
                self._failed(index, "slot_released", observer, exc)


class _PhaseRelay:
    def __init__(self, observers: AttemptObservers, attempt: TaskAttempt) -> None:
        self._observers = observers
        self._attempt = attempt

    def phase_started(self, name: str) -> None:
        self._observers._phase_started(self._attempt, name)

    def phase_ended(self, name: str, seconds: float, error: BaseException | None) -> None:
        self._observers._phase_ended(self._attempt, name, seconds, error)
