"""``perago bench attempt``: the fixed cost of one full attempt of a tiny writable task.

Each attempt goes through ``run_workspace_task_attempt`` with the real ``LakeFSWorkspaceRuntime``
(download, body, detect, stage, publish, cleanup); the task rewrites one file. Attempts are
chained: each one's input ref is the commit the previous one published. No Conductor is involved,
so the attempt fence reloads the attempt through a local always-current callback; the fence
phase therefore measures no network round trip.
"""

from __future__ import annotations

import resource
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import typer
from pydantic import BaseModel

from perago.attempt.core import run_workspace_task_attempt
from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.bench import lakefs_setup
from perago.bench.cli import (
    BlockstoreOpt,
    JsonOpt,
    NamespaceOpt,
    files_option,
    repeat_option,
    size_option,
    work_dir_option,
)
from perago.bench.report import Row, emit
from perago.bench.topology import Blockstore
from perago.definition.decorator import TaskDefinition
from perago.definition.workspace import WorkspaceSpec, workspace_task_input
from perago.lakefs.workspace import LakeFSWorkspaceRuntime

SCENARIO = "attempt-1-file"
DEFAULT_FILES = 1
DEFAULT_SIZE = 4096
EDITED = "d000/f000000.bin"
FENCE_NOTE = "fence: local always-current callback (no Conductor)"

FilesOpt = files_option(DEFAULT_FILES)
SizeOpt = size_option("4K")
RepeatOpt = repeat_option(5)
WorkDirOpt = work_dir_option()
ChangePercentOpt = typer.Option(
    0.0,
    "--change-percent",
    min=0.0,
    max=100.0,
    help="Rewrite this share of the seeded files per attempt (0: one file).",
)


class EditParams(BaseModel):
    text: str
    # Also rewrite every ``every``-th seeded file (0: only ``EDITED``); ``files`` were seeded.
    every: int = 0
    files: int = 1


class EditOutput(BaseModel):
    bytes_written: int


def edited_files(files: int, every: int) -> list[str]:
    """The seeded files an attempt rewrites (the layout of ``bench.transfer.generate_files``)."""
    if every <= 0:
        return [EDITED]
    return [f"d{i % 100:03d}/f{i:06d}.bin" for i in range(0, files, every)]


def _edit_one_file(workspace: Path, params: EditParams) -> EditOutput:
    written = 0
    for rel in edited_files(params.files, params.every):
        written += (workspace / rel).write_text(params.text, encoding="utf-8")
    return EditOutput(bytes_written=written)


EDIT_TASK = TaskDefinition(
    name="bench_edit_one_file",
    owner_email="bench@example.com",
    fn=_edit_one_file,
    params_model=EditParams,
    output_model=EditOutput,
    workspace=WorkspaceSpec(prefix=lakefs_setup.PREFIX),
)


def _attempt(number: int) -> TaskAttempt:
    return TaskAttempt(
        workflow_instance_id=f"bench-attempt-{uuid.uuid4().hex[:8]}",
        task_id=f"task-{number}",
        retry_count=0,
        task_def_name=EDIT_TASK.name,
        reference_task_name="edit",
        seq=1,
        status="IN_PROGRESS",
        input_data={},
    )


def _always_current(attempt: TaskAttempt) -> TaskAttempt:
    return attempt


