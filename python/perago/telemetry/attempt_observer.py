"""Spans and runtime series of every attempt of a worker process.

One span per attempt (``perago.attempt``) with a child span per phase, carrying the attempt's
identity (workflow id, task id, retry count, worker id) and its workspace (repository, branch,
input and output refs). Series are recorded when the attempt ends, from the same statistics the
JSONL ``attempt finished`` event carries, so both always agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from perago.attempt.identity import TaskAttempt
from perago.metrics.api import MetricSpec
from perago.runtime.observers import FinishedAttempt, NullObserver
from perago.telemetry import series

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Span, Tracer

# The fence's refusals, by class name (the result keeps only the name): StaleAttemptError and its
# AttemptEndedError (a branch move refused after the attempt's end), PublishFenceError.
FENCE_FAILURES = frozenset({"StaleAttemptError", "AttemptEndedError", "PublishFenceError"})
ATTEMPT_SPAN = "perago.attempt"
PHASE_SPAN_PREFIX = "perago.phase."


def workspace_attributes(input_data: Mapping[str, Any]) -> dict[str, str]:
    workspace = input_data.get("workspace")
    if not isinstance(workspace, Mapping):
        return {}
    names = {
        "repository": "lakefs.repository",
        "branch": "lakefs.branch",
        "ref": "lakefs.input_ref",
    }
    return {
        attribute: value
        for key, attribute in names.items()
        if isinstance(value := workspace.get(key), str)
    }


class _Open:
    """The spans of one running attempt."""

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.phases: dict[str, Span] = {}
        # The phase whose end carried the attempt's error (the fence refusal's phase).
        self.failed_phase: str | None = None


def _key(attempt: TaskAttempt) -> tuple[str, str]:
    return attempt.task_id, attempt.execution_id or ""


class AttemptTelemetry(NullObserver):
    def __init__(
        self,
        *,
        task_name: str,
        worker_id: str,
        meter: Meter,
        tracer: Tracer | None,
        spec: MetricSpec | None = None,
        instance_id: str | None = None,
        capacity: int = 1,
    ) -> None:
        self._task_name = task_name
        self._worker_id = worker_id
        self._tracer = tracer
        self._spec = spec if spec is not None else MetricSpec()
        self._labels: dict[str, str] = {"task_name": task_name}
        if instance_id:
            self._labels["perago_instance_id"] = instance_id
        self._instruments = series.AttemptInstruments.create(meter)
        self._open: dict[tuple[str, str], _Open] = {}
        self._lock = threading.Lock()
        self._busy = 0
        # Attempts reported at their deadline whose bodies still hold a slot.
        self._overdue: set[tuple[str, str]] = set()
        self._capacity = capacity
        if self._spec.worker_capacity:
            slot_labels = {**self._labels, "worker_id": worker_id}
            meter.create_observable_gauge(
                series.BUSY_SLOTS,
                callbacks=[self._observe(lambda: self._busy, slot_labels)],
                unit="{slot}",
                description="Worker slots running an attempt.",
            )
            meter.create_observable_gauge(
                series.IDLE_SLOTS,
                callbacks=[self._observe(lambda: self._capacity - self._busy, slot_labels)],
                unit="{slot}",
                description="Worker slots waiting for a task.",
            )

    @staticmethod
    def _observe(value: Callable[[], int], labels: dict[str, str]) -> Callable[[Any], Any]:
        from opentelemetry.metrics import Observation

        def callback(_options: Any) -> list[Any]:
            return [Observation(max(value(), 0), labels)]

        return callback

    # -- spans -------------------------------------------------------------------------------

    def attempt_started(self, attempt: TaskAttempt) -> None:
        span: Span | None = None
        if self._tracer is not None:
            span = self._tracer.start_span(
                ATTEMPT_SPAN,
                attributes={
                    "perago.task_name": self._task_name,
                    "perago.workflow_id": attempt.workflow_instance_id,
                    "perago.task_id": attempt.task_id,
                    "perago.retry_count": attempt.retry_count,
                    "perago.worker_id": self._worker_id,
                    "perago.execution_id": attempt.execution_id or "",
                    **workspace_attributes(attempt.input_data),
                },
            )
        with self._lock:
            self._open[_key(attempt)] = _Open(span)
            self._busy += 1

    def phase_started(self, attempt: TaskAttempt, phase: str) -> None:
        opened = self._open.get(_key(attempt))
        if opened is None or opened.span is None or self._tracer is None:
            return
        from opentelemetry import trace

        span = self._tracer.start_span(
            PHASE_SPAN_PREFIX + phase,
            context=trace.set_span_in_context(opened.span),
            attributes={"perago.phase": phase},
        )
        with self._lock:
            opened.phases[phase] = span

    def phase_ended(
        self, attempt: TaskAttempt, phase: str, seconds: float, error: BaseException | None
    ) -> None:
        if self._spec.attempts:
            labels = {**self._labels, "phase": phase}
            self._instruments.phase_duration.record(seconds, labels)
        operation = series.IO_OPERATIONS.get(phase)
        if operation is not None and self._spec.workspace_io:
            self._instruments.io_duration.record(seconds, {**self._labels, "operation": operation})
        with self._lock:
            opened = self._open.get(_key(attempt))
            span = opened.phases.pop(phase, None) if opened is not None else None
            if opened is not None and error is not None and opened.failed_phase is None:
                opened.failed_phase = phase
        if span is None:
            return
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            # The class only: an exception's message may hold paths or URLs, and spans leave
            # the host (the JSONL log has the full text).
            span.add_event("exception", {"exception.type": type(error).__name__})
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

    def attempt_finished(self, finished: FinishedAttempt) -> None:
        with self._lock:
            opened = self._open.pop(_key(finished.attempt), None)
            if opened is not None:
                if finished.slot_still_busy:
                    self._overdue.add(_key(finished.attempt))
                else:
                    self._busy -= 1
            unended = list(opened.phases.values()) if opened is not None else []
        self._record(finished, opened)
        if opened is None or opened.span is None:
            return
        span = opened.span
        for phase_span in unended:  # a phase an overdue attempt never ended
            phase_span.end()
        stats = finished.stats
        span.set_attribute("perago.outcome", finished.result.status)
        if finished.published_ref is not None:
            span.set_attribute("lakefs.output_ref", finished.published_ref)
        span.set_attribute("perago.bytes_downloaded", stats.bytes_downloaded)
        span.set_attribute("perago.bytes_uploaded", stats.bytes_uploaded)
        span.set_attribute("perago.files_downloaded", stats.files_downloaded)
        span.set_attribute("perago.files_uploaded", stats.files_uploaded)
        if finished.result.status != "COMPLETED":
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("perago.failure_class", finished.failure_class or "")
            span.set_status(
                Status(StatusCode.ERROR, (finished.result.reason_for_incompletion or "")[:200])
            )
        span.end()

    def slot_released(self, attempt: TaskAttempt) -> None:
        with self._lock:
            if _key(attempt) in self._overdue:
                self._overdue.discard(_key(attempt))
                self._busy -= 1

    # -- series ------------------------------------------------------------------------------

    def _record(self, finished: FinishedAttempt, opened: _Open | None) -> None:
        instruments, stats = self._instruments, finished.stats
        failure = finished.failure_class if finished.result.status != "COMPLETED" else None
        if self._spec.attempts:
            outcome = {
                **self._labels,
                "outcome": finished.result.status,
                "failure_class": failure or "",
            }
            instruments.attempt_duration.record(finished.seconds, outcome)
            instruments.attempts.add(1, outcome)
            if failure in FENCE_FAILURES:
                phase = opened.failed_phase if opened is not None else None
                instruments.fence_refusals.add(1, {**self._labels, "phase": phase or ""})
        if not self._spec.workspace_io:
            return
        moved = (
            ("download", stats.bytes_downloaded, stats.files_downloaded),
            ("upload", stats.bytes_uploaded, stats.files_uploaded),
        )
        for operation, size, files in moved:
            if files:
                labels = {**self._labels, "operation": operation}
                instruments.io_bytes.record(size, labels)
                instruments.files.add(files, labels)
        if stats.objects_deleted:
            instruments.files.add(stats.objects_deleted, {**self._labels, "operation": "delete"})
        fetch = stats.fetch
        if fetch:
            for result, key in (("hit", "hits"), ("miss", "fetched"), ("corrupt", "corrupt")):
                if fetch.get(key):
                    instruments.cache_objects.add(fetch[key], {**self._labels, "result": result})
            for result, key in (("hit", "hit_bytes"), ("miss", "fetched_bytes")):
                if fetch.get(key):
                    instruments.cache_bytes.add(fetch[key], {**self._labels, "result": result})
