"""``perago bench worker``: workspace-free no-op tasks per second through a real Conductor.

Both tools get the same work the same way: N workflows of one no-op task are queued first, then
C worker processes start (``perago start -j C`` versus C bare conductor-python ``TaskRunner``
processes with ``thread_count=1``). Throughput is measured from Conductor's own timestamps and
worker ids: from the first task of the last worker process to start until the last task
completion, counting the tasks started in that window (:func:`steady_window`), so process
start-up (also a slow process starting beside a running one) and workflow creation are excluded
for both. Peak RSS is the largest ``VmHWM`` among the worker processes.

Every round of the bench runs on one queue (one task definition, registered once). A freshly
started Conductor is slow for its first few hundred tasks, which would be charged to whichever
tool ran first, so a short unmeasured warm-up round of each tool comes first, and the order of
the tools alternates from one measured round to the next (perago first, then the bare SDK
first, ...). Each round is reported on stderr; the rows hold the median over the rounds, their
note each round's window.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from perago.bench import report
from perago.bench.conductor_rest import (
    BenchConductor,
    perago_executable,
    register_task,
    stop_workers,
    task_project,
)
from perago.bench.report import Row, find_row

SCENARIO = "worker-noop"
PERAGO = "perago"
# perago with metrics and traces exported over OTLP to a real OpenTelemetry Collector.
PERAGO_TELEMETRY = "perago+telemetry"
BARE = "conductor-python"
TOOLS = (PERAGO, BARE)
ALL_TOOLS = (PERAGO, PERAGO_TELEMETRY, BARE)
# Pause between rounds on the shared queue: longer than a worker's 100 ms long poll, so that no
# poll of a stopped worker is still open on the server when the next round's workflows start.
QUEUE_SETTLE_S = 2.0
STDERR_FD = 2

NOOP_MODULE = """
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy

class Params(BaseModel):
    n: int

class Result(BaseModel):
    n: int

@task(name="{name}", owner_email="bench@example.com",
      controls=TaskControls(retry=RetryPolicy(count=0)))
def noop(params: Params) -> Result:
    return Result(n=params.n)
"""

# The baseline: a bare conductor-python worker, the program a user would write without perago. It
# runs in its own interpreter from this text (``python -c``), so perago itself never imports the
# SDK here; routing it through perago.conductor would measure perago twice.
BARE_WORKER = """
import os
import sys
from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.worker.worker import Worker

def noop(task):
    return {{"result": {{"n": task.input_data["params"]["n"]}}}}

# A worker id per process (the SDK's default is the host name) tells the processes apart in
# Conductor's task records, as perago's slot ids do.
worker = Worker(task_definition_name="{name}", execute_function=noop, poll_interval=100,
                worker_id=f"bare-{{os.getpid()}}")
worker.thread_count = 1
TaskRunner(worker, configuration=Configuration(server_api_url="{url}")).run()
"""


@dataclass(frozen=True)
class WorkerBenchResult:
    tool: str
    tasks: int
    seconds: float
    peak_rss_mb: float | None

    def row(self) -> Row:
        """The shared bench row: no bytes or files moved, so only time, RSS and tasks/s."""
        rate = self.tasks / self.seconds if self.seconds > 0 else 0.0
        return Row(
            scenario=SCENARIO,
            tool=self.tool,
            median_s=round(self.seconds, 4),
            mb_per_s=None,
            files_per_s=None,
            peak_rss_mb=None if self.peak_rss_mb is None else round(self.peak_rss_mb, 1),
            tasks_per_s=round(rate, 2),
        )


def steady_window(tasks: list[tuple[str, int, int]]) -> tuple[float, int]:
    """(seconds, tasks) of the part of a round in which every worker process was running.

    ``tasks`` are (worker id, start ms, end ms). The window opens when the last worker to start
    took its first task (until then the others ran beside its interpreter start-up, which is
    not throughput) and closes at the last end; only tasks started in it are counted.
    """
    first: dict[str, int] = {}
    for worker, start, _end in tasks:
        first[worker] = min(start, first.get(worker, start))
    opens = max(first.values())
    counted = [end for _worker, start, end in tasks if start >= opens]
    return (max(counted) - opens) / 1000.0, len(counted)


def _task_window(
    conductor: BenchConductor, workflow_ids: list[str], timeout: float
) -> tuple[float, int]:
    """:func:`steady_window` of the round's tasks, once every workflow completed."""
    tasks: list[tuple[str, int, int]] = []
    for workflow_id, state in conductor.wait_all(workflow_ids, timeout).items():
        if state["status"] != "COMPLETED":
            raise RuntimeError(f"benchmark workflow {workflow_id} ended {state['status']}")
        (task,) = state["tasks"]
        tasks.append((str(task.get("workerId")), int(task["startTime"]), int(task["endTime"])))
    return steady_window(tasks)


def _peak_rss_mb(pids: list[int]) -> float | None:
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return max(peaks) if peaks else None


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass(frozen=True)
class Queue:
    """The one task queue every round of a bench runs on: its scratch project, task, workflow."""

    conductor: BenchConductor
    api_url: str
    root: Path
    name: str
    module: str
    env: dict[str, str]

    @property
    def workflow(self) -> str:
        return f"{self.name}_wf"


