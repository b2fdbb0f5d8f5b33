"""The benches' one Conductor REST client: register a one-task workflow, start it, wait for it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

__all__ = ["BenchConductor", "register_task"]

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
        """Every workflow's final state (with its tasks), once none is running any more."""
        deadline = time.monotonic() + timeout
        pending, ended = list(workflow_ids), {}
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} {what} workflows did not end in time")
            still = []
            for workflow_id in pending:
                state = self.http.get(
                    f"{self.api_url}/workflow/{workflow_id}",
                    params={"includeTasks": "true"},
                    timeout=30,
                ).json()
                if state["status"] in _RUNNING:
                    still.append(workflow_id)
                else:
                    ended[workflow_id] = state
            pending = still
            if pending:
                time.sleep(0.5)
        return ended


def register_task(module: str, project: Path, env: Mapping[str, str]) -> None:
    """``perago register MODULE`` in the bench's project directory; its error becomes ours."""
    perago = str(Path(sys.executable).with_name("perago"))
    registered = subprocess.run(
        [perago, "register", module],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if registered.returncode != 0:
        raise RuntimeError(registered.stderr.strip())
