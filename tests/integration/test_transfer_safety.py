"""Object keys that are not safe local paths never write anything, anywhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from perago.engine.transfer import UnsafeObjectKeyError

from ._transfer_helpers import download_from, tree_listing
from .conftest import LakeFSRepo

pytestmark = pytest.mark.integration

# (bad key relative to the prefix "case", expected reason fragment). A NUL byte cannot be stored
# through the lakeFS API; it is covered by the Rust unit tests of the path planner.
BAD_KEYS = [
    ("../escape.txt", '".." path segment'),
    ("sub/../../escape.txt", '".." path segment'),
    ("./dot.txt", '"." path segment'),
    ("a//b.txt", "empty path segment"),
    ("folder/", "empty path segment"),
    ("", "folder marker"),
    ("/abs.txt", "absolute path"),
    ("win\\path.txt", "backslash"),
    (".perago-attempt.json", "reserved"),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_KEYS)
def test_bad_key_fails_before_anything_is_written(
    transfer_repo: LakeFSRepo, tmp_path: Path, bad: str, reason: str
) -> None:
    key = f"case/{bad}"
    for good in ["case/aaa-first.txt", "case/zzz/last.txt"]:
        transfer_repo.put(good, b"good")
    transfer_repo.put(key, b"evil")
    commit = transfer_repo.commit()
    parent = tmp_path / "attempts"
    parent.mkdir()
    (parent / "neighbour.txt").write_text("untouched")
    before = tree_listing(tmp_path)

    with pytest.raises(UnsafeObjectKeyError, match=reason) as failure:
        download_from(
            transfer_repo,
            commit,
            "case",
            parent / "ws",
        )
    assert failure.value.key == key
    assert json.dumps(key, ensure_ascii=False) in str(failure.value)
    assert tree_listing(tmp_path) == before, "something was written"


def test_file_and_directory_with_the_same_name(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    transfer_repo.put("case/model", b"file")
    transfer_repo.put("case/model/weights.bin", b"inside")
    commit = transfer_repo.commit()
    before = tree_listing(tmp_path)
    with pytest.raises(UnsafeObjectKeyError, match="needs it to be a directory") as failure:
        download_from(
            transfer_repo,
            commit,
            "case",
            tmp_path / "ws",
        )
    assert failure.value.key == "case/model"
    assert tree_listing(tmp_path) == before


def test_symlink_planted_in_destination_is_never_followed(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    transfer_repo.put("case/sub/payload.txt", b"payload")
    transfer_repo.put("case/link.txt", b"payload")
    commit = transfer_repo.commit()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("keep")
    dest = tmp_path / "ws"
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    with pytest.raises(FileExistsError, match="not a directory"):
        download_from(transfer_repo, commit, "case", dest)
    assert tree_listing(outside) == ["victim.txt"]

    dest2 = tmp_path / "ws2"
    dest2.mkdir()
    os.symlink(outside / "victim.txt", dest2 / "link.txt")
    with pytest.raises(FileExistsError):
        download_from(transfer_repo, commit, "case", dest2)
    assert (outside / "victim.txt").read_text() == "keep"
