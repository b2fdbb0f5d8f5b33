"""Whether a process or process group still exists, by sending it signal 0.

Shared by the dev-server supervisor (process groups of lakeFS/Conductor) and the worker
supervisor's workspace-root lock (the pid recorded by another supervisor).
"""

from __future__ import annotations

import os
from collections.abc import Callable


def _answers(send: Callable[[int, int], None], target: int) -> bool:
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but belongs to another user
        return True
    return True


def pid_exists(pid: int) -> bool:
    """True while ``pid`` names a process (a zombie included)."""
    return _answers(os.kill, pid)


def group_exists(pgid: int) -> bool:
    """True while any process is left in process group ``pgid``."""
    return _answers(os.killpg, pgid)
