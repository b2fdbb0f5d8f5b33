"""MetricsConfig from the environment: perago 0.6's variables and errors, the standard OTel ones."""

from __future__ import annotations

import pytest

from perago.errors import RuntimeConfigError
from perago.metrics.settings import MetricsConfig, load_metrics_config, lookup_in


def _load(**env: str) -> MetricsConfig | None:
    return load_metrics_config(lookup_in(env))


def test_nothing_configured_is_none() -> None:
    assert _load() is None
    assert _load(PERAGO_INSTANCE_ID="host-a", OTEL_SERVICE_NAME="x") is None


def test_the_0_6_variables_keep_their_meaning() -> None:
    config = _load(
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT="http://collector:4318/v1/metrics",
        OTEL_EXPORTER_OTLP_METRICS_COMPRESSION="GZIP",
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="2500",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        PERAGO_INSTANCE_ID="host-a.1",
    )
    assert config is not None
    assert config.endpoint == "http://collector:4318/v1/metrics"
    assert config.compression == "gzip"
    assert config.timeout_millis == 2500
    assert config.export_interval_millis == 1000
    assert config.instance_id == "host-a.1"
    assert config.traces_endpoint is None  # a metrics endpoint says nothing of traces


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_METRICS_COMPRESSION": "zstd"},
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION must be 'gzip'",
        ),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "1.5"},
            "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT must be a positive integer number of milliseconds",
        ),
        (
            {"OTEL_METRIC_EXPORT_INTERVAL": "0"},
            "OTEL_METRIC_EXPORT_INTERVAL must be greater than zero",
        ),
        (
            {"PERAGO_INSTANCE_ID": "host a"},
            "PERAGO_INSTANCE_ID must contain only ASCII letters, digits, dots, underscores, "
            "or hyphens",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL",
        ),
        (
            {"OTEL_EXPORTER_OTLP_HEADERS": "token"},
            "OTEL_EXPORTER_OTLP_HEADERS must be a comma-separated list of key=value pairs",
        ),
        (
            {"OTEL_RESOURCE_ATTRIBUTES": "=x"},
            "OTEL_RESOURCE_ATTRIBUTES must be a comma-separated list of key=value pairs",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL must be 'http/protobuf' (perago exports OTLP over HTTP)",
        ),
        (
            {"PERAGO_METRICS_PORT": "70000"},
            "PERAGO_METRICS_PORT must be a TCP port number between 1 and 65535",
        ),
    ],
)
def test_bad_values_are_one_line_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(RuntimeConfigError) as raised:
        _load(**env)
    assert str(raised.value) == message


def test_standard_variables_are_honoured_as_the_otel_spec_defines_them() -> None:
    config = _load(
        OTEL_EXPORTER_OTLP_ENDPOINT="https://collector.example:4318/",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20abc,x-tenant=t1",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-tenant=traces",
        OTEL_SERVICE_NAME="render-fleet",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod,team=media%20lab",
    )
    assert config is not None
    assert config.endpoint == "https://collector.example:4318/v1/metrics"
    assert config.traces_endpoint == "https://collector.example:4318/v1/traces"
    metrics_headers = {k: v.get_secret_value() for k, v in config.metrics_headers.items()}
    traces_headers = {k: v.get_secret_value() for k, v in config.traces_headers.items()}
    assert metrics_headers == {"authorization": "Bearer abc", "x-tenant": "t1"}
    assert traces_headers == {"authorization": "Bearer abc", "x-tenant": "traces"}
    assert config.service_name == "render-fleet"
    assert config.resource_attributes == {"deployment.environment": "prod", "team": "media lab"}


def test_header_values_never_appear_in_reprs_dumps_or_descriptions() -> None:
    config = _load(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318",
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20s3cr3t",
    )
    assert config is not None
    for text in (repr(config), str(config.model_dump()), str(config.describe())):
        assert "s3cr3t" not in text
    assert config.describe()["metrics_headers"] == ["authorization"]


def test_sdk_disabled_turns_everything_off() -> None:
    assert _load(OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318", OTEL_SDK_DISABLED="true") is None


def test_a_metrics_port_alone_exports_metrics_but_no_traces() -> None:
    config = _load(PERAGO_METRICS_PORT="9464")
    assert config is not None
    assert config.exports_metrics
    assert not config.exports_traces


def test_collector_tokens_are_withheld_from_task_bodies() -> None:
    from perago.config import body_environment_removals

    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "authorization=x",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=y",
        "OTEL_SERVICE_NAME": "kept",
    }
    assert body_environment_removals(env) == [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ]
