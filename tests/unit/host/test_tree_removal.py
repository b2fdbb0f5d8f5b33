"""The attempt directory's remover: everything below goes, nothing outside it is touched (a
symlink is unlinked, never followed, wherever it sits), entries that vanish meanwhile are not
an error, and the threads' unlinks are all done before a directory is removed."""

from __future__ import annotations

import os
import resource
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perago.host import tree_removal
from perago.host.tree_removal import remove_tree_at


@pytest.fixture
def root_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def _outside(tmp_path: Path) -> Path:
    """A directory beside the tree, holding one file nothing may touch."""
    outside = tmp_path / "outside"
    outside.mkdir(parents=True)
    (outside / "keep").write_bytes(b"precious")
    return outside


def _untouched(outside: Path) -> bool:
    return (outside / "keep").read_bytes() == b"precious"


def _tree(root: Path, dirs: int, files: int) -> None:
    for d in range(dirs):
        sub = root / f"d{d}" / "inner"
        sub.mkdir(parents=True)
        for f in range(files):
            (sub / f"f{f}").write_bytes(b"x")
        (root / f"d{d}" / "top").write_bytes(b"y")


def test_a_tree_of_many_files_is_removed_whole(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tree_removal, "_BATCH", 7)  # many batches, some partial, on the threads
    _tree(tmp_path / "attempt", dirs=5, files=40)
    (tmp_path / "attempt" / "flat").mkdir()
    for f in range(100):
        (tmp_path / "attempt" / "flat" / f"g{f}").write_bytes(b"z")
    remove_tree_at(root_fd, "attempt", threads=3)
    assert list(tmp_path.iterdir()) == []


