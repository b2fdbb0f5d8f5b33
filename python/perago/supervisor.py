"""``perago start``'s supervisor: N independent polling worker processes (or N threads).

Process mode starts ``python -m perago.worker MODULE`` per slot, each with its stable
``PERAGO_WORKER_ID`` and the merged ``.env`` values exported. Each worker polls Conductor itself,
so no single process's death stops the others. The supervisor restarts crashed slots with
backoff (scheduled, never blocking the other slots), stops everything on a crash loop, runs the
workspace GC, holds one lock per workspace root, and drains on SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType

from loguru import logger

from perago.config import RuntimeConfig, derive_worker_id_prefix, slot_worker_id
from perago.errors import RuntimeConfigError
from perago.gc import WorkspaceGcLoop, collect_attempt_workspaces
from perago.process_liveness import pid_exists
from perago.worker_protocol import EXIT_DEADLINE, EXIT_OK, STATUS_FD_ENV

LOCK_FILENAME = ".perago-supervisor.lock"
_BACKOFF = (1, 2, 4, 8, 16)
_BACKOFF_CAP = 30
# A slot that never becomes ready this many times in a row, or dies this often within the
# window, is a crash loop: restarting it again cannot help.
CRASH_LOOP_STARTUP_FAILURES = 3
CRASH_LOOP_EXITS = 5
CRASH_LOOP_WINDOW_SECONDS = 60.0
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
    """Slots 1..N with ``PERAGO_WORKER_ID=<prefix><slot:04d>`` added to ``base_env``."""
    if process_count < 1:
        raise ValueError("worker process count must be at least 1")
    prefix = base_env.get("PERAGO_WORKER_ID_PREFIX", "").strip()
    prefix = prefix or derive_worker_id_prefix(module_target)
    specs = []
    for slot in range(1, process_count + 1):
        worker_id = slot_worker_id(prefix, slot)
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


class SupervisorLock:
    """``<workspace_root>/.perago-supervisor.lock`` holding this supervisor's pid."""

    def __init__(self, workspace_root: Path) -> None:
        self.path = workspace_root / LOCK_FILENAME
        self._held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._remove_if_stale():
                    continue
                raise RuntimeConfigError(self._conflict_message()) from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"supervisor_pid": os.getpid()}, handle)
            self._held = True
            return
        raise RuntimeConfigError(f"could not acquire workspace root lock {self.path}")

    def _owner_pid(self) -> int | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raise RuntimeConfigError(
                f"workspace root lock {self.path} is not valid JSON; remove it only if no "
                "supervisor is using this root"
            ) from None
        pid = data.get("supervisor_pid") if isinstance(data, dict) else None
        if not isinstance(pid, int):
            raise RuntimeConfigError(f"workspace root lock {self.path} must contain an object")
        return pid

    def _remove_if_stale(self) -> bool:
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return True
        pid = self._owner_pid()
        if pid is None:
            return True
        if pid != os.getpid() and pid_exists(pid):
            return False
        try:
            if self.path.stat().st_ino == inode:  # still the same stale file, not a new owner's
                self.path.unlink()
        except FileNotFoundError:
            pass
        return True

    def _conflict_message(self) -> str:
        pid = self._owner_pid()
        return (
            f"workspace root {self.path.parent} is already locked by supervisor pid {pid}; "
            "use a different PERAGO_WORKSPACE_ROOT for each supervisor"
        )

    def release(self) -> None:
        if not self._held:
            return
        try:
            if self._owner_pid() == os.getpid():
                self.path.unlink()
        except (OSError, RuntimeConfigError):
            pass
        self._held = False


# --- process mode ----------------------------------------------------------------------------


class CrashLoopError(RuntimeError):
    """A worker slot keeps dying; the message names the slot and the last cause seen."""


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
    exits: list[float] = field(default_factory=list)
    restart_at: float | None = None
    buffer: bytes = b""


