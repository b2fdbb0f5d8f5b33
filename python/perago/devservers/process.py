"""Start a server in its own process group, wait for health, stop the whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from perago.devservers.errors import DevServerError
from perago.host.processes import group_exists, pid_exists

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port the kernel reports free on loopback now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def spawn(
    cmd: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` detached in a new session (its own process group), output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            return subprocess.Popen(
                list(cmd),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise DevServerError(f"cannot start {cmd[0]}: {exc}") from exc


def pid_alive(pid: int) -> bool:
    if not pid_exists(pid):
        return False
    # A zombie child still answers kill(0); reap it if it is ours so it reads as dead.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    return True


def stop_group(pgid: int, *, grace_seconds: float = 20.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left."""
    if not group_exists(pgid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        pid_alive(pgid)  # reaps the group leader if it is our child
        if not group_exists(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid_alive(pgid)
        if not group_exists(pgid):
            return
        time.sleep(0.1)
    raise DevServerError(f"process group {pgid} did not exit after SIGKILL")


def wait_port_free(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while port_in_use(port):
        if time.monotonic() > deadline:
            raise DevServerError(f"port {LOOPBACK}:{port} is still in use after stopping")
        time.sleep(0.2)


def loopback_url(port: int, *, tls: bool = False) -> str:
    """The root URL of a dev server listening on ``port`` of the loopback interface."""
    return f"{'https' if tls else 'http'}://{LOOPBACK}:{port}"


def answers_2xx(url: str) -> bool:
    """Whether a GET of ``url`` is answered with a 2xx status."""
    status, _ = http_get(url)
    return 200 <= status < 300


def http_get(url: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """Status and body of a GET; (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read() or b"")
    except (urllib.error.URLError, OSError, TimeoutError):
        return 0, b""


def log_tail(path: Path, lines: int = 40, *, unreadable: str = "(no log)") -> str:
    """The last ``lines`` lines of the log at ``path``; ``unreadable`` when it cannot be read."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError:
        return unreadable
    return "\n".join(content[-lines:])


def wait_healthy(
    name: str,
    proc: subprocess.Popen[bytes],
    healthy: Callable[[], bool],
    *,
    timeout: float,
    log_path: Path,
) -> float:
    """Poll ``healthy`` until it holds; return seconds waited. Exit or timeout raises with logs."""
    started = time.monotonic()
    while True:
        if healthy():
            return time.monotonic() - started
        code = proc.poll()
        if code is not None:
            raise DevServerError(
                f"{name} exited with code {code} before becoming healthy; "
                f"last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if time.monotonic() - started > timeout:
            raise DevServerError(
                f"{name} not healthy after {timeout:.0f}s; last lines of {log_path}:\n"
                f"{log_tail(log_path)}"
            )
        time.sleep(0.5)
