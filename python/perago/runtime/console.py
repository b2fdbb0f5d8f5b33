"""What ``perago start`` prints while it runs, next to the JSONL files (which stay as they are).

``text`` (the default) writes short lines to stderr: one when the supervisor starts (task, queue,
slots, servers), one per finished attempt (task id, outcome, duration, bytes, published ref) and
every warning and error. ``json`` writes every record at the level or above as one JSON object a
line to stdout, for containers whose log collector reads stdout. Workers write to the console
they inherited from the supervisor; each line is one ``write`` of less than a pipe buffer, so
lines of several processes never mix. A console nobody reads never blocks a worker
(``console_stream``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from typing import Any

from loguru import logger

from perago.runtime.console_stream import console_stream
from perago.runtime.logs import SINK_OPTIONS, format_record

STARTED = "perago started"
ATTEMPT_FINISHED = "attempt finished"
# INFO records the text console shows (the rest is for the JSONL files and DEBUG).
_TEXT_INFO = frozenset({STARTED, ATTEMPT_FINISHED, "supervisor draining workers"})
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def human_size(count: float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _files(count: object) -> str:
    return f"{count} file" + ("" if count == 1 else "s")


def attempt_line(extra: Mapping[str, Any]) -> str:
    """``COMPLETED task <id> in 1.23 s: down 3 files 1.2 MiB, up 1 file 11 B, ref <ref>``."""
    status = extra.get("status", "?")
    seconds = float(extra.get("duration_ms", 0.0)) / 1000.0
    parts = [f"{status} task {extra.get('task_id')} in {seconds:.2f} s"]
    moved = []
    if extra.get("files_downloaded"):
        down = extra["files_downloaded"]
        moved.append(f"down {_files(down)} {human_size(int(extra.get('bytes_downloaded', 0)))}")
    if extra.get("files_uploaded") or extra.get("objects_deleted"):
        up = f"up {_files(extra.get('files_uploaded', 0))}"
        up += f" {human_size(int(extra.get('bytes_uploaded', 0)))}"
        if extra.get("objects_deleted"):
            up += f", {extra['objects_deleted']} deleted"
        moved.append(up)
    if extra.get("published_ref"):
        moved.append(f"ref {extra['published_ref']}")
    if status != "COMPLETED":
        moved.append(f"{extra.get('exception_type') or 'failed'}: {extra.get('reason') or ''}")
    return parts[0] + (": " + ", ".join(moved) if moved else "")


def started_line(extra: Mapping[str, Any]) -> str:
    servers = ", ".join(f"{name} {url}" for name, url in extra.get("servers", {}).items())
    return (
        f"started task {extra.get('task_name')} on queue {extra.get('queue')}: "
        f"{extra.get('slots')} {extra.get('mode')} slot(s); {servers}"
    )


def text_line(record: Mapping[str, Any]) -> str | None:
    level = record["level"].name
    message = record["message"]
    extra = record["extra"]
    if message == ATTEMPT_FINISHED:
        return "perago: " + attempt_line(extra)
    if message == STARTED:
        return "perago: " + started_line(extra)
    if level in ("WARNING", "ERROR", "CRITICAL"):
        detail = extra.get("error") or extra.get("cause")
        return f"perago: {level.lower()}: {message}" + (f" ({detail})" if detail else "")
    if message in _TEXT_INFO or _LEVELS.get(level, 20) < _LEVELS["INFO"]:
        return f"perago: {message}"
    return None


def install_console_sink(log_format: str, level: str) -> None:
    """Add the console next to this process's other sinks (``install_jsonl_sink`` removes all)."""
    threshold = _LEVELS.get(level.upper(), 20)

    def wanted(record: Any) -> bool:
        return int(record["level"].no) >= threshold

    if log_format == "json":
        stdout = console_stream("stdout")
        # Records go out as raw writes: a task body's prints to a block-buffered stdout would
        # otherwise come out after records written later.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

        def write_json(message: Any) -> None:
            stdout.write_line(format_record(message.record))

        logger.add(write_json, level=0, filter=wanted, **SINK_OPTIONS)
        return

    stderr = console_stream("stderr")

    def write_text(message: Any) -> None:
        line = text_line(message.record)
        if line is not None:
            stderr.write_line(line)

    logger.add(write_text, level=0, filter=wanted, **SINK_OPTIONS)
