"""Identity and statistics of one task attempt, shared by the attempt core and the workers.

``TaskAttempt`` is what the Conductor adapter hands to the attempt core: everything perago needs
to know about the polled task, independent of the Conductor SDK's own classes. ``AttemptStats``
is filled in by the attempt core while it runs and read by the worker for its JSONL events and by
``perago bench`` for the per-phase breakdown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TaskAttempt:
    """One polled Conductor task, as seen by the worker that received it."""

    workflow_instance_id: str
    task_id: str
    retry_count: int
    task_def_name: str
    reference_task_name: str
    seq: int
    status: str
    input_data: Mapping[str, Any]
    iteration: int = 0
    worker_id: str | None = None
    poll_count: int | None = None
    response_timeout_seconds: int | None = None
    timeout_seconds: int | None = None
    execution_id: str | None = None


class PhaseObserver(Protocol):
    """Told when each phase of an attempt starts and ends (spans, progress reports, status)."""

    def phase_started(self, name: str) -> None: ...

    def phase_ended(self, name: str, seconds: float, error: BaseException | None) -> None: ...


@dataclass
class AttemptStats:
    """Counters and per-phase wall times of one attempt (milliseconds)."""

    files_downloaded: int = 0
    bytes_downloaded: int = 0
    files_uploaded: int = 0
    bytes_uploaded: int = 0
    objects_deleted: int = 0
    # Where the download's bytes came from (content cache hits, fetched); empty when the
    # baseline was not written by a download.
    fetch: dict[str, int] = field(default_factory=dict)
    phase_ms: dict[str, float] = field(default_factory=dict)
    observer: PhaseObserver | None = field(default=None, repr=False, compare=False)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; repeated phases of the same name add up."""
        observer = self.observer
        if observer is not None:
            observer.phase_started(name)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.phase_ms[name] = self.phase_ms.get(name, 0.0) + elapsed * 1000.0
            if observer is not None:
                observer.phase_ended(name, elapsed, error)

    def as_log_fields(self) -> dict[str, Any]:
        return {
            "files_downloaded": self.files_downloaded,
            "bytes_downloaded": self.bytes_downloaded,
            "files_uploaded": self.files_uploaded,
            "bytes_uploaded": self.bytes_uploaded,
            "objects_deleted": self.objects_deleted,
            **({"fetch": dict(self.fetch)} if self.fetch else {}),
            "phase_ms": {name: round(ms, 3) for name, ms in self.phase_ms.items()},
        }
