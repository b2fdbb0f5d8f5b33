"""Named fault points: inert unless a test enables them through ``PERAGO_FAULT_GATE_DIR``.

A fault test holds a real worker at a named step of its attempt (say ``publish.before_merge``)
while the retry runs to the end, then releases it, or kills it there. With the variable set to a
directory, :func:`reach` does, for point ``NAME``:

* ``NAME.hold`` exists → write ``NAME.reached`` (the pid and task id, one line each) and wait until
  ``NAME.hold`` is removed. The test waits for ``reached`` instead of sleeping, so the
  interleaving is deterministic.
* ``NAME.hold-once`` exists → as ``hold``, but only the first process to arrive is held: it
  renames the file to ``NAME.hold`` atomically and records itself in ``NAME.claimed``, so a
  retry passes the same point freely (also while the first one is still held).

Without the variable every call returns at once (one dictionary lookup): production code carries
the points, never their effect.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["FAULT_GATE_ENV", "reach"]

FAULT_GATE_ENV = "PERAGO_FAULT_GATE_DIR"
_POLL_SECONDS = 0.02


def reach(name: str, *, task_id: str = "") -> None:
    """Pass fault point ``name`` (a no-op unless a test enabled the gate directory)."""
    root = os.environ.get(FAULT_GATE_ENV)
    if not root:
        return
    gate = Path(root)
    hold = gate / f"{name}.hold"
    claimed = gate / f"{name}.claimed"
    mine = _claim_once(gate / f"{name}.hold-once", hold, claimed)
    if mine is None:
        return  # a hold-once point that another live process holds: pass freely
    if not hold.exists():
        return
    reached = gate / f"{name}.reached"
    temporary = gate / f".{name}.reached.{os.getpid()}"
    temporary.write_text(f"{os.getpid()}\n{task_id}\n", encoding="utf-8")
    temporary.replace(reached)
    while hold.exists():
        time.sleep(_POLL_SECONDS)
    if mine:
        claimed.unlink(missing_ok=True)


def _claim_once(once: Path, hold: Path, claimed: Path) -> bool | None:
    """True: this process took the hold-once gate; False: no claim in play; None: another live
    process holds it. The claim file is created exclusively, so only one process wins."""
    me = os.getpid()
    for _ in range(2):
        if once.exists():
            try:
                descriptor = os.open(claimed, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pass
            else:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(str(me))
                with contextlib.suppress(OSError):
                    once.rename(hold)
                return True
        try:
            owner = int(claimed.read_text(encoding="utf-8") or "0")
        except (OSError, ValueError):
            return False
        if owner == me:
            return True
        if owner > 0 and _alive(owner):
            return None
        claimed.unlink(missing_ok=True)  # left by a process that was killed while held
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
