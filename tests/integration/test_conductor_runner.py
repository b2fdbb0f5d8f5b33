"""``TaskRunnerHandle`` against a real Conductor: a drain reports the running task and leaves
the next queued one unassigned (the SDK's update-v2 would otherwise hand it to the draining
worker with the result; see ``perago.conductor.runner._report_without_next_task``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_result import TaskResult
from conductor.client.http.models.task_result_status import TaskResultStatus
from conductor.client.orkes_clients import OrkesClients

from perago.conductor.client import ConductorClient
from perago.conductor.runner import TaskRunnerHandle
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration


def _tasks(workflows: Any, workflow_id: str) -> list[Any]:
    return list(workflows.get_workflow(workflow_id, include_tasks=True).tasks or [])


def test_a_drain_leaves_the_next_queued_task_unassigned(
    conductor_server: ConductorServer, unique_name: str
) -> None:
    client = ConductorClient(conductor_server.api_url)
    task_name, workflow_name = f"{unique_name}-task", f"{unique_name}-wf"
    client.register_taskdef(
        {
            "name": task_name,
            "retryCount": 0,
            "timeoutSeconds": 120,
            "responseTimeoutSeconds": 60,
            "ownerEmail": "tests@example.com",
        }
    )
    client.register_workflow(
        {
            "name": workflow_name,
            "version": 1,
            "schemaVersion": 2,
            "ownerEmail": "tests@example.com",
            "timeoutSeconds": 300,
            "tasks": [{"name": task_name, "taskReferenceName": "only", "type": "SIMPLE"}],
        }
    )
    workflows = OrkesClients(configuration=client.configuration).get_workflow_client()
    ids = [
        workflows.start_workflow(StartWorkflowRequest(name=workflow_name, version=1, input={}))
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(_tasks(workflows, workflow_id) for workflow_id in ids):
            assert time.monotonic() < deadline, "the workflows never scheduled their task"
            time.sleep(0.1)
        ran: list[str] = []

        def run(task: Task) -> TaskResult:
            ran.append(task.task_id)
            handle.stop_polling()  # SIGTERM during the attempt
            return TaskResult(
                task_id=task.task_id,
                workflow_instance_id=task.workflow_instance_id,
                worker_id="drain-w",
                status=TaskResultStatus.COMPLETED,
            )

        handle = TaskRunnerHandle(task_name, "drain-w", run, configuration=client.configuration)
        deadline = time.monotonic() + 60
        while not ran and handle.in_flight() == 0:
            assert time.monotonic() < deadline, "the worker never polled a task"
            handle.poll_once()
        handle.drain()

        assert len(ran) == 1
        by_id = {
            task.task_id: task for workflow_id in ids for task in _tasks(workflows, workflow_id)
        }
        assert by_id[ran[0]].status == "COMPLETED"
        (other,) = [task for task_id, task in by_id.items() if task_id != ran[0]]
        assert other.status == "SCHEDULED"
        assert not other.poll_count
        assert not other.worker_id
    finally:
        for workflow_id in ids:
            if workflows.get_workflow(workflow_id, include_tasks=False).status == "RUNNING":
                workflows.terminate_workflow(workflow_id, reason="test done")
