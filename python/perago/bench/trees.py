"""Synthetic benchmark workspaces, generated once and cached outside the repository."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

FILES_PER_DIR = 1000
LARGE_BLOCK = 1 << 20
# Timestamps younger than the racy window are re-hashed by design; benchmarks of an unchanged
# tree measure the steady state, so a freshly generated tree is left to age this long.
SETTLE_S = 2.1


@dataclass(frozen=True)
class Tree:
    root: Path
    files: int
    total_bytes: int


def default_work_dir() -> Path:
    cache = os.environ.get("PERAGO_DEV_CACHE_DIR") or str(Path.home() / ".cache" / "perago")
    return Path(cache) / "bench"


def _stamp(root: Path) -> Path:
    # Beside the tree, never inside it: the stamp must not be measured.
    return root.with_name(root.name + ".complete")


def _fresh(root: Path) -> None:
    _stamp(root).unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)


def small_tree(work_dir: Path, files: int, size: int) -> Tree:
    """``files`` files of ``size`` distinct random bytes, 1000 per directory."""
    root = work_dir / f"small-{files}x{size}"
    if not _stamp(root).exists():
        _fresh(root)
        for index in range(files):
            directory = root / f"d{index // FILES_PER_DIR:04d}"
            if index % FILES_PER_DIR == 0:
                directory.mkdir()
            (directory / f"f{index:07d}.bin").write_bytes(os.urandom(size))
        _stamp(root).write_text(str(time.time()))
    return Tree(root, files, files * size)


def large_tree(work_dir: Path, files: int, size: int) -> Tree:
    """``files`` files of ``size`` bytes written in 1 MiB blocks (random, varying per block)."""
    root = work_dir / f"large-{files}x{size}"
    if not _stamp(root).exists():
        _fresh(root)
        pattern = bytearray(os.urandom(LARGE_BLOCK * 16))
        for index in range(files):
            with open(root / f"big{index}.bin", "wb") as handle:
                written = 0
                while written < size:
                    block = min(LARGE_BLOCK, size - written)
                    offset = (written // LARGE_BLOCK + index) % 16 * LARGE_BLOCK
                    chunk = memoryview(pattern)[offset : offset + block]
                    pattern[offset : offset + 8] = (written + index).to_bytes(8, "little")
                    handle.write(chunk)
                    written += block
        _stamp(root).write_text(str(time.time()))
    return Tree(root, files, files * size)


def given_tree(root: Path) -> Tree:
    """An existing directory, counted with a plain walk (symlinks not followed)."""
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory")
    files = total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            files += 1
            total += info.st_size
    return Tree(root, files, total)


def wait_until_settled(tree: Tree) -> None:
    """Sleep until the newest generated file is older than the racy window."""
    stamp = _stamp(tree.root)
    if stamp.exists():
        age = time.time() - stamp.stat().st_mtime
        if age < SETTLE_S:
            time.sleep(SETTLE_S - age)


def list_files(root: Path) -> list[str]:
    """Relative paths of regular files, sorted (for b3sum's argument list and 1% edits)."""
    found: list[str] = []
    for directory, _, names in os.walk(root):
        rel = os.path.relpath(directory, root)
        for name in names:
            if os.path.isfile(os.path.join(directory, name)):
                found.append(name if rel == "." else f"{rel}/{name}")
    found.sort()
    return found
