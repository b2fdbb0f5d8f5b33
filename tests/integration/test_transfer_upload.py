"""Uploads and batched deletes against a real lakeFS server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perago.engine.transfer import (
    LakeFSError,
    TransferProgress,
    delete_objects,
)

from ._transfer_helpers import (
    creds,
    download_from,
    local_hashes,
    seed_with_engine,
    upload_to,
    write_tree,
)
from .conftest import LakeFSRepo

pytestmark = pytest.mark.integration


def test_upload_then_download_round_trip(transfer_repo: LakeFSRepo, tmp_path: Path) -> None:
    source = tmp_path / "source"
    files = {
        "a.txt": b"alpha",
        "empty": b"",
        "nested/ü/b.bin": os.urandom(300_000),
        "nested/c.bin": os.urandom(3 << 20),
    }
    write_tree(source, files)
    seen: list[TransferProgress] = []
    result = upload_to(
        transfer_repo,
        "main",
        [(source / rel, f"out/{rel}") for rel in files],
        progress=seen.append,
    )
    assert (result.files, result.bytes) == (4, sum(len(d) for d in files.values()))
    assert seen[-1] == TransferProgress(result.bytes, result.bytes, 4, 4)
    commit = transfer_repo.commit()
    downloaded = download_from(
        transfer_repo,
        commit,
        "out",
        tmp_path / "ws",
    )
    assert {rel: h for rel, _, h in downloaded.entries()} == local_hashes(source)


def test_batched_delete_of_more_than_1000_objects(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    write_tree(source, {f"f{i:04d}": b"x" for i in range(2500)})
    seed_with_engine(transfer_repo, source, "del")
    victims = [f"del/f{i:04d}" for i in range(2100)]
    assert (
        delete_objects(
            transfer_repo.endpoint, creds(transfer_repo), transfer_repo.name, "main", victims
        )
        == 2100
    )
    remaining = transfer_repo.object_paths("main", "del/")
    assert remaining == [f"del/f{i:04d}" for i in range(2100, 2500)]


def test_upload_refuses_symlinks_and_names_missing_branch(
    transfer_repo: LakeFSRepo, tmp_path: Path
) -> None:
    real = tmp_path / "real.txt"
    real.write_text("data")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with pytest.raises(OSError, match=r"link\.txt"):
        upload_to(transfer_repo, "main", [(link, "x")])
    with pytest.raises(LakeFSError, match=r"no-such-branch:obj/real\.txt") as missing:
        upload_to(
            transfer_repo,
            "no-such-branch",
            [(real, "obj/real.txt")],
        )
    assert missing.value.status == 404
    assert transfer_repo.secret_access_key not in str(missing.value)
