"""The attempt directory's remover: everything below goes, nothing outside it is touched (a
symlink is unlinked, never followed, wherever it sits), entries that vanish meanwhile are not
an error, and the threads' unlinks are all done before a directory is removed."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from perago.host import tree_removal
from perago.host.tree_removal import remove_tree_at


@pytest.fixture
def root_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


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
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"precious")
    attempt = tmp_path / "attempt"
    _tree(attempt, dirs=2, files=3)
    (attempt / "d0" / "inner" / "to-dir").symlink_to(outside)
    (attempt / "to-file").symlink_to(outside / "keep")
    (attempt / "d1" / "dangling").symlink_to(tmp_path / "nowhere")
    remove_tree_at(root_fd, "attempt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]
    assert (outside / "keep").read_bytes() == b"precious"


def test_a_symlink_in_the_directory_s_place_is_unlinked_not_followed(
    tmp_path: Path, root_fd: int
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"precious")
    (tmp_path / "attempt").symlink_to(outside)
    remove_tree_at(root_fd, "attempt")
    assert not (tmp_path / "attempt").is_symlink()
    assert not (tmp_path / "attempt").exists()
    assert (outside / "keep").read_bytes() == b"precious"


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
    remaining = sorted(p.name for p in (tmp_path / "attempt" / "d0" / "inner").iterdir())
    assert remaining == ["f13"]


def test_a_tree_deeper_than_the_walk_is_left_to_rmtree(
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


def test_a_directory_swapped_for_a_symlink_while_listed_is_not_followed(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the listing of ``inner`` as a directory and its open, something puts a symlink
    to a directory outside in its place: the symlink goes, what it points at stays."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"precious")
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
    assert (outside / "keep").read_bytes() == b"precious"
