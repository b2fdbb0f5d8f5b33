"""``perago bench worker``: workspace-free no-op tasks per second through a real Conductor.

Both tools get the same work the same way: N workflows of one no-op task are queued first, then
C worker processes start (``perago start -j C`` versus C bare conductor-python ``TaskRunner``
processes with ``thread_count=1``). Throughput is measured from Conductor's own timestamps (first
task poll to last task completion), so process start-up and workflow creation are excluded for
both. Peak RSS is the largest ``VmHWM`` among the worker processes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from perago.bench.conductor_rest import (
    BenchConductor,
    perago_executable,
    register_task,
    stop_workers,
    task_project,
)
from perago.bench.report import Row, find_row

SCENARIO = "worker-noop"

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
import sys
from conductor.client.automator.task_runner import TaskRunner
from conductor.client.configuration.configuration import Configuration
from conductor.client.worker.worker import Worker

def noop(task):
    return {{"result": {{"n": task.input_data["params"]["n"]}}}}

worker = Worker(task_definition_name="{name}", execute_function=noop, poll_interval=100)
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


def _task_window(conductor: BenchConductor, workflow_ids: list[str], timeout: float) -> float:
    """Seconds from the first task's start to the last task's end, once all completed."""
    starts: list[int] = []
    ends: list[int] = []
    for workflow_id, state in conductor.wait_all(workflow_ids, timeout).items():
        if state["status"] != "COMPLETED":
            raise RuntimeError(f"benchmark workflow {workflow_id} ended {state['status']}")
        (task,) = state["tasks"]
        starts.append(int(task["startTime"]))
        ends.append(int(task["endTime"]))
    return (max(ends) - min(starts)) / 1000.0


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


def _run_round(
    conductor: BenchConductor,
    *,
    tool: str,
    tasks: int,
    concurrency: int,
    api_url: str,
    timeout: float,
) -> WorkerBenchResult:
    with task_project("perago_bench_noop", "perago-bench-worker-", NOOP_MODULE) as project:
        root, name, module = project
        env = {
            **os.environ,
            "CONDUCTOR_SERVER_URL": api_url,
            "PERAGO_WORKSPACE_ROOT": str(root / "ws"),
            "PERAGO_LOG_ROOT": str(root / "logs"),
        }
        register_task(module, root, env)
        perago = perago_executable()
        conductor.workflow_def(
            f"{name}_wf", name, reference="noop", inputs={"params": "${workflow.input.params}"}
        )
        ids = [conductor.start(f"{name}_wf", {"params": {"n": n}}) for n in range(tasks)]
        processes: list[subprocess.Popen[bytes]] = []
        try:
            if tool == "perago":
                supervisor = subprocess.Popen(
                    [perago, "start", module, "-j", str(concurrency)], cwd=root, env=env
                )
                processes.append(supervisor)
            else:
                script = BARE_WORKER.format(name=name, url=api_url)
                for _ in range(concurrency):
                    processes.append(subprocess.Popen([sys.executable, "-c", script], env=env))
            seconds = _task_window(conductor, ids, timeout)
            pids = [p.pid for p in processes]
            if tool == "perago":
                pids = _children(processes[0].pid)
            peak = _peak_rss_mb(pids)
        finally:
            stop_workers(processes)
    return WorkerBenchResult(tool, tasks, seconds, peak)


def worker_rows(
    *, api_url: str, tasks: int, concurrency: int, repeat: int, timeout: float = 900.0
) -> list[Row]:
    """Alternate perago / bare rounds ``repeat`` times; one row per tool with the median."""
    conductor = BenchConductor(api_url)
    results: dict[str, list[WorkerBenchResult]] = {"perago": [], "conductor-python": []}
    for _ in range(repeat):
        for tool, rounds in results.items():
            rounds.append(
                _run_round(
                    conductor,
                    tool=tool,
                    tasks=tasks,
                    concurrency=concurrency,
                    api_url=api_url,
                    timeout=timeout,
                )
            )
    rows: list[Row] = []
    for tool, rounds in results.items():
        median = statistics.median(r.seconds for r in rounds)
        peaks = [r.peak_rss_mb for r in rounds if r.peak_rss_mb is not None]
        rows.append(WorkerBenchResult(tool, tasks, median, max(peaks) if peaks else None).row())
    return rows


def throughput_ratio(rows: list[Row]) -> float | None:
    """perago's tasks/s divided by the bare conductor-python worker's (None when missing)."""
    mine, bare = find_row(rows, SCENARIO, "perago"), find_row(rows, SCENARIO, "conductor-python")
    if mine is None or bare is None or mine.tasks_per_s is None or not bare.tasks_per_s:
        return None
    return mine.tasks_per_s / bare.tasks_per_s
