"""One worker process (or, in thread mode, one process with N threads) polling one task queue.

The conductor-python ``TaskRunner`` owns polling, result updates and lease extension; perago owns
what happens inside ``execute``: mapping the task, running the attempt, per-attempt JSONL events,
and the local deadline (``timeoutSeconds``). In process mode a watchdog reports an overdue attempt
FAILED and ends the process (the supervisor restarts the slot at once), so a hung body never holds
its lease. Shutdown (SIGTERM/SIGINT) stops polling, hands any newly received task back to the
queue, lets the running attempt finish, and exits 0. A supervised worker dies with its
supervisor (``ParentGuard``), tells it which attempt runs (a death is blamed on that task) and
fails a quarantined task without running it (``_AttemptLifecycle``).
"""

from __future__ import annotations

import ctypes
import os
import select
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
from typing import TYPE_CHECKING, Any

from loguru import logger

from perago.attempt import faults
from perago.attempt.core import (
    assert_current_attempt_snapshot,
    run_workspace_free_task_attempt,
    run_workspace_task_attempt,
)
from perago.attempt.guard import BranchMoveGuard
from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.attempt.result import (
    RuntimeTaskResult,
    failed_result,
    result_for_exception,
    terminal_failed_result,
)
from perago.conductor.client import ConductorClient, describe_conductor_error
from perago.conductor.mapping import requeue_task_result, result_to_task_result, task_to_attempt
from perago.conductor.runner import TaskRunnerHandle
from perago.conductor.sdk_config import pin_sdk_worker_environment
from perago.config import (
    RuntimeConfig,
    body_environment_removals,
    current_worker_id,
    load_runtime_config,
)
from perago.definition.decorator import TaskDefinition, load_module_task
from perago.errors import ConductorTaskError
from perago.metrics.api import DiscardingMetricRecorder, MetricRecorder, TaskAttemptMetricContext
from perago.runtime.console import install_console_sink
from perago.runtime.console_stream import flush_consoles
from perago.runtime.logs import install_jsonl_sink
from perago.runtime.observers import AttemptObservers, FinishedAttempt
from perago.runtime.status_board import PhaseReporter, StatusBoard, ThreadSlots
from perago.runtime.worker_protocol import (
    EXIT_DEADLINE,
    EXIT_OK,
    EXIT_STARTUP_FAILED,
    QUARANTINE_AFTER_DEATHS,
    QUARANTINE_FILE_ENV,
    STATUS_DONE,
    STATUS_FATAL,
    STATUS_FD_ENV,
    STATUS_READY,
    SUPERVISOR_PID_ENV,
    QuarantineFile,
    quarantine_key,
    quarantine_reason,
    running_line,
)
from perago.runtime.workspace_gc import collect_attempt_workspaces

if TYPE_CHECKING:
    from perago.telemetry.worker_setup import WorkerTelemetry

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

    Attempt directories whose owner record names a process of this host, boot and pid namespace
    that is dead (an earlier process of this or another slot) are removed right away (no TTL
    wait): nobody will resume them. Worker ids are not compared (they repeat on every host of a
    shared root); an owner on another host is never judged here.
    """
    worker_id = current_worker_id(config, env)
    log_file = install_jsonl_sink(
        log_root=config.log_root,
        module_target=module_target,
        worker_id=worker_id,
        max_bytes=config.log_file_max_size,
        retention=config.log_retention,
    )
    install_console_sink(config.log_format, config.log_level)
    report = collect_attempt_workspaces(
        config.workspace_root, ttl=config.workspace_gc_ttl * 0, only_dead_owners=True
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
    # Set once an expired attempt was reported and its observers told (the watchdog's thread).
    reported: threading.Event = field(default_factory=threading.Event)


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
    if (published := published_ref(result)) is not None:
        fields["published_ref"] = published
    detail = result.failure_detail
    if result.status != "COMPLETED":
        fields["reason"] = result.reason_for_incompletion
        fields["exception_type"] = exception_type or (detail.exception_type if detail else None)
        fields["exception_message"] = exception_message or (detail.message if detail else None)
        fields["traceback"] = exception_traceback or (detail.traceback if detail else None)
    level = "INFO" if result.status == "COMPLETED" else "WARNING"
    logger.bind(**fields).log(level, "attempt finished")


def published_ref(result: RuntimeTaskResult) -> str | None:
    """The ref a completed workspace attempt's output names (its published commit)."""
    if result.status != "COMPLETED" or result.output is None:
        return None
    workspace = result.output.get("workspace")
    if isinstance(workspace, dict) and isinstance(workspace.get("ref"), str):
        return str(workspace["ref"])
    return None


