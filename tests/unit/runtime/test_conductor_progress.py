"""Phase lines and progress of attempts as Conductor task execution logs (issue 16).

The observer's logic runs against a small fake of perago's own ``ConductorClient`` log interface
(``add_task_log``, ``add_logs_to_result``) with a hand-driven clock. The last tests run the
installed conductor-python ``TaskRunner`` (its ``task_client`` records instead of sending, as in
``tests/unit/conductor/test_sdk_privates.py``) to show that what ``add_logs_to_result`` adds
rides on the result the SDK reports, without a request of its own. The real server:
``tests/e2e/test_conductor_progress.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from loguru import logger
from pydantic import BaseModel

from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.attempt.result import RuntimeTaskResult, completed_result, failed_result
from perago.conductor.client import ConductorClient
from perago.conductor.runner import TaskRunnerHandle
from perago.definition.decorator import TaskDefinition
from perago.runtime.conductor_progress import (
    MAX_INTERVAL,
    ConductorProgress,
    flush_interval,
    format_bytes,
    format_seconds,
)
from perago.runtime.observers import AttemptObservers, FinishedAttempt, Progress
from perago.runtime.worker import AttemptExecutor, worker_observers
from tests.unit.conftest import make_attempt, make_sdk_task, scratch_runtime_config

SECRET = "lakefs-secret-never-shown"


@dataclass
class FakeConductor:
    """perago's ConductorClient log interface: what was posted, what rode on results."""

    RESULT_LOGS_LIMIT = 10
    attachable: bool = True
    failures: int = 0
    posted: list[tuple[str, str]] = field(default_factory=list)
    attached: list[tuple[str, list[tuple[str, int]]]] = field(default_factory=list)

    def add_task_log(self, task_id: str, text: str) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        self.posted.append((task_id, text))

    def add_logs_to_result(self, task_id: str, entries: Iterable[tuple[str, int]]) -> bool:
        if not self.attachable:
            return False
        self.attached.append((task_id, list(entries)))
        return True

    def texts(self) -> list[str]:
        return [text for _task, text in self.posted]

    def result_texts(self) -> list[str]:
        ((_task, entries),) = self.attached
        return [text for text, _created in entries]

    def result_lines(self) -> list[str]:
        """The lines of a result that carries one entry (an attempt never flushed)."""
        (entry,) = self.result_texts()
        return entry.split("; ")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _observer(client: FakeConductor, clock: Clock) -> ConductorProgress:
    return ConductorProgress(client, clock=clock, wall_clock=lambda: 1.7e9, start_thread=False)


def _finished(
    attempt: TaskAttempt,
    result: RuntimeTaskResult,
    seconds: float,
    *,
    published_ref: str | None = None,
    failure_class: str | None = None,
) -> FinishedAttempt:
    return FinishedAttempt(
        attempt, result, AttemptStats(), seconds, published_ref, failure_class=failure_class
    )


def _phase(observer: ConductorProgress, attempt: TaskAttempt, name: str, seconds: float) -> None:
    observer.phase_started(attempt, name)
    observer.phase_ended(attempt, name, seconds, None)


def test_a_short_attempt_sends_nothing_and_its_lines_ride_on_the_result(clock: Clock) -> None:
    client = FakeConductor()
    observer = _observer(client, clock)
    attempt = make_attempt(response_timeout_seconds=30)
    observer.attempt_started(attempt)
    _phase(observer, attempt, "body", 0.0012)
    clock.now += 0.5
    observer.flush_due()  # not due yet: nothing is sent
    observer.attempt_finished(_finished(attempt, completed_result({"result": {}}), 0.01))
    observer.flush_due()
    assert client.posted == []
    # One entry: Conductor writes every entry as a row of its own.
    assert client.result_texts() == [
        "attempt started (retry 0); phase body done in 0.00 s; attempt COMPLETED in 0.01 s"
    ]
    ((task_id, entries),) = client.attached
    assert task_id == "task-1"
    assert {created for _text, created in entries} == {1_700_000_000_000}


