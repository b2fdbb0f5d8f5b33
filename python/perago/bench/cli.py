"""The ``perago bench`` typer sub-app: its table of benchmarks and the options they share.

Each benchmark lives in a module of its own, imported only when it runs (:mod:`perago.cli.lazy`).
"""

from __future__ import annotations

import typer

from perago.bench import sizes
from perago.cli.lazy import LazyCommand, LazyGroup

# In listing order; each help is the first paragraph of the command's own help.
BENCH_COMMANDS = {
    "snapshot": LazyCommand(
        "perago.bench.snapshot_cli:bench_snapshot",
        "Cold snapshot: perago vs b3sum (2 processes) vs a Python sha256 walk.",
    ),
    "diff": LazyCommand(
        "perago.bench.snapshot_cli:bench_diff",
        "Change detection on an unchanged tree and with 1% of files modified, vs a stat walk.",
    ),
    "download": LazyCommand(
        "perago.bench.transfer:download_command",
        "Download throughput: perago vs `lakectl local clone`.",
    ),
    "upload": LazyCommand(
        "perago.bench.transfer:upload_command",
        "Upload (+ commit) throughput: perago vs `lakectl local commit`.",
    ),
    "cache": LazyCommand(
        "perago.bench.cache:cache_command",
        "Content cache: cold, warm and 1%-changed downloads vs `lakectl local clone`.",
    ),
    "worker": LazyCommand(
        "perago.bench.worker_cli:bench_worker_command",
        "Workspace-free no-op tasks per second through the real Conductor (CONDUCTOR_SERVER_URL).",
    ),
    "fleet": LazyCommand(
        "perago.bench.fleet:fleet_command",
        "One vs two supervisors on one queue: workspace tasks of one changed file, each verified.",
    ),
    "stage": LazyCommand(
        "perago.bench.stage:stage_command",
        "Stage a 1-file change in a 10,000 x 100 KiB workspace: perago vs `lakectl local commit`.",
    ),
    "attempt": LazyCommand(
        "perago.bench.attempt:attempt_command",
        "Per-attempt overhead of a writable task that changes 1 file (download..publish).",
    ),
}


class BenchGroup(LazyGroup):
    lazy_commands = BENCH_COMMANDS


bench_app = typer.Typer(cls=BenchGroup, no_args_is_help=True, help="Benchmarks against baselines.")


def parse_size(text: str) -> int:
    """``4096``, ``4K``, ``4KiB``, ``1G``… (binary units), as a typer usage error if invalid."""
    try:
        return sizes.parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


FilesOpt = typer.Option(None, "--files", help="Small-file tree: number of files.")
SizeOpt = typer.Option(None, "--size", help="Small-file tree: bytes per file (4K, 1M...).")
JsonOpt = typer.Option(False, "--json", help="Print one JSON array of result rows.")