def finished_attempt(
    active: _ActiveAttempt,
    result: RuntimeTaskResult,
    *,
    failure_class: str | None = None,
    slot_still_busy: bool = False,
) -> FinishedAttempt:
    """What the observers are told of an ended attempt."""
    if result.status != "COMPLETED" and failure_class is None:
        detail = result.failure_detail
        failure_class = detail.exception_type if detail is not None else "TaskFailed"
    return FinishedAttempt(
        attempt=active.attempt,
        result=result,
        stats=active.stats,
        seconds=time.monotonic() - active.started,
        published_ref=published_ref(result),
        failure_class=failure_class,
        slot_still_busy=slot_still_busy,
    )


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
        observers: AttemptObservers | None = None,
        metrics_recorder: MetricRecorder | None = None,
    ) -> None:
        self.task = task
        self.metrics_recorder = metrics_recorder
        self.observers = observers if observers is not None else AttemptObservers()
        self.config = config
        self.worker_id = worker_id
        self.client = client
        self.workspace_runtime = workspace_runtime
        self.taskdef_timeout_seconds = taskdef_timeout_seconds
        self.exit_on_deadline = exit_on_deadline
        self.draining = threading.Event()
        self.watchdog = DeadlineWatchdog(self._deadline_expired)
        self._report_lock = threading.Lock()
        # Never set: an overdue attempt's thread waits on it while the watchdog ends the process.
        self._process_ending = threading.Event()
        self._awaiting_confirmation: dict[str, _ActiveAttempt] = {}
        self._confirmation_lock = threading.Lock()

    def run_attempt(
        self, attempt: TaskAttempt, stats: AttemptStats, guard: BranchMoveGuard | None = None
    ) -> RuntimeTaskResult:
        limit = self.config.failure_reason_max_length
        recorder = self._recorder_for(attempt)
        if not self.task.has_workspace:
            return run_workspace_free_task_attempt(
                self.task,
                attempt.input_data,
                failure_reason_max_length=limit,
                stats=stats,
                metrics=recorder,
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
            metrics=recorder,
        )

    def _recorder_for(self, attempt: TaskAttempt) -> MetricRecorder | None:
        """The body's recorder, bound to this attempt (metrics-enabled tasks only)."""
        if self.metrics_recorder is None or not self.task.has_metrics:
            return None
        return self.metrics_recorder.with_context(
            TaskAttemptMetricContext(
                task_name=self.task.name,
                task_id=attempt.task_id,
                workflow_instance_id=attempt.workflow_instance_id,
                execution_id=attempt.execution_id or "",
                worker_id=self.worker_id,
                retry_count=attempt.retry_count,
            )
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
        if self.observers:
            active.stats.observer = self.observers.phase_observer(attempt)
            self.observers.attempt_started(attempt)
        try:
            result = self.run_attempt(attempt, active.stats, active.guard)
        except Exception as exc:  # the attempt core never raises; this guards the adapter itself
            result = result_for_exception(exc, max_length=self.config.failure_reason_max_length)
        faults.reach("worker.before_report", task_id=attempt.task_id)
        if not self.watchdog.finish(active):
            if self.exit_on_deadline:
                # The watchdog reports FAILED and ends this process. Handing a result back to the
                # SDK now would let it take the next task (update-v2 returns one, v1 polls at
                # once), which the exiting process could never run: the retry would sit polled
                # until its response timeout. Wait here for the exit instead.
                self._process_ending.wait()
            # Only now is the slot free: the observers heard of the end (busy gauges, perago
            # status) while this body was still running.
            active.reported.wait()
            self.observers.slot_released(attempt)
            # The deadline already reported this attempt FAILED; Conductor ignores a late update.
            return result_to_task_result(
                attempt, self._deadline_result(active), worker_id=self.worker_id
            )
        log_attempt_finished(active, result)
        self.observers.attempt_finished(finished_attempt(active, result))
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

    def _report_overdue(self, active: _ActiveAttempt) -> None:
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
            self.observers.attempt_finished(
                finished_attempt(active, result, failure_class="TimeoutError", slot_still_busy=True)
            )

    def _deadline_expired(self, active: _ActiveAttempt) -> None:
        try:
            self._report_overdue(active)
        finally:
            active.reported.set()
        if self.exit_on_deadline:
            # The body cannot be interrupted safely in-process; ending the process is the
            # termination. The supervisor restarts this slot immediately and GC removes the
            # attempt directory of this (then dead) pid.
            logger.complete()
            _flush_telemetry()  # os._exit skips atexit: export this attempt's span and series
            flush_consoles()
            os._exit(EXIT_DEADLINE)


def worker_observers(
    task: TaskDefinition,
    config: RuntimeConfig,
    worker_id: str,
    client: ConductorClient,
    telemetry: WorkerTelemetry | None = None,
    *,
    status: Callable[[str], None] | None = None,
    slots: ThreadSlots | None = None,
) -> AttemptObservers:
    """The observers of this worker process's attempts: Conductor progress and logs, telemetry,
    and ``perago status`` (``status`` lines to a supervisor, or this process's own ``slots``)."""
    from perago.runtime.conductor_progress import ConductorProgress  # phase lines in Conductor

    observers = AttemptObservers([ConductorProgress(client)])
    if telemetry is not None:
        observers.add(telemetry.observer)
    if status is not None:
        observers.add(PhaseReporter(status))
    if slots is not None:
        observers.add(slots)
    return observers


def _flush_telemetry() -> None:
    from perago.telemetry.providers import started_telemetry

    telemetry = started_telemetry()
    if telemetry is not None:
        telemetry.flush()


def _withhold_credentials_from_bodies(config: RuntimeConfig) -> list[str]:
    """Remove perago's own credentials from ``os.environ``; returns the names removed.

    The worker's clients get them from ``config`` (``merged_env``, ``lakefs``), never from the
    environment, so this can happen before the task module is imported: neither its import nor
    a body's ``subprocess.run`` sees them, unless ``PERAGO_BODY_ENV_PASSTHROUGH`` names them.
    """
    removed = body_environment_removals(os.environ, config.body_env_passthrough)
    for key in removed:
        os.environ.pop(key, None)
    return removed


def _build_workspace_runtime(
    task: TaskDefinition,
    config: RuntimeConfig,
    client: ConductorClient,
    observers: AttemptObservers | None = None,
) -> Any:
    if not task.has_workspace:
        return None
    if config.lakefs is None:
        return None
    from perago.lakefs.workspace import LakeFSWorkspaceRuntime  # only workspace tasks need lakeFS

    budget = task.controls.publish_budget
    spec = task.workspace
    if spec is not None and spec.read_only:
        budget = None
    return LakeFSWorkspaceRuntime.from_config(
        config.lakefs,
        publish_budget=budget,
        task_states=client,
        control_timeout_seconds=config.control_timeout.total_seconds(),
        cache=config.cache,
        progress=observers.transfer_progress if observers is not None else None,
    )


class _StatusChannel:
    """Tells the supervisor 'ready', 'fatal: <cause>' and which attempt runs (``running``/
    ``done``) through an inherited pipe."""

    def __init__(self, env: Mapping[str, str]) -> None:
        raw = env.get(STATUS_FD_ENV, "")
        self._fd = int(raw) if raw.isdigit() else None
        self._lock = threading.Lock()  # lines come from the main and the SDK's threads

    @property
    def connected(self) -> bool:
        return self._fd is not None

    def send_if_room(self, line: str) -> None:
        """Send ``line`` only if the pipe has room now (phase and progress news: worth less than
        never blocking an attempt on a supervisor that is not reading)."""
        with self._lock:
            if self._fd is None:
                return
            try:
                _, writable, _ = select.select([], [self._fd], [], 0)
            except (OSError, ValueError):
                return
        if writable:
            self.send(line)

    def send(self, line: str) -> None:
        with self._lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, (line.replace("\n", " ") + "\n").encode("utf-8"))
            except OSError:
                self._fd = None


