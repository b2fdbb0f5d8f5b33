"""A console stream that never blocks the caller: a console nobody reads must not stop attempts.

A terminal held by Ctrl-S or a log pipe whose reader stalled fills up, and a plain ``write``
then blocks whatever logged, an attempt's thread included (and, through loguru's handler lock,
every thread that logs). Here a line is tried at once through a private non-blocking handle on
the same pipe or terminal (``/proc/self/fd/N`` opened anew: its own open file description, so
``O_NONBLOCK`` reaches no other process sharing the console); what does not fit waits, in order,
for a writer thread of its own, which writes raw bytes with ``os.write`` and so never holds a
Python lock while blocked (the interpreter flushing ``sys.stderr`` at exit cannot hang on it).
Regular files are written at once; a socket (systemd's journal stream; it has no handle to
reopen) is tried with a ``MSG_DONTWAIT`` send, which does not block for that call alone. At most
``MAX_PENDING`` lines wait; beyond that lines are dropped and a note says how many, where they
were (the JSONL files keep every record).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import socket
import stat
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

MAX_PENDING = 1000
# How long an exiting process waits for the lines still pending (atexit, and before os._exit).
EXIT_FLUSH_S = 2.0


@dataclass(frozen=True)
class _Target:
    """One console: the caller's fd, a duplicate of it for the writer thread (a number nobody
    closes under it), and the private non-blocking handle (a pipe or terminal) or socket (on a
    duplicate of its own) where there is one."""

    identity: tuple[int, int, int]
    fd: int
    regular: bool
    nonblocking_fd: int | None
    sock: socket.socket | None = None

    def close(self) -> None:
        for fd in (self.fd, self.nonblocking_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()


class _Dropped:
    def __init__(self, target: _Target) -> None:
        self.target = target
        self.count = 1

    def data(self) -> bytes:
        return (
            f"perago: warning: {self.count} console line(s) dropped: the console was not read\n"
        ).encode()


def _socket_on(fd: int) -> socket.socket | None:
    """A socket object on a duplicate of ``fd`` (its flags are the shared description's: left
    alone; each send says ``MSG_DONTWAIT`` instead)."""
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None


def _open_target(fd: int, info: os.stat_result) -> _Target | None:
    try:
        own = os.dup(fd)
    except OSError:
        return None
    regular = stat.S_ISREG(info.st_mode)
    nonblocking: int | None = None
    if stat.S_ISSOCK(info.st_mode):
        return _Target((fd, info.st_dev, info.st_ino), own, regular, None, _socket_on(fd))
    if not regular:
        try:
            nonblocking = os.open(
                f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
            )
        except OSError:
            nonblocking = None  # no /proc: every line goes through the thread
    return _Target((fd, info.st_dev, info.st_ino), own, regular, nonblocking)


def write_all(fd: int, data: bytes) -> None:
    """Every byte of ``data`` to ``fd``, waiting while it is full (a regular file never is)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:  # somebody set O_NONBLOCK on the shared description
            select.select([], [fd], [], 1.0)


