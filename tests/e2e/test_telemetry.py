"""Metrics and traces of real attempts, as a real OpenTelemetry Collector and a Prometheus scrape
receive them (real Conductor, real lakeFS, ``perago start``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from perago.devservers.process import free_port
from tests.e2e.harness import (
    WORKSPACE_INPUTS,
    ConductorRest,
    Deployment,
    Workspace,
    deploy,
    lakectl_dotenv,
    make_project,
    stop,
    wait_until,
)
from tests.otel_collector import Collector, Point, start_collector, stop_collector
from tests.servers_fixture import ConductorServer

pytestmark = pytest.mark.integration

TASK_SOURCE = """
from pathlib import Path
from pydantic import BaseModel
from perago import (
    MetricRecorder, MetricSpec, RetryPolicy, TaskControls, TaskFailed, WorkspaceSpec, task,
)

class Params(BaseModel):
    name: str = "out"
    fail: bool = False

class Result(BaseModel):
    files: int

@task(
    name="{name}",
    owner_email="tests@example.com",
    workspace=WorkspaceSpec(prefix="data"),
    metrics=MetricSpec(),
    controls=TaskControls(retry=RetryPolicy(count=0, delay_seconds=0)),
)
def run(workspace: Path, params: Params, metrics: MetricRecorder) -> Result:
    with metrics.timer("render", labels={{"kind": "txt"}}):
        if params.fail:
            raise TaskFailed("asked to fail")
        (workspace / "out").mkdir(exist_ok=True)
        (workspace / "out" / (params.name + ".txt")).write_text("made by " + params.name)
    metrics.gauge("files_written", 1, labels={{"task_id": "dropped: reserved"}})
    return Result(files=len(list(workspace.rglob("*.txt"))))
"""

PHASES = {"validate_input", "prepare", "download", "body", "detect_changes", "fence"}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    received = start_collector(tmp_path / "otelcol")
    try:
        yield received
    finally:
        stop_collector(received)


@pytest.fixture
def deploy_metrics_task(
    tmp_path: Path,
    conductor_server: ConductorServer,
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> Callable[[dict[str, str]], Deployment]:
    """Register the metrics task and its workflow, with ``telemetry`` in the project's .env."""

    def make(telemetry: dict[str, str]) -> Deployment:
        project = make_project(
            tmp_path,
            "metrics_" + unique_name,
            TASK_SOURCE.format(name=unique_name),
            conductor_api_url=conductor_server.api_url,
            dotenv={
                **lakectl_dotenv(workspace.config),
                "PERAGO_INSTANCE_ID": "host-a",
                **telemetry,
            },
        )
        return deploy(project, rest, unique_name, WORKSPACE_INPUTS)

    return make


def _points(collector: Collector, metric: str) -> list[Point]:
    return [p for p in collector.points() if p.metric == metric]