@contextlib.contextmanager
def noop_queue(api_url: str, work_dir: Path | None = None) -> Iterator[Queue]:
    """Register the no-op task and its one-task workflow once, in a scratch project (under
    ``work_dir``) removed afterwards."""
    with task_project(
        "perago_bench_noop", "perago-bench-worker-", NOOP_MODULE, parent=work_dir
    ) as project:
        root, name, module = project
        env = {
            **os.environ,
            "CONDUCTOR_SERVER_URL": api_url,
            "PERAGO_WORKSPACE_ROOT": str(root / "ws"),
            "PERAGO_LOG_ROOT": str(root / "logs"),
        }
        register_task(module, root, env)
        conductor = BenchConductor(api_url)
        conductor.workflow_def(
            f"{name}_wf", name, reference="noop", inputs={"params": "${workflow.input.params}"}
        )
        yield Queue(conductor, api_url, root, name, module, env)


def run_round(
    queue: Queue,
    *,
    tool: str,
    workflows: int,
    processes: int,
    timeout: float,
    telemetry_env: dict[str, str] | None = None,
) -> WorkerBenchResult:
    """Queue ``workflows`` no-op workflows, start ``processes`` workers of ``tool``, and time
    them through Conductor's timestamps until every workflow completed."""
    time.sleep(QUEUE_SETTLE_S)
    ids = [queue.conductor.start(queue.workflow, {"params": {"n": n}}) for n in range(workflows)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        # The workers' output goes to stderr: stdout is the bench's own (its --json array).
        if tool in (PERAGO, PERAGO_TELEMETRY):
            env = {**queue.env, **(telemetry_env or {})} if tool == PERAGO_TELEMETRY else queue.env
            supervisor = subprocess.Popen(
                [perago_executable(), "start", queue.module, "-j", str(processes)],
                cwd=queue.root,
                env=env,
                stdout=STDERR_FD,
            )
            workers.append(supervisor)
        else:
            script = BARE_WORKER.format(name=queue.name, url=queue.api_url)
            for _ in range(processes):
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-c", script], env=queue.env, stdout=STDERR_FD
                    )
                )
        seconds, counted = _task_window(queue.conductor, ids, timeout)
        pids = [p.pid for p in workers]
        if tool != BARE:
            pids = _children(workers[0].pid)
        peak = _peak_rss_mb(pids)
    finally:
        stop_workers(workers)
    return WorkerBenchResult(tool, counted, seconds, peak)


def round_orders(repeat: int, tools: tuple[str, ...] = TOOLS) -> list[tuple[str, ...]]:
    """The order of the tools in each measured round (:func:`perago.bench.report.round_orders`)."""
    return report.round_orders(repeat, tools)


def warmup_workflows(workflows: int) -> int:
    """The workflows of the unmeasured warm-up round of each tool: a third of a measured round,
    at least 50 (never more than a measured round has)."""
    return min(workflows, max(50, workflows // 3))


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _tasks_per_s(result: WorkerBenchResult) -> float:
    return result.tasks / result.seconds if result.seconds > 0 else 0.0


def _rate(result: WorkerBenchResult) -> str:
    return f"{result.seconds:.2f} s, {result.row().tasks_per_s} tasks/s"


def worker_rows(
    *,
    api_url: str,
    workflows: int,
    processes: int,
    repeat: int,
    timeout: float = 900.0,
    work_dir: Path | None = None,
    log: Callable[[str], None] = _stderr,
    telemetry_env: dict[str, str] | None = None,
) -> list[Row]:
    """A warm-up round of each tool, then ``repeat`` measured rounds of all, the order
    rotating (:func:`round_orders`), all on one queue; one row per tool with the median.
    ``telemetry_env`` (OTLP endpoint variables) adds the ``perago+telemetry`` tool."""
    tools = ALL_TOOLS if telemetry_env is not None else TOOLS
    results: dict[str, list[WorkerBenchResult]] = {tool: [] for tool in tools}
    with noop_queue(api_url, work_dir) as queue:
        warm = warmup_workflows(workflows)

        def measure(tool: str, count: int) -> WorkerBenchResult:
            return run_round(
                queue,
                tool=tool,
                workflows=count,
                processes=processes,
                timeout=timeout,
                telemetry_env=telemetry_env,
            )

        for tool in tools:
            result = measure(tool, warm)
            log(f"warm-up (not measured): {tool} {_rate(result)} for {warm} workflows")
        for number, order in enumerate(round_orders(repeat, tools), start=1):
            for tool in order:
                result = measure(tool, workflows)
                results[tool].append(result)
                log(f"round {number}/{repeat} ({order[0]} first): {tool} {_rate(result)}")
            mine, bare = results[PERAGO][-1], results[BARE][-1]
            if _tasks_per_s(bare) > 0:
                speed = _tasks_per_s(mine) / _tasks_per_s(bare)
                log(f"round {number}/{repeat}: perago / {BARE} throughput {speed:.2f}")
    rows: list[Row] = []
    for rounds in results.values():
        # The round of median throughput (the lower one of an even count) stands for the tool.
        median = sorted(rounds, key=_tasks_per_s)[(len(rounds) - 1) // 2]
        peaks = [r.peak_rss_mb for r in rounds if r.peak_rss_mb is not None]
        row = replace(median, peak_rss_mb=max(peaks) if peaks else None).row()
        windows = ", ".join(f"{r.tasks} in {r.seconds:.2f} s" for r in rounds)
        note = (
            f"median of {len(rounds)} rounds ({windows}) after a warm-up; order alternates; "
            "tasks counted once every worker process ran"
        )
        rows.append(replace(row, note=note))
    return rows


def throughput_ratio(rows: list[Row], tool: str = PERAGO, baseline: str = BARE) -> float | None:
    """``tool``'s tasks/s divided by ``baseline``'s (None when either is missing)."""
    mine, bare = find_row(rows, SCENARIO, tool), find_row(rows, SCENARIO, baseline)
    if mine is None or bare is None or mine.tasks_per_s is None or not bare.tasks_per_s:
        return None
    return mine.tasks_per_s / bare.tasks_per_s
