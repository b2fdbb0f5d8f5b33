"""The task-author metrics API (compatible with perago 0.6's ``perago.metrics``).

``MetricSpec`` and ``MetricRecorder`` are also exported from ``perago``; the in-memory recorder is
for task authors' unit tests, the OpenTelemetry one is what workers inject.
"""

from perago.metrics.api import (
    MetricRecorder,
    MetricSpec,
    RuntimeMetricContext,
    TaskAttemptMetricContext,
)
from perago.metrics.memory import InMemoryMetricRecorder, RecordedMetricSample

__all__ = [
    "InMemoryMetricRecorder",
    "MetricRecorder",
    "MetricSpec",
    "OtelMetricRecorder",
    "RecordedMetricSample",
    "RuntimeMetricContext",
    "TaskAttemptMetricContext",
]


def __getattr__(name: str) -> object:
    # The OpenTelemetry SDK is imported only by those who record through it.
    if name == "OtelMetricRecorder":
        from perago.metrics.otel import OtelMetricRecorder

        return OtelMetricRecorder
    raise AttributeError(f"module 'perago.metrics' has no attribute {name!r}")
