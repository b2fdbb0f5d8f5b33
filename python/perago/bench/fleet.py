"""``perago bench fleet``: one versus two supervisors on one queue, every publication verified.

Each round starts its supervisors (``perago start -j J``) on one shared workspace root (a second
supervisor is a second "host": ``PERAGO_INSTANCE_ID=bench-b``, its own lock), waits until every
worker polls, then starts N workflows of a workspace task that changes one file, each on its own
branch created from one seed commit. Rounds: 1 supervisor x J workers, 2 x J/2 (the same total,
when J is even) and 2 x J (twice the workers). Throughput is measured from Conductor's own
timestamps (first task start to last task end), so process start-up is excluded (the workflows
are started by 8 threads, faster than the fleet runs them). Afterwards every workflow is
checked for exactly one publication: its only task COMPLETED, its branch head is the output ref,
that commit's only parent is the seed and it changes exactly the workflow's one file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import typer

from perago.bench import lakefs_setup
from perago.bench import transfer as bench_transfer
from perago.bench.cli import (
    JsonOpt,
    NamespaceOpt,
    processes_option,
    repeat_option,
    work_dir_option,
    workflows_option,
)
from perago.bench.conductor_rest import (
    BenchConductor,
    perago_executable,
    register_task,
    stop_workers,
    task_project,
)
from perago.bench.report import Row, emit, find_row, format_ratio
from perago.bench.repository import bench_repository
from perago.bench.topology import LOCAL_NAMESPACE
from perago.bench.transfer_child import ENV_ENDPOINT, ENV_KEY, ENV_SECRET
from perago.definition.workspace import workspace_task_input

DEFAULT_WORKFLOWS = 100
DEFAULT_PROCESSES = 2
SCENARIO = "fleet"
_INSTANCES = ("bench-a", "bench-b")

EDIT_MODULE = """
from pathlib import Path
from pydantic import BaseModel
from perago import task, TaskControls, RetryPolicy, TimeoutPolicy, WorkspaceSpec

class Params(BaseModel):
    name: str

class Result(BaseModel):
    name: str

@task(name="{name}", owner_email="bench@example.com", workspace=WorkspaceSpec(prefix="data"),
      controls=TaskControls(retry=RetryPolicy(count=0), timeout=TimeoutPolicy(response_seconds=60)))
def edit(workspace: Path, params: Params) -> Result:
    (workspace / "out").mkdir(exist_ok=True)
    (workspace / "out" / (params.name + ".txt")).write_text("made by " + params.name)
    return Result(name=params.name)
"""

WorkflowsOpt = workflows_option(DEFAULT_WORKFLOWS, "one changed file each")
ProcessesOpt = processes_option(DEFAULT_PROCESSES, "of the single supervisor")
RepeatOpt = repeat_option(1)
WorkDirOpt = work_dir_option()


@dataclass(frozen=True)
class Plan:
    supervisors: int
    workers: int

    @property
    def scenario(self) -> str:
        return f"{SCENARIO}-{self.supervisors}x{self.workers}"


def plans(processes: int) -> list[Plan]:
    """1 x J, 2 x J/2 (same total; only for an even J) and 2 x J (double)."""
    chosen = [Plan(1, processes)]
    if processes % 2 == 0:
        chosen.append(Plan(2, processes // 2))
    chosen.append(Plan(2, processes))
    return chosen


@dataclass(frozen=True)
class RoundResult:
    """One plan's result: the median window over its rounds, every workflow of every round."""

    plan: Plan
    workflows: int
    seconds: float
    verified: int
    problems: tuple[str, ...]
    per_round: int = 0

    def row(self) -> Row:
        rate = (self.per_round or self.workflows) / self.seconds if self.seconds > 0 else 0.0
        supervisors = "supervisor" if self.plan.supervisors == 1 else "supervisors"
        note = (
            f"{self.verified}/{self.workflows} published exactly once; "
            f"{self.plan.supervisors} {supervisors} x {self.plan.workers} workers"
        )
        return Row(
            scenario=self.plan.scenario,
            tool="perago",
            median_s=round(self.seconds, 4),
            mb_per_s=None,
            files_per_s=None,
            peak_rss_mb=None,
            note=note,
            tasks_per_s=round(rate, 2),
            workflows=self.workflows,
            verified=self.verified,
        )


