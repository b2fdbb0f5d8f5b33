"""A real OpenTelemetry Collector for a test: OTLP/HTTP in, every export request out to a file.

Built from the Go module proxy by ``perago dev provision`` (``perago.devservers.otelcol``); the
file exporter writes one OTLP/JSON export request a line, which the test reads back as the
series, data points and spans the collector received.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perago.devservers import otelcol


def _attributes(raw: list[dict[str, Any]] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in raw or []:
        value = item.get("value", {})
        values[item["key"]] = next(iter(value.values()), None) if value else None
    return values


@dataclass(frozen=True)
class Point:
    """One data point of a series as the collector received it."""

    metric: str
    kind: str  # sum | histogram | gauge
    unit: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    value: float | None  # sums and gauges
    count: int | None  # histograms
    total: float | None  # histograms


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: dict[str, Any]


class Collector:
    running: otelcol.RunningCollector

    def __init__(self, output: Path, endpoint: str, process: subprocess.Popen[bytes]) -> None:
        self.output = output
        self.endpoint = endpoint
        self.process = process

    def _requests(self) -> list[dict[str, Any]]:
        if not self.output.exists():
            return []
        text = self.output.read_text(encoding="utf-8")
        # Only whole lines: the exporter's buffer may have flushed part of the last one.
        return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]

    def points(self) -> list[Point]:
        found: list[Point] = []
        for request in self._requests():
            for resource_metrics in request.get("resourceMetrics", []):
                resource = _attributes(resource_metrics.get("resource", {}).get("attributes"))
                for scope in resource_metrics.get("scopeMetrics", []):
                    for metric in scope.get("metrics", []):
                        found.extend(_points(metric, resource))
        return found

    def spans(self) -> list[ReceivedSpan]:
        found: list[ReceivedSpan] = []
        for request in self._requests():
            for resource_spans in request.get("resourceSpans", []):
                resource = _attributes(resource_spans.get("resource", {}).get("attributes"))
                for scope in resource_spans.get("scopeSpans", []):
                    for span in scope.get("spans", []):
                        found.append(
                            ReceivedSpan(
                                name=span["name"],
                                trace_id=span["traceId"],
                                span_id=span["spanId"],
                                parent_span_id=span.get("parentSpanId", ""),
                                attributes=_attributes(span.get("attributes")),
                                resource=resource,
                                status=span.get("status", {}),
                            )
                        )
        return found

    def raw_lines(self) -> list[str]:
        return self.output.read_text(encoding="utf-8").splitlines() if self.output.exists() else []

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"the collector did not receive {what} in {timeout}s")
            if self.process.poll() is not None:
                raise AssertionError(f"the collector exited with {self.process.returncode}")
            time.sleep(0.2)


def _points(metric: dict[str, Any], resource: dict[str, Any]) -> Iterator[Point]:
    for kind in ("sum", "gauge", "histogram"):
        body = metric.get(kind)
        if body is None:
            continue
        for point in body.get("dataPoints", []):
            number = point.get("asDouble", point.get("asInt"))
            yield Point(
                metric=metric["name"],
                kind=kind,
                unit=metric.get("unit", ""),
                attributes=_attributes(point.get("attributes")),
                resource=resource,
                value=float(number) if number is not None else None,
                count=int(point["count"]) if "count" in point else None,
                total=float(point["sum"]) if "sum" in point else None,
            )


def start_collector(directory: Path) -> Collector:
    running = otelcol.start_collector(directory)
    collector = Collector(running.output, running.endpoint, running.process)
    collector.running = running
    return collector


def stop_collector(collector: Collector) -> None:
    collector.running.stop()
