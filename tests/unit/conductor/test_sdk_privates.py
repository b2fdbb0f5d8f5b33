"""The conductor-python privates ``perago.conductor.runner`` relies on still do what it needs.

``TaskRunnerHandle`` touches two private attributes of the SDK's ``TaskRunner``
(``_use_update_v2``, ``_running_tasks``; the reasons are in ``runner.py``). These tests run the
installed SDK's real ``TaskRunner`` — only its ``task_client`` (the HTTP API object, a public
attribute) records calls instead of sending them — so they fail when an SDK upgrade renames
either attribute or stops honouring it. The same drain against a real Conductor is
``tests/integration/test_conductor_runner.py``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus

from perago.conductor.runner import PeragoSdkWorker, TaskRunnerHandle

TASK = "sdk-privates"
UNREACHABLE = Configuration(server_api_url="http://127.0.0.1:9/api")


class RecordingTaskClient:
    """Stands in for the runner's ``TaskResourceApi``: a queue of tasks, and every update."""

    def __init__(self, task_ids: list[str]) -> None:
        self.queue = [Task(task_id=t, workflow_instance_id=f"wf-{t}") for t in task_ids]
        self.updates: list[tuple[str, str]] = []

    def _next(self) -> Task | None:
        return self.queue.pop(0) if self.queue else None

    def batch_poll(self, tasktype: str, **params: Any) -> list[Task]:
        assert tasktype == TASK
        found = self._next()
        return [found] if found is not None else []

    def update_task_v2(self, body: TaskResult) -> Task | None:
        self.updates.append(("v2", body.task_id))
        return self._next()  # the server hands this worker its next task with the answer

    def update_task(self, body: TaskResult) -> str:
        self.updates.append(("v1", body.task_id))
        return "ok"


def _completed(task: Task) -> TaskResult:
    return TaskResult(
        task_id=task.task_id,
        workflow_instance_id=task.workflow_instance_id,
        worker_id="w",
        status=TaskResultStatus.COMPLETED,
    )


def _wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _handle(execute: Any, client: RecordingTaskClient) -> TaskRunnerHandle:
    handle = TaskRunnerHandle(TASK, "w", execute, configuration=UNREACHABLE)
    handle._runner.task_client = client
    return handle


def test_the_runner_still_has_both_privates_with_their_defaults() -> None:
    with TaskRunner(PeragoSdkWorker(TASK, "w", _completed), configuration=UNREACHABLE) as runner:
        assert runner._use_update_v2 is True
        assert isinstance(runner._running_tasks, set)
        assert runner._running_tasks == set()


def test_update_v2_hands_the_next_task_over_unless_perago_clears_the_flag() -> None:
    """The reason for ``_use_update_v2``: a result reported through v2 comes back with the next
    task, which the runner runs at once; cleared, the drain reports through v1 and leaves it."""
    ran: list[str] = []
    client = RecordingTaskClient(["a", "b"])

    def run(task: Task) -> TaskResult:
        ran.append(task.task_id)
        return _completed(task)

    handle = _handle(run, client)
    handle.poll_once()
    _wait_for(lambda: len(client.updates) == 2 and handle.in_flight() == 0)
    handle.stop_polling()
    handle.drain()
    assert ran == ["a", "b"]  # without the flag cleared in time, v2 took "b" with "a"'s result
    assert client.updates == [("v2", "a"), ("v2", "b")]

    ran.clear()
    client = RecordingTaskClient(["a", "b"])

    def run_then_stop(task: Task) -> TaskResult:
        ran.append(task.task_id)
        handle.stop_polling()  # SIGTERM during the attempt
        return _completed(task)

    handle = _handle(run_then_stop, client)
    handle.poll_once()
    handle.drain()
    assert ran == ["a"]
    assert client.updates == [("v1", "a")]
    assert [task.task_id for task in client.queue] == ["b"]  # still queued, never assigned


def test_drain_waits_for_the_running_task_and_its_update() -> None:
    """The reason for ``_running_tasks``: draining waits for what the pool still runs."""
    release = threading.Event()
    started = threading.Event()
    client = RecordingTaskClient(["a"])

    def run(task: Task) -> TaskResult:
        started.set()
        assert release.wait(30)
        return _completed(task)

    handle = _handle(run, client)
    handle.poll_once()
    assert started.wait(30)
    assert handle.in_flight() == 1
    handle.stop_polling()
    drained = threading.Event()

    def drain() -> None:
        handle.drain()
        drained.set()

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    time.sleep(0.3)
    assert not drained.is_set()
    assert client.updates == []
    release.set()
    drainer.join(30)
    assert drained.is_set()
    assert client.updates == [("v1", "a")]
    assert handle.in_flight() == 0


def test_a_lost_update_is_reported_by_task_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """``on_update_lost`` hears the SDK's ``TaskUpdateFailure`` (after its own retries)."""
    monkeypatch.setattr(time, "sleep", lambda _seconds: None)  # the SDK's 10/20/30 s backoff
    lost: list[str] = []

    class FailingTaskClient(RecordingTaskClient):
        def update_task_v2(self, body: TaskResult) -> Task | None:
            raise OSError("connection refused")

    client = FailingTaskClient(["a"])
    handle = TaskRunnerHandle(
        TASK, "w", _completed, configuration=UNREACHABLE, on_update_lost=lost.append
    )
    handle._runner.task_client = client
    handle.poll_once()
    _wait_for(lambda: handle.in_flight() == 0)
    handle.stop_polling()
    handle.drain()
    assert lost == ["a"]


def test_a_turn_with_every_slot_busy_waits_for_a_slot_instead_of_spinning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK's own turn sleeps 1 ms and returns while the slot is busy (a thousand wake-ups a
    second); perago's turn waits on the slot's future. The wait is made long here, so a turn
    that returns at all before the gate opens, or runs the SDK's turn, would be the spin."""
    import perago.conductor.runner as runner_module

    monkeypatch.setattr(runner_module, "BUSY_WAIT_S", 60.0)
    release = threading.Event()
    started = threading.Event()
    client = RecordingTaskClient(["a", "b"])

    def run(task: Task) -> TaskResult:
        if task.task_id == "a":
            started.set()
            assert release.wait(30)
        return _completed(task)

    handle = _handle(run, client)
    handle.poll_once()  # polls "a"
    assert started.wait(30)
    sdk_turns: list[int] = []
    real_turn = handle._runner.run_once

    def counted_turn() -> None:
        sdk_turns.append(handle.in_flight())
        real_turn()

    monkeypatch.setattr(handle._runner, "run_once", counted_turn)
    turned = threading.Event()

    def one_turn() -> None:
        handle.poll_once()
        turned.set()

    turner = threading.Thread(target=one_turn, daemon=True)
    turner.start()
    assert not turned.wait(0.3)
    assert sdk_turns == []  # no SDK turn while the slot is busy
    release.set()
    assert turned.wait(30)  # woken by the slot's end, long before the wait's 60 s
    assert sdk_turns == [0]
    handle.stop_polling()
    handle.drain()
    assert [update[1] for update in client.updates][:2] == ["a", "b"]
