"""The attempt observer's spans and series, read back through the OpenTelemetry SDK's own
in-memory reader and exporter (no collector needed for the logic; the e2e tests use one)."""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from perago.attempt.identity import AttemptStats, TaskAttempt
from perago.attempt.result import completed_result, failed_result
from perago.runtime.observers import AttemptObservers, FinishedAttempt
from perago.telemetry.attempt_observer import AttemptTelemetry
from perago.telemetry.prometheus import merged_exposition, serve

ATTEMPT = TaskAttempt(
    workflow_instance_id="wf-1",
    task_id="task-1",
    retry_count=1,
    task_def_name="render",
    reference_task_name="render_ref",
    seq=1,
    status="IN_PROGRESS",
    input_data={"workspace": {"repository": "repo", "branch": "main", "ref": "c0ffee"}},
    execution_id="exec-1",
)


def _setup() -> tuple[AttemptObservers, InMemoryMetricReader, InMemorySpanExporter]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    observer = AttemptTelemetry(
        task_name="render",
        worker_id="w-1",
        meter=meter,
        tracer=tracer_provider.get_tracer("test"),
        instance_id="host-a",
        capacity=2,
    )
    return AttemptObservers([observer]), reader, spans


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def _run(observers: AttemptObservers, *, fail: bool) -> None:
    stats = AttemptStats(observer=observers.phase_observer(ATTEMPT))
    observers.attempt_started(ATTEMPT)
    with stats.phase("download"):
        stats.files_downloaded, stats.bytes_downloaded = 3, 300
    try:
        with stats.phase("body"):
            if fail:
                raise RuntimeError("boom")
    except RuntimeError:
        pass
    stats.files_uploaded, stats.bytes_uploaded = 1, 11
    stats.fetch = {"hits": 2, "hit_bytes": 200, "fetched": 1, "fetched_bytes": 100}
    if fail:
        result = failed_result("StaleAttemptError: the task moved on", max_length=500)
        observers.attempt_finished(
            FinishedAttempt(ATTEMPT, result, stats, 0.5, failure_class="StaleAttemptError")
        )
    else:
        output = {"workspace": {"ref": "beef"}, "result": {}}
        observers.attempt_finished(
            FinishedAttempt(ATTEMPT, completed_result(output), stats, 0.5, published_ref="beef")
        )


def test_a_completed_attempt_has_its_span_tree_and_series() -> None:
    observers, reader, spans = _setup()
    _run(observers, fail=False)
    finished = {span.name: span for span in spans.get_finished_spans()}
    root = finished["perago.attempt"]
    assert root.attributes is not None
    assert root.attributes["perago.task_id"] == "task-1"
    assert root.attributes["perago.retry_count"] == 1
    assert root.attributes["lakefs.input_ref"] == "c0ffee"
    assert root.attributes["lakefs.output_ref"] == "beef"
    for phase in ("download", "body"):
        child = finished[f"perago.phase.{phase}"]
        assert child.parent is not None
        assert child.parent.span_id == root.context.span_id
    points = _points(reader)
    (attempt,) = points["runtime.task_attempt_duration_seconds"]
    assert dict(attempt.attributes) == {
        "task_name": "render",
        "perago_instance_id": "host-a",
        "outcome": "COMPLETED",
        "failure_class": "",
    }
    assert attempt.count == 1
    cache = {dict(p.attributes)["result"]: p.value for p in points["runtime.content_cache_bytes"]}
    assert cache == {"hit": 200, "miss": 100}
    busy = points["runtime.busy_slots"][0]
    idle = points["runtime.idle_slots"][0]
    assert (busy.value, idle.value) == (0, 2)
    assert "runtime.fence_refusals" not in points


def test_a_fence_refusal_is_counted_with_the_phase_it_happened_in() -> None:
    observers, reader, spans = _setup()
    _run(observers, fail=True)
    points = _points(reader)
    (refusal,) = points["runtime.fence_refusals"]
    assert dict(refusal.attributes)["phase"] == "body"
    root = next(s for s in spans.get_finished_spans() if s.name == "perago.attempt")
    assert root.status.status_code.name == "ERROR"
    body = next(s for s in spans.get_finished_spans() if s.name == "perago.phase.body")
    assert body.status.status_code.name == "ERROR"


def test_a_failing_observer_never_fails_the_attempt() -> None:
    class Broken(AttemptTelemetry):
        def phase_started(self, attempt: TaskAttempt, phase: str) -> None:
            raise ValueError("broken")

    reader = InMemoryMetricReader()
    broken = Broken(
        task_name="t", worker_id="w", meter=MeterProvider(metric_readers=[reader]).get_meter("x"),
        tracer=None,
    )  # fmt: skip
    observers = AttemptObservers([broken])
    stats = AttemptStats(observer=observers.phase_observer(ATTEMPT))
    observers.attempt_started(ATTEMPT)
    with stats.phase("body"):
        pass
    with stats.phase("publish"):
        pass
    assert stats.phase_ms.keys() == {"body", "publish"}


def test_the_supervisor_scrape_joins_every_worker_labelled_by_worker_id() -> None:
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    workers = []
    for worker_id in ("w-1", "w-2"):
        registry = CollectorRegistry()
        Counter("runtime_task_attempts", "Attempts.", ["task_name"], registry=registry).labels(
            "render"
        ).inc(3)
        server = serve(functools.partial(generate_latest, registry), host="127.0.0.1", port=0)
        workers.append((worker_id, int(server.server_address[1])))
    own = (
        b"# HELP runtime_worker_restarts_total Restarts.\n"
        b"# TYPE runtime_worker_restarts_total counter\n"
        b"runtime_worker_restarts_total 1.0\n"
    )
    text = merged_exposition(own, [*workers, ("gone", 1)]).decode()
    lines = [line for line in text.splitlines() if line.startswith("runtime_task_attempts_total{")]
    assert sorted(lines) == [
        'runtime_task_attempts_total{task_name="render",worker_id="w-1"} 3.0',
        'runtime_task_attempts_total{task_name="render",worker_id="w-2"} 3.0',
    ]
    assert text.count("# TYPE runtime_task_attempts_total counter") == 1
    assert "runtime_worker_restarts_total 1.0" in text
