"""Remove a directory tree below a directory descriptor, never following a symlink, with the
unlinks spread over a few threads.

An unlink on ext4 mostly waits (for inode-table blocks, the journal, and online discard on a
``discard`` mount), so one thread leaves the disk idle: removing 100,000 files of 1 KiB took
8.8-9.0 s with ``shutil.rmtree`` and 3.7-3.8 s with four threads on this two-core machine, and
unlinks in a single flat directory gained as much (4.0 s against 1.6 s for 50,000). The walk
itself stays on the calling thread, one directory descriptor per level as in
``shutil.rmtree(dir_fd=...)``: each directory is opened relative to its parent with
``O_NOFOLLOW`` and checked to be the entry just listed, so a symlink or a directory swapped in
is unlinked, never descended into.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["REMOVE_THREADS", "remove_tree_at"]

# Four unlinkers measured best here (two cores, virtio disk); more add nothing but threads.
REMOVE_THREADS = 4
_BATCH = 256
# Deeper than this, a subtree is left to ``shutil.rmtree`` (one thread): the walk here holds one
# descriptor and one Python frame per level.
_MAX_DEPTH = 64
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree_at(parent_fd: int, name: str, *, threads: int = REMOVE_THREADS) -> None:
    """Remove the directory ``name`` of ``parent_fd`` and everything below it. Entries that
    vanish meanwhile (another remover of the same tree) are not an error; any other failure
    raises ``OSError`` once the unlinks already started have ended."""
    with _Remover(threads) as remover:
        remover.remove_directory(parent_fd, name, 0)


class _Remover:
    def __init__(self, threads: int) -> None:
        self._threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> _Remover:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _submit(self, work: Callable[[], None]) -> Future[None]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="perago-remove")
        return self._pool.submit(work)

    def remove_directory(self, parent_fd: int, name: str, depth: int) -> None:
        if depth >= _MAX_DEPTH:
            shutil.rmtree(name, dir_fd=parent_fd, onerror=_ignore_missing)
            return
        try:
            listed = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            fd = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return
        except OSError:  # not a directory (any more): a symlink or file in its place
            _unlink(parent_fd, name)
            return
        try:
            if not os.path.samestat(listed, os.fstat(fd)):
                _unlink(parent_fd, name)  # swapped between the stat and the open
                return
            self._empty(fd, depth)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(name, dir_fd=parent_fd)

    def _empty(self, fd: int, depth: int) -> None:
        pending: list[Future[None]] = []
        batch: list[str] = []
        try:
            with os.scandir(fd) as entries:
                listed = list(entries)
            for entry in listed:
                if _is_directory(entry):
                    self.remove_directory(fd, entry.name, depth + 1)
                    continue
                batch.append(entry.name)
                if len(batch) == _BATCH:
                    pending.append(self._submit(_unlinker(fd, batch)))
                    batch = []
            if batch:
                if pending:
                    pending.append(self._submit(_unlinker(fd, batch)))
                else:
                    _unlinker(fd, batch)()  # a small directory: no thread needed
        finally:
            # The descriptor is closed by the caller: every unlink using it must be done first.
            failures = [f.exception() for f in pending]
        for failure in failures:
            if failure is not None:
                raise failure


def _ignore_missing(
    function: object, path: str, exc_info: tuple[type, BaseException, object]
) -> None:
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def _is_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _unlinker(fd: int, names: list[str]) -> Callable[[], None]:
    """Unlink every name; the first failure is raised once the others were tried (one refused
    file does not leave the rest of its batch behind)."""

    def unlink_all() -> None:
        first: OSError | None = None
        for name in names:
            try:
                _unlink(fd, name)
            except OSError as failure:
                first = first or failure
        if first is not None:
            raise first

    return unlink_all


def _unlink(fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        pass
    except (IsADirectoryError, PermissionError):
        # A directory appeared under a name listed as a file (unlink says EISDIR, or EPERM on
        # Linux): removed as one, checked again on the way in.
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(info.st_mode):
            raise
        shutil.rmtree(name, dir_fd=fd, onerror=_ignore_missing)
