"""A console stream that never blocks the caller: a console nobody reads must not stop attempts.

A terminal held by Ctrl-S or a log pipe whose reader stalled fills up, and a plain ``write``
then blocks whatever logged, an attempt's thread included. A line is written at once while the
stream has room (the usual case: same order, same moment as a plain write); otherwise it waits,
in order, for a writer thread of its own. At most ``MAX_PENDING`` lines wait; beyond that lines
are dropped and a note says how many, where they were (the JSONL files keep every record).
"""

from __future__ import annotations

import atexit
import select
import sys
import threading
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


def _has_room(stream: TextIO) -> bool:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return True  # not a file (a test's capture buffer): writing cannot block
    try:
        _, writable, _ = select.select([], [fd], [], 0)
    except (OSError, ValueError):
        return True
    return bool(writable)


class ConsoleStream:
    """Lines to ``sys.<name>`` (looked up at each write, so a replaced stream is honoured)."""

    def __init__(self, name: str) -> None:
        self._name = name
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
                if _has_room(stream):
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
        with self._lock:
            return self._changed.wait_for(
                lambda: not self._pending and not self._writing, timeout=timeout
            )


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
    """Give the lines still pending a last chance (a process about to end)."""
    for stream in list(_streams.values()):
        stream.flush(timeout)
