"""``perago start``'s supervisor: N independent polling worker processes (or N threads).

Process mode starts ``python -m perago.runtime.worker MODULE`` per slot, each with its stable
``PERAGO_WORKER_ID`` and the merged ``.env`` values exported. Each worker polls Conductor itself,
so no single process's death stops the others. The supervisor restarts crashed slots with
backoff (scheduled, never blocking the other slots), stops everything when a slot cannot start
(crash loop), quarantines a task whose attempts keep killing their worker, runs the workspace GC,
holds one lock per host and workspace root, and drains on SIGINT/SIGTERM. Workers die with it
(``PR_SET_PDEATHSIG`` plus a parent watch in the worker), and the lock records them so a
restarted supervisor never runs next to the previous one's workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from perago.config import (
    INSTANCE_ID,
    RuntimeConfig,
    derive_worker_id_prefix,
    host_token,
    slot_worker_id,
)
from perago.errors import CrashLoopError, RuntimeConfigError
from perago.host.processes import (
    Liveness,
    ProcessIdentity,
    current_process_identity,
    group_exists,
    identity_of,
    is_zombie,
    judge,
    pid_exists,
)
from perago.host.secure_files import remove_leftover_temporaries, replace_file
from perago.runtime.console_stream import console_stream
from perago.runtime.status_board import STATUS_PHASE, StatusBoard, status_path
from perago.runtime.worker_protocol import (
    EXIT_DEADLINE,
    EXIT_OK,
    METRICS_AGGREGATED_ENV,
    QUARANTINE_AFTER_DEATHS,
    QUARANTINE_FILE_ENV,
    STATUS_DONE,
    STATUS_FATAL,
    STATUS_FD_ENV,
    STATUS_METRICS,
    STATUS_READY,
    STATUS_RUNNING,
    SUPERVISOR_PID_ENV,
    QuarantineFile,
    quarantine_key,
    quarantine_reason,
)
from perago.runtime.workspace_gc import WorkspaceGcLoop, collect_attempt_workspaces

if TYPE_CHECKING:
    from perago.telemetry.supervisor_setup import SupervisorTelemetry

# The lock of perago versions before per-host locks: still honoured (never written any more).
LOCK_FILENAME = ".perago-supervisor.lock"
LOCK_FORMAT = 2
# How long a supervisor taking over a stale lock waits for the previous one's workers to end
# (they are killed with it, so normally they are gone already) before it refuses to start.
WORKER_EXIT_WAIT_SECONDS = 30.0
_BACKOFF = (1, 2, 4, 8, 16)
_BACKOFF_CAP = 30
# A slot that never becomes ready this many times in a row is a crash loop: restarting it again
# cannot help. Deaths after ``ready`` only restart the slot (with backoff); a death during an
# attempt is blamed on that task (quarantine), never on the slot.
CRASH_LOOP_STARTUP_FAILURES = 3
# Death counts kept per logical task (oldest forgotten first).
_MAX_TRACKED_TASKS = 10_000
# A worker that ran this long counts as healthy again: its backoff starts over.
HEALTHY_RUN_SECONDS = 60.0
_MONITOR_TICK = 0.1


def restart_backoff_seconds(restart_count: int) -> int:
    """Delay before restart number ``restart_count`` (0-based): 1, 2, 4, 8, 16, then 30."""
    if restart_count < 0:
        raise ValueError("restart_count must be >= 0")
    return _BACKOFF[restart_count] if restart_count < len(_BACKOFF) else _BACKOFF_CAP


@dataclass(frozen=True)
class WorkerChildSpec:
    """One supervised slot: its 1-based number, stable worker id and full environment."""

    slot: int
    worker_id: str
    env: Mapping[str, str]


def worker_child_specs(
    *, base_env: Mapping[str, str], module_target: str, process_count: int
) -> list[WorkerChildSpec]:
    """Slots 1..N with ``PERAGO_WORKER_ID=<prefix><slot:04d>-<host>`` added to ``base_env``.

    ``<host>`` is ``host_token(base_env)`` (``PERAGO_INSTANCE_ID`` or the host name), so slots of
    supervisors on different hosts never share an id, and a restarted slot keeps its id.
    """
    if process_count < 1:
        raise ValueError("worker process count must be at least 1")
    prefix = base_env.get("PERAGO_WORKER_ID_PREFIX", "").strip()
    prefix = prefix or derive_worker_id_prefix(module_target)
    host = host_token(base_env)
    specs = []
    for slot in range(1, process_count + 1):
        worker_id = slot_worker_id(prefix, slot, host)
        specs.append(WorkerChildSpec(slot, worker_id, {**base_env, "PERAGO_WORKER_ID": worker_id}))
    return specs


# --- single supervisor per workspace root -------------------------------------------------------


def kill_process_group(pgid: int) -> bool:
    """SIGKILL every process of the group ``pgid``; False when the group is already empty."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def lock_filename(host: str) -> str:
    """``.perago-supervisor.<host token>.lock``: one supervisor per host and workspace root."""
    return f".perago-supervisor.{host}.lock"


