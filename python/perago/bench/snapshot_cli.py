"""``perago bench snapshot`` and ``perago bench diff``: the Rust snapshot engine vs baselines.

Without ``b3sum`` the snapshot bench still lists its rows, unmeasured, and stderr says
``b3sum baseline skipped: ...`` (:mod:`perago.bench.baselines`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import typer

from perago.bench import baselines, trees
from perago.bench.cli import (
    JsonOpt,
    files_option,
    large_files_option,
    large_size_option,
    parse_size,
    repeat_option,
    size_option,
    work_dir_option,
)
from perago.bench.report import Row, emit, format_ratio, ratio
from perago.bench.snapshot import Settings, diff_rows, snapshot_rows

DEFAULT_FILES = 100_000
DEFAULT_SIZE = 4096
LARGE_FILES = 4
LARGE_SIZE = 1 << 30

FilesOpt = files_option(DEFAULT_FILES)
SizeOpt = size_option("4K")
LargeFilesOpt = large_files_option(f"{LARGE_FILES}, or 0 when --files or --size is given")
LargeSizeOpt = large_size_option("1GiB")
DirOpt = typer.Option(None, "--dir", help="Benchmark an existing directory instead.")
RepeatOpt = repeat_option(3)
ThreadsOpt = typer.Option(None, "--threads", min=1, help="perago threads (default: all cores).")
WorkDirOpt = work_dir_option("~/.cache/perago/bench, where trees are cached between runs")
KeepOpt = typer.Option(True, "--keep/--no-keep", help="Keep generated trees cached.")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _trees(  # noqa: PLR0917 - the options of one command, in its order
    files: int | None,
    size: str | None,
    large_files: int | None,
    large_size: str | None,
    directory: Path | None,
    work_dir: Path | None,
) -> list[tuple[str, trees.Tree]]:
    """The trees the options name: the small one, and the large one unless it has 0 files
    (by default 4 x 1 GiB, none when the small tree is scaled with --files or --size)."""
    if directory is not None:
        given = (files, size, large_files, large_size)
        if any(option is not None for option in given):
            _fail("--dir cannot be combined with --files/--size/--large-files/--large-size")
        return [("dir", trees.given_tree(directory))]
    base = work_dir or trees.default_work_dir()
    base.mkdir(parents=True, exist_ok=True)
    count = DEFAULT_FILES if files is None else files
    if count < 1:
        _fail("--files must be at least 1")
    each = DEFAULT_SIZE if size is None else parse_size(size)
    selected = [("small", trees.small_tree(base, count, each))]
    scaled = files is not None or size is not None
    large_count = (0 if scaled else LARGE_FILES) if large_files is None else large_files
    large_each = LARGE_SIZE if large_size is None else parse_size(large_size)
    if large_count > 0:
        if large_each < 1:
            _fail("--large-size must be at least 1 byte")
        selected.append(("large", trees.large_tree(base, large_count, large_each)))
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
    lines = [format_ratio(label, value) for label, value in ratios]
    emit(rows, as_json=as_json, title=title, lines=lines)


def _log(line: str) -> None:
    typer.echo(line, err=True)


def bench_snapshot(
    *,
    files: int | None = FilesOpt,
    size: str | None = SizeOpt,
    large_files: int | None = LargeFilesOpt,
    large_size: str | None = LargeSizeOpt,
    directory: Path | None = DirOpt,
    as_json: bool = JsonOpt,
    repeat: int = RepeatOpt,
    threads: int | None = ThreadsOpt,
    work_dir: Path | None = WorkDirOpt,
    keep: bool = KeepOpt,
) -> None:
    """Cold snapshot: perago vs b3sum (2 processes) vs a Python sha256 walk."""
    b3sum = baselines.b3sum()

    def pick_trees() -> list[tuple[str, trees.Tree]]:
        selected = _trees(files, size, large_files, large_size, directory, work_dir)
        b3sum.announce(_log)  # once the options are known to be good
        return selected

    selected, rows = _measure(
        pick_trees, Settings(repeat=repeat, threads=threads, b3sum=b3sum), snapshot_rows
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
        lambda: _trees(files, size, 0, None, None, work_dir),
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
