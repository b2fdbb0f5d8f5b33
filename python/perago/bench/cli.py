"""The ``perago bench`` typer sub-app: its table of benchmarks and the options they share.

Each benchmark lives in a module of its own, imported only when it runs (:mod:`perago.cli.lazy`).
An option two benches share is defined here once, so it has one spelling, one type and one
meaning everywhere (``tests/unit/bench/test_bench_options.py`` keeps it so):

``--json``
    A flag. stdout then carries exactly one JSON array of the result rows and nothing else; the
    table, the ratios under it and the progress lines go to stderr. Without it the table and the
    ratios go to stdout, progress to stderr. ``perago bench X --json > rows.json`` keeps both.
``--work-dir DIR``
    Where the bench writes its scratch data (each bench says its default).
``--repeat N``
    Measured rounds per tool; the median is reported.
``--files N`` / ``--size S`` / ``--large-files N`` / ``--large-size S``
    The small-file and the large-file data set (sizes as ``4096``, ``4K``, ``100KiB``, ``1GiB``).
``--blockstore local|s3`` / ``--namespace ROOT``
    The lakeFS a bench measures and where its throw-away repository goes
    (:mod:`perago.bench.topology`).
``--lakectl/--no-lakectl``
    Whether the ``lakectl local`` baseline runs. A baseline that does not run (turned off, or no
    program found) is never left out silently: a ``<tool> baseline skipped: <why>`` line on
    stderr and a row saying the same, with ``skipped`` in its JSON (:mod:`perago.bench.baselines`).
``--workflows N`` / ``-j, --processes N``
    The Conductor benches' workflows per round and worker processes.
"""

from __future__ import annotations

from typing import Any

import typer

from perago.bench import sizes
from perago.bench.topology import LOCAL_NAMESPACE, NAMESPACE_DIR, Blockstore
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


# --- the shared options: one definition each --------------------------------------------------
# The data-set options default to None, so a bench can tell "not given" from its own default
# (``perago bench snapshot`` drops its large tree when the small one is scaled); every bench
# resolves None to the default its help names.

JsonOpt = typer.Option(
    False,
    "--json",
    help=(
        "Print only one JSON array of the result rows on stdout; the table and progress go to "
        "stderr."
    ),
)
LakectlOpt = typer.Option(
    True, "--lakectl/--no-lakectl", help="Also measure the `lakectl local` baseline."
)
BlockstoreOpt = typer.Option(
    Blockstore.LOCAL,
    "--blockstore",
    case_sensitive=False,
    help=(
        "lakeFS's blockstore: local (the lakeFS from the environment) or s3 (lakeFS on a real "
        "MinIO: the environment's, when it runs on S3, else a private one for this run)."
    ),
)
NamespaceOpt = typer.Option(
    None,
    "--namespace",
    help=(
        f"Storage namespace root of the bench repository (default {LOCAL_NAMESPACE}; on an s3 "
        f"blockstore, s3://<bucket>/{NAMESPACE_DIR})."
    ),
    show_default=False,
)


def files_option(default: int, more: str = "") -> Any:
    """``--files``: how many small files (None: ``default``)."""
    return typer.Option(
        None,
        "--files",
        min=0,
        help=f"Small-file data set: number of files (default {default:,}{more}).",
        show_default=False,
    )


def size_option(default: str) -> Any:
    """``--size``: bytes per small file (a size string; None: ``default``)."""
    return typer.Option(
        None,
        "--size",
        help=f"Small-file data set: bytes per file, e.g. 4K, 100KiB (default {default}).",
        show_default=False,
    )


def large_files_option(default: str) -> Any:
    """``--large-files``: how many large files, 0 skipping the large data set."""
    return typer.Option(
        None,
        "--large-files",
        min=0,
        help=f"Large-file data set: number of files, 0 skips it (default {default}).",
        show_default=False,
    )


def large_size_option(default: str) -> Any:
    """``--large-size``: bytes per large file."""
    return typer.Option(
        None,
        "--large-size",
        help=f"Large-file data set: bytes per file, e.g. 1GiB (default {default}).",
        show_default=False,
    )


def repeat_option(default: int) -> Any:
    """``--repeat``: measured rounds per tool (median reported)."""
    return typer.Option(
        default, "--repeat", min=1, help="Measured rounds per tool; the median is reported."
    )


def work_dir_option(default: str = "a temporary directory, removed afterwards") -> Any:
    """``--work-dir``: where the bench writes its scratch data."""
    return typer.Option(
        None,
        "--work-dir",
        help=f"Where the bench writes its scratch data (default: {default}).",
        show_default=False,
    )


def workflows_option(default: int, what: str) -> Any:
    """``--workflows``: workflows per round of a Conductor bench."""
    return typer.Option(default, "--workflows", min=1, help=f"Workflows per round ({what}).")


def processes_option(default: int, what: str) -> Any:
    """``-j, --processes``: worker processes, as ``perago start -j``."""
    return typer.Option(default, "-j", "--processes", min=1, help=f"Worker processes ({what}).")
