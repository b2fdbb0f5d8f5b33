"""A console stream that never blocks the caller: a console nobody reads must not stop attempts.

A terminal held by Ctrl-S or a log pipe whose reader stalled fills up, and a plain ``write``
then blocks whatever logged, an attempt's thread included (and, through loguru's handler lock,
every thread that logs). A line is written at once only where that cannot block: a regular file,
or a pipe with room for a line of at most ``PIPE_BUF`` bytes (the usual case of a container or a
supervisor's pipe: same order, same moment as a plain write). Anything else (a terminal, a
socket, a longer line, a full pipe) waits, in order, for a writer thread of its own. At most
``MAX_PENDING`` lines wait; beyond that lines are dropped and a note says how many, where they
were (the JSONL files keep every record).
"""

from __future__ import annotations

import atexit
import os
import select
import stat
import sys
import threading
import time
from collections import deque
from typing import TextIO

MAX_PENDING = 1000
# How long an exiting process waits for the lines still pending (atexit, and before os._exit).
EXIT_FLUSH_S = 2.0


class _Dropped:
    def __init__(self) -> None:
        self.count = 1

    def text(self) -> str:
        return f"perago: warning: {self.count} console line(s) dropped: the console was not read\n"


def _cannot_block(stream: TextIO, size: int) -> bool:
    """True when writing ``size`` bytes to ``stream`` now cannot block."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return True  # not a file (a test's capture buffer)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    if stat.S_ISREG(mode):
        return True
    # A terminal or a socket may block although select says it has room; a pipe with a free
    # page takes a write of up to PIPE_BUF bytes whole.
    if not stat.S_ISFIFO(mode) or size > select.PIPE_BUF:
        return False
    try:
        _, writable, _ = select.select([], [fd], [], 0)
    except (OSError, ValueError):
        return False
    return bool(writable)


class ConsoleStream:
    """Lines to ``sys.<name>`` (looked up at each write, so a replaced stream is honoured)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._reset()

    def _reset(self) -> None:
        """A fresh state (also a forked child's: its parent writes the lines it had pending)."""
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[str | _Dropped] = deque()
        self._writing = False
        self._thread: threading.Thread | None = None

    def _stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._name)
        return stream

    def write_line(self, line: str) -> None:
        text = line if line.endswith("\n") else line + "\n"
        with self._lock:
            if not self._pending and not self._writing:
                stream = self._stream()
                if _cannot_block(stream, len(text.encode("utf-8", "replace"))):
                    stream.write(text)
                    stream.flush()
                    return
            if len(self._pending) < MAX_PENDING:
                self._pending.append(text)
            elif self._pending and isinstance(self._pending[-1], _Dropped):
                self._pending[-1].count += 1
            else:
                self._pending.append(_Dropped())
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name="perago-console", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def _drain(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._changed.wait()
                item = self._pending.popleft()
                self._writing = True
            try:
                stream = self._stream()
                stream.write(item if isinstance(item, str) else item.text())
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed console: nothing left to tell it
            finally:
                with self._lock:
                    self._writing = False
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


def _after_fork_in_child() -> None:
    # The child has none of its parent's threads: a writer thread it inherited the handle of
    # would never write, and a lock some thread held at the fork would never be released.
    _streams_lock.release()
    for stream in _streams.values():
        stream._reset()


# Held across a fork, so that the child never inherits it taken.
os.register_at_fork(
    before=_streams_lock.acquire,
    after_in_parent=_streams_lock.release,
    after_in_child=_after_fork_in_child,
)


def flush_consoles(timeout: float = EXIT_FLUSH_S) -> None:
    """Give the lines still pending a last chance (a process about to end)."""
    for stream in list(_streams.values()):
        stream.flush(timeout)
