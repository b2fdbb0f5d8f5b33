"""Where a workspace file lives in lakeFS, and which workspace entries can be published.

A workspace with prefix ``audio`` maps local ``a/b.wav`` to object ``audio/a/b.wav``; prefix ``/``
maps the whole repository. Publication stages only what the snapshot's change set names; each
entry is checked here first (regular files only, never reached through a symlink).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from pathlib import Path, PurePosixPath

from perago.definition.workspace import WorkspaceSpec
from perago.errors import TaskDefinitionError, TaskInputError

__all__ = [
    "canonical_object_path",
    "check_publishable_entry",
    "workspace_object_path",
    "workspace_object_prefix",
]

_DRIVE = re.compile(r"^[A-Za-z]:")


def workspace_object_prefix(spec: WorkspaceSpec) -> str:
    """``""`` for the repository root, else the normalised prefix (no slashes at either end)."""
    return "" if spec.prefix == "/" else spec.prefix


def canonical_object_path(path: str) -> str:
    """A relative ``/``-separated path with no empty, ``.`` or ``..`` segment, or raise."""
    if not path or "\\" in path or path.startswith("/") or _DRIVE.match(path):
        raise TaskDefinitionError(f"object path {path!r} cannot be represented in a workspace")
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise TaskDefinitionError(f"object path {path!r} cannot be represented in a workspace")
    return path


def workspace_object_path(spec: WorkspaceSpec, local_relative_path: str | os.PathLike[str]) -> str:
    relative = canonical_object_path(PurePosixPath(os.fspath(local_relative_path)).as_posix())
    prefix = workspace_object_prefix(spec)
    return f"{prefix}/{relative}" if prefix else relative


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _lstat_below(workspace_dir: Path, relative: str) -> os.stat_result:
    """``lstat`` of ``relative`` reached by a descriptor walk from ``workspace_dir`` that refuses
    a symlink at every component (``O_NOFOLLOW``), the workspace itself included: a path whose
    parent was swapped for a symlink can never lead outside the workspace."""
    parts = PurePosixPath(canonical_object_path(relative)).parts
    fd = _open_directory(workspace_dir, None, str(workspace_dir))
    try:
        for index, part in enumerate(parts[:-1]):
            child = _open_directory(part, fd, "/".join(parts[: index + 1]))
            os.close(fd)
            fd = child
        return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _open_directory(path: str | Path, dir_fd: int | None, shown: str) -> int:
    try:
        return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        # O_NOFOLLOW | O_DIRECTORY on a symlink fails with ELOOP or ENOTDIR: say which it was.
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            with contextlib.suppress(OSError):
                if stat.S_ISLNK(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    raise TaskInputError(
                        f"workspace publication does not support symlinks: {shown}"
                    ) from None
        raise


def check_publishable_entry(workspace_dir: Path, relative: str) -> os.stat_result:
    """lstat a workspace entry to publish (never through a symlinked directory on the way);
    symlinks and special files fail clearly."""
    info = _lstat_below(workspace_dir, relative)
    if stat.S_ISLNK(info.st_mode):
        raise TaskInputError(f"workspace publication does not support symlinks: {relative}")
    if not stat.S_ISREG(info.st_mode):
        raise TaskInputError(
            f"workspace publication supports only regular files; {relative} is not one"
        )
    return info