def test_a_long_attempt_is_flushed_at_the_lease_interval_with_its_progress(clock: Clock) -> None:
    client = FakeConductor()
    observer = _observer(client, clock)
    attempt = make_attempt(response_timeout_seconds=5)  # heartbeat and flush every 4 s
    observer.attempt_started(attempt)
    _phase(observer, attempt, "validate_input", 0.001)
    observer.phase_started(attempt, "download")
    for done in range(0, 51):  # ~10 reports a second: only the latest one is kept
        observer.progress(attempt, Progress("download", done * 2048, 204_800, done, 100))
    clock.now += 3.9
    observer.flush_due()
    assert client.posted == []
    clock.now += 0.2
    observer.flush_due()
    assert client.texts() == [
        "attempt started (retry 0)",
        "phase validate_input done in 0.00 s",
        "phase download started",
        "download 50% (100.0 KiB of 200.0 KiB, 50 of 100 files)",
    ]
    client.posted.clear()
    clock.now += 4.1
    observer.flush_due()
    assert client.posted == []  # the transfer did not move: nothing new to say
    observer.progress(attempt, Progress("download", 204_800, 204_800, 100, 100))
    observer.phase_ended(attempt, "download", 12.345, None)
    observer.phase_started(attempt, "body")
    clock.now += 4.1
    observer.flush_due()
    assert client.texts() == [
        "phase download done in 12.3 s (100 files, 200.0 KiB)",
        "phase body started",
    ]
    client.posted.clear()
    observer.phase_ended(attempt, "body", 3.0, None)
    observer.attempt_finished(
        _finished(attempt, completed_result({}), 21.0, published_ref="c0ffee")
    )
    assert client.result_texts() == [
        "phase body done in 3.00 s",
        "attempt COMPLETED in 21.0 s, published c0ffee",
    ]
    observer.flush_due()
    assert client.posted == []


def test_a_result_holds_at_most_conductors_limit_of_entries(clock: Clock) -> None:
    client = FakeConductor()
    observer = _observer(client, clock)
    attempt = make_attempt(response_timeout_seconds=5)
    observer.attempt_started(attempt)
    clock.now += 4.5
    observer.flush_due()  # flushed once: from now on its lines go one entry each
    assert client.texts() == ["attempt started (retry 0)"]
    phases = ["validate_input", "prepare", "download", "body", "detect_changes", "fence"]
    phases += ["stage", "fence", "publish", "cleanup"]
    for name in phases:
        _phase(observer, attempt, name, 0.25)
    observer.attempt_finished(_finished(attempt, completed_result({}), 2.5, published_ref="abc"))
    texts = client.result_texts()
    assert len(texts) == FakeConductor.RESULT_LOGS_LIMIT
    assert texts[0] == "phase validate_input done in 0.25 s"
    assert texts[1] == "phase prepare done in 0.25 s"
    assert texts[-1] == "attempt COMPLETED in 2.50 s, published abc"
    assert texts[-2] == "phase publish done in 0.25 s; phase cleanup done in 0.25 s"
    assert not any("started" in text for text in texts)


def test_failure_lines_name_the_class_and_the_reported_reason_only(clock: Clock) -> None:
    client = FakeConductor()
    observer = _observer(client, clock)
    attempt = make_attempt()
    observer.attempt_started(attempt)
    observer.phase_started(attempt, "download")
    observer.phase_ended(
        attempt, "download", 0.5, ConnectionError(f"http://key:{SECRET}@lakefs/ refused")
    )
    reason = "ConnectionError: lakeFS download failed"
    observer.attempt_finished(
        _finished(attempt, failed_result(reason), 0.75, failure_class="ConnectionError")
    )
    assert client.result_lines() == [
        "attempt started (retry 0)",
        "phase download failed after 0.50 s (ConnectionError)",
        "attempt FAILED in 0.75 s: ConnectionError: lakeFS download failed",
    ]
    assert all(SECRET not in text for text in client.result_texts())

    client = FakeConductor()
    observer = _observer(client, clock)
    observer.attempt_finished(  # never started here (a quarantined task): still one line
        _finished(attempt, failed_result("the fence moved"), 0.0, failure_class="StaleAttemptError")
    )
    assert client.result_texts() == ["attempt FAILED in 0.00 s: StaleAttemptError: the fence moved"]