def _wait_for_pollers(
    log_root: Path, count: int, supervisors: list[subprocess.Popen[bytes]], timeout: float = 120
) -> None:
    """Until ``count`` worker processes logged ``worker polling`` (their JSONL files)."""
    deadline = time.monotonic() + timeout
    while True:
        polling = set()
        for path in log_root.rglob("*.jsonl"):
            with contextlib.suppress(OSError):
                for line in path.read_text(encoding="utf-8").splitlines():
                    if '"worker polling"' in line:
                        with contextlib.suppress(ValueError):
                            polling.add(json.loads(line).get("pid"))
        if len(polling) >= count:
            return
        if any(process.poll() is not None for process in supervisors):
            raise RuntimeError("a perago start of the fleet bench exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(polling)} of {count} fleet workers polled in time")
        time.sleep(0.2)


def _verify(
    server: bench_transfer.Server,
    repo: str,
    seed: str,
    branch: str,
    state: dict[str, Any],
) -> str | None:
    """None when the workflow published exactly once; otherwise what is wrong."""
    if state.get("status") != "COMPLETED":
        tasks = state.get("tasks") or [{}]
        return f"{branch}: {state.get('status')} ({tasks[-1].get('reasonForIncompletion')})"
    tasks = state.get("tasks", [])
    if [t.get("status") for t in tasks] != ["COMPLETED"]:
        return f"{branch}: task attempts {[t.get('status') for t in tasks]}"
    ref = str(state["output"]["workspace"]["ref"])
    head = server.control.branch_head(repo, branch)
    if head != ref:
        return f"{branch}: head {head} is not the output {ref}"
    parents = list(server.control.get_commit(repo, ref).parents)
    if parents != [seed]:
        return f"{branch}: {ref} has parents {parents}, not the seed"
    changed = sorted(entry.path for entry in server.control.iter_diff(repo, seed, ref))
    if changed != [f"{lakefs_setup.PREFIX}/out/{branch}.txt"]:
        return f"{branch}: changed {changed}"
    return None


