"""The OpenTelemetry SDK of one process: its resource, meter provider and tracer.

Metrics go to the OTLP/HTTP endpoint (a periodic reader) and/or a Prometheus registry that the
process serves on loopback (see :mod:`perago.telemetry.prometheus`); spans go through a batch
processor to the OTLP/HTTP traces endpoint. Without a traces endpoint there is no tracer at all,
so an attempt creates no spans. Exporting runs on the SDK's own threads; a collector that is down
costs an attempt nothing (its exports fail and are dropped after their timeout).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perago.metrics.settings import MetricsConfig

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

SCOPE = "perago"
# Seconds: attempts last from milliseconds (a no-op task) to hours (a huge workspace).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0, 7200.0,
)  # fmt: skip
# At exit (and before the deadline exit) each provider gets this long to export what is pending.
FLUSH_BUDGET_MS = 2000
# Each export request's own timeout unless OTEL_EXPORTER_OTLP_METRICS_TIMEOUT says otherwise.
DEFAULT_EXPORT_TIMEOUT_S = 5.0
# The SDK's own warnings (export failures, full span queue) at most once a minute each.
SDK_LOG_INTERVAL_S = 60.0
# Bytes: 1 KiB .. 1 TiB by powers of 4.
BYTE_BUCKETS = tuple(float(1024 * 4**n) for n in range(16))


@dataclass
class Telemetry:
    """This process's providers; ``tracer`` is None when no traces endpoint is configured."""

    config: MetricsConfig
    meter_provider: MeterProvider
    meter: Meter
    tracer_provider: TracerProvider | None
    tracer: Tracer | None
    prometheus_port: int | None = None

    def flush(self, timeout_millis: int = FLUSH_BUDGET_MS) -> None:
        """Export what is pending now, within ``timeout_millis`` per provider (before an exit
        that skips ``atexit``: the deadline watchdog's)."""
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                with contextlib.suppress(Exception):
                    provider.force_flush(timeout_millis=timeout_millis)

    def shutdown(self) -> None:
        """Flush what is pending and stop the exporters, within a bounded budget: a collector
        that is down must not hold up a drained worker's exit (nor trip the supervisor's
        force-kill deadline)."""
        self.flush()
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                # Telemetry must never fail a process's exit.
                with contextlib.suppress(Exception):
                    if provider is self.meter_provider:
                        self.meter_provider.shutdown(timeout_millis=FLUSH_BUDGET_MS)
                    else:
                        provider.shutdown()


# The process's one Telemetry, once started.
_STARTED: dict[str, Telemetry] = {}


def started_telemetry() -> Telemetry | None:
    """This process's Telemetry, if it started one."""
    return _STARTED.get("process")


_lock = threading.Lock()


def _resource(config: MetricsConfig, service_instance: str, role: str) -> Any:
    from opentelemetry.sdk.resources import Resource

    attributes: dict[str, str | int] = dict(config.resource_attributes)
    # OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (OTel spec).
    if config.service_name != "perago" or "service.name" not in attributes:
        attributes["service.name"] = config.service_name
    attributes.setdefault("service.instance.id", service_instance)
    attributes.setdefault("host.name", socket.gethostname())
    attributes.setdefault("process.pid", os.getpid())
    attributes["perago.role"] = role
    if config.instance_id:
        attributes["perago.instance_id"] = config.instance_id
    return Resource.create(attributes)


def _secret_headers(headers: dict[str, Any]) -> dict[str, str]:
    return {name: value.get_secret_value() for name, value in headers.items()}


def _timeout_seconds(config: MetricsConfig) -> float:
    # Always explicit: without it the SDK would read OTEL_EXPORTER_OTLP_TIMEOUT from os.environ.
    return config.timeout_millis / 1000.0 if config.timeout_millis else DEFAULT_EXPORT_TIMEOUT_S


class _OncePerInterval(logging.Filter):
    """Lets one record of each message through per interval: a collector that is down (or a
    full span queue) would otherwise print a line per export or per dropped span."""

    def __init__(self, interval: float = SDK_LOG_INTERVAL_S) -> None:
        super().__init__()
        self._interval = interval
        self._last: dict[tuple[str, object], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
        return True


def _quiet_sdk_logs() -> None:
    """The SDK's records (every ``opentelemetry.*`` logger propagates to this one) go to one
    stderr handler of ours, rate-limited, in the console's style."""
    sdk_logger = logging.getLogger("opentelemetry")
    if any(getattr(h, "perago", False) for h in sdk_logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.perago = True  # type: ignore[attr-defined]
    handler.setLevel(logging.WARNING)
    handler.addFilter(_OncePerInterval())
    handler.setFormatter(logging.Formatter("perago: warning: opentelemetry: %(message)s"))
    sdk_logger.addHandler(handler)
    sdk_logger.propagate = False


def start_telemetry(
    config: MetricsConfig,
    *,
    service_instance: str,
    role: str,
    ca_bundle: str | None = None,
    prometheus_host: str | None = None,
    prometheus_any_port: bool = False,
    prometheus_merge: Callable[[bytes], bytes] | None = None,
) -> Telemetry:
    """Set up (once per process) the providers ``config`` asks for.

    The Prometheus endpoint listens on ``prometheus_host`` (every interface by default) at the
    configured port, or at any free port with ``prometheus_any_port`` (a worker whose supervisor
    serves the configured port)."""
    with _lock:
        if "process" in _STARTED:
            return _STARTED["process"]
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import MetricReader

        _quiet_sdk_logs()
        resource = _resource(config, service_instance, role)
        readers: list[MetricReader] = []
        if config.endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http import Compression
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            exporter = OTLPMetricExporter(
                endpoint=config.endpoint,
                certificate_file=ca_bundle,
                headers=_secret_headers(config.metrics_headers),
                timeout=_timeout_seconds(config),
                compression=Compression.Gzip if config.compression else Compression.NoCompression,
            )
            readers.append(
                PeriodicExportingMetricReader(
                    exporter, export_interval_millis=config.export_interval_millis
                )
            )
        prometheus_port: int | None = None
        if config.prometheus_port is not None:
            from perago.telemetry.prometheus import PUBLIC_BIND, start_process_endpoint

            reader, prometheus_port = start_process_endpoint(
                host=prometheus_host or PUBLIC_BIND,
                port=0 if prometheus_any_port else config.prometheus_port,
                merge=prometheus_merge,
            )
            readers.append(reader)
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        tracer_provider: TracerProvider | None = None
        tracer: Tracer | None = None
        if config.traces_endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http import Compression
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            tracer_provider = TracerProvider(resource=resource)
            tracer_provider.add_span_processor(
                BatchSpanProcessor(
                    OTLPSpanExporter(
                        endpoint=config.traces_endpoint,
                        certificate_file=ca_bundle,
                        headers=_secret_headers(config.traces_headers),
                        timeout=_timeout_seconds(config),
                        compression=(
                            Compression.Gzip if config.compression else Compression.NoCompression
                        ),
                    )
                )
            )
            tracer = tracer_provider.get_tracer(SCOPE)
        started = Telemetry(
            config=config,
            meter_provider=meter_provider,
            meter=meter_provider.get_meter(SCOPE),
            tracer_provider=tracer_provider,
            tracer=tracer,
            prometheus_port=prometheus_port,
        )
        atexit.register(started.shutdown)
        _STARTED["process"] = started
        return started
