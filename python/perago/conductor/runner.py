"""conductor-python's poll loop for one task queue, behind the few calls a perago worker makes.

The SDK's ``TaskRunner`` polls, runs :class:`PeragoSdkWorker`'s ``execute`` on its thread pool,
reports results and extends leases; :class:`TaskRunnerHandle` starts it, polls once per call,
stops polling (from a signal handler), and drains it. The runtime never sees the runner itself.

Two of the runner's private attributes have no public equivalent in conductor-python 2.0; each
is touched in exactly one function below, with the reason, and
``tests/unit/conductor/test_sdk_privates.py`` fails when the installed SDK changes either one.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import ExitStack
from typing import Any

from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.event.task_runner_events import TaskUpdateFailure
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.worker.worker_interface import WorkerInterface

ExecuteFn = Callable[[Task], TaskResult]

# How long ``poll_once`` waits on busy slots before it hands the turn back (a stop request is
# seen within this).
BUSY_WAIT_S = 0.1


class PeragoSdkWorker(WorkerInterface):  # type: ignore[misc]
    """The SDK worker object: one queue, one thread, lease extension on, no SDK registration."""

    def __init__(self, task_def_name: str, worker_id: str, execute_fn: ExecuteFn) -> None:
        super().__init__(task_def_name)
        self._worker_id = worker_id
        self._execute_fn = execute_fn
        self.thread_count = 1
        self.register_task_def = False
        self.register_schema = False
        self.lease_extend_enabled = True
        self.paused = False
        self.poll_interval = 100

    def get_identity(self) -> str:
        return self._worker_id

    def execute(self, task: Task) -> TaskResult:
        return self._execute_fn(task)


def _report_without_next_task(runner: Any) -> None:
    """Make the runner report results through ``POST /tasks`` (v1) from now on.

    SDK private ``TaskRunner._use_update_v2``. The default update-v2 endpoint answers a result
    with the next task of the queue, already assigned to this worker, and the runner runs it at
    once; while draining that task could be neither run nor handed back, so it would sit polled
    until its response timeout. conductor-python 2.0 has no public switch: the flag is what its
    own fallback (a server without v2) sets, and the runner reads it before every update.
    """
    runner._use_update_v2 = False


def _submitted_futures(runner: Any) -> list[Future[None]]:
    """The futures of every polled task the runner's pool has not finished (execute + update).

    SDK private ``TaskRunner._running_tasks``. Draining must wait for them: the public ``stop``
    only ends ``run()``'s loop, and the runner's own cleanup shuts its pool down with
    ``cancel_futures=True``, which would drop a task polled but not yet started (it would sit
    polled until its response timeout). A future resolves after the task's result update.
    """
    return list(runner._running_tasks)


class TaskRunnerHandle:
    """One conductor-python ``TaskRunner`` over one :class:`PeragoSdkWorker`.

    ``on_update_lost(task_id)`` is called when the SDK gives up reporting a result (its
    ``TaskUpdateFailure`` event, after its own retries).
    """

    def __init__(
        self,
        task_name: str,
        worker_id: str,
        execute_fn: ExecuteFn,
        *,
        configuration: Configuration,
        thread_count: int = 1,
        on_update_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.worker = PeragoSdkWorker(task_name, worker_id, execute_fn)
        self.worker.thread_count = thread_count
        self._runner = TaskRunner(self.worker, configuration=configuration)
        # The runner's context manager is its public cleanup: pool shut down, HTTP client closed,
        # leases untracked.
        self._release = ExitStack()
        self._release.enter_context(self._runner)
        if on_update_lost is not None:
            self._runner.event_dispatcher.register(
                TaskUpdateFailure, lambda event: on_update_lost(str(event.task_id))
            )
        # TaskRunner resolves env overrides in its constructor; re-pin what perago relies on.
        self.worker.lease_extend_enabled = True
        self.worker.paused = False

    def poll_once(self) -> None:
        """One turn of the SDK's loop: reap finished tasks, poll for free threads, submit.

        While every slot is taken the SDK's turn sleeps 1 ms and returns, so its loop wakes a
        thousand times a second for as long as tasks run (with update v2 a slot chains task
        after task), each wake taking the GIL from the attempt. Here the turn first waits for a
        slot's future to end, at most ``BUSY_WAIT_S``.
        """
        busy = [future for future in _submitted_futures(self._runner) if not future.done()]
        if len(busy) >= self.worker.thread_count:
            wait(busy, timeout=BUSY_WAIT_S, return_when=FIRST_COMPLETED)
        self._runner.run_once()

    def stop_polling(self) -> None:
        """Poll no more and report results without taking the next task.

        Only sets flags, so a signal handler may call it."""
        self.worker.paused = True
        _report_without_next_task(self._runner)

    def in_flight(self) -> int:
        """How many polled tasks are still running or reporting their result."""
        return sum(1 for future in _submitted_futures(self._runner) if not future.done())

    def drain(self) -> None:
        """Wait for every polled task to run and be reported, then release the runner.

        Call after :meth:`stop_polling`, from the thread that called :meth:`poll_once`.
        """
        for future in _submitted_futures(self._runner):
            future.result()
        self.close()

    def close(self) -> None:
        """Stop the runner and release its threads and HTTP client (without waiting for tasks
        that did not start)."""
        self._runner.stop()
        self._release.close()
