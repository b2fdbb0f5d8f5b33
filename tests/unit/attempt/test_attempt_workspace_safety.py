"""What a task body may do to its workspace, through the attempt core with the real snapshot
engine: empty and recreate it (fine), replace it by a symlink (fails, nothing outside is read or
deleted), leave fifos/sockets/devices (fails naming the path, even when nothing else changed)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from perago.attempt.core import StagedWorkspace, run_workspace_task_attempt
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine.snapshot import ChangeSet, take_snapshot
from perago.errors import TaskInputError
from perago.lakefs.paths import check_publishable_entry
from tests.unit.conftest import WORKSPACE, Output, Params, make_attempt, make_task


class Collaborators:
    """Download writes two files; stage/publish record what they were given."""

    def __init__(self) -> None:
        self.changes: ChangeSet | None = None
        self.calls: list[str] = []
        self.directory: Path | None = None

    def download(self, workspace: WorkspaceInput, spec: WorkspaceSpec, directory: Path) -> Any:
        self.directory = directory
        (directory / "keep.txt").write_text("keep")
        (directory / "sub").mkdir()
        (directory / "sub" / "b.txt").write_text("b")
        return take_snapshot(directory)

    def stage(self, directory: Path, *args: Any, changes: ChangeSet) -> StagedWorkspace:
        self.calls.append("stage")
        self.changes = changes
        return StagedWorkspace("repo", "staging", "C")

    def publish(self, *args: Any) -> str:
        self.calls.append("publish")
        return "M"

    def cleanup_staging(self, staged: StagedWorkspace) -> None:
        self.calls.append("cleanup_staging")

    def noop(self, *args: Any) -> str:
        self.calls.append("noop")
        return "c0ffee"

    def run(self, body: Callable[[Path, Params], Output], root: Path) -> Any:
        return run_workspace_task_attempt(
            make_task(body),
            {"workspace": dict(WORKSPACE), "params": {"name": "n"}},
            make_attempt(),
            root,
            download_workspace=self.download,
            load_current_attempt=lambda attempt: attempt,
            stage_workspace=self.stage,
            publish_workspace=self.publish,
            cleanup_staging=self.cleanup_staging,
            complete_noop_workspace=self.noop,
        )


def test_a_body_that_empties_and_recreates_its_workspace_is_fine(tmp_path: Path) -> None:
    def recreate(workspace: Path, params: Params) -> Output:
        shutil.rmtree(workspace)  # the marker goes with it
        workspace.mkdir()
        (workspace / "fresh.txt").write_text("new")
        return Output(ok=True)

    fake = Collaborators()
    result = fake.run(recreate, tmp_path)
    assert result.status == "COMPLETED", result.reason_for_incompletion
    assert fake.changes is not None
    assert fake.changes.added == ("fresh.txt",)
    assert fake.changes.removed == ("keep.txt", "sub/b.txt")
    assert list(tmp_path.iterdir()) == []  # cleaned although the marker was gone


def test_a_workspace_replaced_by_a_symlink_fails_and_nothing_outside_is_touched(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "passwd").write_text("root:x:0:0")
    root = tmp_path / "root"

    def escape(workspace: Path, params: Params) -> Output:
        shutil.rmtree(workspace)
        os.symlink(outside, workspace)
        return Output(ok=True)

    fake = Collaborators()
    result = fake.run(escape, root)
    assert result.status == "FAILED"
    reason = result.reason_for_incompletion or ""
    assert reason.startswith("WorkspaceSafetyError: workspace "), reason
    assert str(root / "task_id=task-1-exec=exec-1") in reason
    assert "was replaced by a symlink to" in reason
    assert "\n" not in reason
    assert fake.calls == []  # never staged, published or completed
    assert (outside / "etc" / "passwd").read_text() == "root:x:0:0"  # target intact
    assert list(root.iterdir()) == []  # the symlink itself is gone


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_an_unsupported_file_alone_fails_the_attempt_with_its_path(
    tmp_path: Path, kind: str
) -> None:
    """A change made only of a fifo or socket never counts as "changed"; it must not pass as a
    no-op completion."""

    def leave_special(workspace: Path, params: Params) -> Output:
        target = workspace / "sub" / f"special.{kind}"
        if kind == "fifo":
            os.mkfifo(target)
        else:  # what bind() leaves behind (mknod: no AF_UNIX path length limit here)
            os.mknod(target, 0o600 | stat.S_IFSOCK)
        return Output(ok=True)

    fake = Collaborators()
    result = fake.run(leave_special, tmp_path)
    assert result.status == "FAILED"
    assert result.reason_for_incompletion == (
        f"TaskInputError: workspace publication supports only regular files; "
        f"sub/special.{kind} is a {kind}"
    )
    assert fake.calls == []
    assert list(tmp_path.iterdir()) == []


def test_several_unsupported_files_are_counted(tmp_path: Path) -> None:
    def fifos(workspace: Path, params: Params) -> Output:
        for name in ("a", "b", "c"):
            os.mkfifo(workspace / name)
        (workspace / "real.txt").write_text("a real change too")
        return Output(ok=True)

    fake = Collaborators()
    result = fake.run(fifos, tmp_path)
    assert result.reason_for_incompletion == (
        "TaskInputError: workspace publication supports only regular files; a is a fifo "
        "(and 2 more unsupported entries)"
    )
    assert fake.calls == []


def test_publishing_never_walks_through_a_symlinked_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(TaskInputError, match=r"does not support symlinks: sub$"):
        check_publishable_entry(workspace, "sub/secret.txt")
    (workspace / "real").mkdir()
    (workspace / "real" / "f.txt").write_text("f")
    assert check_publishable_entry(workspace, "real/f.txt").st_size == 1
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(workspace, target_is_directory=True)
    with pytest.raises(TaskInputError, match="does not support symlinks"):
        check_publishable_entry(linked_root, "real/f.txt")