def quarantine_filename(host: str) -> str:
    return f".perago-supervisor.{host}.quarantine.json"


def host_label(env: Mapping[str, str]) -> str:
    """How a lock names its host to people: the instance id when set, else the host name."""
    return env.get(INSTANCE_ID, "").strip() or socket.gethostname() or "unknown"


@dataclass(frozen=True)
class LockHolder:
    """What a lock file says about the supervisor that wrote it.

    ``identity`` is None for a legacy ``{"supervisor_pid": N}`` (or bare ``N``) lock, whose pid
    is judged on this host as before; ``workers`` are the worker processes it had running.
    """

    pid: int
    host: str
    identity: ProcessIdentity | None = None
    workers: tuple[ProcessIdentity, ...] = ()


def parse_lock(path: Path, text: str) -> LockHolder:
    try:
        data = json.loads(text)
    except ValueError:
        raise RuntimeConfigError(
            f"workspace root lock {path} is not valid JSON; remove it only if no "
            "supervisor is using this root"
        ) from None
    if isinstance(data, int) and not isinstance(data, bool) and data > 0:
        return LockHolder(pid=data, host="this host")
    if not isinstance(data, dict):
        raise RuntimeConfigError(f"workspace root lock {path} must contain an object")
    identity = ProcessIdentity.from_json(data.get("identity"))
    pid = identity.pid if identity is not None else data.get("supervisor_pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise RuntimeConfigError(f"workspace root lock {path} must contain an object")
    raw_workers = data.get("workers")
    workers = tuple(
        worker
        for worker in (
            ProcessIdentity.from_json(item)
            for item in (raw_workers if isinstance(raw_workers, list) else [])
        )
        if worker is not None
    )
    host = data.get("host")
    return LockHolder(
        pid=pid,
        host=host if isinstance(host, str) and host else "this host",
        identity=identity,
        workers=workers,
    )


def judge_holder(holder: LockHolder, env: Mapping[str, str] | None = None) -> Liveness:
    """``alive``/``dead`` only for a holder of this host, boot and pid namespace (``judge``);
    ``unknown`` otherwise, which holds the lock. A legacy bare-pid lock names a pid of this host
    (as before identities were recorded); our own pid there cannot be a lock we hold."""
    if holder.identity is not None:
        return judge(holder.identity, env)
    if holder.pid == os.getpid() or not pid_exists(holder.pid) or is_zombie(holder.pid):
        return "dead"
    return "alive"


class SupervisorLock:
    """``<workspace_root>/.perago-supervisor.<host token>.lock``: this host's supervisor.

    Hosts (``PERAGO_INSTANCE_ID``, else the host name: ``host_token``) may share one workspace
    root, each with its own lock; the lock makes the host token, and so every worker id, unique
    among the supervisors of a root. The file records the supervisor's ``ProcessIdentity`` (host,
    boot id, pid namespace, pid, start ticks) and those of its running workers. A lock whose
    holder is judged dead is taken over (only while it is still the same inode), but not before
    the workers it recorded are gone; a holder of another host, boot or pid namespace cannot be
    judged and holds the lock. The legacy ``.perago-supervisor.lock`` of older versions is still
    honoured.
    """

    def __init__(
        self,
        workspace_root: Path,
        env: Mapping[str, str] | None = None,
        *,
        worker_exit_wait: float = WORKER_EXIT_WAIT_SECONDS,
    ) -> None:
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.root = workspace_root
        self.host = host_token(self.env)
        self.path = workspace_root / lock_filename(self.host)
        self.legacy_path = workspace_root / LOCK_FILENAME
        self.identity = current_process_identity(self.env)
        self.worker_exit_wait = worker_exit_wait
        self._held = False
        self._started_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    def acquire(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        # The lock of older versions on this root is honoured: judged, removed when stale.
        self._check(self.legacy_path)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._check(self.path) == "ours":
                    self._held = True
                    return
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self._content(()), handle)
            self._held = True
            # A rewrite cut short by a kill leaves its temporary file; only this host's
            # supervisor (now us) ever writes these names.
            remove_leftover_temporaries(self.path, older_than=0)
            return
        raise RuntimeConfigError(f"could not acquire workspace root lock {self.path}")

    def _content(self, workers: Sequence[tuple[str, ProcessIdentity]]) -> dict[str, Any]:
        return {
            "format": LOCK_FORMAT,
            "supervisor_pid": self.identity.pid,
            "host": host_label(self.env),
            "hostname": socket.gethostname(),
            "started_at": self._started_at,
            "identity": self.identity.to_json(),
            "workers": [{"worker_id": wid, **ident.to_json()} for wid, ident in workers],
        }

    def record_workers(self, workers: Sequence[tuple[str, ProcessIdentity]]) -> None:
        """Rewrite the held lock (atomically) with the worker processes running now."""
        if not self._held:
            return
        replace_file(self.path, json.dumps(self._content(workers)))

    def _read(self, path: Path) -> tuple[int, LockHolder] | None:
        try:
            inode = path.stat().st_ino
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RuntimeConfigError(f"workspace root lock {path} cannot be read: {exc}") from None
        return inode, parse_lock(path, text)

    def _check(self, path: Path) -> Literal["free", "ours"]:
        """``free`` once ``path`` is gone or was a stale lock (removed); ``ours`` when it is
        this very process's; raises the conflict otherwise."""
        found = self._read(path)
        if found is None:
            return "free"
        inode, holder = found
        if holder.identity == self.identity:
            return "ours"
        liveness = judge_holder(holder, self.env)
        if liveness != "dead":
            raise RuntimeConfigError(self._conflict_message(path, holder, liveness))
        self._wait_for_workers(holder)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ino == inode:  # still the same stale file, not a new owner's
                path.unlink()
        return "free"

    def _wait_for_workers(self, holder: LockHolder) -> None:
        """Return once no worker of the dead ``holder`` runs; kill what their task bodies left
        behind in their process groups. Refuses (after the wait) while one still runs."""
        deadline = time.monotonic() + self.worker_exit_wait
        announced = False
        while True:
            running = [w for w in holder.workers if judge(w, self.env) != "dead"]
            if not running:
                break
            pids = ", ".join(str(w.pid) for w in running)
            if time.monotonic() >= deadline:
                raise RuntimeConfigError(
                    f"workspace root {self.root}: {len(running)} worker process(es) of the "
                    f"previous supervisor pid {holder.pid} still run (pid {pids}); stop them "
                    "before starting another supervisor on this host"
                )
            if not announced:
                announced = True
                console_stream("stderr").write_line(
                    f"warning: waiting up to {self.worker_exit_wait:g}s for {len(running)} "
                    f"worker process(es) of the previous supervisor pid {holder.pid} to exit "
                    f"(pid {pids})"
                )
            time.sleep(0.1)
        for worker in holder.workers:
            # The worker is gone; a group still named after it holds only what its task body
            # started (its pid cannot be reused while the group exists).
            gone = not pid_exists(worker.pid) or is_zombie(worker.pid)
            if gone and group_exists(worker.pid) and kill_process_group(worker.pid):
                logger.bind(pgid=worker.pid).warning(
                    "killed processes left behind by a worker of the previous supervisor"
                )

    def _conflict_message(self, path: Path, holder: LockHolder, liveness: Liveness) -> str:
        message = (
            f"workspace root {self.root} is already locked by supervisor pid {holder.pid} "
            f"on host {holder.host}"
        )
        if liveness == "unknown":
            return (
                f"{message} (another host, boot or pid namespace with the same host token "
                f"{self.host!r}: its liveness cannot be checked from here); give each host its "
                f"own PERAGO_INSTANCE_ID, or remove {path} if that supervisor is gone"
            )
        return f"{message}; run one supervisor per host and workspace root"

    def release(self) -> None:
        if not self._held:
            return
        try:
            found = self._read(self.path)
            if found is not None and found[1].identity == self.identity:
                self.path.unlink()
        except (OSError, RuntimeConfigError):
            pass
        self._held = False


# --- process mode ----------------------------------------------------------------------------


@dataclass
class _Slot:
    spec: WorkerChildSpec
    process: subprocess.Popen[bytes] | None = None
    status_fd: int | None = None
    started_at: float = 0.0
    ready: bool = False
    last_cause: str | None = None
    restart_count: int = 0
    startup_failures: int = 0
    restart_at: float | None = None
    buffer: bytes = b""
    identity: ProcessIdentity | None = None
    # The attempt the worker said it runs (``running`` ... ``done`` on the status pipe).
    current_task: dict[str, Any] | None = None
    # The loopback port the worker serves its Prometheus series on (``metrics <port>``).
    metrics_port: int | None = None
    # The running attempt's phase and transfer progress (``phase`` lines), for perago status.
    phase: str | None = None
    progress: dict[str, Any] | None = None


def describe_exit(exit_code: int) -> str:
    if exit_code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-exit_code).name}"
    return f"exit code {exit_code}"


