"""``perago bench stage``: change detection + staging of a 1-file edit in a large workspace.

perago: download the tree once (baseline snapshot), then per run rewrite the same one file with
new bytes and time ``detect_changes`` + ``LakeFSWorkspaceRuntime.stage_workspace`` (branch from
the input commit, upload, commit). lakectl: ``lakectl local clone`` once, then per run the same
edit and ``lakectl local commit`` (its own status scan + upload + commit). After every run lakeFS's
diff API must report exactly one changed object, or the bench fails. ``--blockstore s3`` runs it
on a lakeFS over a real MinIO (:mod:`perago.bench.topology`); rows carry their ``topology``.
Without a ``lakectl`` (or with ``--no-lakectl``) its row is listed unmeasured, saying why
(:mod:`perago.bench.baselines`).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

import typer

from perago.attempt.core import TaskExecutionContext
from perago.attempt.identity import TaskAttempt
from perago.bench import baselines, lakefs_setup
from perago.bench import transfer as bench_transfer
from perago.bench.cli import (
    BlockstoreOpt,
    JsonOpt,
    LakectlOpt,
    NamespaceOpt,
    files_option,
    repeat_option,
    size_option,
    work_dir_option,
)
from perago.bench.report import Row, emit, format_ratio, ratio
from perago.bench.topology import Blockstore
from perago.definition.workspace import WorkspaceInput, WorkspaceSpec
from perago.engine.snapshot import detect_changes
from perago.lakefs.workspace import LakeFSWorkspaceRuntime

DEFAULT_FILES = 10_000
DEFAULT_SIZE = 100 * 1024
EDITED = "d000/f000000.bin"

FilesOpt = files_option(DEFAULT_FILES)
SizeOpt = size_option("100KiB")
RepeatOpt = repeat_option(3)
WorkDirOpt = work_dir_option()


def scenario_name(files: int) -> str:
    return f"stage-1-of-{files}"


def edit_one_file(root: Path, run: int, size: int) -> None:
    """Rewrite one file with bytes no earlier run wrote, keeping its size.

    The mtime is moved to a distinct whole second per run: ``lakectl local`` compares size and
    mtime at one-second resolution, so two edits within one second would look unchanged to it.
    """
    stamp = f"edit {run} {uuid.uuid4().hex}\n".encode()
    body = (stamp * (size // len(stamp) + 1))[:size] if size else stamp
    target = root / EDITED
    target.write_bytes(body)
    when = int(time.time()) + 1 + run
    os.utime(target, (when, when))


def bench_attempt(task_id: str) -> TaskAttempt:
    return TaskAttempt(
        workflow_instance_id="bench-stage",
        task_id=task_id,
        retry_count=0,
        task_def_name="bench_stage",
        reference_task_name="stage",
        seq=1,
        status="IN_PROGRESS",
        input_data={},
    )


def perago_row(seeded: lakefs_setup.SeededRepo, work: Path, repeat: int) -> Row:
    scenario = scenario_name(seeded.files)
    runtime = LakeFSWorkspaceRuntime(seeded.config)
    workspace = WorkspaceInput(
        repository=seeded.repository, branch="main", ref_type="commit", ref=seeded.commit
    )
    spec = WorkspaceSpec(prefix=lakefs_setup.PREFIX)
    directory = Path(tempfile.mkdtemp(prefix="perago-", dir=work))
    try:
        baseline = runtime.download_workspace(workspace, spec, directory)
        times, counts = [], []
        for run in range(repeat):
            edit_one_file(directory, run, seeded.size)
            context = TaskExecutionContext(bench_attempt(f"run-{run}-{uuid.uuid4().hex[:8]}"), "x")
            started = time.perf_counter()
            changes = detect_changes(directory, baseline)
            staged = runtime.stage_workspace(directory, workspace, spec, context, changes=changes)
            times.append(time.perf_counter() - started)
            counts.append(
                lakefs_setup.changed_objects(
                    seeded.server, seeded.repository, seeded.commit, staged.commit
                )
            )
            runtime.cleanup_staging(staged)
    finally:
        runtime.control.close()
        shutil.rmtree(directory, ignore_errors=True)
    return _row(scenario, "perago", times, counts, seeded.files, note="detect + stage, in process")


def lakectl_row(seeded: lakefs_setup.SeededRepo, work: Path, repeat: int, lakectl: str) -> Row:
    scenario = scenario_name(seeded.files)
    server = seeded.server
    branch = f"lakectl-{uuid.uuid4().hex[:8]}"
    server.control.create_branch(seeded.repository, branch, seeded.commit)
    directory = work / "lakectl-clone"
    uri = f"lakefs://{seeded.repository}/{branch}/{lakefs_setup.PREFIX}/"
    bench_transfer.measure([lakectl, "local", "clone", uri, str(directory)], server.child_env())
    times, counts = [], []
    try:
        for run in range(repeat):
            edit_one_file(directory, run, seeded.size)
            before = server.control.branch_head(seeded.repository, branch)
            command = [lakectl, "local", "commit", str(directory), "-m", f"bench {run}"]
            times.append(bench_transfer.measure(command, server.child_env()).seconds)
            after = server.control.branch_head(seeded.repository, branch)
            counts.append(lakefs_setup.changed_objects(server, seeded.repository, before, after))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return _row(scenario, "lakectl", times, counts, seeded.files, note="`local commit` process")


def _row(
    scenario: str, tool: str, times: list[float], counts: list[int], files: int, *, note: str
) -> Row:
    if any(count != 1 for count in counts):
        raise RuntimeError(f"{tool}: lakeFS diff reports {counts} changed objects, expected 1 each")
    median = statistics.median(times)
    return Row(
        scenario=scenario,
        tool=tool,
        median_s=median,
        mb_per_s=None,
        files_per_s=files / median if median > 0 else None,
        peak_rss_mb=None,
        note=note,
        objects_uploaded=counts[0],
    )


def run_stage_bench(
    seeded: lakefs_setup.SeededRepo, work: Path, *, repeat: int, use_lakectl: bool
) -> list[Row]:
    lakectl = baselines.lakectl(use_lakectl).announce(_log)
    rows = [perago_row(seeded, work, repeat)]
    if lakectl.path is not None:
        rows.append(lakectl_row(seeded, work, repeat, lakectl.path))
    else:
        rows.append(lakectl.skipped_row(rows[0].scenario))
    return [replace(row, topology=seeded.topology) for row in rows]


def _log(line: str) -> None:
    typer.echo(line, err=True)


def stage_command(
    *,
    files: int | None = FilesOpt,
    size: str | None = SizeOpt,
    as_json: bool = JsonOpt,
    repeat: int = RepeatOpt,
    namespace: str | None = NamespaceOpt,
    work_dir: Path | None = WorkDirOpt,
    lakectl: bool = LakectlOpt,
    blockstore: Blockstore = BlockstoreOpt,
) -> None:
    """Stage a 1-file change in a 10,000 x 100 KiB workspace: perago vs `lakectl local commit`."""
    rows = lakefs_setup.run_seeded(
        lambda seeded, work: run_stage_bench(seeded, work, repeat=repeat, use_lakectl=lakectl),
        name="stage",
        files=DEFAULT_FILES if files is None else files,
        size=size,
        default_size=DEFAULT_SIZE,
        namespace_root=namespace,
        work_dir=work_dir,
        blockstore=blockstore,
    )
    scenario = rows[0].scenario
    lines = [
        f"{row.tool}: objects changed per lakeFS diff = {row.objects_uploaded}"
        for row in rows
        if row.skipped is None
    ]
    value = ratio(rows, (scenario, "lakectl"), (scenario, "perago"))
    lines.append(format_ratio("lakectl / perago (speed-up)", value))
    emit(rows, as_json=as_json, title=f"perago bench stage ({rows[0].topology})", lines=lines)
