"""Every error case of the snapshot engine gives a clear exception naming the path."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perago.engine.snapshot import detect_changes, take_snapshot

NOBODY = 65534


def test_nonexistent_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        take_snapshot(tmp_path / "no-such-dir")


def test_root_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="plain: workspace root is not a directory"):
        take_snapshot(tmp_path / "plain")


def test_fifo_and_socket_are_reported_unsupported(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"1")
    base = take_snapshot(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(tmp_path / "sock"))
        snap = take_snapshot(tmp_path)
        assert [(u.path, u.kind) for u in snap.unsupported] == [
            ("pipe", "fifo"),
            ("sock", "socket"),
        ]
        assert [e.path for e in snap] == ["ok"]
        changes = detect_changes(tmp_path, base)
        assert [(u.path, u.kind) for u in changes.unsupported] == [
            ("pipe", "fifo"),
            ("sock", "socket"),
        ]
        assert not changes.added
    finally:
        server.close()


def test_devices_are_reported_unsupported(tmp_path: Path) -> None:
    (tmp_path / "ok").write_bytes(b"1")
    base = take_snapshot(tmp_path)
    try:
        os.mknod(tmp_path / "chr", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
        os.mknod(tmp_path / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 0))  # like /dev/loop0
    except PermissionError:
        pytest.skip("creating device nodes needs CAP_MKNOD (run as root, as CI does)")
    expected = [("blk", "block-device"), ("chr", "char-device")]
    snap = take_snapshot(tmp_path)
    assert [(u.path, u.kind) for u in snap.unsupported] == expected
    assert [e.path for e in snap] == ["ok"]
    changes = detect_changes(tmp_path, base)
    assert [(u.path, u.kind) for u in changes.unsupported] == expected
    assert not changes.added


@pytest.fixture
def world_readable_dir() -> Iterator[Path]:
    """A directory another (unprivileged) user can traverse; tmp_path is 0700."""
    directory = Path(tempfile.mkdtemp(prefix="perago-perm-"))
    directory.chmod(0o755)
    yield directory
    for path in directory.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(directory)


def _run_unprivileged(action: Callable[[], object]) -> str:
    """Run ``action`` where permissions apply: as uid nobody in a forked child when we are root.

    Returns "ok" or "<ExceptionType>: <message>".
    """

    def describe() -> str:
        try:
            action()
        except Exception as exc:  # the type and text are what the test checks
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    if os.geteuid() != 0:
        return describe()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, describe().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        result = reader.read().decode()
    os.waitpid(pid, 0)
    return result


def test_unreadable_file_names_the_path(world_readable_dir: Path) -> None:
    secret = world_readable_dir / "sub" / "secret.bin"
    secret.parent.mkdir()
    secret.parent.chmod(0o755)
    secret.write_bytes(b"top secret")
    secret.chmod(0o000)
    result = _run_unprivileged(lambda: take_snapshot(world_readable_dir))
    assert result.startswith("PermissionError: "), result
    assert str(secret) in result


def test_unreadable_directory_names_the_path(world_readable_dir: Path) -> None:
    locked = world_readable_dir / "locked"
    locked.mkdir()
    (locked / "inside").write_bytes(b"x")
    locked.chmod(0o000)
    result = _run_unprivileged(lambda: take_snapshot(world_readable_dir))
    assert result.startswith("PermissionError: "), result
    assert str(locked) in result


def test_files_vanishing_during_the_walk_are_named(tmp_path: Path) -> None:
    """A deleter races the walk; any failure must be a clear 'vanished' error naming a file.

    Whether the race is hit in a given run is up to the scheduler, so the test loops a bounded
    number of times and asserts on every error it does get (and that it got at least one).
    """
    files = [tmp_path / f"d{i % 20}" / f"f{i}" for i in range(4000)]
    for path in files:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * 64)
    seen: list[str] = []
    for _ in range(30):
        stop = threading.Event()

        def churn(stop: threading.Event = stop) -> None:
            while not stop.is_set():
                for path in files[::7]:
                    path.unlink(missing_ok=True)
                for path in files[::7]:
                    path.write_bytes(b"x" * 64)

        deleter = threading.Thread(target=churn)
        deleter.start()
        try:
            take_snapshot(tmp_path)
        except FileNotFoundError as exc:
            seen.append(str(exc))
        finally:
            stop.set()
            deleter.join()
        if seen:
            break
    assert seen, "the deleter never raced the walk in 30 attempts"
    for message in seen:
        assert "vanished during the walk" in message
        assert str(tmp_path) in message
