"""Shared helpers of the transfer integration tests."""

from __future__ import annotations

import os
from pathlib import Path

from perago import engine
from perago.transfer import LakeFSCredentials, upload_files

from .conftest import LakeFSRepo


def creds(repo: LakeFSRepo) -> LakeFSCredentials:
    return LakeFSCredentials(repo.access_key_id, repo.secret_access_key)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def seed_with_engine(repo: LakeFSRepo, source: Path, prefix: str, branch: str = "main") -> int:
    """Upload every file under ``source`` to ``prefix/<rel>`` with perago's own engine."""
    items: list[tuple[str | os.PathLike[str], str]] = []
    for path in sorted(source.rglob("*")):
        if path.is_file():
            rel = path.relative_to(source).as_posix()
            items.append((path, f"{prefix}/{rel}" if prefix else rel))
    result = upload_files(repo.endpoint, creds(repo), repo.name, branch, items)
    return result.files


def local_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): engine.hash_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
