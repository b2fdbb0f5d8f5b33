"""Owner-only files and directories: the one way perago writes secrets and creates its roots.

* ``write_private_file`` replaces a file atomically with mode 0600: the data goes to a fresh
  temporary file in the same directory, created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` (so a stale
  leftover or a symlink planted at the temporary path is never reused or written through), is
  fsynced and then renamed over the target. Readers see the old or the new file, never half of
  one, and the new file is never readable by anyone else, whatever the umask or old file said.
* ``replace_file`` is the same atomic replacement for files others may read (status, locks,
  TaskDefs), with a mode of the caller's choosing and no fsync unless asked;
  ``remove_leftover_temporaries`` removes the temporary files of writers killed between the write
  and the rename (only those old enough that no live writer can still be using them).
* ``ensure_private_directory`` is ``mkdir -p`` whose new directories are 0700.
* ``unsafe_directory_reason`` says why a directory must not be trusted with perago's files (a
  symlink, owned by another user, or writable by others without the sticky bit).
* ``open_private_append`` opens a log file 0600 for appending without following a symlink.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import stat
import time
from pathlib import Path

__all__ = [
    "PRIVATE_DIRECTORY_MODE",
    "PRIVATE_FILE_MODE",
    "ensure_private_directory",
    "open_private_append",
    "remove_leftover_temporaries",
    "replace_file",
    "unsafe_directory_reason",
    "write_private_file",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700
_TEMP_ATTEMPTS = 16
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _temp_name(target: Path) -> Path:
    """A new temporary path next to ``target`` (random, so leftovers never collide for long)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")


# A write and its rename take milliseconds; a temporary file this old lost its writer.
LEFTOVER_TEMPORARY_AGE_S = 60.0


def _create_exclusive(target: Path, mode: int = PRIVATE_FILE_MODE) -> tuple[int, Path]:
    """A brand-new file next to ``target``; an existing name (file or link) is skipped."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(_TEMP_ATTEMPTS):
        candidate = _temp_name(target)
        try:
            return os.open(candidate, flags, mode), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {target}")


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable; some filesystems cannot open or fsync a directory: best effort.
    try:
        fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes | str) -> None:
    """Atomically replace ``path`` by ``data`` with mode 0600 (see the module docstring).

    A symlink at ``path`` itself is replaced by the new file, never written through.
    """
    replace_file(path, data, mode=PRIVATE_FILE_MODE, durable=True)


def replace_file(
    path: Path, data: bytes | str, *, mode: int = 0o644, durable: bool = False
) -> None:
    """Atomically replace ``path`` by ``data`` with exactly ``mode``; fsynced when ``durable``.

    The temporary file is removed on any failure (a kill between the write and the rename
    leaves one for ``remove_leftover_temporaries``).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temporary = _create_exclusive(path, mode)
    try:
        try:
            # The umask can only take bits away; make the mode exact anyway.
            os.fchmod(fd, mode)
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        _fsync_directory(path.parent)


def remove_leftover_temporaries(
    path: Path, *, older_than: float = LEFTOVER_TEMPORARY_AGE_S, now: float | None = None
) -> list[Path]:
    """Remove the temporary files of ``replace_file(path)`` older than ``older_than`` seconds."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for candidate in candidates:
        try:
            if now - candidate.lstat().st_mtime < older_than:
                continue
            candidate.unlink()
        except OSError:
            continue
        removed.append(candidate)
    return removed


def ensure_private_directory(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents, each new one with mode 0700; returns those created.

    Existing directories are left as they are (their safety is ``unsafe_directory_reason``'s job).
    """
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    created: list[Path] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIRECTORY_MODE)
        except FileExistsError:
            continue
        # The umask may have removed owner bits; never follow a link swapped in meanwhile.
        fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        try:
            os.fchmod(fd, PRIVATE_DIRECTORY_MODE)
        finally:
            os.close(fd)
        created.append(directory)
    if not path.is_dir():
        # Same error mkdir -p gives for a path that exists as something else.
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    return created


def unsafe_directory_reason(path: Path) -> str | None:
    """Why ``path`` must not hold perago's files, or ``None`` when it is safe (or missing).

    Unsafe: a symlink; owned by a user other than the current one or root; writable by its group
    or by everyone without the sticky bit (anyone could then swap its entries for links).
    """
    try:
        info = os.lstat(path)
    except OSError:
        return None  # missing or unreachable: creating or writing it fails with its own error
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return None  # not a directory: creating or writing inside it fails with its own error
    uid = os.geteuid()
    if info.st_uid not in (uid, 0):
        return f"is owned by uid {info.st_uid}, not by the current user (uid {uid})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        kind = "world" if info.st_mode & stat.S_IWOTH else "group"
        return f"is {kind}-writable without the sticky bit (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def open_private_append(path: Path) -> int:
    """Open ``path`` for appending, creating it 0600; a symlink at ``path`` is an error (ELOOP)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.fchmod(fd, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd
