"""One worker process (or, in thread mode, one process with N threads) polling one task queue.

The conductor-python ``TaskRunner`` owns polling, result updates and lease extension; perago owns
what happens inside ``execute``: mapping the task, running the attempt, per-attempt JSONL events,
and the local deadline (``timeoutSeconds``). In process mode a watchdog reports an overdue attempt
FAILED and ends the process (the supervisor restarts the slot at once), so a hung body never holds
its lease. Shutdown (SIGTERM/SIGINT) stops polling, hands any newly received task back to the
queue, lets the running attempt finish, and exits 0.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from loguru import logger

from perago.attempt import (
    assert_current_attempt_snapshot,
    run_workspace_free_task_attempt,
    run_workspace_task_attempt,
)
from perago.attempt_types import AttemptStats, TaskAttempt
from perago.conductor_adapter import (
    ConductorClient,
    ConductorTaskError,
    PeragoSdkWorker,
    describe_conductor_error,
    requeue_task_result,
    result_to_task_result,
    task_to_attempt,
)
from perago.config import RuntimeConfig, current_worker_id, load_runtime_config
from perago.gc import collect_attempt_workspaces
from perago.publication import faults
from perago.publication.guard import BranchMoveGuard
from perago.result import RuntimeTaskResult, failed_result, result_for_exception
from perago.runtime_logging import install_jsonl_sink
from perago.task_definition import TaskDefinition, load_module_task
from perago.worker_protocol import EXIT_DEADLINE, EXIT_OK, EXIT_STARTUP_FAILED, STATUS_FD_ENV

_SDK_OVERRIDE_PREFIXES = ("conductor_worker", "CONDUCTOR_WORKER", "conductor.worker")
# Completed attempts whose publication waits for the SDK's update to go through (a few at most:
# one per polling thread).
_MAX_AWAITING_CONFIRMATION = 64


@dataclass(frozen=True)
class WorkerRuntime:
    """What ``prepare_worker_runtime`` set up for this process."""

    worker_id: str
    log_file: Path
    swept_workspaces: tuple[Path, ...] = ()


def prepare_worker_runtime(
    *, config: RuntimeConfig, module_target: str, env: Mapping[str, str]
) -> WorkerRuntime:
    """Resolve this process's worker id, install its JSONL sink, sweep its dead predecessors.

    A restarted slot keeps its worker id, so directories marked with that id whose owner pid is
    dead belong to an earlier process of this slot and are removed right away (no TTL wait).
    """
    worker_id = current_worker_id(config, env)
    log_file = install_jsonl_sink(
        log_root=config.log_root,
        module_target=module_target,
        worker_id=worker_id,
        max_bytes=config.log_file_max_size,
        retention=config.log_retention,
    )
    report = collect_attempt_workspaces(
        config.workspace_root,
        ttl=config.workspace_gc_ttl * 0,
        only_owner_worker_id=worker_id,
    )
    logger.bind(module_target=module_target, log_file=str(log_file)).info("worker process started")
    return WorkerRuntime(worker_id, log_file, tuple(report.removed))


@dataclass
class _ActiveAttempt:
    attempt: TaskAttempt
    started: float
    deadline: float | None
    stats: AttemptStats = field(default_factory=AttemptStats)
    guard: BranchMoveGuard = field(default_factory=BranchMoveGuard)
    finished: bool = False
    expired: bool = False


class DeadlineWatchdog:
    """Watches running attempts; the first of (finish, deadline) claims the attempt's outcome."""

    def __init__(self, on_expired: Callable[[_ActiveAttempt], None], *, tick: float = 0.1) -> None:
        self._on_expired = on_expired
        self._tick = tick
        self._lock = threading.Lock()
        self._active: dict[str, _ActiveAttempt] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perago-deadline", daemon=True)
        self._thread.start()

    def begin(self, attempt: TaskAttempt, timeout_seconds: int | None) -> _ActiveAttempt:
        now = time.monotonic()
        deadline = now + timeout_seconds if timeout_seconds and timeout_seconds > 0 else None
        active = _ActiveAttempt(attempt, now, deadline)
        with self._lock:
            self._active[attempt.task_id] = active
        return active

    def finish(self, active: _ActiveAttempt) -> bool:
        """True when the attempt finished in time (its own result must be reported)."""
        with self._lock:
            self._active.pop(active.attempt.task_id, None)
            if active.expired:
                return False
            active.finished = True
            return True

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            overdue: list[_ActiveAttempt] = []
            with self._lock:
                for active in list(self._active.values()):
                    if active.deadline is not None and now >= active.deadline:
                        active.expired = True
                        self._active.pop(active.attempt.task_id, None)
                        overdue.append(active)
            for active in overdue:
                self._on_expired(active)

    def stop(self) -> None:
        self._stop.set()


