"""Scenarios of ``perago bench snapshot`` and ``perago bench diff``.

Every tool runs in its own subprocess. perago and the Python baseline time their own work in
that process (interpreter start-up excluded) and report its VmHWM (peak RSS, interpreter
included). b3sum is timed around ``xargs -P 2`` (two b3sum processes at a time over the same
file list) and its peak RSS — the largest single process — comes from ``/usr/bin/time``, which
forks from a small image: ``ru_maxrss`` of a child of this Python process would include this
process's own memory inherited across fork+exec.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from perago.bench.report import Row
from perago.bench.trees import Tree, list_files

B3SUM_PROCESSES = 2


@dataclass(frozen=True)
class Settings:
    repeat: int
    threads: int | None


TIME_BIN = "/usr/bin/time"


def measure_python_tool(scenario: str, tool: str, mode: str, tree: Tree, cfg: Settings) -> Row:
    """Run ``perago.bench.measure`` for one tool; perago tools report as ``perago``."""
    command = [sys.executable, "-m", "perago.bench.measure", mode, str(tree.root)]
    command += ["--repeat", str(cfg.repeat)]
    if cfg.threads:
        command += ["--threads", str(cfg.threads)]
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        out = process.stdout.read() if process.stdout is not None else b""
        code = process.wait()
        errors.seek(0)
        err = errors.read()
    if code != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{scenario}/{tool} failed: {last[0]}")
    result = json.loads(out)
    times: list[float] = result["times"]
    note = ""
    if "heap_bytes_per_entry" in result:
        note = f"heap {result['heap_bytes_per_entry']:.0f} B/entry"
    if "rehashed" in result:
        note = f"rehashed {result['rehashed']}"
    if mode == "statwalk":
        note = "Rust parallel lstat walk"
    files, total = tree.files, tree.total_bytes
    if mode == "diff-1pct":
        note += f" of {len(list_files(tree.root)[::100])} modified"
    return Row.measured(
        scenario,
        tool,
        statistics.median(times),
        total_bytes=total,
        files=files,
        peak_rss_kb=result["peak_rss_kb"],
        note=note,
    )


def measure_b3sum(scenario: str, tree: Tree, cfg: Settings) -> Row:
    b3sum = shutil.which("b3sum")
    if b3sum is None:
        return Row.missing(scenario, "b3sum", "not installed")
    files = list_files(tree.root)
    per_process = max(1, math.ceil(len(files) / B3SUM_PROCESSES))
    arg_limit = max(131072, os.sysconf("SC_ARG_MAX") - 262144)
    with tempfile.NamedTemporaryFile("wb", prefix="perago-b3sum-", suffix=".list") as listing:
        listing.write(b"\0".join(f.encode() for f in files) + b"\0")
        listing.flush()
        rss_file = Path(listing.name + ".rss")
        command = ["xargs", "-0", "-a", listing.name, "-P", str(B3SUM_PROCESSES)]
        command += ["-n", str(per_process), "-s", str(arg_limit), b3sum]
        has_time = os.access(TIME_BIN, os.X_OK)
        if has_time:
            command = [TIME_BIN, "-f", "%M", "-o", str(rss_file), *command]
        times: list[float] = []
        peak: int | None = 0 if has_time else None
        for attempt in range(cfg.repeat + 1):  # the first pass only warms the cache
            started = time.perf_counter()
            code = subprocess.call(command, cwd=tree.root, stdout=subprocess.DEVNULL)
            elapsed = time.perf_counter() - started
            if code != 0:
                raise RuntimeError(f"{scenario}/b3sum failed with exit code {code}")
            if attempt:
                times.append(elapsed)
                if peak is not None:
                    peak = max(peak, int(rss_file.read_text().split()[-1]))
        rss_file.unlink(missing_ok=True)
    return Row.measured(
        scenario,
        "b3sum",
        statistics.median(times),
        total_bytes=tree.total_bytes,
        files=tree.files,
        peak_rss_kb=peak,
        note=f"{B3SUM_PROCESSES} processes (xargs -P)",
    )


def snapshot_rows(label: str, tree: Tree, cfg: Settings) -> list[Row]:
    scenario = f"snapshot-{label}"
    return [
        measure_python_tool(scenario, "perago", "snapshot", tree, cfg),
        measure_b3sum(scenario, tree, cfg),
        measure_python_tool(scenario, "python-sha256", "python-sha256", tree, cfg),
    ]


def diff_rows(label: str, tree: Tree, cfg: Settings) -> list[Row]:
    return [
        measure_python_tool(f"diff-unchanged-{label}", "perago", "diff-unchanged", tree, cfg),
        measure_python_tool(f"diff-1pct-{label}", "perago", "diff-1pct", tree, cfg),
        measure_python_tool(f"statwalk-{label}", "perago", "statwalk", tree, cfg),
    ]
