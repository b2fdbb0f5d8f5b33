"""Whether a process or process group still exists, by sending it signal 0.

Shared by the dev-server supervisor (process groups of lakeFS/Conductor), the worker
supervisor's workspace-root lock and the attempt GC. ``ProcessIdentity`` / ``judge`` decide
liveness only for the same host, boot and pid namespace; anything else is ``unknown``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal


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


# -- identity across hosts, boots and pid namespaces ------------------------------------------

INSTANCE_ID_ENV = "PERAGO_INSTANCE_ID"
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProcessIdentity:
    """Who owns something (a lock, an attempt): enough to judge liveness only where it can be.

    A pid means nothing on another host, after a reboot or in another pid namespace (every
    container supervisor is PID 1), so a pid is compared only when host, boot and pid namespace
    all match; ``start_ticks`` (``/proc/<pid>/stat`` field 22) catches pid reuse.
    """

    host_id: str
    boot_id: str
    pid_namespace: str
    pid: int
    start_ticks: int

    def to_json(self) -> dict[str, object]:
        return {
            "host_id": self.host_id,
            "boot_id": self.boot_id,
            "pid_namespace": self.pid_namespace,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
        }

    @classmethod
    def from_json(cls, data: object) -> ProcessIdentity | None:
        if not isinstance(data, dict):
            return None
        try:
            identity = cls(
                host_id=str(data["host_id"]),
                boot_id=str(data["boot_id"]),
                pid_namespace=str(data["pid_namespace"]),
                pid=int(data["pid"]),
                start_ticks=int(data["start_ticks"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return identity if identity.pid > 0 else None


Liveness = Literal["alive", "dead", "unknown"]


def host_id(env: Mapping[str, str] | None = None) -> str:
    """``PERAGO_INSTANCE_ID`` when set (containers sharing a kernel need one), else the
    machine id, else the host name."""
    configured = (env if env is not None else os.environ).get(INSTANCE_ID_ENV, "").strip()
    if configured:
        return configured
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            value = Path(path).read_text(encoding="ascii").strip()
            if value:
                return value
    return socket.gethostname() or _UNKNOWN


def boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    return _UNKNOWN


def pid_namespace() -> str:
    with contextlib.suppress(OSError):
        return os.readlink("/proc/self/ns/pid")
    return _UNKNOWN


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (Linux), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def is_zombie(pid: int) -> bool:
    """True when ``pid`` has exited and only waits to be reaped (it can do nothing any more:
    an orphan whose reaper is slow, e.g. a container's init, must not count as running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] in {"Z", "X"}


def identity_of(pid: int, env: Mapping[str, str] | None = None) -> ProcessIdentity | None:
    """The identity of another process of this host, boot and pid namespace (e.g. a child)."""
    ticks = process_start_ticks(pid)
    if ticks is None:
        return None
    return ProcessIdentity(
        host_id=host_id(env),
        boot_id=boot_id(),
        pid_namespace=pid_namespace(),
        pid=pid,
        start_ticks=ticks,
    )


def current_process_identity(env: Mapping[str, str] | None = None) -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(
        host_id=host_id(env),
        boot_id=boot_id(),
        pid_namespace=pid_namespace(),
        pid=pid,
        start_ticks=process_start_ticks(pid) or 0,
    )


def judge(identity: ProcessIdentity, env: Mapping[str, str] | None = None) -> Liveness:
    """``alive`` / ``dead`` when it can be told from here; ``unknown`` for another host, boot
    or pid namespace (never treat that as dead: the owner may be running right now)."""
    here = current_process_identity(env)
    if (identity.host_id, identity.boot_id, identity.pid_namespace) != (
        here.host_id,
        here.boot_id,
        here.pid_namespace,
    ):
        return "unknown"
    if not pid_exists(identity.pid) or is_zombie(identity.pid):
        return "dead"
    started = process_start_ticks(identity.pid)
    if started is not None and identity.start_ticks and started != identity.start_ticks:
        return "dead"  # the pid was reused by another process
    return "alive"
