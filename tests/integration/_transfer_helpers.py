"""Shared helpers of the transfer integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from perago.engine import snapshot as engine
from perago.engine.transfer import (
    DownloadResult,
    LakeFSCredentials,
    UploadResult,
    download_prefix,
    upload_files,
)

from .conftest import LakeFSRepo


def creds(repo: LakeFSRepo) -> LakeFSCredentials:
    return LakeFSCredentials(repo.access_key_id, repo.secret_access_key)


def download_from(
    repo: LakeFSRepo, ref: str, prefix: str, dest: Path, **options: Any
) -> DownloadResult:
    """``download_prefix`` from ``repo`` with its server and credentials."""
    return download_prefix(repo.endpoint, creds(repo), repo.name, ref, prefix, dest, **options)


def upload_to(
    repo: LakeFSRepo,
    branch: str,
    items: Iterable[tuple[str | os.PathLike[str], str]],
    **options: Any,
) -> UploadResult:
    """``upload_files`` to ``repo`` with its server and credentials."""
    return upload_files(repo.endpoint, creds(repo), repo.name, branch, items, **options)


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
    return upload_to(repo, branch, items).files


def local_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): engine.hash_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tree_listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))
