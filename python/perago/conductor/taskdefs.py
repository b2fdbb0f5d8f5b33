"""The registered TaskDef against the generated one: drift and a lease too short to extend.

Pure functions over the JSON Conductor returns; no SDK import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskDefDrift:
    """Keys whose registered value differs from the generated TaskDef."""

    keys: tuple[str, ...]

    def describe(self, name: str) -> str:
        return (
            f"registered Conductor TaskDef '{name}' differs from the generated one in: "
            f"{', '.join(self.keys)}; run perago register to update it"
        )


def _normalise_schema_ref(value: Any) -> Any:
    # Conductor echoes schema references with extra server-side fields; compare what we send.
    if isinstance(value, Mapping):
        return {k: value.get(k) for k in ("name", "version", "type", "data") if k in value}
    return value


def taskdef_drift(generated: Mapping[str, Any], registered: Mapping[str, Any]) -> TaskDefDrift:
    """Compare only the keys perago generates (the server adds its own bookkeeping fields)."""
    differing: list[str] = []
    for key, value in generated.items():
        expected, actual = value, registered.get(key)
        if key in ("inputSchema", "outputSchema"):
            expected, actual = _normalise_schema_ref(expected), _normalise_schema_ref(actual)
        if expected != actual:
            differing.append(key)
    return TaskDefDrift(tuple(differing))


# conductor-python heartbeats at 0.8 x responseTimeoutSeconds, from a thread that looks once a
# second, then needs an HTTP round trip: below this the lease can lapse under a healthy attempt.
MIN_LEASED_RESPONSE_TIMEOUT_SECONDS = 15


def short_lease_warning(task_name: str, registered: Mapping[str, Any]) -> str | None:
    """A warning when the registered response timeout is too short for lease extension."""
    response = registered.get("responseTimeoutSeconds")
    if not isinstance(response, int) or response >= MIN_LEASED_RESPONSE_TIMEOUT_SECONDS:
        return None
    return (
        f"TaskDef '{task_name}' has responseTimeoutSeconds={response}: the worker's lease "
        f"heartbeat comes every {0.8 * response:.1f}s, checked once a second, so Conductor may "
        "time out a healthy attempt; use TimeoutPolicy(response_seconds="
        f"{MIN_LEASED_RESPONSE_TIMEOUT_SECONDS}) or more"
    )
