"""Attempt directory layout, marker format, owner registry and safe cleanup."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perago.attempt.directory import (
    ATTEMPT_WORKSPACE_MARKER,
    active_workspace_owner_tokens,
    attempt_directory_name,
    attempt_path_segment,
    cleanup_attempt_workspace,
    create_attempt_workspace,
    new_workspace_owner,
    read_attempt_marker,
    register_active_workspace_owner,
    safe_cleanup_attempt_workspace,
    unregister_active_workspace_owner,
)
from tests.unit.conftest import make_attempt


@pytest.mark.parametrize(
    ("value", "expected"),
    [("abc-1_2.x=y", "abc-1_2.x=y"), ("a/b c", "a_b_c"), ("..//", "unknown"), ("._a_.", "a")],
)
def test_segments_are_sanitised(value: str, expected: str) -> None:
    assert attempt_path_segment(value) == expected


def test_directory_name() -> None:
    assert attempt_directory_name("t/1", "e 2") == "task_id=t_1-exec=e_2"
    assert attempt_directory_name("t1", None) == "task_id=t1"


def test_marker_has_documented_fields(tmp_path: Path) -> None:
    owner = new_workspace_owner("worker0001")
    directory = create_attempt_workspace(
        tmp_path / "root", make_attempt(retry_count=2), execution_id="exec-9", owner=owner
    )
    assert directory == tmp_path / "root" / "task_id=task-1-exec=exec-9"
    raw = json.loads((directory / ATTEMPT_WORKSPACE_MARKER).read_text())
    assert sorted(raw) == [
        "execution_id",
        "owner_pid",
        "owner_token",
        "owner_worker_id",
        "retry_count",
        "started_at",
        "task_def_name",
        "task_id",
        "workflow_instance_id",
    ]
    assert raw["owner_token"] == owner.token
    assert raw["owner_worker_id"] == "worker0001"
    started = datetime.fromisoformat(raw["started_at"])
    assert started.utcoffset() == UTC.utcoffset(None)
    marker = read_attempt_marker(directory)
    assert marker.retry_count == 2
    assert marker.task_def_name == "render_audio"


def test_existing_directory_is_never_reused(tmp_path: Path) -> None:
    owner = new_workspace_owner("w")
    create_attempt_workspace(tmp_path, make_attempt(), execution_id="e", owner=owner)
    with pytest.raises(FileExistsError):
        create_attempt_workspace(tmp_path, make_attempt(), execution_id="e", owner=owner)


def test_worker_id_falls_back_to_env_then_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERAGO_WORKER_ID", "envworker0003")
    assert new_workspace_owner().worker_id == "envworker0003"
    monkeypatch.delenv("PERAGO_WORKER_ID")
    assert new_workspace_owner().worker_id.startswith("pid-")


def test_owner_registry_is_thread_safe() -> None:
    owners = [new_workspace_owner("w") for _ in range(200)]

    def churn(chunk: list) -> None:  # type: ignore[type-arg]
        for owner in chunk:
            register_active_workspace_owner(owner)

    threads = [threading.Thread(target=churn, args=(owners[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {owner.token for owner in owners} <= active_workspace_owner_tokens()
    for owner in owners:
        unregister_active_workspace_owner(owner)
    assert not {owner.token for owner in owners} & active_workspace_owner_tokens()


def test_cleanup_refuses_directories_without_marker(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a Perago attempt workspace"):
        cleanup_attempt_workspace(tmp_path / "keep")
    assert (tmp_path / "keep").is_dir()
    assert safe_cleanup_attempt_workspace(tmp_path / "keep") is False


def test_cleanup_removes_attempt_directory(tmp_path: Path) -> None:
    directory = create_attempt_workspace(
        tmp_path, make_attempt(), execution_id="e", owner=new_workspace_owner("w")
    )
    (directory / "a" / "b").mkdir(parents=True)
    (directory / "a" / "b" / "f.txt").write_text("x")
    assert safe_cleanup_attempt_workspace(directory) is True
    assert not directory.exists()
    assert tmp_path.exists()


def test_read_marker_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / ATTEMPT_WORKSPACE_MARKER).write_text("[1]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_attempt_marker(tmp_path)
    (tmp_path / ATTEMPT_WORKSPACE_MARKER).write_text('{"task_id": "x"}')
    with pytest.raises(ValueError, match="malformed"):
        read_attempt_marker(tmp_path)
