"""Pure supervisor helpers: backoff, child specs, workspace-root lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perago.config import host_token
from perago.errors import RuntimeConfigError
from perago.runtime.supervisor import (
    LOCK_FILENAME,
    SupervisorLock,
    WorkerChildSpec,
    kill_process_group,
    restart_backoff_seconds,
    worker_child_specs,
)
from tests.process_support import gone_within, process_running


def test_backoff_sequence_caps_at_thirty() -> None:
    assert [restart_backoff_seconds(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_rejects_negative() -> None:
    with pytest.raises(ValueError, match="restart_count must be >= 0"):
        restart_backoff_seconds(-1)


def test_child_specs_number_slots_from_prefix() -> None:
    base = {"PERAGO_WORKER_ID_PREFIX": "prodA", "X": "1", "PERAGO_INSTANCE_ID": "node-7"}
    specs = worker_child_specs(base_env=base, module_target="app.build", process_count=2)
    assert specs == [
        WorkerChildSpec(1, "prodA0001-node7", {**base, "PERAGO_WORKER_ID": "prodA0001-node7"}),
        WorkerChildSpec(2, "prodA0002-node7", {**base, "PERAGO_WORKER_ID": "prodA0002-node7"}),
    ]


def test_child_specs_default_prefix_from_module() -> None:
    (spec,) = worker_child_specs(base_env={}, module_target="app.features_build", process_count=1)
    assert spec.worker_id == f"appfeaturesbuild0001-{host_token({})}"


def test_child_specs_require_one_process() -> None:
    with pytest.raises(ValueError, match="worker process count must be at least 1"):
        worker_child_specs(base_env={}, module_target="a.b", process_count=0)


def test_lock_conflict_names_the_live_pid(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / LOCK_FILENAME).write_text(json.dumps({"supervisor_pid": holder.pid}))
        with pytest.raises(
            RuntimeConfigError, match=f"already locked by supervisor pid {holder.pid}"
        ):
            SupervisorLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_dead_pid_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILENAME).write_text(json.dumps({"supervisor_pid": dead.pid}))
    lock = SupervisorLock(tmp_path)
    lock.acquire()
    # The legacy lock is gone; this host's own lock names this process.
    assert not (tmp_path / LOCK_FILENAME).exists()
    assert json.loads(lock.path.read_text())["supervisor_pid"] == os.getpid()
    lock.release()
    assert not lock.path.exists()


def test_corrupt_lock_is_reported(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILENAME).write_text("{not json")
    with pytest.raises(RuntimeConfigError, match="is not valid JSON"):
        SupervisorLock(tmp_path).acquire()


def test_kill_process_group_takes_the_workers_own_children_too() -> None:
    # A worker whose task body started a long subprocess, in its own group as the supervisor
    # starts workers.
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, process_group=0
    )
    assert worker.stdout is not None
    grandchild = int(worker.stdout.readline())
    try:
        assert process_running(grandchild)
        assert kill_process_group(worker.pid) is True
        assert worker.wait(timeout=30) == -9
        assert gone_within(grandchild, 30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
