"""Native calls are interruptible with Ctrl-C and work in a process forked after use."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from perago.engine.snapshot import detect_changes, take_snapshot

SPARSE_SIZE = 8 << 30  # reads as zeros; only the part hashed before the interrupt is cached


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_interrupts_a_big_snapshot_promptly(tmp_path: Path) -> None:
    big = tmp_path / "sparse.bin"
    with open(big, "wb") as handle:
        handle.truncate(SPARSE_SIZE)
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            take_snapshot(tmp_path, threads=2)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    # Hashing 8 GiB takes several seconds here; the interrupt lands within a chunk or two.
    assert elapsed < 2.0, f"took {elapsed:.2f}s to honour Ctrl-C"
    big.unlink()
    # The engine is still usable afterwards.
    (tmp_path / "small").write_bytes(b"ok")
    assert take_snapshot(tmp_path, threads=2).file_count == 1


def test_snapshot_works_in_a_child_forked_after_the_pool_was_used(tmp_path: Path) -> None:
    for i in range(200):
        (tmp_path / f"f{i}").write_bytes(str(i).encode())
    parent = take_snapshot(tmp_path, threads=2)
    assert parent.file_count == 200
    pid = os.fork()
    if pid == 0:  # child: must not hang on the parent's (threadless) pool
        code = 1
        try:
            snap = take_snapshot(tmp_path, threads=2)
            unchanged = not detect_changes(tmp_path, snap, threads=2).changed
            code = 0 if snap.file_count == 200 and unchanged else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("snapshot in the forked child hung")
