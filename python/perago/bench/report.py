"""The shared result row of every ``perago bench`` scenario, its table and its JSON form, and how
every bench prints them (:func:`emit`: ``--json`` puts only the JSON array on stdout)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import typer
from rich.console import Console
from rich.table import Table

PIPE_WIDTH = 160

Tool = Literal["perago", "b3sum", "python-sha256"] | str
"""perago, b3sum and python-sha256 here; later benches add their own baselines."""


@dataclass(frozen=True)
class Row:
    """One (scenario, tool) measurement: medians over repeats; None when not measured."""

    scenario: str
    tool: Tool
    median_s: float | None
    mb_per_s: float | None
    files_per_s: float | None
    peak_rss_mb: float | None
    note: str = ""
    # Only some benches fill these; they appear in the JSON form only when set.
    objects_uploaded: int | None = None
    phase_ms: dict[str, float] | None = None
    tasks_per_s: float | None = None
    # ``perago bench fleet``: workflows run and those verified as published exactly once.
    workflows: int | None = None
    verified: int | None = None
    # The lakeFS benches (download, upload, stage, attempt): lakeFS's blockstore, "local" or "s3".
    topology: str | None = None
    # ``perago bench cache``: the case of the scenario (cold, warm...), the files and bytes the
    # run produced and, of those bytes, how many were fetched from lakeFS (not from the cache).
    case: str | None = None
    files: int | None = None
    total_bytes: int | None = None
    bytes_fetched: int | None = None
    # A baseline that did not run: why (the note says ``<tool> baseline skipped: <why>``).
    skipped: str | None = None
    # The transfer benches: the tool's own CPU seconds (user + system) and each watched server's
    # over the same run (:mod:`perago.bench.cpu`), medians over the runs.
    cpu_s: float | None = None
    server_cpu_s: dict[str, float] | None = None

    @classmethod
    def measured(
        cls,
        scenario: str,
        tool: Tool,
        median_s: float,
        *,
        total_bytes: int,
        files: int,
        peak_rss_kb: int | None,
        note: str = "",
    ) -> Row:
        rate = 1.0 / median_s if median_s > 0 else 0.0
        return cls(
            scenario=scenario,
            tool=tool,
            median_s=median_s,
            mb_per_s=total_bytes / 1e6 * rate,
            files_per_s=files * rate,
            peak_rss_mb=None if peak_rss_kb is None else peak_rss_kb / 1024,
            note=note,
        )

    @classmethod
    def skipped_baseline(cls, scenario: str, tool: Tool, why: str) -> Row:
        """The row of a baseline that did not run: no measurement, and why (``skipped``)."""
        return cls(scenario, tool, None, None, None, None, skipped_line(tool, why), skipped=why)

    def as_json(self) -> dict[str, object]:
        where: dict[str, object] = {} if self.topology is None else {"topology": self.topology}
        extra: dict[str, object] = {}
        if self.objects_uploaded is not None:
            extra["objects_uploaded"] = self.objects_uploaded
        if self.phase_ms is not None:
            extra["phase_ms"] = self.phase_ms
        if self.tasks_per_s is not None:
            extra["tasks_per_s"] = self.tasks_per_s
        if self.workflows is not None:
            extra["workflows"] = self.workflows
        if self.verified is not None:
            extra["verified"] = self.verified
        for name in (
            "case",
            "files",
            "total_bytes",
            "bytes_fetched",
            "skipped",
            "cpu_s",
            "server_cpu_s",
        ):
            if getattr(self, name) is not None:
                extra[name] = getattr(self, name)
        return {
            "scenario": self.scenario,
            "tool": self.tool,
            **where,
            "median_s": self.median_s,
            "mb_per_s": self.mb_per_s,
            "files_per_s": self.files_per_s,
            "peak_rss_mb": self.peak_rss_mb,
            "note": self.note,
            **extra,
        }


def skipped_line(tool: Tool, why: str) -> str:
    """The one line (stderr, and the row's note) that says a baseline did not run."""
    return f"{tool} baseline skipped: {why}"


def rows_to_json(rows: Sequence[Row]) -> str:
    return json.dumps([row.as_json() for row in rows], indent=2)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def print_table(rows: Sequence[Row], *, title: str, console: Console | None = None) -> None:
    """The rows as a table; the topology column only when some row has one, the files / bytes /
    fetched columns only when some row has them, and tasks/s and the CPU columns likewise."""
    table = Table(title=title)
    placed = any(row.topology is not None for row in rows)
    for header in ("scenario", "tool", *(("topology",) if placed else ())):
        table.add_column(header)
    sized = any(row.bytes_fetched is not None for row in rows)
    counts = ("files", "bytes", "fetched") if sized else ()
    tasks = any(row.tasks_per_s is not None for row in rows)
    rates = ("tasks/s",) if tasks else ()
    timed = any(row.cpu_s is not None or row.server_cpu_s for row in rows)
    cpus = ("CPU s", "server CPU s") if timed else ()
    for header in (*counts, "median s", "MB/s", "files/s", *rates, "peak RSS MB", *cpus):
        table.add_column(header, justify="right")
    table.add_column("note")
    for row in rows:
        cells = (row.files, row.total_bytes, row.bytes_fetched) if sized else ()
        table.add_row(
            row.scenario,
            row.tool,
            *((row.topology or "",) if placed else ()),
            *(_fmt(cell, 0) for cell in cells),
            _fmt(row.median_s, 3),
            _fmt(row.mb_per_s, 0),
            _fmt(row.files_per_s, 0),
            *((_fmt(row.tasks_per_s, 2),) if tasks else ()),
            _fmt(row.peak_rss_mb, 1),
            *((_fmt(row.cpu_s, 2), _server_cpu(row.server_cpu_s)) if timed else ()),
            row.note,
        )
    (console or Console()).print(table)


def _server_cpu(seconds: dict[str, float] | None) -> str:
    if not seconds:
        return "-"
    return ", ".join(f"{name} {value:,.2f}" for name, value in seconds.items())


def format_ratio(label: str, value: float | None) -> str:
    """``label: 0.42``, or ``label: n/a`` when a row of the ratio is missing."""
    return f"{label}: {'n/a' if value is None else f'{value:.2f}'}"


def emit(rows: Sequence[Row], *, as_json: bool, title: str, lines: Sequence[str] = ()) -> None:
    """What every bench prints at its end: the table of ``rows`` and the ``lines`` under it
    (ratios, notes) on stdout; with ``as_json`` those on stderr and on stdout only the JSON
    array of the rows, so that ``perago bench X --json > rows.json`` keeps both."""
    console = Console(stderr=as_json)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # A log file or pipe: wide enough that scenario names and notes are not wrapped.
        console = Console(stderr=as_json, width=PIPE_WIDTH)
    print_table(rows, title=title, console=console)
    for line in lines:
        console.print(line, markup=False, highlight=False)
    if as_json:
        typer.echo(rows_to_json(rows))


def find_row(rows: Sequence[Row], scenario: str, tool: Tool) -> Row | None:
    return next((r for r in rows if r.scenario == scenario and r.tool == tool), None)


def ratio(rows: Sequence[Row], mine: tuple[str, Tool], baseline: tuple[str, Tool]) -> float | None:
    """Time of ``mine`` divided by the time of ``baseline`` (None when either is missing)."""
    a, b = find_row(rows, *mine), find_row(rows, *baseline)
    if a is None or b is None or a.median_s is None or not b.median_s:
        return None
    return a.median_s / b.median_s


def format_table(rows: Sequence[Row], title: str = "") -> str:
    """The rows as the plain text of the table the commands print (for callers that want a
    string rather than output)."""
    console = Console(record=True, width=PIPE_WIDTH, file=io.StringIO())
    print_table(rows, title=title, console=console)
    return console.export_text()


def round_orders(repeat: int, tools: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The order of the tools in each measured round: each tool first in turn (for two tools
    A B, B A, A B, ...; with three, a rotation). A run's cost can depend on what the run before
    it left behind (on these VMs, the memory the previous run's files freed), so no tool should
    always follow the same one."""
    if len(tools) == 2:
        return [tools if n % 2 == 0 else tools[::-1] for n in range(repeat)]
    return [tools[n % len(tools) :] + tools[: n % len(tools)] for n in range(repeat)]
