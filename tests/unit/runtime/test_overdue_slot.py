"""An attempt reported FAILED at its deadline keeps its slot busy until its body returns.

Thread mode cannot stop a body in-process (``exit_on_deadline=False``): the watchdog reports the
attempt and tells the observers it ended, but the thread is still taken. The busy gauge and
``perago status`` must go on counting that slot until the body returns. The body here waits on a
gate the test opens only after the deadline was reported, so the order is fixed, not timed.
The collaborators are small fakes of perago's own interfaces (the Conductor client).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from pydantic import BaseModel

from perago.attempt.identity import TaskAttempt
from perago.definition.decorator import TaskDefinition
from perago.host.secure_files import remove_leftover_temporaries, replace_file
from perago.runtime.observers import AttemptObservers, FinishedAttempt, NullObserver
from perago.runtime.status_board import OVERDUE_PHASE, StatusBoard, ThreadSlots
from perago.runtime.worker import AttemptExecutor
from perago.telemetry.attempt_observer import AttemptTelemetry
from tests.unit.conftest import make_sdk_task, scratch_runtime_config


class Empty(BaseModel):
    pass


@dataclass
class Client:
    updates: list[Any] = field(default_factory=list)

    def update_task(self, result: Any) -> None:
        self.updates.append(result)

    def reload_attempt(self, attempt: TaskAttempt) -> TaskAttempt:
        return attempt


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, bool]] = []
        self.finished = threading.Event()
        self.released = threading.Event()

    def attempt_finished(self, finished: FinishedAttempt) -> None:
        self.events.append(("finished", finished.attempt.task_id, finished.slot_still_busy))
        self.finished.set()

    def slot_released(self, attempt: TaskAttempt) -> None:
        self.events.append(("released", attempt.task_id, False))
        self.released.set()


def _telemetry(*, capacity: int) -> tuple[AttemptTelemetry, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    observer = AttemptTelemetry(
        task_name="t", worker_id="w1", meter=meter, tracer=None, capacity=capacity
    )
    return observer, reader


def _gauges(reader: InMemoryMetricReader) -> dict[str, float]:
    data = reader.get_metrics_data()
    assert data is not None
    values: dict[str, float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in ("runtime.busy_slots", "runtime.idle_slots"):
                    (point,) = metric.data.data_points
                    assert isinstance(point, NumberDataPoint)
                    values[metric.name] = point.value
    return values


def test_a_deadline_in_thread_mode_frees_the_slot_only_when_the_body_returns(
    tmp_path: Path,
) -> None:
    gate = threading.Event()

    def body(params: Empty) -> Empty:
        assert gate.wait(60), "the test never opened the gate"
        return Empty()

    config = scratch_runtime_config(tmp_path)
    task = TaskDefinition(
        name="t", owner_email="t@example.com", fn=body, params_model=Empty, output_model=Empty
    )
    telemetry, reader = _telemetry(capacity=2)
    board = StatusBoard(tmp_path / "status.json", module="mod", mode="thread")
    recorder = Recorder()
    client = Client()
    executor = AttemptExecutor(
        task=task,
        config=config,
        worker_id="w1",
        client=client,  # type: ignore[arg-type]
        taskdef_timeout_seconds=1,
        exit_on_deadline=False,
        # The recorder last: when it hears of an event, the others have handled it.
        observers=AttemptObservers([telemetry, ThreadSlots(board, "w1", 2), recorder]),
    )
    try:
        returned: list[Any] = []
        polled = make_sdk_task("task-7", "wf-7")
        runner = threading.Thread(target=lambda: returned.append(executor.execute(polled)))
        runner.start()
        assert recorder.finished.wait(30), "the deadline never reported the attempt"

        # Reported FAILED, observers told, yet the body still holds its thread.
        assert [u.status for u in client.updates] == ["FAILED"]
        assert recorder.events == [("finished", "task-7", True)]
        assert _gauges(reader) == {"runtime.busy_slots": 1, "runtime.idle_slots": 1}
        slots = json.loads(board.path.read_text())["slots"]
        assert [slot.get("phase") for slot in slots] == [OVERDUE_PHASE, None]
        assert slots[0]["attempt"]["task_id"] == "task-7"

        gate.set()
        runner.join(30)
        assert not runner.is_alive()
        assert recorder.events == [("finished", "task-7", True), ("released", "task-7", False)]
        assert _gauges(reader) == {"runtime.busy_slots": 0, "runtime.idle_slots": 2}
        slots = json.loads(board.path.read_text())["slots"]
        assert [slot.get("attempt") for slot in slots] == [None, None]
        (result,) = returned
        assert result.status == "FAILED"  # the late body's own result is never reported
    finally:
        gate.set()
        executor.watchdog.stop()


def test_an_attempt_finishing_in_time_is_released_with_its_end() -> None:
    telemetry, reader = _telemetry(capacity=1)
    from perago.attempt.identity import AttemptStats
    from perago.attempt.result import completed_result
    from tests.unit.conftest import make_attempt

    attempt = make_attempt()
    observers = AttemptObservers([telemetry])
    observers.attempt_started(attempt)
    assert _gauges(reader)["runtime.busy_slots"] == 1
    observers.attempt_finished(
        FinishedAttempt(attempt, completed_result({"result": {}}), AttemptStats(), 0.1)
    )
    assert _gauges(reader)["runtime.busy_slots"] == 0
    observers.slot_released(attempt)  # not overdue: nothing more to release
    assert _gauges(reader)["runtime.busy_slots"] == 0


def test_leftover_temporary_files_of_killed_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / ".perago-status.host.json"
    replace_file(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # none left by a write
    old = tmp_path / f".{target.name}.0123456789abcdef.tmp"
    fresh = tmp_path / f".{target.name}.fedcba9876543210.tmp"
    unrelated = tmp_path / ".other.json.0123456789abcdef.tmp"
    for path in (old, fresh, unrelated):
        path.write_text("partial")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(unrelated, (hour_ago, hour_ago))
    # A fresh one may belong to a writer between its write and its rename: left alone.
    assert remove_leftover_temporaries(target) == [old]
    StatusBoard(target, module="m", mode="thread")  # the board sweeps on start as well
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, fresh.name, unrelated.name]
    )
    assert target.read_text() == "{}"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
