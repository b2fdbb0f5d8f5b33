"""``perago bench snapshot`` and ``perago bench diff``: the Rust snapshot engine vs baselines."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from perago.bench import trees
from perago.bench.cli import FilesOpt, JsonOpt, SizeOpt, parse_size
from perago.bench.report import Row, print_table, ratio, rows_to_json
from perago.bench.snapshot import Settings, diff_rows, snapshot_rows

DEFAULT_FILES = 100_000
DEFAULT_SIZE = 4096
LARGE_FILES = 4
LARGE_SIZE = 1 << 30

DirOpt = typer.Option(None, "--dir", help="Benchmark an existing directory instead.")
RepeatOpt = typer.Option(3, "--repeat", min=1, help="Measured runs per tool (median).")
ThreadsOpt = typer.Option(None, "--threads", min=1, help="perago threads (default: all cores).")
WorkDirOpt = typer.Option(None, "--work-dir", help="Where trees are generated and cached.")
LargeOpt = typer.Option(
    None, "--large/--no-large", help="Also run the 4 x 1 GiB tree (default: on unless scaled)."
)
KeepOpt = typer.Option(True, "--keep/--no-keep", help="Keep generated trees cached.")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _trees(
    files: int | None,
    size: str | None,
    directory: Path | None,
    work_dir: Path | None,
    large: bool | None,
) -> list[tuple[str, trees.Tree]]:
    if directory is not None:
        if files is not None or size is not None:
            _fail("--dir cannot be combined with --files/--size")
        return [("dir", trees.given_tree(directory))]
    base = work_dir or trees.default_work_dir()
    base.mkdir(parents=True, exist_ok=True)
    count = DEFAULT_FILES if files is None else files
    if count < 1:
        _fail("--files must be at least 1")
    each = DEFAULT_SIZE if size is None else parse_size(size)
    selected = [("small", trees.small_tree(base, count, each))]
    scaled = files is not None or size is not None
    if large if large is not None else not scaled:
        selected.append(("large", trees.large_tree(base, LARGE_FILES, LARGE_SIZE)))
    return selected


def _cleanup(selected: list[tuple[str, trees.Tree]], keep: bool) -> None:
    if keep:
        return
    for label, tree in selected:
        if label != "dir":
            shutil.rmtree(tree.root, ignore_errors=True)
            tree.root.with_name(tree.root.name + ".complete").unlink(missing_ok=True)


def _measure(
    pick_trees: Callable[[], list[tuple[str, trees.Tree]]],
    cfg: Settings,
    rows_for: Callable[[str, trees.Tree, Settings], list[Row]],
) -> tuple[list[tuple[str, trees.Tree]], list[Row]]:
    """The chosen trees (generated if needed) and their rows; a failure exits with one line."""
    try:
        selected = pick_trees()
        return selected, [row for label, tree in selected for row in rows_for(label, tree, cfg)]
    except (OSError, RuntimeError, ValueError) as exc:
        _fail(str(exc))


def _settled_diff_rows(label: str, tree: trees.Tree, cfg: Settings) -> list[Row]:
    """Diff rows once the tree's mtimes are old enough not to count as racy."""
    trees.wait_until_settled(tree)
    return diff_rows(label, tree, cfg)


def _emit(
    rows: list[Row], as_json: bool, title: str, ratios: list[tuple[str, float | None]]
) -> None:
    if as_json:
        typer.echo(rows_to_json(rows))
        return
    console = Console()
    print_table(rows, title=title, console=console)
    for label, value in ratios:
        shown = "n/a" if value is None else f"{value:.2f}"
        console.print(f"{label}: {shown}")


def bench_snapshot(
    *,
    files: int | None = FilesOpt,
    size: str | None = SizeOpt,
    directory: Path | None = DirOpt,
    as_json: bool = JsonOpt,
    repeat: int = RepeatOpt,
    threads: int | None = ThreadsOpt,
    work_dir: Path | None = WorkDirOpt,
    large: bool | None = LargeOpt,
    keep: bool = KeepOpt,
) -> None:
    """Cold snapshot: perago vs b3sum (2 processes) vs a Python sha256 walk."""
    selected, rows = _measure(
        lambda: _trees(files, size, directory, work_dir, large),
        Settings(repeat=repeat, threads=threads),
        snapshot_rows,
    )
    ratios = []
    for label, _ in selected:
        scenario = f"snapshot-{label}"
        ratios.append(
            (f"{scenario} perago / b3sum", ratio(rows, (scenario, "perago"), (scenario, "b3sum")))
        )
        ratios.append(
            (
                f"{scenario} python-sha256 / perago (speed-up)",
                ratio(rows, (scenario, "python-sha256"), (scenario, "perago")),
            )
        )
    _emit(rows, as_json, "perago bench snapshot", ratios)
    _cleanup(selected, keep)


def bench_diff(
    *,
    files: int | None = FilesOpt,
    size: str | None = SizeOpt,
    directory: Path | None = DirOpt,
    as_json: bool = JsonOpt,
    repeat: int = RepeatOpt,
    threads: int | None = ThreadsOpt,
    work_dir: Path | None = WorkDirOpt,
    keep: bool = KeepOpt,
) -> None:
    """Change detection on an unchanged tree and with 1% of files modified, vs a stat walk."""
    if directory is not None:
        _fail("bench diff modifies files; use a generated tree (--files/--size), not --dir")
    selected, rows = _measure(
        lambda: _trees(files, size, None, work_dir, False),
        Settings(repeat=repeat, threads=threads),
        _settled_diff_rows,
    )
    ratios = [
        (
            f"diff-unchanged-{label} / statwalk-{label}",
            ratio(rows, (f"diff-unchanged-{label}", "perago"), (f"statwalk-{label}", "perago")),
        )
        for label, _ in selected
    ]
    _emit(rows, as_json, "perago bench diff", ratios)
    _cleanup(selected, keep)