def _run_round(  # noqa: PLR0917 - one private call site
    conductor: BenchConductor,
    server: bench_transfer.Server,
    repo: str,
    seed: str,
    plan: Plan,
    workflows: int,
    round_number: int,
    log: Callable[[str], None],
    work_dir: Path | None = None,
) -> RoundResult:
    with task_project(
        "perago_bench_fleet", "perago-bench-fleet-", EDIT_MODULE, parent=work_dir
    ) as project:
        root, name, module = project
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PERAGO_INSTANCE_ID", "PERAGO_WORKSPACE_ROOT", "PERAGO_LOG"))
        }
        env.update(
            {
                ENV_ENDPOINT: server.endpoint,
                ENV_KEY: server.access_key_id,
                ENV_SECRET: server.secret_access_key,
                "CONDUCTOR_SERVER_URL": conductor.api_url,
                "PERAGO_WORKSPACE_ROOT": str(root / "ws"),  # one root for every supervisor
                "PERAGO_LOG_ROOT": str(root / "logs"),
            }
        )
        register_task(module, root, env)
        perago = perago_executable()
        conductor.workflow_def(
            f"{name}_wf",
            name,
            reference="edit",
            inputs={
                "workspace": "${workflow.input.workspace}",
                "params": "${workflow.input.params}",
            },
        )
        branches = [f"r{round_number}-w{i:04d}" for i in range(workflows)]
        for branch in branches:
            server.control.create_branch(repo, branch, seed)
        supervisors: list[subprocess.Popen[bytes]] = []
        ids: dict[str, str] = {}
        try:
            for instance in _INSTANCES[: plan.supervisors]:
                supervisors.append(
                    subprocess.Popen(
                        [perago, "start", module, "-j", str(plan.workers)],
                        cwd=root,
                        env={**env, "PERAGO_INSTANCE_ID": instance},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            # Every worker polls before the first workflow exists: the window measures the
            # whole fleet, not how fast the second supervisor starts.
            _wait_for_pollers(root / "logs", plan.supervisors * plan.workers, supervisors)
            with ThreadPoolExecutor(max_workers=8) as pool:
                started = pool.map(
                    lambda branch: conductor.start(
                        f"{name}_wf", workspace_task_input(repo, branch, seed, {"name": branch})
                    ),
                    branches,
                )
                ids = dict(zip(branches, started, strict=True))
            log(f"{plan.scenario}: {workflows} workflows started")
            states = conductor.wait_all(
                list(ids.values()), timeout=max(300.0, workflows * 5.0), what="fleet"
            )
        finally:
            stop_workers(supervisors)
    problems = []
    starts, ends = [], []
    for branch, workflow_id in ids.items():
        state = states[workflow_id]
        problem = _verify(server, repo, seed, branch, state)
        if problem is not None:
            problems.append(problem)
        for task in state.get("tasks", []):
            if task.get("startTime") and task.get("endTime"):
                starts.append(int(task["startTime"]))
                ends.append(int(task["endTime"]))
    seconds = (max(ends) - min(starts)) / 1000.0 if starts else 0.0
    verified = workflows - len(problems)
    log(f"{plan.scenario}: {seconds:.2f}s, {verified}/{workflows} verified")
    return RoundResult(plan, workflows, seconds, verified, tuple(problems), workflows)


def combine(rounds: list[RoundResult]) -> RoundResult:
    """The rounds of one plan: median window, all workflows and problems."""
    first = rounds[0]
    return RoundResult(
        plan=first.plan,
        workflows=sum(r.workflows for r in rounds),
        seconds=statistics.median(r.seconds for r in rounds),
        verified=sum(r.verified for r in rounds),
        problems=tuple(p for r in rounds for p in r.problems),
        per_round=first.per_round,
    )


def fleet_results(
    *,
    conductor_url: str,
    server: bench_transfer.Server,
    workflows: int,
    processes: int,
    namespace_root: str,
    log: Callable[[str], None],
    repeat: int = 1,
    work_dir: Path | None = None,
) -> list[RoundResult]:
    """Every plan ``repeat`` times (plans alternate, so drift hits them alike); scratch data
    under ``work_dir`` (default the temp dir), removed afterwards."""
    conductor = BenchConductor(conductor_url)
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)  # a fresh --work-dir is fine
    work = Path(tempfile.mkdtemp(prefix="perago-bench-fleet-seed-", dir=work_dir))
    chosen = plans(processes)
    rounds: dict[Plan, list[RoundResult]] = {plan: [] for plan in chosen}
    try:
        with bench_repository(server, namespace_root, log=log) as repo:
            seed = lakefs_setup.seed_repository(server, repo, work, files=1, size=64).commit
            number = 0
            for _ in range(repeat):
                for plan in chosen:
                    rounds[plan].append(
                        _run_round(
                            conductor, server, repo, seed, plan, workflows, number, log, work_dir
                        )
                    )
                    number += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [combine(rounds[plan]) for plan in chosen]


def speedups(rows: list[Row], processes: int) -> list[tuple[str, float | None]]:
    """Throughput ratios against the single supervisor."""
    single = find_row(rows, f"{SCENARIO}-1x{processes}", "perago")
    found = []
    for plan in plans(processes)[1:]:
        other = find_row(rows, plan.scenario, "perago")
        value = None
        if single and other and single.tasks_per_s and other.tasks_per_s is not None:
            value = other.tasks_per_s / single.tasks_per_s
        found.append((f"{plan.scenario} / {SCENARIO}-1x{processes} throughput", value))
    return found


def _log(line: str) -> None:
    typer.echo(line, err=True)


def fleet_command(
    *,
    workflows: int = WorkflowsOpt,
    processes: int = ProcessesOpt,
    as_json: bool = JsonOpt,
    repeat: int = RepeatOpt,
    namespace: str | None = NamespaceOpt,
    work_dir: Path | None = WorkDirOpt,
) -> None:
    """One vs two supervisors on one queue: workspace tasks of one changed file, each verified."""
    from perago.cli.support import CliError, cli_errors, require_conductor
    from perago.config import load_runtime_config

    with cli_errors():
        config = load_runtime_config("perago", probe_roots=False)
        conductor = require_conductor(config, "bench fleet")
        try:
            server = bench_transfer.server_from_env()
            results = fleet_results(
                conductor_url=conductor.server_url,
                server=server,
                workflows=workflows,
                processes=processes,
                namespace_root=(namespace or LOCAL_NAMESPACE).rstrip("/"),
                log=_log,
                repeat=repeat,
                work_dir=work_dir,
            )
        except (ValueError, RuntimeError, OSError, requests.RequestException) as exc:
            raise CliError(str(exc)) from exc
    rows = [result.row() for result in results]
    emit(
        rows,
        as_json=as_json,
        title=f"perago bench fleet: {workflows} workflows per round, x{repeat}",
        lines=[format_ratio(label, value) for label, value in speedups(rows, processes)],
    )
    problems = [problem for result in results for problem in result.problems]
    if problems:
        shown = "; ".join(problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        typer.echo(
            f"error: {len(problems)} workflow(s) not published exactly once: {shown}{more}",
            err=True,
        )
        raise typer.Exit(1)
