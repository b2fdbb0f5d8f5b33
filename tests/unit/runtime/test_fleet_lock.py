"""The per-host supervisor lock: who holds it is judged only where it can be (issue 12)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from perago.errors import RuntimeConfigError
from perago.host.processes import ProcessIdentity, current_process_identity, identity_of
from perago.runtime.supervisor import (
    LOCK_FILENAME,
    LockHolder,
    SupervisorLock,
    judge_holder,
    lock_filename,
    parse_lock,
)
from tests.process_support import gone_within, process_running

HOST_A = {"PERAGO_INSTANCE_ID": "host-a"}
HOST_B = {"PERAGO_INSTANCE_ID": "host-b"}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_lock(
    root: Path, holder: ProcessIdentity, *, workers: Sequence[ProcessIdentity] = ()
) -> Path:
    path = root / lock_filename("hosta")
    path.write_text(
        json.dumps(
            {
                "format": 2,
                "supervisor_pid": holder.pid,
                "host": "host-a",
                "identity": holder.to_json(),
                "workers": [{"worker_id": f"w{i}", **w.to_json()} for i, w in enumerate(workers)],
            }
        )
    )
    return path


def test_lock_is_per_host_and_records_this_process(tmp_path: Path) -> None:
    a, b = SupervisorLock(tmp_path, HOST_A), SupervisorLock(tmp_path, HOST_B)
    a.acquire()
    b.acquire()  # two hosts share one workspace root, one lock each
    try:
        assert a.path.name == ".perago-supervisor.hosta.lock"
        assert b.path.name == ".perago-supervisor.hostb.lock"
        data = json.loads(a.path.read_text())
        assert data["supervisor_pid"] == os.getpid()
        assert data["host"] == "host-a"
        assert ProcessIdentity.from_json(data["identity"]) == current_process_identity(HOST_A)
        assert data["workers"] == []
    finally:
        a.release()
        b.release()
    assert not a.path.exists()
    assert not b.path.exists()


def test_same_host_dead_pid_is_stale_and_taken_over(tmp_path: Path) -> None:
    me = current_process_identity(HOST_A)
    path = _write_lock(tmp_path, dataclasses.replace(me, pid=_dead_pid()))
    lock = SupervisorLock(tmp_path, HOST_A)
    lock.acquire()
    assert lock.path == path
    assert json.loads(path.read_text())["identity"] == me.to_json()
    lock.release()


def test_same_namespace_reused_pid_is_stale(tmp_path: Path) -> None:
    # A live pid whose start time differs is another process than the one that locked.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = identity_of(sleeper.pid, HOST_A)
        assert identity is not None
        _write_lock(tmp_path, dataclasses.replace(identity, start_ticks=identity.start_ticks - 1))
        lock = SupervisorLock(tmp_path, HOST_A)
        lock.acquire()
        lock.release()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_our_own_pid_is_ours_only_with_our_start_ticks(tmp_path: Path) -> None:
    me = current_process_identity(HOST_A)
    assert judge_holder(LockHolder(me.pid, "h", me), HOST_A) == "alive"
    _write_lock(tmp_path, me)
    lock = SupervisorLock(tmp_path, HOST_A)
    lock.acquire()  # already ours: nothing to take over
    assert lock.path.exists()
    lock.release()
    _write_lock(tmp_path, dataclasses.replace(me, start_ticks=me.start_ticks + 7))
    lock = SupervisorLock(tmp_path, HOST_A)
    lock.acquire()  # an earlier process with our pid: stale
    assert json.loads(lock.path.read_text())["identity"] == me.to_json()
    lock.release()


@pytest.mark.parametrize(
    "change",
    [
        {"host_id": "another-machine"},
        {"boot_id": "an-earlier-boot"},
        # Our very pid in another pid namespace (every container supervisor is PID 1).
        {"pid_namespace": "pid:[4026532999]"},
    ],
)
def test_a_holder_that_cannot_be_judged_holds_the_lock(
    tmp_path: Path, change: dict[str, str]
) -> None:
    me = current_process_identity(HOST_A)
    path = _write_lock(tmp_path, dataclasses.replace(me, **change))  # type: ignore[arg-type]
    with pytest.raises(RuntimeConfigError) as caught:
        SupervisorLock(tmp_path, HOST_A).acquire()
    message = str(caught.value)
    assert f"already locked by supervisor pid {me.pid} on host host-a" in message
    assert "PERAGO_INSTANCE_ID" in message
    assert str(path) in message
    assert "\n" not in message
    assert path.exists()


def test_a_live_holder_of_this_host_is_a_conflict(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = identity_of(holder.pid, HOST_A)
        assert identity is not None
        _write_lock(tmp_path, identity)
        with pytest.raises(RuntimeConfigError, match=f"locked by supervisor pid {holder.pid} on"):
            SupervisorLock(tmp_path, HOST_A).acquire()
    finally:
        holder.kill()
        holder.wait()


def test_old_bare_pid_locks_keep_working(tmp_path: Path) -> None:
    assert parse_lock(tmp_path / "x", "1234") == LockHolder(1234, "this host")
    assert parse_lock(tmp_path / "x", '{"supervisor_pid": 99}') == LockHolder(99, "this host")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # In the legacy file name (an older perago on this root) and in this host's file.
        for name in (LOCK_FILENAME, lock_filename("hosta")):
            path = tmp_path / name
            path.write_text(json.dumps({"supervisor_pid": live.pid}))
            with pytest.raises(RuntimeConfigError, match=f"supervisor pid {live.pid}"):
                SupervisorLock(tmp_path, HOST_A).acquire()
            path.write_text(str(_dead_pid()))
            lock = SupervisorLock(tmp_path, HOST_A)
            lock.acquire()
            lock.release()
            assert not path.exists()
    finally:
        live.kill()
        live.wait()


def test_takeover_waits_for_the_previous_workers_then_refuses(tmp_path: Path) -> None:
    me = current_process_identity(HOST_A)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = identity_of(worker.pid, HOST_A)
        assert identity is not None
        path = _write_lock(tmp_path, dataclasses.replace(me, pid=_dead_pid()), workers=[identity])
        started = time.monotonic()
        with pytest.raises(RuntimeConfigError) as caught:
            SupervisorLock(tmp_path, HOST_A, worker_exit_wait=0.5).acquire()
        assert time.monotonic() - started >= 0.5
        assert str(caught.value).endswith(
            f"1 worker process(es) of the previous supervisor pid "
            f"{json.loads(path.read_text())['supervisor_pid']} still run (pid {worker.pid}); "
            "stop them before starting another supervisor on this host"
        )
        assert path.exists()
    finally:
        worker.kill()
        worker.wait()
    # Gone (even as an unreaped zombie it could not poll): the lock is taken over.
    lock = SupervisorLock(tmp_path, HOST_A, worker_exit_wait=0.5)
    lock.acquire()
    lock.release()


def test_takeover_kills_what_a_dead_workers_task_body_left_behind(tmp_path: Path) -> None:
    me = current_process_identity(HOST_A)
    # A worker (leading its own process group, as the supervisor starts them) whose task body
    # started a subprocess; then the worker dies and only the subprocess is left in its group.
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    assert worker.stdout is not None
    assert worker.stdin is not None
    leftover = int(worker.stdout.readline())
    identity = identity_of(worker.pid, HOST_A)
    assert identity is not None
    worker.stdin.close()
    worker.wait(timeout=30)
    try:
        assert process_running(leftover)
        _write_lock(tmp_path, dataclasses.replace(me, pid=_dead_pid()), workers=[identity])
        lock = SupervisorLock(tmp_path, HOST_A)
        lock.acquire()
        lock.release()
        assert gone_within(leftover, 10)
    finally:
        if process_running(leftover):
            os.kill(leftover, 9)


def test_record_workers_rewrites_the_held_lock(tmp_path: Path) -> None:
    lock = SupervisorLock(tmp_path, HOST_A)
    me = current_process_identity(HOST_A)
    lock.record_workers([("w1", me)])  # not held yet: nothing written
    assert not lock.path.exists()
    lock.acquire()
    try:
        lock.record_workers([("w1", me)])
        holder = parse_lock(lock.path, lock.path.read_text())
        assert holder.identity == me
        assert holder.workers == (me,)
        assert json.loads(lock.path.read_text())["workers"][0]["worker_id"] == "w1"
        assert [p.name for p in tmp_path.iterdir()] == [lock.path.name]  # no temporary left
    finally:
        lock.release()


def test_corrupt_and_non_object_locks_are_reported(tmp_path: Path) -> None:
    path = tmp_path / lock_filename("hosta")
    path.write_text("[1, 2]")
    with pytest.raises(RuntimeConfigError, match="must contain an object"):
        SupervisorLock(tmp_path, HOST_A).acquire()
    path.write_text("{oops")
    with pytest.raises(RuntimeConfigError, match="is not valid JSON"):
        SupervisorLock(tmp_path, HOST_A).acquire()