_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread ends (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class ParentGuard:
    """A worker dies with the supervisor that started it (``PERAGO_SUPERVISOR_PID``).

    ``arm`` sets ``PR_SET_PDEATHSIG`` to SIGKILL: the kernel kills the worker the moment its
    supervisor dies, however it dies, even while a body holds the GIL. The supervisor may have
    died before that call, so ``gone`` compares the parent with the expected pid; and ``watch``
    (a fallback where the signal is unavailable) checks once a second: then the worker stops
    polling, lets the running attempt end through the usual drain (or its deadline) and exits.
    """

    def __init__(self, expected_parent: int) -> None:
        self.expected_parent = expected_parent
        self.death_signal_set = False

    @classmethod
    def arm(cls, env: Mapping[str, str]) -> ParentGuard | None:
        raw = env.get(SUPERVISOR_PID_ENV, "").strip()
        if not raw.isdigit():
            return None  # not started by a supervisor (e.g. by hand)
        guard = cls(int(raw))
        guard.death_signal_set = set_parent_death_signal(signal.SIGKILL)
        return guard

    def gone(self) -> bool:
        return os.getppid() != self.expected_parent

    def watch(self, on_gone: Callable[[], None], *, interval: float = 1.0) -> threading.Thread:
        def run() -> None:
            while not self.gone():
                time.sleep(interval)
            logger.bind(supervisor_pid=self.expected_parent, parent_pid=os.getppid()).error(
                "the supervisor is gone; the worker stops polling and exits"
            )
            on_gone()

        thread = threading.Thread(target=run, name="perago-parent-watch", daemon=True)
        thread.start()
        return thread


class _AttemptLifecycle:
    """Around every polled task: tell the supervisor which attempt runs (it blames that task if
    this process dies during it) and fail a quarantined task without running its body."""

    def __init__(
        self, executor: AttemptExecutor, status: _StatusChannel, env: Mapping[str, str]
    ) -> None:
        self.executor = executor
        self.status = status
        raw = env.get(QUARANTINE_FILE_ENV, "").strip()
        self.quarantine = QuarantineFile(Path(raw)) if raw else None

    def execute(self, sdk_task: Any) -> Any:
        if self.executor.draining.is_set():
            return self.executor.execute(sdk_task)  # hands the task back to the queue
        task_id = str(getattr(sdk_task, "task_id", "") or "")
        workflow_id = str(getattr(sdk_task, "workflow_instance_id", "") or "")
        reference = str(getattr(sdk_task, "reference_task_name", "") or "")
        if self.quarantine is not None and workflow_id and reference:
            deaths = self.quarantine.deaths(quarantine_key(workflow_id, reference))
            if deaths >= QUARANTINE_AFTER_DEATHS:
                return self._fail_quarantined(sdk_task, deaths)
        self.status.send(
            running_line(
                {
                    "task_id": task_id,
                    "workflow_instance_id": workflow_id,
                    "reference_task_name": reference,
                    "task_def_name": getattr(sdk_task, "task_def_name", None),
                    "retry_count": getattr(sdk_task, "retry_count", None),
                }
            )
        )
        try:
            return self.executor.execute(sdk_task)
        finally:
            self.status.send(STATUS_DONE + task_id)

    def _fail_quarantined(self, sdk_task: Any, deaths: int) -> Any:
        try:
            attempt = task_to_attempt(sdk_task, execution_id=uuid.uuid4().hex)
        except ConductorTaskError:
            return self.executor.execute(sdk_task)  # reports the malformed task as usual
        reason = quarantine_reason(deaths)
        result = terminal_failed_result(
            reason, max_length=self.executor.config.failure_reason_max_length
        )
        fields = _attempt_fields(attempt)
        logger.bind(**fields, timeout_seconds=None).info("attempt started")
        logger.bind(**fields, deaths=deaths).error(
            "attempt of a quarantined task failed without running its body"
        )
        active = _ActiveAttempt(attempt, time.monotonic(), None)
        log_attempt_finished(
            active,
            result,
            exception_type="TaskQuarantined",
            exception_message=reason,
            exception_traceback="",
        )
        self.executor.observers.attempt_finished(
            finished_attempt(active, result, failure_class="TaskQuarantined")
        )
        return result_to_task_result(attempt, result, worker_id=self.executor.worker_id)


def run_worker(
    module_target: str,
    *,
    thread_count: int = 1,
    exit_on_deadline: bool = True,
    status_board: StatusBoard | None = None,
) -> int:
    """Run one polling worker until SIGTERM/SIGINT; returns the process exit code.

    ``status_board``: the process owns its slots (thread mode) and keeps ``perago status``'s
    file itself."""
    # First of all: die with the supervisor (and not start at all if it is already gone).
    parent = ParentGuard.arm(os.environ)
    if parent is not None and parent.gone():
        print(
            f"error: worker's supervisor pid {parent.expected_parent} is already gone; "
            "not starting",
            file=sys.stderr,
        )
        return EXIT_STARTUP_FAILED
    status = _StatusChannel(os.environ)
    # A stop request may arrive while the task module still imports: remember it, exit cleanly.
    early_stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: early_stop.set())
    try:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        config = load_runtime_config(module_target)
        withheld = _withhold_credentials_from_bodies(config)
        runtime = prepare_worker_runtime(config=config, module_target=module_target, env=os.environ)
        if withheld:
            logger.bind(variables=withheld).info("credentials withheld from task bodies")
        task = load_module_task(module_target)
        if config.conductor is None:
            raise RuntimeError("CONDUCTOR_SERVER_URL is required for perago start")
        sdk_settings = pin_sdk_worker_environment(task.name, config.merged_env)
        if sdk_settings.ignored:
            logger.bind(variables=list(sdk_settings.ignored)).warning(
                "ignoring conductor-python worker settings; perago manages these settings"
            )
        logger.bind(**sdk_settings.as_dict()).info("conductor worker settings")
        client = ConductorClient.from_config(config)
        registered = client.get_taskdef(task.name) or {}
        timeout = registered.get("timeoutSeconds")
        from perago.telemetry.worker_setup import (
            check_metrics_requirements,
            start_worker_telemetry,
        )

        check_metrics_requirements(task, config)
        telemetry = start_worker_telemetry(
            task,
            config,
            runtime.worker_id,
            capacity=thread_count,
            env=os.environ,
            send_status=status.send,
        )
        observers = worker_observers(
            task,
            config,
            runtime.worker_id,
            client,
            telemetry,
            status=status.send_if_room if status.connected else None,
            slots=(
                ThreadSlots(status_board, runtime.worker_id, thread_count)
                if status_board is not None
                else None
            ),
        )
        executor = AttemptExecutor(
            task=task,
            config=config,
            worker_id=runtime.worker_id,
            client=client,
            taskdef_timeout_seconds=timeout if isinstance(timeout, int) else None,
            exit_on_deadline=exit_on_deadline,
            workspace_runtime=_build_workspace_runtime(task, config, client, observers),
            observers=observers,
            metrics_recorder=(
                telemetry.recorder
                if telemetry is not None
                else DiscardingMetricRecorder()
                if task.has_metrics
                else None
            ),
        )
    except Exception as exc:
        cause = f"{type(exc).__name__}: {exc}"
        status.send(f"{STATUS_FATAL}{cause}")
        print(f"error: worker failed to start: {cause}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    return _poll_until_stopped(
        executor, client, task, runtime, thread_count, status, early_stop, parent=parent
    )


