"""The runtime series, each named once (OpenTelemetry names; Prometheus shows dots as ``_``).

The four names perago 0.6 exported keep their meaning, with the labels that package lacked
(outcome and failure class; upload bytes are the bytes that changed, not the whole workspace).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from perago.telemetry.providers import BYTE_BUCKETS, DURATION_BUCKETS

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

ATTEMPT_DURATION = "runtime.task_attempt_duration_seconds"
ATTEMPTS = "runtime.task_attempts"
PHASE_DURATION = "runtime.attempt_phase_duration_seconds"
WORKSPACE_IO_DURATION = "runtime.workspace_io_duration_seconds"
WORKSPACE_IO_BYTES = "runtime.workspace_io_bytes"
WORKSPACE_FILES = "runtime.workspace_files"
CACHE_OBJECTS = "runtime.content_cache_objects"
CACHE_BYTES = "runtime.content_cache_bytes"
FENCE_REFUSALS = "runtime.fence_refusals"
BUSY_SLOTS = "runtime.busy_slots"
IDLE_SLOTS = "runtime.idle_slots"
RESTARTS = "runtime.worker_restarts"

# Which phase of the attempt core is which workspace I/O operation (0.6's operation label).
IO_OPERATIONS = {"download": "download", "stage": "upload", "publish": "publish"}


@dataclass
class AttemptInstruments:
    attempt_duration: Any
    attempts: Any
    phase_duration: Any
    io_duration: Any
    io_bytes: Any
    files: Any
    cache_objects: Any
    cache_bytes: Any
    fence_refusals: Any

    @classmethod
    def create(cls, meter: Meter) -> AttemptInstruments:
        def seconds(name: str, description: str) -> Any:
            return meter.create_histogram(
                name, unit="s", description=description,
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )  # fmt: skip

        return cls(
            attempt_duration=seconds(
                ATTEMPT_DURATION, "Wall time of whole attempts, by outcome and failure class."
            ),
            attempts=meter.create_counter(
                ATTEMPTS, unit="{attempt}", description="Attempts finished, by outcome."
            ),
            phase_duration=seconds(PHASE_DURATION, "Wall time of each phase of an attempt."),
            io_duration=seconds(
                WORKSPACE_IO_DURATION, "Download, upload (stage) and publish wall time."
            ),
            io_bytes=meter.create_histogram(
                WORKSPACE_IO_BYTES,
                unit="By",
                description="Bytes an attempt downloaded or uploaded (changed bytes only).",
                explicit_bucket_boundaries_advisory=BYTE_BUCKETS,
            ),
            files=meter.create_counter(
                WORKSPACE_FILES,
                unit="{file}",
                description="Files downloaded, uploaded and deleted by attempts.",
            ),
            cache_objects=meter.create_counter(
                CACHE_OBJECTS,
                unit="{object}",
                description="Content cache lookups of downloads, by result.",
            ),
            cache_bytes=meter.create_counter(
                CACHE_BYTES,
                unit="By",
                description="Bytes served from the content cache (hit) or fetched (miss).",
            ),
            fence_refusals=meter.create_counter(
                FENCE_REFUSALS,
                unit="{refusal}",
                description="Attempts the fence refused (stale: Conductor moved on).",
            ),
        )
