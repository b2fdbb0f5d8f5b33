"""The benches' one Conductor REST client: register a one-task workflow, start it, wait for it;
and around it the scratch project holding the task module and the stop of its workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

__all__ = [
    "BenchConductor",
    "perago_executable",
    "register_task",
    "stop_workers",
    "task_project",
]

_RUNNING = ("RUNNING", "PAUSED")


class BenchConductor:
    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.http = requests.Session()

    def workflow_def(
        self, name: str, task_name: str, *, reference: str, inputs: Mapping[str, str]
    ) -> None:
        """A one-task workflow ``name`` running ``task_name`` with ``inputs`` as parameters."""
        body: list[dict[str, Any]] = [
            {
                "name": name,
                "version": 1,
                "schemaVersion": 2,
                "ownerEmail": "bench@example.com",
                "tasks": [
                    {
                        "name": task_name,
                        "taskReferenceName": reference,
                        "type": "SIMPLE",
                        "inputParameters": dict(inputs),
                    }
                ],
            }
        ]
        self.http.put(f"{self.api_url}/metadata/workflow", json=body, timeout=30).raise_for_status()

    def start(self, name: str, inputs: Mapping[str, Any]) -> str:
        response = self.http.post(f"{self.api_url}/workflow/{name}", json=dict(inputs), timeout=30)
        response.raise_for_status()
        return response.text.strip().strip('"')

    def wait_all(
        self, workflow_ids: list[str], timeout: float, *, what: str = "benchmark"
    ) -> dict[str, dict[str, Any]]:
        """Every workflow's final state (with its tasks), once none is running any more.

        While the workers run, only the last workflow still pending is asked about (twice a
        second): the server is the system under test and shares the machine's cores, so the
        bench must not load it with a request per pending workflow per sweep (that load grew
        with the round's length, i.e. it slowed the slower tool more). Once the last one ended,
        the others (queued before it, so nearly all done) are fetched once each.
        """
        deadline = time.monotonic() + timeout
        pending, ended = list(workflow_ids), {}
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} {what} workflows did not end in time")
            last = self._state(pending[-1])
            if last["status"] in _RUNNING:
                time.sleep(0.5)
                continue
            ended[pending.pop()] = last
            still = []
            for workflow_id in pending:
                state = self._state(workflow_id)
                if state["status"] in _RUNNING:
                    still.append(workflow_id)
                else:
                    ended[workflow_id] = state
            pending = still
        return ended

    def _state(self, workflow_id: str) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(
            f"{self.api_url}/workflow/{workflow_id}", params={"includeTasks": "true"}, timeout=30
        ).json()
        return state


def perago_executable() -> str:
    """The ``perago`` console script next to this interpreter."""
    return str(Path(sys.executable).with_name("perago"))


@contextmanager
def task_project(
    task_prefix: str, scratch_prefix: str, template: str, *, parent: Path | None = None
) -> Iterator[tuple[Path, str, str]]:
    """A scratch project directory (under ``parent``, default the temp dir) holding one generated
    task module, removed afterwards.

    Yields the directory, the task name (``task_prefix`` and 8 random hex digits) and the module
    ``bench_<task name>``, whose source is ``template`` with ``{name}`` set to the task name.
    """
    name = f"{task_prefix}_{uuid.uuid4().hex[:8]}"
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)  # a fresh --work-dir is fine
    with tempfile.TemporaryDirectory(prefix=scratch_prefix, dir=parent) as scratch:
        root = Path(scratch)
        module = f"bench_{name}"
        (root / f"{module}.py").write_text(textwrap.dedent(template.format(name=name)))
        yield root, name, module


def register_task(module: str, project: Path, env: Mapping[str, str]) -> None:
    """``perago register MODULE`` in the bench's project directory; its error becomes ours."""
    registered = subprocess.run(
        [perago_executable(), "register", module],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if registered.returncode != 0:
        raise RuntimeError(registered.stderr.strip())


def stop_workers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process, then wait for each (up to 60 s; past that it is killed)."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
