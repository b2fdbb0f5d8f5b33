"""Object paths of workspace files, and which workspace entries can be published."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perago.attempt.directory import ATTEMPT_WORKSPACE_MARKER
from perago.definition.workspace import WorkspaceSpec
from perago.errors import TaskDefinitionError, TaskInputError
from perago.lakefs.paths import (
    check_publishable_entry,
    workspace_object_path,
    workspace_object_prefix,
)

AUDIO = WorkspaceSpec(prefix="audio")
ROOT = WorkspaceSpec()


def test_prefix_and_object_paths() -> None:
    assert workspace_object_prefix(ROOT) == ""
    assert workspace_object_prefix(AUDIO) == "audio"
    assert workspace_object_path(AUDIO, "a/b.wav") == "audio/a/b.wav"
    assert workspace_object_path(ROOT, Path("a/b.wav")) == "a/b.wav"
    deep_marker = Path("sub") / ATTEMPT_WORKSPACE_MARKER
    assert workspace_object_path(AUDIO, deep_marker) == "audio/sub/" + ATTEMPT_WORKSPACE_MARKER


@pytest.mark.parametrize("bad", ["/a", "a/../b", "a\\b", "C:/x", "", "."])
def test_unrepresentable_paths_fail(bad: str) -> None:
    with pytest.raises(TaskDefinitionError, match="cannot be represented"):
        workspace_object_path(AUDIO, bad)


def test_a_regular_file_is_publishable(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("bbb")
    assert check_publishable_entry(tmp_path, "sub/b.txt").st_size == 3


def test_symlinks_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(TaskInputError, match="does not support symlinks: link"):
        check_publishable_entry(tmp_path, "link")


def test_a_symlinked_directory_on_the_way_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "dir")
    with pytest.raises(TaskInputError, match="does not support symlinks: dir"):
        check_publishable_entry(tmp_path, "dir/f")


def test_special_files_fail_clearly(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(TaskInputError, match="pipe is not one"):
        check_publishable_entry(tmp_path, "pipe")
