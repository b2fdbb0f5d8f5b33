"""A console nobody reads never blocks the caller, keeps its lines in order and says what it
dropped. The console here is a real pipe filled to the brim before the test writes, so "no room"
is a fact, not a race; the reader is the test, which drains it only when it chooses."""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

import perago.runtime.console_stream as console_module
from perago.runtime.console_stream import ConsoleStream


@pytest.fixture
def full_pipe() -> Iterator[tuple[int, TextIO]]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    filler = b"." * 4096
    try:
        while True:
            os.write(write_fd, filler)
    except BlockingIOError:
        pass
    os.set_blocking(write_fd, True)  # as a console is: a write to it would block
    stream = io.TextIOWrapper(os.fdopen(write_fd, "wb", buffering=0), encoding="utf-8")
    yield read_fd, stream
    os.close(read_fd)
    stream.close()


def _console_on(stream: TextIO, monkeypatch: pytest.MonkeyPatch) -> ConsoleStream:
    """A console stream writing to ``stream`` as ``sys.stderr``. Call it in the test's body:
    pytest's capture puts its own ``sys.stderr`` back after the fixtures."""
    monkeypatch.setattr("sys.stderr", stream)
    return ConsoleStream("stderr")


def _read_all(read_fd: int, until: bytes) -> bytes:
    data = b""
    while until not in data:
        chunk = os.read(read_fd, 65536)
        assert chunk, "the pipe closed before the expected line"
        data += chunk
    return data


def _writes_without_blocking(console: ConsoleStream, lines: list[str]) -> None:
    done = threading.Event()

    def write() -> None:
        for line in lines:
            console.write_line(line)
        done.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    # A blocked write would wait for a reader forever; nobody reads until this returns.
    assert done.wait(30), "a write to a full console blocked its caller"


