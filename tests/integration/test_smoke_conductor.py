"""A real Conductor runs a one-task workflow whose task a conductor-python worker completes."""

# No `from __future__ import annotations`: the SDK inspects `task: Task` at run time to decide
# whether to pass the whole Task (a string annotation would not match).
import threading
import time
from typing import Any

import pytest
from conductor.client.automator.task_runner import TaskRunner
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_def import TaskDef
from conductor.client.http.models.workflow_def import WorkflowDef
from conductor.client.http.models.workflow_task import WorkflowTask
from conductor.client.orkes_clients import OrkesClients
from conductor.client.worker.worker import Worker

from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration


def _double(task: Task) -> dict[str, Any]:
    return {"doubled": int(task.input_data["n"]) * 2, "task_id": task.task_id}


def _run_worker_until(runner: TaskRunner, done: threading.Event) -> None:
    while not done.is_set():
        runner.run_once()


def test_worker_completes_one_task_workflow(
    conductor_server: ConductorServer, unique_name: str
) -> None:
    config = conductor_server.configuration()
    clients = OrkesClients(configuration=config)
    metadata = clients.get_metadata_client()
    workflows = clients.get_workflow_client()
    task_name = f"{unique_name}-task"
    workflow_name = f"{unique_name}-wf"

    metadata.register_task_def(
        TaskDef(name=task_name, retry_count=0, timeout_seconds=60, response_timeout_seconds=30)
    )
    assert metadata.get_task_def(task_name).name == task_name
    metadata.register_workflow_def(
        WorkflowDef(
            name=workflow_name,
            version=1,
            schema_version=2,
            tasks=[
                WorkflowTask(
                    name=task_name,
                    task_reference_name="double_ref",
                    type="SIMPLE",
                    input_parameters={"n": "${workflow.input.n}"},
                )
            ],
            output_parameters={"result": "${double_ref.output.doubled}"},
            timeout_seconds=120,
        ),
        overwrite=True,
    )

    workflow_id = workflows.start_workflow(
        StartWorkflowRequest(name=workflow_name, version=1, input={"n": 21})
    )
    runner = TaskRunner(Worker(task_name, _double, poll_interval=0.05), config)
    done = threading.Event()
    poller = threading.Thread(target=_run_worker_until, args=(runner, done), daemon=True)
    poller.start()
    try:
        deadline = time.monotonic() + 120
        status = "RUNNING"
        while time.monotonic() < deadline:
            workflow = workflows.get_workflow(workflow_id, include_tasks=True)
            status = workflow.status
            if status != "RUNNING":
                break
            time.sleep(0.2)
    finally:
        done.set()
        poller.join(timeout=30)

    assert status == "COMPLETED", f"workflow {workflow_id} ended {status}"
    assert workflow.output == {"result": 42}
    (task,) = workflow.tasks
    assert task.status == "COMPLETED"
    assert task.output_data["doubled"] == 42
    assert task.output_data["task_id"] == task.task_id
