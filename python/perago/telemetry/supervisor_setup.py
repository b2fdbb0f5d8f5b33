"""Telemetry of a process-mode supervisor: worker restarts, and the host's scrape endpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from perago.config import RuntimeConfig, ca_bundle
from perago.telemetry.series import RESTARTS

ScrapeTargets = Callable[[], Sequence[tuple[str, int]]]


class SupervisorTelemetry:
    def __init__(self, restarts: Any, *, aggregates_scrapes: bool, labels: dict[str, str]) -> None:
        self._restarts = restarts
        self._labels = labels
        # The workers serve loopback ports and this process answers the configured one.
        self.aggregates_scrapes = aggregates_scrapes

    @classmethod
    def start(
        cls, config: RuntimeConfig, targets: ScrapeTargets, *, service_instance: str
    ) -> SupervisorTelemetry | None:
        metrics = config.metrics
        if metrics is None or not metrics.exports_metrics:
            return None
        from perago.telemetry.prometheus import merged_exposition
        from perago.telemetry.providers import start_telemetry

        telemetry = start_telemetry(
            metrics,
            service_instance=service_instance,
            role="supervisor",
            ca_bundle=ca_bundle(config.merged_env),
            prometheus_merge=lambda own: merged_exposition(own, targets()),
        )
        restarts = telemetry.meter.create_counter(
            RESTARTS, unit="{restart}", description="Worker processes restarted, by cause."
        )
        labels = {"worker_id_prefix": config.worker_id_prefix}
        if metrics.instance_id:
            labels["perago_instance_id"] = metrics.instance_id
        return cls(restarts, aggregates_scrapes=metrics.prometheus_port is not None, labels=labels)

    def restarted(self, cause: str) -> None:
        self._restarts.add(1, {**self._labels, "cause": cause})