def _poll_until_stopped(  # noqa: PLR0917 - one private call site
    executor: AttemptExecutor,
    client: ConductorClient,
    task: TaskDefinition,
    runtime: WorkerRuntime,
    thread_count: int,
    status: _StatusChannel,
    early_stop: threading.Event,
    *,
    parent: ParentGuard | None = None,
) -> int:
    lifecycle = _AttemptLifecycle(executor, status, os.environ)
    runner = TaskRunnerHandle(
        task.name,
        runtime.worker_id,
        lifecycle.execute,
        configuration=client.configuration,
        thread_count=thread_count,
        on_update_lost=executor.completion_lost,
    )

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        # Only flags here: logging from a signal handler could deadlock on the sink's lock.
        executor.draining.set()
        # No new polls, and no next task handed back with a result (see stop_polling).
        runner.stop_polling()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if early_stop.is_set():
        request_stop(signal.SIGTERM, None)
    if parent is not None:
        if parent.gone():
            request_stop(signal.SIGTERM, None)  # never poll for a supervisor that is gone
        parent.watch(lambda: request_stop(signal.SIGTERM, None))
    logger.bind(task_def_name=task.name, thread_count=thread_count).info("worker polling")
    status.send(STATUS_READY)
    while not executor.draining.is_set():
        runner.poll_once()
    logger.info("worker draining")
    # Drain: the SDK's pool finishes the running attempt and its update; nothing new starts.
    runner.drain()
    executor.watchdog.stop()
    logger.info("worker stopped")
    logger.complete()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("error: usage: python -m perago.runtime.worker MODULE", file=sys.stderr)
        return 2
    return run_worker(args[0])


if __name__ == "__main__":
    raise SystemExit(main())
