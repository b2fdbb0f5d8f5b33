"""``MetricsConfig``: where metrics and traces go, read from the OpenTelemetry variables.

perago 0.6's variables keep their meaning and their error texts
(``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``, ``_COMPRESSION``, ``_TIMEOUT``,
``OTEL_METRIC_EXPORT_INTERVAL``, ``PERAGO_INSTANCE_ID``). The standard variables that package
refused are honoured as the OpenTelemetry specification defines them: ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL: ``/v1/metrics`` and
``/v1/traces`` are appended), ``OTEL_EXPORTER_OTLP_HEADERS`` (and the per-signal ``_METRICS_`` /
``_TRACES_`` forms, which win), ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_SDK_DISABLED``.
Export is OTLP over HTTP (protobuf); ``PERAGO_METRICS_PORT`` (or ``perago start
--metrics-port``) serves a Prometheus scrape endpoint instead of, or as well as, pushing.

Values are read from the runtime configuration's merged environment (``.env`` overlaid by the
process), never from ``os.environ`` behind its back; header values are secrets (collector
tokens) and never appear in a repr, a dump or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, SecretStr

from perago.errors import RuntimeConfigError

METRICS_ENDPOINT = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
METRICS_COMPRESSION = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"
METRICS_TIMEOUT = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"
EXPORT_INTERVAL = "OTEL_METRIC_EXPORT_INTERVAL"
OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
METRICS_HEADERS = "OTEL_EXPORTER_OTLP_METRICS_HEADERS"
TRACES_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
SERVICE_NAME = "OTEL_SERVICE_NAME"
RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
SDK_DISABLED = "OTEL_SDK_DISABLED"
INSTANCE_ID = "PERAGO_INSTANCE_ID"
METRICS_PORT = "PERAGO_METRICS_PORT"

DEFAULT_SERVICE_NAME = "perago"
_INSTANCE_ID_RE = re.compile(r"[A-Za-z0-9._-]+")
_INTEGER_RE = re.compile(r"[0-9]+")
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

Lookup = Callable[[str], str | None]


class MetricsConfig(BaseModel):
    """Where this worker's metrics and traces go (frozen; header values redacted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    endpoint: str | None = None
    instance_id: str | None = None
    compression: Literal["gzip"] | None = None
    timeout_millis: int | None = None
    export_interval_millis: int | None = None
    traces_endpoint: str | None = None
    metrics_headers: dict[str, SecretStr] = {}
    traces_headers: dict[str, SecretStr] = {}
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: dict[str, str] = {}
    prometheus_port: int | None = None

    @property
    def exports_metrics(self) -> bool:
        return self.endpoint is not None or self.prometheus_port is not None

    @property
    def exports_traces(self) -> bool:
        return self.traces_endpoint is not None

    def with_prometheus_port(self, port: int | None) -> MetricsConfig:
        return self.model_copy(update={"prometheus_port": port})

    def describe(self) -> dict[str, object]:
        """What ``perago check`` shows: endpoints and settings, never header values."""
        return {
            "metrics_endpoint": self.endpoint,
            "traces_endpoint": self.traces_endpoint,
            "prometheus_port": self.prometheus_port,
            "service_name": self.service_name,
            "instance_id": self.instance_id,
            "compression": self.compression,
            "timeout_millis": self.timeout_millis,
            "export_interval_millis": self.export_interval_millis,
            "metrics_headers": sorted(self.metrics_headers),
            "traces_headers": sorted(self.traces_headers),
            "resource_attributes": dict(self.resource_attributes),
        }