def _attempt_fields(attempt: TaskAttempt) -> dict[str, Any]:
    return {
        "task_id": attempt.task_id,
        "workflow_instance_id": attempt.workflow_instance_id,
        "retry_count": attempt.retry_count,
        "execution_id": attempt.execution_id,
        "task_def_name": attempt.task_def_name,
    }


def log_attempt_finished(
    active: _ActiveAttempt,
    result: RuntimeTaskResult,
    *,
    exception_type: str | None = None,
    exception_message: str | None = None,
    exception_traceback: str | None = None,
) -> None:
    fields = _attempt_fields(active.attempt)
    fields["status"] = result.status
    fields["duration_ms"] = round((time.monotonic() - active.started) * 1000.0, 3)
    fields.update(active.stats.as_log_fields())
    detail = result.failure_detail
    if result.status != "COMPLETED":
        fields["reason"] = result.reason_for_incompletion
        fields["exception_type"] = exception_type or (detail.exception_type if detail else None)
        fields["exception_message"] = exception_message or (detail.message if detail else None)
        fields["traceback"] = exception_traceback or (detail.traceback if detail else None)
    level = "INFO" if result.status == "COMPLETED" else "WARNING"
    logger.bind(**fields).log(level, "attempt finished")


class AttemptExecutor:
    """Runs one polled task end to end and returns the SDK result to report."""

    def __init__(
        self,
        *,
        task: TaskDefinition,
        config: RuntimeConfig,
        worker_id: str,
        client: ConductorClient,
        taskdef_timeout_seconds: int | None,
        exit_on_deadline: bool,
        workspace_runtime: Any = None,
    ) -> None:
        self.task = task
        self.config = config
        self.worker_id = worker_id
        self.client = client
        self.workspace_runtime = workspace_runtime
        self.taskdef_timeout_seconds = taskdef_timeout_seconds
        self.exit_on_deadline = exit_on_deadline
        self.draining = threading.Event()
        self.watchdog = DeadlineWatchdog(self._deadline_expired)
        self._report_lock = threading.Lock()
        self._awaiting_confirmation: dict[str, _ActiveAttempt] = {}
        self._confirmation_lock = threading.Lock()

    def run_attempt(
        self, attempt: TaskAttempt, stats: AttemptStats, guard: BranchMoveGuard | None = None
    ) -> RuntimeTaskResult:
        limit = self.config.failure_reason_max_length
        if not self.task.has_workspace:
            return run_workspace_free_task_attempt(
                self.task, attempt.input_data, failure_reason_max_length=limit, stats=stats
            )
        runtime = self.workspace_runtime
        if runtime is None:
            return failed_result(
                "RuntimeConfigError: LakeFS config is required for workspace tasks",
                max_length=limit,
            )
        return run_workspace_task_attempt(
            self.task,
            attempt.input_data,
            attempt,
            self.config.workspace_root,
            download_workspace=runtime.download_workspace,
            load_current_attempt=self.client.reload_attempt,
            stage_workspace=runtime.stage_workspace,
            publish_workspace=runtime.publish_workspace,
            cleanup_staging=runtime.cleanup_staging,
            complete_noop_workspace=runtime.complete_noop_workspace,
            owner_worker_id=self.worker_id,
            execution_id=attempt.execution_id,
            failure_reason_max_length=limit,
            stats=stats,
            guard=guard,
        )

    def execute(self, sdk_task: Any) -> Any:
        if self.draining.is_set():
            # Never start new work while draining: give the task straight back to the queue.
            return requeue_task_result(sdk_task, worker_id=self.worker_id)
        try:
            attempt = task_to_attempt(sdk_task, execution_id=uuid.uuid4().hex)
        except ConductorTaskError as exc:
            logger.bind(task_id=getattr(sdk_task, "task_id", None), error=str(exc)).error(
                "received a malformed Conductor task"
            )
            raise
        timeout = attempt.timeout_seconds
        if timeout is None:
            timeout = self.taskdef_timeout_seconds
        logger.bind(**_attempt_fields(attempt), timeout_seconds=timeout).info("attempt started")
        active = self.watchdog.begin(attempt, timeout)
        try:
            result = self.run_attempt(attempt, active.stats, active.guard)
        except Exception as exc:  # the attempt core never raises; this guards the adapter itself
            result = result_for_exception(exc, max_length=self.config.failure_reason_max_length)
        faults.reach("worker.before_report", task_id=attempt.task_id)
        if not self.watchdog.finish(active):
            # The deadline already reported this attempt FAILED; Conductor ignores a late update.
            return result_to_task_result(
                attempt, self._deadline_result(active), worker_id=self.worker_id
            )
        log_attempt_finished(active, result)
        if result.status == "COMPLETED" and active.guard.published is not None:
            with self._confirmation_lock:
                self._awaiting_confirmation[attempt.task_id] = active
                while len(self._awaiting_confirmation) > _MAX_AWAITING_CONFIRMATION:
                    self._awaiting_confirmation.pop(next(iter(self._awaiting_confirmation)))
        return result_to_task_result(attempt, result, worker_id=self.worker_id)

    def completion_lost(self, task_id: str) -> None:
        """The SDK gave up reporting a result: undo our publication unless Conductor has it.

        Without this a task whose completion never arrives keeps its change on the branch while
        Conductor times it out (and, with no retries left, fails the workflow).
        """
        with self._confirmation_lock:
            active = self._awaiting_confirmation.pop(task_id, None)
        if active is None or active.guard.published is None:
            return
        if self._undo_publication(active, "its completion was lost"):
            # Best effort: a FAILED that lands makes Conductor ignore a late COMPLETED for a
            # publication that is no longer there.
            result = failed_result(
                "StaleAttemptError: the completion could not be reported; publication undone",
                max_length=self.config.failure_reason_max_length,
            )
            try:
                self.client.update_task(
                    result_to_task_result(active.attempt, result, worker_id=self.worker_id)
                )
            except Exception as exc:
                logger.bind(**_attempt_fields(active.attempt)).warning(
                    "could not report the undone attempt FAILED: {}", describe_conductor_error(exc)
                )

    def _undo_publication(self, active: _ActiveAttempt, why: str) -> bool:
        """Undo this attempt's publication, only while Conductor still has the attempt current.

        Once it is not (timed out, completed, re-polled) a retry may be replacing the commit at
        this very moment, or Conductor accepted it: then the retry or ``perago gc`` converges.
        """
        publication = active.guard.published
        if publication is None or self.workspace_runtime is None:
            return False
        fields = _attempt_fields(active.attempt)
        try:
            assert_current_attempt_snapshot(
                active.attempt, self.client.reload_attempt(active.attempt)
            )
        except Exception as exc:
            logger.bind(**fields, commit=publication.commit).warning(
                "attempt ended without completion ({}); its publication stays for the next "
                "attempt or perago gc: {}",
                why,
                describe_conductor_error(exc),
            )
            return False
        try:
            with active.guard.moving(undo=True):
                outcome = self.workspace_runtime.undo_publication(publication)
            active.guard.record(None)
        except Exception as exc:
            logger.bind(**fields, commit=publication.commit, error=str(exc)).error(
                "could not undo the publication of an attempt that ended without completion"
            )
            return False
        logger.bind(**fields, commit=publication.commit).warning(
            "attempt ended without completion ({}): {}", why, outcome
        )
        return True

    def _deadline_result(self, active: _ActiveAttempt) -> RuntimeTaskResult:
        timeout = active.deadline - active.started if active.deadline is not None else 0
        return failed_result(
            f"TimeoutError: attempt exceeded timeoutSeconds={round(timeout)} and was stopped",
            max_length=self.config.failure_reason_max_length,
        )

    def _deadline_expired(self, active: _ActiveAttempt) -> None:
        result = self._deadline_result(active)
        # Never end the process in the middle of a branch move: wait for the move in flight (each
        # one has a request timeout), refuse further ones, then undo what this attempt published.
        active.guard.close("attempt exceeded its timeoutSeconds", wait_seconds=None)
        self._undo_publication(active, "it exceeded its timeoutSeconds")
        with self._report_lock:
            try:
                self.client.update_task(
                    result_to_task_result(active.attempt, result, worker_id=self.worker_id)
                )
            except Exception as exc:
                logger.bind(
                    **_attempt_fields(active.attempt), error=describe_conductor_error(exc)
                ).error("failed to report an overdue attempt")
            log_attempt_finished(
                active,
                result,
                exception_type="TimeoutError",
                exception_message=result.reason_for_incompletion,
                exception_traceback="".join(traceback.format_stack(limit=1)),
            )
        if self.exit_on_deadline:
            # The body cannot be interrupted safely in-process; ending the process is the
            # termination. The supervisor restarts this slot immediately and GC removes the
            # attempt directory of this (then dead) pid.
            logger.complete()
            os._exit(EXIT_DEADLINE)


