"""The recorder workers inject: every sample goes to an OpenTelemetry meter."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.metrics import Meter

from perago.metrics.api import MetricRecorder, TaskAttemptMetricContext

METER_NAME = "perago"


class _Instruments:
    """Instruments by (kind, name), created on first use and shared by every bound recorder."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, name: str) -> Any:
        key = (kind, name)
        instrument = self._by_key.get(key)
        if instrument is None:
            with self._lock:
                instrument = self._by_key.get(key)
                if instrument is None:
                    if kind == "histogram":
                        instrument = self._meter.create_histogram(name)
                    else:
                        instrument = self._meter.create_gauge(name)
                    self._by_key[key] = instrument
        return instrument


class OtelMetricRecorder(MetricRecorder):
    def __init__(
        self,
        meter: Meter,
        context: TaskAttemptMetricContext | None = None,
        *,
        _instruments: _Instruments | None = None,
    ) -> None:
        super().__init__(context)
        self._meter = meter
        self._instruments = _instruments if _instruments is not None else _Instruments(meter)

    def _bound(self, context: TaskAttemptMetricContext) -> OtelMetricRecorder:
        return OtelMetricRecorder(self._meter, context, _instruments=self._instruments)

    def _record(self, kind: str, name: str, value: float, labels: dict[str, str]) -> None:
        instrument = self._instruments.get(kind, name)
        if kind == "histogram":
            instrument.record(value, attributes=labels)
        else:
            instrument.set(value, attributes=labels)