class ProcessSupervisor:
    def __init__(
        self,
        *,
        config: RuntimeConfig,
        module_target: str,
        specs: list[WorkerChildSpec],
        lock: SupervisorLock | None = None,
        quarantine: QuarantineFile | None = None,
        telemetry: SupervisorTelemetry | None = None,
        board: StatusBoard | None = None,
    ) -> None:
        self.config = config
        self.telemetry = telemetry
        self.board = board
        self.module_target = module_target
        self.slots = [_Slot(spec) for spec in specs]
        self.stopping = False
        self.lock = lock
        self.quarantine = quarantine
        # Deaths per logical task (``quarantine_key``), oldest first; the quarantined ones are
        # what the quarantine file lists.
        self.task_deaths: dict[str, dict[str, Any]] = {}

    def _start(self, slot: _Slot) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        env = {
            **slot.spec.env,
            STATUS_FD_ENV: str(write_fd),
            # The worker compares its parent with this pid and asks the kernel to kill it when
            # its parent dies (PR_SET_PDEATHSIG fires when the *thread* that forked it ends:
            # workers are always started from the monitor loop's thread).
            SUPERVISOR_PID_ENV: str(os.getpid()),
        }
        if self.quarantine is not None:
            env[QUARANTINE_FILE_ENV] = str(self.quarantine.path)
        if self.telemetry is not None and self.telemetry.aggregates_scrapes:
            env[METRICS_AGGREGATED_ENV] = "1"
        # Each worker leads its own process group, so that killing the slot also kills what
        # the task body started (a hung ffmpeg would otherwise outlive a force-kill).
        slot.process = subprocess.Popen(
            [sys.executable, "-m", "perago.runtime.worker", self.module_target],
            env=env,
            pass_fds=(write_fd,),
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        os.close(write_fd)
        slot.status_fd = read_fd
        slot.started_at = time.monotonic()
        slot.ready = False
        slot.buffer = b""
        slot.restart_at = None
        slot.current_task = None
        slot.metrics_port = None
        slot.identity = identity_of(slot.process.pid, self.config.merged_env)
        self._record_workers()
        logger.bind(
            child_worker_id=slot.spec.worker_id, child_pid=slot.process.pid, slot=slot.spec.slot
        ).info("worker process started")
        self._publish_status(force=True)

    def _record_workers(self) -> None:
        if self.lock is None:
            return
        running = [
            (slot.spec.worker_id, slot.identity)
            for slot in self.slots
            if slot.process is not None and slot.identity is not None
        ]
        try:
            self.lock.record_workers(running)
        except OSError as exc:
            logger.bind(error=str(exc)).warning("could not record the workers in the lock file")

    def _read_status(self, slot: _Slot) -> None:
        if slot.status_fd is None:
            return
        while True:
            try:
                chunk = os.read(slot.status_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                os.close(slot.status_fd)
                slot.status_fd = None
                break
            slot.buffer += chunk
        *lines, slot.buffer = slot.buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if line == STATUS_READY:
                slot.ready = True
                slot.startup_failures = 0
            elif line.startswith(STATUS_FATAL):
                slot.last_cause = line.removeprefix(STATUS_FATAL)
            elif line.startswith(STATUS_RUNNING):
                with contextlib.suppress(ValueError):
                    fields = json.loads(line.removeprefix(STATUS_RUNNING))
                    slot.current_task = fields if isinstance(fields, dict) else None
                    slot.phase, slot.progress = None, None
            elif line.startswith(STATUS_DONE):
                slot.current_task = None
                slot.phase, slot.progress = None, None
            elif line.startswith(STATUS_PHASE):
                with contextlib.suppress(ValueError):
                    fields = json.loads(line.removeprefix(STATUS_PHASE))
                    if isinstance(fields, dict):
                        slot.phase = fields.get("phase")
                        slot.progress = {
                            key: fields[key]
                            for key in ("bytes_done", "bytes_total", "files_done", "files_total")
                            if key in fields
                        } or None
            elif line.startswith(STATUS_METRICS):
                port = line.removeprefix(STATUS_METRICS)
                slot.metrics_port = int(port) if port.isdigit() else None

    def _handle_exit(self, slot: _Slot, exit_code: int) -> None:
        assert slot.process is not None
        pid = slot.process.pid
        self._read_status(slot)
        if slot.status_fd is not None:
            os.close(slot.status_fd)
            slot.status_fd = None
        slot.process = None
        slot.metrics_port = None
        slot.phase, slot.progress = None, None
        task, slot.current_task = slot.current_task, None
        self._publish_status(force=True)
        self._record_workers()
        # Nothing a dead worker started may outlive it (e.g. a body's subprocess after the
        # deadline exit): the group is the slot's, so whatever is left in it is an orphan.
        kill_process_group(pid)
        now = time.monotonic()
        ran_for = now - slot.started_at
        # The dead process's attempt directories can go now: nobody will ever resume them. The
        # worker id (unique per host) keeps a pid of another host's namespace out of it.
        collect_attempt_workspaces(
            self.config.workspace_root,
            ttl=timedelta(0),
            only_owner_pid=pid,
            only_owner_worker_id=slot.spec.worker_id,
        )
        if self.stopping:
            return
        if self.telemetry is not None:
            self.telemetry.restarted(
                "deadline" if exit_code == EXIT_DEADLINE else describe_exit(exit_code)
            )
        if exit_code == EXIT_DEADLINE:
            logger.bind(child_worker_id=slot.spec.worker_id, child_pid=pid).warning(
                "worker process ended an overdue attempt; restarting"
            )
            slot.restart_at = now
            return
        if ran_for >= HEALTHY_RUN_SECONDS:
            slot.restart_count = 0
        cause = slot.last_cause or f"worker process exited with code {exit_code}"
        if task is not None:
            # The attempt killed its worker: the task is to blame, not the slot.
            self._blame(task, slot, pid, exit_code)
        elif not slot.ready:
            slot.startup_failures += 1
            if slot.startup_failures >= CRASH_LOOP_STARTUP_FAILURES:
                raise CrashLoopError(
                    f"worker {slot.spec.worker_id} is crash-looping ({slot.startup_failures} "
                    f"exits before it could poll); last cause: {cause}"
                )
        delay = restart_backoff_seconds(slot.restart_count)
        slot.restart_count += 1
        slot.restart_at = now + delay
        logger.bind(
            child_worker_id=slot.spec.worker_id,
            child_pid=pid,
            slot=slot.spec.slot,
            exit_code=exit_code,
            restart_delay_seconds=delay,
            cause=cause,
        ).warning("worker process exited; restarting")

    def _blame(self, task: Mapping[str, Any], slot: _Slot, pid: int, exit_code: int) -> None:
        """Count a worker death against the attempt's logical task; quarantine it at
        ``QUARANTINE_AFTER_DEATHS`` (its next attempt is failed by the worker that polls it)."""
        task_id = str(task.get("task_id") or "")
        workflow_id = str(task.get("workflow_instance_id") or "")
        reference = str(task.get("reference_task_name") or "")
        key = quarantine_key(workflow_id, reference) if workflow_id and reference else task_id
        entry = self.task_deaths.pop(key, None) or {"deaths": 0}
        entry.update(
            deaths=int(entry["deaths"]) + 1,
            task_def_name=task.get("task_def_name"),
            workflow_instance_id=workflow_id,
            reference_task_name=reference,
            last_task_id=task_id,
            last_exit=describe_exit(exit_code),
        )
        self.task_deaths[key] = entry  # most recent last
        while len(self.task_deaths) > _MAX_TRACKED_TASKS:
            self.task_deaths.pop(next(iter(self.task_deaths)))
        deaths = int(entry["deaths"])
        fields = {
            "child_worker_id": slot.spec.worker_id,
            "child_pid": pid,
            "task_id": task_id,
            "workflow_instance_id": workflow_id,
            "reference_task_name": reference,
            "task_def_name": task.get("task_def_name"),
            "exit_code": exit_code,
            "deaths": deaths,
        }
        logger.bind(**fields, exit=describe_exit(exit_code)).warning(
            "worker process died while running an attempt"
        )
        if deaths < QUARANTINE_AFTER_DEATHS or self.quarantine is None:
            return
        quarantined = {
            k: v for k, v in self.task_deaths.items() if int(v["deaths"]) >= QUARANTINE_AFTER_DEATHS
        }
        try:
            self.quarantine.write(quarantined)
        except OSError as exc:
            logger.bind(**fields, error=str(exc)).error("could not write the quarantine file")
            return
        if deaths == QUARANTINE_AFTER_DEATHS:
            reason = quarantine_reason(deaths)
            logger.bind(**fields, reason=reason).error("task quarantined")
            # Through the console stream: the monitor loop must not stall on a console
            # nobody reads.
            console_stream("stderr").write_line(
                f"warning: task {reference or task_id} of workflow {workflow_id} "
                f"({task.get('task_def_name')}) {reason}; its next attempt fails without running"
            )

    def _wait_reading_status(self, process: subprocess.Popen[bytes], timeout: float | None) -> int:
        """Wait for ``process`` to exit while reading every worker's status pipe: a draining
        worker blocked on a full pipe would otherwise never exit."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = process.poll()
            if code is not None:
                return code
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(process.args, timeout or 0.0)
            wait = _MONITOR_TICK if remaining is None else min(_MONITOR_TICK, remaining)
            fds = [slot.status_fd for slot in self.slots if slot.status_fd is not None]
            if fds:
                with contextlib.suppress(InterruptedError):
                    select.select(fds, [], [], wait)
            else:
                time.sleep(wait)
            for slot in self.slots:
                self._read_status(slot)
            self._publish_status()

    def _publish_status(self, *, force: bool = False) -> None:
        if self.board is None:
            return
        slots = []
        for slot in self.slots:
            entry: dict[str, Any] = {
                "slot": slot.spec.slot,
                "worker_id": slot.spec.worker_id,
                "pid": slot.process.pid if slot.process is not None else None,
                "ready": slot.ready,
                "restarts": slot.restart_count,
            }
            if slot.current_task is not None:
                entry["attempt"] = dict(slot.current_task)
                entry["phase"] = slot.phase
                entry["progress"] = slot.progress
            slots.append(entry)
        self.board.write(slots, force=force)

    def scrape_targets(self) -> list[tuple[str, int]]:
        """(worker id, loopback port) of every live worker serving its series."""
        return [
            (slot.spec.worker_id, slot.metrics_port)
            for slot in list(self.slots)
            if slot.process is not None and slot.metrics_port is not None
        ]

    def run(self) -> int:
        for slot in self.slots:
            self._start(slot)
        try:
            while not self.stopping:
                self._tick()
        except CrashLoopError:
            self._shutdown(crash=True)
            raise
        return self._shutdown(crash=False)

    def _tick(self) -> None:
        # A sleep, not a select on the status pipes: a reader blocked on a pipe is woken by
        # every line, two per attempt per worker, and on a loaded host each wake-up preempts a
        # worker. The pipes hold far more than a tick's lines; a death is read to the end first.
        time.sleep(_MONITOR_TICK)
        now = time.monotonic()
        for slot in self.slots:
            self._read_status(slot)
            if slot.process is not None:
                code = slot.process.poll()
                if code is not None:
                    self._handle_exit(slot, code)
            elif slot.restart_at is not None and now >= slot.restart_at and not self.stopping:
                self._start(slot)
        self._publish_status()

    def _shutdown(self, *, crash: bool) -> int:
        self.stopping = True
        logger.info("supervisor draining workers")
        running = [slot for slot in self.slots if slot.process is not None]
        for slot in running:
            assert slot.process is not None
            with contextlib.suppress(ProcessLookupError):
                slot.process.send_signal(signal.SIGTERM)
        force_after = self.config.shutdown_force_kill_after
        deadline = time.monotonic() + force_after.total_seconds() if force_after else None
        forced = 0
        clean = not crash
        for slot in running:
            process = slot.process
            assert process is not None
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                code = self._wait_reading_status(process, timeout)
            except subprocess.TimeoutExpired:
                logger.bind(
                    child_worker_id=slot.spec.worker_id,
                    child_pid=process.pid,
                    phase="shutdown-force-kill",
                    deadline_seconds=force_after.total_seconds() if force_after else None,
                ).error("force-killing worker process after shutdown drain deadline")
                kill_process_group(process.pid)
                code = process.wait(timeout=5)
                forced += 1
            self._read_status(slot)
            # A worker still starting when the stop came may die of the SIGTERM before it could
            # install its handler: it never polled, so nothing was left undrained.
            stopped_while_starting = not slot.ready and code == -signal.SIGTERM
            if code != EXIT_OK and not stopped_while_starting:
                clean = False
            self._handle_exit(slot, code)
        if forced:
            raise CrashLoopError(
                f"force-killed {forced} worker process(es) after "
                f"PERAGO_SHUTDOWN_FORCE_KILL_AFTER; their attempts were not drained"
            )
        return 0 if clean else 1


def run_supervisor(
    *,
    config: RuntimeConfig,
    module_target: str,
    process_count: int,
    execution_mode: str,
    on_started: Callable[[], None] | None = None,
) -> int:
    """Run ``perago start`` in the foreground; returns the exit code (0 after a clean drain).

    ``on_started`` runs once this host's lock is held (the supervisor really starts)."""
    if execution_mode not in ("process", "thread"):
        raise ValueError("execution mode must be either 'process' or 'thread'")
    lock = SupervisorLock(config.workspace_root, config.merged_env)
    lock.acquire()
    if on_started is not None:
        on_started()
    gc_loop = WorkspaceGcLoop(
        config.workspace_root, ttl=config.workspace_gc_ttl, interval=config.workspace_gc_interval
    )
    try:
        gc_loop.start()
        if execution_mode == "thread":
            os.environ.update(config.merged_env)
            spec = worker_child_specs(
                base_env=config.merged_env, module_target=module_target, process_count=1
            )[0]
            os.environ["PERAGO_WORKER_ID"] = spec.worker_id
            # This process is the supervisor: what its own parent may have passed on (a
            # supervisor that started this one from a task body) is not for it.
            for inherited in (SUPERVISOR_PID_ENV, QUARANTINE_FILE_ENV, STATUS_FD_ENV):
                os.environ.pop(inherited, None)
            # Threads cannot be killed: an overdue attempt is reported FAILED and its fence
            # will fail, but its thread keeps running until the body returns.
            from perago.runtime.worker import run_worker

            board = StatusBoard(
                status_path(config.workspace_root, lock.host),
                module=module_target,
                mode="thread",
                env=config.merged_env,
            )
            try:
                return run_worker(
                    module_target,
                    thread_count=process_count,
                    exit_on_deadline=False,
                    status_board=board,
                )
            finally:
                board.remove()
        return _run_process_mode(config, module_target, process_count, lock)
    finally:
        gc_loop.stop()
        lock.release()


def _run_process_mode(
    config: RuntimeConfig, module_target: str, process_count: int, lock: SupervisorLock
) -> int:
    specs = worker_child_specs(
        base_env=dict(config.merged_env), module_target=module_target, process_count=process_count
    )
    # The quarantine lives as long as this supervisor: a restart (e.g. to deploy a fix) clears it.
    quarantine = QuarantineFile(config.workspace_root / quarantine_filename(lock.host))
    quarantine.remove()
    board = StatusBoard(
        status_path(config.workspace_root, lock.host),
        module=module_target,
        mode="process",
        env=config.merged_env,
    )
    supervisor = ProcessSupervisor(
        config=config,
        module_target=module_target,
        specs=specs,
        lock=lock,
        quarantine=quarantine,
        board=board,
    )
    from perago.telemetry.supervisor_setup import SupervisorTelemetry

    supervisor.telemetry = SupervisorTelemetry.start(
        config, supervisor.scrape_targets, service_instance=f"supervisor-{lock.host}"
    )

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        supervisor.stopping = True  # only a flag: the monitor loop logs and drains

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return supervisor.run()
    finally:
        quarantine.remove()
        board.remove()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