def test_attempts_reach_the_collector_as_series_and_spans(
    deploy_metrics_task: Callable[[dict[str, str]], Deployment],
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
    collector: Collector,
) -> None:
    app = deploy_metrics_task(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "300",
            "OTEL_SERVICE_NAME": "render-fleet",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=media%20lab",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-token=s3cr3t-token",
        },
    )
    worker = app.project.start()
    try:
        done = rest.wait(app.start_workflow({"workspace": workspace.input(), "params": {}}))
        failed = rest.wait(
            app.start_workflow({"workspace": workspace.input(), "params": {"fail": True}})
        )

        def attempts_recorded() -> bool:
            outcomes = {
                p.attributes.get("outcome") for p in _points(collector, "runtime.task_attempts")
            }
            return {"COMPLETED", "FAILED"} <= outcomes

        collector.wait_for(attempts_recorded, "both attempts' outcome series")
        collector.wait_for(lambda: len(collector.spans()) >= 2 * 6, "the attempts' spans")
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    assert done["status"] == "COMPLETED", done
    assert failed["status"] == "FAILED", failed
    published = done["output"]["workspace"]["ref"]

    # -- series ----------------------------------------------------------------------------
    attempts = _points(collector, "runtime.task_attempt_duration_seconds")
    by_outcome = {p.attributes["outcome"]: p for p in attempts}
    completed, failure = by_outcome["COMPLETED"], by_outcome["FAILED"]
    assert completed.kind == "histogram"
    assert completed.unit == "s"
    assert completed.count == 1
    assert completed.total is not None
    assert completed.total > 0
    assert completed.attributes == {
        "task_name": unique_name,
        "perago_instance_id": "host-a",
        "outcome": "COMPLETED",
        "failure_class": "",
    }
    assert failure.attributes["failure_class"] == "TaskFailed"
    resource = completed.resource
    assert resource["service.name"] == "render-fleet"
    assert resource["deployment.environment"] == "test"
    assert resource["team"] == "media lab"
    assert resource["perago.instance_id"] == "host-a"

    phases = {
        p.attributes["phase"] for p in _points(collector, "runtime.attempt_phase_duration_seconds")
    }
    assert PHASES | {"stage", "publish", "cleanup"} <= phases
    io = {
        p.attributes["operation"]
        for p in _points(collector, "runtime.workspace_io_duration_seconds")
    }
    assert {"download", "upload", "publish"} <= io
    uploaded = [
        p
        for p in _points(collector, "runtime.workspace_files")
        if p.attributes["operation"] == "upload"
    ]
    assert uploaded
    assert uploaded[-1].value == 1
    io_bytes = {
        p.attributes["operation"]: p for p in _points(collector, "runtime.workspace_io_bytes")
    }
    assert io_bytes["upload"].total == len(b"made by out")
    busy = _points(collector, "runtime.busy_slots")
    worker_id = busy[-1].attributes["worker_id"]
    assert completed.resource["service.instance.id"] == worker_id
    assert busy[-1].value == 0  # nothing runs any more
    # The body's own series: app.<name>, task_name added, the reserved label dropped.
    timer = _points(collector, "app.render")
    assert timer
    assert {p.attributes["kind"] for p in timer} == {"txt"}
    gauge = _points(collector, "app.files_written")
    assert gauge
    assert gauge[-1].attributes == {"task_name": unique_name}

    # -- spans -----------------------------------------------------------------------------
    spans = collector.spans()
    roots = {s.attributes["perago.task_id"]: s for s in spans if s.name == "perago.attempt"}
    task_id = done["tasks"][0]["taskId"]
    root = roots[task_id]
    assert root.parent_span_id == ""
    assert root.attributes["perago.workflow_id"] == done["workflowId"]
    assert root.attributes["perago.retry_count"] == "0"  # OTLP/JSON: int64 as a string
    assert root.attributes["perago.worker_id"] == worker_id
    assert root.attributes["lakefs.repository"] == workspace.repo
    assert root.attributes["lakefs.branch"] == "main"
    assert root.attributes["lakefs.input_ref"] == workspace.input()["ref"]
    assert root.attributes["lakefs.output_ref"] == published
    assert root.attributes["perago.outcome"] == "COMPLETED"
    children = {s.name for s in spans if s.parent_span_id == root.span_id}
    assert {f"perago.phase.{p}" for p in PHASES | {"stage", "publish"}} <= children
    assert all(s.trace_id == root.trace_id for s in spans if s.parent_span_id == root.span_id)
    failed_root = roots[failed["tasks"][0]["taskId"]]
    assert failed_root.status.get("code") == 2  # ERROR
    assert failed_root.attributes["perago.failure_class"] == "TaskFailed"
    failed_body = [
        s
        for s in spans
        if s.parent_span_id == failed_root.span_id and s.name == "perago.phase.body"
    ]
    assert failed_body
    assert failed_body[0].status.get("code") == 2

    # The collector token is a secret: never in perago's own logs.
    for event in app.project.events():
        assert "s3cr3t-token" not in str(event)


def test_prometheus_endpoint_serves_every_worker_of_the_host(
    deploy_metrics_task: Callable[[dict[str, str]], Deployment],
    rest: ConductorRest,
    workspace: Workspace,
    unique_name: str,
) -> None:
    app = deploy_metrics_task({})
    port = free_port()
    worker = app.project.start("-j", "2", "--metrics-port", str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        state = rest.wait(app.start_workflow({"workspace": workspace.input(), "params": {}}))
        assert state["status"] == "COMPLETED", state

        def scraped() -> str:
            try:
                return requests.get(url, timeout=5).text
            except requests.RequestException:
                return ""

        def has_both_workers() -> bool:
            text = scraped()
            ids = {
                line.split('worker_id="', 1)[1].split('"', 1)[0]
                for line in text.splitlines()
                if line.startswith("runtime_busy_slots") and 'worker_id="' in line
            }
            return len(ids) == 2 and "runtime_task_attempts_total" in text

        wait_until(has_both_workers, "a scrape with both workers' series", timeout=60)
        text = scraped()
    finally:
        code, _out, err = stop(worker)
    assert code == 0, err
    attempts = [
        line
        for line in text.splitlines()
        if line.startswith("runtime_task_attempts_total{") and 'outcome="COMPLETED"' in line
    ]
    assert len(attempts) == 1, text  # one attempt ran, on one of the two workers
    assert f'task_name="{unique_name}"' in attempts[0]
    assert attempts[0].rstrip().endswith(" 1.0")
    assert "runtime_task_attempt_duration_seconds_bucket{" in text
    assert "# TYPE runtime_task_attempt_duration_seconds histogram" in text