def _pin_sdk_worker_settings() -> list[str]:
    """Drop SDK worker env overrides that could silently change threads, leases or polling."""
    dropped = [key for key in os.environ if key.startswith(_SDK_OVERRIDE_PREFIXES)]
    for key in dropped:
        os.environ.pop(key, None)
    return dropped


def _build_workspace_runtime(
    task: TaskDefinition, config: RuntimeConfig, client: ConductorClient
) -> Any:
    if not task.has_workspace:
        return None
    if config.lakefs is None:
        return None
    from perago.lakefs_runtime import LakeFSWorkspaceRuntime  # only workspace tasks need lakeFS

    budget = task.controls.publish_budget
    spec = task.workspace
    if spec is not None and spec.read_only:
        budget = None
    return LakeFSWorkspaceRuntime.from_config(
        config.lakefs,
        publish_budget=budget,
        task_states=client,
        control_timeout_seconds=config.control_timeout.total_seconds(),
    )


class _StatusChannel:
    """Tells the supervisor 'ready' or 'fatal: <cause>' through an inherited pipe."""

    def __init__(self, env: Mapping[str, str]) -> None:
        raw = env.get(STATUS_FD_ENV, "")
        self._fd = int(raw) if raw.isdigit() else None

    def send(self, line: str) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, (line.replace("\n", " ") + "\n").encode("utf-8"))
        except OSError:
            self._fd = None


