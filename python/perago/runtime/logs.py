"""Per-process JSONL logs: one file per process, size rotation, retention across processes.

Layout: ``<log_root>/<module>/worker_id=<id>/pid=<pid>__started=<UTC stamp>[.<n>].jsonl``.
Every line is one JSON object ``{"time": <UTC ISO-8601>, "level", "message", "worker_id", "pid",
...bound fields}``. Retention prunes by modification time across the whole module directory, so
files of earlier processes (restarts, previous runs) are pruned too, not only rotated siblings.
Directories perago creates here are 0700 and log files 0600, opened without following symlinks.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loguru import logger

from perago.host.secure_files import ensure_private_directory, open_private_append
from perago.runtime.console_stream import write_all

_UNSAFE_SEGMENT = re.compile(r"[^A-Za-z0-9_.=-]+")
LOG_SUFFIX = ".jsonl"
# Options of every perago sink: each renders the record itself, so loguru's own rendering (its
# default format, a traceback with variable values) would be built on every record and dropped.
SINK_OPTIONS: dict[str, Any] = {
    "format": "{message}",
    "backtrace": False,
    "diagnose": False,
    "enqueue": False,
    "catch": True,
}


def safe_segment(value: str) -> str:
    """A file-name-safe rendering of an id (same rule as attempt directories)."""
    cleaned = _UNSAFE_SEGMENT.sub("_", value).strip("._")
    return cleaned or "unknown"


def log_directory(log_root: Path, module_target: str, worker_id: str) -> Path:
    return log_root / safe_segment(module_target) / f"worker_id={safe_segment(worker_id)}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prune_logs(module_dir: Path, retention: timedelta, *, keep: Path | None = None) -> int:
    """Delete JSONL files under ``module_dir`` not modified within ``retention``; returns the count.

    One unreadable entry never stops the pass: logging must not take a worker down.
    """
    if not module_dir.is_dir():
        return 0
    cutoff = time.time() - retention.total_seconds()
    removed = 0
    for path in module_dir.glob(f"worker_id=*/*{LOG_SUFFIX}"):
        if keep is not None and path == keep:
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def _open_log(path: Path) -> int:
    """Append to ``path`` (created 0600); a symlink planted there is refused, not followed."""
    return open_private_append(path)


class JsonlFileSink:
    """A thread-safe JSONL writer that rotates at ``max_bytes`` and prunes on rotation."""

    def __init__(
        self, directory: Path, *, max_bytes: int, retention: timedelta, module_dir: Path
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be greater than zero")
        self._directory = directory
        self._max_bytes = max_bytes
        self._retention = retention
        self._module_dir = module_dir
        self._lock = threading.Lock()
        # Logs may carry task inputs and failure details: directories 0700, files 0600.
        ensure_private_directory(self._directory)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._base = f"pid={os.getpid()}__started={stamp}"
        self._index = 0
        self.path = self._path_for(0)
        self._fd = _open_log(self.path)
        self._size = os.fstat(self._fd).st_size
        prune_logs(self._module_dir, self._retention, keep=self.path)

    def _path_for(self, index: int) -> Path:
        suffix = "" if index == 0 else f".{index}"
        return self._directory / f"{self._base}{suffix}{LOG_SUFFIX}"

    def write_line(self, line: str) -> None:
        # One write(2) per line, unbuffered: a line is on disk (in the page cache) before the
        # attempt goes on, so a worker killed next keeps its last words.
        data = (line if line.endswith("\n") else line + "\n").encode("utf-8")
        with self._lock:
            if self._fd < 0:
                return
            if self._size > 0 and self._size + len(data) > self._max_bytes:
                self._rotate()
            write_all(self._fd, data)
            self._size += len(data)

    def _rotate(self) -> None:
        os.close(self._fd)
        self._index += 1
        self.path = self._path_for(self._index)
        self._fd = _open_log(self.path)
        self._size = 0
        prune_logs(self._module_dir, self._retention, keep=self.path)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1  # never write to a number the process may reuse for another file


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def format_record(record: Mapping[str, Any]) -> str:
    """One JSON line for a loguru record: UTC time, level, message, then the bound fields."""
    moment: datetime = record["time"]
    payload: dict[str, Any] = {
        "time": moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "message": record["message"],
        "pid": record["process"].id,
    }
    for key, value in record["extra"].items():
        payload.setdefault(key, _jsonable(value))
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        payload.setdefault("exception_type", exception.type.__name__)
        payload.setdefault("exception_message", str(exception.value))
    return json.dumps(payload, ensure_ascii=False, sort_keys=False)


def install_jsonl_sink(
    *,
    log_root: Path,
    module_target: str,
    worker_id: str,
    max_bytes: int,
    retention: timedelta,
) -> Path:
    """Replace every loguru sink of this process by the JSONL file sink; returns the file path."""
    module_dir = log_root / safe_segment(module_target)
    sink = JsonlFileSink(
        log_directory(log_root, module_target, worker_id),
        max_bytes=max_bytes,
        retention=retention,
        module_dir=module_dir,
    )
    logger.remove()
    logger.configure(extra={"worker_id": worker_id})

    def write(message: Any) -> None:
        sink.write_line(format_record(message.record))

    logger.add(write, level="INFO", **SINK_OPTIONS)
    return sink.path
