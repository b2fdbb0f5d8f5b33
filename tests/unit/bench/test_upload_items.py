"""The upload bench child's file list: what it names, and what it leaves out."""

from __future__ import annotations

import os
from pathlib import Path

from perago.bench.transfer_child import upload_items


def test_every_regular_file_is_named_under_the_prefix_sorted_by_object_path(
    tmp_path: Path,
) -> None:
    for rel in ["b.bin", "a/x.bin", "a/deeper/y.bin", "a-b/z.bin", "c/.lakefs_ref.yaml/w.bin"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    (tmp_path / ".lakefs_ref.yaml").write_text("lakectl's own file")
    (tmp_path / "empty").mkdir()

    items = upload_items(tmp_path, "set")

    expected = sorted(
        ["a/x.bin", "a/deeper/y.bin", "a-b/z.bin", "b.bin", "c/.lakefs_ref.yaml/w.bin"]
    )
    assert [object_path for _, object_path in items] == [f"set/{rel}" for rel in expected]
    for local, object_path in items:
        rel = object_path.removeprefix("set/")
        assert Path(local) == tmp_path / rel
        assert Path(local).read_bytes() == rel.encode()


def test_symlinks_and_special_files_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f.bin").write_bytes(b"data")
    (tmp_path / "link-to-file").symlink_to(tmp_path / "real" / "f.bin")
    (tmp_path / "link-to-dir").symlink_to(tmp_path / "real")
    os.mkfifo(tmp_path / "fifo")

    assert upload_items(tmp_path, "p") == [(str(tmp_path / "real" / "f.bin"), "p/real/f.bin")]
