"""Projection between lakeFS object paths and workspace-relative local paths, and sync plans.

A workspace with prefix ``audio`` maps object ``audio/a/b.wav`` to local ``a/b.wav``; prefix ``/``
maps the whole repository. Only the attempt marker at the workspace root
(``.perago-attempt.json``) is reserved: a file of that name deeper in the tree is ordinary data.

The sync plan here describes the full desired state (every local file is an upload); the lakeFS
runtime stages only what changed, using the snapshot's change set instead. These helpers are the
compatible public surface for callers that want the full projection.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from perago.attempt.directory import ATTEMPT_WORKSPACE_MARKER
from perago.definition.workspace import WorkspaceSpec
from perago.errors import TaskDefinitionError, TaskInputError

__all__ = [
    "WorkspaceDownloadFile",
    "WorkspaceSyncPlan",
    "WorkspaceUploadFile",
    "build_workspace_sync_plan",
    "canonical_object_path",
    "workspace_delete_object_paths",
    "workspace_download_files",
    "workspace_local_path",
    "workspace_object_path",
    "workspace_object_prefix",
    "workspace_upload_files",
]

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class WorkspaceUploadFile:
    local_path: Path
    object_path: str


@dataclass(frozen=True)
class WorkspaceDownloadFile:
    object_path: str
    local_path: Path


@dataclass(frozen=True)
class WorkspaceSyncPlan:
    upload_files: tuple[WorkspaceUploadFile, ...]
    delete_object_paths: tuple[str, ...]

    @property
    def changed_object_count(self) -> int:
        return len(self.upload_files) + len(self.delete_object_paths)

    @property
    def upload_bytes(self) -> int:
        return sum(upload.local_path.stat().st_size for upload in self.upload_files)


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


def workspace_local_path(spec: WorkspaceSpec, object_path: str) -> Path | None:
    """Workspace-relative path of ``object_path``; None when outside the prefix or reserved."""
    canonical = canonical_object_path(object_path)
    prefix = workspace_object_prefix(spec)
    if prefix:
        if not canonical.startswith(prefix + "/"):
            return None
        canonical = canonical_object_path(canonical[len(prefix) + 1 :])
    if canonical == ATTEMPT_WORKSPACE_MARKER:
        return None
    return Path(canonical)


def workspace_upload_files(
    workspace_dir: Path, spec: WorkspaceSpec
) -> tuple[WorkspaceUploadFile, ...]:
    """Every regular file of the workspace as an upload (sorted); symlinks/special files fail."""
    uploads: list[WorkspaceUploadFile] = []
    for relative in sorted(_walk_files(workspace_dir)):
        uploads.append(
            WorkspaceUploadFile(
                local_path=workspace_dir / relative,
                object_path=workspace_object_path(spec, relative),
            )
        )
    return tuple(uploads)


def workspace_download_files(
    workspace_dir: Path, spec: WorkspaceSpec, object_paths: Iterable[str]
) -> tuple[WorkspaceDownloadFile, ...]:
    downloads = []
    for object_path in sorted(object_paths):
        relative = workspace_local_path(spec, object_path)
        if relative is not None:
            downloads.append(WorkspaceDownloadFile(object_path, workspace_dir / relative))
    return tuple(downloads)


def workspace_delete_object_paths(
    spec: WorkspaceSpec,
    existing_object_paths: Iterable[str],
    upload_files: Sequence[WorkspaceUploadFile],
) -> tuple[str, ...]:
    """Existing objects inside the workspace that the uploads no longer contain."""
    kept = {upload.object_path for upload in upload_files}
    return tuple(
        sorted(
            path
            for path in existing_object_paths
            if path not in kept and workspace_local_path(spec, path) is not None
        )
    )


def build_workspace_sync_plan(
    workspace_dir: Path, spec: WorkspaceSpec, existing_object_paths: Iterable[str]
) -> WorkspaceSyncPlan:
    uploads = workspace_upload_files(workspace_dir, spec)
    deletes = workspace_delete_object_paths(spec, existing_object_paths, uploads)
    return WorkspaceSyncPlan(upload_files=uploads, delete_object_paths=deletes)


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


def _walk_files(workspace_dir: Path) -> Iterable[str]:
    for current, dirnames, filenames in os.walk(workspace_dir):
        base = Path(current)
        for name in list(dirnames):
            if (base / name).is_symlink():
                relative = (base / name).relative_to(workspace_dir).as_posix()
                raise TaskInputError(f"workspace publication does not support symlinks: {relative}")
        for name in filenames:
            relative = (base / name).relative_to(workspace_dir).as_posix()
            if relative == ATTEMPT_WORKSPACE_MARKER:
                continue
            check_publishable_entry(workspace_dir, relative)
            yield relative
