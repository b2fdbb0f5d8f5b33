"""Remove a directory tree below a directory descriptor, never following a symlink, with the
unlinks spread over a few threads.

An unlink on ext4 mostly waits (for inode-table blocks, the journal, and online discard on a
``discard`` mount), so one thread leaves the disk idle: removing 100,000 files of 1 KiB took
8.0-8.6 s with ``shutil.rmtree`` and 3.6-4.0 s here with four threads on this two-core machine,
and unlinks in a single flat directory gained as much (4.0 s against 1.6 s for 50,000).

The walk stays on the calling thread and is iterative (a directory deeper than 128 levels is
first moved up to the top of the tree, so no depth needs more descriptors): each directory is
opened relative to its parent with ``O_NOFOLLOW | O_DIRECTORY | O_NONBLOCK`` and checked to be
the entry just listed, so a symlink or anything swapped in is unlinked, never descended into,
and nothing (a FIFO) can block the open. Each batch of file names goes to an unlinker thread
with a duplicate of its directory's descriptor, closed by that thread when the batch is done
(at most two batches per thread wait): whatever happens to the walk (an error, Ctrl-C), no
thread ever uses a descriptor number that was closed and reused for another directory. A
directory is removed once every batch of it ended; a name listed as a file that has become a
directory is walked like the others.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import stat
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field

__all__ = ["REMOVE_THREADS", "remove_tree_at"]

# Four unlinkers measured best here (two cores, virtio disk); more add nothing but threads.
REMOVE_THREADS = 4
_BATCH = 256
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# unlink(2) of a directory: EISDIR, or EPERM on Linux.
_IS_DIRECTORY = (errno.EISDIR, errno.EPERM)
# How often an entry may turn out to be something else between its stat and its open.
_SWAP_RETRIES = 8
# The walk holds one descriptor per level: a directory deeper than this is first moved up to
# the top of the tree (renamed within it), so a tree of any depth needs at most this many.
_MAX_DEPTH = 128


def remove_tree_at(parent_fd: int, name: str, *, threads: int = REMOVE_THREADS) -> None:
    """Remove the directory ``name`` of ``parent_fd`` and everything below it (a symlink or file
    named ``name`` is unlinked). Entries that vanish meanwhile (another remover of the same tree)
    are not an error; any other failure raises ``OSError`` once the walk has stopped. A tree
    deeper than the process may hold descriptors open fails with ``EMFILE``."""
    with _Unlinkers(threads) as unlinkers:
        _walk(parent_fd, name, unlinkers)


class _Unlinkers:
    """A few threads unlinking batches of names, each batch on a descriptor of its own; at most
    two batches per thread wait, so descriptors stay bounded however large a directory is."""

    def __init__(self, threads: int) -> None:
        self._queue: queue.SimpleQueue[tuple[int, list[str], Future[list[str]]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._wanted = max(0, threads)
        self._slots = threading.BoundedSemaphore(2 * max(1, threads))

    def __enter__(self) -> _Unlinkers:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self._drop_waiting()  # an error or interrupt: stop soon, not after every batch
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def submit(self, fd: int, names: list[str]) -> Future[list[str]]:
        """Unlink ``names`` of directory ``fd``; the future holds the names that turned out to be
        directories (or the first failure). Runs inline when no thread can be had."""
        future: Future[list[str]] = Future()
        if not self._threads and not self._start():
            try:
                future.set_result(_unlink_all(fd, names))
            except OSError as failure:
                future.set_exception(failure)
            return future
        self._slots.acquire()
        try:
            own = os.dup(fd)
        except BaseException:
            self._slots.release()
            raise
        try:
            self._queue.put((own, names, future))
        except BaseException:
            os.close(own)
            self._slots.release()
            raise
        return future

    def _drop_waiting(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                fd, _, future = item
                os.close(fd)
                self._slots.release()
                future.cancel()

    def _start(self) -> bool:
        while len(self._threads) < self._wanted:
            thread = threading.Thread(target=self._work, name="perago-remove", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (interpreter shutdown, process limit)
                self._wanted = len(self._threads)
                break
            self._threads.append(thread)
        return bool(self._threads)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fd, names, future = item
            try:
                if future.set_running_or_notify_cancel():
                    future.set_result(_unlink_all(fd, names))
            except BaseException as failure:
                future.set_exception(failure)
            finally:
                os.close(fd)
                self._slots.release()


@dataclass
class _Frame:
    """One directory being emptied: its descriptor, what is left of its listing, and the batches
    of it still with the unlinkers."""

    parent_fd: int
    name: str
    fd: int
    subdirectories: list[str] = field(default_factory=list)
    pending: list[Future[list[str]]] = field(default_factory=list)


def _walk(top_parent_fd: int, top_name: str, unlinkers: _Unlinkers) -> None:
    stack: list[_Frame] = []  # every descriptor of the walk is on it as soon as it is opened
    try:
        if not _open_frame(top_parent_fd, top_name, unlinkers, stack):
            return
        top = stack[0]
        while stack:
            frame = stack[-1]
            if frame.subdirectories and len(stack) >= _MAX_DEPTH:
                _move_to_top(frame, frame.subdirectories.pop(), top)
                continue
            if frame.subdirectories:
                _open_frame(frame.fd, frame.subdirectories.pop(), unlinkers, stack)
                continue
            # Every batch must have ended before the directory can go; names that became
            # directories meanwhile are walked first.
            for batch in frame.pending:
                frame.subdirectories += batch.result()
            frame.pending.clear()
            if frame.subdirectories:
                continue
            stack.pop()
            os.close(frame.fd)
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(frame.name, dir_fd=frame.parent_fd)
    finally:
        for frame in stack:  # an error or interrupt: the unlinkers hold their own descriptors
            os.close(frame.fd)


def _move_to_top(frame: _Frame, name: str, top: _Frame) -> None:
    """Rename directory ``name`` of ``frame`` to a fresh name directly in the top directory
    (never out of the tree), where the walk reaches it from a shallow level."""
    fresh = f".perago-removing-{uuid.uuid4().hex}"
    try:
        os.rename(name, fresh, src_dir_fd=frame.fd, dst_dir_fd=top.fd)
    except FileNotFoundError:
        return
    top.subdirectories.append(fresh)


def _open_frame(parent_fd: int, name: str, unlinkers: _Unlinkers, stack: list[_Frame]) -> bool:
    """Push directory ``name`` of ``parent_fd`` on ``stack`` with its files handed to the
    unlinkers; False when it is gone or was not a directory (then unlinked)."""
    for _ in range(_SWAP_RETRIES):
        try:
            listed = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
            fd = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return False
        except OSError as failure:
            if failure.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            if not _unlink(parent_fd, name):  # a symlink or file in its place: gone now
                return False
            continue  # a directory again: list that one
        try:
            same = os.path.samestat(listed, os.fstat(fd))
            if same:
                frame = _Frame(parent_fd, name, fd)
                stack.append(frame)
        except BaseException:
            os.close(fd)
            raise
        if same:
            _list_into(frame, unlinkers)
            return True
        os.close(fd)  # swapped between the stat and the open: look again
    raise OSError(errno.EAGAIN, f"{name!r} kept changing while it was being removed")


def _list_into(frame: _Frame, unlinkers: _Unlinkers) -> None:
    with os.scandir(frame.fd) as entries:
        names = [(entry.name, _is_directory(entry)) for entry in entries]
    files = [entry for entry, directory in names if not directory]
    frame.subdirectories = [entry for entry, directory in names if directory]
    for start in range(0, len(files), _BATCH):
        frame.pending.append(unlinkers.submit(frame.fd, files[start : start + _BATCH]))


def _is_directory(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _unlink_all(fd: int, names: list[str]) -> list[str]:
    """Unlink every name of directory ``fd``; the names that are directories. The first failure
    is raised once every name was tried (one refused file does not leave its batch behind)."""
    directories: list[str] = []
    first: OSError | None = None
    for name in names:
        try:
            if _unlink(fd, name):
                directories.append(name)
        except OSError as failure:
            first = first or failure
    if first is not None:
        raise first
    return directories


def _unlink(fd: int, name: str) -> bool:
    """Unlink ``name``; True when it is a directory (left for the walk)."""
    try:
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return False
    except OSError as failure:
        if failure.errno not in _IS_DIRECTORY:
            raise
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(mode):
            return True
        raise
    return False