class ConsoleStream:
    """Lines to ``sys.<name>`` (looked up at each write, so a replaced stream is honoured)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._target: _Target | None = None
        self.reset()

    def hold(self) -> None:
        """Take the stream's lock (across a fork: never held while blocked)."""
        self._lock.acquire()

    def unhold(self) -> None:
        self._lock.release()

    def reset(self) -> None:
        """A fresh state (also a forked child's: its parent writes the lines it had pending)."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[tuple[_Target, bytes] | _Dropped] = deque()
        self._writing = False
        self._thread: threading.Thread | None = None
        # Consoles replaced while lines for them still waited: closed once the queue drains.
        self._retired: list[_Target] = []

    def _target_for(self, fd: int) -> _Target | None:
        try:
            info = os.fstat(fd)
        except OSError:
            return None
        current = self._target
        if current is not None and current.identity == (fd, info.st_dev, info.st_ino):
            return current
        # The console was replaced (a test's pipe, a redirected stderr): its handles are closed
        # now, or once the lines queued for it are written.
        if current is not None:
            if self._pending or self._writing:
                self._retired.append(current)
            else:
                current.close()
        self._target = _open_target(fd, info)
        return self._target

    def write_line(self, line: str) -> None:
        """Write ``line`` now if the console takes it, else queue it; never blocks, never raises."""
        text = line if line.endswith("\n") else line + "\n"
        stream: Any = getattr(sys, self._name, None)
        if stream is None:
            return
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd is None:
            self._write_to_buffer(stream, text)  # a test's capture buffer: cannot block
            return
        data = text.encode(getattr(stream, "encoding", None) or "utf-8", "replace")
        with self._lock:
            target = self._target_for(fd)
            if target is None:
                return  # a closed console: nothing to tell it
            if not self._pending and not self._writing:
                data = data[self._write_now(target, data) :]
                if not data:
                    return
            self._queue(target, data)

    @staticmethod
    def _write_to_buffer(stream: Any, text: str) -> None:
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass

    @staticmethod
    def _write_now(target: _Target, data: bytes) -> int:
        """How many bytes of ``data`` went out without waiting (all of them when dropped)."""
        try:
            if target.regular:
                write_all(target.fd, data)  # a file's write does not wait for a reader
                return len(data)
            if target.sock is not None:
                return target.sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            if target.nonblocking_fd is None:
                return 0
            return os.write(target.nonblocking_fd, data)
        except BlockingIOError:
            return 0
        except OSError:
            return len(data)  # a broken console (no reader left): drop, as a console would

    def _queue(self, target: _Target, data: bytes) -> None:
        if len(self._pending) < MAX_PENDING:
            self._pending.append((target, data))
        elif isinstance(self._pending[-1], _Dropped):
            self._pending[-1].count += 1
        else:
            self._pending.append(_Dropped(target))
        if self._thread is None:
            thread = threading.Thread(target=self._drain, name="perago-console", daemon=True)
            try:
                thread.start()
            except RuntimeError:
                # No thread to be had (an interpreter shutting down refuses new ones, or the
                # process limit): what waits would never be written, so it is dropped.
                self._pending.clear()
                return
            self._thread = thread
        self._changed.notify_all()

    def _drain(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._changed.wait()
                item = self._pending.popleft()
                self._writing = True
            try:
                if isinstance(item, _Dropped):
                    write_all(item.target.fd, item.data())
                else:
                    write_all(item[0].fd, item[1])
            except Exception:  # the console thread must outlive a broken console
                pass
            finally:
                with self._lock:
                    self._writing = False
                    if not self._pending:
                        for retired in self._retired:
                            retired.close()
                        self._retired.clear()
                    self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every pending line; True when none is left."""
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            return False
        try:
            return self._changed.wait_for(
                lambda: not self._pending and not self._writing,
                timeout=max(deadline - time.monotonic(), 0.0),
            )
        finally:
            self._lock.release()


_streams: dict[str, ConsoleStream] = {}
_streams_lock = threading.Lock()


def console_stream(name: str) -> ConsoleStream:
    """The one console stream of this process for ``stderr`` or ``stdout``."""
    with _streams_lock:
        stream = _streams.get(name)
        if stream is None:
            stream = _streams[name] = ConsoleStream(name)
            if len(_streams) == 1:
                atexit.register(flush_consoles)
        return stream


def flush_consoles(timeout: float = EXIT_FLUSH_S) -> None:
    """Give the lines still pending a last chance (a process about to end), ``timeout`` in all."""
    deadline = time.monotonic() + timeout
    for stream in list(_streams.values()):
        stream.flush(max(deadline - time.monotonic(), 0.0))


def _before_fork() -> None:
    # Every lock held across the fork (none is held while blocked), so no state is half-changed
    # in the child.
    _streams_lock.acquire()
    for stream in _streams.values():
        stream.hold()


def _after_fork_in_parent() -> None:
    for stream in _streams.values():
        stream.unhold()
    _streams_lock.release()


def _after_fork_in_child() -> None:
    # The child has none of its parent's threads: a writer thread it inherited the handle of
    # would never write. Its parent writes the lines that were pending.
    for stream in _streams.values():
        stream.reset()
    _streams_lock.release()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