def test_symlinks_are_unlinked_and_never_followed(tmp_path: Path, root_fd: int) -> None:
    outside = _outside(tmp_path)
    attempt = tmp_path / "attempt"
    _tree(attempt, dirs=2, files=3)
    (attempt / "d0" / "inner" / "to-dir").symlink_to(outside)
    (attempt / "to-file").symlink_to(outside / "keep")
    (attempt / "d1" / "dangling").symlink_to(tmp_path / "nowhere")
    remove_tree_at(root_fd, "attempt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]
    assert _untouched(outside)


def test_a_symlink_in_the_directory_s_place_is_unlinked_not_followed(
    tmp_path: Path, root_fd: int
) -> None:
    outside = _outside(tmp_path)
    (tmp_path / "attempt").symlink_to(outside)
    remove_tree_at(root_fd, "attempt")
    assert not (tmp_path / "attempt").is_symlink()
    assert not (tmp_path / "attempt").exists()
    assert _untouched(outside)


def test_entries_removed_by_someone_else_meanwhile_are_not_an_error(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another remover of the same tree (a GC pass) takes every file just before ours would."""
    _tree(tmp_path / "attempt", dirs=3, files=20)
    real_unlink = os.unlink

    def other_remover_first(name: str, *, dir_fd: int | None = None) -> None:
        real_unlink(name, dir_fd=dir_fd)  # the other remover
        real_unlink(name, dir_fd=dir_fd)  # ours: FileNotFoundError

    monkeypatch.setattr(os, "unlink", other_remover_first)
    remove_tree_at(root_fd, "attempt")
    assert list(tmp_path.iterdir()) == []
    remove_tree_at(root_fd, "attempt")  # nothing there at all: still fine


def test_a_failed_unlink_raises_after_the_other_unlinks_ended(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tree_removal, "_BATCH", 4)
    _tree(tmp_path / "attempt", dirs=1, files=40)
    real_unlink = os.unlink
    in_flight = 0
    most = 0
    lock = threading.Lock()

    def failing(name: str, *, dir_fd: int | None = None) -> None:
        nonlocal in_flight, most
        if name == "f13":
            raise PermissionError(13, "refused", name)
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            real_unlink(name, dir_fd=dir_fd)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(os, "unlink", failing)
    with pytest.raises(PermissionError):
        remove_tree_at(root_fd, "attempt", threads=4)
    assert in_flight == 0, "an unlink was still running on a descriptor already closed"
    # The walk stops soon after a failure (batches not started are dropped; a GC pass retries):
    # the refused file is there, whatever else is left.
    remaining = {p.name for p in (tmp_path / "attempt" / "d0" / "inner").iterdir()}
    assert "f13" in remaining


def test_a_tree_deeper_than_the_walk_holds_is_moved_up_and_removed(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tree_removal, "_MAX_DEPTH", 3)
    deep = tmp_path / "attempt"
    for level in range(10):
        deep = deep / f"l{level}"
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"x")
    remove_tree_at(root_fd, "attempt")
    assert list(tmp_path.iterdir()) == []


def test_a_tree_deeper_than_paths_and_the_recursion_limit_is_removed(
    tmp_path: Path, root_fd: int
) -> None:
    """1,500 levels: beyond PATH_MAX and Python's recursion limit (shutil.rmtree of 3.11 raises
    RecursionError there), yet within the walk's descriptors."""
    os.mkdir("attempt", dir_fd=root_fd)
    fd = os.open("attempt", os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    for _ in range(1500):
        os.mkdir("l", dir_fd=fd)
        below = os.open("l", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    os.close(fd)
    remove_tree_at(root_fd, "attempt")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_walk_leaves_no_unlinker_on_a_closed_descriptor(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches the walk while the unlinker is held at a gate: the walk closes its
    descriptors and other directories take their numbers, then the gate opens. The unlinker must
    still be unlinking in the directory it was given, never in one of the others."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the runner's may differ
    monkeypatch.setattr(tree_removal, "_BATCH", 2)
    _tree(tmp_path / "attempt", dirs=1, files=6)  # attempt/d0/top, attempt/d0/inner/f0..f5
    tree_inodes = {p.stat().st_ino for p in (tmp_path / "attempt").rglob("*") if p.is_dir()}
    main = threading.main_thread()
    held, gate, walk_closed = threading.Event(), threading.Event(), threading.Event()
    wrong: list[str] = []
    others: list[int] = []
    real_unlink = os.unlink
    real_exit = tree_removal._Unlinkers.__exit__

    def gated_unlink(name: str, *, dir_fd: int | None = None) -> None:
        if threading.current_thread() is not main:
            held.set()
            gate.wait(30)
            try:
                if dir_fd is None or os.fstat(dir_fd).st_ino not in tree_inodes:
                    wrong.append(name)
            except OSError:
                wrong.append(name)
        real_unlink(name, dir_fd=dir_fd)

    def exit_after_the_walk(self: tree_removal._Unlinkers, *exc: Any) -> None:
        walk_closed.set()  # the walk has returned or raised: its own descriptors are closed
        real_exit(self, *exc)

    def interrupt_and_reuse() -> None:
        assert held.wait(30)
        signal.pthread_kill(main.ident or 0, signal.SIGINT)
        assert walk_closed.wait(30)
        for n in range(8):
            others.append(os.open(_outside(tmp_path / f"o{n}"), os.O_RDONLY | os.O_DIRECTORY))
        gate.set()

    monkeypatch.setattr(os, "unlink", gated_unlink)
    monkeypatch.setattr(tree_removal._Unlinkers, "__exit__", exit_after_the_walk)
    driver = threading.Thread(target=interrupt_and_reuse, daemon=True)
    driver.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            remove_tree_at(root_fd, "attempt", threads=1)
    finally:
        gate.set()
        driver.join(30)
        for fd in others:
            os.close(fd)
    assert wrong == [], "an unlinker ran on a descriptor that no longer named its directory"
    for n in range(8):
        assert _untouched(tmp_path / f"o{n}" / "outside")


def test_a_directory_swapped_for_a_symlink_while_listed_is_not_followed(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the listing of ``inner`` as a directory and its open, something puts a symlink
    to a directory outside in its place: the symlink goes, what it points at stays."""
    outside = _outside(tmp_path)
    _tree(tmp_path / "attempt", dirs=1, files=3)
    real_open = os.open

    def swap_then_open(
        path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None
    ) -> int:
        if path == "inner":
            os.rename("inner", "../../moved-away", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.symlink(outside, "inner", dir_fd=dir_fd)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", swap_then_open)
    remove_tree_at(root_fd, "attempt")
    assert not (tmp_path / "attempt").exists()
    assert _untouched(outside)


def test_a_name_listed_as_a_file_that_is_a_directory_is_walked(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory created under a name just listed as a file (unlink says EISDIR or EPERM)."""
    _tree(tmp_path / "attempt", dirs=2, files=3)
    real = tree_removal._is_directory
    monkeypatch.setattr(tree_removal, "_is_directory", lambda e: e.name != "inner" and real(e))
    remove_tree_at(root_fd, "attempt", threads=2)
    assert list(tmp_path.iterdir()) == []


def test_a_huge_flat_directory_needs_only_a_few_descriptors(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,500 batches of one directory, under a descriptor limit of 40 more than are open now:
    each waiting batch holds a descriptor, so they must not all wait at once."""
    monkeypatch.setattr(tree_removal, "_BATCH", 2)
    flat = tmp_path / "attempt" / "flat"
    flat.mkdir(parents=True)
    for n in range(3000):
        (flat / f"f{n}").write_bytes(b"")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 40, hard))
    try:
        remove_tree_at(root_fd, "attempt", threads=4)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert list(tmp_path.iterdir()) == []
