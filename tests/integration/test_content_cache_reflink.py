"""The content cache on a file system that shares extents: a small XFS image, made and
loop-mounted by the test (needs root, ``mkfs.xfs`` and loop devices; ``make fs-tools`` installs
xfsprogs). Materialised files are reflinks of their entries, copy-on-write: writing one in place
never touches the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from perago.engine import cache as content_cache
from perago.engine.cache import open_cache

from ._transfer_helpers import download_from, local_hashes, seed_with_engine, write_tree
from .conftest import RestartableRepo

pytestmark = pytest.mark.integration


def _why_no_xfs() -> str | None:
    if os.geteuid() != 0:
        return "mounting a loop image needs root"
    for tool in ("mkfs.xfs", "mount", "umount", "filefrag"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make fs-tools)"
    return None


@pytest.fixture
def xfs_mount(tmp_path: Path) -> Iterator[Path]:
    reason = _why_no_xfs()
    if reason is not None:
        pytest.skip(reason)
    image, mount_point = tmp_path / "xfs.img", tmp_path / "xfs"
    with image.open("wb") as handle:
        handle.truncate(320 << 20)
    subprocess.run(["mkfs.xfs", "-q", "-f", str(image)], check=True)
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount_point)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"this kernel or container refuses a loop mount: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def _shared(path: Path) -> bool:
    report = subprocess.run(
        ["filefrag", "-v", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return "shared" in report


def test_entries_reach_workspaces_as_reflinks_on_xfs(
    restartable_repo: RestartableRepo, tmp_path: Path, xfs_mount: Path
) -> None:
    files = {f"f{i:03d}.bin": os.urandom(64 << 10) for i in range(30)}
    write_tree(tmp_path / "source", files)
    seed_with_engine(restartable_repo, tmp_path / "source", "data")
    commit = restartable_repo.commit()
    cache = open_cache(xfs_mount / "cache", 1 << 30)
    assert cache.mode == "reflink"

    cold = download_from(restartable_repo, commit, "data", xfs_mount / "ws1", cache=cache)
    assert cold.cache_stats()["inserted"] == 30
    warm = download_from(restartable_repo, commit, "data", xfs_mount / "ws2", cache=cache)
    assert (warm.cache_stats()["hits"], warm.cache_stats()["fetched"]) == (30, 0)
    expected = local_hashes(tmp_path / "source")
    assert local_hashes(xfs_mount / "ws2") == expected
    assert all(_shared(xfs_mount / "ws2" / name) for name in files)

    # Copy-on-write: rewriting a materialised file in place leaves its entry's bytes alone.
    with (xfs_mount / "ws2/f000.bin").open("r+b") as handle:
        handle.write(b"overwritten")
    assert content_cache.verify(cache).corrupt == 0
    third = download_from(restartable_repo, commit, "data", xfs_mount / "ws3", cache=cache)
    assert third.cache_stats()["hits"] == 30
    assert local_hashes(xfs_mount / "ws3") == expected


def test_a_workspace_on_another_file_system_falls_back_to_copies(
    restartable_repo: RestartableRepo, tmp_path: Path, xfs_mount: Path
) -> None:
    files = {f"f{i:03d}.bin": os.urandom(10_000) for i in range(10)}
    write_tree(tmp_path / "source", files)
    seed_with_engine(restartable_repo, tmp_path / "source", "data")
    commit = restartable_repo.commit()
    cache = open_cache(xfs_mount / "cache", 1 << 30)
    download_from(restartable_repo, commit, "data", xfs_mount / "ws1", cache=cache)
    # The cache is on XFS, this workspace on the test's own file system: no extents to share.
    warm = download_from(restartable_repo, commit, "data", tmp_path / "elsewhere", cache=cache)
    assert warm.cache_stats()["hits"] == 10
    assert local_hashes(tmp_path / "elsewhere") == local_hashes(tmp_path / "source")
