"""Scenarios of ``perago bench snapshot`` and ``perago bench diff``.

Every tool runs in its own subprocess. perago and the Python baseline time their own work in
that process (interpreter start-up excluded) and report its VmHWM (peak RSS, interpreter
included). b3sum is timed around ``xargs -P 2`` (two b3sum processes at a time over the same
file list) and its peak RSS — the largest single process — comes from ``/usr/bin/time``, which
forks from a small image: ``ru_maxrss`` of a child of this Python process would include this
process's own memory inherited across fork+exec.

Repeats are interleaved (round r runs every tool once before round r+1), so load from other
processes on a shared machine hits all tools alike and the ratios stay meaningful.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perago.bench import baselines
from perago.bench.baselines import Baseline
from perago.bench.report import Row
from perago.bench.trees import SETTLE_S, Tree, list_files

B3SUM_PROCESSES = 2
TIME_BIN = "/usr/bin/time"


@dataclass(frozen=True)
class Settings:
    repeat: int
    threads: int | None
    # The b3sum baseline: found once by the command, which also says when it is skipped.
    b3sum: Baseline = field(default_factory=baselines.b3sum)


@dataclass
class Samples:
    """Timings of one (scenario, tool) gathered over the rounds."""

    times: list[float] = field(default_factory=list)
    peak_kb: int | None = 0
    note: str = ""

    def add(self, times: list[float], peak_kb: int | None, note: str) -> None:
        self.times += times
        self.peak_kb = (
            None if peak_kb is None or self.peak_kb is None else max(self.peak_kb, peak_kb)
        )
        self.note = note


Sampler = Callable[[], tuple[list[float], int | None, str]]


def python_tool(mode: str, tree: Tree, cfg: Settings, *, settle: bool = False) -> Sampler:
    """One timed run of ``perago.bench.measure MODE`` (after its own untimed warm-up).

    ``settle`` first waits out the racy window, so files another scenario just rewrote do not
    count as racy (the steady state of an unchanged workspace is what is measured).
    """

    def sample() -> tuple[list[float], int | None, str]:
        if settle:
            time.sleep(SETTLE_S)
        command = [sys.executable, "-m", "perago.bench.measure", mode, str(tree.root)]
        command += ["--repeat", "1"]
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
            raise RuntimeError(f"{mode} failed: {last[0]}")
        result = json.loads(out)
        note = ""
        if "heap_bytes_per_entry" in result:
            note = f"heap {result['heap_bytes_per_entry']:.0f} B/entry"
        if "rehashed" in result:
            note = f"rehashed {result['rehashed']}"
        if mode == "diff-1pct":
            note += f" of {result['modified']} modified"
        if mode == "statwalk":
            note = "Rust parallel lstat walk"
        return list(result["times"]), int(result["peak_rss_kb"]), note

    return sample


def b3sum_tool(tree: Tree, list_file: Path, b3sum: str | None) -> Sampler | None:
    """One ``xargs -P 2 b3sum`` pass over ``list_file``; None without a ``b3sum``."""
    if b3sum is None:
        return None
    per_process = max(1, math.ceil(tree.files / B3SUM_PROCESSES))
    arg_limit = max(131072, os.sysconf("SC_ARG_MAX") - 262144)
    rss_file = list_file.with_suffix(".rss")
    command = ["xargs", "-0", "-a", str(list_file), "-P", str(B3SUM_PROCESSES)]
    command += ["-n", str(per_process), "-s", str(arg_limit), b3sum]
    has_time = os.access(TIME_BIN, os.X_OK)
    if has_time:
        command = [TIME_BIN, "-f", "%M", "-o", str(rss_file), *command]

    def sample() -> tuple[list[float], int | None, str]:
        started = time.perf_counter()
        code = subprocess.call(command, cwd=tree.root, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"b3sum failed with exit code {code}")
        peak = int(rss_file.read_text().split()[-1]) if has_time else None
        note = f"{B3SUM_PROCESSES} processes (xargs -P)"
        if not has_time:
            note += f"; peak RSS not measured: no {TIME_BIN}"
        return [elapsed], peak, note

    return sample


def interleaved(
    plan: list[tuple[str, str, Sampler | None, str]], tree: Tree, cfg: Settings
) -> list[Row]:
    """Run every (scenario, tool, sampler) once per round; rows hold medians over rounds. A tool
    without a sampler keeps its row, unmeasured, with why it was skipped (the plan's text)."""
    samples = {(scenario, tool): Samples() for scenario, tool, _, _ in plan}
    for _ in range(cfg.repeat):
        for scenario, tool, sampler, _ in plan:
            if sampler is not None:
                samples[(scenario, tool)].add(*sampler())
    rows = []
    for scenario, tool, sampler, missing in plan:
        got = samples[(scenario, tool)]
        if sampler is None:
            rows.append(Row.skipped_baseline(scenario, tool, missing))
            continue
        rows.append(
            Row.measured(
                scenario,
                tool,
                statistics.median(got.times),
                total_bytes=tree.total_bytes,
                files=tree.files,
                peak_rss_kb=got.peak_kb,
                note=got.note,
            )
        )
    return rows


def snapshot_rows(label: str, tree: Tree, cfg: Settings) -> list[Row]:
    scenario = f"snapshot-{label}"
    with tempfile.TemporaryDirectory(prefix="perago-bench-") as scratch:
        list_file = Path(scratch) / "files.list"
        list_file.write_bytes(b"".join(f.encode() + b"\0" for f in list_files(tree.root)))
        b3sum = b3sum_tool(tree, list_file, cfg.b3sum.path)
        if b3sum is not None:
            b3sum()  # warm the page cache once for b3sum's own first round
        plan = [
            (scenario, "perago", python_tool("snapshot", tree, cfg), ""),
            (scenario, "b3sum", b3sum, cfg.b3sum.why),
            (scenario, "python-sha256", python_tool("python-sha256", tree, cfg), ""),
        ]
        return interleaved(plan, tree, cfg)


def diff_rows(label: str, tree: Tree, cfg: Settings) -> list[Row]:
    plan: list[tuple[str, str, Sampler | None, str]] = [
        (
            f"diff-unchanged-{label}",
            "perago",
            python_tool("diff-unchanged", tree, cfg, settle=True),
            "",
        ),
        (f"statwalk-{label}", "perago", python_tool("statwalk", tree, cfg), ""),
        (f"diff-1pct-{label}", "perago", python_tool("diff-1pct", tree, cfg), ""),
    ]
    return interleaved(plan, tree, cfg)
