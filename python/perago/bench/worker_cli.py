"""``perago bench worker``: perago vs a bare conductor-python worker, same processes, one queue."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from perago.bench.cli import (
    JsonOpt,
    processes_option,
    repeat_option,
    work_dir_option,
    workflows_option,
)
from perago.cli.support import cli_errors, require_conductor
from perago.config import load_runtime_config

WorkflowsOpt = workflows_option(300, "one no-op task each")
ProcessesOpt = processes_option(2, "of perago start -j, and as many bare SDK workers")
RepeatOpt = repeat_option(1)
WorkDirOpt = work_dir_option()
PERAGO_TELEMETRY_NAME = "perago+telemetry"


TelemetryOpt = typer.Option(
    True,
    "--telemetry/--no-telemetry",
    help="Also run perago with metrics and traces exported to a real OpenTelemetry Collector.",
)


def bench_worker_command(
    *,
    workflows: int = WorkflowsOpt,
    processes: int = ProcessesOpt,
    repeat: int = RepeatOpt,
    as_json: bool = JsonOpt,
    work_dir: Path | None = WorkDirOpt,
    telemetry: bool = TelemetryOpt,
) -> None:
    """Workspace-free no-op tasks per second through the real Conductor (CONDUCTOR_SERVER_URL).

    A short unmeasured warm-up round of each tool runs first on the same queue, and the order
    of the tools alternates from round to round (perago first, then the bare SDK first...).
    """
    from perago.bench.report import emit, format_ratio
    from perago.bench.worker import BARE, PERAGO, PERAGO_TELEMETRY, throughput_ratio, worker_rows

    with cli_errors(), contextlib.ExitStack() as stack:
        config = load_runtime_config("perago", probe_roots=False)
        conductor = require_conductor(config, "bench worker")
        telemetry_env = stack.enter_context(_collector(work_dir)) if telemetry else None
        rows = worker_rows(
            api_url=conductor.server_url,
            workflows=workflows,
            processes=processes,
            repeat=repeat,
            work_dir=work_dir,
            telemetry_env=telemetry_env,
        )
    lines = [
        format_ratio("perago / conductor-python throughput", throughput_ratio(rows))
        + " (target >= 0.90)"
    ]
    if telemetry_env is not None:
        lines.append(
            format_ratio(
                "perago+telemetry / perago throughput",
                throughput_ratio(rows, PERAGO_TELEMETRY, PERAGO),
            )
            + " (target >= 0.95)"
        )
        lines.append(
            format_ratio(
                "perago+telemetry / conductor-python throughput",
                throughput_ratio(rows, PERAGO_TELEMETRY, BARE),
            )
            + " (target >= 0.90)"
        )
    emit(
        rows,
        as_json=as_json,
        title=f"worker-noop: {workflows} workflows, {processes} processes, x{repeat}",
        lines=lines,
    )


@contextlib.contextmanager
def _collector(work_dir: Path | None) -> Iterator[dict[str, str] | None]:
    """A real collector for the telemetry row, or None (said on stderr) when none is built."""
    import sys
    import tempfile

    from perago.devservers import otelcol

    binary = otelcol.cached_otelcol()
    if binary is None:
        print(
            f"{PERAGO_TELEMETRY_NAME} skipped: the OpenTelemetry Collector is not built "
            "(perago dev provision builds it)",
            file=sys.stderr,
        )
        yield None
        return
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="perago-bench-otelcol-", dir=work_dir) as scratch:
        running = otelcol.start_collector(Path(scratch), binary.otelcol)
        try:
            yield {
                "OTEL_EXPORTER_OTLP_ENDPOINT": running.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                "PERAGO_INSTANCE_ID": "bench",
            }
        finally:
            running.stop()
