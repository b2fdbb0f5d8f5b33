"""Snapshot, known-hash baseline and change detection through the public Python facade."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from perago.engine import snapshot as engine
from perago.engine.snapshot import (
    MARKER_FILE,
    ChangeSet,
    Snapshot,
    detect_changes,
    snapshot_from_known_hashes,
    take_snapshot,
)

EMPTY_BLAKE3 = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def _tree(root: Path) -> None:
    (root / "dir" / "ünïcødé").mkdir(parents=True)
    (root / "dir" / "ünïcødé" / "ファイル.txt").write_bytes(b"hello")
    (root / "empty").write_bytes(b"")
    (root / "dir" / "a.bin").write_bytes(b"\x00" * 1000)
    (root / MARKER_FILE).write_text("{}")
    (root / "link").symlink_to("dir/a.bin")


def test_snapshot_summary_lookup_and_iteration(tmp_path: Path) -> None:
    _tree(tmp_path)
    snap = take_snapshot(tmp_path, threads=2)
    assert isinstance(snap, Snapshot)
    assert (snap.file_count, snap.symlink_count, len(snap)) == (3, 1, 4)
    assert snap.total_bytes == 1005
    assert snap.root == str(tmp_path)
    assert [e.path for e in snap] == ["dir/a.bin", "dir/ünïcødé/ファイル.txt", "empty", "link"]
    empty = snap.entry("empty")
    assert empty is not None
    assert (empty.kind, empty.size, empty.digest) == ("file", 0, EMPTY_BLAKE3)
    assert empty.inode == os.stat(tmp_path / "empty").st_ino
    assert empty.mtime_ns == os.stat(tmp_path / "empty").st_mtime_ns
    link = snap.entry("link")
    assert link is not None
    assert (link.kind, link.target) == ("symlink", "dir/a.bin")
    assert MARKER_FILE not in snap
    assert "dir/ünïcødé/ファイル.txt" in snap
    assert snap.entry("nope") is None
    assert snap.memory_bytes > 0
    assert "files=3" in repr(snap)


def test_unchanged_tree_has_no_changes(tmp_path: Path) -> None:
    _tree(tmp_path)
    base = take_snapshot(tmp_path)
    changes = detect_changes(tmp_path, base)
    assert isinstance(changes, ChangeSet)
    assert not changes.changed
    assert changes.scanned == 4


def test_changes_are_classified_with_byte_counts(tmp_path: Path) -> None:
    _tree(tmp_path)
    base = take_snapshot(tmp_path)
    (tmp_path / "empty").write_bytes(b"now full")
    (tmp_path / "dir" / "a.bin").write_bytes(b"\x00" * 1000)  # identical bytes: not a change
    (tmp_path / "link").unlink()
    (tmp_path / "link").write_bytes(b"was a link")
    (tmp_path / "dir" / "ünïcødé" / "ファイル.txt").unlink()
    (tmp_path / "new").write_bytes(b"12345")
    (tmp_path / MARKER_FILE).write_text('{"state": "running"}')
    changes = detect_changes(tmp_path, base)
    assert changes.added == ("new",)
    assert changes.modified == ("empty",)
    assert changes.removed == ("dir/ünïcødé/ファイル.txt",)
    assert changes.type_changed == ("link",)
    assert (changes.added_bytes, changes.modified_bytes) == (5, 8)
    assert (changes.removed_bytes, changes.type_changed_bytes) == (5, 10)


def test_same_size_same_mtime_edit_is_detected_through_ctime(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"aaaa")
    os.utime(target, ns=(1, 1_500_000_000_000_000_000))
    time.sleep(0.05)
    base = take_snapshot(tmp_path)
    time.sleep(0.05)
    target.write_bytes(b"bbbb")
    os.utime(target, ns=(1, 1_500_000_000_000_000_000))
    # No racy window: only the ctime comparison can catch this edit.
    changes = detect_changes(tmp_path, base, racy_window_s=0.0)
    assert changes.modified == ("f",)
    assert changes.rehashed == 1


def test_racy_files_are_rehashed_and_old_files_are_not(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    base = take_snapshot(tmp_path)
    assert detect_changes(tmp_path, base).rehashed == 1  # written just now: racy
    os.utime(tmp_path / "f", ns=(1, 1_500_000_000_000_000_000))
    time.sleep(0.05)
    base = take_snapshot(tmp_path)
    assert detect_changes(tmp_path, base, racy_window_s=0.01).rehashed == 0


def test_known_hashes_baseline_matches_cold_snapshot(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "link").unlink()
    files = ["dir/a.bin", "dir/ünïcødé/ファイル.txt", "empty"]
    known: list[tuple[str, bytes | str]] = [
        (rel, engine.hash_file(tmp_path / rel)) for rel in files
    ]
    known[0] = (known[0][0], bytes.fromhex(str(known[0][1])))  # raw bytes are accepted too
    base = snapshot_from_known_hashes(tmp_path, known)
    cold = take_snapshot(tmp_path)
    assert list(base) == list(cold)
    assert not detect_changes(tmp_path, base).changed


@pytest.mark.parametrize(
    ("path", "digest", "message"),
    [
        ("../x", EMPTY_BLAKE3, "'..' segment"),
        ("/abs", EMPTY_BLAKE3, "absolute path"),
        ("empty", "zz", "invalid BLAKE3 digest"),
        ("empty", b"short", "invalid BLAKE3 digest"),
    ],
)
def test_known_hashes_reject_bad_input(
    tmp_path: Path, path: str, digest: str | bytes, message: str
) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match=message):
        snapshot_from_known_hashes(tmp_path, [(path, digest)])


def test_known_hashes_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"gone\.bin: vanished"):
        snapshot_from_known_hashes(tmp_path, [("gone.bin", EMPTY_BLAKE3)])


def test_thread_count_is_configurable(tmp_path: Path) -> None:
    _tree(tmp_path)
    one = take_snapshot(tmp_path, threads=1)
    three = take_snapshot(tmp_path, threads=3)
    assert list(one) == list(three)
    assert engine.stat_walk(tmp_path, threads=1) == (4, 1005 + len("dir/a.bin"))
