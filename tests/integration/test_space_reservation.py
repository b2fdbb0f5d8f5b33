"""The download's ``before_write`` hook and the space ledger against a REAL lakeFS: the hook sees
the listed total before anything is written, its exception ends the download unchanged, and a
workspace download is refused when what others reserved leaves too little."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from perago.attempt.directory import attempt_record_path
from perago.attempt.space_ledger import LEDGER_FILENAME, free_bytes
from perago.config import LakeFSConfig
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine import transfer
from perago.host.processes import ProcessIdentity
from perago.lakefs.workspace import LakeFSWorkspaceRuntime

pytestmark = pytest.mark.integration

FILES = {"data/a.bin": b"a" * 1000, "data/sub/b.bin": b"b" * 234, "other/c.bin": b"c"}


def test_before_write_sees_the_listed_total_before_any_byte(
    lakefs_config: LakeFSConfig,
    repo: str,
    seed_files: Callable[[str, Mapping[str, bytes]], str],
    tmp_path: Path,
) -> None:
    ref = seed_files(repo, FILES)
    dest = tmp_path / "dest"
    seen: list[tuple[str, int, list[str]]] = []

    def before_write(root: str, total: int) -> None:
        seen.append((root, total, sorted(os.listdir(root))))

    client = transfer.connect(lakefs_config.endpoint_url, lakefs_config)
    result = transfer.download_prefix(
        client, None, repo, ref, "data", dest, before_write=before_write
    )
    assert seen == [(str(dest.resolve()), 1234, [])]  # once, the prefix only, nothing written
    assert result.bytes == 1234

    class Refused(Exception):
        pass

    def refuse(root: str, total: int) -> None:
        raise Refused(f"no room for {total}")

    again = tmp_path / "again"
    with pytest.raises(Refused, match="no room for 1234"):
        transfer.download_prefix(client, None, repo, ref, "data", again, before_write=refuse)
    assert os.listdir(again) == []


def test_a_workspace_download_is_refused_when_others_reserved_the_space(
    lakefs_config: LakeFSConfig,
    repo: str,
    seed_files: Callable[[str, Mapping[str, bytes]], str],
    tmp_path: Path,
) -> None:
    ref = seed_files(repo, FILES)
    root = tmp_path / "root"
    directory = root / "task_id=mine"
    directory.mkdir(parents=True)
    # Another host's running attempt (its owner record exists) reserved more than is free
    # (other writers may free space meanwhile; this stays refused whatever they do).
    holder = "task_id=elsewhere"
    attempt_record_path(root, holder).parent.mkdir()
    attempt_record_path(root, holder).write_text("{}")
    taken = free_bytes(root) + (100 << 30)
    owner = ProcessIdentity("other-host", "boot", "pid:[1]", 7, 7).to_json()
    reservation = {"id": "x", "holder": holder, "bytes": taken, "owner": owner, "created_at": ""}
    (root / LEDGER_FILENAME).write_text(json.dumps({"reservations": [reservation]}))

    runtime = LakeFSWorkspaceRuntime(lakefs_config)
    workspace = WorkspaceInput(repository=repo, branch="main", ref_type="commit", ref=ref)
    try:
        with pytest.raises(OSError, match="1234 bytes needed, 0 bytes available") as refused:
            runtime.download_workspace(workspace, WorkspaceSpec(prefix="data"), directory)
        assert refused.value.errno == errno.ENOSPC
        assert "reserved by 1 other running download(s)" in str(refused.value)
        assert os.listdir(directory) == []  # refused before the first byte
        # Once that attempt ended (its record is gone), its reservation no longer counts.
        attempt_record_path(root, holder).unlink()
        baseline = runtime.download_workspace(workspace, WorkspaceSpec(prefix="data"), directory)
        assert baseline.total_bytes == 1234
    finally:
        runtime.control.close()
    assert not (root / LEDGER_FILENAME).exists()  # released, and the stale one dropped
