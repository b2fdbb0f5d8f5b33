"""The metrics API task bodies use: ``MetricSpec``, ``MetricRecorder`` and its contexts.

Compatible with perago 0.6's task-author API: a task declares ``metrics=MetricSpec(...)`` and a
third (or second) parameter ``metrics: MetricRecorder``; each attempt gets a recorder bound to the
attempt. Application series are named ``app.<name>``, runtime ones ``runtime.<name>``; every
sample carries ``task_name`` (and runtime ones ``perago_instance_id`` when known). Attempt
identities (task id, workflow id, execution id, worker id) are never labels: they would make one
series per attempt. Labels a body passes under those names are dropped with a warning.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from loguru import logger
from pydantic import BaseModel, ConfigDict

__all__ = [
    "RESERVED_LABELS",
    "MetricRecorder",
    "MetricSpec",
    "RuntimeMetricContext",
    "TaskAttemptMetricContext",
]

# Attempt identities: one value per attempt, never a label.
RESERVED_LABELS = frozenset({"task_id", "workflow_instance_id", "execution_id", "worker_id"})
_OWN_LABELS = frozenset({"task_name", "perago_instance_id"})
APP_PREFIX = "app."
RUNTIME_PREFIX = "runtime."


class MetricSpec(BaseModel):
    """Which runtime metric families a task's attempts report (all on by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    attempts: bool = True
    workspace_io: bool = True
    worker_capacity: bool = True


@dataclass(frozen=True)
class TaskAttemptMetricContext:
    """The attempt a recorder is bound to (its identity is context, never labels)."""

    task_name: str
    task_id: str
    workflow_instance_id: str
    execution_id: str
    worker_id: str
    retry_count: int


@dataclass(frozen=True)
class RuntimeMetricContext:
    """What a runtime sample is about: the task, and the host instance when configured."""

    task_name: str
    perago_instance_id: str | None = None


# OpenTelemetry's instrument-name rule, applied to the full name (with its prefix) by every
# recorder alike, so a name the in-memory recorder of a unit test accepts also works in a worker.
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-/]{0,254}")


def _checked_name(name: object, prefix: str) -> str:
    full = prefix + name if isinstance(name, str) else ""
    if not isinstance(name, str) or not name or _NAME_RE.fullmatch(full) is None:
        raise ValueError(
            f"metric name {name!r} must contain only ASCII letters, digits, '_', '.', '-' or '/' "
            "(at most 255 characters with its prefix)"
        )
    return full


def _merged_labels(
    own: Mapping[str, str], labels: Mapping[str, object] | None, name: str
) -> dict[str, str]:
    merged = dict(own)
    for key, value in (labels or {}).items():
        label = str(key)
        if label in RESERVED_LABELS or label in _OWN_LABELS:
            logger.bind(metric=name, label=label).warning(
                "metric label {} is reserved by perago and was dropped", label
            )
            continue
        merged[label] = str(value)
    return merged


class MetricRecorder(ABC):
    """Histograms, gauges and timers of a task body; bound to one attempt by ``with_context``."""

    def __init__(self, context: TaskAttemptMetricContext | None = None) -> None:
        self._context = context

    @property
    def context(self) -> TaskAttemptMetricContext | None:
        return self._context

    def with_context(self, context: TaskAttemptMetricContext) -> MetricRecorder:
        """A recorder of the same backend bound to ``context``."""
        if self._context is not None:
            logger.bind(
                task_name=context.task_name, previous_task_id=self._context.task_id
            ).warning("MetricRecorder was already bound to an attempt; binding it again")
        return self._bound(context)

    @abstractmethod
    def _bound(self, context: TaskAttemptMetricContext) -> MetricRecorder: ...

    @abstractmethod
    def _record(self, kind: str, name: str, value: float, labels: dict[str, str]) -> None:
        """Write one sample (kind: "histogram" or "gauge") of a fully named series."""

    def _application_labels(self, name: str, labels: Mapping[str, object] | None) -> dict[str, str]:
        if self._context is None:
            raise RuntimeError("MetricRecorder context is not bound")
        return _merged_labels({"task_name": self._context.task_name}, labels, name)

    def histogram(
        self, name: str, value: float, *, labels: Mapping[str, object] | None = None
    ) -> None:
        self._application("histogram", name, value, labels)

    def gauge(self, name: str, value: float, *, labels: Mapping[str, object] | None = None) -> None:
        self._application("gauge", name, value, labels)

    def timer(
        self, name: str, *, labels: Mapping[str, object] | None = None
    ) -> AbstractContextManager[None]:
        """Record the seconds the block took as a histogram sample (also when it raises)."""
        full = _checked_name(name, APP_PREFIX)
        return self._timed(full, self._application_labels(full, labels))

    def _application(
        self, kind: str, name: str, value: float, labels: Mapping[str, object] | None
    ) -> None:
        full = _checked_name(name, APP_PREFIX)
        self._record(kind, full, float(value), self._application_labels(full, labels))

    @staticmethod
    def _runtime_labels(
        context: RuntimeMetricContext, labels: Mapping[str, object] | None, name: str
    ) -> dict[str, str]:
        own = {"task_name": context.task_name}
        if context.perago_instance_id:
            own["perago_instance_id"] = context.perago_instance_id
        return _merged_labels(own, labels, name)

    def runtime_histogram(
        self,
        name: str,
        value: float,
        *,
        context: RuntimeMetricContext,
        labels: Mapping[str, object] | None = None,
    ) -> None:
        self._runtime("histogram", name, value, context, labels)

    def runtime_gauge(
        self,
        name: str,
        value: float,
        *,
        context: RuntimeMetricContext,
        labels: Mapping[str, object] | None = None,
    ) -> None:
        self._runtime("gauge", name, value, context, labels)

    def runtime_timer(
        self,
        name: str,
        *,
        context: RuntimeMetricContext,
        labels: Mapping[str, object] | None = None,
    ) -> AbstractContextManager[None]:
        full = _checked_name(name, RUNTIME_PREFIX)
        return self._timed(full, self._runtime_labels(context, labels, full))

    def _runtime(
        self,
        kind: str,
        name: str,
        value: float,
        context: RuntimeMetricContext,
        labels: Mapping[str, object] | None,
    ) -> None:
        full = _checked_name(name, RUNTIME_PREFIX)
        self._record(kind, full, float(value), self._runtime_labels(context, labels, full))

    @contextmanager
    def _timed(self, full: str, labels: dict[str, str]) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self._record("histogram", full, time.perf_counter() - started, labels)


class DiscardingMetricRecorder(MetricRecorder):
    """What a metrics-enabled task's body gets when nothing is exported (``OTEL_SDK_DISABLED``,
    ``perago run``): every call is checked as usual and its sample dropped."""

    def _bound(self, context: TaskAttemptMetricContext) -> DiscardingMetricRecorder:
        return DiscardingMetricRecorder(context)

    def _record(self, kind: str, name: str, value: float, labels: dict[str, str]) -> None:
        return None
