"""Workspace GC over real directories: TTL, owner liveness, pid reuse, bad entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from perago.gc import ATTEMPT_MARKER, collect_attempt_workspaces


def _attempt_dir(root: Path, name: str, *, pid: int, age: timedelta, worker: str = "w0001") -> Path:
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


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_removes_only_old_dirs_of_dead_owners(tmp_path: Path) -> None:
    dead = _dead_pid()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        # GC runs "two hours later": age 0 is then two hours old, age -119m is one minute old.
        later = datetime.now(UTC) + timedelta(hours=2)
        old_dead = _attempt_dir(tmp_path, "task_id=a", pid=dead, age=timedelta(0))
        young_dead = _attempt_dir(tmp_path, "task_id=b", pid=dead, age=-timedelta(minutes=119))
        old_alive = _attempt_dir(tmp_path, "task_id=c", pid=owner.pid, age=timedelta(0))
        unmarked = tmp_path / "not-an-attempt"
        unmarked.mkdir()
        report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1), now=later)
    finally:
        owner.kill()
        owner.wait()
    assert report.removed == [old_dead]
    assert not old_dead.exists()
    assert young_dead.exists()
    assert old_alive.exists()
    assert unmarked.exists()


def test_reused_pid_does_not_keep_a_dir_alive(tmp_path: Path) -> None:
    # The attempt "began" 30 days ago, long before this pid's process started: a reused pid.
    directory = _attempt_dir(tmp_path, "task_id=r", pid=os.getpid(), age=timedelta(days=30))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [directory]


def test_one_bad_entry_never_stops_the_pass(tmp_path: Path) -> None:
    dead = _dead_pid()
    bad = tmp_path / "task_id=0bad"
    bad.mkdir()
    (bad / ATTEMPT_MARKER).write_text("{broken")
    good = _attempt_dir(tmp_path, "task_id=z", pid=dead, age=timedelta(hours=2))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == [good]
    assert [path for path, _ in report.errors] == [bad]
    assert bad.exists()


def test_markers_inside_workspaces_are_not_scanned(tmp_path: Path) -> None:
    dead = _dead_pid()
    outer = tmp_path / "plain"
    outer.mkdir()
    nested = _attempt_dir(outer, "task_id=n", pid=dead, age=timedelta(hours=2))
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(hours=1))
    assert report.removed == []
    assert nested.exists()


def test_owner_filters(tmp_path: Path) -> None:
    dead = _dead_pid()
    mine = _attempt_dir(tmp_path, "task_id=m", pid=dead, age=timedelta(0), worker="w0001")
    other = _attempt_dir(tmp_path, "task_id=o", pid=dead, age=timedelta(0), worker="w0002")
    report = collect_attempt_workspaces(tmp_path, ttl=timedelta(0), only_owner_worker_id="w0001")
    assert report.removed == [mine]
    assert other.exists()