class ProcessSupervisor:
    def __init__(
        self,
        *,
        config: RuntimeConfig,
        module_target: str,
        specs: list[WorkerChildSpec],
    ) -> None:
        self.config = config
        self.module_target = module_target
        self.slots = [_Slot(spec) for spec in specs]
        self.stopping = False

    def _start(self, slot: _Slot) -> None:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        env = {**slot.spec.env, STATUS_FD_ENV: str(write_fd)}
        # Each worker leads its own process group, so that killing the slot also kills what
        # the task body started (a hung ffmpeg would otherwise outlive a force-kill).
        slot.process = subprocess.Popen(
            [sys.executable, "-m", "perago.worker", self.module_target],
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
        logger.bind(
            child_worker_id=slot.spec.worker_id, child_pid=slot.process.pid, slot=slot.spec.slot
        ).info("worker process started")

    def _read_status(self, slot: _Slot) -> None:
        if slot.status_fd is None:
            return
        while True:
            try:
                chunk = os.read(slot.status_fd, 4096)
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
            if line == "ready":
                slot.ready = True
                slot.startup_failures = 0
            elif line.startswith("fatal: "):
                slot.last_cause = line.removeprefix("fatal: ")

    def _handle_exit(self, slot: _Slot, exit_code: int) -> None:
        assert slot.process is not None
        pid = slot.process.pid
        self._read_status(slot)
        if slot.status_fd is not None:
            os.close(slot.status_fd)
            slot.status_fd = None
        slot.process = None
        # Nothing a dead worker started may outlive it (e.g. a body's subprocess after the
        # deadline exit): the group is the slot's, so whatever is left in it is an orphan.
        kill_process_group(pid)
        now = time.monotonic()
        ran_for = now - slot.started_at
        # The dead process's attempt directories can go now: nobody will ever resume them.
        collect_attempt_workspaces(self.config.workspace_root, ttl=timedelta(0), only_owner_pid=pid)
        if self.stopping:
            return
        if exit_code == EXIT_DEADLINE:
            logger.bind(child_worker_id=slot.spec.worker_id, child_pid=pid).warning(
                "worker process ended an overdue attempt; restarting"
            )
            slot.restart_at = now
            return
        if ran_for >= HEALTHY_RUN_SECONDS:
            slot.restart_count = 0
        if not slot.ready:
            slot.startup_failures += 1
        slot.exits = [t for t in slot.exits if now - t < CRASH_LOOP_WINDOW_SECONDS] + [now]
        cause = slot.last_cause or f"worker process exited with code {exit_code}"
        if (
            slot.startup_failures >= CRASH_LOOP_STARTUP_FAILURES
            or len(slot.exits) >= CRASH_LOOP_EXITS
        ):
            raise CrashLoopError(
                f"worker {slot.spec.worker_id} is crash-looping ({len(slot.exits)} exits in "
                f"{int(CRASH_LOOP_WINDOW_SECONDS)}s); last cause: {cause}"
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
        fds = [slot.status_fd for slot in self.slots if slot.status_fd is not None]
        if fds:
            with contextlib.suppress(InterruptedError):
                select.select(fds, [], [], _MONITOR_TICK)
        else:
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
                code = process.wait(timeout=timeout)
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
            if code != EXIT_OK:
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
) -> int:
    """Run ``perago start`` in the foreground; returns the exit code (0 after a clean drain)."""
    if execution_mode not in ("process", "thread"):
        raise ValueError("execution mode must be either 'process' or 'thread'")
    lock = SupervisorLock(config.workspace_root)
    lock.acquire()
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
            # Threads cannot be killed: an overdue attempt is reported FAILED and its fence
            # will fail, but its thread keeps running until the body returns.
            from perago.worker import run_worker

            return run_worker(module_target, thread_count=process_count, exit_on_deadline=False)
        return _run_process_mode(config, module_target, process_count)
    finally:
        gc_loop.stop()
        lock.release()


def _run_process_mode(config: RuntimeConfig, module_target: str, process_count: int) -> int:
    specs = worker_child_specs(
        base_env=dict(config.merged_env), module_target=module_target, process_count=process_count
    )
    supervisor = ProcessSupervisor(config=config, module_target=module_target, specs=specs)

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        supervisor.stopping = True  # only a flag: the monitor loop logs and drains

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
