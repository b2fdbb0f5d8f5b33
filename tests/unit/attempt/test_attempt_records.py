"""Owner records outside the workspace: format, heartbeat, cleanup that needs no marker and never
follows a symlink, and the records directory under concurrent creation and cleanup."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from perago.attempt import directory as attempt_workspace
from perago.attempt.directory import (
    ATTEMPT_RECORDS_DIRNAME,
    ATTEMPT_WORKSPACE_MARKER,
    WorkspaceSafetyError,
    attempt_record_path,
    cleanup_attempt_workspace,
    new_workspace_owner,
    open_attempt_workspace,
    read_attempt_record,
    record_heartbeat,
)
from perago.host.processes import current_process_identity
from tests.unit.conftest import make_attempt


def _open(root: Path, task_id: str = "task-1") -> attempt_workspace.AttemptWorkspace:
    return open_attempt_workspace(
        root, make_attempt(task_id=task_id), execution_id="exec-1", owner=new_workspace_owner("w")
    )


def test_record_sits_outside_the_workspace_with_the_owner_identity(tmp_path: Path) -> None:
    workspace = _open(tmp_path / "root")
    try:
        assert workspace.path == tmp_path / "root" / "task_id=task-1-exec=exec-1"
        assert (workspace.path / ATTEMPT_WORKSPACE_MARKER).is_file()  # kept for compatibility
        path = tmp_path / "root" / ATTEMPT_RECORDS_DIRNAME / "task_id=task-1-exec=exec-1.json"
        assert workspace.record_path == path
        raw = json.loads(path.read_text())
        assert sorted(raw) == [
            "directory",
            "execution_id",
            "owner",
            "owner_token",
            "owner_worker_id",
            "retry_count",
            "started_at",
            "task_def_name",
            "task_id",
            "version",
            "workflow_instance_id",
        ]
        assert raw["owner"] == current_process_identity().to_json()
        record = read_attempt_record(path)
        assert record.directory == workspace.name
        assert record.owner_token == workspace.owner.token
        assert list(workspace.path.iterdir()) == [workspace.path / ATTEMPT_WORKSPACE_MARKER]
    finally:
        workspace.cleanup()
    assert list((tmp_path / "root").iterdir()) == []  # nothing of perago's stays behind


def test_the_workspace_root_is_resolved_once(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    workspace = _open(tmp_path / "link")
    try:
        assert workspace.root == real
        assert workspace.path.parent == real
    finally:
        workspace.cleanup()


def test_cleanup_needs_no_marker_after_rmtree_and_mkdir(tmp_path: Path) -> None:
    workspace = _open(tmp_path)
    shutil.rmtree(workspace.path)
    workspace.path.mkdir()
    (workspace.path / "new.txt").write_text("x")
    assert workspace.safe_cleanup() is True
    assert not workspace.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_path_based_cleanup_recognises_the_record_too(tmp_path: Path) -> None:
    workspace = _open(tmp_path)
    workspace.close()
    (workspace.path / ATTEMPT_WORKSPACE_MARKER).unlink()
    cleanup_attempt_workspace(workspace.path)
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_replacing_the_workspace_is_refused_and_unlinked(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    workspace = _open(tmp_path / "root")
    shutil.rmtree(workspace.path)
    os.symlink(outside, workspace.path)
    with pytest.raises(WorkspaceSafetyError, match=r"was replaced by a symlink to .*outside"):
        workspace.verify()
    workspace.cleanup()
    assert not os.path.lexists(workspace.path)
    assert (outside / "precious.txt").read_text() == "keep"
    assert list((tmp_path / "root").iterdir()) == []


@pytest.mark.parametrize("replacement", ["missing", "file"])
def test_verify_names_what_happened(tmp_path: Path, replacement: str) -> None:
    workspace = _open(tmp_path)
    shutil.rmtree(workspace.path)
    if replacement == "file":
        workspace.path.write_text("not a directory")
        expected = "is no longer a directory"
    else:
        expected = "no longer exists"
    with pytest.raises(WorkspaceSafetyError, match=expected):
        workspace.verify()
    workspace.cleanup()
    assert list(tmp_path.iterdir()) == []


def test_pinned_detects_a_directory_swapped_during_a_read(tmp_path: Path) -> None:
    workspace = _open(tmp_path)
    try:
        swapped = pytest.raises(WorkspaceSafetyError, match="replaced while perago read it")
        with swapped, workspace.pinned():
            shutil.rmtree(workspace.path)
            workspace.path.mkdir()  # a new directory: fine on its own, not mid-read
        workspace.verify()
        with workspace.pinned():
            (workspace.path / "x").write_text("changing content is fine")
    finally:
        workspace.cleanup()


def test_an_existing_record_or_directory_is_never_reused(tmp_path: Path) -> None:
    workspace = _open(tmp_path)
    try:
        with pytest.raises(FileExistsError):
            _open(tmp_path)
    finally:
        workspace.cleanup()
    (tmp_path / "task_id=task-1-exec=exec-1").mkdir()  # a stray directory, no record
    with pytest.raises(FileExistsError):
        _open(tmp_path)
    assert not attempt_record_path(tmp_path, "task_id=task-1-exec=exec-1").exists()


def test_the_heartbeat_thread_touches_running_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attempt_workspace, "HEARTBEAT_INTERVAL_SECONDS", 0.05)
    workspace = _open(tmp_path)
    try:
        past = time.time() - 3600
        os.utime(workspace.record_path, (past, past))
        deadline = time.monotonic() + 10
        while record_heartbeat(workspace.record_path).timestamp() < past + 60:
            assert time.monotonic() < deadline, "the heartbeat never touched the record"
            time.sleep(0.05)
    finally:
        workspace.cleanup()
    assert workspace.record_path not in attempt_workspace._heartbeats.paths()


def test_concurrent_creation_and_cleanup_never_lose_a_record(tmp_path: Path) -> None:
    """The records directory is removed whenever it empties; creators racing with that retry."""
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for round_ in range(150):
                workspace = _open(tmp_path, task_id=f"t{worker}-{round_}")
                assert workspace.record_path.is_file()
                workspace.cleanup()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(tmp_path.iterdir()) == []
