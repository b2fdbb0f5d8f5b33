"""conductor-python's configuration as perago sets it: the server and key pair
(:func:`sdk_configuration`) and the per-worker settings (``conductor.worker.<task>.<property>``
and friends) perago lets through or pins (:func:`sdk_worker_settings`,
:func:`pin_sdk_worker_environment`)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from conductor.client.configuration.configuration import Configuration
from conductor.client.configuration.settings.authentication_settings import (
    AuthenticationSettings,
)

from perago.config import conductor_auth


def sdk_configuration(server_url: str, env: Mapping[str, str] | None = None) -> Configuration:
    """The SDK configuration for ``server_url`` with the key pair found in ``env``.

    ``env`` is the merged ``.env`` + environment (``RuntimeConfig.merged_env``); the key and
    secret are passed to the SDK explicitly, so no command has to export them to ``os.environ``
    first, and without a pair in ``env`` there is no authentication whatever ``os.environ``
    holds. ``env=None`` keeps the SDK's own behaviour (it reads ``os.environ``).

    conductor-python then asks ``POST <server>/token`` for a token when its ``ApiClient`` is
    built; a server without authentication (Conductor OSS) answers 404, which makes the SDK
    clear the settings on this object and go on without authentication.
    """
    # The SDK logs its own configuration at INFO on every process; keep its noise at WARNING.
    if env is None:
        return Configuration(server_api_url=server_url.rstrip("/"), log_level=logging.WARNING)
    auth = conductor_auth(env)
    settings = (
        None
        if auth is None
        else AuthenticationSettings(
            key_id=auth.key_id, key_secret=auth.key_secret.get_secret_value()
        )
    )
    configuration = Configuration(
        server_api_url=server_url.rstrip("/"),
        authentication_settings=settings,
        log_level=logging.WARNING,
    )
    # Given no settings the SDK falls back to os.environ; env is the only source here.
    configuration.authentication_settings = settings
    return configuration


# conductor-python's per-worker settings (conductor.worker.<task>.<property> and friends) as perago
# treats them: these pass through from the merged .env + environment ...
SDK_WORKER_PASSTHROUGH = ("domain", "poll_interval", "poll_timeout")
# ... and these perago controls itself (thread count = -j, lease extension, never paused, no
# registration by the SDK, the worker id that fences attempts); setting them has no effect.
SDK_WORKER_PINNED = (
    "thread_count",
    "lease_extend_enabled",
    "paused",
    "register_task_def",
    "worker_id",
    "overwrite_task_def",
    "strict_schema",
    "register_schema",
)
SDK_WORKER_PREFIXES = ("conductor_worker", "CONDUCTOR_WORKER", "conductor.worker")


def _sdk_worker_keys(task_name: str, prop: str) -> list[str]:
    """The variables conductor-python 2.0 reads for ``prop``, highest priority first.

    Mirrors ``conductor.client.worker.worker_config._get_env_value`` (and its
    ``polling_interval`` alias of ``poll_interval``).
    """
    specific = [
        f"conductor.worker.{task_name}.{prop}",
        f"conductor_worker_{task_name}_{prop}",
        f"CONDUCTOR_WORKER_{task_name.upper()}_{prop.upper()}",
        f"CONDUCTOR_WORKER_{task_name}_{prop.upper()}",
    ]
    if prop == "poll_interval":
        specific += [
            f"CONDUCTOR_WORKER_{task_name.upper()}_POLLING_INTERVAL",
            f"CONDUCTOR_WORKER_{task_name}_POLLING_INTERVAL",
        ]
    general = [
        f"conductor.worker.all.{prop}",
        f"CONDUCTOR_WORKER_ALL_{prop.upper()}",
        f"conductor_worker_{prop}",
        f"CONDUCTOR_WORKER_{prop.upper()}",
    ]
    return list(dict.fromkeys(specific + general))


def _sdk_lookup(env: Mapping[str, str], task_name: str, prop: str) -> tuple[str, str] | None:
    """(variable, value) the SDK would use for ``prop``, like its resolver (alias included)."""
    names = [prop, "polling_interval"] if prop == "poll_interval" else [prop]
    for name in names:
        for key in _sdk_worker_keys(task_name, name):
            if key in env:
                return key, env[key]
    return None


@dataclass(frozen=True)
class SdkWorkerSettings:
    """The conductor-python worker settings a perago worker of one task runs with.

    ``poll_interval_ms``/``poll_timeout_ms``/``domain`` are the effective values (perago's
    defaults unless a variable sets them; ``sources`` names those variables); ``ignored`` lists
    variables perago does not honour (pinned settings or invalid values), for one warning.
    """

    task_name: str
    domain: str | None = None
    poll_interval_ms: float = 100.0
    poll_timeout_ms: int = 100
    sources: Mapping[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """For ``perago check --json`` (no secrets live here)."""
        return {
            "domain": self.domain,
            "poll_interval_ms": self.poll_interval_ms,
            "poll_timeout_ms": self.poll_timeout_ms,
            "sources": dict(self.sources),
            "ignored": list(self.ignored),
        }

    def describe(self) -> str:
        """One line for ``perago check``."""
        return (
            f"domain={self.domain or '(none)'} "
            f"poll_interval_ms={_milliseconds(self.poll_interval_ms)} "
            f"poll_timeout_ms={self.poll_timeout_ms}"
        )

    def ignored_warning(self) -> str | None:
        if not self.ignored:
            return None
        return (
            "ignoring conductor-python worker settings perago manages or cannot use: "
            + ", ".join(self.ignored)
        )

    def sdk_environment(self) -> dict[str, str]:
        """The only ``conductor.worker.*`` variables the SDK should see: what was configured,
        under the name the SDK reads first (``conductor.worker.<task>.<property>``)."""
        prefix = f"conductor.worker.{self.task_name}."
        values: dict[str, str] = {}
        if self.domain:
            values[prefix + "domain"] = self.domain
        if "poll_interval" in self.sources:
            values[prefix + "poll_interval"] = _milliseconds(self.poll_interval_ms)
        if "poll_timeout" in self.sources:
            values[prefix + "poll_timeout"] = str(self.poll_timeout_ms)
        return values


def _milliseconds(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _positive_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def sdk_worker_settings(task_name: str, env: Mapping[str, str]) -> SdkWorkerSettings:
    """Resolve the SDK worker settings of ``task_name`` from ``env`` the way conductor-python
    would (same variables, same priority), keeping only what perago lets through."""
    sources: dict[str, str] = {}
    ignored: list[str] = []
    domain: str | None = None
    interval, timeout = 100.0, 100
    found = _sdk_lookup(env, task_name, "domain")
    if found is not None:
        sources["domain"] = found[0]
        domain = found[1].strip() or None
    found = _sdk_lookup(env, task_name, "poll_interval")
    if found is not None:
        parsed = _positive_number(found[1].strip())
        if parsed is None:
            ignored.append(f"{found[0]} (not a positive number of milliseconds)")
        else:
            sources["poll_interval"], interval = found[0], parsed
    found = _sdk_lookup(env, task_name, "poll_timeout")
    if found is not None:
        text = found[1].strip()
        if text.isdigit() and int(text) > 0:
            sources["poll_timeout"], timeout = found[0], int(text)
        else:
            ignored.append(f"{found[0]} (not a positive integer of milliseconds)")
    for prop in SDK_WORKER_PINNED:
        ignored.extend(key for key in _sdk_worker_keys(task_name, prop) if key in env)
    return SdkWorkerSettings(
        task_name=task_name,
        domain=domain,
        poll_interval_ms=interval,
        poll_timeout_ms=timeout,
        sources=sources,
        ignored=tuple(ignored),
    )


def pin_sdk_worker_environment(
    task_name: str,
    env: Mapping[str, str],
    environ: MutableMapping[str, str] | None = None,
) -> SdkWorkerSettings:
    """Let conductor-python see only the worker settings perago passes through.

    The settings are resolved from ``env`` (the merged ``.env`` + environment) like the SDK
    would; then every ``CONDUCTOR_WORKER_*``/``conductor_worker_*``/``conductor.worker.*``
    variable leaves ``environ`` (``os.environ`` by default, which the SDK's ``TaskRunner`` reads)
    and only the pass-through values (domain, poll interval, poll timeout) come back, under the
    name the ``TaskRunner`` reads first. What perago controls (threads, lease extension, paused,
    registration, worker id) cannot be overridden.
    """
    target = os.environ if environ is None else environ
    settings = sdk_worker_settings(task_name, env)
    for key in [key for key in target if key.startswith(SDK_WORKER_PREFIXES)]:
        target.pop(key, None)
    target.update(settings.sdk_environment())
    return settings
