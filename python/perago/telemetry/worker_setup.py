"""Telemetry of one worker process: its providers, the attempt observer, the body's recorder."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from perago.config import RuntimeConfig, ca_bundle
from perago.definition.decorator import TaskDefinition
from perago.errors import RuntimeConfigError
from perago.metrics.api import MetricRecorder
from perago.metrics.settings import INSTANCE_ID, METRICS_ENDPOINT, SDK_DISABLED, MetricsConfig
from perago.runtime.worker_protocol import METRICS_AGGREGATED_ENV, STATUS_METRICS
from perago.telemetry.attempt_observer import AttemptTelemetry


def check_metrics_requirements(task: TaskDefinition, config: RuntimeConfig) -> None:
    """What a metrics-enabled task needs before it can start (perago 0.6's two errors)."""
    spec = task.metrics
    if spec is None or sdk_disabled(config):
        return
    metrics = config.metrics
    if metrics is None or not metrics.exports_metrics:
        raise RuntimeConfigError(f"{METRICS_ENDPOINT} is required for metrics-enabled tasks")
    if spec.worker_capacity and not metrics.instance_id:
        raise RuntimeConfigError(
            f"{INSTANCE_ID} is required when worker_capacity metrics are enabled"
        )


def sdk_disabled(config: RuntimeConfig) -> bool:
    """``OTEL_SDK_DISABLED=true``: nothing is exported and bodies get a discarding recorder."""
    return config.merged_env.get(SDK_DISABLED, "").strip().lower() == "true"


class WorkerTelemetry:
    """The attempt observer and (for metrics-enabled tasks) the recorder bodies get."""

    def __init__(self, observer: AttemptTelemetry, recorder: MetricRecorder | None) -> None:
        self.observer = observer
        self.recorder = recorder


def start_worker_telemetry(
    task: TaskDefinition,
    config: RuntimeConfig,
    worker_id: str,
    *,
    capacity: int,
    env: Mapping[str, str],
    send_status: Callable[[str], None] | None = None,
) -> WorkerTelemetry | None:
    """Providers for this worker process, or None when nothing is exported."""
    metrics: MetricsConfig | None = config.metrics
    if metrics is None:
        return None
    from perago.telemetry.providers import start_telemetry

    aggregated = bool(env.get(METRICS_AGGREGATED_ENV)) and metrics.prometheus_port is not None
    telemetry = start_telemetry(
        metrics,
        service_instance=worker_id,
        role="worker",
        ca_bundle=ca_bundle(config.merged_env),
        prometheus_host="127.0.0.1" if aggregated else None,
        prometheus_any_port=aggregated,
    )
    if aggregated and telemetry.prometheus_port is not None and send_status is not None:
        send_status(f"{STATUS_METRICS}{telemetry.prometheus_port}")
    observer = AttemptTelemetry(
        task_name=task.name,
        worker_id=worker_id,
        meter=telemetry.meter,
        tracer=telemetry.tracer,
        spec=task.metrics,
        instance_id=metrics.instance_id,
        capacity=capacity,
    )
    recorder: MetricRecorder | None = None
    if task.has_metrics:
        from perago.metrics.otel import OtelMetricRecorder

        recorder = OtelMetricRecorder(telemetry.meter)
    return WorkerTelemetry(observer, recorder)
