"""Processes a test started: whether one still runs, and waiting for it to be gone."""

from __future__ import annotations

import time
from pathlib import Path


def process_running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan may linger as one until its reaper runs)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to stop running; whether it did."""
    deadline = time.monotonic() + timeout
    while process_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_running(pid)
