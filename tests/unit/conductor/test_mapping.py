"""Mapping between SDK tasks/results and perago's attempt/result types."""

from __future__ import annotations

import pytest
from conductor.client.http.models.task import Task
from conductor.client.http.models.task_def import TaskDef

from perago.attempt.result import completed_result, failed_result
from perago.conductor.mapping import result_to_task_result, task_to_attempt
from perago.errors import ConductorTaskError


def _task(**overrides: object) -> Task:
    values: dict[str, object] = dict(
        workflow_instance_id="wf",
        task_id="t",
        retry_count=1,
        task_def_name="demo",
        reference_task_name="demo_ref",
        seq=3,
        status="IN_PROGRESS",
        input_data={"params": {}},
        poll_count=2,
        worker_id="demo0001",
        response_timeout_seconds=30,
    )
    values.update(overrides)
    return Task(**values)


def test_task_maps_to_attempt_with_fence_fields() -> None:
    task = _task()
    task.task_definition = TaskDef(name="demo", timeout_seconds=12)
    attempt = task_to_attempt(task, execution_id="e1")
    assert (attempt.task_id, attempt.retry_count, attempt.poll_count, attempt.worker_id) == (
        "t",
        1,
        2,
        "demo0001",
    )
    assert attempt.timeout_seconds == 12
    assert attempt.execution_id == "e1"
    assert attempt.iteration == 0


@pytest.mark.parametrize("missing", ["task_id", "workflow_instance_id", "retry_count", "seq"])
def test_missing_fields_are_named(missing: str) -> None:
    with pytest.raises(ConductorTaskError, match=f"missing required field {missing}"):
        task_to_attempt(_task(**{missing: None}))


def test_results_carry_this_workers_id() -> None:
    attempt = task_to_attempt(_task())
    done = result_to_task_result(attempt, completed_result({"result": {"n": 1}}), worker_id="w9")
    assert (done.worker_id, done.status.name, done.output_data) == (
        "w9",
        "COMPLETED",
        {"result": {"n": 1}},
    )
    failed = result_to_task_result(attempt, failed_result("ValueError: boom"), worker_id="w9")
    assert failed.status.name == "FAILED"
    assert failed.reason_for_incompletion == "ValueError: boom"