def test_a_conductor_error_is_warned_once_and_the_lines_wait_for_the_result(
    clock: Clock,
) -> None:
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="DEBUG")
    try:
        client = FakeConductor(failures=3)
        observer = _observer(client, clock)
        attempt = make_attempt(response_timeout_seconds=5)
        observer.attempt_started(attempt)
        observer.phase_started(attempt, "download")
        observer.progress(attempt, Progress("download", 1, 10, 0, 1))
        clock.now += 4.1
        observer.flush_due()  # the first post fails
        clock.now += 4.1
        observer.flush_due()  # fails again
        observer.phase_ended(attempt, "download", 9.0, None)
        observer.attempt_finished(_finished(attempt, completed_result({}), 9.5))
    finally:
        logger.remove(sink)
    warnings = [m for m in messages if m.startswith("could not add an execution log line")]
    assert len(warnings) == 2
    assert sum("the attempt goes on" in m for m in warnings) == 1  # one warning, then debug
    assert client.posted == []
    # The phase lines were kept (and compacted) for the result; stale progress was dropped.
    assert client.result_texts() == [
        "attempt started (retry 0)",
        "phase download done in 9.00 s (1 file, 10 B)",
        "attempt COMPLETED in 9.50 s",
    ]


def test_lines_that_cannot_ride_on_a_result_are_posted_by_the_flush_thread() -> None:
    """The deadline watchdog reports an overdue attempt itself: its lines are posted, and the
    reporter waits for that at most ``final_wait``."""
    client = FakeConductor(attachable=False)
    observer = ConductorProgress(client, final_wait=10.0)
    try:
        attempt = make_attempt(response_timeout_seconds=600)
        observer.attempt_started(attempt)
        observer.phase_started(attempt, "body")
        reason = "TimeoutError: attempt exceeded timeoutSeconds=1 and was stopped"
        started = time.monotonic()
        observer.attempt_finished(
            _finished(attempt, failed_result(reason), 1.0, failure_class="TimeoutError")
        )
        assert time.monotonic() - started < 5.0
        assert client.texts() == [
            "attempt started (retry 0); phase body started; "
            "attempt FAILED in 1.00 s: TimeoutError: attempt exceeded timeoutSeconds=1 and was "
            "stopped",
        ]
        # The body's thread carries on after the deadline: its late events change nothing.
        observer.phase_ended(attempt, "body", 3.0, None)
        observer.progress(attempt, Progress("body", 1, 1, 1, 1))
        observer.flush_due()
        assert len(client.posted) == 1
    finally:
        observer.close()


def test_concurrent_attempts_are_kept_apart(clock: Clock) -> None:
    client = FakeConductor()
    observer = _observer(client, clock)
    first = make_attempt(task_id="a", execution_id="x", response_timeout_seconds=5)
    second = make_attempt(task_id="b", execution_id="y", response_timeout_seconds=60)
    observer.attempt_started(first)
    observer.attempt_started(second)
    observer.phase_started(first, "download")
    observer.phase_started(second, "upload")
    clock.now += 4.5
    observer.flush_due()  # only the first one is due
    assert client.posted == [
        ("a", "attempt started (retry 0)"),
        ("a", "phase download started"),
    ]


def test_the_flush_interval_follows_the_lease_interval_within_bounds() -> None:
    assert flush_interval(None) == MAX_INTERVAL
    assert flush_interval(0) == MAX_INTERVAL
    assert flush_interval(1) == 1.0
    assert flush_interval(5) == pytest.approx(4.0)
    assert flush_interval(600) == MAX_INTERVAL


def test_formats() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1024, 104_857_600, 5 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "100.0 MiB",
        "5.0 TiB",
    ]
    assert [format_seconds(s) for s in (1.234, 45.67, 1234.5)] == ["1.23 s", "45.7 s", "1234 s"]


def test_posted_text_survives_the_sdks_text_body() -> None:
    """conductor-python sends a text body as ``json.dumps(text).strip('"')``."""
    text = ConductorClient.plain_log_text('a "quoted" C:\\path\ttab\nline é')
    assert text == "a 'quoted' C:/path tab line ?"
    assert len(ConductorClient.plain_log_text("x" * 5000)) == ConductorClient.LOG_TEXT_MAX_LENGTH


def test_transfer_progress_reaches_the_observer_with_its_phase(clock: Clock) -> None:
    from perago.engine.transfer import TransferProgress

    client = FakeConductor()
    observer = _observer(client, clock)
    observers = AttemptObservers([observer])
    attempt = make_attempt(response_timeout_seconds=5)
    stats = AttemptStats(observer=None)
    observers.attempt_started(attempt)
    stats.observer = observers.phase_observer(attempt)
    with stats.phase("download"):
        observers.transfer_progress(TransferProgress(5, 10, 1, 2))
        clock.now += 4.1
        observer.flush_due()
    assert client.texts()[-1] == "download 50% (5 B of 10 B, 1 of 2 files)"


