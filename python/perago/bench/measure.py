"""Run one benchmark tool in this (fresh) process and print its timings as JSON.

``python -m perago.bench.measure TOOL ROOT --repeat N [--threads T]``. The parent reads the peak
RSS of this process from ``wait4``, so each tool's memory is measured on its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from perago.bench.trees import list_files
from perago.engine.snapshot import detect_changes, take_snapshot

CHUNK = 1 << 20
T = TypeVar("T")


def _sha256_walk(root: Path) -> None:
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                while block := handle.read(CHUNK):
                    digest.update(block)
            digest.hexdigest()


def _flip(root: Path, rel: str) -> None:
    path = root / rel
    data = bytearray(path.read_bytes())
    if data:
        data[0] ^= 0xFF
    else:
        data = bytearray(b"x")
    path.write_bytes(data)


def run(tool: str, root: Path, repeat: int, threads: int | None) -> dict[str, object]:
    times: list[float] = []
    notes: dict[str, object] = {}

    def timed(action: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
        return result

    # One untimed warm-up pass (page cache, pools), then the measured repeats.
    if tool == "snapshot":
        snap = take_snapshot(root, threads=threads)
        for _ in range(repeat):
            snap = timed(lambda: take_snapshot(root, threads=threads))
        notes["heap_bytes_per_entry"] = snap.memory_bytes / max(len(snap), 1)
    elif tool == "statwalk":
        from perago.engine import snapshot as engine

        engine.stat_walk(root, threads)
        for _ in range(repeat):
            timed(lambda: engine.stat_walk(root, threads))
    elif tool == "diff-unchanged":
        base = take_snapshot(root, threads=threads)
        detect_changes(root, base, threads=threads)
        for _ in range(repeat):
            changes = timed(lambda: detect_changes(root, base, threads=threads))
            if changes.changed:
                raise SystemExit("unchanged tree reported changes")
            notes["rehashed"] = changes.rehashed
    elif tool == "diff-1pct":
        files = list_files(root)
        victims = files[:: max(1, 100)]
        for _ in range(repeat + 1):
            base = take_snapshot(root, threads=threads)
            for rel in victims:
                _flip(root, rel)
            started = time.perf_counter()
            changes = detect_changes(root, base, threads=threads)
            times.append(time.perf_counter() - started)
            for rel in victims:
                _flip(root, rel)  # restore the original bytes
            if len(changes.modified) != len(victims):
                raise SystemExit(f"expected {len(victims)} modified, got {len(changes.modified)}")
            notes["rehashed"] = changes.rehashed
            notes["modified"] = len(victims)
        times.pop(0)  # the first pass warmed the cache
    elif tool == "python-sha256":
        _sha256_walk(root)
        for _ in range(repeat):
            timed(lambda: _sha256_walk(root))
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    return {"times": times, "peak_rss_kb": peak_rss_kb(), **notes}


def peak_rss_kb() -> int:
    """High-water RSS of this process image only (VmHWM).

    ``ru_maxrss`` would also count the parent's memory inherited across fork+exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool")
    parser.add_argument("root", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(run(args.tool, args.root, args.repeat, args.threads)))


if __name__ == "__main__":
    main()
