"""CPU seconds the servers spend during one bench run.

On one machine the client, lakeFS and the object store share the cores, so a tool's wall time
is bounded by what the servers must do for it: if both tools cost the servers the same CPU per
object, no client can be faster than the servers' share allows. The transfer benches therefore
report, per row, the client's own CPU (user + system, from ``wait4``) and each server process's
CPU over the same runs, for the servers whose pids the bench knows (a ``perago dev up`` stack or
the private s3 stack it starts itself).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerProcess:
    """A server the bench may watch: ``name`` (``lakefs``, ``minio``) and its pid."""

    name: str
    pid: int


def process_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """User + system CPU seconds of ``pid`` so far (its threads included, its children not);
    None when it cannot be read (gone, not Linux, another user's)."""
    try:
        text = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ")".
    fields = text.rpartition(")")[2].split()
    try:
        utime, stime = int(fields[11]), int(fields[12])
    except (IndexError, ValueError):
        return None
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def runs_as(pid: int, name: str, proc: Path = Path("/proc")) -> bool:
    """Whether ``pid`` is alive and its command name is ``name`` (the kernel keeps 15 bytes)."""
    try:
        comm = (proc / str(pid) / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return False
    return comm == name[:15]


def sample(processes: Iterable[ServerProcess]) -> dict[str, float]:
    """Each readable server's CPU seconds so far, by name (processes of one name summed)."""
    seen: dict[str, float] = {}
    for process in processes:
        seconds = process_cpu_seconds(process.pid)
        if seconds is not None:
            seen[process.name] = seen.get(process.name, 0.0) + seconds
    return seen


def spent(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds each server spent between two samples (servers in both only)."""
    return {name: after[name] - before[name] for name in before if name in after}


def median_by_name(runs: Sequence[Mapping[str, float] | None]) -> dict[str, float] | None:
    """The per-server median over runs, rounded to 10 ms; None unless every run measured the
    same servers (a server that went away mid-bench would otherwise skew one median)."""
    if not runs or any(run is None for run in runs):
        return None
    names = set(runs[0] or {})
    if not names or any(set(run or {}) != names for run in runs):
        return None
    return {
        name: round(statistics.median((run or {})[name] for run in runs), 2)
        for name in sorted(names)
    }
