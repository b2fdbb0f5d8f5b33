"""The task-author metrics API: names, labels, binding, and the signatures it allows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from perago import MetricRecorder, MetricSpec, TaskDefinitionError, WorkspaceSpec, task
from perago.attempt.core import run_workspace_free_task_attempt
from perago.metrics import (
    InMemoryMetricRecorder,
    RecordedMetricSample,
    RuntimeMetricContext,
    TaskAttemptMetricContext,
)

CONTEXT = TaskAttemptMetricContext("render", "task-1", "wf-1", "exec-1", "worker-1", 2)


class Params(BaseModel):
    n: int = 1


class Output(BaseModel):
    n: int


def test_application_samples_are_named_and_labelled_and_reserved_labels_dropped() -> None:
    recorder = InMemoryMetricRecorder()
    bound = recorder.with_context(CONTEXT)
    bound.histogram("latency", 0.5, labels={"kind": "wav", "task_id": "x", "task_name": "y"})
    bound.gauge("queue", 3)
    with bound.timer("step"):
        pass
    assert recorder.histograms[0] == RecordedMetricSample(
        "app.latency", 0.5, {"task_name": "render", "kind": "wav"}
    )
    assert recorder.gauges == [RecordedMetricSample("app.queue", 3.0, {"task_name": "render"})]
    assert recorder.histograms[1].name == "app.step"
    assert recorder.histograms[1].value >= 0


def test_unbound_application_calls_are_refused() -> None:
    with pytest.raises(RuntimeError, match="MetricRecorder context is not bound"):
        InMemoryMetricRecorder().histogram("x", 1)


def test_runtime_samples_carry_the_instance() -> None:
    recorder = InMemoryMetricRecorder()
    recorder.runtime_gauge("slots", 2, context=RuntimeMetricContext("render", "host-a"))
    assert recorder.gauges == [
        RecordedMetricSample(
            "runtime.slots", 2.0, {"task_name": "render", "perago_instance_id": "host-a"}
        )
    ]


def test_a_metrics_task_gets_its_recorder_and_records_through_it() -> None:
    @task(name="m", owner_email="a@b.c", metrics=MetricSpec(worker_capacity=False))
    def body(params: Params, metrics: MetricRecorder) -> Output:
        metrics.histogram("n", params.n)
        return Output(n=params.n)

    recorder = InMemoryMetricRecorder()
    definition = body.__perago_task__  # type: ignore[attr-defined]
    result = run_workspace_free_task_attempt(
        definition, {"params": {"n": 4}}, metrics=recorder.with_context(CONTEXT)
    )
    assert result.status == "COMPLETED"
    assert recorder.histograms == [RecordedMetricSample("app.n", 4.0, {"task_name": "render"})]
    missing = run_workspace_free_task_attempt(definition, {"params": {}})
    assert missing.status == "FAILED"
    assert "metrics-enabled task invocation requires a MetricRecorder" in str(
        missing.reason_for_incompletion
    )


def _free_with_metrics(params: Params, metrics: MetricRecorder) -> Output:
    raise NotImplementedError


def _free_misnamed(params: Params, recorder: MetricRecorder) -> Output:
    raise NotImplementedError


def _workspace_with_metrics(workspace: Path, params: Params, metrics: MetricRecorder) -> Output:
    raise NotImplementedError


def _workspace_misannotated(workspace: Path, params: Params, metrics: object) -> Output:
    raise NotImplementedError


def _workspace_misnamed(workspace: Path, params: Params, other: MetricRecorder) -> Output:
    raise NotImplementedError


def _plain(params: Params) -> Output:
    raise NotImplementedError


@pytest.mark.parametrize(
    ("fn", "options", "message"),
    [
        (_free_with_metrics, {}, "metrics parameter requires metrics=MetricSpec(...)"),
        (
            _free_with_metrics,
            {"metrics": MetricSpec(), "workspace": WorkspaceSpec()},
            "workspace-free task functions must not declare workspace=WorkspaceSpec(...)",
        ),
        (_plain, {"metrics": MetricSpec()}, "metrics=MetricSpec(...) requires a metrics parameter"),
        (
            _workspace_misannotated,
            {"metrics": MetricSpec(), "workspace": WorkspaceSpec()},
            "metrics must be annotated as perago.MetricRecorder",
        ),
        (
            _workspace_misnamed,
            {"metrics": MetricSpec(), "workspace": WorkspaceSpec()},
            "metrics-enabled task parameter must be named metrics",
        ),
        (_plain, {"metrics": {"attempts": True}}, "metrics must be a MetricSpec"),
        (
            _free_misnamed,
            {"metrics": MetricSpec()},
            "workspace task parameters must be named workspace and params",
        ),
    ],
)
def test_metrics_signature_rules(
    fn: Callable[..., Any], options: dict[str, object], message: str
) -> None:
    with pytest.raises(TaskDefinitionError) as raised:
        task(name="t", owner_email="a@b.c", **options)(fn)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_both_metrics_signatures_are_accepted() -> None:
    free = task(name="f", owner_email="a@b.c", metrics=MetricSpec())(_free_with_metrics)
    ws = task(name="w", owner_email="a@b.c", metrics=MetricSpec(), workspace=WorkspaceSpec())(
        _workspace_with_metrics
    )
    assert free.__perago_task__.has_metrics  # type: ignore[attr-defined]
    assert ws.__perago_task__.has_workspace  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["bad name", "", "x" * 252, "é", "a b"])
def test_names_opentelemetry_would_refuse_are_refused_by_every_recorder(name: str) -> None:
    from perago.metrics.api import DiscardingMetricRecorder

    for recorder in (InMemoryMetricRecorder(CONTEXT), DiscardingMetricRecorder(CONTEXT)):
        with pytest.raises(ValueError, match="must contain only ASCII letters"):
            recorder.histogram(name, 1)
