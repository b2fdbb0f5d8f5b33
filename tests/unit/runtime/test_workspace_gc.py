"""Workspace GC over real directories and real processes: owner records, liveness judged only
where it can be (dead / alive / another host), heartbeats, TTL, pid reuse, symlinks, bad entries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perago.attempt.directory import attempt_record_path
from perago.host.processes import (
    ProcessIdentity,
    boot_id,
    current_process_identity,
    host_id,
    pid_namespace,
    process_start_ticks,
)
from perago.runtime.workspace_gc import ATTEMPT_MARKER, collect_attempt_workspaces


def _legacy_dir(root: Path, name: str, *, pid: int, age: timedelta, worker: str = "w0001") -> Path:
    """A marker-only attempt directory, as perago versions before owner records left them."""
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "data.txt").write_text("x")
    marker = {
        "workflow_instance_id": "wf",
        "task_id": name,
        "execution_id": "e",
        "retry_count": 0,
        "task_def_name": "t",
        "owner_worker_id": worker,
        "owner_pid": pid,
        "owner_token": "tok-" + name,
        "started_at": (datetime.now(UTC) - age).isoformat(),
    }
    (directory / ATTEMPT_MARKER).write_text(json.dumps(marker))
    return directory


def _here(pid: int, start_ticks: int) -> ProcessIdentity:
    return ProcessIdentity(host_id(), boot_id(), pid_namespace(), pid, start_ticks)


def _attempt_dir(
    root: Path,
    name: str,
    *,
    owner: ProcessIdentity,
    heartbeat_age: timedelta,
    worker: str = "w0001",
    token: str | None = None,
    marker: bool = True,
) -> Path:
    """An attempt directory with its owner record (written as the documented JSON)."""
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "data.txt").write_text("x")
    if marker:
        (directory / ATTEMPT_MARKER).write_text("{}")
    record = {
        "directory": name,
        "owner": owner.to_json(),
        "owner_worker_id": worker,
        "owner_token": token or "tok-" + name,
        "workflow_instance_id": "wf",
        "task_id": name,
        "execution_id": "e",
        "retry_count": 0,
        "task_def_name": "t",
        "started_at": datetime.now(UTC).isoformat(),
        "version": 1,
    }
    path = attempt_record_path(root, name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(record))
    moment = time.time() - heartbeat_age.total_seconds()
    os.utime(path, (moment, moment))
    return directory


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def sleeper() -> Iterator[ProcessIdentity]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = None
        while ticks is None:
            ticks = process_start_ticks(process.pid)
        yield _here(process.pid, ticks)
    finally:
        process.kill()
        process.wait()


def test_removes_dead_owners_after_the_ttl_and_never_live_ones(
    tmp_path: Path, sleeper: ProcessIdentity
) -> None:
    dead = _here(_dead_pid(), 1)
    old_dead = _attempt_dir(tmp_path, "task_id=a", owner=dead, heartbeat_age=timedelta(hours=2))
    young_dead = _attempt_dir(tmp_path, "task_id=b", owner=dead, heartbeat_age=timedelta(0))
    old_alive = _attempt_dir(tmp_path, "task_id=c", owner=sleeper, heartbeat_age=timedelta(days=30))
    unmarked = tmp_path / "not-an-attempt"
    unmarked.mkdir()
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [old_dead]
    assert not old_dead.exists()
    assert not attempt_record_path(tmp_path, "task_id=a").exists()
    assert young_dead.exists()
    assert old_alive.exists()
    assert unmarked.exists()
    assert sorted(report.kept) == [young_dead, old_alive]


def test_reused_pid_does_not_keep_a_dir_alive(tmp_path: Path) -> None:
    # This pid runs, but it is not the process that started the attempt (other start time).
    me = current_process_identity()
    reused = _here(me.pid, me.start_ticks + 12345)
    directory = _attempt_dir(tmp_path, "task_id=r", owner=reused, heartbeat_age=timedelta(hours=2))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [directory]


def test_the_marker_is_not_needed(tmp_path: Path) -> None:
    """A body did rmtree(workspace); workspace.mkdir(): the marker is gone, the record is not."""
    dead = _here(_dead_pid(), 1)
    emptied = _attempt_dir(
        tmp_path, "task_id=m", owner=dead, heartbeat_age=timedelta(hours=2), marker=False
    )
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [emptied]
    assert not emptied.exists()


def test_a_symlink_in_place_of_the_workspace_is_unlinked_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    root = tmp_path / "root"
    directory = _attempt_dir(
        root, "task_id=s", owner=_here(_dead_pid(), 1), heartbeat_age=timedelta(hours=2)
    )
    shutil.rmtree(directory)
    directory.symlink_to(outside, target_is_directory=True)
    report = collect_attempt_workspaces(root, ttl=timedelta(hours=1))
    assert report.removed == [directory]
    assert not os.path.lexists(directory)
    assert (outside / "precious.txt").read_text() == "keep me"


def test_another_hosts_owner_is_judged_by_its_heartbeat_only(tmp_path: Path) -> None:
    """A shared root: an owner on another host is never judged by pid (it means nothing here);
    a fresh heartbeat keeps its directory whatever the TTL, a stale one lets it go."""
    elsewhere = ProcessIdentity("other-host", "other-boot", "pid:[1]", os.getpid(), 1)
    fresh = _attempt_dir(tmp_path, "task_id=f", owner=elsewhere, heartbeat_age=timedelta(0))
    stale = _attempt_dir(tmp_path, "task_id=s", owner=elsewhere, heartbeat_age=timedelta(hours=2))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(minutes=10))
    assert report.removed == [stale]
    assert fresh.exists()
    # A targeted sweep (worker start, dead worker) never removes an unknown owner at all.
    swept = collect_attempt_workspaces(tmp_path, ttl=timedelta(0), only_dead_owners=True)
    assert swept.removed == []
    assert fresh.exists()


def test_this_process_keeps_its_running_attempts_only(tmp_path: Path) -> None:
    me = current_process_identity()
    running = _attempt_dir(
        tmp_path, "task_id=run", owner=me, heartbeat_age=timedelta(hours=2), token="live"
    )
    ended = _attempt_dir(
        tmp_path, "task_id=end", owner=me, heartbeat_age=timedelta(hours=2), token="over"
    )
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1), active_tokens={"live"})
    assert report.removed == [ended]
    assert running.exists()


def test_one_bad_entry_never_stops_the_pass(tmp_path: Path) -> None:
    dead = _here(_dead_pid(), 1)
    bad = _attempt_dir(tmp_path, "task_id=0bad", owner=dead, heartbeat_age=timedelta(hours=2))
    attempt_record_path(tmp_path, "task_id=0bad").write_text("{broken")
    legacy_bad = tmp_path / "task_id=0legacy"
    legacy_bad.mkdir()
    (legacy_bad / ATTEMPT_MARKER).write_text("{broken")
    good = _attempt_dir(tmp_path, "task_id=z", owner=dead, heartbeat_age=timedelta(hours=2))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [good]
    assert sorted(path for path, _ in report.errors) == [bad, legacy_bad]
    assert bad.exists()
    assert legacy_bad.exists()


def test_a_record_without_its_directory_is_removed_with_its_owner(tmp_path: Path) -> None:
    dead = _here(_dead_pid(), 1)
    directory = _attempt_dir(tmp_path, "task_id=o", owner=dead, heartbeat_age=timedelta(hours=2))
    shutil.rmtree(directory)
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == []
    assert not attempt_record_path(tmp_path, "task_id=o").exists()
    assert list(tmp_path.iterdir()) == []  # the empty records directory went too


def test_markers_inside_workspaces_are_not_scanned(tmp_path: Path) -> None:
    dead = _dead_pid()
    outer = tmp_path / "plain"
    outer.mkdir()
    nested = _legacy_dir(outer, "task_id=n", pid=dead, age=timedelta(hours=2))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == []
    assert nested.exists()


def test_marker_only_directories_are_unknown_owners(tmp_path: Path) -> None:
    """Without a record the owner cannot be judged (the marker names no host): the TTL from
    ``started_at`` decides, and a targeted sweep never removes one."""
    old = _legacy_dir(tmp_path, "task_id=old", pid=os.getpid(), age=timedelta(hours=2))
    young = _legacy_dir(tmp_path, "task_id=young", pid=_dead_pid(), age=timedelta(0))
    swept = collect_attempt_workspaces(tmp_path, ttl=timedelta(0), only_owner_worker_id="w0001")
    assert swept.removed == []
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [old]
    assert young.exists()


def test_owner_filters(tmp_path: Path, sleeper: ProcessIdentity) -> None:
    dead = _here(_dead_pid(), 1)
    mine = _attempt_dir(tmp_path, "task_id=m", owner=dead, heartbeat_age=timedelta(0))
    other = _attempt_dir(
        tmp_path, "task_id=o", owner=dead, heartbeat_age=timedelta(0), worker="w0002"
    )
    live = _attempt_dir(tmp_path, "task_id=l", owner=sleeper, heartbeat_age=timedelta(0))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(0), only_owner_worker_id="w0001")
    assert report.removed == [mine]
    assert other.exists()
    assert live.exists()
    by_pid = collect_attempt_workspaces(tmp_path, ttl=timedelta(0), only_owner_pid=dead.pid)
    assert by_pid.removed == [other]
    assert live.exists()