# -- through the installed SDK's runner -----------------------------------------------------------


class RecordingTaskClient:
    """Stands in for the runner's ``TaskResourceApi``: one task, and every request."""

    def __init__(self, task: Task) -> None:
        self.queue = [task]
        self.updates: list[TaskResult] = []

    def batch_poll(self, tasktype: str, **params: Any) -> list[Task]:
        return [self.queue.pop(0)] if self.queue else []

    def update_task_v2(self, body: TaskResult) -> Task | None:
        self.updates.append(body)
        return None

    def update_task(self, body: TaskResult) -> str:
        self.updates.append(body)
        return "ok"


def _run_in_sdk(execute: Any, task: Task) -> RecordingTaskClient:
    from conductor.client.configuration.configuration import Configuration

    client = RecordingTaskClient(task)
    handle = TaskRunnerHandle(
        "t", "w1", execute, configuration=Configuration(server_api_url="http://127.0.0.1:9/api")
    )
    handle._runner.task_client = client
    handle.poll_once()
    deadline = time.monotonic() + 30
    while not client.updates or handle.in_flight():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    handle.stop_polling()
    handle.drain()
    return client


def test_entries_added_to_the_result_reach_the_sdks_update() -> None:
    seen: list[bool] = []

    def execute(task: Task) -> TaskResult:
        seen.append(ConductorClient.add_logs_to_result("another-task", [("no", 1)]))
        seen.append(ConductorClient.add_logs_to_result(task.task_id, [("phase body done", 42)]))
        return TaskResult(
            task_id=task.task_id, workflow_instance_id=task.workflow_instance_id, status="COMPLETED"
        )

    client = _run_in_sdk(execute, make_sdk_task())
    assert seen == [False, True]
    (update,) = client.updates
    assert [(log.log, log.task_id, log.created_time) for log in update.logs] == [
        ("phase body done", "task-9", 42)
    ]
    assert ConductorClient.add_logs_to_result("task-9", [("outside", 1)]) is False


class Empty(BaseModel):
    pass


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[AttemptExecutor]:
    config = scratch_runtime_config(tmp_path)
    task = TaskDefinition(
        name="t", owner_email="t@example.com", fn=lambda p: Empty(), params_model=Empty,
        output_model=Empty,
    )  # fmt: skip
    conductor = ConductorClient("http://127.0.0.1:9/api", env={})
    observers = worker_observers(task, config, "w1", conductor)
    executor = AttemptExecutor(
        task=task,
        config=config,
        worker_id="w1",
        client=conductor,
        taskdef_timeout_seconds=None,
        exit_on_deadline=False,
        observers=observers,
    )
    yield executor
    executor.watchdog.stop()


def test_a_no_op_attempt_sends_no_request_beyond_its_result(executor: AttemptExecutor) -> None:
    """The worker's own observers, the SDK's runner: one update, which carries the lines."""
    sent: list[str] = []
    executor.client.add_task_log = lambda task_id, text: sent.append(text)  # type: ignore[method-assign]
    client = _run_in_sdk(executor.execute, make_sdk_task())
    (update,) = client.updates
    assert update.status == "COMPLETED"
    assert update.output_data == {"result": {}}  # exactly perago's result, nothing added
    (entry,) = [log.log for log in update.logs]
    lines = entry.split("; ")
    assert lines[0] == "attempt started (retry 0)"
    assert lines[1].startswith("phase body done in ")
    assert lines[2].startswith("attempt COMPLETED in ")
    assert len(lines) == 3
    assert {log.task_id for log in update.logs} == {"task-9"}
    time.sleep(0.5)  # the flush thread's ticks come and go
    assert sent == []


def test_one_flush_thread_per_observer_started_by_the_first_attempt() -> None:
    observer = ConductorProgress(FakeConductor())
    assert observer._thread is None  # nothing runs before the first attempt
    try:
        for index in range(3):
            observer.attempt_started(make_attempt(task_id=f"t{index}", execution_id=str(index)))
        thread = observer._thread
        assert thread is not None
        assert thread.is_alive()
        assert thread.daemon
        assert thread.name == "perago-conductor-progress"
    finally:
        observer.close()
    assert not thread.is_alive()
