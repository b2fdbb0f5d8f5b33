"""Prefix projection and the compatible sync-plan helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perago.attempt.directory import ATTEMPT_WORKSPACE_MARKER
from perago.definition.workspace import WorkspaceSpec
from perago.errors import TaskDefinitionError, TaskInputError
from perago.lakefs.paths import (
    build_workspace_sync_plan,
    workspace_delete_object_paths,
    workspace_download_files,
    workspace_local_path,
    workspace_object_path,
    workspace_object_prefix,
    workspace_upload_files,
)

AUDIO = WorkspaceSpec(prefix="audio")
ROOT = WorkspaceSpec()


def test_prefix_and_object_paths() -> None:
    assert workspace_object_prefix(ROOT) == ""
    assert workspace_object_prefix(AUDIO) == "audio"
    assert workspace_object_path(AUDIO, "a/b.wav") == "audio/a/b.wav"
    assert workspace_object_path(ROOT, Path("a/b.wav")) == "a/b.wav"


@pytest.mark.parametrize(
    ("object_path", "expected"),
    [
        ("audio/a.wav", Path("a.wav")),
        ("audio/x/y/z.wav", Path("x/y/z.wav")),
        ("audio2/a.wav", None),
        ("audio", None),
        ("audio/" + ATTEMPT_WORKSPACE_MARKER, None),
        ("audio/sub/" + ATTEMPT_WORKSPACE_MARKER, Path("sub") / ATTEMPT_WORKSPACE_MARKER),
    ],
)
def test_local_path(object_path: str, expected: Path | None) -> None:
    assert workspace_local_path(AUDIO, object_path) == expected


@pytest.mark.parametrize("bad", ["a//b", "a/", "/a", "a/../b", "./a", "a\\b", "audio/C:/x", ""])
def test_unrepresentable_object_paths_fail(bad: str) -> None:
    with pytest.raises(TaskDefinitionError, match="cannot be represented"):
        workspace_local_path(AUDIO if bad.startswith("audio/") else ROOT, bad)


def test_sync_plan(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("aa")
    (tmp_path / "sub" / "b.txt").write_text("bbb")
    (tmp_path / "sub" / ATTEMPT_WORKSPACE_MARKER).write_text("data, not a marker")
    (tmp_path / ATTEMPT_WORKSPACE_MARKER).write_text("{}")
    plan = build_workspace_sync_plan(
        tmp_path,
        AUDIO,
        ["audio/a.txt", "audio/gone.txt", "other/x", "audio/" + ATTEMPT_WORKSPACE_MARKER],
    )
    assert [u.object_path for u in plan.upload_files] == [
        "audio/a.txt",
        "audio/sub/.perago-attempt.json",
        "audio/sub/b.txt",
    ]
    assert plan.delete_object_paths == ("audio/gone.txt",)
    assert plan.changed_object_count == 4
    assert plan.upload_bytes == 2 + 18 + 3
    uploads = workspace_upload_files(tmp_path, AUDIO)
    assert workspace_delete_object_paths(AUDIO, ["audio/a.txt", "audio/z"], uploads) == ("audio/z",)
    downloads = workspace_download_files(tmp_path, AUDIO, ["audio/z/y", "x/y"])
    assert [(d.object_path, d.local_path) for d in downloads] == [("audio/z/y", tmp_path / "z/y")]


def test_symlinks_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(TaskInputError, match="does not support symlinks: link"):
        workspace_upload_files(tmp_path, ROOT)


def test_special_files_fail_clearly(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(TaskInputError, match="pipe is not one"):
        workspace_upload_files(tmp_path, ROOT)