def run_worker(module_target: str, *, thread_count: int = 1, exit_on_deadline: bool = True) -> int:
    """Run one polling worker until SIGTERM/SIGINT; returns the process exit code."""
    status = _StatusChannel(os.environ)
    # A stop request may arrive while the task module still imports: remember it, exit cleanly.
    early_stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: early_stop.set())
    try:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        config = load_runtime_config(module_target)
        runtime = prepare_worker_runtime(config=config, module_target=module_target, env=os.environ)
        task = load_module_task(module_target)
        if config.conductor is None:
            raise RuntimeError("CONDUCTOR_SERVER_URL is required for perago start")
        dropped = _pin_sdk_worker_settings()
        if dropped:
            logger.bind(variables=sorted(dropped)).warning(
                "ignoring conductor-python worker overrides; perago manages these settings"
            )
        client = ConductorClient(
            config.conductor.server_url, timeout_seconds=config.control_timeout.total_seconds()
        )
        registered = client.get_taskdef(task.name) or {}
        timeout = registered.get("timeoutSeconds")
        executor = AttemptExecutor(
            task=task,
            config=config,
            worker_id=runtime.worker_id,
            client=client,
            taskdef_timeout_seconds=timeout if isinstance(timeout, int) else None,
            exit_on_deadline=exit_on_deadline,
            workspace_runtime=_build_workspace_runtime(task, config, client),
        )
    except Exception as exc:
        cause = f"{type(exc).__name__}: {exc}"
        status.send(f"fatal: {cause}")
        print(f"error: worker failed to start: {cause}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    return _poll_until_stopped(executor, client, task, runtime, thread_count, status, early_stop)


def _poll_until_stopped(  # noqa: PLR0917 - one private call site
    executor: AttemptExecutor,
    client: ConductorClient,
    task: TaskDefinition,
    runtime: WorkerRuntime,
    thread_count: int,
    status: _StatusChannel,
    early_stop: threading.Event,
) -> int:
    from conductor.client.automator.task_runner import TaskRunner
    from conductor.client.event.task_runner_events import TaskUpdateFailure

    sdk_worker = PeragoSdkWorker(task.name, runtime.worker_id, executor.execute)
    sdk_worker.thread_count = thread_count
    runner = TaskRunner(sdk_worker, configuration=client.configuration)
    runner.event_dispatcher.register(
        TaskUpdateFailure, lambda event: executor.completion_lost(str(event.task_id))
    )
    # TaskRunner resolves env overrides in its constructor; re-pin what perago relies on.
    sdk_worker.lease_extend_enabled = True
    sdk_worker.paused = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        # Only flags here: logging from a signal handler could deadlock on the sink's lock.
        executor.draining.set()
        sdk_worker.paused = True
        # update-v2 answers a result with the next task of the queue; while draining that task
        # could be neither run nor returned, so report through v1 (no next task) from now on.
        runner._use_update_v2 = False

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if early_stop.is_set():
        request_stop(signal.SIGTERM, None)
    logger.bind(task_def_name=task.name, thread_count=thread_count).info("worker polling")
    status.send("ready")
    while not executor.draining.is_set():
        runner.run_once()
    logger.info("worker draining")
    # Drain: the SDK's pool finishes the running attempt and its update; nothing new starts.
    for future in list(runner._running_tasks):
        future.result()
    runner.stop()
    runner._cleanup()
    executor.watchdog.stop()
    logger.info("worker stopped")
    logger.complete()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("error: usage: python -m perago.worker MODULE", file=sys.stderr)
        return 2
    return run_worker(args[0])


if __name__ == "__main__":
    raise SystemExit(main())