def _url(name: str, value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise RuntimeConfigError(f"{name} must be an http:// or https:// URL")
    return value


def _signal_url(base: str, signal: str) -> str:
    return base.rstrip("/") + f"/v1/{signal}"


def _milliseconds(name: str, value: str) -> int:
    if _INTEGER_RE.fullmatch(value) is None:
        raise RuntimeConfigError(f"{name} must be a positive integer number of milliseconds")
    number = int(value)
    if number <= 0:
        raise RuntimeConfigError(f"{name} must be greater than zero")
    return number


def _pairs(name: str, value: str, *, what: str) -> dict[str, str]:
    """``key=value,key2=value2`` with percent-encoded values (W3C Baggage, as OTel uses)."""
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or (what == "header" and not _HEADER_NAME_RE.fullmatch(key)):
            raise RuntimeConfigError(f"{name} must be a comma-separated list of key=value pairs")
        pairs[key] = unquote(raw.strip())
    return pairs


def _headers(lookup: Lookup, specific: str) -> dict[str, SecretStr]:
    merged: dict[str, str] = {}
    for name in (OTLP_HEADERS, specific):
        value = lookup(name)
        if value is not None:
            merged.update(_pairs(name, value, what="header"))
    return {key.lower(): SecretStr(value) for key, value in merged.items()}


def _port(name: str, value: str) -> int:
    if _INTEGER_RE.fullmatch(value) is None or not 0 < int(value) < 65536:
        raise RuntimeConfigError(f"{name} must be a TCP port number between 1 and 65535")
    return int(value)


def instance_id(lookup: Lookup) -> str | None:
    value = lookup(INSTANCE_ID)
    if value is not None and (not value.isascii() or _INSTANCE_ID_RE.fullmatch(value) is None):
        raise RuntimeConfigError(
            f"{INSTANCE_ID} must contain only ASCII letters, digits, dots, underscores, or hyphens"
        )
    return value


def load_metrics_config(lookup: Lookup) -> MetricsConfig | None:
    """The metrics configuration named by the environment, or None when nothing is exported.

    ``lookup`` returns a variable's stripped value, or None when it is unset or blank.
    Every value is validated even when nothing is exported, so a typo fails at start.
    """
    protocol = lookup(OTLP_PROTOCOL)
    if protocol is not None and protocol.lower() != "http/protobuf":
        raise RuntimeConfigError(
            f"{OTLP_PROTOCOL} must be 'http/protobuf' (perago exports OTLP over HTTP)"
        )
    base = lookup(OTLP_ENDPOINT)
    if base is not None:
        _url(OTLP_ENDPOINT, base)
    metrics_endpoint = lookup(METRICS_ENDPOINT)
    if metrics_endpoint is not None:
        _url(METRICS_ENDPOINT, metrics_endpoint)
    elif base is not None:
        metrics_endpoint = _signal_url(base, "metrics")
    traces_endpoint = lookup(TRACES_ENDPOINT)
    if traces_endpoint is not None:
        _url(TRACES_ENDPOINT, traces_endpoint)
    elif base is not None:
        traces_endpoint = _signal_url(base, "traces")
    compression = lookup(METRICS_COMPRESSION)
    if compression is not None and compression.lower() != "gzip":
        raise RuntimeConfigError(f"{METRICS_COMPRESSION} must be 'gzip'")
    timeout = lookup(METRICS_TIMEOUT)
    interval = lookup(EXPORT_INTERVAL)
    attributes_text = lookup(RESOURCE_ATTRIBUTES)
    port_text = lookup(METRICS_PORT)
    config = MetricsConfig(
        endpoint=metrics_endpoint,
        instance_id=instance_id(lookup),
        compression="gzip" if compression is not None else None,
        timeout_millis=_milliseconds(METRICS_TIMEOUT, timeout) if timeout else None,
        export_interval_millis=_milliseconds(EXPORT_INTERVAL, interval) if interval else None,
        traces_endpoint=traces_endpoint,
        metrics_headers=_headers(lookup, METRICS_HEADERS),
        traces_headers=_headers(lookup, TRACES_HEADERS),
        service_name=lookup(SERVICE_NAME) or DEFAULT_SERVICE_NAME,
        resource_attributes=(
            _pairs(RESOURCE_ATTRIBUTES, attributes_text, what="attribute")
            if attributes_text
            else {}
        ),
        prometheus_port=_port(METRICS_PORT, port_text) if port_text else None,
    )
    disabled = (lookup(SDK_DISABLED) or "").lower() == "true"
    if disabled or not (config.exports_metrics or config.exports_traces):
        return None
    return config


def lookup_in(environment: Mapping[str, str]) -> Lookup:
    def lookup(name: str) -> str | None:
        value = environment.get(name, "").strip()
        return value or None

    return lookup
