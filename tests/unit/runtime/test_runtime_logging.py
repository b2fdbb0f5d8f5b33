"""JSONL sink: UTC lines with bound fields, size rotation, retention across processes."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

from loguru import logger

from perago.runtime.logs import JsonlFileSink, install_jsonl_sink, prune_logs


def test_lines_are_json_with_utc_time_and_fields(tmp_path: Path) -> None:
    path = install_jsonl_sink(
        log_root=tmp_path,
        module_target="pkg.mod",
        worker_id="pkgmod0001",
        max_bytes=1 << 20,
        retention=timedelta(days=1),
    )
    logger.bind(task_id="t1").info("attempt started")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    event = lines[-1]
    assert event["message"] == "attempt started"
    assert event["task_id"] == "t1"
    assert event["worker_id"] == "pkgmod0001"
    assert event["time"].endswith("Z")
    assert path.parent == tmp_path / "pkg.mod" / "worker_id=pkgmod0001"


def test_rotation_at_max_size(tmp_path: Path) -> None:
    sink = JsonlFileSink(
        tmp_path / "w", max_bytes=200, retention=timedelta(days=1), module_dir=tmp_path
    )
    for i in range(20):
        sink.write_line(json.dumps({"i": i, "pad": "x" * 40}))
    sink.close()
    files = sorted((tmp_path / "w").glob("*.jsonl"))
    assert len(files) > 3
    assert all(f.stat().st_size <= 200 for f in files)
    total = sum(len(f.read_text().splitlines()) for f in files)
    assert total == 20


def test_retention_prunes_files_of_earlier_processes(tmp_path: Path) -> None:
    old = tmp_path / "worker_id=other0002" / "pid=1__started=20200101T000000Z.jsonl"
    old.parent.mkdir(parents=True)
    old.write_text("{}\n")
    stale = time.time() - 3 * 86400
    os.utime(old, (stale, stale))
    fresh = tmp_path / "worker_id=other0002" / "pid=2__started=20990101T000000Z.jsonl"
    fresh.write_text("{}\n")
    assert prune_logs(tmp_path, timedelta(days=1)) == 1
    assert not old.exists()
    assert fresh.exists()
