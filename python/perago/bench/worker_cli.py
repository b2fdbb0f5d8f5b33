"""``perago bench worker``: perago vs a bare conductor-python worker, same concurrency, one run."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from perago.cli.support import cli_errors, require_conductor
from perago.config import load_runtime_config

TASKS_OPTION = typer.Option(300, "--tasks", min=1, help="No-op workflows per round.")
CONCURRENCY_OPTION = typer.Option(2, "-j", "--concurrency", min=1, help="Worker processes.")
REPEAT_OPTION = typer.Option(1, "--repeat", min=1, help="Rounds per tool (median).")
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON array of result rows.")


def bench_worker_command(
    tasks: int = TASKS_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    repeat: int = REPEAT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Workspace-free no-op tasks per second through the real Conductor (CONDUCTOR_SERVER_URL)."""
    from perago.bench.report import rows_to_json
    from perago.bench.worker import throughput_ratio, worker_rows

    with cli_errors():
        config = load_runtime_config("perago", probe_roots=False)
        conductor = require_conductor(config, "bench worker")
        rows = worker_rows(
            api_url=conductor.server_url,
            tasks=tasks,
            concurrency=concurrency,
            repeat=repeat,
        )
    if as_json:
        typer.echo(rows_to_json(rows))
        return
    table = Table(title=f"worker-noop: {tasks} tasks, {concurrency} processes")
    for column in ("tool", "median_s", "tasks_per_s", "peak_rss_mb"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.tool, str(row.median_s), str(row.tasks_per_s), str(row.peak_rss_mb))
    Console().print(table)
    ratio = throughput_ratio(rows)
    if ratio is not None:
        typer.echo(f"perago / conductor-python throughput: {ratio:.2f} (target >= 0.90)")