def test_lines_for_a_full_console_wait_in_order_and_arrive_when_it_drains(
    full_pipe: tuple[int, TextIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_fd, stream = full_pipe
    console = _console_on(stream, monkeypatch)
    _writes_without_blocking(console, ["first", "second", "third"])
    assert not console.flush(0.0)  # still pending: nobody read the pipe
    data = _read_all(read_fd, b"third\n")
    assert data.lstrip(b".") == b"first\nsecond\nthird\n"
    assert console.flush(30)


def test_lines_beyond_the_limit_are_dropped_and_counted_where_they_were(
    full_pipe: tuple[int, TextIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    read_fd, stream = full_pipe
    monkeypatch.setattr(console_module, "MAX_PENDING", 3)
    console = _console_on(stream, monkeypatch)
    _writes_without_blocking(console, [f"line {n}" for n in range(8)])
    data = _read_all(read_fd, b"dropped")
    lines = data.lstrip(b".").decode().splitlines()
    # The writer thread may have taken line 0 out before the others came: 3 or 4 kept.
    kept = [line for line in lines if line.startswith("line ")]
    assert kept == [f"line {n}" for n in range(len(kept))]
    assert len(kept) in (3, 4)
    assert lines[len(kept)] == (
        f"perago: warning: {8 - len(kept)} console line(s) dropped: the console was not read"
    )
    console.write_line("after")
    assert _read_all(read_fd, b"after\n").endswith(b"after\n")


def test_a_console_with_room_is_written_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()  # not a file at all: written at once, in the caller's thread
    monkeypatch.setattr("sys.stderr", captured)
    console = ConsoleStream("stderr")
    console.write_line("now")
    assert captured.getvalue() == "now\n"
    assert console.flush(0.0)


def test_a_line_longer_than_a_pipe_page_waits_rather_than_blocking(
    full_pipe: tuple[int, TextIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipe with one free page says it has room, yet a longer line would block half-written."""
    read_fd, stream = full_pipe
    assert len(os.read(read_fd, 4096)) == 4096  # one page free now
    console = _console_on(stream, monkeypatch)
    long_line = "x" * 6000
    _writes_without_blocking(console, [long_line, "short"])
    assert not console.flush(0.1)  # bounded, although the writer thread is blocked
    data = _read_all(read_fd, b"short\n")
    assert data.lstrip(b".") == (long_line + "\nshort\n").encode()


def test_a_forked_child_starts_with_a_console_of_its_own(
    full_pipe: tuple[int, TextIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child of a fork has no writer thread: it must not queue behind its parent's."""
    read_fd, stream = full_pipe
    monkeypatch.setattr("sys.stderr", stream)
    console = console_module.console_stream("stderr")
    console.write_line("parent pending")  # the pipe is full: queued for the writer thread
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        fresh = not console._pending and console._thread is None and console.flush(0.0)
        os._exit(0 if fresh else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _read_all(read_fd, b"parent pending\n").lstrip(b".") == b"parent pending\n"
    assert console.flush(30)


EXITING_WITH_A_STALLED_CONSOLE = """
import sys
from perago.runtime.console_stream import console_stream

console = console_stream("stderr")
for n in range(400):  # far more than the pipe holds: most lines wait for the console thread
    console.write_line(f"line {n} " + "x" * 400)
sys.exit(7)
"""


def test_a_process_whose_console_is_not_read_still_exits_with_its_code() -> None:
    """Nobody reads the child's stderr: its console thread is blocked in a write when the
    interpreter exits, and the exit (flushing stderr, running atexit) must not wait on it for
    more than the bounded flush. Buffered stderr, as a process started without
    PYTHONUNBUFFERED has it."""
    import subprocess

    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    child = subprocess.Popen(
        [sys.executable, "-c", EXITING_WITH_A_STALLED_CONSOLE],
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.wait(timeout=60) == 7  # a hang would be a timeout, not a slow pass
    finally:
        child.kill()
        child.wait()
        assert child.stderr is not None
        child.stderr.close()


def test_a_pipe_with_room_and_a_regular_file_are_written_by_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual consoles take the line in the caller's own call: no thread, nothing waits."""
    read_fd, write_fd = os.pipe()
    pipe = io.TextIOWrapper(os.fdopen(write_fd, "wb", buffering=0), encoding="utf-8")
    log = (tmp_path / "console.log").open("w", encoding="utf-8")
    try:
        for stream in (pipe, log):
            console = _console_on(stream, monkeypatch)
            console.write_line("at once")
            assert console._thread is None
            assert console.flush(0.0)
        assert os.read(read_fd, 100) == b"at once\n"
        log.flush()
        assert (tmp_path / "console.log").read_text() == "at once\n"
    finally:
        os.close(read_fd)
        pipe.close()
        log.close()


def test_lines_are_dropped_when_no_console_thread_can_start(
    full_pipe: tuple[int, TextIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interpreter shutting down refuses new threads: the caller must neither fail nor have
    lines wait for a thread that never comes."""
    _, stream = full_pipe
    monkeypatch.setattr("sys.stderr", stream)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    console = ConsoleStream("stderr")
    console.write_line("nowhere to go")
    assert console.flush(0.0)


def test_a_socket_console_is_written_by_the_caller_and_queues_only_when_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """systemd's journal stream is a socket: no handle to reopen, so each send is MSG_DONTWAIT.
    With room the line goes out in the caller's call (a direct print after it cannot overtake
    it); when full it waits in order, and the socket itself stays blocking for everyone else."""
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    stream = io.TextIOWrapper(os.fdopen(writer.detach(), "wb", buffering=0), encoding="utf-8")
    try:
        console = _console_on(stream, monkeypatch)
        console.write_line("at once")
        assert console._thread is None
        assert reader.recv(100) == b"at once\n"
        os.set_blocking(stream.fileno(), False)
        try:
            while True:
                os.write(stream.fileno(), b"." * 4096)
        except BlockingIOError:
            pass
        os.set_blocking(stream.fileno(), True)  # as a console is: a write to it would block
        _writes_without_blocking(console, ["first", "second"])
        assert not console.flush(0.0)
        assert os.get_blocking(stream.fileno()), "the console's own flags were changed"
        data = b""
        while b"second\n" not in data:
            data += reader.recv(65536)
        assert data.lstrip(b".") == b"first\nsecond\n"
        assert console.flush(30)
    finally:
        reader.close()
        stream.close()