def run_attempt_bench(
    seeded: lakefs_setup.SeededRepo,
    work: Path,
    attempts: int,
    log: Callable[[str], None],
    change_percent: float = 0.0,
) -> Row:
    runtime = LakeFSWorkspaceRuntime(seeded.config)
    totals: list[float] = []
    phases: dict[str, list[float]] = {}
    counts: list[int] = []
    ref = seeded.commit
    every = round(100 / change_percent) if change_percent > 0 else 0
    expected = len(edited_files(seeded.files, every))
    try:
        for number in range(attempts):
            stats = AttemptStats()
            params = {
                "text": f"attempt {number} {uuid.uuid4().hex}\n",
                "every": every,
                "files": seeded.files,
            }
            input_data = workspace_task_input(seeded.repository, "main", ref, params)
            started = time.perf_counter()
            result = run_workspace_task_attempt(
                EDIT_TASK,
                input_data,
                _attempt(number),
                work / "attempts",
                download_workspace=runtime.download_workspace,
                load_current_attempt=_always_current,
                stage_workspace=runtime.stage_workspace,
                publish_workspace=runtime.publish_workspace,
                cleanup_staging=runtime.cleanup_staging,
                complete_noop_workspace=runtime.complete_noop_workspace,
                stats=stats,
            )
            totals.append((time.perf_counter() - started) * 1000.0)
            if result.status != "COMPLETED" or result.output is None:
                raise RuntimeError(
                    f"attempt {number} ended {result.status}: {result.reason_for_incompletion}"
                )
            published = str(result.output["workspace"]["ref"])
            counts.append(
                lakefs_setup.changed_objects(seeded.server, seeded.repository, ref, published)
            )
            ref = published
            for name, ms in stats.phase_ms.items():
                phases.setdefault(name, []).append(ms)
            log(f"attempt {number}: {totals[-1]:.1f} ms, published {published}")
    finally:
        runtime.control.close()
    if any(count != expected for count in counts):
        raise RuntimeError(
            f"lakeFS diff reports {counts} changed objects, expected {expected} each"
        )
    median_s = statistics.median(totals) / 1000.0
    # This process ran only the attempts (seeding uploads from a child), so its high-water mark
    # is theirs: download, body, detection, staging and publication of `seeded.files` files.
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Row(
        scenario=SCENARIO if every == 0 else f"attempt-{change_percent:g}pct-of-{seeded.files}",
        tool="perago",
        median_s=median_s,
        mb_per_s=None,
        files_per_s=seeded.files / median_s,
        peak_rss_mb=round(peak_kib / 1024, 1),
        note=FENCE_NOTE,
        objects_uploaded=counts[0],
        phase_ms={name: round(statistics.median(ms), 3) for name, ms in phases.items()},
    )


def attempt_command(
    *,
    repeat: int = RepeatOpt,
    files: int | None = FilesOpt,
    size: str | None = SizeOpt,
    as_json: bool = JsonOpt,
    namespace: str | None = NamespaceOpt,
    work_dir: Path | None = WorkDirOpt,
    blockstore: Blockstore = BlockstoreOpt,
    change_percent: float = ChangePercentOpt,
) -> None:
    """Per-attempt overhead of a writable task that changes 1 file (download..publish).

    ``--repeat N`` runs N chained attempts (median reported); ``--change-percent P`` rewrites
    P % of the seeded files instead of one. The row reports files per second and the peak RSS of
    the process running the attempts (seeding runs in a child).
    """
    attempts = repeat
    row = lakefs_setup.run_seeded(
        lambda seeded, work: replace(
            run_attempt_bench(
                seeded,
                work,
                attempts,
                lambda line: typer.echo(line, err=True),
                change_percent=change_percent,
            ),
            topology=seeded.topology,
        ),
        name="attempt",
        files=DEFAULT_FILES if files is None else files,
        size=size,
        default_size=DEFAULT_SIZE,
        namespace_root=namespace,
        work_dir=work_dir,
        blockstore=blockstore,
    )
    assert row.median_s is not None
    assert row.phase_ms is not None
    lines = [f"median total: {row.median_s * 1000:.1f} ms over {attempts} attempts"]
    lines += [f"  {name:<15} {ms:9.1f} ms (median)" for name, ms in row.phase_ms.items()]
    lines.append(f"objects changed per lakeFS diff = {row.objects_uploaded}; {FENCE_NOTE}")
    emit([row], as_json=as_json, title=f"perago bench attempt ({row.topology})", lines=lines)
