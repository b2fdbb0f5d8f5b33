"""A recorder that keeps every sample in lists: for task authors' unit tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from perago.metrics.api import MetricRecorder, TaskAttemptMetricContext


@dataclass(frozen=True)
class RecordedMetricSample:
    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)


class InMemoryMetricRecorder(MetricRecorder):
    """Samples in ``histograms`` and ``gauges``; bound copies share the same lists."""

    def __init__(
        self,
        context: TaskAttemptMetricContext | None = None,
        *,
        _shared: tuple[list[RecordedMetricSample], list[RecordedMetricSample]] | None = None,
    ) -> None:
        super().__init__(context)
        self.histograms: list[RecordedMetricSample]
        self.gauges: list[RecordedMetricSample]
        self.histograms, self.gauges = _shared if _shared is not None else ([], [])
        self._lock = threading.Lock()

    def _bound(self, context: TaskAttemptMetricContext) -> InMemoryMetricRecorder:
        return InMemoryMetricRecorder(context, _shared=(self.histograms, self.gauges))

    def _record(self, kind: str, name: str, value: float, labels: dict[str, str]) -> None:
        sample = RecordedMetricSample(name, value, labels)
        with self._lock:
            (self.histograms if kind == "histogram" else self.gauges).append(sample)
